// Package sandbox runs one user function in a fresh goja runtime.
//
// A run sees the standard JavaScript builtins, console (captured, bounded),
// setTimeout, setInterval and their clear functions, and the Web-standard
// globals (TextEncoder, TextDecoder, URL, URLSearchParams, atob, btoa,
// structuredClone, crypto and DOMException, see web.go), faas.env (the
// function's env and secrets), and nothing of the host: no require, process, filesystem, network or Go objects. Nothing
// survives a run, so neither globals nor polluted prototypes reach the next
// job. Time, call depth, console output and result size are bounded.
//
// Validate and Compile check and prepare a function's source at upload and
// at first use; Run executes a compiled Program once, with plain data in (JSON
// arguments, limits) and plain data out (a Result), so that the same call can
// later move into a supervised child process unchanged.
package sandbox

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"faas/proxies/faas"
)

// The defaults that apply when a Limits field is zero.
//
// DefaultMaxCallStack is lower than Node's (about 11,000 frames) because of
// recursion through builtins, such as a function mapping itself over an
// array: the engine unwinds such a stack in time quadratic in its depth,
// beyond the reach of the interrupt. At 3,000 frames that takes about
// 0.2 s; at 10,000 it took 3.5 s.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxLogs      = 64 << 10
	DefaultMaxResult    = 1 << 20
	DefaultMaxCallStack = 3000
	DefaultMaxCallDepth = 8
)

// MaxErrorMessage bounds the message of a failed run, in bytes; a longer
// one (a thrown Error with a huge message, stack or JSON form) is cut and
// marked. Messages travel in the reply's JSON header, where escaping can
// grow each byte to six, so the bound keeps the header far inside the
// reply's allowance for it.
const MaxErrorMessage = 8 << 10

// sourceName names user code in positions and stack frames. It is neutral
// on purpose: it must not reveal anything about the host.
const sourceName = "<input>"

// Limits bound one run. A zero field takes its default.
type Limits struct {
	// Timeout bounds the wall time from the start of the program to the
	// settlement of its result, async waits included.
	Timeout time.Duration
	// MaxLogs bounds the console output kept, in bytes.
	MaxLogs int
	// MaxResult bounds the JSON encoding of the result, in bytes.
	MaxResult int
	// MaxCallStack bounds the JavaScript call depth.
	MaxCallStack int
	// MaxCallDepth bounds how deep fused calls (faas.call) nest: a call
	// from a run MaxCallDepth calls deep rejects with code call_depth,
	// which also ends a cycle of calls.
	MaxCallDepth int
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxLogs <= 0 {
		l.MaxLogs = DefaultMaxLogs
	}
	if l.MaxResult <= 0 {
		l.MaxResult = DefaultMaxResult
	}
	if l.MaxCallStack <= 0 {
		l.MaxCallStack = DefaultMaxCallStack
	}
	if l.MaxCallDepth <= 0 {
		l.MaxCallDepth = DefaultMaxCallDepth
	}
	return l
}

// Program is a validated, compiled function source. It holds no runtime
// state, so one Program may be run by many goroutines at once and is worth
// caching per function version.
type Program struct {
	prog *goja.Program
	// module says the source assigns to module or exports, CommonJS
	// style: a run gives it both.
	module bool
	// env is what the function reads as faas.env.
	env map[string]string
}

// WithEnv returns p with env as the values the function reads as
// faas.env (a frozen object). The source is compiled once; each version
// of a function brings its own env.
func (p *Program) WithEnv(env map[string]string) *Program {
	q := *p
	q.env = env
	return &q
}

// Validate checks, without executing anything, that src parses and
// defines a function to run, as Compile does for the function stored as
// name. Errors are *faas.Error with code Invalid, carrying the engine's
// message and the position in src so the user can fix it.
func Validate(src, name string) error {
	_, err := Compile(src, name)
	return err
}

// Compile validates src and compiles it into a Program whose completion
// value is its entry point (see entry): the default export, else the
// function called name (the function's stored name), else main, else the
// last exported function, else the last top-level function. Compiling runs
// none of the user's code.
func Compile(src, name string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, faas.Errorf(faas.Invalid, "empty source: it must define a function, e.g. `function add(a,b){return a+b}`")
	}
	tree, exported, err := parse(src)
	if err != nil {
		return nil, err
	}
	ref, module, err := entry(tree, exported, name)
	if err != nil {
		return nil, err
	}
	if ref != nil {
		// Evaluated last, so the program's completion value is the
		// entry point. It has no position in the user's text: nothing
		// in it can fail to compile, and a reference to a binding the
		// source made cannot throw.
		tree.Body = append(tree.Body, &ast.ExpressionStatement{Expression: ref})
	}
	prog, err := goja.CompileAST(tree, false)
	if err != nil {
		// The compiler rejects some early errors the parser lets through,
		// such as a duplicate let declaration.
		return nil, syntaxError(err)
	}
	return &Program{prog: prog, module: module}, nil
}

// syntaxError turns a parser or compiler error into an Invalid error in the
// engine's words ("Line 1:17 Unexpected token )"), without the file name.
func syntaxError(err error) error {
	var list parser.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		e := list[0]
		msg := fmt.Sprintf("Line %d:%d %s", e.Position.Line, e.Position.Column, e.Message)
		if len(list) > 1 {
			msg += fmt.Sprintf(" (and %d more errors)", len(list)-1)
		}
		return faas.Errorf(faas.Invalid, "syntax error: %s", msg)
	}
	var ex *goja.CompilerSyntaxError
	if errors.As(err, &ex) && ex.File != nil {
		pos := ex.File.Position(ex.Offset)
		return faas.Errorf(faas.Invalid, "syntax error: Line %d:%d %s", pos.Line, pos.Column, ex.Message)
	}
	return faas.Errorf(faas.Invalid, "syntax error: %s", strings.TrimPrefix(err.Error(), sourceName+": "))
}
