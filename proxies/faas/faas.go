// Package faas holds the platform's domain: users, functions and jobs, the
// structured Error that crosses process boundaries, and the two service
// interfaces (Store and JobQueue). It depends on nothing but the standard
// library so every component, and every proxy, can share it.
package faas

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// User is a registered account. Only the hash of its bearer token is kept.
type User struct {
	Name      string    `json:"name"`
	TokenHash string    `json:"token_hash"`
	Created   time.Time `json:"created"`
}

// Function is a user's JavaScript source. Version is assigned by the Store
// on every creation and replacement as max(previous+1, Unix microseconds
// now), so it only grows for a given owner and name, and is never reused
// even when the function is deleted and created again: compiled programs
// are cached per (owner, name, version).
type Function struct {
	Owner   string        `json:"owner"`
	Name    string        `json:"name"`
	Source  string        `json:"src"`
	Version int64         `json:"version"`
	Timeout time.Duration `json:"timeout"`
	// MemoryMB is the sandbox memory cap; 0 means the worker's default.
	MemoryMB int `json:"memory_mb,omitempty"`
	// Concurrency is the most jobs of the function that may run at once
	// across the platform; 0 means no limit beyond the per-user one.
	Concurrency int `json:"concurrency,omitempty"`
	// Created is when the function was first stored; replacements keep
	// it, so it tells how long the name has held a function.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Env holds values the function reads as faas.env.K. In PutFunction a
	// nil map keeps the previous version's and a non-nil one, even empty,
	// replaces them; that is why the field is never omitted on the wire
	// (null and {} must stay apart).
	Env map[string]string `json:"env"`
	// Secrets are read like Env but stored encrypted by the DB manager,
	// which answers them decrypted only in FunctionVersion (the worker's
	// call); Function and Functions answer their names with empty values.
	// PutFunction keeps or replaces them as it does Env.
	Secrets map[string]string `json:"secrets"`
}

// Hook is a webhook: whoever holds its URL, /hook/<secret>, runs the
// function as its owner. Only the SHA-256 of the secret is stored, so a
// read of the database yields no live URL.
type Hook struct {
	// Hash is the hex SHA-256 of the secret in the URL; the Store's key.
	Hash string `json:"hash"`
	// ID is the first HookIDLen hex digits of Hash: it names the hook in
	// listings and revocations without being the capability.
	ID       string    `json:"id"`
	Owner    string    `json:"owner"`
	Function string    `json:"function"`
	Created  time.Time `json:"created"`
}

// HookIDLen is the length of a Hook's ID.
const HookIDLen = 16

// Schedule runs a function on the ticks of a cron expression: each tick
// submits one job with Args. A function has at most one schedule.
type Schedule struct {
	Owner    string `json:"owner"`
	Function string `json:"function"`
	// Cron is a five-field cron expression, a descriptor such as @hourly,
	// or @every and a duration of whole seconds, at least 1s.
	Cron string `json:"cron"`
	// Timezone is the IANA zone the cron fields are read in.
	Timezone string          `json:"timezone"`
	Args     json.RawMessage `json:"args"`
	// Updated is when the schedule was put: its ticks are those after it.
	// It also tells one schedule of a function from the one replacing it.
	Updated time.Time `json:"updated"`
	// LastTick is the latest tick fired, or, when ticks missed while the
	// platform was down were fired as one, when that happened: no tick up
	// to it fires again. Zero until the first tick.
	LastTick time.Time `json:"last_tick,omitzero"`
}

// Subscription binds a function to one of its owner's topics: every event
// published to the topic runs the function once, with [event]. Topics
// exist only through their subscriptions; they are named like functions.
type Subscription struct {
	Owner    string    `json:"owner"`
	Function string    `json:"function"`
	Topic    string    `json:"topic"`
	Created  time.Time `json:"created"`
}

// SubscriptionFilter selects some of a user's subscriptions; an empty
// field matches every value.
type SubscriptionFilter struct {
	Function string `json:"function,omitempty"`
	Topic    string `json:"topic,omitempty"`
}

// MaxNameLen bounds user, function and topic names.
const MaxNameLen = 64

// ValidName reports whether s is a user, function or topic name: 1-64
// letters, digits, '_', '.' or '-', not dots alone. Names go into URLs,
// logs and database keys, so nothing that needs escaping in any of them
// is allowed, and nothing a path would read as "here" or "up" (".", "..").
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// JobState is where a job is in its life.
type JobState string

