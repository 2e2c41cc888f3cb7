package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"faas/proxies/faas"
)

// errBigInt is JSON.stringify's refusal of a BigInt, for a BigInt result.
var errBigInt = errors.New("TypeError: Do not know how to serialize a BigInt")

// encode writes v as JSON.stringify would, within the result limit. It
// uses the engine's own encoder, not the global JSON object, which the
// function may have replaced; primitives, the common case, are encoded here
// without creating any object.
func (r *runner) encode(v goja.Value) (json.RawMessage, *faas.Error) {
	out, err := r.marshal(v)
	var ex *goja.Exception
	switch {
	case errors.Is(err, errBigInt):
		return nil, faas.Errorf(faas.FunctionError, "result cannot be encoded as JSON: %v", err)
	case errors.As(err, &ex) && !isUncatchable(err):
		return nil, r.thrown("result cannot be encoded as JSON: ", ex.Value())
	case err != nil:
		return nil, r.failure(err)
	}
	if len(out) > r.lim.MaxResult {
		return nil, faas.Errorf(faas.TooLarge, "result of %d bytes exceeds the %s limit", len(out), size(r.lim.MaxResult))
	}
	return out, nil
}

// marshal is JSON.stringify(v), with undefined (and anything else
// JSON.stringify leaves out) as null. It may run the value's toJSON methods;
// what they throw is returned.
func (r *runner) marshal(v goja.Value) (out []byte, err error) {
	switch {
	case v == nil || goja.IsUndefined(v) || goja.IsNull(v):
		return []byte("null"), nil
	case goja.IsNumber(v):
		if goja.IsNaN(v) || goja.IsInfinity(v) {
			return []byte("null"), nil
		}
		return []byte(v.String()), nil
	case goja.IsString(v):
		return quote(v.String()), nil
	case goja.IsBigInt(v):
		return nil, errBigInt
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		// A boolean or a symbol.
		if b, isBool := v.Export().(bool); isBool {
			return strconv.AppendBool(nil, b), nil
		}
		return []byte("null"), nil
	}
	var merr error
	if err := r.guard(func() { out, merr = obj.MarshalJSON() }); err != nil {
		return nil, err
	}
	return out, merr
}

const hexDigits = "0123456789abcdef"

// quote encodes s as a JSON string the way JSON.stringify does: only the
// quote, the backslash and control characters are escaped.
func quote(s string) []byte {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		default:
			// By hand: a thrown string of a million control characters
			// is quoted in milliseconds, not seconds.
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(b, '"')
}

// guard runs f, which calls into JavaScript from Go, and returns what the
// code threw: a JavaScript exception, or an interrupt or stack overflow,
// which the engine lets escape as a panic. Such an error must never be
// swallowed inside a running function: the engine delivers an interrupt
// only once.
func (r *runner) guard(f func()) (err error) {
	defer func() {
		if x := recover(); x != nil {
			e, ok := x.(error)
			if !ok || !isUncatchable(e) {
				panic(x)
			}
			err = e
		}
	}()
	if ex := r.vm.Try(f); ex != nil {
		return ex
	}
	return nil
}

func isUncatchable(err error) bool {
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	return errors.As(err, &ie) || errors.As(err, &so)
}

// thrown is the error of a run that threw (or rejected with) v. Rendering
// v may run its toString, which may itself throw or never end.
func (r *runner) thrown(prefix string, v goja.Value) *faas.Error {
	var msg string
	if err := r.guard(func() { msg = r.describe(v) }); err != nil {
		if isUncatchable(err) {
			return r.failure(err)
		}
		msg = "Uncaught exception that cannot be printed"
	}
	return faas.Errorf(faas.FunctionError, "%s%s", prefix, msg)
}

// framePC is the bytecode offset goja appends to a stack position, which
// means nothing to the user.
var framePC = regexp.MustCompile(`\(\d+\)(\)?)$`)

// describe renders a thrown or rejected value: an Error as its name and
// message with the frame that created it, anything else as "Uncaught"
// followed by its JSON form. It panics with whatever the value's own
// methods throw, so it must run inside JavaScript or inside guard.
func (r *runner) describe(v goja.Value) string {
	if obj, ok := v.(*goja.Object); ok && obj.ClassName() == "Error" {
		msg := obj.String()
		if stack := obj.Get("stack"); stack != nil && !goja.IsUndefined(stack) {
			for _, line := range strings.Split(stack.String(), "\n")[1:] {
				frame := strings.TrimSpace(line)
				if strings.HasPrefix(frame, "at ") && !strings.Contains(frame, "native") {
					msg += " " + framePC.ReplaceAllString(frame, "$1")
					break
				}
			}
		}
		return msg
	}
	return "Uncaught " + r.inspect(v)
}

// inspect renders a value for a human: strings quoted, objects in their
// JSON form when they have one. Like describe, it runs inside JavaScript
// or guard.
func (r *runner) inspect(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsString(v):
		return string(quote(v.String()))
	}
	if _, isFunc := goja.AssertFunction(v); !isFunc {
		if _, isObj := v.(*goja.Object); isObj {
			out, err := r.marshal(v)
			if isUncatchable(err) {
				panic(err)
			}
			if err == nil {
				return string(out)
			}
		}
	}
	return v.String()
}

// size renders a byte count the way limits are usually stated.
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
