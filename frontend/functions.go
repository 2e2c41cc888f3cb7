package frontend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
	"faas/worker/sandbox"
)

// Limits on what a client may send.
const (
	maxSourceBytes = 256 << 10
	maxArgsBytes   = 1 << 20
	defaultTimeout = 30 * time.Second
	maxTimeout     = 5 * time.Minute
	maxWait        = 60 * time.Second
)

// readBody reads the request body, answering too_large beyond limit. A
// declared Content-Length over the limit is refused before reading a byte.
func readBody(c *gin.Context, limit int64, what string) ([]byte, error) {
	// Made only when needed: formatting it cost every request.
	tooLarge := func() error { return faas.Errorf(faas.TooLarge, "%s is larger than %d bytes", what, limit) }
	if c.Request.ContentLength > limit {
		return nil, tooLarge()
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	var b []byte
	var err error
	if n := c.Request.ContentLength; n > 0 {
		// The length is known, and within limit: one buffer of that
		// size, with room to hear the end, instead of io.ReadAll's
		// doublings and copies of a large body.
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
		_, err = buf.ReadFrom(body)
		b = buf.Bytes()
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, faas.Errorf(faas.Invalid, "read %s: %v", what, err)
	}
	return b, nil
}

// durationParam parses the query parameter name as a Go duration in
// (0, max], or returns def when it is absent.
func durationParam(c *gin.Context, name string, def, max time.Duration) (time.Duration, error) {
	v, present := c.GetQuery(name)
	if !present {
		return def, nil
	}
	return parseDuration(name, v, max)
}

// parseDuration parses the setting name as a Go duration in (0, max].
func parseDuration(name, v string, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > max {
		return 0, faas.Errorf(faas.Invalid, "invalid %s %q: want a duration like 5s, above 0 and at most %v", name, v, max)
	}
	return d, nil
}

// The bounds of a function's ?memory (MB): below the lower one the
// sandbox's own runtime does not fit.
const (
	minMemoryMB = 32
	maxMemoryMB = 4096
)

// memoryParam reads ?memory, the function's sandbox memory cap in MB; 0,
// when it is absent, means the worker's default. Above the operator's
// ceiling is too large rather than invalid: the same request may pass on
// another platform.
func memoryParam(c *gin.Context, ceiling int) (int, error) {
	v, present := c.GetQuery("memory")
	if !present {
		return 0, nil
	}
	return checkMemory(v, ceiling)
}

// checkMemory parses a memory setting in MB within the bounds.
func checkMemory(v string, ceiling int) (int, error) {
	mb, err := strconv.Atoi(v)
	if err != nil || mb < minMemoryMB || mb > maxMemoryMB {
		return 0, faas.Errorf(faas.Invalid, "invalid memory %q: want megabytes from %d to %d", v, minMemoryMB, ceiling)
	}
	if mb > ceiling {
		return 0, faas.Errorf(faas.TooLarge, "memory %d MB is above this platform's ceiling of %d MB (FAAS_SANDBOX_MAX_MEMORY_MB)", mb, ceiling)
	}
	return mb, nil
}

// checkConcurrency parses a function's concurrency limit: the most of its
// jobs that may run at once, 0 meaning no limit.
func checkConcurrency(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, faas.Errorf(faas.Invalid, "invalid concurrency %q: want a whole number of jobs, 0 or more (0: no limit)", v)
	}
	return n, nil
}

// settingParams reads a function's ?timeout and ?memory, with their
// defaults when absent.
func (s *Server) settingParams(c *gin.Context) (timeout time.Duration, memory int, err error) {
	if timeout, err = durationParam(c, "timeout", defaultTimeout, maxTimeout); err != nil {
		return 0, 0, err
	}
	memory, err = memoryParam(c, s.cfg.memoryCeiling())
	return timeout, memory, err
}

// putFunction compiles and stores a function. Compiling here, not in the
// worker, tells the user about a syntax error when they can fix it.
func (s *Server) putFunction(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	up, err := s.readUpload(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !utf8.ValidString(up.Source) {
		s.fail(c, faas.Errorf(faas.Invalid, "function source is not valid UTF-8"))
		return
	}
	// The sandbox's own check, so upload and execution cannot disagree.
	if err := sandbox.Validate(up.Source, name); err != nil {
		s.fail(c, err)
		return
	}
	src := up.Source
	up.Owner, up.Name = owner, name
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	// One upload per user at a time in this process, so that concurrent
	// uploads cannot all pass the quota check before any is stored.
	defer s.uploads.lock(owner)()
	if err := s.checkFunctionQuota(ctx, owner, name, len(src)); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.keepLimits(ctx, &up); err != nil {
		s.fail(c, err)
		return
	}
	f, created, err := s.store.PutFunction(ctx, up.Function)
	if err != nil {
		s.fail(c, fmt.Errorf("put function %s/%s: %w", owner, name, err))
		return
	}
	s.functionChanged(ctx, owner, name)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	ok(c, status, newFunctionView(f, false))
}

// upload is what an upload asks for: the function, and which of its
// limits it names, in the query or the form.
type upload struct {
	faas.Function
	timeoutSet, memorySet, concurrencySet bool
}

// keepLimits gives the upload the timeout, memory cap and concurrency limit of the function
// it replaces where it names none, so that uploading new source does not
// silently reset them (the Store keeps env and secrets the same way).
// Callers hold the owner's upload lock, so no other upload here changes
// them in between.
func (s *Server) keepLimits(ctx context.Context, up *upload) error {
	if up.timeoutSet && up.memorySet && up.concurrencySet {
		return nil
	}
	f := &up.Function
	old, err := s.store.Function(ctx, f.Owner, f.Name)
	if faas.ErrorCode(err) == faas.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read settings of function %s/%s: %w", f.Owner, f.Name, err)
	}
	if !up.timeoutSet {
		f.Timeout = old.Timeout
	}
	if !up.memorySet {
		f.MemoryMB = old.MemoryMB
	}
	if !up.concurrencySet {
		f.Concurrency = old.Concurrency
	}
	return nil
}

