package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"

	"faas/proxies/faas"
)

// Result is the outcome of one run: the JSON-encoded return value, or the
// error that ended the run, with the wall time and the console output.
type Result struct {
	// Value is the function's return value (awaited if a Promise) encoded
	// with JSON.stringify semantics; undefined becomes null. Nil on error.
	Value json.RawMessage
	// Err says why the run failed; nil on success.
	Err *faas.Error
	// Duration is the wall time from the start of the program to the
	// settlement of its result, async waits included, to the microsecond.
	Duration time.Duration
	// Logs is what the function printed on the console, bounded; the
	// lines of fused calls are among them, marked with the callee's name.
	Logs string
	// Calls are the fused calls the run made, in the order they started,
	// at most faas.MaxCalls; CallsTruncated says that more were made.
	Calls          []faas.Call
	CallsTruncated bool
}

// The values the watchdogs interrupt the runtime with, so the interrupted
// call can tell a deadline from a cancellation.
var (
	errDeadline  = errors.New("deadline")
	errCancelled = errors.New("cancelled")
)

// Run calls the function p evaluates to with args, a JSON array spread as
// arguments, in a fresh runtime that shares nothing with other runs. A
// returned Promise is awaited while timers run. The run ends at lim.Timeout
// or when ctx ends, whatever the code does; a context ended with a
// *faas.Error as its cause (a memory watchdog's verdict) fails the run with
// that error. Run never panics; every failure is in Result.Err.
func Run(ctx context.Context, p *Program, args json.RawMessage, lim Limits) Result {
	return RunStreaming(ctx, p, args, lim, nil, nil)
}

// RunStreaming is Run that also hands the console lines, as they are
// printed, to emit (if not nil), in batches: when the run waits for a
// timer, when it ends, and otherwise every FlushLines lines or
// FlushEvery. emit is called on the goroutine calling RunStreaming. host,
// if not nil, serves faas.call and faas.submit (see Host); without it
// they reject with code unavailable.
func RunStreaming(ctx context.Context, p *Program, args json.RawMessage, lim Limits, emit func([]faas.LogLine), host Host) Result {
	lim = lim.withDefaults()
	// One allocation for both, as when they were one struct.
	job := &struct {
		r   runner
		out output
	}{runner{ctx: ctx, lim: lim, host: host}, output{logs: logBuffer{max: lim.MaxLogs}, emit: emit}}
	r, out := &job.r, &job.out
	r.out = out
	res := r.run(p, args)
	res.Logs = out.logs.String()
	if emit != nil {
		out.flush()
	}
	res.Calls, res.CallsTruncated = out.calls, out.callsTruncated
	return res
}

// run runs p in a fresh runtime of r's, for a job or for a fused call
// inside one. It never panics.
func (r *runner) run(p *Program, args json.RawMessage) (res Result) {
	if p != nil {
		r.env = p.env
	}
	lim := r.lim
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			res = Result{Err: faas.Errorf(faas.Internal, "sandbox panic: %v", v)}
		}
		res.Duration = time.Since(start).Truncate(time.Microsecond)
		res.Err = boundError(res.Err)
	}()
	if p == nil || p.prog == nil {
		return Result{Err: faas.Errorf(faas.Internal, "run: no program")}
	}
	if r.ctx.Err() != nil {
		return Result{Err: r.stopped()}
	}

	r.vm = goja.New()
	r.vm.SetMaxCallStackSize(lim.MaxCallStack)
	r.install()
	if p.module {
		r.commonJS()
	}
	argv, ferr := r.arguments(args)
	if ferr != nil {
		return Result{Err: ferr}
	}

	// The watchdogs stop JavaScript that is running; waits between timers
	// watch r.expired and ctx directly. The clock starts with them.
	start = time.Now()
	r.deadline = start.Add(lim.Timeout)
	r.expired = make(chan struct{})
	deadline := time.AfterFunc(lim.Timeout, func() {
		r.vm.Interrupt(errDeadline)
		close(r.expired)
	})
	defer deadline.Stop()
	if r.ctx.Done() != nil {
		stopCancel := context.AfterFunc(r.ctx, func() { r.vm.Interrupt(errCancelled) })
		defer stopCancel()
	}

	v, err := r.vm.RunProgram(p.prog)
	if err != nil {
		return Result{Err: r.failure(err)}
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return Result{Err: faas.Errorf(faas.FunctionError, "source did not evaluate to a function")}
	}
	v, err = fn(goja.Undefined(), argv...)
	if err != nil {
		return Result{Err: r.failure(err)}
	}
	v, ferr = r.settle(r.ctx, v)
	if ferr != nil {
		return Result{Err: ferr}
	}
	out, ferr := r.encode(v)
	if ferr != nil {
		return Result{Err: ferr}
	}
	return Result{Value: out}
}

