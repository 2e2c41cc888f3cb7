package frontend

import (
	"testing"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestWaitCaps(t *testing.T) {
	t.Parallel()
	w := newWaitCaps(2, 3)
	var releases []func()
	admit := func(user string) error {
		release, err := w.admit(user)
		if err == nil {
			releases = append(releases, release)
		}
		return err
	}
	require.NoError(t, admit("ann"))
	require.NoError(t, admit("ann"))
	err := admit("ann")
	require.Equal(t, faas.TooMany, faas.ErrorCode(err))
	require.ErrorContains(t, err, "user ann already has 2 requests waiting")
	require.ErrorContains(t, err, "FAAS_MAX_WAITS_PER_USER")
	require.NoError(t, admit("bob"))
	err = admit("cid")
	require.Equal(t, faas.TooMany, faas.ErrorCode(err))
	require.ErrorContains(t, err, "3 requests are waiting")
	require.ErrorContains(t, err, "FAAS_MAX_WAITS")

	// Releasing twice frees one place, not two.
	releases[0]()
	releases[0]()
	require.NoError(t, admit("cid"))
	require.Error(t, admit("dan"))
	require.Equal(t, 3, w.admitted())
}
