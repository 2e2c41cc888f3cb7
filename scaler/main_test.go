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

	"faas/internal/reexec"
	"faas/worker/pool/pooltest"
)

// helperLifetime bounds every helper, so none outlives a broken test.
const helperLifetime = time.Minute

func TestMain(m *testing.M) {
	helpers[pooltest.Mode] = pooltest.Sandbox
	reexec.Serve(helpers)
	os.Exit(m.Run())
}

// helpers are the programs a test can start this test binary as, by
// reexec mode. Other test files add theirs in init.
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
		l, err := NewLocal(LocalConfig{Path: os.Args[0], Env: []string{reexec.Env("worker")}}, slog.Default())
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
