// Package dbproxy is the DB manager's protocol, both ends in one place: the
// method names and request bodies, a Client that implements faas.Store over
// ZeroMQ, and NewMux, which serves any faas.Store. Keeping the two ends
// together means a method cannot be added to one side only.
package dbproxy

import (
	"context"
	"log/slog"
	"time"

	"faas/proxies/faas"
	"faas/proxies/wire"
)

// The method names on the wire, one per faas.Store method.
const (
	MethodPing           = "db.Ping"
	MethodCreateUser     = "db.CreateUser"
	MethodUser           = "db.User"
	MethodUserByToken    = "db.UserByToken"
	MethodDeleteUser     = "db.DeleteUser"
	MethodSetTokenHash   = "db.SetTokenHash"
	MethodBilledTime     = "db.BilledTime"
	MethodPutFunction    = "db.PutFunction"
	MethodFunction       = "db.Function"
	MethodVersion        = "db.FunctionVersion"
	MethodFunctions      = "db.Functions"
	MethodDeleteFunction = "db.DeleteFunction"
	MethodCreateHook     = "db.CreateHook"
	MethodHookByHash     = "db.HookByHash"
	MethodHooks          = "db.Hooks"
	MethodDeleteHook     = "db.DeleteHook"
	MethodPutSchedule    = "db.PutSchedule"
	MethodSchedule       = "db.Schedule"
	MethodSchedules      = "db.Schedules"
	MethodDeleteSchedule = "db.DeleteSchedule"
	MethodScheduleFired  = "db.ScheduleFired"
	MethodSubscribe      = "db.Subscribe"
	MethodUnsubscribe    = "db.Unsubscribe"
	MethodSubscriptions  = "db.Subscriptions"
	MethodCreateJob      = "db.CreateJob"
	MethodJob            = "db.Job"
	MethodJobs           = "db.Jobs"
	MethodFailedJobs     = "db.FailedJobs"
	MethodDeleteJob      = "db.DeleteJob"
	MethodStartJob       = "db.StartJob"
	MethodRequeueJob     = "db.RequeueJob"
	MethodCompleteJob    = "db.CompleteJob"
	MethodPendingJobs    = "db.PendingPage"
	MethodCreateJobs     = "db.CreateJobs"
	MethodStartJobs      = "db.StartJobs"
	MethodCompleteJobs   = "db.CompleteJobs"
	MethodPurgeJobs      = "db.PurgeJobs"
	MethodUsage          = "db.Usage"
	MethodUserCount      = "db.UserCount"
	MethodFinishedCounts = "db.FinishedCounts"
)

// DefaultPort is the DB manager's port unless PORT says otherwise; the
// clients' default DB_URL points at it on loopback.
const DefaultPort = 27444

// nameRequest names a user or a job.
type nameRequest struct {
	Name string `json:"name"`
}

// setTokenHashRequest is SetTokenHash's arguments.
type setTokenHashRequest struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_hash"`
}

// functionRequest names one function of a user.
type functionRequest struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

// hookRequest names one hook of a function.
type hookRequest struct {
	Owner    string `json:"owner"`
	Function string `json:"function"`
	ID       string `json:"id"`
}

// scheduleFiredRequest is ScheduleFired's arguments.
type scheduleFiredRequest struct {
	Owner    string    `json:"owner"`
	Function string    `json:"function"`
	Updated  time.Time `json:"updated"`
	Tick     time.Time `json:"tick"`
}

// subscriptionsRequest is Subscriptions' arguments.
type subscriptionsRequest struct {
	Owner  string                  `json:"owner"`
	Filter faas.SubscriptionFilter `json:"filter"`
}

// functionsRequest is Functions' arguments.
type functionsRequest struct {
	Owner string            `json:"owner"`
	Page  faas.FunctionPage `json:"page"`
}

// jobsRequest is Jobs' arguments.
type jobsRequest struct {
	Owner string       `json:"owner"`
	Page  faas.JobPage `json:"page"`
}

// versionRequest names one version of a function.
type versionRequest struct {
	Owner   string `json:"owner"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// putFunctionReply is PutFunction's result.
type putFunctionReply struct {
	Function faas.Function `json:"function"`
	Created  bool          `json:"created"`
}

// pendingJobsRequest is PendingJobs' arguments.
type pendingJobsRequest struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit"`
}

// startJobRequest is StartJob's arguments.
type startJobRequest struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker"`
}

