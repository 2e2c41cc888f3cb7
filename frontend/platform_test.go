package frontend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"faas/dbmanager"
	"faas/dbmanager/dbmanagertest"
	"faas/frontend"
	"faas/frontend/client"
	"faas/internal/metrics"
	"faas/jqmanager"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/worker"
	"faas/worker/pool/pooltest"
)

// platform is the real platform running in this test process: the DB
// manager, the JQ manager and a worker on loopback ZeroMQ, and the frontend
// on a loopback HTTP port.
type platform struct {
	url    string
	client *http.Client
	// stopDB and stopJQ stop the DB and JQ managers ahead of cleanup.
	stopDB, stopJQ func()
	// store and queue are the proxies the frontend uses, for tests that
	// start a second frontend.
	store faas.Store
	queue faas.JobQueue
	log   *slog.Logger
	// fe is the frontend, for tests that look inside it.
	fe *frontend.Server
}

// settings are what a test may change in startPlatform.
type settings struct {
	frontend frontend.Config
	// concurrency is the number of jobs the worker runs at once.
	concurrency int
	// maxPending, if set, is the JQ manager's MaxPendingPerUser.
	maxPending int
	// wrapStore, if set, wraps the frontend's store, to inject timing.
	wrapStore func(faas.Store) faas.Store
	// logs, if set, receives every component's logs at debug level.
	logs io.Writer
}

// logTo sends the platform's logs to w, for tests that read them.
func logTo(w io.Writer) option { return func(s *settings) { s.logs = w } }

// adminToken is the operator's token of every test platform.
const adminToken = "operator-token-for-tests"

// option changes the settings of startPlatform.
type option func(*settings)

// authOff runs the frontend with FAAS_AUTH=off.
func authOff(s *settings) { s.frontend.Auth = "off" }

// serial makes the worker run one job at a time.
func serial(s *settings) { s.concurrency = 1 }

// maxPending limits each user's queued and running jobs to n.
func maxPending(n int) option { return func(s *settings) { s.maxPending = n } }

// rateLimit limits each user's requests; rate 0 turns the limit off.
func rateLimit(rate float64, burst int) option {
	return func(s *settings) { s.frontend.RateLimit, s.frontend.RateBurst = rate, burst }
}

