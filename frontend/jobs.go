package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/tracing"
)

// parseArgs checks that a run request's body is a JSON array and returns it
// compacted; an empty body means no arguments.
func parseArgs(b []byte) (json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return json.RawMessage("[]"), nil
	}
	// The usual body, an array already compact, is returned as it came:
	// decoding it into a slice and compacting it into a new buffer cost a
	// submission an allocation per argument and a copy of the body.
	if b[0] == '[' && !bytes.ContainsAny(b, " \t\n\r") && json.Valid(b) {
		return b, nil
	}
	var args []json.RawMessage
	if err := json.Unmarshal(b, &args); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, faas.Errorf(faas.Invalid, "arguments must be a JSON array, got a JSON %s", typeErr.Value)
		}
		return nil, faas.Errorf(faas.Invalid, "arguments are not valid JSON: %v", err)
	}
	if args == nil { // null unmarshals into a nil slice without complaint
		return nil, faas.Errorf(faas.Invalid, "arguments must be a JSON array, got null")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, faas.Errorf(faas.Invalid, "arguments are not valid JSON: %v", err)
	}
	return out.Bytes(), nil
}

// runFunction submits a job. The job id is chosen here, before the first
// try, so that a submission retried by the proxy is not run twice; with an
// Idempotency-Key, so that one retried by the client is not either. With
// ?wait it also waits for the outcome, sparing the client its polling. A
// replay answers like the first submission, with Idempotent-Replayed.
func (s *Server) runFunction(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	wait, err := durationParam(c, "wait", 0, maxWait)
	if err != nil {
		s.fail(c, err)
		return
	}
	key, err := idempotencyKey(c.Request.Header)
	if err != nil {
		s.fail(c, err)
		return
	}
	raw, err := readBody(c, maxArgsBytes, "arguments")
	if err != nil {
		s.fail(c, err)
		return
	}
	args, err := parseArgs(raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, done, err := s.admitJob(c, owner, len(args), wait)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer done()
	job := faas.Job{Owner: owner, Function: name, Args: args}
	var expected *jqproxy.Expected
	if key == "" && wait > 0 {
		// A new job, waited for from before it exists: its finish cannot
		// come before the wait, which need not ask the queue about it.
		job.ID = faas.NewJobID()
		expected = s.watch.Expect(job.ID)
		defer expected.Cancel()
	}
	job, replayed, err := s.submit(ctx, job, key)
	if err != nil {
		s.fail(c, fmt.Errorf("submit job of %s/%s: %w", owner, name, err))
		return
	}
	if replayed {
		c.Header(replayedHeader, "true")
	}
	s.answerSubmitted(ctx, c, job.ID, wait, expected)
}

// admitJob lets a job of owner with args of argsLen bytes in: a place
// among the waits when the request will wait, and room under the
// quotas. The context bounds the request, wait included; done releases
// both.
func (s *Server) admitJob(c *gin.Context, owner string, argsLen int, wait time.Duration) (ctx context.Context, done func(), err error) {
	release := func() {}
	if wait > 0 {
		if release, err = s.caps.admit(owner); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := s.reqCtx(c, wait)
	done = func() { cancel(); release() }
	if err := s.checkJobQuota(ctx, owner, argsLen); err != nil {
		done()
		return nil, nil, err
	}
	return ctx, done, nil
}

// answerSubmitted answers a submitted job: its outcome if it finishes
// within wait, else its id (202) to poll; Location names it either way.
// expected, if not nil, is the wait registered before the job was
// submitted.
func (s *Server) answerSubmitted(ctx context.Context, c *gin.Context, id string, wait time.Duration, expected *jqproxy.Expected) {
	c.Header("Location", "/j/"+id)
	if wait == 0 || !s.waitJob(ctx, c, id, wait, expected) {
		ok(c, http.StatusAccepted, id)
	}
}

// waitJob waits up to wait for the job, through expected if it is not
// nil, and answers with its outcome if it finished; it reports whether it
// answered. Shutting down ends the wait early: the client still holds the
// id and can poll.
func (s *Server) waitJob(ctx context.Context, c *gin.Context, id string, wait time.Duration, expected *jqproxy.Expected) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.draining, cancel)
	defer stop()
	var job faas.Job
	var finished bool
	var err error
	if expected != nil {
		job, finished, err = expected.Wait(ctx, wait)
	} else {
		job, finished, err = s.watch.Wait(ctx, id, wait)
	}
	if s.draining.Err() != nil {
		return false
	}
	if c.Request.Context().Err() != nil {
		// The client hung up; there is no one to answer, nothing to log.
		c.Abort()
		return true
	}
	if err != nil {
		s.fail(c, fmt.Errorf("wait for job %s: %w", id, err))
		return true
	}
	if !finished {
		return false
	}
	if job.ID == "" {
		// The queue had no outcome to hand over: read it, with a fresh
		// budget, since the wait may have used nearly all of the request's.
		rctx, rcancel := s.reqCtx(c, 0)
		defer rcancel()
		if job, err = s.store.Job(rctx, id); err != nil {
			s.fail(c, fmt.Errorf("read finished job %s: %w", id, err))
			return true
		}
	}
	if !job.State.Finished() {
		// A queue that restarted forgets its waiters; the store is the record.
		return false
	}
	s.answerResult(c, job)
	return true
}