// maxFormBytes bounds the body of a JSON upload: a source, the most env
// and secrets, and room for JSON's escaping. The source in it is bounded
// like a raw one once decoded.
const maxFormBytes = 4 * (maxSourceBytes + faas.MaxSettings*faas.MaxSettingBytes)

// uploadForm is the JSON body of an upload that sets more than the
// source. A field left out keeps the function's previous env or secrets;
// an empty object clears them.
type uploadForm struct {
	Source  *string           `json:"src"`
	Env     map[string]string `json:"env"`
	Secrets map[string]string `json:"secrets"`
	Timeout *string           `json:"timeout"`
	Memory  *int              `json:"memory"`
	// Concurrency is a pointer, like Memory, so that 0 (no limit) can be
	// told from a field left out (keep the previous limit).
	Concurrency *int `json:"concurrency"`
}

// readUpload reads an upload: the JSON form when the body is declared
// JSON and is an object with a src string, else the raw source, as it
// always was, with ?timeout, ?memory and ?concurrency. In the form,
// timeout, memory and concurrency take the query's place. Secrets are checked here, so that a bad one is
// refused before anything is stored; messages name the secret, never its
// value.
func (s *Server) readUpload(c *gin.Context) (upload, error) {
	var f upload
	var err error
	if f.Timeout, f.MemoryMB, err = s.settingParams(c); err != nil {
		return f, err
	}
	_, f.timeoutSet = c.GetQuery("timeout")
	_, f.memorySet = c.GetQuery("memory")
	if v, present := c.GetQuery("concurrency"); present {
		if f.Concurrency, err = checkConcurrency(v); err != nil {
			return f, err
		}
		f.concurrencySet = true
	}
	limit := int64(maxSourceBytes)
	form := c.ContentType() == "application/json"
	if form {
		limit = maxFormBytes
	}
	body, err := readBody(c, limit, "function source")
	if err != nil {
		return f, err
	}
	var up uploadForm
	if !form || !jsonObjectWithSource(body) {
		if len(body) > maxSourceBytes {
			return f, faas.Errorf(faas.TooLarge, "function source is larger than %d bytes", maxSourceBytes)
		}
		f.Source = string(body)
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&up); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return f, faas.Errorf(faas.Invalid, "invalid upload form: %s, not a JSON %s", want(ute), ute.Value)
		}
		return f, faas.Errorf(faas.Invalid, "invalid upload form: %v: want {\"src\": \"...\", \"env\": {\"NAME\": \"value\"}, \"secrets\": {...}, \"timeout\": \"5s\", \"memory\": 128, \"concurrency\": 2}", err)
	}
	if len(*up.Source) > maxSourceBytes {
		return f, faas.Errorf(faas.TooLarge, "function source is larger than %d bytes", maxSourceBytes)
	}
	f.Source, f.Env, f.Secrets = *up.Source, up.Env, up.Secrets
	if err := faas.CheckSettings(f.Env, f.Secrets); err != nil {
		return f, err
	}
	if up.Timeout != nil {
		if f.Timeout, err = parseDuration("timeout", *up.Timeout, maxTimeout); err != nil {
			return f, err
		}
		f.timeoutSet = true
	}
	if up.Memory != nil {
		if f.MemoryMB, err = checkMemory(strconv.Itoa(*up.Memory), s.cfg.memoryCeiling()); err != nil {
			return f, err
		}
		f.memorySet = true
	}
	if up.Concurrency != nil {
		if f.Concurrency, err = checkConcurrency(strconv.Itoa(*up.Concurrency)); err != nil {
			return f, err
		}
		f.concurrencySet = true
	}
	return f, nil
}

// want says what a form field that did not decode must be.
func want(e *json.UnmarshalTypeError) string {
	switch {
	case e.Type.Kind() == reflect.Map:
		return e.Field + " must be an object of strings"
	case e.Field == "env" || e.Field == "secrets":
		return e.Field + " values must be strings"
	case e.Type.Kind() == reflect.Int:
		return e.Field + " must be a number"
	default:
		return e.Field + " must be a string"
	}
}