// requeueJobRequest is RequeueJob's arguments.
type requeueJobRequest struct {
	ID      string      `json:"id"`
	Attempt int         `json:"attempt"`
	Reason  *faas.Error `json:"reason"`
}

// purgeJobsRequest is PurgeJobs' arguments.
type purgeJobsRequest struct {
	Before time.Time `json:"before"`
}

var _ faas.Store = (*Client)(nil)

// Client is a faas.Store served by a DB manager. It inherits wire.Client's
// Lazy Pirate retries, which is safe because every Store method is
// idempotent under retry.
type Client struct {
	wc *wire.Client
}

// Dial returns a client for the DB manager at endpoint; timeout is the wait
// for one reply before the request is resent (wire.DefaultTimeout if zero);
// opts say how the bus is secured.
func Dial(endpoint string, timeout time.Duration, log *slog.Logger, opts ...wire.Option) (*Client, error) {
	wc, err := wire.Dial(endpoint, timeout, log.With("proxy", "dbmanager"), opts...)
	if err != nil {
		return nil, err
	}
	return &Client{wc: wc}, nil
}

// Endpoint is the DB manager's address.
func (c *Client) Endpoint() string { return c.wc.Endpoint() }

// Close releases the client's sockets.
func (c *Client) Close() error { return c.wc.Close() }

// Ping asks the DB manager whether its database answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.wc.Call(ctx, MethodPing, struct{}{}, nil)
}

// CreateUser implements faas.Store.
func (c *Client) CreateUser(ctx context.Context, u faas.User) error {
	return c.wc.Call(ctx, MethodCreateUser, u, nil)
}

// User implements faas.Store.
func (c *Client) User(ctx context.Context, name string) (faas.User, error) {
	return wire.Invoke[faas.User](ctx, c.wc, MethodUser, nameRequest{Name: name})
}

// UserByToken implements faas.Store.
func (c *Client) UserByToken(ctx context.Context, tokenHash string) (faas.User, error) {
	return wire.Invoke[faas.User](ctx, c.wc, MethodUserByToken, nameRequest{Name: tokenHash})
}

// SetTokenHash implements faas.Store.
func (c *Client) SetTokenHash(ctx context.Context, name, tokenHash string) error {
	return c.wc.Call(ctx, MethodSetTokenHash, setTokenHashRequest{Name: name, TokenHash: tokenHash}, nil)
}

// DeleteUser implements faas.Store.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.wc.Call(ctx, MethodDeleteUser, nameRequest{Name: name}, nil)
}

// BilledTime implements faas.Store.
func (c *Client) BilledTime(ctx context.Context, name string) (time.Duration, error) {
	return wire.Invoke[time.Duration](ctx, c.wc, MethodBilledTime, nameRequest{Name: name})
}

// PutFunction implements faas.Store.
func (c *Client) PutFunction(ctx context.Context, f faas.Function) (faas.Function, bool, error) {
	r, err := wire.Invoke[putFunctionReply](ctx, c.wc, MethodPutFunction, f)
	return r.Function, r.Created, err
}

// Function implements faas.Store.
func (c *Client) Function(ctx context.Context, owner, name string) (faas.Function, error) {
	return wire.Invoke[faas.Function](ctx, c.wc, MethodFunction, functionRequest{Owner: owner, Name: name})
}

// FunctionVersion implements faas.Store.
func (c *Client) FunctionVersion(ctx context.Context, owner, name string, version int64) (faas.Function, error) {
	return wire.Invoke[faas.Function](ctx, c.wc, MethodVersion, versionRequest{Owner: owner, Name: name, Version: version})
}

// Functions implements faas.Store.
func (c *Client) Functions(ctx context.Context, owner string, page faas.FunctionPage) ([]faas.Function, error) {
	return wire.Invoke[[]faas.Function](ctx, c.wc, MethodFunctions, functionsRequest{Owner: owner, Page: page})
}

// DeleteFunction implements faas.Store.
func (c *Client) DeleteFunction(ctx context.Context, owner, name string) error {
	return c.wc.Call(ctx, MethodDeleteFunction, functionRequest{Owner: owner, Name: name}, nil)
}

// CreateJob implements faas.Store.
func (c *Client) CreateJob(ctx context.Context, j faas.Job) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodCreateJob, j)
}

// Job implements faas.Store.
func (c *Client) Job(ctx context.Context, id string) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodJob, nameRequest{Name: id})
}

