// Package lifecycle holds the rules of faas.Store that do not depend on the
// database: input validation, the precision of stored times, and what a
// fenced job operation answers when its conditional update matched nothing.
// Both backends use it, so they cannot drift apart on the semantics the
// conformance suite checks.
package lifecycle

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"faas/proxies/faas"
)

// Now is the current time as the stores keep it: UTC, to the microsecond,
// because that is what SQLite integers and MongoDB documents hold exactly.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Micros encodes t for storage; the zero time is 0.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// Time decodes Micros; 0 is the zero time.
func Time(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// User validates u and fills in its creation time.
func User(u faas.User) (faas.User, error) {
	if u.Name == "" {
		return u, faas.Errorf(faas.Invalid, "user name is empty")
	}
	if u.TokenHash == "" {
		return u, faas.Errorf(faas.Invalid, "user %s has no token hash", u.Name)
	}
	u.Created = stamp(u.Created)
	return u, nil
}

// TokenHash validates SetTokenHash's arguments.
func TokenHash(name, tokenHash string) error {
	if name == "" || tokenHash == "" {
		return faas.Errorf(faas.Invalid, "user needs a name and a token hash")
	}
	return nil
}

// TokenTaken is SetTokenHash's answer when another user has the hash.
func TokenTaken(name string) error {
	return faas.Errorf(faas.Conflict, "the token of user %s is another user's", name)
}

// ExistingUser decides CreateUser when the insert did nothing, given the
// lookup of u's name: the same token hash means a retried request, another
// a conflict, and no user of that name means the token is someone else's.
func ExistingUser(u, existing faas.User, lookupErr error) error {
	switch {
	case faas.ErrorCode(lookupErr) == faas.NotFound:
		return faas.Errorf(faas.Conflict, "user %s: token already in use", u.Name)
	case lookupErr != nil:
		return lookupErr
	case existing.TokenHash == u.TokenHash:
		return nil
	default:
		return faas.Errorf(faas.Conflict, "user %s already exists", u.Name)
	}
}

// UserNotFound is the error for a missing user.
func UserNotFound(name string) error { return faas.Errorf(faas.NotFound, "user %s not found", name) }

// FunctionNotFound is the error for a missing function.
func FunctionNotFound(owner, name string) error {
	return faas.Errorf(faas.NotFound, "function %s of user %s not found", name, owner)
}

// VersionNotFound is the error for a function version no longer kept.
func VersionNotFound(owner, name string, version int64) error {
	return faas.Errorf(faas.NotFound, "version %d of function %s of user %s not found", version, name, owner)
}

// JobNotFound is the error for a missing job.
func JobNotFound(id string) error { return faas.Errorf(faas.NotFound, "job %s not found", id) }

// Function validates f and stamps it as updated now. The caller assigns
// the version with NextVersion.
func Function(f faas.Function) (faas.Function, error) {
	if f.Owner == "" || f.Name == "" {
		return f, faas.Errorf(faas.Invalid, "function needs an owner and a name")
	}
	if f.Timeout < 0 || f.MemoryMB < 0 || f.Concurrency < 0 {
		return f, faas.Errorf(faas.Invalid, "function %s has negative limits", f.Name)
	}
	f.Updated = Now()
	return f, nil
}

// Page validates a FunctionPage.
func Page(p faas.FunctionPage) error {
	if p.Limit < 0 {
		return faas.Errorf(faas.Invalid, "function page limit is %d, want >= 0 (0 for no limit)", p.Limit)
	}
	return nil
}

// JobPage validates a JobPage.
func JobPage(p faas.JobPage) error {
	if p.Limit < 0 {
		return faas.Errorf(faas.Invalid, "job page limit is %d, want >= 0 (0 for no limit)", p.Limit)
	}
	if p.State != "" && !p.State.Valid() {
		return faas.Errorf(faas.Invalid, "job state %q is not one of queued, running, succeeded, failed", p.State)
	}
	if p.BeforeCreated.IsZero() != (p.BeforeID == "") {
		return faas.Errorf(faas.Invalid, "a job page starts after a creation time and an ID, both or neither")
	}
	return nil
}

// FailedLimit validates FailedJobs' limit: a positive one, since the
// listing spans every user and must stay bounded.
func FailedLimit(limit int) error {
	if limit <= 0 {
		return faas.Errorf(faas.Invalid, "failed jobs limit is %d, want > 0", limit)
	}
	return nil
}

// PendingLimit validates the limit of a page of PendingJobs.
func PendingLimit(limit int) error {
	if limit <= 0 || limit > faas.MaxPendingPage {
		return faas.Errorf(faas.Invalid, "pending jobs page limit is %d, want 1 to %d", limit, faas.MaxPendingPage)
	}
	return nil
}

// PendingPage is the page of PendingJobs that jobs, at most limit of
// them, make: a full page names, as the next page's cursor, the key of
// its last job in the store's order, which key gives.
func PendingPage(jobs []faas.Job, limit int, key func(faas.Job) any) faas.PendingPage {
	page := faas.PendingPage{Jobs: jobs}
	if len(jobs) < limit {
		return page
	}
	b, err := json.Marshal(key(jobs[len(jobs)-1]))
	if err != nil {
		panic(fmt.Sprintf("cursor of job %s: %v", jobs[len(jobs)-1].ID, err)) // keys are plain values
	}
	page.Next = string(b)
	return page
}

// ParseCursor decodes into key the cursor after, which PendingPage made;
// "" leaves key as it is, the start.
func ParseCursor(after string, key any) error {
	if after == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(after), key); err != nil {
		return faas.Errorf(faas.Invalid, "pending jobs cursor %.80q is not one this store made", after)
	}
	return nil
}

