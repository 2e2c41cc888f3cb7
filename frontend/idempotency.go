package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/google/uuid"

	"faas/proxies/faas"
)

// The headers of idempotent submission.
const (
	idempotencyKeyHeader = "Idempotency-Key"
	replayedHeader       = "Idempotent-Replayed"
)

// maxIdempotencyKey bounds the length of an Idempotency-Key.
const maxIdempotencyKey = 255

// idempotencyNamespace is the namespace of the job ids derived from
// Idempotency-Keys. It must never change: a key would then map to another
// job, and a retry would run the function again.
var idempotencyNamespace = uuid.MustParse("7ea56a3e-091d-4c20-a53a-ff8d7bef3519")

// errKeyReused answers a key that names a job of another request.
var errKeyReused = faas.Errorf(faas.Conflict, "Idempotency-Key reused with a different request")

// idempotencyKey returns the request's Idempotency-Key, "" if it has none:
// 1-255 printable ASCII characters, sent once.
func idempotencyKey(h http.Header) (string, error) {
	keys := h.Values(idempotencyKeyHeader)
	switch {
	case len(keys) == 0:
		return "", nil
	case len(keys) > 1:
		return "", faas.Errorf(faas.Invalid, "more than one %s header", idempotencyKeyHeader)
	}
	key := keys[0]
	valid := len(key) >= 1 && len(key) <= maxIdempotencyKey
	for i := 0; valid && i < len(key); i++ {
		valid = key[i] >= ' ' && key[i] <= '~'
	}
	if !valid {
		return "", faas.Errorf(faas.Invalid, "invalid %s: want 1-%d printable ASCII characters", idempotencyKeyHeader, maxIdempotencyKey)
	}
	return key, nil
}

// keyedJobID is the id of the job owner submits under key. The owner is
// part of it so that users cannot reach, or block, each other's jobs by
// choosing the same key; the NUL cannot occur in a name, so no two
// (owner, key) pairs give the same input.
func keyedJobID(owner, key string) string {
	return uuid.NewSHA1(idempotencyNamespace, []byte(owner+"\x00"+key)).String()
}

// submit stores and queues job. Without a key the job keeps the fresh id
// it may come with (one a wait was registered for), or gets one.
// With one, its id derives from the owner and the key, so that every
// submission under the key names the same job: the Store keeps the first
// job created under an id and hands it back to the others, which makes
// concurrent submissions one job without any state shared here. replayed
// reports that the job existed before this request.
func (s *Server) submit(ctx context.Context, job faas.Job, key string) (stored faas.Job, replayed bool, err error) {
	job.Created = s.clock.now()
	if key == "" {
		if job.ID == "" {
			job.ID = faas.NewJobID()
		}
		stored, err = s.queue.Submit(ctx, job)
		return stored, false, err
	}
	job.ID = keyedJobID(job.Owner, key)
	// A replay is answered from the Store, past the queue: the queue would
	// count the replay of a finished job against the user's pending jobs,
	// and refuse it while they are at their limit.
	stored, err = s.store.Job(ctx, job.ID)
	switch {
	case err == nil:
		return stored, true, sameRequest(stored, job)
	case faas.ErrorCode(err) != faas.NotFound:
		return faas.Job{}, false, fmt.Errorf("look up job %s: %w", job.ID, err)
	}
	stored, err = s.queue.Submit(ctx, job)
	if err != nil {
		return faas.Job{}, false, err
	}
	// Submissions racing under one key all get here, and all but one get
	// back a job created by another. The creation time tells which: the
	// clock gives each submission of this process its own, and the Store
	// keeps it to the microsecond, the clock's step. (Two frontends
	// stamping the same microsecond would both think they created the job,
	// which costs only the header.)
	if stored.Created.Equal(job.Created) {
		return stored, false, nil
	}
	return stored, true, sameRequest(stored, job)
}

// sameRequest checks that the stored job is what the request would have
// created: the same owner, function and arguments.
func sameRequest(stored, want faas.Job) error {
	if stored.Owner != want.Owner || stored.Function != want.Function || !sameJSON(stored.Args, want.Args) {
		return errKeyReused
	}
	return nil
}

// sameJSON reports whether a and b hold the same JSON value as the
// function would see it: spacing, key order and the spelling of numbers
// do not count. Values that do not decode into Go's types (numbers beyond
// float64) are compared as sent.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// uniqueClock hands out times that differ by at least a microsecond, the
// precision the Store keeps, so that a job's creation time names the one
// submission that created it, however many race.
type uniqueClock struct {
	mu   sync.Mutex
	last time.Time
}

// now is the current UTC time to the microsecond, or a microsecond past
// the last one handed out if that is not earlier.
func (c *uniqueClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(c.last) {
		t = c.last.Add(time.Microsecond)
	}
	c.last = t
	return t
}
