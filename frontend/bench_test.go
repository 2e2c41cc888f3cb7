package frontend_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkRunWait measures a synchronous call, POST .../run?wait, through
// the whole platform, and reports its median and 99th percentile.
func BenchmarkRunWait(b *testing.B) {
	p := startPlatform(b)
	user, token := p.newUser(b, "bench")
	p.upload(b, user, token, "add", addSrc)
	path := "/u/" + user + "/fn/add/run?wait=10s"
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		p.expect(b, http.StatusOK, "POST", path, token, []byte("[4,5]"))
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkHotRequests measures the frontend's three hot requests served
// by its Gin engine in-process (no socket or HTTP client in the figures),
// with the real token cache and the real JQ and DB managers over ZeroMQ
// behind it: an async submission, a synchronous one, and a status poll
// answered from the cache of finished jobs. allocs/op counts the whole
// process, the worker running the submitted jobs included; a CPU profile
// focused on the frontend package shows the frontend's own share.
func BenchmarkHotRequests(b *testing.B) {
	// Room for every submission of the run: the queue's default limit
	// would turn the async ones into 429s after a thousand.
	p := startPlatform(b, maxPending(1<<30))
	user, token := p.newUser(b, "hot")
	p.upload(b, user, token, "add", addSrc)
	h := p.fe.Handler()
	serve := func(b *testing.B, method, path string, body []byte, status int) *httptest.ResponseRecorder {
		b.Helper()
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != status {
			b.Fatalf("%s %s: status %d, want %d: %s", method, path, w.Code, status, w.Body)
		}
		return w
	}
	args := []byte("[4,5]")
	submit := "/u/" + user + "/fn/add/run"
	b.Run("submit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, "POST", submit, args, http.StatusAccepted)
		}
	})
	b.Run("wait", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, "POST", submit+"?wait=10s", args, http.StatusOK)
		}
	})
	w := serve(b, "POST", submit+"?wait=10s", args, http.StatusOK)
	status := w.Header().Get("Location")
	require.NotEmpty(b, status)
	serve(b, "GET", status, nil, http.StatusOK) // fills the cache
	b.Run("status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, "GET", status, nil, http.StatusOK)
		}
	})
}

// BenchmarkPollLive measures GET /j/:id of a running job, the poll a
// reference client repeats until its job ends, served in-process by the
// frontend's Gin engine with the real JQ and DB managers behind it.
func BenchmarkPollLive(b *testing.B) {
	p := startPlatform(b)
	user, token := p.newUser(b, "poll")
	id := p.startSlow(b, user, token, time.Minute)
	// Deleted, the job stops at the worker's next heartbeat rather than
	// holding the teardown for a minute.
	b.Cleanup(func() { p.expect(b, http.StatusOK, "DELETE", "/j/"+id, token, nil) })
	h := p.fe.Handler()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/j/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.String() != `{"error":false,"res":0}` {
			b.Fatalf("GET /j/%s: %d %s", id, w.Code, w.Body)
		}
	}
}