// NextVersion is the version of a function stored at now whose previous
// version was prev (0 if there was none): max(prev+1, now in Unix
// microseconds). It grows on every replacement, and a function deleted and
// created again starts above every version it had before, as long as the
// clock does not go back, with no record kept of deleted functions.
func NextVersion(prev int64, now time.Time) int64 {
	return max(prev+1, now.UnixMicro())
}

// Created is the creation time of a function stored at now over old:
// now if the function is new, else old's, which a replacement keeps.
func Created(old faas.Function, created bool, now time.Time) time.Time {
	if created {
		return now
	}
	return old.Created
}

// SameFunction reports whether a replacement changes nothing a worker runs,
// so that a retried PutFunction does not bump the version again.
func SameFunction(a, b faas.Function) bool {
	return a.Source == b.Source && a.Timeout == b.Timeout && a.MemoryMB == b.MemoryMB && a.Concurrency == b.Concurrency &&
		maps.Equal(a.Env, b.Env) && maps.Equal(a.Secrets, b.Secrets)
}

// KeepSettings gives f, about to replace old, old's env and secrets where
// f leaves them nil (see faas.Function), and drops empty maps so that
// stored and read-back functions compare equal.
func KeepSettings(old, f faas.Function) faas.Function {
	if f.Env == nil {
		f.Env = old.Env
	}
	if f.Secrets == nil {
		f.Secrets = old.Secrets
	}
	if len(f.Env) == 0 {
		f.Env = nil
	}
	if len(f.Secrets) == 0 {
		f.Secrets = nil
	}
	return f
}

// Redacted is f as Function, Functions and PutFunction answer it: its
// secrets by name, with empty values. Only FunctionVersion, which the
// worker calls to run it, answers their values.
func Redacted(f faas.Function) faas.Function {
	if len(f.Secrets) == 0 {
		return f
	}
	names := make(map[string]string, len(f.Secrets))
	for k := range f.Secrets {
		names[k] = ""
	}
	f.Secrets = names
	return f
}

