// Package jqproxy is the JQ manager's protocol, both ends in one place: the
// method names and request bodies, a Client that implements faas.JobQueue
// over ZeroMQ, and NewMux, which serves any faas.JobQueue. Keeping the two
// ends together means a method cannot be added to one side only.
package jqproxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"faas/proxies/faas"
	"faas/proxies/wire"
)

// The method names on the wire, one per faas.JobQueue method.
const (
	MethodSubmit       = "jq.submit"
	MethodPublish      = "jq.publish"
	MethodPublishChild = "jq.publish_child"
	MethodNext         = "jq.next"
	MethodWithdraw     = "jq.withdraw"
	MethodComplete     = "jq.complete"
	MethodWait         = "jq.wait"
	MethodStats        = "jq.stats"
	MethodRenew        = "jq.renew"
	MethodRelease      = "jq.release"
	MethodForget       = "jq.forget"
	MethodEvents       = "jq.events"
	MethodForgetUser   = "jq.forget_user"
	MethodAppendLogs   = "jq.append_logs"
	MethodLogs         = "jq.logs"
	MethodRevoke       = "jq.revoke_tokens"
	MethodStatus       = "jq.status"
	MethodSubmitChild  = "jq.submit_child"
	MethodReschedule   = "jq.reschedule"
	MethodFnChanged    = "jq.function_changed"
)

// DefaultPort is the JQ manager's port unless PORT says otherwise; the
// clients' default JQ_URL points at it on loopback.
const DefaultPort = 27445

// WorkerMethods are the methods workers call. The JQ manager gives them a
// budget of requests of their own, so that no load from the frontends can
// refuse a heartbeat and cost a running job its lease.
var WorkerMethods = []string{MethodNext, MethodWithdraw, MethodComplete, MethodRenew, MethodRelease, MethodAppendLogs, MethodSubmitChild, MethodPublishChild}

// MaxHold caps how long a caller may ask the queue to hold a request, so a
// hostile or buggy client cannot park handlers forever.
const MaxHold = time.Minute

// publishRequest is Publish's arguments.
type publishRequest struct {
	Owner string          `json:"owner"`
	Topic string          `json:"topic"`
	Event json.RawMessage `json:"event"`
	Key   string          `json:"key"`
}

// publishChildRequest is PublishChild's arguments.
type publishChildRequest struct {
	Worker string     `json:"worker"`
	Lease  faas.Lease `json:"lease"`
	publishRequest
}

// nextRequest is Next's arguments.
type nextRequest struct {
	Worker string        `json:"worker"`
	Max    int           `json:"max"`
	Wait   time.Duration `json:"wait"`
}

// withdrawRequest names the worker whose polls Withdraw ends.
type withdrawRequest struct {
	Worker string `json:"worker"`
}

// completeRequest is Complete's arguments.
type completeRequest struct {
	Worker      string            `json:"worker"`
	Completions []faas.Completion `json:"completions"`
}

// waitReply is Wait's result.
type waitReply struct {
	Finished bool      `json:"finished"`
	Job      *faas.Job `json:"job,omitempty"`
}

// waitRequest is Wait's arguments.
type waitRequest struct {
	ID   string        `json:"id"`
	Wait time.Duration `json:"wait"`
}

// renewRequest is Renew's arguments.
type renewRequest struct {
	Worker string       `json:"worker"`
	Leases []faas.Lease `json:"leases"`
}

// releaseRequest is Release's arguments.
type releaseRequest struct {
	Lease  faas.Lease `json:"lease"`
	Reason string     `json:"reason"`
}

// forgetRequest names the job to forget.
type forgetRequest struct {
	ID string `json:"id"`
}

// eventsRequest is Events' arguments.
type eventsRequest struct {
	Since uint64        `json:"since"`
	Hold  time.Duration `json:"hold"`
}

// functionRequest names the function of FunctionChanged.
type functionRequest struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

// userRequest names the user of ForgetUser and RevokeTokens.
type userRequest struct {
	Name string `json:"name"`
}

// appendLogsRequest is AppendLogs' arguments.
type appendLogsRequest struct {
	Worker string         `json:"worker"`
	Lease  faas.Lease     `json:"lease"`
	Lines  []faas.LogLine `json:"lines"`
}

// statusRequest names the job of Status.
type statusRequest struct {
	ID string `json:"id"`
}