// The job states. A job moves queued -> running -> succeeded|failed; a
// running job whose lease is lost goes back to queued.
const (
	Queued    JobState = "queued"
	Running   JobState = "running"
	Succeeded JobState = "succeeded"
	Failed    JobState = "failed"
)

// Finished reports whether the state is terminal.
func (s JobState) Finished() bool { return s == Succeeded || s == Failed }

// Job is one execution of a function with arguments.
type Job struct {
	ID       string `json:"id"`
	Owner    string `json:"owner"`
	Function string `json:"function"`
	// Version is the function version current when the job was submitted.
	Version int64 `json:"version"`
	// Concurrency is that version's Function.Concurrency, copied by the
	// Store when it creates the job, so that the job queue enforces the
	// limit without reading the function, also after a restart.
	Concurrency int `json:"concurrency,omitempty"`
	// Args is nil, and left out of the JSON, in a listing of jobs.
	Args  json.RawMessage `json:"args,omitempty"`
	State JobState        `json:"state"`
	// Attempt counts the times the job was handed to a worker. Completions
	// are fenced by it: only the current attempt may finish the job.
	Attempt int `json:"attempt"`
	// Worker holds the lease of a running job.
	Worker   string    `json:"worker,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Result is the JSON value the function returned (succeeded jobs).
	Result json.RawMessage `json:"result,omitempty"`
	// Error says why a failed job failed.
	Error *Error `json:"error,omitempty"`
	// Duration is the execution wall time; Billed is what the owner paid.
	Duration time.Duration `json:"duration"`
	Billed   time.Duration `json:"billed"`
	Logs     string        `json:"logs,omitempty"`
	// Streams records the console stream of each line of Logs (see
	// LineStreams); empty when every line is console.log's.
	Streams string `json:"streams,omitempty"`
	// Lost says, oldest first, why each earlier attempt lost its lease.
	Lost []*Error `json:"lost,omitempty"`
	// Trace is the W3C traceparent of the span that queued the job, kept
	// with it so that the spans of its queue wait, lease, run and
	// completion, in other processes and later, join the submission's
	// trace. Empty for jobs submitted outside a trace.
	Trace string `json:"trace,omitempty"`
	// Trigger says what submitted the job when it was not a request to
	// run it: TriggerWebhook, TriggerSchedule, TriggerJob or TriggerTopic.
	// Empty for a run requested through the API.
	Trigger string `json:"trigger,omitempty"`
	// Parent is the job whose faas.submit created this one; empty for
	// any other job.
	Parent string `json:"parent,omitempty"`
	// Children are the jobs this one created with faas.submit, oldest
	// first. The Store derives them from the children's Parent when it
	// reads one job; a listing leaves them out.
	Children []string `json:"children,omitempty"`
	// Calls are the fused calls (faas.call) of the attempt that finished
	// the job, in the order they started, at most MaxCalls of them;
	// CallsTruncated says that more were made.
	Calls          []Call `json:"calls,omitempty"`
	CallsTruncated bool   `json:"calls_truncated,omitempty"`
}

// The Triggers of jobs not requested through the API.
const (
	// TriggerWebhook is the Trigger of a job a webhook submitted.
	TriggerWebhook = "webhook"
	// TriggerSchedule is the Trigger of a job a schedule's tick submitted.
	TriggerSchedule = "schedule"
	// TriggerJob is the Trigger of a job another job submitted with
	// faas.submit; its Parent names that job.
	TriggerJob = "job"
	// TriggerTopic is the Trigger of a job a publish to a topic its
	// function subscribes to created.
	TriggerTopic = "topic"
)

// Call is one fused call a job made with faas.call: the callee ran inside
// the caller's sandbox, billed as part of the caller's time.
type Call struct {
	Function string `json:"function"`
	// Version is the callee's version the call ran; 0 when the call
	// failed before one was found.
	Version int64 `json:"version,omitempty"`
	// Duration is the call's wall time, the callee's async waits
	// included.
	Duration time.Duration `json:"duration"`
	// Error says why the call's promise rejected; nil if it resolved.
	Error *Error `json:"error,omitempty"`
}

// The bounds of what one job may do to other functions.
const (
	// MaxCalls bounds the fused calls a job's record lists; the calls
	// themselves are bounded by the job's time only.
	MaxCalls = 100
	// MaxChildren bounds the jobs one job may submit with faas.submit.
	MaxChildren = 100
)

// Completion is a worker's report that it finished one attempt of a job.
type Completion struct {
	JobID   string `json:"job_id"`
	Attempt int    `json:"attempt"`
	// Exactly one of Result and Error is set.
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *Error          `json:"error,omitempty"`
	Duration time.Duration   `json:"duration"`
	Logs     string          `json:"logs,omitempty"`
	// Streams is the stream record of Logs, as in Job.
	Streams string `json:"streams,omitempty"`
	// Calls and CallsTruncated are the attempt's fused calls, as in Job.
	Calls          []Call `json:"calls,omitempty"`
	CallsTruncated bool   `json:"calls_truncated,omitempty"`
}

// Bytes is what c carries, for MaxBatchBytes.
func (c Completion) Bytes() int {
	n := len(c.Result) + len(c.Logs) + len(c.Streams)
	if c.Error != nil {
		n += len(c.Error.Message)
	}
	return n
}

// LogLine is one line a job printed on the console, without its newline.
// Offset is its 0-based line number in the job's output, so a reader can
// resume after the last line it saw.
type LogLine struct {
	Offset int    `json:"offset"`
	Stream string `json:"stream"`
	Line   string `json:"line"`
}

// The console streams a LogLine comes from: console.log (and debug),
// info, warn and error.
const (
	StreamLog   = "log"
	StreamInfo  = "info"
	StreamWarn  = "warn"
	StreamError = "error"
)

// streamLetters are the letters of a stream record (AppendStreams), in
// the order of the streams; a line past a record's end is StreamLog's.
var streamLetters = [...]struct {
	letter byte
	stream string
}{{'l', StreamLog}, {'i', StreamInfo}, {'w', StreamWarn}, {'e', StreamError}}

// AppendStreams appends to record one letter per line of the output that
// lines print, in order: a LogLine whose text holds newlines is several
// lines once the output is stored as text. The record keeps the streams
// of a finished job's lines at one byte a line; a job that only used
// console.log needs none, so TrimStreams drops the trailing 'l's.
func AppendStreams(record []byte, lines []LogLine) []byte {
	for _, l := range lines {
		letter := streamLetters[0].letter
		for _, s := range streamLetters {
			if s.stream == l.Stream {
				letter = s.letter
			}
		}
		for range strings.Count(l.Line, "\n") + 1 {
			record = append(record, letter)
		}
	}
	return record
}

// TrimStreams is the record to store: without its trailing 'l's, which
// a reader assumes, so that an ordinary job stores an empty one.
func TrimStreams(record []byte) string {
	return strings.TrimRight(string(record), string(streamLetters[0].letter))
}

// LineStream is the stream of line i (0-based) of an output whose stream
// record is record: StreamLog past its end (the lines of console.log, and
// the marker of truncated output) or for a letter it does not know.
func LineStream(record string, i int) string {
	if i < len(record) {
		for _, s := range streamLetters {
			if s.letter == record[i] {
				return s.stream
			}
		}
	}
	return StreamLog
}

// JobResult is the outcome of one row of a batch: the job as stored, or
// why that row was refused.
type JobResult struct {
	Job   Job    `json:"job,omitzero"`
	Error *Error `json:"error,omitempty"`
}

// PendingPage is one page of the pending jobs: the jobs, and the cursor
// of the next page, "" after the last.
type PendingPage struct {
	Jobs []Job  `json:"jobs"`
	Next string `json:"next,omitempty"`
}

// MaxPendingPage bounds a page of PendingJobs: 10,000 jobs without their
// payloads make a reply of a few megabytes.
const MaxPendingPage = 10000

// MaxBatch bounds the rows of one batch call (CreateJobs, StartJobs,
// CompleteJobs, a worker's Next and Complete), so that one request stays
// small on the bus and one transaction short in the database.
const MaxBatch = 64

// MaxBatchBytes bounds what the rows of one batch carry (arguments,
// results, logs), as Completion.Bytes and the length of a Job's Args
// measure it: JSON may grow that sixfold by escaping, and the bus refuses
// a message over 32 MiB. A row bigger than that goes in a batch alone.
const MaxBatchBytes = 4 << 20

// SlotsPerCPU is how many jobs a worker runs at once per CPU unless
// FAAS_WORKER_CONCURRENCY says otherwise; the worker and the scaler
// share it. A slot spends most of a short job waiting for the bus (the
// lease, the sandbox's answer), not on a CPU: with one slot per CPU the
// polling workload of faas bench ran 157-204 jobs/s on two cores, with
// four 463-593, back to back. Later, on a quiet machine, four per CPU
// gave 2,478-2,515 async jobs/s and eight 3,101-3,267 (16 per CPU:
// 3,894), each further sandbox costing about 5 MB of private memory.
const SlotsPerCPU = 8

// Lease names one attempt of a job held by a worker.
type Lease struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// Start is one row of StartJobs: the job, the attempt it starts, and the
// worker it is leased to. Each row names its worker, so that the leases
// of several workers' polls go to the Store in one batch.
type Start struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker"`
}

