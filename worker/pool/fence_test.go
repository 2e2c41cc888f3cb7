package pool_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
	"faas/worker/pool"
	"faas/worker/pool/pooltest"
)

// TestPoolFences looks at the fences from inside real sandbox processes:
// a probe, compiled only into this test binary, tries what each fence
// should stop, between ordinary jobs served by the same sandbox. With the
// switchable fences off, the same attempts succeed, which shows the probe
// can tell.
func TestPoolFences(t *testing.T) {
	t.Parallel()
	root := os.Geteuid() == 0
	hostNet, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	const denied = "operation not permitted"
	tests := []struct {
		name     string
		fence    pool.Fence
		uid, gid int // as root
		filtered bool
		ownNet   bool
	}{
		{"every fence", pool.Fence{}, 65534, 65534, true, true},
		{"another user", pool.Fence{UID: 1234, GID: 4321}, 1234, 4321, true, true},
		{"switchable fences off", pool.Fence{NoSeccomp: true, NoNetNS: true, NoChroot: true}, 65534, 65534, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startFenced(t, 1, pooltest.Mode, tt.fence)
			ctx := context.Background()
			pids := p.Pids()
			ordinary := job("ann", `async function add(a, b) { await new Promise(r => setTimeout(r, 1)); return a + b }`, `[2,3]`, 5*time.Second)
			res := p.Run(ctx, ordinary)
			require.Nil(t, res.Err)
			assert.JSONEq(t, `5`, string(res.Value))

			r, res := p.Probe(ctx, tt.filtered)
			require.Nil(t, res.Err)
			t.Logf("%+v", r)

			// Nothing of the worker's environment: only what the pool
			// was told to pass, this test binary's sandbox marker.
			assert.Equal(t, []string{reexec.Env(pooltest.Mode)}, r.Environ)
			assert.NotContains(t, r.ProcEnviron, canary)
			assert.Empty(t, r.Inheritable, "descriptors the worker inherited")
			if root {
				assert.Equal(t, tt.uid, r.UID)
				assert.Equal(t, tt.gid, r.GID)
				assert.Empty(t, r.Groups)
			} else {
				assert.Equal(t, os.Getuid(), r.UID, "a worker that is not root cannot change user")
			}
			// no_new_privs holds even with the filter off.
			assert.Equal(t, 1, r.NoNewPrivs)
			assert.Equal(t, 2, r.Seccomp)
			for _, f := range pool.HostFiles {
				if root && tt.filtered {
					// The root is an empty, deleted directory, root's
					// alone.
					assert.Contains(t, r.Files[f], "permission denied", "%s is out of reach", f)
				} else {
					assert.Empty(t, r.Files[f], "%s is readable", f)
				}
			}
			assert.Contains(t, r.Unshare, denied)
			if tt.filtered {
				assert.Contains(t, r.InetSocket, denied)
				assert.Contains(t, r.UnixSocket, denied)
				assert.Contains(t, r.Exec, denied)
				assert.Contains(t, r.Fork, denied)
			} else {
				assert.Empty(t, r.InetSocket)
				assert.Empty(t, r.UnixSocket)
				assert.Empty(t, r.Fork)
			}
			switch {
			case tt.ownNet && root:
				assert.NotEqual(t, hostNet, r.NetNS, "a network namespace of its own")
			case tt.ownNet:
				// Another user needs unprivileged user namespaces,
				// which the host may refuse.
			default:
				assert.Equal(t, hostNet, r.NetNS)
			}

			// The same sandbox serves on.
			res = p.Run(ctx, ordinary)
			require.Nil(t, res.Err)
			assert.JSONEq(t, `5`, string(res.Value))
			assert.Equal(t, pids, p.Pids(), "the probe ran in the sandbox that serves the jobs")
			if !tt.filtered {
				assert.False(t, strings.Contains(r.Fork, denied))
			}
		})
	}
}

