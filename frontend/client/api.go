package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"faas/frontend"
	"faas/proxies/faas"
)

// Register creates the user name and returns its token. The returned
// credentials are the only time the token is shown; As(name, token) acts
// as the new user. A client holding the operator's token registers while
// registration is closed; an anonymous one, only while it is open.
func (c *Client) Register(ctx context.Context, name string) (frontend.Credentials, error) {
	var cr frontend.Credentials
	_, err := c.call(ctx, Request{Method: http.MethodPost, Path: "/u/" + url.PathEscape(name)}, &cr)
	return cr, err
}

// RotateToken gives the client's user a new token; the old one stops
// working at once.
func (c *Client) RotateToken(ctx context.Context) (frontend.Credentials, error) {
	var cr frontend.Credentials
	_, err := c.call(ctx, Request{Method: http.MethodPost, Path: c.userPath("/token")}, &cr)
	return cr, err
}

// DeleteUser removes the client's user with everything they own.
func (c *Client) DeleteUser(ctx context.Context) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: c.userPath("")}, nil)
	return err
}

// BilledTime is the user's total billed execution time.
func (c *Client) BilledTime(ctx context.Context) (time.Duration, error) {
	var ms float64
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/time")}, &ms)
	return time.Duration(ms * float64(time.Millisecond)), err
}

// Deploy is a function's upload: its source and settings. Zero settings
// keep what the function had (or the platform's defaults).
type Deploy struct {
	Source   string
	Timeout  time.Duration
	MemoryMB int
	// Concurrency is the most jobs running at once, 0 for no limit; nil
	// keeps the function's, since 0 is a setting of its own.
	Concurrency *int
	Env         map[string]string
	Secrets     map[string]string
}

// PutFunction creates or replaces the function name; created reports
// whether it is new. With env or secrets it sends the JSON form of the
// upload, otherwise the raw source with the settings in the query.
func (c *Client) PutFunction(ctx context.Context, name string, d Deploy) (settings frontend.FunctionView, created bool, err error) {
	r := Request{Method: http.MethodPost, Path: c.userPath("/fn/" + url.PathEscape(name))}
	if len(d.Env) > 0 || len(d.Secrets) > 0 {
		form := struct {
			Source  string            `json:"src"`
			Env     map[string]string `json:"env,omitempty"`
			Secrets map[string]string `json:"secrets,omitempty"`
			Timeout string            `json:"timeout,omitempty"`
			Memory  int               `json:"memory,omitempty"`
			// Concurrency is left out when nil, keeping the function's.
			Concurrency *int `json:"concurrency,omitempty"`
		}{Source: d.Source, Env: d.Env, Secrets: d.Secrets, Memory: d.MemoryMB, Concurrency: d.Concurrency}
		if d.Timeout > 0 {
			form.Timeout = d.Timeout.String()
		}
		if r.Body, err = jsonBody(form); err != nil {
			return settings, false, err
		}
		r.Header = jsonHeader()
	} else {
		q := url.Values{}
		if d.Timeout > 0 {
			q.Set("timeout", d.Timeout.String())
		}
		if d.MemoryMB > 0 {
			q.Set("memory", strconv.Itoa(d.MemoryMB))
		}
		if d.Concurrency != nil {
			q.Set("concurrency", strconv.Itoa(*d.Concurrency))
		}
		r.Path += query(q)
		r.Body = strings.NewReader(d.Source)
	}
	resp, err := c.call(ctx, r, &settings)
	return settings, err == nil && resp.Status == http.StatusCreated, err
}

// Function returns one of the user's functions.
func (c *Client) Function(ctx context.Context, name string) (frontend.FunctionView, error) {
	var f frontend.FunctionView
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/fn/" + url.PathEscape(name))}, &f)
	return f, err
}

// FunctionSources returns a page of the user's functions as {name:
// source}, starting after cursor ("" for the first page; limit 0 for the
// platform's default), and the cursor of the next page ("" on the last).
func (c *Client) FunctionSources(ctx context.Context, cursor string, limit int) (map[string]string, string, error) {
	var fns map[string]string
	resp, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/fn") + pageQuery(cursor, limit, "")}, &fns)
	return fns, next(resp), err
}

// Functions returns a page of the user's functions with their settings
// and without sources, as FunctionSources does.
func (c *Client) Functions(ctx context.Context, cursor string, limit int) (map[string]frontend.FunctionView, string, error) {
	var fns map[string]frontend.FunctionView
	resp, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/fn") + pageQuery(cursor, limit, "settings")}, &fns)
	return fns, next(resp), err
}

// DeleteFunction removes one of the user's functions.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: c.userPath("/fn/" + url.PathEscape(name))}, nil)
	return err
}

// CreateHook creates a webhook of the function; the answer's URL is the
// only time it is shown.
func (c *Client) CreateHook(ctx context.Context, function string) (frontend.HookView, error) {
	var h frontend.HookView
	_, err := c.call(ctx, Request{Method: http.MethodPost, Path: c.hooksPath(function)}, &h)
	return h, err
}