// Jobs implements faas.Store.
func (c *Client) Jobs(ctx context.Context, owner string, page faas.JobPage) ([]faas.Job, error) {
	return wire.Invoke[[]faas.Job](ctx, c.wc, MethodJobs, jobsRequest{Owner: owner, Page: page})
}

// DeleteJob implements faas.Store.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	return c.wc.Call(ctx, MethodDeleteJob, nameRequest{Name: id}, nil)
}

// StartJob implements faas.Store.
func (c *Client) StartJob(ctx context.Context, id string, attempt int, worker string) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodStartJob, startJobRequest{ID: id, Attempt: attempt, Worker: worker})
}

// RequeueJob implements faas.Store.
func (c *Client) RequeueJob(ctx context.Context, id string, attempt int, reason *faas.Error) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodRequeueJob, requeueJobRequest{ID: id, Attempt: attempt, Reason: reason})
}

// CompleteJob implements faas.Store.
func (c *Client) CompleteJob(ctx context.Context, cm faas.Completion) (faas.Job, error) {
	return wire.Invoke[faas.Job](ctx, c.wc, MethodCompleteJob, cm)
}

// CreateJobs implements faas.Store.
func (c *Client) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	return wire.Invoke[[]faas.JobResult](ctx, c.wc, MethodCreateJobs, js)
}

// StartJobs implements faas.Store.
func (c *Client) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	return wire.Invoke[[]faas.JobResult](ctx, c.wc, MethodStartJobs, starts)
}

// CompleteJobs implements faas.Store.
func (c *Client) CompleteJobs(ctx context.Context, cs []faas.Completion) ([]faas.JobResult, error) {
	return wire.Invoke[[]faas.JobResult](ctx, c.wc, MethodCompleteJobs, cs)
}

// FailedJobs implements faas.Store.
func (c *Client) FailedJobs(ctx context.Context, limit int) ([]faas.Job, error) {
	return wire.Invoke[[]faas.Job](ctx, c.wc, MethodFailedJobs, limit)
}

// PendingJobs implements faas.Store.
func (c *Client) PendingJobs(ctx context.Context, after string, limit int) (faas.PendingPage, error) {
	return wire.Invoke[faas.PendingPage](ctx, c.wc, MethodPendingJobs, pendingJobsRequest{After: after, Limit: limit})
}

// PurgeJobs implements faas.Store. A retry after a lost reply purges
// nothing more and answers 0: the count is of this call's deletions.
func (c *Client) PurgeJobs(ctx context.Context, before time.Time) (int, error) {
	return wire.Invoke[int](ctx, c.wc, MethodPurgeJobs, purgeJobsRequest{Before: before})
}

// CreateHook implements faas.Store.
func (c *Client) CreateHook(ctx context.Context, h faas.Hook) error {
	return c.wc.Call(ctx, MethodCreateHook, h, nil)
}

// HookByHash implements faas.Store.
func (c *Client) HookByHash(ctx context.Context, hash string) (faas.Hook, error) {
	return wire.Invoke[faas.Hook](ctx, c.wc, MethodHookByHash, nameRequest{Name: hash})
}

// Hooks implements faas.Store.
func (c *Client) Hooks(ctx context.Context, owner, function string) ([]faas.Hook, error) {
	return wire.Invoke[[]faas.Hook](ctx, c.wc, MethodHooks, functionRequest{Owner: owner, Name: function})
}

// DeleteHook implements faas.Store.
func (c *Client) DeleteHook(ctx context.Context, owner, function, id string) error {
	return c.wc.Call(ctx, MethodDeleteHook, hookRequest{Owner: owner, Function: function, ID: id}, nil)
}

// PutSchedule implements faas.Store.
func (c *Client) PutSchedule(ctx context.Context, sc faas.Schedule) (faas.Schedule, error) {
	return wire.Invoke[faas.Schedule](ctx, c.wc, MethodPutSchedule, sc)
}

// Schedule implements faas.Store.
func (c *Client) Schedule(ctx context.Context, owner, function string) (faas.Schedule, error) {
	return wire.Invoke[faas.Schedule](ctx, c.wc, MethodSchedule, functionRequest{Owner: owner, Name: function})
}

// Schedules implements faas.Store.
func (c *Client) Schedules(ctx context.Context) ([]faas.Schedule, error) {
	return wire.Invoke[[]faas.Schedule](ctx, c.wc, MethodSchedules, struct{}{})
}

