package frontend

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// hookSecretLen is the length of a hook's secret: 32 hex digits, 128
// random bits, which nobody guesses.
const hookSecretLen = 32

// defaultHookWait is how long POST /hook/<secret> waits for the result
// unless ?wait says otherwise: callers of webhooks rarely poll.
const defaultHookWait = 10 * time.Second

// hiddenHeaders never reach a hook's function: a caller's credentials
// for something else are none of the function's business.
var hiddenHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// HookView is a hook as the API shows it. URL is set only in the answer
// to its creation: the platform keeps only its hash.
type HookView struct {
	ID       string    `json:"id"`
	Function string    `json:"function"`
	Created  time.Time `json:"created"`
	URL      string    `json:"url,omitempty"`
}

// HookEvent is the one argument a hook's function runs with.
type HookEvent struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query"`
	Headers map[string]string   `json:"headers"`
	Body    string              `json:"body"`
	// JSON is the body parsed, when it is JSON; absent otherwise.
	JSON json.RawMessage `json:"json,omitempty"`
}

// hashSecret is the Store's key of a hook secret.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func (s *Server) createHook(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	secret := newHookSecret()
	hash := hashSecret(secret)
	h := faas.Hook{Hash: hash, ID: hash[:faas.HookIDLen], Owner: owner, Function: name, Created: s.clock.now()}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.store.CreateHook(ctx, h); err != nil {
		s.fail(c, fmt.Errorf("create hook of %s/%s: %w", owner, name, err))
		return
	}
	ok(c, http.StatusCreated, HookView{ID: h.ID, Function: name, Created: h.Created, URL: "/hook/" + secret})
}

// newHookSecret returns hookSecretLen random hex digits.
func newHookSecret() string {
	b := make([]byte, hookSecretLen/2)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return hex.EncodeToString(b)
}

func (s *Server) listHooks(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	hooks, err := s.store.Hooks(ctx, owner, name)
	if err != nil {
		s.fail(c, fmt.Errorf("list hooks of %s/%s: %w", owner, name, err))
		return
	}
	out := make([]HookView, len(hooks))
	for i, h := range hooks {
		out[i] = HookView{ID: h.ID, Function: h.Function, Created: h.Created}
	}
	ok(c, http.StatusOK, out)
}

func (s *Server) deleteHook(c *gin.Context) {
	owner, name, id := c.Param("u"), c.Param("f"), c.Param("id")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.store.DeleteHook(ctx, owner, name, id); err != nil {
		s.fail(c, fmt.Errorf("delete hook %s of %s/%s: %w", id, owner, name, err))
		return
	}
	ok(c, http.StatusOK, id)
}

// runHook runs a hook's function as its owner, with the request as its
// argument. A malformed secret is refused before the Store is asked, and
// like an unknown one: both are 404, so the answer tells a guesser
// nothing.
func (s *Server) runHook(c *gin.Context) {
	secret := c.Param("id")
	if len(secret) != hookSecretLen || strings.Trim(secret, "0123456789abcdef") != "" {
		s.fail(c, faas.Errorf(faas.NotFound, "no such hook: a hook URL is /hook/ and %d lowercase hex digits", hookSecretLen))
		return
	}
	hash := hashSecret(secret)
	id := hash[:faas.HookIDLen]
	if s.hookLimits != nil {
		if err := overLimit(s.hookLimits, id, "hook_rate", faas.Errorf(faas.TooMany,
			"hook %s gets more than %g requests per second; slow down", id, s.cfg.HookRate)); err != nil {
			s.fail(c, err)
			return
		}
	}
	wait, err := durationParam(c, "wait", defaultHookWait, maxWait)
	if err != nil {
		s.fail(c, err)
		return
	}
	lookup, cancel := s.reqCtx(c, 0)
	h, err := s.store.HookByHash(lookup, hash)
	cancel()
	if err != nil {
		s.fail(c, fmt.Errorf("look up hook %s: %w", id, err))
		return
	}
	raw, err := readBody(c, maxArgsBytes, "hook body")
	if err != nil {
		s.fail(c, err)
		return
	}
	args, err := json.Marshal([]HookEvent{hookEvent(c.Request, raw)})
	if err != nil {
		s.fail(c, fmt.Errorf("encode hook event: %w", err))
		return
	}
	ctx, done, err := s.admitJob(c, h.Owner, len(args), wait)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer done()
	job, _, err := s.submit(ctx, faas.Job{Owner: h.Owner, Function: h.Function, Args: args, Trigger: faas.TriggerWebhook}, "")
	if err != nil {
		s.fail(c, fmt.Errorf("submit job of hook %s: %w", id, err))
		return
	}
	s.answerSubmitted(ctx, c, job.ID, wait, nil)
}

// hookEvent describes r for a hook's function. The path is the route's,
// not the URL's: the secret in it is the hook's credential, which the
// function does not need and its logs should not keep.
func hookEvent(r *http.Request, body []byte) HookEvent {
	ev := HookEvent{
		Method:  r.Method,
		Path:    "/hook",
		Query:   r.URL.Query(),
		Headers: make(map[string]string, len(r.Header)),
		Body:    string(body),
	}
	for k, v := range r.Header {
		ev.Headers[k] = strings.Join(v, ", ")
	}
	for _, k := range hiddenHeaders {
		delete(ev.Headers, k)
	}
	if json.Valid(body) {
		ev.JSON = body
	}
	return ev
}
