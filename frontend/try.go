package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
	"faas/worker/sandbox"
)

// tryName is the function a dry run's source is stored as. It is not a
// valid function name, so no upload can clash with it, no route can
// name it, and it sorts before every valid name, which lets a listing
// start after it and never show it.
const tryName = "(try)"

// defaultTryWait is how long a dry run waits for its result unless ?wait
// says otherwise: a dry run is for looking at the outcome.
const defaultTryWait = 30 * time.Second

// tryRequest is the body of POST /u/:u/try.
type tryRequest struct {
	Source *string         `json:"src"`
	Args   json.RawMessage `json:"args"`
}

// tryFunction runs a source once without storing it as a function, and
// answers like a run with ?wait. The job needs a stored source to run:
// the source is stored as the user's function tryName (one per user,
// replaced by each dry run, counted by the quotas like any function),
// and the job is pinned to that version, which the Store keeps while
// the job is pending however soon another dry run replaces it. The job
// is billed and limited like any other; its function is tryName.
func (s *Server) tryFunction(c *gin.Context) {
	owner := c.Param("u")
	wait, err := durationParam(c, "wait", defaultTryWait, maxWait)
	var timeout time.Duration
	var memory int
	if err == nil {
		timeout, memory, err = s.settingParams(c)
	}
	var src string
	var args json.RawMessage
	if err == nil {
		src, args, err = readTry(c)
	}
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
	// The upload lock keeps another dry run of this user, through this
	// process, from replacing the source between storing and submitting.
	unlock := s.uploads.lock(owner)
	if err := s.checkFunctionQuota(ctx, owner, tryName, len(src)); err != nil {
		unlock()
		s.fail(c, err)
		return
	}
	f, _, err := s.store.PutFunction(ctx, faas.Function{Owner: owner, Name: tryName, Source: src, Timeout: timeout, MemoryMB: memory})
	if err != nil {
		unlock()
		s.fail(c, fmt.Errorf("store dry run of %s: %w", owner, err))
		return
	}
	s.functionChanged(ctx, owner, tryName)
	job, _, err := s.submit(ctx, faas.Job{Owner: owner, Function: tryName, Args: args}, "")
	unlock()
	if err != nil {
		s.fail(c, fmt.Errorf("submit dry run of %s: %w", owner, err))
		return
	}
	if job.Version != f.Version {
		// A dry run through another frontend replaced the source in
		// between: this job would run that source. It must not run.
		if err := s.dropJob(ctx, job.ID); err != nil {
			s.fail(c, fmt.Errorf("drop dry run %s that would run another source: %w", job.ID, err))
			return
		}
		s.fail(c, faas.Errorf(faas.Conflict, "another dry run of user %s replaced the source before this one was queued; send it again", owner))
		return
	}
	s.answerSubmitted(ctx, c, job.ID, wait, nil)
}

// readTry reads and checks a dry run's body: the source as an upload
// checks it, the arguments as a run does.
func readTry(c *gin.Context) (src string, args json.RawMessage, err error) {
	raw, err := readBody(c, maxSourceBytes+maxArgsBytes, "dry run")
	if err != nil {
		return "", nil, err
	}
	var req tryRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", nil, faas.Errorf(faas.Invalid, `dry run body is not {"src": "...", "args": [...]}: %v`, err)
	}
	if req.Source == nil {
		return "", nil, faas.Errorf(faas.Invalid, `dry run body has no "src": want {"src": "...", "args": [...]}`)
	}
	if len(*req.Source) > maxSourceBytes {
		return "", nil, faas.Errorf(faas.TooLarge, "function source is larger than %d bytes", maxSourceBytes)
	}
	if len(req.Args) > maxArgsBytes {
		return "", nil, faas.Errorf(faas.TooLarge, "arguments are larger than %d bytes", maxArgsBytes)
	}
	if err := sandbox.Validate(*req.Source, tryName); err != nil {
		return "", nil, err
	}
	args, err = parseArgs(req.Args)
	return *req.Source, args, err
}
