package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
	"faas/internal/reexec"
	"faas/proxies/bus"
	"faas/proxies/bus/bustest"
	"faas/proxies/faas"
	"faas/worker/proc"
)

// The test binary doubles as the faas binary: started in the reexec mode
// "faas" it is `faas` itself, so the end-to-end tests start real processes
// of the very code under test, race detector included.
func TestMain(m *testing.M) {
	// A sandbox gets an empty environment, so it is known by its
	// argument: `go test` never passes a bare "sandbox".
	if len(os.Args) == 2 && os.Args[1] == "sandbox" {
		os.Exit(faasMain(os.Args[1:]))
	}
	reexec.Serve(map[string]func() int{"faas": func() int { return faasMain(os.Args[1:]) }})
	os.Exit(m.Run())
}

// cluster is a platform whose components run as separate processes.
type cluster struct {
	t       testing.TB
	dir     string
	env     []string
	http    string
	dbURL   string
	jqURL   string
	mu      sync.Mutex
	procs   map[string]*component
	logsDir string
	// keys are the bus keys, one per role, as `faas keys` makes them.
	keys bus.Keyring
	// client reaches the frontend; nil means http.DefaultClient.
	client *http.Client
	// starter forks every component from one locked thread: a child's
	// Pdeathsig fires when the thread that forked it ends, and tests end
	// threads (dialIn locks one and lets it go with its goroutine).
	starter *proc.Starter
}

// component is one running process of the platform.
type component struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// newCluster reserves ports and a data directory; components start with
// start.
func newCluster(t testing.TB, env ...string) *cluster {
	t.Helper()
	ports, err := freePorts(3)
	require.NoError(t, err)
	dir := t.TempDir()
	c := &cluster{
		t:       t,
		dir:     dir,
		http:    fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		dbURL:   fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
		jqURL:   fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
		procs:   make(map[string]*component),
		logsDir: filepath.Join(dir, "logs"),
		keys:    bustest.Keyring(t),
		starter: proc.NewStarter(),
	}
	require.NoError(t, os.MkdirAll(c.logsDir, 0o755))
	c.env = append([]string{
		reexec.Env("faas"),
		"FAAS_DATA_DIR=" + filepath.Join(dir, "data"),
		"FAAS_LOG_LEVEL=debug",
		"FAAS_REQUEST_TIMEOUT=1s",
	}, env...)
	t.Cleanup(func() {
		c.stopAll()
		c.starter.Close()
	})
	return c
}

// roleEnv is each role's own settings, by the reference's names, and its
// bus keys.
func (c *cluster) roleEnv(role string) []string {
	port := func(url string) string { return url[strings.LastIndex(url, ":")+1:] }
	if role == "up" { // no keys: it makes its own
		return []string{"PORT=" + port(c.http), "FAAS_DB_PORT=" + port(c.dbURL), "FAAS_JQ_PORT=" + port(c.jqURL)}
	}
	keys := c.keys.Env(bus.Role(role))
	switch role {
	case "dbmanager":
		return append(keys, "DB_URL=", "PORT="+port(c.dbURL))
	case "jqmanager":
		return append(keys, "DB_URL="+c.dbURL, "PORT="+port(c.jqURL))
	case "frontend":
		return append(keys, "DB_URL="+c.dbURL, "JQ_URL="+c.jqURL, "PORT="+port(c.http))
	default:
		return append(keys, "DB_URL="+c.dbURL, "JQ_URL="+c.jqURL)
	}
}

// start runs role as a process named name (several workers need distinct
// names), with extra environment.
func (c *cluster) start(name, role string, env ...string) *component {
	c.t.Helper()
	return c.run(name, role, exec.Command(os.Args[0], role), env...)
}

// startIn is start inside the named network namespace.
func (c *cluster) startIn(netns, name, role string, env ...string) *component {
	c.t.Helper()
	return c.run(name, role, exec.Command("ip", "netns", "exec", netns, os.Args[0], role), env...)
}

