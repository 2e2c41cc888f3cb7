package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/dop251/goja"

	"faas/proxies/faas"
)

// Host is what a run asks of the platform beyond its sandbox, for the job's
// owner: the functions faas.call runs and the jobs faas.submit creates.
// Its errors are *faas.Error, shown to the function as they are, so they
// must say nothing of other users. A new request of a function to the
// platform (say faas.publish) is one more method here, one native in
// faasGlobal and one request the pool carries.
type Host interface {
	// Function is the current version of the owner's function name,
	// compiled, and that version's number: a fused call runs it, pinned
	// for the call. NotFound if there is no such function, Invalid if
	// name is not a function name.
	Function(name string) (*Program, int64, error)
	// Submit queues a job of the owner's function name with args, a JSON
	// array, as a child of the running job, and returns its ID.
	Submit(name string, args json.RawMessage) (string, error)
	// Publish publishes event, one JSON value, to the owner's topic and
	// returns the ids of the jobs it started, one per subscriber. Invalid
	// if topic is not a name.
	Publish(topic string, event json.RawMessage) ([]string, error)
}

// call implements faas.call(name, ...args): it runs the owner's function
// name in a fresh runtime of its own, in this process, with the arguments
// and the result crossing as JSON, and returns a promise of the result.
// The callee runs to the end before call returns, under what is left of
// the caller's time and within its memory; the caller's timers wait
// meanwhile. A failure rejects the promise with an Error whose code
// property is the failure's code and whose function property is name.
func (r *runner) call(c goja.FunctionCall) goja.Value {
	name := nameOf(c)
	started := time.Now()
	i := r.out.beginCall(name)
	var version int64
	value, err := func() (goja.Value, *faas.Error) {
		if !goja.IsString(c.Argument(0)) {
			return nil, faas.Errorf(faas.Invalid, "faas.call wants a function name first")
		}
		if r.depth >= r.lim.MaxCallDepth {
			return nil, faas.Errorf(faas.CallDepth, "faas.call %.80q: calls nest deeper than %d (FAAS_MAX_CALL_DEPTH)", name, r.lim.MaxCallDepth)
		}
		args, err := r.hostArgs(c.Arguments[1:])
		if err != nil {
			return nil, err
		}
		if r.host == nil {
			return nil, faas.Errorf(faas.Unavailable, "faas.call is not available here")
		}
		p, v, herr := r.host.Function(name)
		if herr != nil {
			return nil, faas.AsError(herr)
		}
		version = v
		callee := &runner{ctx: r.ctx, lim: r.lim, out: r.out, host: r.host, depth: r.depth + 1, prefix: "[" + name + "] "}
		callee.lim.Timeout = time.Until(r.deadline)
		if callee.lim.Timeout <= 0 {
			return nil, r.timeout()
		}
		res := callee.run(p, args)
		if res.Err != nil && res.Err.Code == faas.Timeout && !time.Now().Before(r.deadline) {
			// The caller's time is up too. Its own timer interrupts it,
			// but on another goroutine, which may run after the caller
			// has caught this rejection and returned: interrupt it now.
			r.vm.Interrupt(errDeadline)
		}
		if res.Err != nil {
			return nil, faas.Errorf(res.Err.Code, "%s: %s", name, res.Err.Message)
		}
		v2, perr := r.fromJSON(json.NewDecoder(bytes.NewReader(res.Value)))
		if perr != nil {
			return nil, faas.Errorf(faas.Internal, "faas.call %s: result: %v", name, perr)
		}
		return v2, nil
	}()
	r.out.endCall(i, version, time.Since(started), err)
	return r.settled(value, name, err)
}

// submit implements faas.submit(name, ...args): a promise of the ID of a
// new job of the owner's function name, whose parent is the running job.
func (r *runner) submit(c goja.FunctionCall) goja.Value {
	name := nameOf(c)
	value, err := func() (goja.Value, *faas.Error) {
		if !goja.IsString(c.Argument(0)) {
			return nil, faas.Errorf(faas.Invalid, "faas.submit wants a function name first")
		}
		args, err := r.hostArgs(c.Arguments[1:])
		if err != nil {
			return nil, err
		}
		if r.host == nil {
			return nil, faas.Errorf(faas.Unavailable, "faas.submit is not available here")
		}
		id, herr := r.host.Submit(name, args)
		if herr != nil {
			return nil, faas.AsError(herr)
		}
		return r.vm.ToValue(id), nil
	}()
	return r.settled(value, name, err)
}