// answerResult answers a job's outcome: its value, its error (422), or
// not_finished.
func (s *Server) answerResult(c *gin.Context, job faas.Job) {
	switch {
	case job.State == faas.Succeeded:
		res := job.Result
		if len(res) == 0 {
			res = json.RawMessage("null")
		}
		ok(c, http.StatusOK, res)
	case job.State == faas.Failed && job.Error != nil:
		failJob(c, job.Error)
	case job.State == faas.Failed:
		s.fail(c, fmt.Errorf("job %s failed without an error", job.ID))
	default:
		s.fail(c, faas.Errorf(faas.NotFinished, "job %s is %s", job.ID, job.State))
	}
}

// errJobNotFound is the one answer for a job that does not exist, is not a
// job id, or belongs to someone else: they must be indistinguishable.
var errJobNotFound = faas.Errorf(faas.NotFound, "job not found")

// ownJob loads as much of the job named in the path as needs asks for, if
// the caller may see it; otherwise it answers and reports false.
func (s *Server) ownJob(c *gin.Context, needs jobNeeds) (faas.Job, bool) {
	id := c.Param("id")
	if !validJobID(id) {
		s.fail(c, errJobNotFound)
		return faas.Job{}, false
	}
	job, err := s.readJob(c.Request.Context(), id, needs)
	if faas.ErrorCode(err) == faas.NotFound || err == nil && !s.mayRead(c, job.Owner) {
		s.fail(c, errJobNotFound)
		return faas.Job{}, false
	}
	if err != nil {
		s.fail(c, fmt.Errorf("get job %s: %w", id, err))
		return faas.Job{}, false
	}
	return job, true
}

// jobState answers 1 once the job finished (either way), 0 before, as the
// reference project did. Whether it finished is all it needs, so that a
// live job's polls are answered from the memory of live jobs.
func (s *Server) jobState(c *gin.Context) {
	job, found := s.ownJob(c, needFinished)
	if !found {
		return
	}
	state := 0
	if job.State.Finished() {
		state = 1
	}
	ok(c, http.StatusOK, state)
}

func (s *Server) jobResult(c *gin.Context) {
	if job, found := s.ownJob(c, needStatus); found {
		s.answerResult(c, job)
	}
}

