// Package leakcheck fails a test binary whose tests leave goroutines
// running: a run, a worker or a server that does not stop when told is a
// bug the tests must catch, not a cost the next test pays.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// grace is how long goroutines that are already ending get to finish.
const grace = 5 * time.Second

// Main runs the tests, then waits for the goroutines to fall back to those
// there were before them, and exits non-zero with the stacks of the others
// if they do not. Call it from TestMain.
func Main(m *testing.M) {
	before := len(goroutines())
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(grace)
		left := goroutines()
		for len(left) > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			left = goroutines()
		}
		if len(left) > before {
			fmt.Fprintf(os.Stderr, "%s\n\nleakcheck: %d goroutines left behind\n", strings.Join(left, "\n\n"), len(left)-before)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stacks of the goroutines other than this one and
// the signal watcher that the fuzzing engine starts and never stops.
func goroutines() []string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "leakcheck.Main") || strings.Contains(g, "os/signal.") {
			continue
		}
		out = append(out, g)
	}
	return out
}