// Stats is the job queue's view of the platform, for the scaler and operators.
type Stats struct {
	Queued  int `json:"queued"`
	Running int `json:"running"`
	// Held counts the queued jobs that cannot start until a job of their
	// user's, or of their function's, ends, because the user is at the
	// running limit or the function at its concurrency limit. They are part
	// of Queued, but more workers would not start them sooner.
	Held int `json:"held"`
	// Workers is the number of workers seen recently.
	Workers int `json:"workers"`
	// Completed counts jobs finished since the queue started.
	Completed int64 `json:"completed"`
	// JobsPerSec is the completion rate over the last minute (or since
	// the queue started, if that is shorter).
	JobsPerSec float64 `json:"jobs_per_sec"`
	// AvgDuration is the recent average execution time of a job.
	AvgDuration time.Duration `json:"avg_duration"`
}

// FunctionPage selects a page of a user's functions, which are listed in
// name order. The zero value is every function, with its source.
type FunctionPage struct {
	// After is the name the page starts after; empty for the first page.
	After string `json:"after,omitempty"`
	// Limit is the most functions the page holds; 0 means no limit.
	Limit int `json:"limit,omitempty"`
	// NoSource leaves Source empty, so that listing names and settings
	// reads no source from the database and sends none over the wire.
	NoSource bool `json:"no_source,omitempty"`
}

