package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	p := Policy{Base: 4 * time.Second, Max: time.Minute}
	tests := []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{1, 0, 2 * time.Second},
		{1, 0.999999999, 4 * time.Second},
		{2, 0, 4 * time.Second},
		{3, 0.5, 12 * time.Second},
		{5, 0, 30 * time.Second},
		{6, 0, 30 * time.Second}, // capped at a minute before jitter
		{100, 0.999999999, time.Minute},
		{1 << 40, 0, 30 * time.Second}, // no overflow however long it fails
	}
	for _, tt := range tests {
		got := p.delay(tt.failures, tt.r)
		assert.InDelta(t, float64(tt.want), float64(got), float64(time.Microsecond), "failures %d r %v", tt.failures, tt.r)
	}
	for range 100 {
		d := p.Delay(3)
		assert.True(t, d >= 8*time.Second && d < 16*time.Second, "Delay(3) = %v, want [8s, 16s)", d)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.False(t, Policy{Base: time.Hour, Max: time.Hour}.Sleep(ctx, 1))
	assert.Less(t, time.Since(start), time.Second)
	assert.True(t, Policy{Base: time.Millisecond, Max: time.Millisecond}.Sleep(context.Background(), 1))
}
