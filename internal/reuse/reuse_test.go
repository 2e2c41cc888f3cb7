package reuse

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goroutineID is the number in the first line of the calling goroutine's
// stack: "goroutine 42 [running]:".
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

func TestTasksInARowShareAGoroutine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	g := New(time.Minute)
	seen := map[string]bool{}
	for range 100 {
		ran := make(chan string)
		g.Go(ctx, func() { ran <- goroutineID() })
		seen[<-ran] = true
	}
	// A task may come before the goroutine of the previous one is back
	// waiting, and then gets a new one; most do not.
	require.Less(t, len(seen), 50, "%d goroutines ran 100 tasks in a row", len(seen))
	cancel()
	g.Wait()
}

func TestIdleGoroutinesExit(t *testing.T) {
	t.Parallel()
	var ran atomic.Int64
	g := New(10 * time.Millisecond)
	for range 10 {
		g.Go(context.Background(), func() { ran.Add(1) })
	}
	g.Wait() // returns only once every goroutine has waited idle and left
	require.EqualValues(t, 10, ran.Load())

	ctx, cancel := context.WithCancel(context.Background())
	g = New(time.Hour)
	g.Go(ctx, func() { ran.Add(1) })
	cancel()
	g.Wait() // an ended ctx lets an idle goroutine go at once
	require.EqualValues(t, 11, ran.Load())
}