// JobPage selects a page of a user's jobs, which are listed newest first:
// by creation time, then by ID, both descending. The zero value is every
// job.
type JobPage struct {
	// Function and State, when set, keep only the jobs that match.
	Function string   `json:"function,omitempty"`
	State    JobState `json:"state,omitempty"`
	// BeforeCreated and BeforeID are the creation time and ID of the last
	// job of the previous page; the page starts after it. Zero for the
	// first page.
	BeforeCreated time.Time `json:"before_created,omitzero"`
	BeforeID      string    `json:"before_id,omitempty"`
	// Limit is the most jobs the page holds; 0 means no limit.
	Limit int `json:"limit,omitempty"`
}

// Valid reports whether s is one of the job states.
func (s JobState) Valid() bool {
	return s == Queued || s == Running || s == Succeeded || s == Failed
}

// Usage is what one user keeps in the Store.
type Usage struct {
	Functions int `json:"functions"`
	// SourceBytes is the total size of the functions' sources.
	SourceBytes int64 `json:"source_bytes"`
	// JobBytes is the total size of the arguments, results and logs of
	// the user's jobs still retained (not yet deleted or purged).
	JobBytes int64 `json:"job_bytes"`
}

// EventKind says what an Event reports.
type EventKind string

// The event kinds.
const (
	// JobFinished: the job left the queue. Job is its outcome when the
	// queue knows it (without logs or arguments, and only when the result
	// is small); otherwise the reader of the event reads the Store.
	JobFinished EventKind = "job_finished"
	// UserRevoked: the user was deleted or their token replaced; the
	// tokens cached for them are void at once.
	UserRevoked EventKind = "user_revoked"
	// JobLogs: the running job printed Lines. Lines is empty when the
	// batch was too large to carry: the reader asks the queue's Logs.
	JobLogs EventKind = "job_logs"
	// JobDeleted: the job was deleted from the Store (Forget), so that
	// every frontend drops what it remembers of it.
	JobDeleted EventKind = "job_deleted"
)

// Event is something the job queue tells every frontend at once, in the
// order of Seq.
type Event struct {
	Seq   uint64    `json:"seq"`
	Kind  EventKind `json:"kind"`
	JobID string    `json:"job_id,omitempty"`
	Job   *Job      `json:"job,omitempty"`
	User  string    `json:"user,omitempty"`
	Lines []LogLine `json:"lines,omitempty"`
}