// jsonObjectWithSource tells whether body is a JSON object whose src is a
// string: only such a body is the upload form. Anything else declared
// JSON is taken as source, as before the form existed.
func jsonObjectWithSource(body []byte) bool {
	var probe struct {
		Source json.RawMessage `json:"src"`
	}
	trimmed := bytes.TrimSpace(body)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &probe) == nil &&
		len(probe.Source) > 0 && probe.Source[0] == '"'
}

// The page sizes of a function listing.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// listFunctions answers a page of the user's functions in name order, as
// {name: source} (the reference project's shape, which a list shorter
// than a page keeps exactly), or with ?fields=settings as {name:
// settings} without sources. A longer list ends its page with a
// next_cursor beside res, to pass back as ?cursor for the next one.
func (s *Server) listFunctions(c *gin.Context) {
	owner := c.Param("u")
	page, err := pageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	limit := page.Limit
	page.Limit++ // one more tells whether there is a next page
	if page.After == "" {
		page.After = tryName // a dry run's source is not a function to list
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	fns, err := s.store.Functions(ctx, owner, page)
	if err != nil {
		s.fail(c, fmt.Errorf("list functions of %s: %w", owner, err))
		return
	}
	var next string
	if len(fns) > limit {
		fns = fns[:limit]
		next = encodeCursor(fns[limit-1].Name)
	}
	res := make(map[string]any, len(fns))
	for _, f := range fns {
		if page.NoSource {
			res[f.Name] = newFunctionView(f, false)
		} else {
			res[f.Name] = f.Source
		}
	}
	okPage(c, res, next)
}

// pageParams reads ?limit, ?cursor and ?fields of a function listing.
func pageParams(c *gin.Context) (faas.FunctionPage, error) {
	page := faas.FunctionPage{Limit: defaultListLimit}
	if v, present := c.GetQuery("limit"); present {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return page, faas.Errorf(faas.Invalid, "invalid limit %.40q: want a number from 1 to %d", v, maxListLimit)
		}
		page.Limit = n
	}
	if v, present := c.GetQuery("cursor"); present {
		name, err := decodeCursor(v)
		if err != nil {
			return page, err
		}
		page.After = name
	}
	switch v := c.Query("fields"); v {
	case "", "src":
	case "settings":
		page.NoSource = true
	default:
		return page, faas.Errorf(faas.Invalid, "invalid fields %.40q: want src (the default) or settings", v)
	}
	return page, nil
}

// encodeCursor is the cursor of the page after the function name. It is
// opaque to clients so that what it holds may change.
func encodeCursor(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

// decodeCursor returns the name a cursor holds; only a valid name is one.
func decodeCursor(v string) (string, error) {
	name, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || !faas.ValidName(string(name)) {
		return "", faas.Errorf(faas.Invalid, "invalid cursor %.80q: pass the next_cursor of the previous page", v)
	}
	return string(name), nil
}

// FunctionView is what the API says of a function: GET /u/:u/fn/:f
// answers it with the source, an upload and a listing with
// ?fields=settings without.
type FunctionView struct {
	Name      string  `json:"name"`
	Source    string  `json:"src,omitempty"`
	Version   int64   `json:"version"`
	TimeoutMS float64 `json:"timeout_ms"`
	// MemoryMB is the sandbox memory cap; 0 means the worker's default.
	MemoryMB int `json:"memory_mb"`
	// Concurrency is the most jobs of the function running at once; 0
	// means no limit.
	Concurrency int       `json:"concurrency"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Env and Secrets name the function's env values and secrets, in
	// order; never their values.
	Env     []string `json:"env"`
	Secrets []string `json:"secrets"`
}

func newFunctionView(f faas.Function, withSource bool) FunctionView {
	v := FunctionView{Name: f.Name, Version: f.Version, TimeoutMS: millis(f.Timeout),
		MemoryMB: f.MemoryMB, Concurrency: f.Concurrency, Created: f.Created, Updated: f.Updated, Env: names(f.Env), Secrets: names(f.Secrets)}
	if withSource {
		v.Source = f.Source
	}
	return v
}

func (s *Server) getFunction(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	f, err := s.store.Function(ctx, owner, name)
	if err != nil {
		s.fail(c, fmt.Errorf("get function %s/%s: %w", owner, name, err))
		return
	}
	ok(c, http.StatusOK, newFunctionView(f, true))
}

// names lists a function's env or secret names in order, never their
// values: secrets reach the frontend by name only anyway.
func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *Server) deleteFunction(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.store.DeleteFunction(ctx, owner, name); err != nil {
		s.fail(c, fmt.Errorf("delete function %s/%s: %w", owner, name, err))
		return
	}
	s.functionChanged(ctx, owner, name)
	ok(c, http.StatusOK, name)
}

// functionChanged tells the queue that a function was replaced or
// deleted, so that it does not hand its next job to a worker at the old
// version, to be revoked once the Store refuses it. The change is made
// whatever the queue answers: a queue that did not hear of it costs that
// one job a second run, not its outcome.
func (s *Server) functionChanged(ctx context.Context, owner, name string) {
	if err := s.queue.FunctionChanged(ctx, owner, name); err != nil {
		s.log.Warn("tell the queue of a changed function", "user", owner, "function", name, "err", err)
	}
}