// holdPool is a worker in miniature, for TestSandboxesDieWithWorker: it
// starts a pool, prints its sandboxes' pids and waits to be killed.
func holdPool() {
	p, err := pool.Start(context.Background(), pool.Config{
		Size:    2,
		Command: []string{os.Args[0]},
		Env:     []string{reexec.Env(pooltest.Mode)},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(strings.Trim(fmt.Sprint(p.Pids()), "[]"))
	// Busy sandboxes read nothing: only the kernel's parent-death signal
	// ends them. Their own limit is far off.
	for range 2 {
		go p.Run(context.Background(), job("hal", `function f() { for (;;) {} }`, `[]`, time.Minute))
	}
	time.Sleep(300 * time.Millisecond) // for the jobs to reach the sandboxes
	fmt.Println("busy")
	select {}
}

// TestSandboxesDieWithWorker kills a process holding a pool whose
// sandboxes are busy: they changed user after they started, which clears
// the parent-death signal, and must die with it all the same.
func TestSandboxesDieWithWorker(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), reexec.Env("holder"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	require.Len(t, pids, 2)
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // whatever the test found
		}
	})
	busy, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "busy\n", busy)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	for _, pid := range pids {
		assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 5*time.Second, 10*time.Millisecond,
			"sandbox %d outlived its worker", pid)
	}
}

// TestPoolWithoutNetworkNamespace starts a pool on a host that refuses
// new namespaces: the sandboxes start without one, the worker says so
// once, and the other fences stay up.
func TestPoolWithoutNetworkNamespace(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	cfg := pool.Config{Size: 2, Command: []string{os.Args[0]}, Env: []string{reexec.Env(pooltest.Mode)}}
	pool.RefuseNamespaces(&cfg)
	p, err := pool.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	hostNet, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)

	res := p.Run(context.Background(), job("ann", `(a, b) => a + b`, `[2,3]`, 5*time.Second))
	require.Nil(t, res.Err)
	assert.JSONEq(t, `5`, string(res.Value))
	r, res := p.Probe(context.Background(), true)
	require.Nil(t, res.Err)
	assert.Equal(t, hostNet, r.NetNS)
	assert.Contains(t, r.InetSocket, "operation not permitted", "the filter still stops sockets")
	assert.Equal(t, 1, strings.Count(logs.String(), "sandboxes share the worker's network namespace"), logs.String())
}

// syncBuffer is a log destination that goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// probeUnprivileged is a worker in miniature, for TestPoolUnprivileged: it
// starts a pool, prints what its sandbox's probe found and exits.
func probeUnprivileged() {
	p, err := pool.Start(context.Background(), pool.Config{
		Command: []string{os.Args[0]},
		Env:     []string{reexec.Env(pooltest.Mode)},
		// Without the user namespace that comes with a network
		// namespace here, which would itself keep the sandbox from the
		// worker's /proc, as on a host that allows no namespaces.
		Fence: pool.Fence{NoNetNS: true},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, res := p.Probe(context.Background(), true)
	p.Close()
	if res.Err != nil {
		fmt.Fprintln(os.Stderr, res.Err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// TestPoolUnprivileged runs a worker that is not root, whose sandboxes
// therefore share its user: they must not reach its environment through
// /proc, and the fences that need no privilege must hold.
func TestPoolUnprivileged(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a worker as another user")
	}
	// A copy of this binary that the other user may run: t.TempDir makes
	// a private directory in another.
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := filepath.Join(dir, "pool.test")
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))

	cmd := exec.Command(bin)
	cmd.Env = []string{reexec.Env("unprivileged"), canaryVar + "=" + canary}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var r pool.FenceReport
	require.NoError(t, json.Unmarshal(out, &r))
	t.Logf("%+v", r)

	assert.Equal(t, 65534, r.UID, "the worker's user")
	assert.NotContains(t, r.WorkerEnviron, canary)
	assert.Contains(t, r.WorkerEnviron, "permission denied")
	assert.Equal(t, []string{reexec.Env(pooltest.Mode)}, r.Environ)
	assert.Equal(t, 1, r.NoNewPrivs)
	assert.Equal(t, 2, r.Seccomp)
	assert.Contains(t, r.InetSocket, "operation not permitted")
	assert.Contains(t, r.Exec, "operation not permitted")
}