// Hooks lists the function's webhooks, without their URLs.
func (c *Client) Hooks(ctx context.Context, function string) ([]frontend.HookView, error) {
	var hs []frontend.HookView
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.hooksPath(function)}, &hs)
	return hs, err
}

// DeleteHook revokes the function's webhook with this listed id.
func (c *Client) DeleteHook(ctx context.Context, function, id string) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: c.hooksPath(function) + "/" + url.PathEscape(id)}, nil)
	return err
}

func (c *Client) hooksPath(function string) string {
	return c.userPath("/fn/" + url.PathEscape(function) + "/hooks")
}

// PutSchedule runs the function on a schedule, replacing the one it has.
func (c *Client) PutSchedule(ctx context.Context, function string, sc frontend.ScheduleRequest) (frontend.ScheduleView, error) {
	var v frontend.ScheduleView
	body, err := jsonBody(sc)
	if err != nil {
		return v, err
	}
	_, err = c.call(ctx, Request{Method: http.MethodPut, Path: c.schedulePath(function), Body: body, Header: jsonHeader()}, &v)
	return v, err
}

// Schedule returns the function's schedule with its next fire times.
func (c *Client) Schedule(ctx context.Context, function string) (frontend.ScheduleView, error) {
	var v frontend.ScheduleView
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.schedulePath(function)}, &v)
	return v, err
}

// DeleteSchedule stops the function's schedule.
func (c *Client) DeleteSchedule(ctx context.Context, function string) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: c.schedulePath(function)}, nil)
	return err
}

func (c *Client) schedulePath(function string) string {
	return c.userPath("/fn/" + url.PathEscape(function) + "/schedule")
}

// Subscribe subscribes the function to one of the user's topics; created
// is false when it already was.
func (c *Client) Subscribe(ctx context.Context, function, topic string) (created bool, err error) {
	resp, err := c.call(ctx, Request{Method: http.MethodPut, Path: c.subscriptionsPath(function) + "/" + url.PathEscape(topic)}, nil)
	return err == nil && resp.Status == http.StatusCreated, err
}

// Unsubscribe ends the function's subscription to the topic.
func (c *Client) Unsubscribe(ctx context.Context, function, topic string) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: c.subscriptionsPath(function) + "/" + url.PathEscape(topic)}, nil)
	return err
}

// Subscriptions lists the topics the function subscribes to.
func (c *Client) Subscriptions(ctx context.Context, function string) ([]frontend.SubscriptionView, error) {
	var subs []frontend.SubscriptionView
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.subscriptionsPath(function)}, &subs)
	return subs, err
}

func (c *Client) subscriptionsPath(function string) string {
	return c.userPath("/fn/" + url.PathEscape(function) + "/subscriptions")
}

// Topics lists the user's topics with their subscribers.
func (c *Client) Topics(ctx context.Context) ([]frontend.TopicView, error) {
	var topics []frontend.TopicView
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/topics")}, &topics)
	return topics, err
}

// Publish publishes event, one JSON value, to the topic and returns the
// ids of the jobs it started, one per subscriber. With a key, a retry
// answers the same ids and starts nothing new.
func (c *Client) Publish(ctx context.Context, topic string, event json.RawMessage, key string) ([]string, error) {
	h := jsonHeader()
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	var ids []string
	_, err := c.call(ctx, Request{Method: http.MethodPost, Path: c.userPath("/topics/" + url.PathEscape(topic)),
		Body: strings.NewReader(string(event)), Header: h}, &ids)
	return ids, err
}

// Run says how to submit a job.
type Run struct {
	// Args is the JSON array of arguments; nil means none.
	Args json.RawMessage
	// Wait, if positive, waits up to that long for the result.
	Wait time.Duration
	// IdempotencyKey makes a retried submission answer like the first.
	IdempotencyKey string
	// Timeout and MemoryMB are a try's settings (Try only).
	Timeout  time.Duration
	MemoryMB int
}

// Outcome is a submission's answer: the job's id and, when it finished
// within the wait, its result. A failed job is an error that JobFailed
// recognises.
type Outcome struct {
	JobID string
	// Done is true when Result holds the job's value.
	Done   bool
	Result json.RawMessage
	// Replayed is true when the idempotency key matched an earlier
	// submission, whose answer this is.
	Replayed bool
}

// args is the argument array to send.
func (r Run) args() json.RawMessage {
	if r.Args == nil {
		return json.RawMessage("[]")
	}
	return r.Args
}

// query is a submission's query: the wait.
func (r Run) query() url.Values {
	q := url.Values{}
	if r.Wait > 0 {
		q.Set("wait", r.Wait.String())
	}
	return q
}

// Run submits a job of the function name.
func (c *Client) Run(ctx context.Context, name string, r Run) (Outcome, error) {
	req := Request{Method: http.MethodPost, Path: c.userPath("/fn/"+url.PathEscape(name)+"/run") + query(r.query()), Body: strings.NewReader(string(r.args()))}
	if r.IdempotencyKey != "" {
		req.Header = http.Header{"Idempotency-Key": {r.IdempotencyKey}}
	}
	return c.submit(ctx, req)
}

