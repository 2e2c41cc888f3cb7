package frontend_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend/client"
	"faas/proxies/faas"
)

// talkSrc prints a line, waits 300 ms, then prints two more on other
// streams.
const talkSrc = `async function talk(){ console.log("first"); await new Promise(r => setTimeout(r, 300)); console.warn("second"); console.error("third"); return 1 }`

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, name, data string }

// follow opens GET /j/:id/logs?follow=1 (with more query and headers)
// and returns a channel of its events, closed when the stream ends.
func (p *platform) follow(t testing.TB, token, id, query string, h http.Header) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", p.url+"/j/"+id+"/logs?follow=1"+query, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := make(chan sseEvent, 64)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev.name != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return events
}

// next is the stream's next event; it fails the test if none comes in
// time or the stream ended.
func next(t testing.TB, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, open := <-events:
		require.True(t, open, "the stream ended early")
		return ev
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no event in 10s")
	}
	return sseEvent{}
}

// ended waits for the stream to close without another event.
func ended(t testing.TB, events <-chan sseEvent) {
	t.Helper()
	select {
	case ev, open := <-events:
		require.False(t, open, "event after the end: %+v", ev)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the stream did not end in 10s")
	}
}

// followPrinter uploads name with its time limit (0 for the default),
// which prints line and then waits 20 s, runs it and follows it until the
// line came.
func (p *platform) followPrinter(t testing.TB, user, token, name string, timeout time.Duration, line string) (id string, events <-chan sseEvent) {
	t.Helper()
	p.deploy(t, user, token, name, client.Deploy{Timeout: timeout, Source: fmt.Sprintf(`async function %s(){ console.log(%q); await new Promise(r => setTimeout(r, 20000)) }`, name, line)})
	id = p.submit(t, user, token, name, "")
	events = p.follow(t, token, id, "", nil)
	require.Equal(t, sseEvent{"0", "log", line}, next(t, events))
	return id, events
}

func TestLiveLogs(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "logs")
	p.upload(t, user, token, "talk", talkSrc)
	id := p.submit(t, user, token, "talk", "")
	events := p.follow(t, token, id, "", nil)

	// The first line arrives while the job still runs, and shows in a
	// plain read too.
	require.Equal(t, sseEvent{"0", "log", "first"}, next(t, events))
	require.Equal(t, "running", string(p.info(t, token, id).State))
	require.Equal(t, "first\n", p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs", token, nil).str(t))
	var lines []faas.LogLine
	require.NoError(t, json.Unmarshal(p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs?format=lines", token, nil).Res, &lines))
	require.Equal(t, []faas.LogLine{{Offset: 0, Stream: "log", Line: "first"}}, lines)

	// Then the rest, in order, with their streams, and the end.
	require.Equal(t, sseEvent{"1", "warn", "second"}, next(t, events))
	require.Equal(t, sseEvent{"2", "error", "third"}, next(t, events))
	require.Equal(t, sseEvent{"", "end", `{"state":"succeeded"}`}, next(t, events))
	ended(t, events)
	require.Equal(t, "first\nsecond\nthird\n", p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs", token, nil).str(t))

	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			query string
			h     http.Header
			want  []sseEvent
		}{
			{"Last-Event-ID", "", http.Header{"Last-Event-ID": {"0"}}, []sseEvent{{"1", "warn", "second"}, {"2", "error", "third"}}},
			{"from", "&from=1", nil, []sseEvent{{"2", "error", "third"}}},
			{"past the end", "&from=7", nil, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				events := p.follow(t, token, id, tc.query, tc.h)
				for _, want := range tc.want {
					require.Equal(t, want, next(t, events))
				}
				require.Equal(t, sseEvent{"", "end", `{"state":"succeeded"}`}, next(t, events))
				ended(t, events)
			})
		}
	})
	t.Run("lines from", func(t *testing.T) {
		t.Parallel()
		var lines []faas.LogLine
		require.NoError(t, json.Unmarshal(p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs?format=lines&from=0", token, nil).Res, &lines))
		require.Equal(t, []faas.LogLine{{Offset: 1, Stream: "warn", Line: "second"}, {Offset: 2, Stream: "error", Line: "third"}}, lines)
		require.Equal(t, "first\nsecond\nthird\n", p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs?from=0", token, nil).str(t), "the text is the whole output")
	})
	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"?from=-1", "?from=x", "?follow=yes", "?format=xml"} {
			p.expect(t, http.StatusBadRequest, "GET", "/j/"+id+"/logs"+q, token, nil)
		}
		_, other := p.newUser(t, "logs-other")
		p.expect(t, http.StatusNotFound, "GET", "/j/"+id+"/logs?follow=1", other, nil)
		p.expect(t, http.StatusNotFound, "GET", "/j/"+id+"/logs", other, nil)
	})
	t.Run("deleted", func(t *testing.T) {
		t.Parallel()
		id, events := p.followPrinter(t, user, token, "chatty", 0, "hi")
		p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
		ended(t, events)
		p.expect(t, http.StatusNotFound, "GET", "/j/"+id+"/logs?follow=1", token, nil)
	})
	t.Run("timed out", func(t *testing.T) {
		t.Parallel()
		_, events := p.followPrinter(t, user, token, "stuck", time.Second, "waiting")
		require.Equal(t, sseEvent{"", "end", `{"state":"failed"}`}, next(t, events))
		ended(t, events)
	})
}