// MaxEventsPage bounds the events one page carries. A shorter page holds
// every event up to the moment the queue read it, which is how a reader
// knows it has caught up (jqproxy.Watch.CaughtUp).
const MaxEventsPage = 512

// Events is one page of the job queue's events.
type Events struct {
	List []Event `json:"list,omitempty"`
	// Next is the cursor to ask from next time.
	Next uint64 `json:"next"`
	// Gap reports that events after the cursor asked from are lost (the
	// reader fell behind the queue's bounded memory of them, the queue
	// restarted, or the cursor was 0): the reader must recheck whatever
	// it was waiting for.
	Gap bool `json:"gap,omitempty"`
}

// JobStatus is the job queue's answer about one job (JobQueue.Status).
type JobStatus struct {
	// Job is the job while the queue holds it, queued or running: the
	// Store's record as of the queue's last change to it, without the
	// arguments, result and logs, which the queue does not keep. Nil when
	// the queue does not hold the job (finished, deleted, or never
	// queued): the caller reads the Store.
	Job *Job `json:"job,omitempty"`
	// Seq is the sequence number of the queue's newest event when it
	// answered. A job that had left the queue by then has its JobFinished
	// (or JobDeleted) event at or before Seq, so a reader of the events
	// that got that far has heard of it.
	Seq uint64 `json:"seq"`
}

