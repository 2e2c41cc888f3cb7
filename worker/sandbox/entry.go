package sandbox

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/file"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
	"github.com/dop251/goja/unistring"

	"faas/proxies/faas"
)

// A source may define its function in any of the forms tutorials paste:
// a declaration, a function or arrow expression, bare or parenthesised,
// async or not, `const f = ...`, `module.exports = ...`,
// `exports.handler = ...` or `export default ...`. The engine parses
// scripts, not modules, and a bare anonymous `function (a, b) {...}` is
// not a statement in a script, so the few forms it rejects are rewritten
// before parsing, guided by the parser's own error position so that nothing
// inside strings or comments is touched. Every position in the tree is
// then mapped back to the user's text: syntax errors and stack traces
// point where the user wrote.

// The global properties the rewrites assign the user's function to, as
// `this.__default = ...`: assigning to a property, unlike binding a
// variable, does not name the function, so an anonymous function stays
// anonymous as in Node, and an arrow may follow.
const (
	defaultBinding   = "__default"
	anonymousBinding = "__anonymous"
	// maxEdits bounds the rewrites of one source; each removes one
	// parser error, and real sources need one or two.
	maxEdits = 32
)

// edit is one rewrite: del bytes at offset at, of the text as it was
// then, replaced by ins bytes.
type edit struct{ at, del, ins int }

// rewritten is a source with the edits that made it parseable.
type rewritten struct {
	src, text string
	edits     []edit
}

func (r *rewritten) apply(at, del int, ins string) {
	r.text = r.text[:at] + ins + r.text[at+del:]
	r.edits = append(r.edits, edit{at: at, del: del, ins: len(ins)})
}

// original maps an offset in the rewritten text to the user's source;
// inside inserted text it is the offset of the insertion.
func (r *rewritten) original(off int) int {
	for i := len(r.edits) - 1; i >= 0; i-- {
		e := r.edits[i]
		switch {
		case off >= e.at+e.ins:
			off += e.del - e.ins
		case off >= e.at:
			off = e.at
		}
	}
	return min(off, len(r.src))
}

// offsetOf finds the offset of a position the parser reported in f, whose
// text is n bytes long. Positions grow with offsets, so a binary search
// over the engine's own line counting finds it.
func offsetOf(f *file.File, n int, p file.Position) int {
	return sort.Search(n, func(o int) bool {
		q := f.Position(o)
		return q.Line > p.Line || q.Line == p.Line && q.Column >= p.Column
	})
}

// parse parses src as a script, rewriting the module and anonymous forms
// the engine's parser rejects, and returns the tree with every position
// in terms of src and the offsets (in src) of the export keywords removed.
func parse(src string) (*ast.Program, []int, error) {
	r := &rewritten{src: src, text: src}
	var exported []int
	for {
		tree, err := parser.ParseFile(nil, sourceName, r.text, 0)
		if err == nil {
			if len(r.edits) > 0 {
				remap(reflect.ValueOf(tree), func(i file.Idx) file.Idx { return file.Idx(r.original(int(i)-1) + 1) }, map[visit]bool{})
			}
			tree.File = file.NewFile(sourceName, src, 1)
			return tree, exported, nil
		}
		var list parser.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			return nil, nil, syntaxError(err)
		}
		f := file.NewFile(sourceName, r.text, 1)
		off := offsetOf(f, len(r.text), list[0].Position)
		if len(r.edits) < maxEdits {
			if word(r.text, off, "import") {
				return nil, nil, faas.Errorf(faas.Invalid, "import at %s: a function is one self-contained source and cannot import modules", r.position(off))
			}
			if word(r.text, off, "export") && r.export(off) {
				exported = append(exported, r.original(off))
				continue
			}
			if r.anonymous(off) {
				continue
			}
		}
		// The user's position of the first error, in the engine's words.
		msg := fmt.Sprintf("Line %s %s", r.position(off), list[0].Message)
		if len(list) > 1 {
			msg += fmt.Sprintf(" (and %d more errors)", len(list)-1)
		}
		return nil, nil, faas.Errorf(faas.Invalid, "syntax error: %s", msg)
	}
}

// position renders the user's line and column of an offset in the
// rewritten text.
func (r *rewritten) position(off int) string {
	p := file.NewFile(sourceName, r.src, 1).Position(r.original(off))
	return fmt.Sprintf("%d:%d", p.Line, p.Column)
}

// export rewrites the export keyword at off: `export default X` becomes a
// binding of X, and `export` before a declaration goes. Export lists
// (`export { a }`) are left for the parser to reject.
func (r *rewritten) export(off int) bool {
	next := skipTrivia(r.text, off+len("export"))
	switch {
	case word(r.text, next, "default"):
		r.apply(off, next+len("default")-off, "this."+defaultBinding+"=")
	case word(r.text, next, "function"), word(r.text, next, "async"), word(r.text, next, "const"),
		word(r.text, next, "let"), word(r.text, next, "var"), word(r.text, next, "class"):
		r.apply(off, len("export"), "")
	default:
		return false
	}
	return true
}

