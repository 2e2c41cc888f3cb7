package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// followPing is how often a quiet follow stream sends a comment, so that
// a client that went away is noticed and a job still queued is looked at
// again.
const followPing = 5 * time.Second

// jobLogs answers GET /j/:id/logs: the text printed so far, the same as
// lines (?format=lines), or a stream of Server-Sent Events (?follow=1).
// A running job's lines come from the queue, a finished job's from the
// Store.
func (s *Server) jobLogs(c *gin.Context) {
	job, found := s.ownJob(c, needLogs)
	if !found {
		return
	}
	from, err := logsFrom(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	format := c.Query("format")
	switch follow := c.Query("follow"); {
	case follow != "" && follow != "0" && follow != "1":
		s.fail(c, faas.Errorf(faas.Invalid, "follow=%q: want 1 or 0", follow))
	case format != "" && format != "lines" && format != "text":
		s.fail(c, faas.Errorf(faas.Invalid, "format=%q: want lines or text", format))
	case follow == "1":
		s.followLogs(c, job, from)
	default:
		if format != "lines" {
			from = 0 // the text is the whole output
		}
		ctx, cancel := s.reqCtx(c, 0)
		defer cancel()
		job, lines, err := s.logsSoFar(ctx, job, from)
		switch {
		case err != nil:
			s.fail(c, fmt.Errorf("logs of job %s: %w", job.ID, err))
		case format == "lines":
			ok(c, http.StatusOK, lines)
		case job.State.Finished():
			ok(c, http.StatusOK, job.Logs)
		default:
			var text strings.Builder
			for _, l := range lines {
				text.WriteString(l.Line)
				text.WriteByte('\n')
			}
			ok(c, http.StatusOK, text.String())
		}
	}
}

// logsFrom is the first line the client asks for: the line after the one
// Last-Event-ID or ?from names, 0 without either.
func logsFrom(c *gin.Context) (int, error) {
	v, name := c.Query("from"), "from"
	if v == "" {
		v, name = c.GetHeader("Last-Event-ID"), "Last-Event-ID"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, faas.Errorf(faas.Invalid, "%s=%q: want the offset of the last line seen, 0 or more", name, v)
	}
	return n + 1, nil
}

// logsSoFar returns the lines job printed from line from on, with the
// job as last read: from the queue while it runs, else from the Store.
func (s *Server) logsSoFar(ctx context.Context, job faas.Job, from int) (faas.Job, []faas.LogLine, error) {
	if !job.State.Finished() {
		lines, running, err := s.queue.Logs(ctx, job.ID, from)
		if err != nil || running {
			return job, nonNil(lines), err
		}
		// Finished or requeued since the Store was read: read it again.
		if job, err = s.store.Job(ctx, job.ID); err != nil {
			return job, nil, err
		}
	}
	return job, storedLines(job, from), nil
}

// storedLines cuts the output the Store holds into lines from line from
// on, each with the stream the job's stream record gives it.
func storedLines(job faas.Job, from int) []faas.LogLine {
	lines := []faas.LogLine{}
	if job.Logs == "" {
		return lines
	}
	for i, l := range strings.Split(strings.TrimSuffix(job.Logs, "\n"), "\n") {
		if i >= from {
			lines = append(lines, faas.LogLine{Offset: i, Stream: faas.LineStream(job.Streams, i), Line: l})
		}
	}
	return lines
}

func nonNil(lines []faas.LogLine) []faas.LogLine {
	if lines == nil {
		return []faas.LogLine{}
	}
	return lines
}

// followLogs streams job's lines from line from on as Server-Sent Events
// until the job ends (event end), is deleted, or the client or the server
// goes. It holds no socket of its own: the server's one Watch hands it the
// lines the queue publishes, and it asks the queue when it may have
// missed some. Followers count against the same caps as waits.
func (s *Server) followLogs(c *gin.Context, job faas.Job, from int) {
	release, err := s.caps.admit(job.Owner)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer release()
	f, stop := s.watch.Follow(job.ID)
	defer stop()
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	defer context.AfterFunc(s.draining, cancel)()

	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	sse := &sseWriter{c: c, next: from}
	sse.flush()
	ping := time.NewTicker(followPing)
	defer ping.Stop()
	for refresh := true; ; {
		if refresh {
			rctx, rcancel := s.reqCtx(c, 0)
			job, lines, err := s.logsSoFar(rctx, job, sse.next)
			rcancel()
			switch {
			case err != nil:
				// Deleted, or a manager out of reach: the client may
				// reconnect with Last-Event-ID.
				return
			case job.State.Finished():
				sse.lines(lines)
				sse.end(job.State)
				return
			}
			sse.lines(lines)
		}
		// Anything but lines that follow on is a reason to ask again.
		refresh = true
		select {
		case lines := <-f.Lines:
			if len(lines) > 0 && lines[0].Offset <= sse.next {
				sse.lines(lines)
				refresh = false
			}
		case <-f.Missed:
		case <-f.Done:
			// The job's last lines were published before its end: send
			// them as published, without asking the Store for them.
			for drained := false; !drained; {
				select {
				case lines := <-f.Lines:
					if len(lines) > 0 && lines[0].Offset <= sse.next {
						sse.lines(lines)
					}
				default:
					drained = true
				}
			}
		case <-ping.C:
			sse.comment("ping")
		case <-ctx.Done():
			return
		}
		if sse.err != nil {
			return
		}
	}
}

// sseWriter writes Server-Sent Events; next is the offset of the next
// line to send, so lines seen twice are sent once.
type sseWriter struct {
	c    *gin.Context
	next int
	err  error
}

func (w *sseWriter) lines(lines []faas.LogLine) {
	for _, l := range lines {
		if l.Offset < w.next || w.err != nil {
			continue
		}
		w.event(strconv.Itoa(l.Offset), l.Stream, l.Line)
		w.next = l.Offset + 1
	}
	w.flush()
}

func (w *sseWriter) end(state faas.JobState) {
	data, _ := json.Marshal(map[string]faas.JobState{"state": state})
	w.event("", "end", string(data))
	w.flush()
}

func (w *sseWriter) comment(text string) {
	w.write(": " + text + "\n\n")
	w.flush()
}

// event writes one event. A line holds no newline (the sandbox cuts the
// output at them), but a carriage return would end the data field early
// for a client, so each line of data is a field of its own.
func (w *sseWriter) event(id, name, data string) {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + name + "\n")
	for _, d := range strings.FieldsFunc(data, func(r rune) bool { return r == '\r' || r == '\n' }) {
		b.WriteString("data: " + d + "\n")
	}
	if data == "" {
		b.WriteString("data: \n")
	}
	b.WriteString("\n")
	w.write(b.String())
}

func (w *sseWriter) write(s string) {
	if w.err == nil {
		_, w.err = w.c.Writer.WriteString(s)
	}
}

func (w *sseWriter) flush() {
	if w.err == nil {
		w.c.Writer.Flush()
	}
}
