package lru

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	_, ok := c.Get("a") // a is now the most recently used
	require.True(t, ok)
	c.Put("d", 4)
	assert.Equal(t, 2, c.Len())
	_, ok = c.Get("b")
	assert.False(t, ok, "b was the least recently used")
	for k, want := range map[string]int{"a": 1, "d": 4} {
		got, ok := c.Get(k)
		assert.True(t, ok, k)
		assert.Equal(t, want, got, k)
	}
	c.Put("a", 9)
	got, _ := c.Get("a")
	assert.Equal(t, 1, got, "a stored key keeps its first value")
}

func TestAtLeastOne(t *testing.T) {
	t.Parallel()
	c := New[int, int](0)
	c.Put(1, 1)
	c.Put(2, 2)
	assert.Equal(t, 1, c.Len())
	_, ok := c.Get(2)
	assert.True(t, ok)
}