// submitChildRequest is SubmitChild's arguments.
type submitChildRequest struct {
	Worker string     `json:"worker"`
	Lease  faas.Lease `json:"lease"`
	Job    faas.Job   `json:"job"`
}

// logsRequest is Logs' arguments.
type logsRequest struct {
	ID   string `json:"id"`
	From int    `json:"from"`
}

// logsReply is Logs' result.
type logsReply struct {
	Lines   []faas.LogLine `json:"lines,omitempty"`
	Running bool           `json:"running"`
}

var _ faas.JobQueue = (*Client)(nil)

// Client is a faas.JobQueue served by a JQ manager. It inherits
// wire.Client's Lazy Pirate retries, which is safe because every JobQueue
// method is idempotent under retry.
type Client struct {
	wc      *wire.Client
	timeout time.Duration
	log     *slog.Logger

	// watch serves Wait: started with the first wait, stopped by Close.
	mu        sync.Mutex
	watch     *Watch
	stopWatch func()
	closed    bool
}

// Dial returns a client for the JQ manager at endpoint; timeout is the wait
// for one reply before the request is resent (wire.DefaultTimeout if zero);
// opts say how the bus is secured.
func Dial(endpoint string, timeout time.Duration, log *slog.Logger, opts ...wire.Option) (*Client, error) {
	log = log.With("proxy", "jqmanager")
	wc, err := wire.Dial(endpoint, timeout, log, opts...)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = wire.DefaultTimeout
	}
	return &Client{wc: wc, timeout: timeout, log: log}, nil
}

// Endpoint is the JQ manager's address.
func (c *Client) Endpoint() string { return c.wc.Endpoint() }

// Close stops the client's watch, if a Wait started one, and releases its
// sockets.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	stop := c.stopWatch
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	return c.wc.Close()
}

// Submit implements faas.JobQueue.
func (c *Client) Submit(ctx context.Context, j faas.Job) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodSubmit, j)
}

// SubmitChild implements faas.JobQueue.
func (c *Client) SubmitChild(ctx context.Context, worker string, l faas.Lease, j faas.Job) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodSubmitChild, submitChildRequest{Worker: worker, Lease: l, Job: j})
}

// Publish implements faas.JobQueue.
func (c *Client) Publish(ctx context.Context, owner, topic string, event json.RawMessage, key string) ([]string, error) {
	// Encoding would fail with an internal error; the caller's mistake
	// is answered as the manager would answer it.
	if !json.Valid(event) {
		return nil, faas.Errorf(faas.Invalid, "event published to %.80s is not JSON", topic)
	}
	return wire.Invoke[[]string](ctx, c.wc, MethodPublish, publishRequest{Owner: owner, Topic: topic, Event: event, Key: key})
}

// PublishChild implements faas.JobQueue.
func (c *Client) PublishChild(ctx context.Context, worker string, l faas.Lease, topic string, event json.RawMessage, key string) ([]string, error) {
	if !json.Valid(event) {
		return nil, faas.Errorf(faas.Invalid, "event published to %.80s is not JSON", topic)
	}
	return wire.Invoke[[]string](ctx, c.wc, MethodPublishChild, publishChildRequest{Worker: worker, Lease: l,
		publishRequest: publishRequest{Topic: topic, Event: event, Key: key}})
}

// Next implements faas.JobQueue.
func (c *Client) Next(ctx context.Context, worker string, max int, wait time.Duration) ([]faas.Job, error) {
	return wire.InvokeHold[[]faas.Job](ctx, c.wc, wait, MethodNext, nextRequest{Worker: worker, Max: max, Wait: wait})
}

// Withdraw implements faas.JobQueue.
func (c *Client) Withdraw(ctx context.Context, worker string) error {
	return c.wc.Call(ctx, MethodWithdraw, withdrawRequest{Worker: worker}, nil)
}

// Complete implements faas.JobQueue.
func (c *Client) Complete(ctx context.Context, worker string, cs []faas.Completion) ([]*faas.Error, error) {
	return wire.Invoke[[]*faas.Error](ctx, c.wc, MethodComplete, completeRequest{Worker: worker, Completions: cs})
}

// Wait implements faas.JobQueue. Asked to wait, it holds no socket: the
// client's one Watch, started with the first such call, follows the
// queue's events for every caller. Without a wait it asks the queue once.
func (c *Client) Wait(ctx context.Context, id string, wait time.Duration) (faas.Job, bool, error) {
	if wait <= 0 {
		return c.probe(ctx, id)
	}
	w, err := c.watcher()
	if err != nil {
		return faas.Job{}, false, err
	}
	return w.Wait(ctx, id, wait)
}