// run starts cmd, which runs role, as the component name.
func (c *cluster) run(name, role string, cmd *exec.Cmd, env ...string) *component {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.logsDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(c.t, err)
	cmd.Env = append(append(append(os.Environ(), c.env...), c.roleEnv(role)...), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills the component if the test binary dies first (ip
	// netns exec execs it in place, so this holds there too).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, c.starter.Start(cmd))
	p := &component{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return p
}

// startAll starts the four core components and waits until the API is
// ready.
func (c *cluster) startAll(workers int, env ...string) {
	c.t.Helper()
	c.start("dbmanager", "dbmanager", env...)
	c.start("jqmanager", "jqmanager", env...)
	for i := range workers {
		c.start(fmt.Sprintf("worker%d", i), "worker", env...)
	}
	c.start("frontend", "frontend", env...)
	c.waitReady()
}

func (c *cluster) waitReady() {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		resp, err := c.httpClient().Get(c.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "platform not ready; logs in %s", c.logsDir)
}

// signal sends sig to the named component; SIGKILL also waits for it.
func (c *cluster) signal(name string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	require.NotNil(c.t, p, "no component %s", name)
	require.NoError(c.t, p.cmd.Process.Signal(sig))
	if sig == syscall.SIGKILL {
		<-p.exited
	}
}

// stop ends a component gracefully and reports how it exited.
func (c *cluster) stop(name string) error {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if st := p.cmd.ProcessState; !st.Success() {
			return fmt.Errorf("%s exited: %v", name, st)
		}
		return nil
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 20s of SIGTERM", name)
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	var names []string
	for name := range c.procs {
		names = append(names, name)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			if err := c.stop(name); err != nil {
				c.t.Errorf("stop %s: %v", name, err)
			}
		})
	}
	wg.Wait()
	if c.t.Failed() {
		c.dumpLogs()
	}
}

// dumpLogs prints the tail of every component's log into the test output.
func (c *cluster) dumpLogs() {
	entries, _ := os.ReadDir(c.logsDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(c.logsDir, e.Name()))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		c.t.Logf("--- %s (tail)\n%s", e.Name(), b)
	}
}

func (c *cluster) httpClient() *http.Client {
	if c.client != nil {
		return c.client
	}
	return http.DefaultClient
}

// api is a user of the cluster's REST API, through the typed client.
type api struct {
	*client.Client
	t testing.TB
}

// reply is one answer, for tests that check statuses and headers.
type reply struct {
	Status int
	Error  bool
	Code   string
	Res    json.RawMessage
	Header http.Header
}

// ctx bounds one request of a test, ?wait included.
func (a *api) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 70*time.Second)
}

func (a *api) do(method, path, body string, hdr ...string) reply {
	a.t.Helper()
	r, err := a.try(method, path, body, hdr...)
	require.NoError(a.t, err)
	return r
}

// try is do for requests that may fail while components are down: the
// error is a failure to get an answer, not an error answer.
func (a *api) try(method, path, body string, hdr ...string) (reply, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.Do(ctx, client.Request{Method: method, Path: path, Body: strings.NewReader(body), Header: h})
	if resp == nil {
		return reply{}, err
	}
	r := reply{Status: resp.Status, Res: resp.Res, Header: resp.Header}
	if code := faas.ErrorCode(err); code != "" {
		r.Error, r.Code = true, string(code)
	}
	return r, nil
}

// register creates a user and returns a client acting as it.
func (c *cluster) register(t testing.TB, name string) *api {
	t.Helper()
	anon := client.New(c.http, client.WithHTTPClient(c.httpClient()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := anon.Register(ctx, name)
	require.NoError(t, err)
	return &api{Client: anon.As(cr.Name, cr.Token), t: t}
}

// upload creates or replaces a function with its settings.
func (a *api) upload(name string, d client.Deploy) {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	_, _, err := a.PutFunction(ctx, name, d)
	require.NoError(a.t, err)
}

// submit runs a function asynchronously and returns the job id.
func (a *api) submit(fn, args string) string {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	out, err := a.Run(ctx, fn, client.Run{Args: json.RawMessage(args)})
	require.NoError(a.t, err)
	require.False(a.t, out.Done)
	return out.JobID
}

func (a *api) info(id string) frontend.JobInfo {
	a.t.Helper()
	ctx, cancel := a.ctx()
	defer cancel()
	info, err := a.Info(ctx, id)
	require.NoError(a.t, err)
	return info
}

// await polls until the job is finished. An error answer (a 503 while a
// component is down) is "not yet"; only a failure to get an answer fails.
func (a *api) await(id string, within time.Duration) {
	a.t.Helper()
	require.Eventually(a.t, func() bool {
		ctx, cancel := a.ctx()
		defer cancel()
		done, err := a.Finished(ctx, id)
		var he *client.HTTPError
		if !errors.As(err, &he) {
			require.NoError(a.t, err)
		}
		return done
	}, within, 20*time.Millisecond, "job %s did not finish", id)
}