// testLogger writes to the test log at debug level only when FAAS_TEST_LOG
// is set, so a passing run stays quiet.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FAAS_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startPlatform starts the DB manager (SQLite in a temporary directory),
// the JQ manager, a worker and the frontend, talking over ZeroMQ on
// system-chosen loopback ports as separate processes would, each through
// its own proxies. It waits until the frontend is ready and stops
// everything at cleanup.
func startPlatform(t testing.TB, opts ...option) *platform {
	t.Helper()
	set := settings{
		// Generous: the race detector slows moving a 1 MiB job through
		// three processes' JSON codecs to seconds. No rate limit (RateLimit
		// 0): tests poll as fast as they like unless they ask for one.
		frontend:    frontend.Config{Listen: "127.0.0.1:0", Auth: "on", RequestTimeout: 10 * time.Second, AdminToken: adminToken},
		concurrency: 2,
	}
	for _, o := range opts {
		o(&set)
	}
	log := testLogger(t)
	if set.logs != nil {
		log = slog.New(slog.NewTextHandler(set.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	// Teardown runs in reverse order of start: each component stops
	// before what it depends on.
	var teardown []func()
	t.Cleanup(func() {
		for i := len(teardown) - 1; i >= 0; i-- {
			teardown[i]()
		}
	})
	// run starts a component's Run and returns a function that stops it
	// and waits for Run to return; teardown calls it too.
	run := func(name string, fn func(context.Context) error) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v", name, err)
			}
		}()
		stop = sync.OnceFunc(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not stop within 15s", name)
			}
		})
		teardown = append(teardown, stop)
		return stop
	}
	// dial connects a component's own proxies to both managers.
	dial := func(who, dbURL, jqURL string) (*dbproxy.Client, *jqproxy.Client) {
		store, err := dbproxy.Dial(dbURL, 0, log.With("component", who+"-dbproxy"))
		require.NoError(t, err)
		queue, err := jqproxy.Dial(jqURL, 0, log.With("component", who+"-jqproxy"))
		require.NoError(t, err)
		teardown = append(teardown, func() { store.Close(); queue.Close() })
		return store, queue
	}

	// One registry per role, all served by the frontend's /metrics, as
	// `faas up` does.
	dbMetrics, jqMetrics := metrics.NewRegistry("dbmanager"), metrics.NewRegistry("jqmanager")
	wMetrics, feMetrics := metrics.NewRegistry("worker"), metrics.NewRegistry("frontend")
	if set.frontend.Metrics == nil {
		set.frontend.Metrics = feMetrics
		set.frontend.Scrape = prometheus.Gatherers{feMetrics.Gatherer(), jqMetrics.Gatherer(), dbMetrics.Gatherer(), wMetrics.Gatherer()}
	}
	dbCfg := dbmanagertest.Embedded(t.TempDir())
	dbCfg.Metrics = dbMetrics
	db, err := dbmanager.New(context.Background(), dbCfg, log)
	require.NoError(t, err)
	stopDB := run("dbmanager", db.Run)
	jqStore, err := dbproxy.Dial(db.Endpoint(), 0, log.With("component", "jqmanager-dbproxy"))
	require.NoError(t, err)
	teardown = append(teardown, func() { jqStore.Close() })

	// The manager's own defaults, so that settings it adds later are set.
	jqCfg, err := jqmanager.LoadConfig()
	require.NoError(t, err)
	jqCfg.Listen = "tcp://127.0.0.1:*"
	jqCfg.Metrics = jqMetrics
	if set.maxPending > 0 {
		jqCfg.MaxPendingPerUser = set.maxPending
	}
	jq, err := jqmanager.New(jqCfg, jqStore, log.With("component", "jqmanager"))
	require.NoError(t, err)
	stopJQ := run("jqmanager", jq.Run)

	wStore, wQueue := dial("worker", db.Endpoint(), jq.Endpoint())
	sandboxCmd, sandboxEnv := pooltest.Command()
	w, err := worker.New(worker.Config{
		DBURL:       db.Endpoint(),
		JQURL:       jq.Endpoint(),
		Concurrency: set.concurrency,
		ID:          "test-worker",
		// A stopping worker finishes its poll: keep cleanup quick.
		PollWait:       300 * time.Millisecond,
		SandboxCommand: sandboxCmd,
		SandboxEnv:     sandboxEnv,
		Metrics:        wMetrics,
	}, wStore, wQueue, log)
	require.NoError(t, err)
	run("worker", w.Run)

	store, queue := dial("frontend", db.Endpoint(), jq.Endpoint())
	var feStore faas.Store = store
	if set.wrapStore != nil {
		feStore = set.wrapStore(store)
	}
	fe, err := frontend.New(set.frontend, feStore, queue, log.With("component", "frontend"))
	require.NoError(t, err)
	run("frontend", fe.Run)

	p := &platform{
		url:    "http://" + fe.Addr(),
		client: &http.Client{Timeout: 90 * time.Second},
		stopDB: stopDB,
		stopJQ: stopJQ,
		store:  store,
		queue:  queue,
		log:    log,
		fe:     fe,
	}
	require.Eventually(t, func() bool {
		status, _ := p.do(t, "GET", "/readyz", "", nil)
		return status == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "platform not ready")
	return p
}

// reply is a decoded response body.
type reply struct {
	Error  bool            `json:"error"`
	Code   string          `json:"code"`
	Res    json.RawMessage `json:"res"`
	Header http.Header     `json:"-"`
}

// str decodes res as a string.
func (r reply) str(t testing.TB) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(r.Res, &s), "res %s", r.Res)
	return s
}

// num decodes res as a number.
func (r reply) num(t testing.TB) float64 {
	t.Helper()
	var f float64
	require.NoError(t, json.Unmarshal(r.Res, &f), "res %s", r.Res)
	return f
}

// rest is a client of the platform's API; it acts as nobody until As.
func (p *platform) rest() *client.Client {
	return client.New(p.url, client.WithHTTPClient(p.client))
}