// watcher returns the client's Watch, starting it if need be.
func (c *Client) watcher() (*Watch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, faas.Errorf(faas.Unavailable, "job queue client for %s is closed", c.wc.Endpoint())
	}
	if c.watch == nil {
		c.watch = NewWatch(c, c.timeout, nil, c.log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.watch.Run(ctx) }()
		c.stopWatch = func() { cancel(); <-done }
	}
	return c.watch, nil
}

// probe asks the queue once whether job id left it.
func (c *Client) probe(ctx context.Context, id string) (faas.Job, bool, error) {
	out, err := wire.Invoke[waitReply](ctx, c.wc, MethodWait, waitRequest{ID: id})
	if err != nil {
		return faas.Job{}, false, err
	}
	if out.Job == nil {
		return faas.Job{}, out.Finished, nil
	}
	return *out.Job, out.Finished, nil
}

// Renew implements faas.JobQueue.
func (c *Client) Renew(ctx context.Context, worker string, leases []faas.Lease) ([]faas.Lease, error) {
	return wire.Invoke[[]faas.Lease](ctx, c.wc, MethodRenew, renewRequest{Worker: worker, Leases: leases})
}

// Release implements faas.JobQueue.
func (c *Client) Release(ctx context.Context, l faas.Lease, reason string) error {
	return c.wc.Call(ctx, MethodRelease, releaseRequest{Lease: l, Reason: reason}, nil)
}

// Forget implements faas.JobQueue.
func (c *Client) Forget(ctx context.Context, id string) error {
	return c.wc.Call(ctx, MethodForget, forgetRequest{ID: id}, nil)
}

// Events implements faas.JobQueue. It holds one socket for up to hold:
// a process calls it from one watch loop, never once per wait.
func (c *Client) Events(ctx context.Context, since uint64, hold time.Duration) (faas.Events, error) {
	return wire.InvokeHold[faas.Events](ctx, c.wc, hold, MethodEvents, eventsRequest{Since: since, Hold: hold})
}

// AppendLogs implements faas.JobQueue.
func (c *Client) AppendLogs(ctx context.Context, worker string, l faas.Lease, lines []faas.LogLine) error {
	return c.wc.Call(ctx, MethodAppendLogs, appendLogsRequest{Worker: worker, Lease: l, Lines: lines}, nil)
}

// Logs implements faas.JobQueue.
func (c *Client) Logs(ctx context.Context, id string, from int) ([]faas.LogLine, bool, error) {
	out, err := wire.Invoke[logsReply](ctx, c.wc, MethodLogs, logsRequest{ID: id, From: from})
	return out.Lines, out.Running, err
}

// Status implements faas.JobQueue.
func (c *Client) Status(ctx context.Context, id string) (faas.JobStatus, error) {
	return wire.Invoke[faas.JobStatus](ctx, c.wc, MethodStatus, statusRequest{ID: id})
}

// ForgetUser implements faas.JobQueue.
func (c *Client) ForgetUser(ctx context.Context, name string) error {
	return c.wc.Call(ctx, MethodForgetUser, userRequest{Name: name}, nil)
}

// Reschedule implements faas.JobQueue.
func (c *Client) Reschedule(ctx context.Context) error {
	return c.wc.Call(ctx, MethodReschedule, struct{}{}, nil)
}

// FunctionChanged implements faas.JobQueue.
func (c *Client) FunctionChanged(ctx context.Context, owner, name string) error {
	return c.wc.Call(ctx, MethodFnChanged, functionRequest{Owner: owner, Name: name}, nil)
}

// RevokeTokens implements faas.JobQueue.
func (c *Client) RevokeTokens(ctx context.Context, name string) error {
	return c.wc.Call(ctx, MethodRevoke, userRequest{Name: name}, nil)
}

// Stats implements faas.JobQueue.
func (c *Client) Stats(ctx context.Context) (faas.Stats, error) {
	return wire.Invoke[faas.Stats](ctx, c.wc, MethodStats, struct{}{})
}

