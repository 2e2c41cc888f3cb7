package sandbox

import (
	"container/heap"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"

	"faas/proxies/faas"
)

// The timers run on the goroutine that called Run, between the settling
// steps of a returned Promise: no event-loop goroutine, no goroutine per
// timer, nothing left running when Run returns. A function that never
// awaits never pays for a loop, and an exception thrown in a callback fails
// the run (as an uncaught exception ends a Node process) instead of
// vanishing.

// maxDelay is Node's limit: a longer or shorter delay becomes 1 ms.
const maxDelay = math.MaxInt32

// timer is one pending setTimeout or setInterval callback.
type timer struct {
	id    int64
	due   time.Time
	seq   uint64        // breaks ties in due, so equal delays run in order
	every time.Duration // 0 for a one-shot timeout
	fn    goja.Callable
	args  []goja.Value
	index int // in the heap; -1 once removed
}

// timerQueue is a min-heap of timers by due time, with an index by id for
// clearTimeout and clearInterval.
type timerQueue struct {
	heap   []*timer
	byID   map[int64]*timer
	lastID int64
	seq    uint64
}

func (q *timerQueue) Len() int { return len(q.heap) }
func (q *timerQueue) Less(i, j int) bool {
	a, b := q.heap[i], q.heap[j]
	return a.due.Before(b.due) || a.due.Equal(b.due) && a.seq < b.seq
}
func (q *timerQueue) Swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].index, q.heap[j].index = i, j
}
func (q *timerQueue) Push(x any) {
	t := x.(*timer)
	t.index = len(q.heap)
	q.heap = append(q.heap, t)
}
func (q *timerQueue) Pop() any {
	t := q.heap[len(q.heap)-1]
	q.heap[len(q.heap)-1] = nil
	q.heap = q.heap[:len(q.heap)-1]
	t.index = -1
	return t
}

// add schedules t and returns its id.
func (q *timerQueue) add(t *timer) int64 {
	if q.byID == nil {
		q.byID = make(map[int64]*timer)
	}
	q.lastID++
	q.seq++
	t.id, t.seq = q.lastID, q.seq
	q.byID[t.id] = t
	heap.Push(q, t)
	return t.id
}

// remove cancels the timer with id, if it is still pending.
func (q *timerQueue) remove(id int64) {
	if t, ok := q.byID[id]; ok {
		delete(q.byID, id)
		heap.Remove(q, t.index)
	}
}

// next returns the timer due first, or nil when none is pending.
func (q *timerQueue) next() *timer {
	if len(q.heap) == 0 {
		return nil
	}
	return q.heap[0]
}

// schedule implements setTimeout and setInterval.
func (r *runner) schedule(call goja.FunctionCall, repeat bool) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		panic(r.vm.NewTypeError("the callback argument must be a function"))
	}
	delay := call.Argument(1).ToFloat()
	if !(delay >= 1 && delay <= maxDelay) {
		delay = 1
	}
	d := time.Duration(delay * float64(time.Millisecond))
	t := &timer{due: time.Now().Add(d), fn: fn}
	if repeat {
		t.every = d
	}
	if len(call.Arguments) > 2 {
		t.args = append([]goja.Value(nil), call.Arguments[2:]...)
	}
	return r.vm.ToValue(r.timers.add(t))
}

// clear implements clearTimeout and clearInterval, which, as in browsers
// and Node, cancel either kind.
func (r *runner) clear(call goja.FunctionCall) goja.Value {
	r.timers.remove(call.Argument(0).ToInteger())
	return goja.Undefined()
}

// fire runs a due timer; an interval is rescheduled first, so that it may
// clear itself.
func (r *runner) fire(t *timer) error {
	if t.every > 0 {
		t.due = time.Now().Add(t.every)
		heap.Fix(&r.timers, t.index)
	} else {
		r.timers.remove(t.id)
	}
	_, err := t.fn(goja.Undefined(), t.args...)
	return err
}

// logTruncated marks console output cut at the limit.
const logTruncated = "\n[logs truncated]"

// logBuffer keeps console output up to max bytes, then a marker.
type logBuffer struct {
	b    strings.Builder
	max  int
	full bool
}

func (l *logBuffer) write(s string) {
	if l.full {
		return
	}
	if room := l.max - l.b.Len(); len(s) > room {
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		l.b.WriteString(s[:room])
		l.b.WriteString(logTruncated)
		l.full = true
		return
	}
	l.b.WriteString(s)
}

func (l *logBuffer) String() string { return l.b.String() }

// The batching of streamed console lines (RunStreaming): a batch goes
// out at FlushLines lines, or at the first line printed FlushEvery after
// the batch began, or when the run waits.
const (
	FlushLines = 64
	FlushEvery = 100 * time.Millisecond
)

// printer returns the console method that prints to stream.
func (r *runner) printer(stream string) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value { return r.print(stream, call) }
}

