package frontend_test

import (
	"net/http"
	"slices"
	"testing"
	"time"
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