// JobInfo is what GET /j/:id/info answers: the whole job record as the
// API shows it, durations in milliseconds and unset times as null.
type JobInfo struct {
	ID       string          `json:"id"`
	Function string          `json:"function"`
	Args     json.RawMessage `json:"args"`
	State    faas.JobState   `json:"state"`
	Attempts int             `json:"attempts"`
	Created  *time.Time      `json:"created"`
	Started  *time.Time      `json:"started"`
	Finished *time.Time      `json:"finished"`
	// WaitMS is the time from submission to the start of the last attempt,
	// null until the job starts.
	WaitMS     *float64    `json:"wait_ms"`
	DurationMS float64     `json:"duration_ms"`
	BilledMS   float64     `json:"billed_ms"`
	Error      *faas.Error `json:"error"`
	// Lost says why each earlier attempt lost its worker.
	Lost []*faas.Error `json:"lost"`
	// TraceID names the trace of the job's submission, run and
	// completion in the tracing backend; "" if it was submitted while
	// tracing was off.
	TraceID string `json:"trace_id"`
	// Trigger is what submitted the job: "webhook", "schedule", "topic" or "job";
	// absent for a run requested through the API.
	Trigger string `json:"trigger,omitempty"`
	// Parent is the job whose faas.submit submitted this one, and
	// Children the jobs this one submitted, oldest first.
	Parent   string   `json:"parent,omitempty"`
	Children []string `json:"children,omitempty"`
	// Calls are the job's fused calls (faas.call), at most faas.MaxCalls;
	// CallsTruncated says that it made more.
	Calls          []CallInfo `json:"calls,omitempty"`
	CallsTruncated bool       `json:"calls_truncated,omitempty"`
}

// CallInfo is one fused call in a JobInfo.
type CallInfo struct {
	Function   string      `json:"function"`
	Version    int64       `json:"version,omitempty"`
	DurationMS float64     `json:"duration_ms"`
	Error      *faas.Error `json:"error"`
}

// timeOrNil turns the zero time into JSON null. time.Time marshals as
// RFC 3339 with fractional seconds.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newJobInfo(j faas.Job) JobInfo {
	info := JobInfo{
		ID:             j.ID,
		Function:       j.Function,
		Args:           j.Args,
		State:          j.State,
		Attempts:       j.Attempt,
		Created:        timeOrNil(j.Created),
		Started:        timeOrNil(j.Started),
		Finished:       timeOrNil(j.Finished),
		DurationMS:     millis(j.Duration),
		BilledMS:       millis(j.Billed),
		Error:          j.Error,
		Lost:           j.Lost,
		TraceID:        tracing.ID(j.Trace),
		Trigger:        j.Trigger,
		Parent:         j.Parent,
		Children:       j.Children,
		CallsTruncated: j.CallsTruncated,
	}
	for _, c := range j.Calls {
		info.Calls = append(info.Calls, CallInfo{Function: c.Function, Version: c.Version, DurationMS: millis(c.Duration), Error: c.Error})
	}
	if len(info.Args) == 0 {
		info.Args = json.RawMessage("[]")
	}
	if !j.Started.IsZero() && !j.Created.IsZero() {
		w := millis(j.Started.Sub(j.Created))
		info.WaitMS = &w
	}
	if info.Lost == nil {
		info.Lost = []*faas.Error{}
	}
	return info
}

func (s *Server) jobInfo(c *gin.Context) {
	if job, found := s.ownJob(c, needArgs); found {
		ok(c, http.StatusOK, newJobInfo(job))
	}
}

// deleteJob removes a job. The store refuses to start a deleted job, so a
// queued one is never run.
func (s *Server) deleteJob(c *gin.Context) {
	job, found := s.ownJob(c, needStatus)
	if !found {
		return
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.dropJob(ctx, job.ID); err != nil {
		if faas.ErrorCode(err) == faas.NotFound {
			err = errJobNotFound
		}
		s.fail(c, fmt.Errorf("delete job %s: %w", job.ID, err))
		return
	}
	ok(c, http.StatusOK, job.ID)
}

// dropJob deletes a job from the Store, then tells the queue.
func (s *Server) dropJob(ctx context.Context, id string) error {
	if err := s.store.DeleteJob(ctx, id); err != nil {
		return err
	}
	// Here at once; on the other frontends when the queue's JobDeleted
	// event reaches them. After the Store's delete, so that no read begun
	// before it caches the job again.
	s.finished.forgetJob(id)
	// The job is gone either way; telling the queue stops a running copy
	// now rather than when it ends. If the queue does not hear, it finds
	// out when it next tries to lease or requeue the job.
	if err := s.queue.Forget(ctx, id); err != nil {
		s.log.Warn("deleted job not forgotten by the queue", "job_id", id, "err", err)
	}
	return nil
}