// TestFinishedLogsKeepStreams: once a job has ended its lines come from
// the Store, which keeps each line's stream, so a read and a follower
// that come late see the streams the live stream showed. A message with
// a newline is two lines of the stored text, both on its stream.
func TestFinishedLogsKeepStreams(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "streams")
	p.upload(t, user, token, "speak", `function speak(){ console.log("a"); console.info("b"); console.warn("c\nd"); console.error("e"); console.debug("f"); return 1 }`)
	id := p.submit(t, user, token, "speak", "")
	p.awaitJob(t, token, id)
	want := []faas.LogLine{
		{Offset: 0, Stream: "log", Line: "a"}, {Offset: 1, Stream: "info", Line: "b"}, {Offset: 2, Stream: "warn", Line: "c"},
		{Offset: 3, Stream: "warn", Line: "d"}, {Offset: 4, Stream: "error", Line: "e"}, {Offset: 5, Stream: "log", Line: "f"},
	}
	var lines []faas.LogLine
	require.NoError(t, json.Unmarshal(p.expect(t, http.StatusOK, "GET", "/j/"+id+"/logs?format=lines", token, nil).Res, &lines))
	require.Equal(t, want, lines)
	for _, tc := range []struct {
		name  string
		query string
		from  int
	}{{"whole", "", 0}, {"from", "&from=2", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events := p.follow(t, token, id, tc.query, nil)
			for _, l := range want[tc.from:] {
				require.Equal(t, sseEvent{fmt.Sprint(l.Offset), l.Stream, l.Line}, next(t, events))
			}
			require.Equal(t, sseEvent{"", "end", `{"state":"succeeded"}`}, next(t, events))
			ended(t, events)
		})
	}
}

// TestFollowersAreCapped: a follower counts as a wait against
// FAAS_MAX_WAITS_PER_USER, and gives its place back when it leaves.
func TestFollowersAreCapped(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, func(s *settings) { s.frontend.MaxWaitsPerUser = 1 })
	user, token := p.newUser(t, "cap")
	id, events := p.followPrinter(t, user, token, "chatty", 0, "hi")
	p.expect(t, http.StatusTooManyRequests, "GET", "/j/"+id+"/logs?follow=1", token, nil)
	p.expect(t, http.StatusOK, "DELETE", "/j/"+id, token, nil)
	ended(t, events)
	require.Eventually(t, func() bool { return p.fe.WaitsAdmitted() == 0 }, 5*time.Second, 10*time.Millisecond)
}