// anonymous makes a bare anonymous function, which the parser rejects as a
// declaration without a name at its parameter list (off), an expression
// bound to a name the entry point can be found by.
func (r *rewritten) anonymous(off int) bool {
	if off >= len(r.text) || r.text[off] != '(' {
		return false
	}
	k := strings.TrimRight(r.text[:off], " \t\r\n")
	k = strings.TrimRight(strings.TrimSuffix(k, "*"), " \t\r\n")
	if !strings.HasSuffix(k, "function") || len(k) > len("function") && identPart(k[len(k)-len("function")-1]) {
		return false
	}
	k = k[:len(k)-len("function")]
	if a := strings.TrimRight(k, " \t"); strings.HasSuffix(a, "async") && (len(a) == len("async") || !identPart(a[len(a)-len("async")-1])) {
		k = a[:len(a)-len("async")]
	}
	r.apply(len(k), 0, "this."+anonymousBinding+"=")
	return true
}

// word tells whether the keyword w starts at off in s.
func word(s string, off int, w string) bool {
	end := off + len(w)
	return strings.HasPrefix(s[min(off, len(s)):], w) && (end == len(s) || !identPart(s[end]))
}

func identPart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// skipTrivia returns the offset of the first byte at or after off that is
// neither white space nor inside a comment.
func skipTrivia(s string, off int) int {
	for off < len(s) {
		switch {
		case strings.ContainsRune(" \t\r\n", rune(s[off])):
			off++
		case strings.HasPrefix(s[off:], "//"):
			end := strings.IndexByte(s[off:], '\n')
			if end < 0 {
				return len(s)
			}
			off += end
		case strings.HasPrefix(s[off:], "/*"):
			end := strings.Index(s[off+2:], "*/")
			if end < 0 {
				return len(s)
			}
			off += end + 4
		default:
			return off
		}
	}
	return off
}

// visit is a node remap has been through: the tree shares nodes (a
// function's declaration list points into its body).
type visit struct {
	t reflect.Type
	p uintptr
}

var (
	idxType  = reflect.TypeFor[file.Idx]()
	fileType = reflect.TypeFor[*file.File]()
)

// remap rewrites every position in the tree under v with f. The tree's
// node types are many and all keep positions in file.Idx fields, so a
// reflective walk is the one that cannot miss a node kind.
func remap(v reflect.Value, f func(file.Idx) file.Idx, seen map[visit]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type() == fileType {
			return
		}
		k := visit{v.Type(), v.Pointer()}
		if seen[k] {
			return
		}
		seen[k] = true
		remap(v.Elem(), f, seen)
	case reflect.Interface:
		if !v.IsNil() {
			remap(v.Elem(), f, seen)
		}
	case reflect.Slice:
		for i := range v.Len() {
			remap(v.Index(i), f, seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fv := v.Field(i)
			if fv.Type() == idxType {
				if fv.CanSet() && fv.Int() > 0 {
					fv.SetInt(int64(f(file.Idx(fv.Int()))))
				}
				continue
			}
			remap(fv, f, seen)
		}
	}
}

// The kinds of function a source defines, in the order of precedence the
// entry point is chosen by, after the name.
type kind int

const (
	plain kind = iota
	exported
	byDefault
)

// candidate is a top-level function the entry point may be.
type candidate struct {
	name string // "" for an anonymous function
	kind kind
	// ref evaluates to the function after the program has run; nil for
	// an expression statement, whose value is the program's completion
	// value only when it is the last statement.
	ref  ast.Expression
	last bool
	line int
}

// entry chooses the function a source's tree runs: the default export,
// else the last function named name, else the last named main, else the
// last exported function, else the last top-level function. It returns
// the expression that evaluates to it (nil: the completion value) and
// whether the source assigns to module or exports, which then exist.
func entry(tree *ast.Program, exportedAt []int, name string) (ast.Expression, bool, error) {
	var cands []candidate
	module := false
	body := tree.Body
	for len(body) > 0 {
		if _, empty := body[len(body)-1].(*ast.EmptyStatement); !empty {
			break
		}
		body = body[:len(body)-1]
	}
	prevEnd := file.Idx(0)
	for i, st := range body {
		isLast := i == len(body)-1
		line := tree.File.Position(int(st.Idx0()) - 1).Line
		k := plain
		for _, at := range exportedAt {
			if at >= int(prevEnd)-1 && at < int(st.Idx0())-1 {
				k = exported
			}
		}
		prevEnd = st.Idx1()
		switch st := st.(type) {
		case *ast.FunctionDeclaration:
			n := st.Function.Name.Name.String()
			cands = append(cands, candidate{name: n, kind: k, ref: ident(n), line: line})
		case *ast.VariableStatement:
			cands = append(cands, bindings(st.List, k, line)...)
		case *ast.LexicalDeclaration:
			cands = append(cands, bindings(st.List, k, line)...)
		case *ast.ExpressionStatement:
			switch e := st.Expression.(type) {
			case *ast.FunctionLiteral:
				n := ""
				if e.Name != nil {
					n = e.Name.Name.String()
				}
				cands = append(cands, candidate{name: n, last: isLast, line: line})
			case *ast.ArrowFunctionLiteral:
				cands = append(cands, candidate{last: isLast, line: line})
			case *ast.AssignExpression:
				c, assigns, err := assignment(e, line)
				if err != nil {
					return nil, false, err
				}
				module = module || assigns
				if c != nil {
					cands = append(cands, *c)
				}
			}
		}
	}
	if len(cands) == 0 {
		return nil, false, notAFunction(body)
	}
	c := choose(cands, name)
	if c.ref == nil && !c.last {
		return nil, false, faas.Errorf(faas.Invalid, "the function expression at line %d is the entry point but is not the last statement: give it a name (`const f = ...`) or move it to the end", c.line)
	}
	return c.ref, module, nil
}

