package worker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/worker/sandbox"
)

func TestProgramCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	prog, err := sandbox.Compile(`() => 1`)
	require.NoError(t, err)
	c := newProgramCache(2)
	a, b, d := programKey{"u", "a", 1}, programKey{"u", "b", 1}, programKey{"u", "d", 1}
	c.put(a, compiled{prog: prog})
	c.put(b, compiled{prog: prog})
	_, ok := c.get(a) // a is now the most recently used
	require.True(t, ok)
	c.put(d, compiled{prog: prog})
	assert.Equal(t, 2, c.len())
	_, ok = c.get(b)
	assert.False(t, ok, "b was the least recently used")
	for _, k := range []programKey{a, d} {
		_, ok = c.get(k)
		assert.True(t, ok, k)
	}
	_, ok = c.get(programKey{"u", "a", 2})
	assert.False(t, ok, "another version is another program")
}
