package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// stdReply is the reply frame as the bus wrote it before the codec
// changed: the result marshalled alone by encoding/json, then the frame.
// Peers of either version must read each other's replies.
func stdReply(t testing.TB, res any, err error) []byte {
	t.Helper()
	var r struct {
		Res   json.RawMessage `json:"res,omitempty"`
		Error *faas.Error     `json:"error,omitempty"`
	}
	if err != nil {
		r.Error = faas.AsError(err)
	} else if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil {
			r.Error = faas.Errorf(faas.Internal, "encode reply: %v", merr)
		} else {
			r.Res = b
		}
	}
	b, merr := json.Marshal(r)
	require.NoError(t, merr)
	return b
}

// TestReplyFrame: a reply frame is what encoding/json wrote, and decodes
// into the caller's value as encoding/json decoded it, for the results a
// handler returns: none, nil slices and pointers, errors, values the
// codec cannot encode.
func TestReplyFrame(t *testing.T) {
	t.Parallel()
	job := &faas.Job{ID: "j1", Args: json.RawMessage(`[1,{"a":"\u00e9"}]`), Created: time.Date(2026, 12, 5, 3, 14, 7, 1, time.UTC)}
	for _, tc := range []struct {
		name string
		res  any
		err  error
		into func() any // the caller's value, nil when it reads no result
		// internal: the codec refuses res, and each codec words why its
		// own way, so only the code is compared.
		internal bool
	}{
		{"no result", nil, nil, nil, false},
		{"no result read", []string{"x"}, nil, nil, false},
		{"nil slice", []faas.Job(nil), nil, func() any { return new([]faas.Job) }, false},
		{"empty slice", []faas.Job{}, nil, func() any { return new([]faas.Job) }, false},
		{"nil pointer", (*faas.Job)(nil), nil, func() any { return new(*faas.Job) }, false},
		{"struct", faas.JobStatus{Job: job, Seq: 7}, nil, func() any { return new(faas.JobStatus) }, false},
		{"batch", []*faas.Error{nil, {Code: faas.Conflict, Message: "lost"}}, nil, func() any { return new([]*faas.Error) }, false},
		{"number", math.MaxInt64, nil, func() any { return new(int) }, false},
		{"error", nil, faas.Errorf(faas.NotFound, "job %q", "j\xff"), func() any { return new(faas.Job) }, false},
		{"plain error", nil, fmt.Errorf("disk full"), func() any { return new(faas.Job) }, false},
		{"unencodable", faas.Stats{JobsPerSec: math.NaN()}, nil, func() any { return new(faas.Stats) }, true},
		{"unencodable raw", faas.Job{Args: json.RawMessage("[1,")}, nil, func() any { return new(faas.Job) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frame := encodeReply(tc.res, tc.err)
			want := stdReply(t, tc.res, tc.err)
			if tc.internal {
				var r Reply
				require.NoError(t, json.Unmarshal(frame, &r))
				require.Equal(t, faas.Internal, r.Error.Code)
				require.Contains(t, string(want), `"code":"internal"`)
			} else {
				require.Equal(t, string(want), string(frame))
			}
			if tc.into == nil {
				require.Equal(t, faas.ErrorCode(tc.err), faas.ErrorCode(decodeReply(frame, nil)))
				return
			}
			got, wantv := tc.into(), tc.into()
			err := decodeReply(frame, got)
			wantErr := stdDecodeReply(want, wantv)
			require.Equal(t, wantErr, err)
			require.True(t, reflect.DeepEqual(wantv, got), "decoded %#v, want %#v", got, wantv)
		})
	}
}

// stdDecodeReply is decodeReply as it was before the codec changed.
func stdDecodeReply(frame []byte, resp any) error {
	var r struct {
		Res   json.RawMessage `json:"res,omitempty"`
		Error *faas.Error     `json:"error,omitempty"`
	}
	if err := json.Unmarshal(frame, &r); err != nil {
		return faas.Errorf(faas.Internal, "decode reply: %v", err)
	}
	if r.Error != nil {
		return r.Error
	}
	if resp == nil || len(r.Res) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Res, resp); err != nil {
		return faas.Errorf(faas.Internal, "decode reply: %v", err)
	}
	return nil
}

// TestMalformedReply: a frame that is not a reply is an internal error,
// never a result.
func TestMalformedReply(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{``, `{`, `{"res":[1,}`, `{"res":"x"}`, `{"res":[]} x`, `{"error":{"code":1}}`} {
		t.Run(frame, func(t *testing.T) {
			t.Parallel()
			var got []faas.Job
			require.Equal(t, faas.Internal, faas.ErrorCode(decodeReply([]byte(frame), &got)), "frame %q", frame)
		})
	}
}

