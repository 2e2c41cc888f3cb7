// Package sandbox runs one user function in a fresh goja runtime.
//
// A run sees the standard JavaScript builtins, console (captured, bounded)
// and setTimeout, setInterval and their clear functions, and nothing of the
// host: no require, process, filesystem, network or Go objects. Nothing
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
	"reflect"
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
)

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
	return l
}

// Program is a validated, compiled function source. It holds no runtime
// state, so one Program may be run by many goroutines at once and is worth
// caching per function version.
type Program struct {
	prog *goja.Program
}

// Validate checks, without executing anything, that src parses and
// evaluates to a function: its last statement must be a function
// declaration or a function or arrow expression (async allowed), optionally
// preceded by helpers. Errors are *faas.Error with code Invalid, carrying
// the engine's message and position so the user can fix the source.
func Validate(src string) error {
	_, err := Compile(src)
	return err
}

// Compile validates src and compiles it into a Program whose completion
// value is the function. Compiling runs none of the user's code.
func Compile(src string) (*Program, error) {
	tree, name, err := check(src)
	if err != nil {
		return nil, err
	}
	var prog *goja.Program
	if name == "" {
		prog, err = goja.CompileAST(tree, false)
	} else {
		// A declaration has no completion value: name the function after
		// it. The newline ends a trailing line comment, the semicolon any
		// statement the parser would otherwise continue. Positions in the
		// user's text are unchanged.
		prog, err = goja.Compile(sourceName, src+"\n;"+name, false)
	}
	if err != nil {
		// The compiler rejects some early errors the parser lets through,
		// such as a duplicate let declaration.
		return nil, syntaxError(err)
	}
	return &Program{prog: prog}, nil
}

// check parses src and returns its syntax tree and the name of its trailing
// function declaration, or "" when the source ends in a function expression.
func check(src string) (*ast.Program, string, error) {
	if strings.TrimSpace(src) == "" {
		return nil, "", faas.Errorf(faas.Invalid, "empty source: it must evaluate to a function, e.g. `function add(a,b){return a+b}`")
	}
	tree, err := parser.ParseFile(nil, sourceName, src, 0)
	if err != nil {
		return nil, "", syntaxError(err)
	}
	var last ast.Statement
	for i := len(tree.Body) - 1; i >= 0; i-- {
		if _, empty := tree.Body[i].(*ast.EmptyStatement); !empty {
			last = tree.Body[i]
			break
		}
	}
	switch st := last.(type) {
	case *ast.FunctionDeclaration:
		return tree, st.Function.Name.Name.String(), nil
	case *ast.ExpressionStatement:
		switch st.Expression.(type) {
		case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral:
			return tree, "", nil
		}
		return nil, "", notAFunction(kind(st.Expression))
	case nil:
		return nil, "", notAFunction("nothing but empty statements")
	default:
		return nil, "", notAFunction(kind(st))
	}
}

func notAFunction(got string) error {
	return faas.Errorf(faas.Invalid, "source must evaluate to a function: a declaration like `function add(a,b){return a+b}` or an expression; got %s", got)
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

// kind names an AST node for an error message: *ast.CallExpression becomes
// "call expression", *ast.ClassDeclaration "class declaration".
func kind(n ast.Node) string {
	name := reflect.TypeOf(n).Elem().Name()
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}
