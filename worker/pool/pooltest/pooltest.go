// Package pooltest lets the test binary of any package that runs a real
// worker serve as that worker's sandbox processes, so the sandboxes run
// the code under test, race detector included.
package pooltest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"faas/internal/reexec"
	"faas/worker/pool"
)

// Mode is the reexec mode of a test binary started as a sandbox.
const Mode = "sandbox"

// Sandbox serves as one sandbox process, until SIGTERM as the faas binary
// does; it is the reexec mode Mode, for a TestMain with modes of its own.
func Sandbox() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := pool.ServeProcess(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		return 1
	}
	return 0
}

// Main serves as a sandbox when the test binary was started as one, and
// otherwise runs the tests. Call it from TestMain.
func Main(m *testing.M) {
	reexec.Serve(map[string]func() int{Mode: Sandbox})
	os.Exit(m.Run())
}

// Command returns the worker.Config SandboxCommand and SandboxEnv that
// start this test binary as a sandbox.
func Command() (command, environ []string) {
	return []string{os.Args[0]}, []string{reexec.Env(Mode)}
}