// Store is the platform's durable state. The DB manager implements it over a
// database; its proxy implements it over ZeroMQ.
//
// Every method is idempotent under retry with the same arguments, because a
// proxy resends a request whose reply was lost.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error

	// CreateUser adds a user; Conflict if the name is taken by another token.
	CreateUser(ctx context.Context, u User) error
	// User returns a user by name; NotFound if there is none.
	User(ctx context.Context, name string) (User, error)
	// UserByToken returns the user whose token hashes to tokenHash.
	UserByToken(ctx context.Context, tokenHash string) (User, error)
	// SetTokenHash replaces the hash of a user's token, which voids the
	// old token; NotFound if there is no such user, Conflict if another
	// user has this hash. Setting the hash the user has is a no-op.
	SetTokenHash(ctx context.Context, name, tokenHash string) error
	// DeleteUser removes a user with all of their functions, jobs and billing.
	DeleteUser(ctx context.Context, name string) error
	// BilledTime is the user's total billed execution time.
	BilledTime(ctx context.Context, name string) (time.Duration, error)

	// PutFunction creates or replaces a function, assigning its version.
	// created reports whether it did not exist before. NotFound if the owner
	// does not exist. The version replaced stays readable through
	// FunctionVersion while a queued or running job was submitted with it;
	// versions no such job needs are dropped here and by PurgeJobs.
	PutFunction(ctx context.Context, f Function) (stored Function, created bool, err error)
	// Function returns the current version of a function.
	Function(ctx context.Context, owner, name string) (Function, error)
	// FunctionVersion returns one version of a function, which a job
	// submitted with it runs whatever replaced it since. NotFound if the
	// function was deleted, or the version is neither current nor needed by
	// a pending job.
	FunctionVersion(ctx context.Context, owner, name string, version int64) (Function, error)
	// Functions lists one page of owner's functions in name order; no
	// user and a user without functions both answer an empty list.
	Functions(ctx context.Context, owner string, page FunctionPage) ([]Function, error)
	// DeleteFunction removes a function with all its versions, its hooks
	// and its schedule: its queued jobs fail with FunctionDeleted instead
	// of starting, and its jobs stay as the user's record.
	DeleteFunction(ctx context.Context, owner, name string) error

	// CreateHook stores a hook of an existing function; NotFound if the
	// function does not exist. Creating the same hash twice for the same
	// function is a no-op.
	CreateHook(ctx context.Context, h Hook) error
	// HookByHash returns the hook whose secret hashes to hash; NotFound if
	// there is none (never created, revoked, or its function deleted).
	HookByHash(ctx context.Context, hash string) (Hook, error)
	// Hooks lists a function's hooks, oldest first.
	Hooks(ctx context.Context, owner, function string) ([]Hook, error)
	// DeleteHook revokes the hook of the function with this ID; NotFound
	// if there is none.
	DeleteHook(ctx context.Context, owner, function, id string) error

	// PutSchedule creates or replaces the schedule of an existing
	// function, stamping Updated and clearing LastTick; NotFound if the
	// function does not exist.
	PutSchedule(ctx context.Context, s Schedule) (Schedule, error)
	// Schedule returns a function's schedule; NotFound if it has none.
	Schedule(ctx context.Context, owner, function string) (Schedule, error)
	// Schedules lists every schedule of every user: the job queue's
	// scheduler reads them all, which one per function bounds.
	Schedules(ctx context.Context) ([]Schedule, error)
	// DeleteSchedule removes a function's schedule; NotFound if it has none.
	DeleteSchedule(ctx context.Context, owner, function string) error
	// ScheduleFired records tick as the LastTick of the schedule put at
	// updated. A schedule replaced or deleted since, or past tick already,
	// is left alone, so a retry or a late call is a no-op.
	ScheduleFired(ctx context.Context, owner, function string, updated, tick time.Time) error
	// Subscribe subscribes an existing function to a topic of its owner;
	// created is false if it already was. NotFound if the function does
	// not exist. A function deleted, or its owner, loses its
	// subscriptions.
	Subscribe(ctx context.Context, sub Subscription) (created bool, err error)
	// Unsubscribe ends a subscription; NotFound if there is none.
	Unsubscribe(ctx context.Context, owner, function, topic string) error
	// Subscriptions lists owner's subscriptions that match filter, by
	// topic then function; no user and no match both answer an empty
	// list.
	Subscriptions(ctx context.Context, owner string, filter SubscriptionFilter) ([]Subscription, error)

	// CreateJob stores a queued job, filling in the function's version;
	// NotFound if the function does not exist. Creating the same ID twice
	// with the same owner is a no-op. A job given as running at attempt 1
	// by a worker is stored already leased to that worker, started at its
	// Started (now if zero), as StartJob would leave it: the queue's way
	// to lease a job to a worker that waits in the creation's own write.
	// Any other state, attempt or worker given is ignored.
	CreateJob(ctx context.Context, j Job) (Job, error)
	Job(ctx context.Context, id string) (Job, error)
	// Jobs lists one page of owner's jobs, newest first, without their
	// arguments, results and logs, which a listing does not show; no user
	// and a user without jobs both answer an empty list. A page costs the
	// jobs it walks, not all of the user's jobs.
	Jobs(ctx context.Context, owner string, page JobPage) ([]Job, error)
	// FailedJobs lists the newest failed jobs of every user, newest
	// created first, at most limit of them (which must be positive),
	// without arguments, results and logs: the operator's view of what
	// went wrong. Its cost is the jobs it returns, not the whole store.
	FailedJobs(ctx context.Context, limit int) ([]Job, error)
	DeleteJob(ctx context.Context, id string) error
	// StartJob leases a queued job to worker as the given attempt, which must
	// be one more than the job's current attempt (or equal to it, when the
	// same worker already holds it: a retried request). Conflict if the job
	// is no longer queued; NotFound if it was deleted. FunctionDeleted if
	// the version of its function it was submitted with was deleted: the
	// job is then failed with that code, unbilled, and a retry answers the
	// same.
	StartJob(ctx context.Context, id string, attempt int, worker string) (Job, error)
	// RequeueJob returns a running job whose lease was lost to the queue,
	// appending reason to its Lost list. It is fenced by attempt like
	// CompleteJob; a retry after success is a no-op.
	RequeueJob(ctx context.Context, id string, attempt int, reason *Error) (Job, error)
	// CompleteJob records an attempt's outcome and bills the owner
	// c.Duration, both or neither, exactly once: a retry returns the job
	// unchanged. Fenced by attempt (not worker, so the queue can fail a job
	// whose worker vanished): Conflict if the attempt no longer holds the
	// job, NotFound if it was deleted.
	CompleteJob(ctx context.Context, c Completion) (Job, error)
	// CreateJobs is CreateJob for several jobs in one write: results[i]
	// answers js[i], and one job refused (its function missing, its ID
	// another user's) fails alone. The error is for the whole batch
	// (unreachable, invalid batch), when no job was answered.
	CreateJobs(ctx context.Context, js []Job) ([]JobResult, error)
	// StartJobs is StartJob for several leases, of one worker or several,
	// in one write, answered per lease as CreateJobs is.
	StartJobs(ctx context.Context, starts []Start) ([]JobResult, error)
	// CompleteJobs is CompleteJob for several completions in one write,
	// answered per completion as CreateJobs is; each is fenced and billed
	// exactly once on its own.
	CompleteJobs(ctx context.Context, cs []Completion) ([]JobResult, error)
	// PendingJobs lists up to limit (1 to MaxPendingPage) queued and
	// running jobs from the cursor after, "" for the first page, so that
	// a restarted job queue can rebuild itself page by page. The jobs
	// come without their arguments, results and logs, which the queue
	// does not keep: a page's size does not grow with what users send.
	// Pages follow the store's own order, which the cursor holds; the
	// queue orders what it loaded.
	PendingJobs(ctx context.Context, after string, limit int) (PendingPage, error)
	// PurgeJobs deletes finished jobs that finished before cutoff and
	// returns how many it deleted. Billing is kept: a user's BilledTime
	// does not change.
	PurgeJobs(ctx context.Context, before time.Time) (int, error)

	// Usage is what owner keeps in the store, which the quotas bound;
	// NotFound if the user does not exist. Its cost grows with the
	// user's functions and retained jobs, not with the whole store.
	Usage(ctx context.Context, owner string) (Usage, error)
	// UserCount is the number of registered users.
	UserCount(ctx context.Context) (int, error)
	// FinishedCounts is how many jobs have ever finished, by outcome (see
	// Outcome). The counts are kept apart from the jobs, so purging or
	// deleting a job does not lower them: a restarted job queue starts its
	// counters from them.
	FinishedCounts(ctx context.Context) (map[string]int64, error)
}