// errorTruncated marks an error message cut at MaxErrorMessage.
const errorTruncated = " [error message truncated]"

// boundError cuts a message longer than MaxErrorMessage, at a character
// boundary: a thrown value's message, stack or JSON form is the user's
// and may be any size.
func boundError(e *faas.Error) *faas.Error {
	if e == nil || len(e.Message) <= MaxErrorMessage {
		return e
	}
	n := MaxErrorMessage - len(errorTruncated)
	for n > 0 && !utf8.RuneStart(e.Message[n]) {
		n--
	}
	return &faas.Error{Code: e.Code, Message: e.Message[:n] + errorTruncated}
}

// runner is the state of one run. It belongs to the goroutine calling Run;
// only the watchdogs touch the runtime from elsewhere, through Interrupt.
type runner struct {
	ctx context.Context
	vm  *goja.Runtime
	lim Limits
	// out is shared by a job's run and the fused calls inside it.
	out *output
	// deadline is when lim.Timeout runs out: a fused call gets what is
	// left of it.
	deadline time.Time
	expired  chan struct{}
	parse    goja.Callable
	timers   timerQueue
	// webGet makes the Web globals once web.js has run (see webGlobal).
	webGet goja.Callable
	env    map[string]string
	// host serves faas.call and faas.submit; depth is how many fused
	// calls deep the run is (0 for a job's own), and prefix marks the
	// console lines of a callee.
	host   Host
	depth  int
	prefix string
}

// faasGlobal is the faas object: env holds the function's env values and
// secrets, both frozen so that one part of a function cannot change what
// another reads.
func (r *runner) faasGlobal() goja.Value {
	freeze, ok := goja.AssertFunction(r.vm.Get("Object").ToObject(r.vm).Get("freeze"))
	if !ok {
		panic(r.vm.NewTypeError("Object.freeze is not a function"))
	}
	env := r.vm.NewObject()
	for _, k := range slices.Sorted(maps.Keys(r.env)) {
		must(env.Set(k, r.env[k]))
	}
	obj := r.vm.NewObject()
	must(obj.Set("env", env))
	must(obj.Set("call", r.native("call", r.call)))
	must(obj.Set("submit", r.native("submit", r.submit)))
	must(obj.Set("publish", r.native("publish", r.publish)))
	for _, o := range []*goja.Object{env, obj} {
		if _, err := freeze(goja.Undefined(), o); err != nil {
			panic(err)
		}
	}
	return obj
}

// install sets up the globals a function may use beyond the standard
// builtins: console and the timer functions. Creating them costs more than
// the rest of a trivial run, and most functions use none of them, so they
// live on a dynamic object placed between the global object and
// Object.prototype, which creates each one the first time it is looked up.
// Lookups, typeof, assignment and shadowing behave as for ordinary global
// properties; only reflection on the global object itself (its own keys,
// its prototype) can tell the difference.
func (r *runner) install() {
	must(r.vm.GlobalObject().SetPrototype(r.vm.NewDynamicObject(&lazyGlobals{r: r})))
}

// commonJS gives a source written as a CommonJS module the two globals it
// assigns its exports to.
func (r *runner) commonJS() {
	module, exports := r.vm.NewObject(), r.vm.NewObject()
	must(module.Set("exports", exports))
	must(r.vm.Set("module", module))
	must(r.vm.Set("exports", exports))
}