// Try runs src once with r.Args without storing it, answering like Run.
func (c *Client) Try(ctx context.Context, src string, r Run) (Outcome, error) {
	q := r.query()
	if r.Timeout > 0 {
		q.Set("timeout", r.Timeout.String())
	}
	if r.MemoryMB > 0 {
		q.Set("memory", strconv.Itoa(r.MemoryMB))
	}
	body, err := jsonBody(struct {
		Source string          `json:"src"`
		Args   json.RawMessage `json:"args"`
	}{src, r.args()})
	if err != nil {
		return Outcome{}, err
	}
	return c.submit(ctx, Request{Method: http.MethodPost, Path: c.userPath("/try") + query(q), Body: body, Header: jsonHeader()})
}

// submit sends a run or a try: 202 is the job id, 200 its result.
func (c *Client) submit(ctx context.Context, r Request) (Outcome, error) {
	resp, err := c.Do(ctx, r)
	if resp == nil {
		return Outcome{}, err
	}
	o := Outcome{JobID: strings.TrimPrefix(resp.Header.Get("Location"), "/j/"), Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	switch {
	case err != nil:
		return o, err
	case resp.Status == http.StatusAccepted:
		if o.JobID == "" {
			err = json.Unmarshal(resp.Res, &o.JobID)
		}
		return o, err
	default:
		o.Done, o.Result = true, resp.Res
		return o, nil
	}
}

// Finished reports whether the job has finished, either way.
func (c *Client) Finished(ctx context.Context, id string) (bool, error) {
	var state int
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: jobPath(id, "")}, &state)
	return state == 1, err
}

// Result is a finished job's value; a failed job's error satisfies
// JobFailed, and an unfinished job's has the code not_finished.
func (c *Client) Result(ctx context.Context, id string) (json.RawMessage, error) {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: jobPath(id, "/res")})
	if err != nil {
		return nil, err
	}
	return resp.Res, nil
}

// Info is a job's whole record.
func (c *Client) Info(ctx context.Context, id string) (frontend.JobInfo, error) {
	var info frontend.JobInfo
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: jobPath(id, "/info")}, &info)
	return info, err
}

// Logs is what the job printed so far.
func (c *Client) Logs(ctx context.Context, id string) (string, error) {
	var logs string
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: jobPath(id, "/logs")}, &logs)
	return logs, err
}

// LogLines is what the job printed so far, line by line with streams.
func (c *Client) LogLines(ctx context.Context, id string) ([]faas.LogLine, error) {
	var lines []faas.LogLine
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: jobPath(id, "/logs?format=lines")}, &lines)
	return lines, err
}

// DeleteJob removes a job, stopping it if it runs.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	_, err := c.call(ctx, Request{Method: http.MethodDelete, Path: jobPath(id, "")}, nil)
	return err
}

// JobFilter selects a page of the user's jobs; zero fields select all,
// with the platform's default page size.
type JobFilter struct {
	Function string
	State    string
	Limit    int
	Cursor   string
}

// Jobs returns a page of the user's jobs, newest first.
func (c *Client) Jobs(ctx context.Context, f JobFilter) (frontend.JobList, error) {
	q := url.Values{}
	if f.Function != "" {
		q.Set("fn", f.Function)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	var page frontend.JobList
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: c.userPath("/jobs") + query(q)}, &page)
	return page, err
}

// Stats is the operator's view of the platform; the client must hold the
// operator's token.
func (c *Client) Stats(ctx context.Context) (frontend.Stats, error) {
	var st frontend.Stats
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: "/stats"}, &st)
	return st, err
}

// Failures lists the newest failed jobs of every user, at most limit of
// them (0: the server's default); the client must hold the operator's token.
func (c *Client) Failures(ctx context.Context, limit int) (frontend.FailureList, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var list frontend.FailureList
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: "/admin/failures" + query(q)}, &list)
	return list, err
}

// Healthz checks that the frontend serves HTTP.
func (c *Client) Healthz(ctx context.Context) error {
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: "/healthz", NoAuth: true}, nil)
	return err
}

// Readyz checks that the frontend reaches both managers.
func (c *Client) Readyz(ctx context.Context) error {
	_, err := c.call(ctx, Request{Method: http.MethodGet, Path: "/readyz", NoAuth: true}, nil)
	return err
}

// jobPath is the path of job id, followed by rest.
func jobPath(id, rest string) string { return "/j/" + url.PathEscape(id) + rest }

// query is q as a query string, "" when empty.
func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// pageQuery is the query of a page of a function listing.
func pageQuery(cursor string, limit int, fields string) string {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if fields != "" {
		q.Set("fields", fields)
	}
	return query(q)
}

// next is a listing's next cursor, "" without an answer.
func next(resp *Response) string {
	if resp == nil {
		return ""
	}
	return resp.NextCursor
}
