// Package frontend is the platform's REST API: a Gin server that
// authenticates users and turns their requests into calls on a faas.Store
// and a faas.JobQueue. It cannot tell the DB and JQ managers' proxies from
// the managers themselves, which is what lets tests run it against the
// real platform in one process.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"faas/frontend/ui"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/tracing"
)

// shutdownGrace bounds how long Run waits for requests in flight once its
// context ends. Requests waiting for a job stop waiting at once (they
// answer 202), so only ordinary requests need it.
const shutdownGrace = 5 * time.Second

// Server is the REST API server.
type Server struct {
	cfg    Config
	store  faas.Store
	queue  faas.JobQueue
	log    *slog.Logger
	tokens *tokenCache
	// caps bounds the requests waiting for jobs; watch makes them wait.
	caps  *waitCaps
	watch *jqproxy.Watch
	// finished answers the reads of finished jobs (status.go).
	finished *finishedCache
	// limits is nil when rate limiting is off.
	limits *limiter
	// The limits and quotas of limits.go; each limiter is nil when off.
	addrLimits    *limiter
	lookups       *limiter
	registrations *limiter
	hookLimits    *limiter
	badTokens     *tokenCache
	jobTallies    *jobTallies
	uploads       stripedLocks
	proxies       []netip.Prefix
	registering   sync.Mutex
	ready         readiness
	metrics       *httpMetrics
	// clock stamps the jobs this process creates.
	clock uniqueClock

	// openAPIDoc is the document GET /openapi.json serves.
	openAPIDoc []byte

	ln      net.Listener
	handler http.Handler
	srv     *http.Server

	// draining ends when Run begins shutting down, so that requests
	// holding a ?wait give up at once instead of outliving the grace.
	draining  context.Context
	stopWaits context.CancelFunc
	runOnce   sync.Once
	// background is the work requests leave running (sumJobData).
	background sync.WaitGroup
}

// New validates cfg and binds the listener, so an address in use fails
// here rather than inside Run. The caller labels log with the component.
func New(cfg Config, store faas.Store, queue faas.JobQueue, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if store == nil || queue == nil || log == nil {
		return nil, errors.New("frontend: nil store, queue or logger")
	}
	ln, err := net.Listen("tcp", cfg.addr())
	if err != nil {
		return nil, fmt.Errorf("frontend: listen on %s: %w", cfg.addr(), err)
	}
	s := &Server{
		cfg:    cfg,
		store:  store,
		queue:  queue,
		log:    log,
		tokens: newTokenCache(cfg.tokenTTL, tokenCacheSize),
		ln:     ln,

		openAPIDoc: openAPIDocument(),
	}
	s.caps = newWaitCaps(cfg.MaxWaitsPerUser, cfg.MaxWaits)
	s.metrics = newHTTPMetrics(cfg.Metrics, s.caps.admitted)
	// A user deleted through any frontend loses their cached tokens here.
	s.watch = jqproxy.NewWatch(queue, cfg.RequestTimeout, s.tokens.forget, log)
	if cfg.authOn() {
		// Hearing from the queue every quarter of the TTL keeps the
		// watch caught up to well within it while the queue answers, so
		// a token used now and then is not looked up again after every
		// quiet spell.
		s.watch.HearEvery(cfg.tokenTTL / 4)
		s.tokens.trust(cfg.tokenMaxAge, s.watch.CaughtUp)
	}
	s.finished = newFinishedCache(cfg.StatusCacheBytes, cfg.StatusCacheTTL)
	s.watch.Observe(s.finished.observe)
	if cfg.rateLimitOn() {
		s.limits = newLimiter(cfg.RateLimit, cfg.RateBurst, maxBuckets)
	}
	s.proxies, _ = cfg.proxies() // checked by Validate
	s.initLimits()
	s.draining, s.stopWaits = context.WithCancel(context.Background())
	s.handler = s.routes()
	s.srv = &http.Server{
		Handler:           withDashboard(s.handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if !cfg.authOn() {
		log.Warn("authentication is off: anyone can read and change every user's functions and jobs")
	}
	return s, nil
}

// Addr is the address the server listens on, with the port the system
// chose when the configuration asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the REST API without the dashboard, for serving it some
// other way (httptest). A ?wait hears of its job finishing only while Run
// runs the watch of the queue's events; without it, a job not finished
// when the wait begins is answered 202 once the wait is over, and a
// finished job's status is read from the Store, after waiting a moment
// for its event.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx ends, then shuts down gracefully within a bounded
// grace and returns. It may be called once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("frontend: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	s.log.Info("serving REST API", "addr", s.Addr(), "auth", s.cfg.Auth)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); s.watch.Run(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	defer s.background.Wait()
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		s.stopWaits()
		return fmt.Errorf("frontend: serve: %w", err)
	case <-ctx.Done():
	}
	s.stopWaits()
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.srv.Shutdown(grace)
	if err != nil {
		s.log.Warn("graceful shutdown cut short", "err", err)
		err = s.srv.Close()
	}
	<-served // http.ErrServerClosed once Shutdown or Close began
	s.log.Info("REST API stopped")
	if err != nil {
		return fmt.Errorf("frontend: shutdown: %w", err)
	}
	return nil
}