// must panics on an error that only a bug can cause; Run recovers it.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// arguments turns a JSON array into argument values. Scalars are converted
// directly; objects and arrays go through JSON.parse so they are ordinary
// JavaScript values, never wrapped Go values.
func (r *runner) arguments(args json.RawMessage) ([]goja.Value, *faas.Error) {
	if len(strings.TrimSpace(string(args))) == 0 {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(args, &raw); err != nil {
		return nil, faas.Errorf(faas.Invalid, "arguments must be a JSON array: %v", err)
	}
	argv := make([]goja.Value, len(raw))
	for i, a := range raw {
		v, err := r.argument(a)
		if err != nil {
			return nil, faas.Errorf(faas.Invalid, "argument %d: %v", i, err)
		}
		argv[i] = v
	}
	return argv, nil
}

func (r *runner) argument(a json.RawMessage) (goja.Value, error) {
	switch a[0] {
	case 'n':
		return goja.Null(), nil
	case 't':
		return r.vm.ToValue(true), nil
	case 'f':
		return r.vm.ToValue(false), nil
	case '"':
		var s string
		if err := json.Unmarshal(a, &s); err != nil {
			return nil, err
		}
		return r.vm.ToValue(s), nil
	case '{', '[':
		if r.parse == nil {
			// Taken before any user code runs, so it is the real one.
			r.parse, _ = goja.AssertFunction(r.vm.Get("JSON").ToObject(r.vm).Get("parse"))
		}
		return r.parse(goja.Undefined(), r.vm.ToValue(string(a)))
	default:
		// Out-of-range numbers fail here as they do inside JSON.parse.
		f, err := strconv.ParseFloat(string(a), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", a)
		}
		return r.vm.ToValue(f), nil
	}
}

// settle waits for a returned Promise to settle, running timers as they
// come due, and returns its value. Anything else is returned as it is.
func (r *runner) settle(ctx context.Context, v goja.Value) (goja.Value, *faas.Error) {
	// Only a Promise is exported: exporting another object would copy it
	// whole and run its getters.
	obj, ok := v.(*goja.Object)
	if !ok || obj.ExportType() != promiseType {
		return v, nil
	}
	p, ok := obj.Export().(*goja.Promise)
	if !ok {
		return v, nil
	}
	var wake *time.Timer
	for p.State() == goja.PromiseStatePending {
		t := r.timers.next()
		if t == nil {
			return nil, faas.Errorf(faas.FunctionError, "function returned a promise that never settled")
		}
		if wait := time.Until(t.due); wait > 0 {
			// Whatever was printed before a wait is news to a reader
			// following the job.
			r.out.flush()
			if wake == nil {
				wake = time.NewTimer(wait)
				defer wake.Stop()
			} else {
				wake.Reset(wait)
			}
			select {
			case <-wake.C:
			case <-r.expired:
				return nil, r.timeout()
			case <-ctx.Done():
				return nil, r.stopped()
			}
		}
		if err := r.fire(t); err != nil {
			return nil, r.failure(err)
		}
	}
	if p.State() == goja.PromiseStateRejected {
		return nil, r.thrown("", p.Result())
	}
	return p.Result(), nil
}

var promiseType = reflect.TypeFor[*goja.Promise]()

// failure classifies an error returned by the runtime.
func (r *runner) failure(err error) *faas.Error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if ie.Value() == errDeadline {
			return r.timeout()
		}
		return r.stopped()
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return faas.Errorf(faas.FunctionError, "RangeError: maximum call stack size exceeded (limit %d frames)", r.lim.MaxCallStack)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return r.thrown("", ex.Value())
	}
	return faas.Errorf(faas.Internal, "sandbox: %v", err)
}

func (r *runner) timeout() *faas.Error {
	return faas.Errorf(faas.Timeout, "function exceeded its %s time limit", r.lim.Timeout)
}

// stopped is the error of a run ended by its context rather than its code.
func (r *runner) stopped() *faas.Error {
	err := context.Cause(r.ctx)
	var verdict *faas.Error
	if errors.As(err, &verdict) {
		return verdict
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return faas.Errorf(faas.Timeout, "function run stopped at the caller's deadline")
	}
	return faas.Errorf(faas.Unavailable, "function run cancelled")
}
