package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"faas/dbmanager"
	"faas/frontend"
	"faas/frontend/client"
	"faas/proxies/bus"
	"faas/proxies/bus/bustest"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
)

// TestOversizedFrameLeavesManagerMemoryAlone sends the DB manager one
// frame of twice wire.MaxRequestSize from a peer holding a valid key (the
// worst case: CURVE stops a stranger before any frame is read). The
// manager drops the connection without reading the frame: its peak
// memory barely moves, and it keeps answering legitimate clients.
func TestOversizedFrameLeavesManagerMemoryAlone(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := c.start("dbmanager", "dbmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := dbproxy.Dial(c.dbURL, time.Second, slog.New(slog.DiscardHandler), bustest.Dial(t, c.keys, bus.Frontend, bus.DBManager))
	require.NoError(t, err)
	defer store.Close()
	require.NoError(t, store.Ping(ctx))
	before := memKiB(t, p.cmd.Process.Pid, "VmHWM")

	sock, err := zmq.NewSocket(zmq.REQ)
	require.NoError(t, err)
	defer sock.Close()
	require.NoError(t, sock.SetLinger(0))
	require.NoError(t, sock.SetRcvtimeo(2*time.Second))
	worker := c.keys[bus.Worker]
	require.NoError(t, sock.ClientAuthCurve(c.keys[bus.DBManager].Public, worker.Public, string(worker.Secret)))
	require.NoError(t, sock.Connect(c.dbURL))
	_, err = sock.SendMessage(dbproxy.MethodPing, make([]byte, 2*wire.MaxRequestSize))
	require.NoError(t, err)
	_, err = sock.RecvMessage(0)
	require.Error(t, err, "the oversized request was answered")

	require.NoError(t, store.Ping(ctx), "the manager stopped answering")
	after := memKiB(t, p.cmd.Process.Pid, "VmHWM")
	t.Logf("dbmanager peak RSS %d KiB before, %d KiB after a %d MiB frame", before, after, 2*wire.MaxRequestSize>>20)
	require.Less(t, after-before, int64(wire.MaxRequestSize>>10)/2, "peak memory grew by %d KiB", after-before)
}

// memKiB reads one of a process's memory figures from /proc.
func memKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestUpSecuresItsBus runs `faas up` with no key anywhere in its
// environment: it makes its own, its worker children get theirs, jobs
// run, and its managers refuse a plaintext client.
func TestUpSecuresItsBus(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.start("up", "up")
	c.waitReady()
	a := c.register(t, "dora")
	r := a.do(http.MethodPost, "/u/dora/fn/sq", "x => x * x")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	r = a.do(http.MethodPost, "/u/dora/fn/sq/run?wait=30s", "[7]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.JSONEq(t, "49", string(r.Res))
	// The issue-9 routes reach methods new to the permission table.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := a.Try(ctx, "x => -x", client.Run{Args: json.RawMessage("[7]"), Wait: 30 * time.Second})
	require.NoError(t, err)
	require.True(t, out.Done)
	require.JSONEq(t, "-7", string(out.Result))
	page, err := a.Jobs(ctx, client.JobFilter{})
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(page.Jobs, func(j frontend.JobSummary) bool { return j.Function == "(try)" }), "%+v", page.Jobs)
	old := a.Client
	rotated, err := a.RotateToken(ctx)
	require.NoError(t, err)
	a.Client = old.As("dora", rotated.Token)
	_, _, err = a.Functions(ctx, "", 0)
	require.NoError(t, err)
	_, _, err = old.Functions(ctx, "", 0)
	require.Equal(t, faas.Unauthorized, faas.ErrorCode(err), "the old token stopped working")

	// It made a key for secrets too, private, in its data directory; the
	// worker children read the secret through the secured bus.
	st, err := os.Stat(filepath.Join(c.dir, "data", dbmanager.SecretKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	r = a.do(http.MethodPost, "/u/dora/fn/key", `{"src": "() => faas.env.KEY.length", "secrets": {"KEY": "abcdef"}}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	r = a.do(http.MethodPost, "/u/dora/fn/key/run?wait=30s", "[]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.JSONEq(t, "6", string(r.Res))

	for _, endpoint := range []string{c.dbURL, c.jqURL} {
		wc, err := wire.Dial(endpoint, 200*time.Millisecond, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = wc.Call(ctx, dbproxy.MethodPing, struct{}{}, nil)
		cancel()
		wc.Close()
		require.Equal(t, faas.Unavailable, faas.ErrorCode(err), "plaintext call to %s: %v", endpoint, err)
	}
	require.NoError(t, c.stop("up"))
}

// TestManagersOnSeveralHosts puts the managers and the frontend in one
// network namespace and two workers in another, joined only by a veth
// pair on a private /30: the workers can reach the managers over that
// link and nothing else, so every job that finishes crossed it, CURVE
// and all.
func TestManagersOnSeveralHosts(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (ip netns); make test runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	id := fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1e6))
	managers, workers := "faas-m-"+id, "faas-w-"+id
	const managersIP, workersIP = "10.250.0.1", "10.250.0.2"
	// Deleting a namespace deletes its end of the pair, and with it the
	// other end; registered first, this runs after the processes stop.
	t.Cleanup(func() {
		for _, ns := range []string{managers, workers} {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Logf("ip netns del %s: %v %s", ns, err, out)
			}
		}
	})
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", managers)
	ip("netns", "add", workers)
	// Made inside the namespaces, the pair never appears on the host.
	ip("link", "add", "bus0", "netns", managers, "type", "veth", "peer", "name", "bus0", "netns", workers)
	for ns, addr := range map[string]string{managers: managersIP, workers: workersIP} {
		ip("-n", ns, "addr", "add", addr+"/30", "dev", "bus0")
		ip("-n", ns, "link", "set", "bus0", "up")
		ip("-n", ns, "link", "set", "lo", "up")
	}

	c := newCluster(t)
	// Each namespace has its ports to itself: the defaults do.
	c.dbURL = fmt.Sprintf("tcp://%s:%d", managersIP, dbproxy.DefaultPort)
	c.jqURL = fmt.Sprintf("tcp://%s:%d", managersIP, jqproxy.DefaultPort)
	c.http = fmt.Sprintf("http://127.0.0.1:%d", frontend.DefaultPort)
	c.client = &http.Client{Transport: &http.Transport{DialContext: dialIn(managers)}}
	c.startIn(managers, "dbmanager", "dbmanager", "FAAS_LISTEN="+c.dbURL)
	c.startIn(managers, "jqmanager", "jqmanager", "FAAS_LISTEN="+c.jqURL)
	c.startIn(managers, "frontend", "frontend")
	for i := range 2 {
		c.startIn(workers, fmt.Sprintf("worker%d", i), "worker", fmt.Sprintf("FAAS_WORKER_ID=worker%d", i), "FAAS_WORKER_CONCURRENCY=2")
	}
	c.waitReady()

	a := c.register(t, "erin")
	r := a.do(http.MethodPost, "/u/erin/fn/add", "async function add(a, b) { await new Promise(r => setTimeout(r, 200)); return a + b }")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	// Eight 200ms jobs at once are more than one worker's two slots hold.
	results := make(chan reply, 8)
	for i := range cap(results) {
		go func() { results <- a.do(http.MethodPost, "/u/erin/fn/add/run?wait=30s", fmt.Sprintf("[%d, 1]", i)) }()
	}
	seen := map[string]bool{}
	for range cap(results) {
		r := <-results
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
		seen[string(r.Res)] = true
	}
	require.Len(t, seen, cap(results))
	for _, name := range []string{"worker0", "worker1", "frontend", "jqmanager", "dbmanager"} {
		require.NoError(t, c.stop(name), "%s exit status", name)
	}
}

// dialIn dials from inside the named network namespace: the socket is made
// on a thread moved into it, and the namespace stays the socket's for
// good. The thread is never unlocked, so Go ends it with the goroutine
// rather than reuse it in the wrong namespace.
func dialIn(netns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		done := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open("/var/run/netns/" + netns)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				done <- result{err: fmt.Errorf("setns %s: %w", netns, err)}
				return
			}
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			done <- result{conn, err}
		}()
		r := <-done
		return r.conn, r.err
	}
}