// OutcomeOK is the outcome of a job that finished without an error.
const OutcomeOK = "ok"

// Outcome is how a finished job is counted: OutcomeOK, or the code of the
// error it failed with.
func Outcome(j Job) string {
	if j.Error == nil {
		return OutcomeOK
	}
	return string(j.Error.Code)
}

// JobQueue hands jobs to workers. The JQ manager implements it; its proxy
// implements it over ZeroMQ.
type JobQueue interface {
	// Submit makes the job durable through the Store, then queues it. The
	// caller chooses j.ID so that a retried submission is not duplicated.
	Submit(ctx context.Context, j Job) (Job, error)
	// SubmitChild is Submit for a running job's faas.submit: accepted only
	// while worker holds l (Conflict otherwise), with the owner and the
	// Parent taken from the leased job, whatever j says, and at most
	// MaxChildren per job (TooMany past it). It gives a worker the power
	// to submit jobs only for the users whose jobs it runs.
	SubmitChild(ctx context.Context, worker string, l Lease, j Job) (Job, error)
	// Publish runs every function of owner subscribed to topic once with
	// [event], and returns the ids of their jobs in the order of the
	// functions' names; none subscribed is an empty list. The jobs are
	// made durable before it answers, all or, on TooMany (they would
	// exceed owner's pending jobs), none. Their ids derive from owner,
	// topic, key and the function, so a retry under the same key creates
	// no job twice and answers the same ids.
	Publish(ctx context.Context, owner, topic string, event json.RawMessage, key string) ([]string, error)
	// PublishChild is Publish for a running job's faas.publish: accepted
	// only while worker holds l (Conflict otherwise), for the leased
	// job's owner. Like SubmitChild, it gives a worker the power to
	// publish only for the users whose jobs it runs.
	PublishChild(ctx context.Context, worker string, l Lease, topic string, event json.RawMessage, key string) ([]string, error)
	// Next leases to worker up to max (1 to MaxBatch) of the next jobs, in
	// the queue's fair order and within its caps, waiting up to wait for
	// the first; it answers as soon as one is leased, with those ready
	// then, and with none when the wait is over.
	Next(ctx context.Context, worker string, max int, wait time.Duration) ([]Job, error)
	// Withdraw ends the polls of worker that are waiting for a job: they
	// answer no job at once. A stopping worker calls it so that its stop
	// does not wait out its polls; a poll already handed a job, and any
	// poll that comes after, is answered as usual.
	Withdraw(ctx context.Context, worker string) error
	// Complete records the outcomes of attempts worker holds, at most
	// MaxBatch of them, in the Store in one batch, releases their leases
	// and hands each finished job to its waiters. The answer has one
	// entry per completion: nil when it is recorded; Conflict or NotFound
	// when its lease is lost or the job gone (the outcome is dropped);
	// any other code when the Store did not answer (retry it). A
	// completion is fenced by its lease, and bills at most the wall time
	// the lease has lasted, whatever duration it claims.
	Complete(ctx context.Context, worker string, cs []Completion) ([]*Error, error)
	// Renew is a worker's heartbeat: it extends the leases the worker holds
	// and returns those it no longer holds (expired and given to another
	// worker, or the job deleted). A worker with no jobs renews nothing
	// but still reports itself alive.
	Renew(ctx context.Context, worker string, leases []Lease) (lost []Lease, err error)
	// Release gives back a job the worker will not finish (it is shutting
	// down); the job is queued again at once.
	Release(ctx context.Context, l Lease, reason string) error
	// Forget tells the queue that the job was deleted from the Store: a
	// queued job leaves the queue, and a running job's lease is revoked,
	// so its worker stops it at its next heartbeat; a JobDeleted event
	// tells every frontend, whether or not the queue held the job.
	Forget(ctx context.Context, id string) error
	// Wait blocks up to wait for the job to leave the queue; finished is
	// false if it is still queued or running when the time is up. If the
	// job finished during the wait, j is the finished job; if it had left
	// the queue before (or never existed), j is zero and the caller reads
	// the Store.
	Wait(ctx context.Context, id string, wait time.Duration) (j Job, finished bool, err error)
	// Events returns the events after cursor since, waiting up to hold for
	// one. A process with many waits watches this one stream instead of
	// holding a request per wait.
	Events(ctx context.Context, since uint64, hold time.Duration) (Events, error)
	// AppendLogs adds lines a running attempt printed to the job's live
	// output, which lives in the queue until the job ends (the Store gets
	// the whole output with the completion) and is published as a JobLogs
	// event. Fenced like Renew: Conflict if worker no longer holds l. Lines
	// already held (a retried batch) are skipped; past the queue's cap on a
	// job's live output the rest is dropped.
	AppendLogs(ctx context.Context, worker string, l Lease, lines []LogLine) error
	// Logs returns the lines job id printed so far, from offset from on;
	// running is false when the job is not running in the queue (queued,
	// finished or unknown): the caller reads the Store.
	Logs(ctx context.Context, id string, from int) (lines []LogLine, running bool, err error)
	// Status returns what the queue knows of job id (JobStatus). It
	// spares a polling client's every read a trip to the Store.
	Status(ctx context.Context, id string) (JobStatus, error)
	// ForgetUser tells the queue that the user was deleted from the Store:
	// their queued jobs leave the queue, their running jobs' leases are
	// revoked, and a UserRevoked event tells every frontend.
	ForgetUser(ctx context.Context, name string) error
	// RevokeTokens tells every frontend, through a UserRevoked event,
	// that the user's token was replaced; their jobs are left alone.
	RevokeTokens(ctx context.Context, name string) error
	// Reschedule tells the queue's scheduler that a schedule was put or
	// deleted, so that it rereads them now rather than at its next tick.
	Reschedule(ctx context.Context) error
	// FunctionChanged tells the queue that owner's function name was
	// replaced or deleted, so that it forgets the version it knew: the
	// function's next job is not handed to a worker before the Store has
	// named its version.
	FunctionChanged(ctx context.Context, owner, name string) error
	Stats(ctx context.Context) (Stats, error)
}