// routes builds the Gin engine. Gin's own logger and recovery are left out:
// requests are logged through the injected slog logger instead.
func (s *Server) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// A redirect would turn a typo into a second request; answer 404.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// Route on the path as sent, so that a name with an escaped slash
	// (a/b as a%2Fb) stays one segment and is refused by the name rules
	// with 400, rather than splitting into a path no route matches.
	r.UseRawPath = true
	r.Use(traceRequests)
	r.Use(s.logRequests)
	r.NoRoute(func(c *gin.Context) {
		s.fail(c, faas.Errorf(faas.NotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		abort(c, http.StatusMethodNotAllowed, faas.Invalid, fmt.Sprintf("method %s not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.limitAddr, s.readyz)
	r.GET("/stats", s.limitAddr, s.requireAdmin, s.getStats)
	r.GET("/admin/failures", s.limitAddr, s.requireAdmin, s.getFailures)
	r.GET("/openapi.json", s.openAPI)
	// Scrapers come often from one address: only the token guards this.
	r.GET("/metrics", s.serveMetrics)

	// Every route that reaches a manager counts its client address first,
	// before authentication, so that bad tokens are not free.
	r.POST("/u/:u", s.checkNames, s.limitAddr, s.limitRate, s.register)
	u := r.Group("/u/:u", s.checkNames, s.limitAddr, s.authenticate, s.limitRate, s.ownsUser)
	u.DELETE("", s.deleteUser)
	u.POST("/token", s.rotateToken)
	u.GET("/time", s.billedTime)
	u.GET("/fn", s.listFunctions)
	u.GET("/fn/:f", s.getFunction)
	u.POST("/fn/:f", s.putFunction)
	u.DELETE("/fn/:f", s.deleteFunction)
	u.POST("/fn/:f/run", s.runFunction)
	u.POST("/fn/:f/hooks", s.createHook)
	u.GET("/fn/:f/hooks", s.listHooks)
	u.DELETE("/fn/:f/hooks/:id", s.deleteHook)
	u.PUT("/fn/:f/schedule", s.putSchedule)
	u.GET("/fn/:f/schedule", s.getSchedule)
	u.DELETE("/fn/:f/schedule", s.deleteSchedule)
	u.GET("/fn/:f/subscriptions", s.listSubscriptions)
	u.PUT("/fn/:f/subscriptions/:topic", s.subscribe)
	u.DELETE("/fn/:f/subscriptions/:topic", s.unsubscribe)
	u.GET("/topics", s.listTopics)
	u.POST("/topics/:topic", s.publish)
	u.GET("/jobs", s.listJobs)
	u.POST("/try", s.tryFunction)

	// A hook's URL is its own credential: no token, limited per hook.
	r.POST("/hook/:id", s.limitAddr, s.runHook)

	j := r.Group("/j/:id", s.limitAddr, s.authenticate, s.limitRate)
	j.GET("", s.jobState)
	j.GET("/res", s.jobResult)
	j.GET("/info", s.jobInfo)
	j.GET("/logs", s.jobLogs)
	j.DELETE("", s.deleteJob)
	return r
}

// logRequests logs and counts every request and turns a panic into a 500
// so that one bad request cannot take the connection down without a
// trace. The line names the route template, not the path, and never the
// Authorization header or the query, which may carry secrets.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.fail(c, fmt.Errorf("panic: %v", p))
		}
		took := time.Since(start)
		route := routeOf(c)
		s.metrics.observe(c, route, took)
		// Attrs rather than key-value pairs, in an array on the stack:
		// boxing each value into an interface cost an allocation apiece.
		ctx := c.Request.Context()
		attrs := [...]slog.Attr{slog.String("method", c.Request.Method), slog.String("route", route),
			slog.Int("status", c.Writer.Status()), slog.String("code", c.GetString(codeKey)),
			slog.String("user", c.GetString(userKey)), slog.Float64("duration_ms", millis(took)), {}}
		n := len(attrs) - 1
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			attrs[n] = slog.String("trace_id", sc.TraceID().String())
			n++
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
	}()
	c.Next()
}

// traceRequests runs each request in a server span named for its route
// template (never its path, which holds names and ids), continuing the
// client's trace when its traceparent header names one. The managers'
// spans hang under it through the bus. With no tracer provider installed
// the span would record nothing, so only the client's trace context is
// handed on, which is all the bus and the job record need from it.
func traceRequests(c *gin.Context) {
	if !tracing.Recording() {
		if parent := c.GetHeader("traceparent"); parent != "" {
			c.Request = c.Request.WithContext(tracing.WithParent(c.Request.Context(), parent))
		}
		return
	}
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	ctx, span := tracing.Tracer().Start(tracing.WithParent(c.Request.Context(), c.GetHeader("traceparent")),
		c.Request.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route)))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, c.GetString(codeKey))
	}
}

// reqCtx bounds the manager calls of one request, extra being any time the
// client asked the request to wait.
func (s *Server) reqCtx(c *gin.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout+extra)
}

// withDashboard serves the web dashboard's files under /ui/ beside the
// REST API. They stay out of the Gin engine, whose routes are the API that
// /openapi.json documents: the page is only a client of those routes, and
// serving it needs neither a manager nor a token. Other methods on /ui go
// to the API, which answers them as it does any unknown route.
func withDashboard(api http.Handler) http.Handler {
	files := ui.Handler("/ui/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			api.ServeHTTP(w, r)
			return
		}
		switch path := r.URL.Path; {
		case path == "/ui":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		case strings.HasPrefix(path, "/ui/"):
			files.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