// print implements the console methods: the arguments separated by spaces,
// strings as they are and other values in their JSON form, one line each.
// A callee's lines start with its prefix, so that the job's output tells
// them from the caller's.
func (r *runner) print(stream string, call goja.FunctionCall) goja.Value {
	o := r.out
	if o.logs.full {
		// Formatting costs time; nothing more will be kept.
		return goja.Undefined()
	}
	var line strings.Builder
	line.WriteString(r.prefix)
	for i, a := range call.Arguments {
		if i > 0 {
			line.WriteByte(' ')
		}
		if obj, ok := a.(*goja.Object); ok && obj.ClassName() == "Error" {
			line.WriteString(r.describe(a))
		} else if goja.IsString(a) {
			line.WriteString(a.String())
		} else {
			line.WriteString(r.inspect(a))
		}
	}
	text := line.String()
	line.WriteByte('\n')
	o.logs.write(line.String())
	if o.emit != nil && !o.logs.full {
		o.stream(faas.LogLine{Offset: o.lines, Stream: stream, Line: text})
	}
	o.lines++
	return goja.Undefined()
}

// output is what a run and the fused calls inside it produce besides
// their values, together: the console, and the record of the calls.
type output struct {
	logs logBuffer
	// emit, pending, since and lines stream the console (RunStreaming):
	// the lines not yet emitted, when the first of them was printed, and
	// how many lines were printed in all.
	emit    func([]faas.LogLine)
	pending []faas.LogLine
	since   time.Time
	lines   int
	// calls are the fused calls made, at most faas.MaxCalls of them;
	// callsTruncated says that more were made.
	calls          []faas.Call
	callsTruncated bool
}

// stream queues l for emit, and emits the batch when it is due.
func (o *output) stream(l faas.LogLine) {
	now := time.Now()
	if len(o.pending) == 0 {
		o.since = now
	}
	o.pending = append(o.pending, l)
	if len(o.pending) >= FlushLines || now.Sub(o.since) >= FlushEvery {
		o.flush()
	}
}

// flush emits the pending lines, if any.
func (o *output) flush() {
	if len(o.pending) > 0 {
		o.emit(o.pending)
		o.pending = nil
	}
}

// native wraps a Go function as a JavaScript function called name. The
// engine names a wrapped function after its Go symbol, which its name
// property and toString would show, telling the user about the host; the
// name is replaced, as Node names its own natives.
func (r *runner) native(name string, fn func(goja.FunctionCall) goja.Value) *goja.Object {
	f := r.vm.ToValue(fn).(*goja.Object)
	must(f.DefineDataProperty("name", r.vm.ToValue(name), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE))
	return f
}

// consoleMethods are console's methods and the streams they print to;
// debug prints to log, as Node's does to stdout.
var consoleMethods = []struct{ name, stream string }{
	{"log", faas.StreamLog}, {"info", faas.StreamInfo}, {"warn", faas.StreamWarn},
	{"error", faas.StreamError}, {"debug", faas.StreamLog},
}

// lazyNames are the globals lazyGlobals provides.
var lazyNames = append([]string{"console", "setTimeout", "setInterval", "clearTimeout", "clearInterval", "faas"}, webNames...)

// lazyGlobals creates the sandbox's own globals on first use (see install).
// It also holds whatever code stores on it directly.
type lazyGlobals struct {
	r       *runner
	made    map[string]goja.Value
	deleted map[string]bool
}

func (g *lazyGlobals) Get(key string) goja.Value {
	if v, ok := g.made[key]; ok {
		return v
	}
	if g.deleted[key] {
		return nil
	}
	var v goja.Value
	switch key {
	case "console":
		console := g.r.vm.NewObject()
		for _, m := range consoleMethods {
			must(console.Set(m.name, g.r.native(m.name, g.r.printer(m.stream))))
		}
		v = console
	case "setTimeout":
		v = g.r.native(key, func(c goja.FunctionCall) goja.Value { return g.r.schedule(c, false) })
	case "setInterval":
		v = g.r.native(key, func(c goja.FunctionCall) goja.Value { return g.r.schedule(c, true) })
	case "clearTimeout", "clearInterval":
		v = g.r.native(key, g.r.clear)
	case "faas":
		v = g.r.faasGlobal()
	default:
		if !slices.Contains(webNames, key) {
			return nil
		}
		v = g.r.webGlobal(key)
	}
	g.Set(key, v)
	return v
}

func (g *lazyGlobals) Set(key string, v goja.Value) bool {
	if g.made == nil {
		g.made = make(map[string]goja.Value)
	}
	g.made[key] = v
	return true
}

func (g *lazyGlobals) Has(key string) bool {
	if _, ok := g.made[key]; ok {
		return true
	}
	return !g.deleted[key] && slices.Contains(lazyNames, key)
}

func (g *lazyGlobals) Delete(key string) bool {
	delete(g.made, key)
	if slices.Contains(lazyNames, key) {
		if g.deleted == nil {
			g.deleted = make(map[string]bool)
		}
		g.deleted[key] = true
	}
	return true
}

func (g *lazyGlobals) Keys() []string {
	var keys []string
	for _, k := range lazyNames {
		if _, ok := g.made[k]; !ok && !g.deleted[k] {
			keys = append(keys, k)
		}
	}
	for k := range g.made {
		keys = append(keys, k)
	}
	return keys
}