// publish implements faas.publish(topic, event): a promise of the ids of
// the jobs the event starts, one per function of the owner subscribed to
// topic, so that async functions chain without knowing who listens. A
// rejection's function property names the topic.
func (r *runner) publish(c goja.FunctionCall) goja.Value {
	topic := nameOf(c)
	value, err := func() (goja.Value, *faas.Error) {
		if !goja.IsString(c.Argument(0)) {
			return nil, faas.Errorf(faas.Invalid, "faas.publish wants a topic name first")
		}
		event, err := r.hostJSON(c.Argument(1), "event")
		if err != nil {
			return nil, err
		}
		if r.host == nil {
			return nil, faas.Errorf(faas.Unavailable, "faas.publish is not available here")
		}
		ids, herr := r.host.Publish(topic, event)
		if herr != nil {
			return nil, faas.AsError(herr)
		}
		out := make([]any, len(ids))
		for i, id := range ids {
			out[i] = id
		}
		return r.vm.NewArray(out...), nil
	}()
	return r.settled(value, topic, err)
}

// fromJSON makes the next JSON value of dec into ordinary JavaScript
// values of r's runtime, as JSON.parse would, for a callee's result. It
// cannot use r.parse: that is taken before any user code runs, or never
// (taking it costs every run that does not need it), and by the time a
// call returns the caller may have replaced JSON.parse. The decoder bounds
// the nesting.
func (r *runner) fromJSON(dec *json.Decoder) (goja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			var items []any
			for dec.More() {
				v, err := r.fromJSON(dec)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return r.vm.NewArray(items...), err
		case '{':
			obj := r.vm.NewObject()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := r.fromJSON(dec)
				if err != nil {
					return nil, err
				}
				// Defined, not set, so that "__proto__" is an own
				// property as JSON.parse makes it, not a prototype.
				if err := obj.DefineDataProperty(k.(string), v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token()
			return obj, err
		}
	case string:
		return r.vm.ToValue(t), nil
	case float64:
		return r.vm.ToValue(t), nil
	case bool:
		return r.vm.ToValue(t), nil
	case nil:
		return goja.Null(), nil
	}
	return nil, errors.New("unexpected JSON token")
}

// nameOf is the function or topic name a call of faas.call, faas.submit
// or faas.publish names: its first argument when that is a string.
// Anything else is not turned into a string, which could run the
// function's own code.
func nameOf(c goja.FunctionCall) string {
	if goja.IsString(c.Argument(0)) {
		return c.Argument(0).String()
	}
	return ""
}

// hostArgs encodes the arguments of faas.call or faas.submit as a JSON
// array, bounded like a result. What a toJSON method throws rejects the
// call; an interrupt goes on stopping the run.
func (r *runner) hostArgs(args []goja.Value) (json.RawMessage, *faas.Error) {
	return r.hostJSON(r.vm.NewArray(toAny(args)...), "arguments")
}

// hostJSON encodes v, what a host call sends (its arguments, an event),
// as JSON bounded like a result.
func (r *runner) hostJSON(v goja.Value, what string) (json.RawMessage, *faas.Error) {
	out, err := r.marshal(v)
	if err != nil {
		if isUncatchable(err) {
			panic(err)
		}
		return nil, faas.Errorf(faas.Invalid, "%s cannot be encoded as JSON: %v", what, err)
	}
	if len(out) > r.lim.MaxResult {
		return nil, faas.Errorf(faas.TooLarge, "%s of %d bytes exceed the %s limit", what, len(out), size(r.lim.MaxResult))
	}
	return out, nil
}

func toAny(vs []goja.Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// settled is a promise resolved with value, or rejected with an Error
// carrying err's message, its code as code and the callee's name as
// function.
func (r *runner) settled(value goja.Value, name string, err *faas.Error) goja.Value {
	p, resolve, reject := r.vm.NewPromise()
	if err == nil {
		must(resolve(value))
		return r.vm.ToValue(p)
	}
	err = boundError(err)
	var e *goja.Object
	if ctor, ok := goja.AssertConstructor(r.vm.Get("Error")); ok {
		e, _ = ctor(nil, r.vm.ToValue(err.Message))
	}
	if e == nil {
		// The function replaced its own Error with something that is
		// not a constructor.
		e = r.vm.NewTypeError(err.Message)
	}
	must(e.Set("code", string(err.Code)))
	must(e.Set("function", name))
	must(reject(e))
	return r.vm.ToValue(p)
}

// beginCall records a call to name starting, and returns its place in the
// record, -1 when the record is full.
func (o *output) beginCall(name string) int {
	if len(o.calls) >= faas.MaxCalls {
		o.callsTruncated = true
		return -1
	}
	o.calls = append(o.calls, faas.Call{Function: name})
	return len(o.calls) - 1
}

// endCall fills in call i's outcome.
func (o *output) endCall(i int, version int64, took time.Duration, err *faas.Error) {
	if i < 0 {
		return
	}
	c := &o.calls[i]
	c.Version, c.Duration, c.Error = version, took.Truncate(time.Microsecond), err
}