// NewMux serves q to Clients: every method above dispatches to it. Errors
// go back as the *faas.Error values q returned; anything else becomes
// Internal. A route is the interface method itself where its signature
// fits, else a closure that unpacks the request.
func NewMux(q faas.JobQueue) *wire.Mux {
	m := wire.NewMux()
	wire.Handle(m, MethodSubmit, q.Submit)
	wire.Handle(m, MethodSubmitChild, func(ctx context.Context, r submitChildRequest) (faas.Job, error) {
		return q.SubmitChild(ctx, r.Worker, r.Lease, r.Job)
	})
	wire.Handle(m, MethodPublish, func(ctx context.Context, r publishRequest) ([]string, error) {
		return q.Publish(ctx, r.Owner, r.Topic, r.Event, r.Key)
	})
	wire.Handle(m, MethodPublishChild, func(ctx context.Context, r publishChildRequest) ([]string, error) {
		return q.PublishChild(ctx, r.Worker, r.Lease, r.Topic, r.Event, r.Key)
	})
	wire.Handle(m, MethodNext, func(ctx context.Context, r nextRequest) ([]faas.Job, error) {
		if err := checkHold(r.Wait); err != nil {
			return nil, err
		}
		return q.Next(ctx, r.Worker, r.Max, r.Wait)
	})
	wire.HandleErr(m, MethodWithdraw, func(ctx context.Context, r withdrawRequest) error {
		return q.Withdraw(ctx, r.Worker)
	})
	wire.Handle(m, MethodComplete, func(ctx context.Context, r completeRequest) ([]*faas.Error, error) {
		return q.Complete(ctx, r.Worker, r.Completions)
	})
	wire.Handle(m, MethodWait, func(ctx context.Context, r waitRequest) (waitReply, error) {
		if err := checkHold(r.Wait); err != nil {
			return waitReply{}, err
		}
		j, finished, err := q.Wait(ctx, r.ID, r.Wait)
		if err != nil || j.ID == "" {
			return waitReply{Finished: finished}, err
		}
		return waitReply{Finished: finished, Job: &j}, nil
	})
	wire.Handle(m, MethodRenew, func(ctx context.Context, r renewRequest) ([]faas.Lease, error) {
		return q.Renew(ctx, r.Worker, r.Leases)
	})
	wire.HandleErr(m, MethodRelease, func(ctx context.Context, r releaseRequest) error {
		return q.Release(ctx, r.Lease, r.Reason)
	})
	wire.HandleErr(m, MethodForget, func(ctx context.Context, r forgetRequest) error {
		return q.Forget(ctx, r.ID)
	})
	wire.Handle(m, MethodEvents, func(ctx context.Context, r eventsRequest) (faas.Events, error) {
		if err := checkHold(r.Hold); err != nil {
			return faas.Events{}, err
		}
		return q.Events(ctx, r.Since, r.Hold)
	})
	wire.HandleErr(m, MethodForgetUser, func(ctx context.Context, r userRequest) error {
		return q.ForgetUser(ctx, r.Name)
	})
	wire.HandleErr(m, MethodAppendLogs, func(ctx context.Context, r appendLogsRequest) error {
		return q.AppendLogs(ctx, r.Worker, r.Lease, r.Lines)
	})
	wire.Handle(m, MethodLogs, func(ctx context.Context, r logsRequest) (logsReply, error) {
		lines, running, err := q.Logs(ctx, r.ID, r.From)
		return logsReply{Lines: lines, Running: running}, err
	})
	wire.Handle(m, MethodStatus, func(ctx context.Context, r statusRequest) (faas.JobStatus, error) {
		return q.Status(ctx, r.ID)
	})
	wire.HandleErr(m, MethodRevoke, func(ctx context.Context, r userRequest) error {
		return q.RevokeTokens(ctx, r.Name)
	})
	wire.HandleErr(m, MethodReschedule, func(ctx context.Context, _ struct{}) error {
		return q.Reschedule(ctx)
	})
	wire.HandleErr(m, MethodFnChanged, func(ctx context.Context, r functionRequest) error {
		return q.FunctionChanged(ctx, r.Owner, r.Name)
	})
	wire.Handle(m, MethodStats, func(ctx context.Context, _ struct{}) (faas.Stats, error) {
		return q.Stats(ctx)
	})
	return m
}

// checkHold refuses a hold outside 0..MaxHold.
func checkHold(d time.Duration) error {
	if d < 0 || d > MaxHold {
		return faas.Errorf(faas.Invalid, "wait %v outside 0..%v", d, MaxHold)
	}
	return nil
}