// do sends a request with an optional bearer token and body and decodes the
// JSON reply, which every route must give.
func (p *platform) do(t testing.TB, method, path, token string, body []byte) (int, reply) {
	t.Helper()
	return p.doHeader(t, method, path, body, bearer(token))
}

// expect is do for a request that must answer status.
func (p *platform) expect(t testing.TB, status int, method, path, token string, body []byte) reply {
	t.Helper()
	got, rep := p.do(t, method, path, token, body)
	require.Equal(t, status, got, "%s %s: res %s", method, path, rep.Res)
	return rep
}

// bearer is the header of a token as the client sends it; tests of bad
// tokens build their own headers, which the client passes on as they are.
func bearer(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func (p *platform) doHeader(t testing.TB, method, path string, body []byte, h http.Header) (int, reply) {
	t.Helper()
	r := client.Request{Method: method, Path: path, Header: h}
	if body != nil {
		r.Body = bytes.NewReader(body)
	}
	return p.send(t, r)
}

// send sends r and checks that the reply is the API's JSON envelope, whose
// error flag matches the status and carries a code.
func (p *platform) send(t testing.TB, r client.Request) (int, reply) {
	t.Helper()
	what := r.Method + " " + r.Path
	resp, err := p.rest().Do(context.Background(), r)
	require.NotNil(t, resp, "%s: %v", what, err)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"), "%s: res %s", what, resp.Res)
	rep := reply{Res: resp.Res, Header: resp.Header, Error: err != nil}
	require.Equal(t, rep.Error, resp.Status >= 400, "%s: error flag with status %d", what, resp.Status)
	if rep.Error {
		rep.Code = string(faas.ErrorCode(err))
		var he *client.HTTPError
		require.ErrorAs(t, err, &he, what)
		require.NotEmpty(t, he.Err.Code, "%s: error without code", what)
	}
	return resp.Status, rep
}

// register creates a user and returns its token.
func (p *platform) register(t testing.TB, user string) string {
	t.Helper()
	cr, err := p.rest().Register(context.Background(), user)
	require.NoError(t, err, "register %s", user)
	require.Equal(t, user, cr.Name)
	require.NotEmpty(t, cr.Token)
	return cr.Token
}

// userSeq makes user names unique across the tests sharing a platform.
var userSeq atomic.Int64

// newUser registers a user with a fresh name starting with prefix.
func (p *platform) newUser(t testing.TB, prefix string) (name, token string) {
	t.Helper()
	name = fmt.Sprintf("%s-%d", prefix, userSeq.Add(1))
	return name, p.register(t, name)
}

// upload stores a function and fails the test unless it was created.
func (p *platform) upload(t testing.TB, user, token, fn, src string) {
	t.Helper()
	p.deploy(t, user, token, fn, client.Deploy{Source: src})
}

// deploy is upload with settings.
func (p *platform) deploy(t testing.TB, user, token, fn string, d client.Deploy) {
	t.Helper()
	_, created, err := p.rest().As(user, token).PutFunction(context.Background(), fn, d)
	require.NoError(t, err, "upload %s/%s", user, fn)
	require.True(t, created, "upload %s/%s: replaced", user, fn)
}

// submit runs a function without waiting and returns the job id.
func (p *platform) submit(t testing.TB, user, token, fn, args string) string {
	t.Helper()
	// The raw answer, to check its Location against the id in res.
	status, rep := p.do(t, "POST", "/u/"+user+"/fn/"+fn+"/run", token, []byte(args))
	require.Equal(t, http.StatusAccepted, status, "run %s/%s: %s", user, fn, rep.Res)
	id := rep.str(t)
	require.Equal(t, "/j/"+id, rep.Header.Get("Location"))
	return id
}

// awaitJob polls /j/:id until it answers 1, as the reference client did.
func (p *platform) awaitJob(t testing.TB, token, id string) {
	t.Helper()
	c := p.rest().As("", token)
	require.Eventually(t, func() bool {
		done, err := c.Finished(context.Background(), id)
		require.NoError(t, err, "poll %s", id)
		return done
	}, 20*time.Second, 10*time.Millisecond, "job %s did not finish", id)
}
