package frontend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// operation describes one route for the OpenAPI document. The routes are
// listed here, in Go, rather than in a JSON file beside the code, so that
// the parameters and schemas each route shares are written once, and
// TestOpenAPIMatchesRoutes holds the list to the router's.
type operation struct {
	method, path, summary string
	// auth is the security the route needs: "" none, "user" a user's
	// token, "admin" the operator's, "metrics" FAAS_METRICS_TOKEN when set.
	auth   string
	params []param
	// body is the request body's media type and schema, if any.
	body []media
	// ok maps each success status to the schema of res.
	ok map[int]schema
	// raw, if set, is the media type of a body answered as is, outside
	// the envelope.
	raw string
}

type param struct {
	name, in, description string
	schema                schema
	required              bool
}

type media struct {
	typ    string
	schema schema
}

// schema is a JSON Schema fragment as OpenAPI 3.0 writes it.
type schema = map[string]any

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }

var (
	str     = schema{"type": "string"}
	number  = schema{"type": "number"}
	integer = schema{"type": "integer"}
	anyJSON = schema{"description": "any JSON value"}
	strList = schema{"type": "array", "items": str}
)

// The path parameters and query parameters several routes share.
var (
	docUser = param{name: "u", in: "path", required: true, schema: str,
		description: "user name: 1-64 of letters, digits, _ . -, not dots alone"}
	docFn   = param{name: "f", in: "path", required: true, schema: str, description: "function name, as a user name"}
	docJob  = param{name: "id", in: "path", required: true, schema: str, description: "job id (a UUID)"}
	docWait = param{name: "wait", in: "query", schema: str,
		description: "how long to wait for the result, a Go duration (at most 60s); without it the job id is answered at once"}
	docTimeout = param{name: "timeout", in: "query", schema: str,
		description: "the function's time limit, a Go duration up to 5m; default 30s, or on a replacement the previous value"}
	docMemory = param{name: "memory", in: "query", schema: integer,
		description: "the sandbox memory cap in MB, 32 to FAAS_SANDBOX_MAX_MEMORY_MB; default the worker's, or on a replacement the previous value"}
	docConcurrency = param{name: "concurrency", in: "query", schema: integer,
		description: "the most jobs of the function running at once across the platform, 0 or more; 0 (the default) is no limit, and a replacement without it keeps the previous value"}
	docHook        = param{name: "id", in: "path", required: true, schema: str, description: "the hook's id, as listed (16 hex digits)"}
	docTopic       = param{name: "topic", in: "path", required: true, schema: str, description: "topic name, as a function name"}
	docIdempotency = param{name: "Idempotency-Key", in: "header", schema: str,
		description: "makes a retried submission return the first one's job instead of running again"}
)