// settings is how a database column holds a function's env and secrets.
type settings struct {
	Env     map[string]string `json:"env,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// EncodeSettings is f's env and secrets as one JSON text, empty when it
// has neither.
func EncodeSettings(f faas.Function) string {
	if len(f.Env) == 0 && len(f.Secrets) == 0 {
		return ""
	}
	b, _ := json.Marshal(settings{Env: f.Env, Secrets: f.Secrets})
	return string(b)
}

// DecodeSettings fills in f's env and secrets from EncodeSettings' text.
func DecodeSettings(f faas.Function, text string) (faas.Function, error) {
	if text == "" {
		return f, nil
	}
	var s settings
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return f, fmt.Errorf("function %s settings: %w", f.Name, err)
	}
	f.Env, f.Secrets = s.Env, s.Secrets
	return f, nil
}

// Job validates a new job and sets its initial state; the caller fills in
// the function's version. The state is queued, unless the job comes
// running at attempt 1 by a worker: then it is created already leased to
// that worker, started at its Started (now if zero), which is how the
// queue spares a waiting worker's lease a write of its own.
func Job(j faas.Job) (faas.Job, error) {
	if j.ID == "" || j.Owner == "" || j.Function == "" {
		return j, faas.Errorf(faas.Invalid, "job needs an id, an owner and a function")
	}
	if len(j.Args) == 0 || string(j.Args) == "null" {
		// A proxy's JSON turns missing arguments into null.
		j.Args = json.RawMessage("[]")
	}
	if Leased(j) {
		j.Started = stamp(j.Started)
	} else {
		// A job queued at an attempt (the queue revoked attempt 1, which
		// it had handed over) goes on from the next one, so that a late
		// outcome of the revoked one is fenced off as any stale
		// attempt's.
		j.State, j.Attempt, j.Worker, j.Started = faas.Queued, max(j.Attempt, 0), "", time.Time{}
	}
	j.Created = stamp(j.Created)
	j.Finished = time.Time{}
	j.Result, j.Error, j.Logs, j.Lost = nil, nil, "", nil
	j.Duration, j.Billed = 0, 0
	j.Children, j.Calls, j.CallsTruncated = nil, nil, false
	return j, nil
}

// Leased reports whether CreateJob creates j already leased: running, at
// attempt 1, by a worker.
func Leased(j faas.Job) bool {
	return j.State == faas.Running && j.Attempt == 1 && j.Worker != ""
}

// LeasedVersion is the version a job created leased must be created at:
// the one its worker was handed, when the queue handed it over before
// the creation was answered; 0 is whatever version is current.
func LeasedVersion(j faas.Job) int64 {
	if Leased(j) {
		return j.Version
	}
	return 0
}

// CheckVersion decides the creation of j, of a function whose current
// version is current: a job handed over at another version is refused
// with Conflict, and nothing is created.
func CheckVersion(j faas.Job, current int64) error {
	if v := LeasedVersion(j); v != 0 && v != current {
		return faas.Errorf(faas.Conflict, "function %s of user %s is at version %d, not %d", j.Function, j.Owner, current, v)
	}
	return nil
}

// ExistingJob decides CreateJob when the ID is taken: the same owner gets
// the stored job back (a retried submission), anyone else a conflict.
func ExistingJob(existing faas.Job, owner string) (faas.Job, error) {
	if existing.Owner == owner {
		return existing, nil
	}
	return faas.Job{}, faas.Errorf(faas.Conflict, "job id %s is taken", existing.ID)
}

// Start validates StartJob's arguments.
func Start(id string, attempt int, worker string) error {
	if id == "" || attempt < 1 || worker == "" {
		return faas.Errorf(faas.Invalid, "start job %q: need an id, an attempt >= 1 and a worker", id)
	}
	return nil
}

// Started applies a successful start to a queued job.
func Started(j faas.Job, attempt int, worker string, now time.Time) faas.Job {
	j.State, j.Attempt, j.Worker, j.Started = faas.Running, attempt, worker, now
	return j
}

// FunctionGone fails a queued job whose function version was deleted,
// instead of starting it. It keeps its attempt: none ran.
func FunctionGone(j faas.Job, now time.Time) faas.Job {
	j.State, j.Finished = faas.Failed, now
	j.Error = faas.Errorf(faas.FunctionDeleted, "function %s was deleted before job %s ran", j.Function, j.ID)
	return j
}

// StartRefused answers a StartJob whose conditional update matched nothing,
// given the job as it is now: the same lease again is a retry, and so is
// any start of a job FunctionGone failed, which answers the same error.
func StartRefused(j faas.Job, attempt int, worker string) (faas.Job, error) {
	if j.State == faas.Running && j.Attempt == attempt && j.Worker == worker {
		return j, nil
	}
	if j.State == faas.Failed && j.Error != nil && j.Error.Code == faas.FunctionDeleted {
		return faas.Job{}, j.Error
	}
	return faas.Job{}, faas.Errorf(faas.Conflict, "job %s is %s at attempt %d, cannot start attempt %d", j.ID, j.State, j.Attempt, attempt)
}

// Requeue validates RequeueJob's arguments.
func Requeue(id string, attempt int, reason *faas.Error) error {
	if id == "" || attempt < 1 || reason == nil {
		return faas.Errorf(faas.Invalid, "requeue job %q: need an id, an attempt >= 1 and a reason", id)
	}
	return nil
}

// Requeued applies a successful requeue to a running job.
func Requeued(j faas.Job, reason *faas.Error) faas.Job {
	j.State, j.Worker = faas.Queued, ""
	j.Lost = append(slices.Clip(j.Lost), reason)
	return j
}

// RequeueRefused answers a RequeueJob whose conditional update matched
// nothing: the job already requeued for this reason is a retry.
func RequeueRefused(j faas.Job, attempt int, reason *faas.Error) (faas.Job, error) {
	if j.State == faas.Queued && j.Attempt == attempt && len(j.Lost) > 0 && *j.Lost[len(j.Lost)-1] == *reason {
		return j, nil
	}
	return faas.Job{}, faas.Errorf(faas.Conflict, "job %s is %s at attempt %d, cannot requeue attempt %d", j.ID, j.State, j.Attempt, attempt)
}

// Complete validates a completion and returns the state it leads to.
func Complete(c faas.Completion) (faas.JobState, error) {
	switch {
	case c.JobID == "" || c.Attempt < 1:
		return "", faas.Errorf(faas.Invalid, "complete job %q: need an id and an attempt >= 1", c.JobID)
	case c.Duration < 0:
		return "", faas.Errorf(faas.Invalid, "complete job %s: negative duration", c.JobID)
	case c.Error != nil && len(c.Result) > 0:
		return "", faas.Errorf(faas.Invalid, "complete job %s: both a result and an error", c.JobID)
	case len(c.Calls) > faas.MaxCalls:
		return "", faas.Errorf(faas.Invalid, "complete job %s: %d calls, at most %d are kept", c.JobID, len(c.Calls), faas.MaxCalls)
	case c.Error != nil:
		return faas.Failed, nil
	default:
		return faas.Succeeded, nil
	}
}

// Completed applies a completion to a running job.
func Completed(j faas.Job, c faas.Completion, state faas.JobState, now time.Time) faas.Job {
	j.State, j.Finished = state, now
	j.Result, j.Error = c.Result, c.Error
	if len(j.Result) == 0 || c.Error != nil {
		j.Result = nil
	}
	j.Duration, j.Billed, j.Logs, j.Streams = c.Duration, c.Duration, c.Logs, c.Streams
	j.Calls, j.CallsTruncated = c.Calls, c.CallsTruncated
	return j
}

// CompleteRefused answers a CompleteJob whose conditional update matched
// nothing: a job this attempt already finished is a retry.
func CompleteRefused(j faas.Job, attempt int) (faas.Job, error) {
	if j.State.Finished() && j.Attempt == attempt {
		return j, nil
	}
	return faas.Job{}, faas.Errorf(faas.Conflict, "job %s is %s at attempt %d, cannot complete attempt %d", j.ID, j.State, j.Attempt, attempt)
}

func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Hook validates h and fills in its creation time.
func Hook(h faas.Hook) (faas.Hook, error) {
	if len(h.Hash) < faas.HookIDLen || h.ID != h.Hash[:faas.HookIDLen] {
		return h, faas.Errorf(faas.Invalid, "hook id %q is not the first %d digits of its hash", h.ID, faas.HookIDLen)
	}
	if h.Owner == "" || h.Function == "" {
		return h, faas.Errorf(faas.Invalid, "hook %s names no function", h.ID)
	}
	h.Created = stamp(h.Created)
	return h, nil
}

// ExistingHook is CreateHook's answer when the hash is already stored:
// a retry of the same creation succeeds, anything else conflicts.
func ExistingHook(h, existing faas.Hook) error {
	if existing.Owner == h.Owner && existing.Function == h.Function {
		return nil
	}
	return faas.Errorf(faas.Conflict, "hook %s exists for another function", h.ID)
}

// HookNotFound is the answer for an unknown or revoked hook, named by its
// ID or its hash; of a hash it shows only the ID, never the whole key.
func HookNotFound(id string) error {
	return faas.Errorf(faas.NotFound, "hook %.*s not found", faas.HookIDLen, id)
}

// Schedule validates s for PutSchedule and stamps it put now, with no
// tick fired. The cron expression and zone are the frontend's to check:
// the Store keeps them as text.
func Schedule(s faas.Schedule) (faas.Schedule, error) {
	if s.Owner == "" || s.Function == "" || s.Cron == "" {
		return s, faas.Errorf(faas.Invalid, "schedule of %q needs an owner, a function and a cron expression", s.Function)
	}
	if len(s.Args) == 0 || string(s.Args) == "null" {
		// A proxy's JSON turns missing arguments into null.
		s.Args = json.RawMessage("[]")
	}
	s.Updated, s.LastTick = stamp(s.Updated), time.Time{}
	return s, nil
}

// ScheduleNotFound is the answer for a function without a schedule.
func ScheduleNotFound(owner, function string) error {
	return faas.Errorf(faas.NotFound, "function %s/%s has no schedule", owner, function)
}

// Subscription validates sub and fills in its creation time. The
// frontend checks the names first; this keeps a bad topic out of the
// store whoever calls.
func Subscription(sub faas.Subscription) (faas.Subscription, error) {
	if !faas.ValidName(sub.Topic) {
		return sub, faas.Errorf(faas.Invalid, "invalid topic name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", sub.Topic, faas.MaxNameLen)
	}
	if sub.Owner == "" || sub.Function == "" {
		return sub, faas.Errorf(faas.Invalid, "subscription to %s names no function", sub.Topic)
	}
	sub.Created = stamp(sub.Created)
	return sub, nil
}

// SubscriptionNotFound is the error for unsubscribing what was not
// subscribed.
func SubscriptionNotFound(owner, function, topic string) error {
	return faas.Errorf(faas.NotFound, "function %s of user %s is not subscribed to topic %s", function, owner, topic)
}