// choose applies the order of precedence of entry.
func choose(cands []candidate, name string) candidate {
	for _, match := range []func(candidate) bool{
		func(c candidate) bool { return c.kind == byDefault },
		func(c candidate) bool { return name != "" && c.name == name },
		func(c candidate) bool { return c.name == "main" },
		func(c candidate) bool { return c.kind == exported },
	} {
		for i := len(cands) - 1; i >= 0; i-- {
			if match(cands[i]) {
				return cands[i]
			}
		}
	}
	return cands[len(cands)-1]
}

// bindings returns the functions a var, let or const declaration binds.
func bindings(list []*ast.Binding, k kind, line int) []candidate {
	var out []candidate
	for _, b := range list {
		if id, ok := b.Target.(*ast.Identifier); ok && isFunction(b.Initializer) {
			n := id.Name.String()
			out = append(out, candidate{name: n, kind: k, ref: ident(n), line: line})
		}
	}
	return out
}

// assignment recognises the assignments that export a function:
// `module.exports = X` (the default export), `exports.name = X` or
// `module.exports.name = X` (a named one), X a function or the name of
// one, and those the rewrites made. It also tells whether e assigns to
// module or exports at all, which then must exist when the program runs.
func assignment(e *ast.AssignExpression, line int) (*candidate, bool, error) {
	if e.Operator != token.ASSIGN {
		return nil, false, nil
	}
	path := dotted(e.Left)
	_, isName := e.Right.(*ast.Identifier)
	ok := isFunction(e.Right) || isName
	var c *candidate
	switch {
	case len(path) == 2 && path[0] == "this" && path[1] == defaultBinding:
		if !ok {
			return nil, false, faas.Errorf(faas.Invalid, "export default at line %d must be a function; got %s", line, describeNode(e.Right))
		}
		c = &candidate{kind: byDefault, ref: ident(defaultBinding)}
	case len(path) == 2 && path[0] == "this" && path[1] == anonymousBinding:
		c = &candidate{ref: ident(anonymousBinding)}
	case len(path) == 2 && path[0] == "module" && path[1] == "exports":
		c = &candidate{kind: byDefault, ref: dot(path)}
	case len(path) == 2 && path[0] == "exports":
		c = &candidate{name: path[1], kind: exported, ref: dot(path)}
	case len(path) == 3 && path[0] == "module" && path[1] == "exports":
		c = &candidate{name: path[2], kind: exported, ref: dot(path)}
	}
	module := len(path) > 0 && (path[0] == "module" || path[0] == "exports")
	if c == nil || !ok {
		return nil, module, nil
	}
	c.line = line
	return c, module, nil
}

// dotted returns a.b.c as [a b c], or nil for any other expression.
func dotted(e ast.Expression) []string {
	switch e := e.(type) {
	case *ast.ThisExpression:
		return []string{"this"}
	case *ast.Identifier:
		return []string{e.Name.String()}
	case *ast.DotExpression:
		if left := dotted(e.Left); left != nil {
			return append(left, e.Identifier.Name.String())
		}
	}
	return nil
}

func isFunction(e ast.Expression) bool {
	switch e.(type) {
	case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral:
		return true
	}
	return false
}

func ident(n string) *ast.Identifier { return &ast.Identifier{Name: unistring.NewFromString(n)} }

func dot(path []string) ast.Expression {
	var e ast.Expression = ident(path[0])
	for _, p := range path[1:] {
		e = &ast.DotExpression{Left: e, Identifier: *ident(p)}
	}
	return e
}

func notAFunction(body []ast.Statement) error {
	got := "nothing but empty statements"
	if len(body) > 0 {
		var last ast.Node = body[len(body)-1]
		if st, ok := last.(*ast.ExpressionStatement); ok {
			last = st.Expression
		}
		got = "no top-level function (the source ends with: " + describeNode(last) + ")"
	}
	return faas.Errorf(faas.Invalid, "source must define a function, e.g. `function add(a,b){return a+b}` or `(a,b) => a+b`; got %s", got)
}

// describeNode names an AST node for an error message:
// *ast.CallExpression becomes "call expression".
func describeNode(n ast.Node) string {
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
