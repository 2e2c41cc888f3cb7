package scaler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"faas/worker/pool/pooltest"
)

// helperEnv makes the test binary, started again by a test, act as one of
// the helper programs below instead of running tests: the standard way to
// get a real child process without building another binary.
const helperEnv = "FAAS_SCALER_TEST_HELPER"

// helperLifetime bounds every helper, so none outlives a broken test.
const helperLifetime = time.Minute

func TestMain(m *testing.M) {
	pooltest.ServeIfSandbox()
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// helpers are the programs a test can start, by the value of helperEnv.
// Other test files add theirs in init.
var helpers = map[string]func() int{
	// worker runs until SIGTERM, then exits 0, as a real worker does. It
	// prints ready once SIGTERM no longer kills it outright.
	"worker": func() int {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		fmt.Println("ready")
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(helperLifetime):
			return 3
		}
	},
	// stubborn ignores SIGTERM, to be killed.
	"stubborn": func() int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(helperLifetime)
		return 3
	},
	// scaler runs a local backend with two workers, prints their pids and
	// waits to be killed.
	"scaler": func() int {
		l, err := NewLocal(LocalConfig{Path: os.Args[0], Env: []string{helperEnv + "=worker"}}, slog.Default())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := l.Scale(context.Background(), 2); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println(strings.Trim(fmt.Sprint(l.pids()), "[]"))
		time.Sleep(helperLifetime)
		return 3
	},
}

func runHelper(mode string) int {
	if h, ok := helpers[mode]; ok {
		return h()
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
	return 2
}
