package worker

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"faas/proxies/faas"
	"faas/worker/pool"
)

// maxCallDepth bounds FAAS_MAX_CALL_DEPTH: each level of calls holds a
// runtime in the sandbox's memory and frames on its stack.
const maxCallDepth = 64

// jobHost is the pool.Host of one running job: it acts for the job's
// owner only, so a name can never reach another user's function, and it
// submits child jobs only while the worker holds the job's lease.
type jobHost struct {
	w     *Worker
	stop  context.Context
	owner string
	lease faas.Lease
	log   jobLog
}

var _ pool.Host = jobHost{}

// checkName refuses what is not a function name, another user's
// "bob/f" included, before anything is looked up: the answer is the same
// whether or not such a function exists.
func checkName(name string) error {
	if !faas.ValidName(name) {
		return faas.Errorf(faas.Invalid, "invalid function name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", name, faas.MaxNameLen)
	}
	return nil
}

// Function implements pool.Host: the version current now, which the call
// runs whatever replaces it meanwhile, from the cache when the worker
// has it.
func (h jobHost) Function(ctx context.Context, name string) (pool.Function, error) {
	if err := checkName(name); err != nil {
		return pool.Function{}, err
	}
	f, err := h.w.store.Function(ctx, h.owner, name)
	if faas.ErrorCode(err) == faas.NotFound {
		return pool.Function{}, faas.Errorf(faas.NotFound, "function %s not found", name)
	}
	if err != nil {
		return pool.Function{}, h.failed("get function", name, err)
	}
	fn, err := h.w.function(ctx, h.stop, pool.Key{Owner: h.owner, Name: name, Version: f.Version})
	if err != nil {
		if faas.ErrorCode(err) == faas.FunctionDeleted {
			return pool.Function{}, faas.Errorf(faas.NotFound, "function %s not found", name)
		}
		return pool.Function{}, h.failed("get function", name, err)
	}
	return pool.Function{Key: fn.key, Source: fn.source, Env: fn.env}, nil
}

// Submit implements pool.Host through the queue's SubmitChild, fenced by
// the job's lease.
func (h jobHost) Submit(ctx context.Context, name string, args json.RawMessage) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	j, err := h.w.queue.SubmitChild(ctx, h.w.cfg.ID, h.lease, faas.Job{ID: faas.NewJobID(), Function: name, Args: args})
	if err != nil {
		return "", h.shown("submit child job", name, err)
	}
	return j.ID, nil
}

// Publish implements pool.Host through the queue's PublishChild, fenced
// by the job's lease like Submit. Each faas.publish is a publish of its
// own, under a key drawn here, which the proxy's resends of the request
// keep: a lost reply creates no job twice.
func (h jobHost) Publish(ctx context.Context, topic string, event json.RawMessage) ([]string, error) {
	ids, err := h.w.queue.PublishChild(ctx, h.w.cfg.ID, h.lease, topic, event, uuid.NewString())
	if err != nil {
		return nil, h.shown("publish to", topic, err)
	}
	return ids, nil
}

// shown is the error a host call answers the job: the caller's mistakes
// and the limits it met as they are, anything else through failed.
func (h jobHost) shown(what, name string, err error) error {
	switch faas.ErrorCode(err) {
	case faas.NotFound, faas.Invalid, faas.TooMany, faas.TooLarge:
		return err
	}
	return h.failed(what, name, err)
}

// failed logs a failure the job cannot be told the details of, and
// answers what it is told.
func (h jobHost) failed(what, name string, err error) error {
	h.log().Warn(what+" for a running job", "callee", name, "err", err)
	return faas.Errorf(faas.Unavailable, "%s %s: the platform did not answer, retry later", what, name)
}