// operations is every route of the API.
var operations = []operation{
	{method: "GET", path: "/healthz", summary: "the process is up", ok: map[int]schema{200: str}},
	{method: "GET", path: "/readyz", summary: "both managers answered a ping (503 otherwise)", ok: map[int]schema{200: str}},
	{method: "GET", path: "/stats", summary: "operator view: queued, running, workers, jobs/s", auth: "admin", ok: map[int]schema{200: ref("Stats")}},
	{method: "GET", path: "/admin/failures", summary: "operator view: the newest failed jobs of every user, newest first", auth: "admin",
		params: []param{{name: "limit", in: "query", schema: integer, description: "how many, 1 to 100; default 20"}},
		ok:     map[int]schema{200: ref("FailureList")}},
	{method: "GET", path: "/openapi.json", summary: "this document, not in the envelope", raw: "application/json", ok: map[int]schema{200: schema{"type": "object"}}},
	{method: "GET", path: "/metrics", summary: "Prometheus metrics of every role this frontend serves, in the text exposition format", auth: "metrics",
		raw: "text/plain", ok: map[int]schema{200: str}},

	{method: "POST", path: "/u/:u", summary: "register a user; the answer is the only time the token is seen",
		params: []param{docUser}, ok: map[int]schema{201: ref("Token")}},
	{method: "DELETE", path: "/u/:u", summary: "remove the user with their functions and jobs", auth: "user",
		params: []param{docUser}, ok: map[int]schema{200: str}},
	{method: "POST", path: "/u/:u/token", summary: "replace the user's token; the old one stops working on every frontend at once", auth: "user",
		params: []param{docUser}, ok: map[int]schema{200: ref("Token")}},
	{method: "GET", path: "/u/:u/time", summary: "total billed execution time in milliseconds", auth: "user",
		params: []param{docUser}, ok: map[int]schema{200: number}},
	{method: "GET", path: "/u/:u/fn", summary: "a page of the user's functions in name order, {name: source} or with fields=settings {name: settings}; next_cursor beside res when there is more", auth: "user",
		params: []param{docUser,
			{name: "limit", in: "query", schema: integer, description: "1-1000, default 100"},
			{name: "cursor", in: "query", schema: str, description: "the next_cursor of the previous page"},
			{name: "fields", in: "query", schema: schema{"type": "string", "enum": []string{"src", "settings"}}},
		}, ok: map[int]schema{200: schema{"type": "object", "additionalProperties": schema{"oneOf": []schema{str, ref("Function")}}}}},
	{method: "GET", path: "/u/:u/fn/:f", summary: "one function with its settings and source", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: ref("Function")}},
	{method: "POST", path: "/u/:u/fn/:f", summary: "create or replace a function; a setting the upload does not name keeps its previous value", auth: "user",
		params: []param{docUser, docFn, docTimeout, docMemory, docConcurrency},
		body: []media{
			{"text/plain", schema{"type": "string", "description": "the JavaScript source, at most 256 KiB"}},
			{"application/json", ref("Upload")},
		},
		ok: map[int]schema{200: ref("Function"), 201: ref("Function")}},
	{method: "DELETE", path: "/u/:u/fn/:f", summary: "remove a function; its queued jobs fail with function_deleted", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: str}},
	{method: "POST", path: "/u/:u/fn/:f/run", summary: "run the function with a JSON array of arguments (empty body: [])", auth: "user",
		params: []param{docUser, docFn, docWait, docIdempotency},
		body:   []media{{"application/json", schema{"type": "array", "items": anyJSON}}},
		ok:     map[int]schema{200: anyJSON, 202: schema{"type": "string", "description": "the job id; Location names the job"}}},
	{method: "POST", path: "/u/:u/try", summary: "run a source once without storing it as a function, answered like run with ?wait; the job's function is (try)", auth: "user",
		params: []param{docUser, {name: "wait", in: "query", schema: str, description: "how long to wait for the result, a Go duration, default 30s, at most 60s"}, docTimeout, docMemory},
		body:   []media{{"application/json", ref("Try")}},
		ok:     map[int]schema{200: anyJSON, 202: schema{"type": "string", "description": "the job id, when the wait ran out; Location names the job"}}},
	{method: "POST", path: "/u/:u/fn/:f/hooks", summary: "create a webhook; its url, /hook/ and 32 hex digits, is shown only in this answer", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{201: ref("Hook")}},
	{method: "GET", path: "/u/:u/fn/:f/hooks", summary: "the function's webhooks, oldest first, without their urls", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: schema{"type": "array", "items": ref("Hook")}}},
	{method: "DELETE", path: "/u/:u/fn/:f/hooks/:id", summary: "revoke a webhook: its url answers 404 from then on", auth: "user",
		params: []param{docUser, docFn, docHook}, ok: map[int]schema{200: str}},
	{method: "PUT", path: "/u/:u/fn/:f/schedule", summary: "run the function on a schedule, replacing its schedule if it has one: each tick submits one job with args, whose record says trigger schedule. Ticks missed while the platform was down fire once, as their latest tick", auth: "user",
		params: []param{docUser, docFn},
		body:   []media{{"application/json", ref("ScheduleRequest")}},
		ok:     map[int]schema{200: ref("Schedule")}},
	{method: "GET", path: "/u/:u/fn/:f/schedule", summary: "the function's schedule and its next five fire times; 404 if it has none", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: ref("Schedule")}},
	{method: "DELETE", path: "/u/:u/fn/:f/schedule", summary: "stop the function's schedule", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: str}},
	{method: "GET", path: "/u/:u/fn/:f/subscriptions", summary: "the topics the function subscribes to, in name order; 404 if there is no such function", auth: "user",
		params: []param{docUser, docFn}, ok: map[int]schema{200: schema{"type": "array", "items": ref("Subscription")}}},
	{method: "PUT", path: "/u/:u/fn/:f/subscriptions/:topic", summary: "subscribe the function to one of the user's topics: every event published to it runs the function once with [event]; 201 when new, 200 when it already was", auth: "user",
		params: []param{docUser, docFn, docTopic}, ok: map[int]schema{200: str, 201: str}},
	{method: "DELETE", path: "/u/:u/fn/:f/subscriptions/:topic", summary: "unsubscribe the function from the topic; 404 if it was not subscribed", auth: "user",
		params: []param{docUser, docFn, docTopic}, ok: map[int]schema{200: str}},
	{method: "GET", path: "/u/:u/topics", summary: "the user's topics, in name order, each with its subscribers; a topic exists while a function subscribes to it", auth: "user",
		params: []param{docUser}, ok: map[int]schema{200: schema{"type": "array", "items": ref("Topic")}}},
	{method: "POST", path: "/u/:u/topics/:topic", summary: "publish an event: every function subscribed to the topic runs once with [event]. The jobs exist once this answers; over the pending limit none is created (429). Nobody subscribed: an empty list", auth: "user",
		params: []param{docUser, docTopic, {name: "Idempotency-Key", in: "header", schema: str,
			description: "makes a retried publish, through any frontend, create no job twice and answer the same ids"}},
		body: []media{{"application/json", schema{"description": "the event, any JSON value, at most the size of arguments"}}},
		ok:   map[int]schema{202: schema{"type": "array", "items": str, "description": "the ids of the jobs, one per subscriber, in the order of their names"}}},
	{method: "POST", path: "/hook/:id", summary: "run the hook's function as its owner with one argument, {method, path, query, headers, body, json}; no token: the url is the credential. Any body and content type, at most the size of arguments; Authorization and Cookie are not passed on. 404 for an unknown or revoked hook, 429 past FAAS_HOOK_RATE",
		params: []param{{name: "id", in: "path", required: true, schema: str, description: "the hook's secret, 32 lowercase hex digits"},
			{name: "wait", in: "query", schema: str, description: "how long to wait for the result, a Go duration, default 10s, at most 60s"}},
		body: []media{{"*/*", schema{"type": "string", "format": "binary"}}},
		ok:   map[int]schema{200: anyJSON, 202: schema{"type": "string", "description": "the job id, when the wait ran out; Location names the job"}}},
	{method: "GET", path: "/u/:u/jobs", summary: "a page of the user's jobs, newest first", auth: "user",
		params: []param{docUser,
			{name: "fn", in: "query", schema: str, description: "only this function's jobs"},
			{name: "state", in: "query", schema: schema{"type": "string", "enum": []string{"queued", "running", "succeeded", "failed"}}},
			{name: "limit", in: "query", schema: integer, description: "1-500, default 50"},
			{name: "cursor", in: "query", schema: str, description: "the next_cursor of the previous page"},
		}, ok: map[int]schema{200: ref("JobList")}},

	{method: "GET", path: "/j/:id", summary: "0 while the job is queued or running, 1 once it finished", auth: "user",
		params: []param{docJob}, ok: map[int]schema{200: integer}},
	{method: "GET", path: "/j/:id/res", summary: "the function's return value; 422 if it failed, 409 if not finished", auth: "user",
		params: []param{docJob}, ok: map[int]schema{200: anyJSON}},
	{method: "GET", path: "/j/:id/info", summary: "the whole job record", auth: "user",
		params: []param{docJob}, ok: map[int]schema{200: ref("JobInfo")}},
	{method: "GET", path: "/j/:id/logs", summary: "what the function printed so far; with follow=1 a text/event-stream of lines until the job ends", auth: "user",
		params: []param{docJob,
			{name: "follow", in: "query", schema: str, description: "1: stream Server-Sent Events (id: line offset, event: log|info|warn|error, data: the line; event end when the job ends)"},
			{name: "from", in: "query", schema: integer, description: "with follow, resume after this line (as Last-Event-ID)"},
			{name: "format", in: "query", schema: schema{"type": "string", "enum": []string{"lines"}}, description: "lines: res is [{offset, stream, line}]"},
			{name: "Last-Event-ID", in: "header", schema: str, description: "with follow, resume after this line"},
		}, ok: map[int]schema{200: schema{"oneOf": []schema{str, schema{"type": "array", "items": ref("LogLine")}}}}},
	{method: "DELETE", path: "/j/:id", summary: "remove a job; a queued one never runs, a running one is stopped and not billed", auth: "user",
		params: []param{docJob}, ok: map[int]schema{200: str}},
}

