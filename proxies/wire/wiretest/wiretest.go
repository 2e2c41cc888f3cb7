// Package wiretest helps tests of code that talks over the bus.
package wiretest

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// OpenSockets counts this process's eventfds. Every ZeroMQ socket has one
// for its mailbox (a bus client's or server's socket a second: the
// duplicate that Go's poller watches) and HTTP connections have none, so
// the count follows the bus sockets open, whatever else the process has
// open. Linux only.
func OpenSockets(t testing.TB) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && target == "anon_inode:[eventfd]" {
			n++
		}
	}
	return n
}
