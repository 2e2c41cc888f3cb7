// Package pooltest lets the test binary of any package that runs a real
// worker serve as that worker's sandbox processes, so the sandboxes run
// the code under test, race detector included.
package pooltest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"faas/worker/pool"
)

// env marks a run of a test binary as a sandbox process.
const env = "FAAS_TEST_SANDBOX"

// Main serves as a sandbox when the test binary was started as one, and
// otherwise runs the tests. Call it from TestMain.
func Main(m *testing.M) {
	ServeIfSandbox()
	os.Exit(m.Run())
}

// ServeIfSandbox serves as a sandbox and exits if the test binary was
// started as one; otherwise it returns at once. For a TestMain that has
// other modes of its own.
func ServeIfSandbox() {
	if os.Getenv(env) != "1" {
		return
	}
	if err := pool.ServeProcess(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Command returns the worker.Config SandboxCommand and SandboxEnv that
// start this test binary as a sandbox.
func Command() (command, environ []string) {
	return []string{os.Args[0]}, []string{env + "=1"}
}