// schemas are the records the operations name, as the API writes them.
var schemas = map[string]schema{
	"Error": {"type": "object", "required": []string{"error", "code", "res"}, "properties": map[string]schema{
		"error": {"type": "boolean", "enum": []bool{true}},
		"code":  {"type": "string", "description": "invalid, unauthorized, forbidden, not_found, conflict, not_finished, too_large, quota_exceeded, function_error, timeout, function_deleted, too_many_requests, unavailable, internal, ..."},
		"res":   {"type": "string", "description": "what went wrong"},
	}},
	"Token": {"type": "object", "properties": map[string]schema{"name": str, "token": str}},
	"Function": {"type": "object", "properties": map[string]schema{
		"name": str, "src": str, "version": integer, "timeout_ms": number, "memory_mb": integer, "concurrency": integer,
		"created": {"type": "string", "format": "date-time"}, "updated": {"type": "string", "format": "date-time"},
		"env": strList, "secrets": schema{"type": "array", "items": str, "description": "names only, never values"},
	}},
	"Upload": {"type": "object", "required": []string{"src"}, "properties": map[string]schema{
		"src": str, "timeout": str, "memory": integer, "concurrency": integer,
		"env":     {"type": "object", "additionalProperties": str},
		"secrets": {"type": "object", "additionalProperties": str, "description": "stored encrypted, never answered"},
	}},
	"JobList": {"type": "object", "properties": map[string]schema{
		"jobs": {"type": "array", "items": schema{"type": "object", "properties": map[string]schema{
			"id": str, "function": str, "state": str, "created": {"type": "string", "format": "date-time"},
			"duration_ms": number, "error_code": str, "trigger": schema{"type": "string", "description": "webhook, schedule, job or topic; absent for a run requested through the API"},
		}}},
		"next_cursor": schema{"type": "string", "description": "absent on the last page"},
	}},
	"JobInfo": {"type": "object", "properties": map[string]schema{
		"id": str, "function": str, "args": schema{"type": "array", "items": anyJSON}, "state": str, "attempts": integer,
		"created": {"type": "string", "format": "date-time", "nullable": true},
		"started": {"type": "string", "format": "date-time", "nullable": true}, "finished": {"type": "string", "format": "date-time", "nullable": true},
		"wait_ms": {"type": "number", "nullable": true}, "duration_ms": number, "billed_ms": number,
		"error":    schema{"type": "object", "nullable": true, "properties": map[string]schema{"code": str, "message": str}},
		"trigger":  schema{"type": "string", "description": "webhook or schedule for a job a webhook or a schedule submitted, job for one another job's faas.submit submitted, topic for one a publish created; absent for a run requested through the API"},
		"lost":     schema{"type": "array", "items": schema{"type": "object", "properties": map[string]schema{"code": str, "message": str}}},
		"parent":   schema{"type": "string", "description": "the job whose faas.submit submitted this one; absent otherwise"},
		"children": schema{"type": "array", "items": str, "description": "the jobs this one submitted with faas.submit, oldest first; absent if none"},
		"calls": schema{"type": "array", "description": "the job's fused calls (faas.call) in the order they started, at most 100; absent if none",
			"items": schema{"type": "object", "properties": map[string]schema{
				"function": str, "version": integer, "duration_ms": number,
				"error": schema{"type": "object", "nullable": true, "properties": map[string]schema{"code": str, "message": str}},
			}}},
		"calls_truncated": schema{"type": "boolean", "description": "true when the job made more calls than calls lists"},
	}},
	"Try": {"type": "object", "required": []string{"src"}, "properties": map[string]schema{
		"src":  schema{"type": "string", "description": "the JavaScript source, checked as an upload is"},
		"args": schema{"type": "array", "items": anyJSON, "description": "the arguments, default []"},
	}},
	"Hook": {"type": "object", "properties": map[string]schema{
		"id": str, "function": str, "created": {"type": "string", "format": "date-time"},
		"url": schema{"type": "string", "description": "/hook/<secret>, only when the hook is created"},
	}},
	"ScheduleRequest": {"type": "object", "required": []string{"cron"}, "properties": map[string]schema{
		"cron":     schema{"type": "string", "description": "five fields (minute hour day-of-month month day-of-week), @yearly, @monthly, @weekly, @daily, @hourly, or @every and a duration of whole seconds, at least 1s (@every 10s)"},
		"args":     schema{"type": "array", "items": anyJSON, "description": "the arguments of each tick's job, default [], at most the size of a run's"},
		"timezone": schema{"type": "string", "description": "the IANA zone the cron fields are read in, default UTC"},
	}},
	"Schedule": {"type": "object", "properties": map[string]schema{
		"function": str, "cron": str, "timezone": str, "args": schema{"type": "array", "items": anyJSON},
		"updated":   {"type": "string", "format": "date-time", "description": "when the schedule was put; its ticks are those after it"},
		"last_tick": {"type": "string", "format": "date-time", "nullable": true, "description": "the latest tick fired; null until the first"},
		"next":      {"type": "array", "items": schema{"type": "string", "format": "date-time"}, "description": "the next five fire times"},
	}},
	"Subscription": {"type": "object", "properties": map[string]schema{
		"topic": str, "function": str, "created": {"type": "string", "format": "date-time"},
	}},
	"Topic":   {"type": "object", "properties": map[string]schema{"topic": str, "functions": strList}},
	"LogLine": {"type": "object", "properties": map[string]schema{"offset": integer, "stream": str, "line": str}},
	"FailureList": {"type": "object", "properties": map[string]schema{
		"failures": {"type": "array", "items": schema{"type": "object", "properties": map[string]schema{
			"id": str, "owner": str, "function": str, "finished": {"type": "string", "format": "date-time"},
			"error_code": str, "error_message": str,
		}}},
	}},
	"Stats": {"type": "object", "properties": map[string]schema{
		"queued": integer, "running": integer, "held": integer, "workers": integer, "completed": integer,
		"avg_duration_ms": number, "jobs_per_sec": number,
	}},
}