// DeleteSchedule implements faas.Store.
func (c *Client) DeleteSchedule(ctx context.Context, owner, function string) error {
	return c.wc.Call(ctx, MethodDeleteSchedule, functionRequest{Owner: owner, Name: function}, nil)
}

// ScheduleFired implements faas.Store.
func (c *Client) ScheduleFired(ctx context.Context, owner, function string, updated, tick time.Time) error {
	return c.wc.Call(ctx, MethodScheduleFired, scheduleFiredRequest{Owner: owner, Function: function, Updated: updated, Tick: tick}, nil)
}

// Subscribe implements faas.Store.
func (c *Client) Subscribe(ctx context.Context, sub faas.Subscription) (bool, error) {
	return wire.Invoke[bool](ctx, c.wc, MethodSubscribe, sub)
}

// Unsubscribe implements faas.Store.
func (c *Client) Unsubscribe(ctx context.Context, owner, function, topic string) error {
	return c.wc.Call(ctx, MethodUnsubscribe, faas.Subscription{Owner: owner, Function: function, Topic: topic}, nil)
}

// Subscriptions implements faas.Store.
func (c *Client) Subscriptions(ctx context.Context, owner string, filter faas.SubscriptionFilter) ([]faas.Subscription, error) {
	return wire.Invoke[[]faas.Subscription](ctx, c.wc, MethodSubscriptions, subscriptionsRequest{Owner: owner, Filter: filter})
}

// Usage implements faas.Store.
func (c *Client) Usage(ctx context.Context, owner string) (faas.Usage, error) {
	return wire.Invoke[faas.Usage](ctx, c.wc, MethodUsage, nameRequest{Name: owner})
}

// FinishedCounts implements faas.Store.
func (c *Client) FinishedCounts(ctx context.Context) (map[string]int64, error) {
	return wire.Invoke[map[string]int64](ctx, c.wc, MethodFinishedCounts, struct{}{})
}

// UserCount implements faas.Store.
func (c *Client) UserCount(ctx context.Context) (int, error) {
	return wire.Invoke[int](ctx, c.wc, MethodUserCount, struct{}{})
}

