// Package reexec lets a test binary start itself again as a child process
// that runs one named mode instead of the tests: the standard way to get a
// real process of the code under test, race detector included, without
// building another binary. One environment variable names the mode, in
// every package.
package reexec

import (
	"fmt"
	"os"
)

// Var names the mode a test binary started as a child runs in.
const Var = "FAAS_TEST_CHILD"

// Env is the environment entry that starts a test binary in mode.
func Env(mode string) string { return Var + "=" + mode }

// Serve runs the mode this process was started in, if any, and exits with
// the status the mode returns; in a process started in no mode it returns
// at once. Call it first in TestMain.
func Serve(modes map[string]func() int) {
	mode, ok := os.LookupEnv(Var)
	if !ok {
		return
	}
	run, ok := modes[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s=%q: this test binary has no such mode\n", Var, mode)
		os.Exit(2)
	}
	os.Exit(run())
}
