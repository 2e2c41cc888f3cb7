package sandbox

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

// TestEntryPoint runs the forms tutorials paste, each stored under name,
// and checks which function runs.
func TestEntryPoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, fn, args, want string
	}{
		{"declaration", `function add(a,b){ return a+b }`, "f", `[4,5]`, `9`},
		{"bare anonymous function", `function(a,b){ return a+b }`, "f", `[4,5]`, `9`},
		{"bare anonymous function with a trailing semicolon", "function (a, b) {\n  return a + b\n};\n", "f", `[4,5]`, `9`},
		{"bare anonymous generator", `function*(){ yield 1 }`, "f", `[]`, `{}`},
		{"bare async anonymous function", `async function(x){ await null; return x * 2 }`, "f", `[21]`, `42`},
		{"anonymous function stays anonymous", `function(){ return arguments.callee.name }`, "f", `[]`, `""`},
		{"bare anonymous function after a comment", "// adds\n/* two */ function (a, b) { return a + b }", "f", `[1,2]`, `3`},
		{"anonymous function with helpers after it", "function(x){ return helper(x) }\nfunction helper(x){ return x + 1 }", "f", `[1]`, `2`},
		{"parenthesised function", `(function (s) { return s.toUpperCase() })`, "f", `["hi"]`, `"HI"`},
		{"arrow", `(a, b) => a * b`, "f", `[3,4]`, `12`},
		{"async arrow", `async x => x + 1`, "f", `[1]`, `2`},
		{"const arrow", `const double = x => 2 * x`, "f", `[4]`, `8`},
		{"main then helper runs main", "function main(x){ return helper(x) }\nfunction helper(x){ return 'helper:' + x }", "f", `[1]`, `"helper:1"`},
		{"helper then main runs main", "function helper(x){ return x * 10 }\nfunction main(x){ return helper(x) }", "f", `[2]`, `20`},
		{"named like the function beats main", "function resize(){ return 'resize' }\nfunction main(){ return 'main' }\nfunction helper(){ return 'helper' }", "resize", `[]`, `"resize"`},
		{"name match as const", "const resize = () => 'resize'\nfunction other(){ return 'other' }", "resize", `[]`, `"resize"`},
		{"otherwise the last function", "function a(){ return 'a' }\nfunction b(){ return 'b' }", "f", `[]`, `"b"`},
		{"last function even before a call", "function f(){ return 'f' }; f()", "x", `[]`, `"f"`},
		{"module.exports", "function helper(x){ return x + 1 }\nmodule.exports = function (x) { return helper(x) }\nfunction later(){}", "f", `[1]`, `2`},
		{"module.exports of a name", "function add(a,b){ return a+b }\nfunction other(){}\nmodule.exports = add", "f", `[1,2]`, `3`},
		{"exports.handler", "exports.handler = async (event) => helper(event)\nfunction helper(e){ return e.n + 1 }", "f", `[{"n":1}]`, `2`},
		{"module.exports.handler", "module.exports.handler = function (e) { return typeof exports }", "f", `[]`, `"object"`},
		{"named export beats a later helper", "exports.handler = e => helper(e)\nfunction helper(e){ return 'h' + e }", "f", `[1]`, `"h1"`},
		{"export default function", "function main(){ return 'main' }\nexport default function (a, b) { return a + b }", "f", `[2,3]`, `5`},
		{"export default async arrow", "export default async (x) => x", "f", `[7]`, `7`},
		{"export default name", "function add(a,b){ return a+b }\nexport default add", "f", `[2,3]`, `5`},
		{"export default on its own lines", "export\n  /* the entry */\n  default\nfunction add(a,b){ return a+b }", "f", `[2,3]`, `5`},
		{"export default beats the name", "export default () => 'default'\nfunction resize(){ return 'resize' }", "resize", `[]`, `"default"`},
		{"exported declaration beats a later helper", "export function handler(x){ return helper(x) }\nfunction helper(x){ return x * 3 }", "f", `[2]`, `6`},
		{"export keyword in a string is data", "function f(){ return 'export default 1' }", "f", `[]`, `"export default 1"`},
		{"strict mode export default", "'use strict'\nexport default function (x) { return this === undefined && x }", "f", `[1]`, `1`},
		{"trailing comment and semicolons", "function f() { return 1 };; // done", "f", `[]`, `1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, Validate(tt.src, tt.fn))
			p, err := Compile(tt.src, tt.fn)
			require.NoError(t, err)
			res := Run(context.Background(), p, json.RawMessage(tt.args), Limits{Timeout: 5 * time.Second})
			require.Nil(t, res.Err)
			assert.JSONEq(t, tt.want, string(res.Value))
		})
	}
}

// TestPositions checks that syntax errors and stack frames point where the
// user wrote, whatever the rewrites did to the source.
func TestPositions(t *testing.T) {
	t.Parallel()
	syntax := []struct{ name, src, msg string }{
		{"declaration", `function add(a,b){return a+b)`, "syntax error: Line 1:29 Unexpected token )"},
		{"second line", "function f() {\n  return (\n}", "syntax error: Line 3:1 Unexpected token }"},
		{"arrow", `(a,b) =>`, "syntax error: Line 1:9 Unexpected end of input"},
		{"compiler's early error", `let a; let a; function f(){}`, "syntax error: Line 1:12 Identifier 'a' has already been declared"},
		{"bare anonymous function", `function(a,b){ return a+ }`, "syntax error: Line 1:26 Unexpected token }"},
		{"bare anonymous function, second line", "function(a,b){\n  return a +* b }", "syntax error: Line 2:13 Unexpected token *"},
		{"after export default", "export default function (a) {\n  return a)\n}", "syntax error: Line 2:11 Unexpected token )"},
		{"export list", "function f(){}\nexport { f }", "syntax error: Line 2:1 Unexpected reserved word"},
		{"import", "import x from 'x'\nfunction f(){}", "import at 1:1: a function is one self-contained source and cannot import modules"},
	}
	for _, tt := range syntax {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tt.src, "f")
			var fe *faas.Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, faas.Invalid, fe.Code)
			// The first error, as the user wrote it; more may follow.
			assert.True(t, strings.HasPrefix(fe.Message, tt.msg), fe.Message)
		})
	}
	thrown := []struct{ name, src, frame string }{
		{"declaration", `function add(a, b) { throw new Error("boom") }`, "Error: boom at add (<input>:1:28)"},
		{"bare anonymous function", `function(a, b) { throw new Error("boom") }`, "Error: boom at <input>:1:24"},
		{"bare anonymous function after a comment", "/* c */ async function (a) {\n  throw new Error('boom') }", "Error: boom at <input>:2:9"},
		{"export default", `export default function add(a, b) { throw new Error("boom") }`, "Error: boom at add (<input>:1:43)"},
		{"stack read by the function", "function(){ return new Error('x').stack }", ""},
	}
	for _, tt := range thrown {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tt.src, `[]`, Limits{})
			if tt.frame == "" {
				require.Nil(t, res.Err)
				assert.Contains(t, string(res.Value), "<input>:1:20")
				return
			}
			require.NotNil(t, res.Err)
			assert.Equal(t, tt.frame, res.Err.Message)
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, msg string }{
		{``, "empty source"},
		{" \n\t", "empty source"},
		{`;;`, "got nothing but empty statements"},
		{`1 + 2`, "source must define a function, e.g. `function add(a,b){return a+b}` or `(a,b) => a+b`; got no top-level function (the source ends with: binary expression)"},
		{`x`, "(the source ends with: identifier)"},
		{`class A {}`, "(the source ends with: class declaration)"},
		{`(class {})`, "(the source ends with: class literal)"},
		{`(() => {})()`, "(the source ends with: call expression)"},
		{`if (true) { function f(){} }`, "(the source ends with: if statement)"},
		{`module.exports = {}`, "got no top-level function"},
		{`export default class {}`, "export default at line 1 must be a function; got class literal"},
		{"(x => x)\nconsole.log(1)", "the function expression at line 1 is the entry point but is not the last statement"},
	}
	for _, tt := range tests {
		err := Validate(tt.src, "f")
		var fe *faas.Error
		require.ErrorAs(t, err, &fe, tt.src)
		assert.Equal(t, faas.Invalid, fe.Code, tt.src)
		assert.Contains(t, fe.Message, tt.msg, tt.src)
	}
}

// FuzzValidate checks that no source makes the validator or the compiler
// panic, and that what validates runs to a function.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`function add(a,b){return a+b}`, `(a)=>a`, `async function f(){ await 1 }`, `class A{}`, `({`, "`${", `/(/`,
		`function(a){}`, `export default function(){}`, "export\ndefault 1", `exports.h = x => x`, `function(`, `export`, `async function*(`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, "f")
		if err != nil {
			var fe *faas.Error
			if !assert.ErrorAs(t, err, &fe) || fe.Code != faas.Invalid {
				t.Fatalf("Compile(%q) = %v, want an Invalid *faas.Error", src, err)
			}
			return
		}
		require.NotNil(t, p)
	})
}