// NewMux serves s to Clients: every method above dispatches to it. Errors
// go back as the *faas.Error values s returned; anything else becomes
// Internal. A route is the interface method itself where its signature
// fits, else a closure that unpacks the request.
func NewMux(s faas.Store) *wire.Mux {
	m := wire.NewMux()
	wire.HandleErr(m, MethodPing, func(ctx context.Context, _ struct{}) error {
		return s.Ping(ctx)
	})
	wire.HandleErr(m, MethodCreateUser, s.CreateUser)
	wire.Handle(m, MethodUser, func(ctx context.Context, r nameRequest) (faas.User, error) {
		return s.User(ctx, r.Name)
	})
	wire.Handle(m, MethodUserByToken, func(ctx context.Context, r nameRequest) (faas.User, error) {
		return s.UserByToken(ctx, r.Name)
	})
	wire.HandleErr(m, MethodSetTokenHash, func(ctx context.Context, r setTokenHashRequest) error {
		return s.SetTokenHash(ctx, r.Name, r.TokenHash)
	})
	wire.HandleErr(m, MethodDeleteUser, func(ctx context.Context, r nameRequest) error {
		return s.DeleteUser(ctx, r.Name)
	})
	wire.Handle(m, MethodBilledTime, func(ctx context.Context, r nameRequest) (time.Duration, error) {
		return s.BilledTime(ctx, r.Name)
	})
	wire.Handle(m, MethodPutFunction, func(ctx context.Context, f faas.Function) (putFunctionReply, error) {
		stored, created, err := s.PutFunction(ctx, f)
		return putFunctionReply{Function: stored, Created: created}, err
	})
	wire.Handle(m, MethodFunction, func(ctx context.Context, r functionRequest) (faas.Function, error) {
		return s.Function(ctx, r.Owner, r.Name)
	})
	wire.Handle(m, MethodVersion, func(ctx context.Context, r versionRequest) (faas.Function, error) {
		return s.FunctionVersion(ctx, r.Owner, r.Name, r.Version)
	})
	wire.Handle(m, MethodFunctions, func(ctx context.Context, r functionsRequest) ([]faas.Function, error) {
		return s.Functions(ctx, r.Owner, r.Page)
	})
	wire.HandleErr(m, MethodDeleteFunction, func(ctx context.Context, r functionRequest) error {
		return s.DeleteFunction(ctx, r.Owner, r.Name)
	})
	wire.HandleErr(m, MethodCreateHook, s.CreateHook)
	wire.Handle(m, MethodHookByHash, func(ctx context.Context, r nameRequest) (faas.Hook, error) {
		return s.HookByHash(ctx, r.Name)
	})
	wire.Handle(m, MethodHooks, func(ctx context.Context, r functionRequest) ([]faas.Hook, error) {
		return s.Hooks(ctx, r.Owner, r.Name)
	})
	wire.HandleErr(m, MethodDeleteHook, func(ctx context.Context, r hookRequest) error {
		return s.DeleteHook(ctx, r.Owner, r.Function, r.ID)
	})
	wire.Handle(m, MethodPutSchedule, s.PutSchedule)
	wire.Handle(m, MethodSchedule, func(ctx context.Context, r functionRequest) (faas.Schedule, error) {
		return s.Schedule(ctx, r.Owner, r.Name)
	})
	wire.Handle(m, MethodSchedules, func(ctx context.Context, _ struct{}) ([]faas.Schedule, error) {
		return s.Schedules(ctx)
	})
	wire.HandleErr(m, MethodDeleteSchedule, func(ctx context.Context, r functionRequest) error {
		return s.DeleteSchedule(ctx, r.Owner, r.Name)
	})
	wire.HandleErr(m, MethodScheduleFired, func(ctx context.Context, r scheduleFiredRequest) error {
		return s.ScheduleFired(ctx, r.Owner, r.Function, r.Updated, r.Tick)
	})
	wire.Handle(m, MethodSubscribe, s.Subscribe)
	wire.HandleErr(m, MethodUnsubscribe, func(ctx context.Context, sub faas.Subscription) error {
		return s.Unsubscribe(ctx, sub.Owner, sub.Function, sub.Topic)
	})
	wire.Handle(m, MethodSubscriptions, func(ctx context.Context, r subscriptionsRequest) ([]faas.Subscription, error) {
		return s.Subscriptions(ctx, r.Owner, r.Filter)
	})
	wire.Handle(m, MethodCreateJob, s.CreateJob)
	wire.Handle(m, MethodJob, func(ctx context.Context, r nameRequest) (faas.Job, error) {
		return s.Job(ctx, r.Name)
	})
	wire.Handle(m, MethodJobs, func(ctx context.Context, r jobsRequest) ([]faas.Job, error) {
		return s.Jobs(ctx, r.Owner, r.Page)
	})
	wire.HandleErr(m, MethodDeleteJob, func(ctx context.Context, r nameRequest) error {
		return s.DeleteJob(ctx, r.Name)
	})
	wire.Handle(m, MethodStartJob, func(ctx context.Context, r startJobRequest) (faas.Job, error) {
		return s.StartJob(ctx, r.ID, r.Attempt, r.Worker)
	})
	wire.Handle(m, MethodRequeueJob, func(ctx context.Context, r requeueJobRequest) (faas.Job, error) {
		return s.RequeueJob(ctx, r.ID, r.Attempt, r.Reason)
	})
	wire.Handle(m, MethodCompleteJob, s.CompleteJob)
	wire.Handle(m, MethodCreateJobs, s.CreateJobs)
	wire.Handle(m, MethodStartJobs, s.StartJobs)
	wire.Handle(m, MethodCompleteJobs, s.CompleteJobs)
	wire.Handle(m, MethodFailedJobs, s.FailedJobs)
	wire.Handle(m, MethodPendingJobs, func(ctx context.Context, r pendingJobsRequest) (faas.PendingPage, error) {
		return s.PendingJobs(ctx, r.After, r.Limit)
	})
	wire.Handle(m, MethodPurgeJobs, func(ctx context.Context, r purgeJobsRequest) (int, error) {
		return s.PurgeJobs(ctx, r.Before)
	})
	wire.Handle(m, MethodUsage, func(ctx context.Context, r nameRequest) (faas.Usage, error) {
		return s.Usage(ctx, r.Name)
	})
	wire.Handle(m, MethodUserCount, func(ctx context.Context, _ struct{}) (int, error) {
		return s.UserCount(ctx)
	})
	wire.Handle(m, MethodFinishedCounts, func(ctx context.Context, _ struct{}) (map[string]int64, error) {
		return s.FinishedCounts(ctx)
	})
	return m
}