// openAPIPath turns a gin path into an OpenAPI one: /u/:u becomes /u/{u}.
func openAPIPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// envelope is a success's body with res of the given schema.
func envelope(res schema) schema {
	return schema{"type": "object", "required": []string{"error", "res"}, "properties": map[string]schema{
		"error": {"type": "boolean", "enum": []bool{false}}, "res": res,
	}}
}

// openAPIDocument builds the OpenAPI 3.0 document of operations, once.
func openAPIDocument() []byte {
	paths := map[string]map[string]any{}
	for _, op := range operations {
		responses := map[string]any{"default": map[string]any{
			"description": "an error; the status follows the code",
			"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
		}}
		for status, res := range op.ok {
			typ, body := "application/json", envelope(res)
			if op.raw != "" {
				typ, body = op.raw, res
			}
			responses[strconv.Itoa(status)] = map[string]any{
				"description": http.StatusText(status),
				"content":     map[string]any{typ: map[string]any{"schema": body}},
			}
		}
		o := map[string]any{"summary": op.summary, "responses": responses,
			"operationId": strings.ToLower(op.method) + strings.NewReplacer("/", "_", ":", "", ".", "_").Replace(op.path)}
		var params []map[string]any
		for _, p := range op.params {
			params = append(params, map[string]any{"name": p.name, "in": p.in, "required": p.required,
				"description": p.description, "schema": p.schema})
		}
		if params != nil {
			o["parameters"] = params
		}
		if op.body != nil {
			content := map[string]any{}
			for _, m := range op.body {
				content[m.typ] = map[string]any{"schema": m.schema}
			}
			o["requestBody"] = map[string]any{"content": content}
		}
		switch op.auth {
		case "user":
			o["security"] = []map[string][]string{{"bearer": {}}}
		case "admin":
			o["security"] = []map[string][]string{{"bearer": {}}}
			o["description"] = "needs the operator's token, FAAS_ADMIN_TOKEN"
		case "metrics":
			o["security"] = []map[string][]string{{"bearer": {}}, {}}
			o["description"] = "open unless FAAS_METRICS_TOKEN is set; then needs that token"
		}
		path := openAPIPath(op.path)
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(op.method)] = o
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "faas REST API", "version": "1",
			"description": "Every body but this document's is {\"error\", \"res\"}, errors adding \"code\"; see README.md."},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("openapi document: %v", err)) // only maps and strings: cannot fail
	}
	return b
}

// openAPI serves the document, built once at start.
func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", s.openAPIDoc)
}