// The bounds of a function's env and secrets, together.
const (
	MaxSettings     = 64
	MaxSettingBytes = 4 << 10
)

// CheckSettings reports the first env or secret name or value that a
// function may not have: names are [A-Za-z_][A-Za-z0-9_]*, so that
// faas.env.K reads them, at most MaxSettings of them, values at most
// MaxSettingBytes. A secret's value is never part of the message.
func CheckSettings(env, secrets map[string]string) error {
	if n := len(env) + len(secrets); n > MaxSettings {
		return Errorf(Invalid, "%d env and secret names: at most %d are allowed", n, MaxSettings)
	}
	for _, set := range []struct {
		kind   string
		values map[string]string
	}{{"env", env}, {"secret", secrets}} {
		for k, v := range set.values {
			if !settingName(k) {
				return Errorf(Invalid, "invalid %s name %.80q: want letters, digits and _, not starting with a digit", set.kind, k)
			}
			if _, dup := env[k]; dup && set.kind == "secret" {
				return Errorf(Invalid, "%s is both an env value and a secret: name each once", k)
			}
			if len(v) > MaxSettingBytes {
				return Errorf(Invalid, "%s %s is %d bytes: at most %d are allowed", set.kind, k, len(v), MaxSettingBytes)
			}
		}
	}
	return nil
}

func settingName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