// benchJob is a job of faas bench's echo function at the given state.
func benchJob(i int, state faas.JobState) faas.Job {
	t0 := time.Date(2026, 12, 5, 3, 14, 7, 123456789, time.UTC)
	j := faas.Job{
		ID: fmt.Sprintf("0193a5c2-7d4e-7b1a-9c3f-%012d", i), Owner: "bench-user", Function: "echo",
		Version: 1733368447123456, Args: json.RawMessage(`[{"n":42,"s":"hello world","list":[1,2,3]}]`),
		State: state, Created: t0, Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	if state != faas.Queued {
		j.Attempt, j.Worker, j.Started = 1, "worker-1", t0.Add(time.Millisecond)
	}
	if state.Finished() {
		j.Args = nil
		j.Finished, j.Duration, j.Billed = t0.Add(2*time.Millisecond), 850*time.Microsecond, time.Millisecond
		j.Result = json.RawMessage(`{"ok":true,"echo":[{"n":42,"s":"hello world","list":[1,2,3]}]}`)
	}
	return j
}

// benchMessages are the bodies of the bus's hot methods as faas bench
// sends them, each with a fresh value to decode into. The request types
// of jqproxy are copied in shape: it imports this package.
func benchMessages() []struct {
	name  string
	reply bool
	v     any
	into  func() any
} {
	batch := func(n int, state faas.JobState) (js []faas.Job, rs []faas.JobResult, cs []faas.Completion) {
		for i := range n {
			j := benchJob(i, state)
			js = append(js, j)
			rs = append(rs, faas.JobResult{Job: j})
			cs = append(cs, faas.Completion{JobID: j.ID, Attempt: 1, Result: j.Result, Duration: j.Duration})
		}
		return js, rs, cs
	}
	queued, created, _ := batch(16, faas.Queued)
	leased, _, _ := batch(4, faas.Running)
	_, finished, done := batch(16, faas.Succeeded)
	type completeRequest struct {
		Worker      string            `json:"worker"`
		Completions []faas.Completion `json:"completions"`
	}
	type nextRequest struct {
		Worker string        `json:"worker"`
		Max    int           `json:"max"`
		Wait   time.Duration `json:"wait"`
	}
	running := benchJob(3, faas.Running)
	running.Args = nil
	events := faas.Events{Next: 117}
	for i := range finished {
		events.List = append(events.List, faas.Event{Seq: uint64(100 + i), Kind: faas.JobFinished, JobID: finished[i].Job.ID, Job: &finished[i].Job})
	}
	return []struct {
		name  string
		reply bool
		v     any
		into  func() any
	}{
		{"jq.submit", false, queued[0], func() any { return new(faas.Job) }},
		{"jq.submit", true, queued[0], func() any { return new(faas.Job) }},
		{"db.create_jobs/16", false, queued, func() any { return new([]faas.Job) }},
		{"db.create_jobs/16", true, created, func() any { return new([]faas.JobResult) }},
		{"jq.next", false, nextRequest{Worker: "worker-1", Max: 8, Wait: 30 * time.Second}, func() any { return new(nextRequest) }},
		{"jq.next/4", true, leased, func() any { return new([]faas.Job) }},
		{"jq.complete/8", false, completeRequest{Worker: "worker-1", Completions: done[:8]}, func() any { return new(completeRequest) }},
		{"jq.complete/8", true, make([]*faas.Error, 8), func() any { return new([]*faas.Error) }},
		{"db.complete_jobs/16", false, done, func() any { return new([]faas.Completion) }},
		{"db.complete_jobs/16", true, finished, func() any { return new([]faas.JobResult) }},
		{"jq.status", true, faas.JobStatus{Job: &running, Seq: 99}, func() any { return new(faas.JobStatus) }},
		{"jq.events/16", true, events, func() any { return new(faas.Events) }},
	}
}

// BenchmarkCodec encodes and decodes each hot message as the bus does
// (a request body; a reply frame around a result), and as it did with
// encoding/json, for comparison in one run:
//
//	go test -run '^$' -bench Codec -benchmem ./proxies/wire/
func BenchmarkCodec(b *testing.B) {
	for _, m := range benchMessages() {
		dir := "req"
		if m.reply {
			dir = "reply"
		}
		b.Run(m.name+"/"+dir+"/bus", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m.reply {
					require.NoError(b, decodeReply(encodeReply(m.v, nil), m.into()))
					continue
				}
				body, err := Marshal(m.v)
				require.NoError(b, err)
				require.NoError(b, Unmarshal(body, m.into()))
			}
		})
		b.Run(m.name+"/"+dir+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m.reply {
					require.NoError(b, stdDecodeReply(stdReply(b, m.v, nil), m.into()))
					continue
				}
				body, err := json.Marshal(m.v)
				require.NoError(b, err)
				require.NoError(b, json.Unmarshal(body, m.into()))
			}
		})
	}
}

// FuzzUnmarshal: a body from the network, however malformed, decodes as
// encoding/json decodes it: refused by both, or into the same value (a
// refused body's value is thrown away, so it may differ). Bodies are the
// first bytes of a peer's that the codec reads.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range benchMessages() {
		b, err := json.Marshal(m.v)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{`{"id":"a","ID":"b","Id":"c"}`, `{"args":[1,}`, `{"version":1.5}`, `{"created":"2026-13-01T00:00:00Z"}`,
		`{"error":null,"lost":[null,{}]}`, `{"owner":"\ud800\udc00\ud800"}`, `[{"job":{"id":1}}]`, `{"seq":18446744073709551616}`, "{\"id\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range []reflect.Type{reflect.TypeFor[faas.Job](), reflect.TypeFor[[]faas.JobResult](), reflect.TypeFor[faas.Events]()} {
			got, want := reflect.New(typ), reflect.New(typ)
			err, wantErr := Unmarshal(body, got.Interface()), json.Unmarshal(body, want.Interface())
			require.Equal(t, wantErr == nil, err == nil, "body %q into %v: error %v, encoding/json's %v", body, typ, err, wantErr)
			if err == nil {
				require.True(t, reflect.DeepEqual(want.Interface(), got.Interface()), "body %q into %v: %+v, encoding/json's %+v", body, typ, got.Elem(), want.Elem())
			}
		}
	})
}
