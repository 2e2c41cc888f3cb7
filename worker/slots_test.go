package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a time a test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// takeNow takes tokens, failing the test if none is free.
func takeNow(t *testing.T, s *slots) (int, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	n, ahead := s.take(ctx)
	require.Positive(t, n, "no token free")
	return n, ahead
}

// busy returns the slots of size sandboxes and ahead, each sandbox
// running a job leased at the clock's time.
func busy(t *testing.T, size, ahead int) (*slots, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1000, 0)}
	s := newSlots(size, ahead, c.now)
	n, _ := takeNow(t, s)
	require.Equal(t, size, n)
	s.leased(n, n)
	return s, c
}

// noneFree checks that take finds no token.
func noneFree(t *testing.T, s *slots) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	n, _ := s.take(ctx)
	require.Zero(t, n, "a token was free")
}

func TestSlots(t *testing.T) {
	t.Parallel()
	t.Run("one token per sandbox at first", func(t *testing.T) {
		t.Parallel()
		s := newSlots(2, 4, time.Now)
		n, ahead := takeNow(t, s)
		assert.Equal(t, 2, n)
		assert.False(t, ahead, "no job would wait for a sandbox")
		s.leased(n, n)
		noneFree(t, s)
	})
	t.Run("runs ending fast lease ahead, up to the cap", func(t *testing.T) {
		t.Parallel()
		s, c := busy(t, 2, 4)
		// Each run that ends within the horizon allows one job ahead.
		s.ran()
		s.ran()
		n, ahead := takeNow(t, s)
		assert.Equal(t, 4, n, "two sandboxes and two jobs ahead")
		assert.True(t, ahead, "four jobs for two sandboxes")
		s.leased(n, n)
		c.t = c.t.Add(time.Millisecond)
		for range 4 {
			s.ran()
		}
		n, ahead = takeNow(t, s)
		assert.Equal(t, 6, n, "two sandboxes and the cap of four ahead, however many runs ended")
		assert.True(t, ahead)
		s.leased(n, 2)
		n, ahead = takeNow(t, s)
		assert.Equal(t, 4, n, "the tokens the queue had no job for came back")
		assert.True(t, ahead, "two jobs run: four more would wait")
	})
	t.Run("a pause retires the tokens ahead", func(t *testing.T) {
		t.Parallel()
		s, c := busy(t, 2, 4)
		s.ran()
		s.ran()
		c.t = c.t.Add(aheadHorizon + time.Millisecond)
		n, ahead := takeNow(t, s)
		assert.Equal(t, 2, n, "one token per sandbox once the runs are old")
		assert.False(t, ahead)
		s.leased(n, n)
		noneFree(t, s)
	})
	t.Run("runs ending slowly lease one ahead at most", func(t *testing.T) {
		t.Parallel()
		s, c := busy(t, 1, 4)
		for range 5 {
			c.t = c.t.Add(aheadHorizon + time.Millisecond)
			s.ran()
			n, _ := takeNow(t, s)
			require.Equal(t, 2, n, "the sandbox and the one run that ended within the horizon")
			s.leased(n, 1)
		}
	})
	t.Run("runs that end with few sandboxes taken lease none ahead", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: time.Unix(1000, 0)}
		s := newSlots(4, 4, c.now)
		for range 3 {
			n, ahead := takeNow(t, s)
			require.Equal(t, 4, n, "one token per sandbox, none ahead")
			assert.False(t, ahead)
			s.leased(n, 1)
			s.ran()
		}
	})
	t.Run("no lease ahead", func(t *testing.T) {
		t.Parallel()
		s, _ := busy(t, 2, 0)
		for range 3 {
			s.ran()
			s.ran()
			n, ahead := takeNow(t, s)
			assert.Equal(t, 2, n)
			assert.False(t, ahead)
			s.leased(n, n)
		}
	})
	t.Run("take ends with its context", func(t *testing.T) {
		t.Parallel()
		s, _ := busy(t, 1, 1)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n, ahead := s.take(ctx)
		assert.Zero(t, n)
		assert.False(t, ahead)
	})
}
