// Package bustest gives tests a secured bus in one line.
package bustest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/bus"
	"faas/proxies/wire"
)

// Keyring makes a fresh key for every role.
func Keyring(t testing.TB) bus.Keyring {
	t.Helper()
	ring, err := bus.NewKeyring()
	require.NoError(t, err)
	return ring
}

// Server is the security of the given manager keyed from ring.
func Server(t testing.TB, ring bus.Keyring, manager bus.Role) wire.Security {
	t.Helper()
	sec, err := ring.Config(manager).Server()
	require.NoError(t, err)
	return sec
}

// Dial is the wire option of role dialling the given manager.
func Dial(t testing.TB, ring bus.Keyring, role, manager bus.Role) wire.Option {
	t.Helper()
	c := ring.Config(role)
	dial := c.DialDB
	if manager == bus.JQManager {
		dial = c.DialJQ
	}
	sec, err := dial()
	require.NoError(t, err)
	return wire.WithSecurity(sec)
}
