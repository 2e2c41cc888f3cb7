package sandbox

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dop251/goja"
	"golang.org/x/net/idna"
)

// The Web-standard globals (TextEncoder, TextDecoder, URL,
// URLSearchParams, atob, btoa, structuredClone, crypto, DOMException) are
// classes whose shape is easiest to get right in JavaScript, over a few
// natives written in Go for what JavaScript cannot do in the sandbox
// (randomness, UTF-8 bytes, URL parsing). The JavaScript is web.js,
// compiled once per process; a run evaluates it the first time the
// function looks up one of these globals, and makes each global the first
// time it is looked up, so a function that uses none pays nothing and one
// that uses atob does not pay for URL. The natives are handed to web.js as
// an argument and never become globals. None of them reaches the host
// beyond the kernel's random source.

//go:embed web.js
var webSource string

// webNames are the globals web.js provides.
var webNames = []string{"TextEncoder", "TextDecoder", "URL", "URLSearchParams", "atob", "btoa", "structuredClone", "crypto", "DOMException"}

// webProgram is web.js compiled: a function expression taking the natives
// and returning get, which makes the global it is asked for.
var webProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("<builtin>", webSource, true)
})

// webGlobal returns the Web global name, evaluating web.js on first use in
// this run; each global is made the first time it is asked for.
func (r *runner) webGlobal(name string) goja.Value {
	if r.webGet == nil {
		r.webGet = r.webSetup()
	}
	v, err := r.webGet(goja.Undefined(), r.vm.ToValue(name))
	if err != nil {
		panic(err)
	}
	return v
}

// webSetup evaluates web.js and hands it the natives.
func (r *runner) webSetup() goja.Callable {
	v, err := r.vm.RunProgram(webProgram())
	if err != nil {
		panic(err)
	}
	setup, ok := goja.AssertFunction(v)
	if !ok {
		panic("web.js did not evaluate to a function")
	}
	natives := r.vm.NewObject()
	for name, fn := range map[string]func(goja.FunctionCall) goja.Value{
		"atob":       r.atob,
		"btoa":       r.btoa,
		"random":     r.random,
		"uuid":       func(goja.FunctionCall) goja.Value { return r.vm.ToValue(uuid4()) },
		"encode":     r.encodeUTF8,
		"decode":     r.decodeUTF8,
		"parseURL":   r.parseURL,
		"formEncode": func(c goja.FunctionCall) goja.Value { return r.vm.ToValue(formEncode(c.Argument(0).String())) },
		"formDecode": func(c goja.FunctionCall) goja.Value { return r.vm.ToValue(formDecode(c.Argument(0).String())) },
	} {
		must(natives.Set(name, r.native(name, fn)))
	}
	out, err := setup(goja.Undefined(), natives)
	if err != nil {
		panic(err)
	}
	get, ok := goja.AssertFunction(out)
	if !ok {
		panic("web.js did not return a function")
	}
	return get
}

// domError throws a DOMException of the given name, as browsers do for
// atob's bad input and for quotas.
func (r *runner) domError(name, msg string) {
	ctor := r.webGlobal("DOMException").(*goja.Object)
	e, err := r.vm.New(ctor, r.vm.ToValue(msg), r.vm.ToValue(name))
	if err != nil {
		panic(err)
	}
	panic(e)
}

// btoa encodes a string of code points up to U+00FF, each taken as a
// byte, in base64; a higher one is an InvalidCharacterError.
func (r *runner) btoa(c goja.FunctionCall) goja.Value {
	s := c.Argument(0).String()
	b := make([]byte, 0, len(s))
	for _, ch := range s {
		if ch > 0xff {
			r.domError("InvalidCharacterError", "Invalid character")
		}
		b = append(b, byte(ch))
	}
	return r.vm.ToValue(base64.StdEncoding.EncodeToString(b))
}

// atob decodes forgiving base64 (white space ignored, padding optional)
// into a string of code points up to U+00FF.
func (r *runner) atob(c goja.FunctionCall) goja.Value {
	s := strings.Map(func(ch rune) rune {
		if strings.ContainsRune(" \t\n\f\r", ch) {
			return -1
		}
		return ch
	}, c.Argument(0).String())
	if len(s)%4 == 0 {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil || len(s)%4 == 1 {
		// Strict also refuses non-zero trailing bits, which the
		// forgiving decoder accepts: retry without it.
		b, err = base64.RawStdEncoding.DecodeString(s)
		if err != nil || len(s)%4 == 1 {
			r.domError("InvalidCharacterError", "The string to be decoded is not correctly encoded.")
		}
	}
	runes := make([]rune, len(b))
	for i, x := range b {
		runes[i] = rune(x)
	}
	return r.vm.ToValue(string(runes))
}

// maxRandom is getRandomValues' quota, in bytes.
const maxRandom = 65536

// random fills an ArrayBuffer's bytes [off, off+n) with random bytes.
func (r *runner) random(c goja.FunctionCall) goja.Value {
	buf, ok := c.Argument(0).Export().(goja.ArrayBuffer)
	off, n := int(c.Argument(1).ToInteger()), int(c.Argument(2).ToInteger())
	if !ok || off < 0 || n < 0 || off+n > len(buf.Bytes()) {
		panic(r.vm.NewTypeError("getRandomValues: not an integer typed array"))
	}
	if n > maxRandom {
		r.domError("QuotaExceededError", fmt.Sprintf("The ArrayBufferView's byte length (%d) exceeds the number of bytes of entropy available via this API (%d)", n, maxRandom))
	}
	_, _ = rand.Read(buf.Bytes()[off : off+n])
	return goja.Undefined()
}

// uuid4 is a random (version 4) UUID in its lowercase text form.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// encodeUTF8 is TextEncoder.encode's core: the string's UTF-8 bytes, lone
// surrogates as U+FFFD, in a new ArrayBuffer.
func (r *runner) encodeUTF8(c goja.FunctionCall) goja.Value {
	return r.vm.ToValue(r.vm.NewArrayBuffer([]byte(wellFormed(c.Argument(0)))))
}

// wellFormed converts a JavaScript string to UTF-8, replacing each lone
// surrogate with U+FFFD as the USVString conversion does.
func wellFormed(v goja.Value) string {
	s := v.String()
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// decodeUTF8 is TextDecoder.decode's core: bytes [off, off+n) of an
// ArrayBuffer as UTF-8, a leading BOM dropped unless ignoreBOM, and each
// maximal invalid subsequence replaced by U+FFFD, or a TypeError if fatal.
func (r *runner) decodeUTF8(c goja.FunctionCall) goja.Value {
	buf, ok := c.Argument(0).Export().(goja.ArrayBuffer)
	off, n := int(c.Argument(1).ToInteger()), int(c.Argument(2).ToInteger())
	if !ok || off < 0 || n < 0 || off+n > len(buf.Bytes()) {
		panic(r.vm.NewTypeError("decode: not a BufferSource"))
	}
	b := buf.Bytes()[off : off+n]
	if !c.Argument(4).ToBoolean() {
		b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	}
	s, valid := decodeWHATWG(b)
	if !valid && c.Argument(3).ToBoolean() {
		panic(r.vm.NewTypeError("The encoded data was not valid for encoding utf-8"))
	}
	return r.vm.ToValue(s)
}

// decodeWHATWG decodes UTF-8 the way the Encoding standard does: a
// truncated sequence is one U+FFFD, not one per byte as Go's decoder
// gives.
func decodeWHATWG[T string | []byte](b T) (string, bool) {
	if utf8.Valid([]byte(b)) {
		return string(b), true
	}
	var out strings.Builder
	for i := 0; i < len(b); {
		ch, size := utf8.DecodeRuneInString(string(b[i:min(i+4, len(b))]))
		if ch != utf8.RuneError || size > 1 {
			out.WriteRune(ch)
			i += size
			continue
		}
		out.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return out.String(), false
}

// maximalSubpart is the length of the invalid sequence at the start of b:
// a lead byte followed by the continuation bytes it may validly take.
func maximalSubpart[T string | []byte](b T) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed:
		need, hi = 2, 0x9f
	case c == 0xf0:
		need, lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		need, hi = 3, 0x8f
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return i
}

// specialPorts are the special schemes of the URL standard with their
// default ports; file has none.
var specialPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21", "file": ""}

// parseURL parses input, against base if one is given, into the parts the
// URL class keeps, or throws a TypeError.
func (r *runner) parseURL(c goja.FunctionCall) goja.Value {
	input := c.Argument(0).String()
	var base *url.URL
	if b := c.Argument(1); !goja.IsUndefined(b) {
		var err error
		if base, err = parseWHATWG(b.String(), nil); err != nil {
			panic(r.vm.NewTypeError("Invalid base URL: %s", b.String()))
		}
	}
	u, err := parseWHATWG(input, base)
	if err != nil {
		panic(r.vm.NewTypeError("Invalid URL: %s", input))
	}
	parts := r.vm.NewObject()
	set := func(k, v string) { must(parts.Set(k, v)) }
	set("protocol", u.Scheme+":")
	set("username", u.User.Username())
	pw, _ := u.User.Password()
	set("password", pw)
	_, special := specialPorts[u.Scheme]
	set("opaque", strconv.FormatBool(u.Opaque != "" || !special && u.Host == "" && !strings.HasPrefix(u.Path, "/")))
	set("hostname", u.Hostname())
	set("port", u.Port())
	if u.Opaque != "" {
		set("pathname", u.Opaque)
	} else {
		set("pathname", u.EscapedPath())
	}
	set("host", u.Host)
	set("hasHost", strconv.FormatBool(u.Host != "" || special))
	set("search", "")
	if u.RawQuery != "" {
		set("search", "?"+escape(u.RawQuery, queryEscapes(special)))
	}
	set("hash", "")
	if f := u.EscapedFragment(); f != "" {
		set("hash", "#"+escape(f, "\"<>`"))
	}
	return parts
}

// parseWHATWG parses s as the URL standard does as far as net/url allows:
// surrounding C0 controls and spaces, and tabs and newlines anywhere, are
// dropped; the scheme and host are lowercased and the host converted to
// punycode; a special scheme's default port is dropped and an empty path
// becomes "/"; dot segments are resolved; backslashes count as slashes in
// a special URL's path.
func parseWHATWG(s string, base *url.URL) (*url.URL, error) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	scheme, _, _ := strings.Cut(s, ":")
	if _, special := specialPorts[strings.ToLower(scheme)]; special || base != nil && isSpecial(base) && !strings.Contains(scheme, "/") {
		// Only before the query: a backslash there is data.
		head, tail, _ := strings.Cut(s, "?")
		s = strings.ReplaceAll(head, `\`, "/")
		if tail != "" || strings.Contains(head, "?") {
			s += "?" + tail
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" {
		if base == nil {
			return nil, fmt.Errorf("relative URL without a base")
		}
		if base.Opaque != "" && !strings.HasPrefix(s, "#") {
			return nil, fmt.Errorf("cannot resolve against an opaque URL")
		}
		u = base.ResolveReference(u)
	} else if _, special := specialPorts[u.Scheme]; special && u.Opaque != "" {
		// "http:example.com" names a host, as if it had slashes.
		if u, err = url.Parse(u.Scheme + "://" + strings.TrimLeft(s[len(u.Scheme)+1:], "/")); err != nil {
			return nil, err
		}
	}
	port, special := specialPorts[u.Scheme]
	if special {
		if u.Host == "" && u.Scheme != "file" {
			return nil, fmt.Errorf("missing host")
		}
		host, err := idna.Lookup.ToASCII(u.Hostname())
		if err != nil {
			return nil, err
		}
		p := u.Port()
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n > 65535 {
				return nil, fmt.Errorf("bad port %s", p)
			}
			p = strconv.Itoa(n)
		}
		if p == port {
			p = ""
		}
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
		if p != "" {
			u.Host += ":" + p
		}
		if u.Path == "" {
			u.Path = "/"
		}
		u = u.ResolveReference(&url.URL{})
	}
	return u, nil
}

func isSpecial(u *url.URL) bool {
	_, ok := specialPorts[u.Scheme]
	return ok
}

// queryEscapes are the characters the URL standard percent-encodes in a
// query, besides controls, space and non-ASCII.
func queryEscapes(special bool) string {
	if special {
		return "\"#<>'"
	}
	return "\"#<>"
}

// escape percent-encodes controls, space, non-ASCII bytes and the given
// characters.
func escape(s, chars string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(chars, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// formEncode is the application/x-www-form-urlencoded serializer: space
// as '+', and everything but ASCII alphanumerics and *-._ percent-encoded
// as UTF-8.
func formEncode(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			b.WriteByte('+')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("*-._", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// formDecode is the form parser's decoding of one name or value: '+' as
// space, valid percent escapes decoded (invalid ones kept as they are) and
// the bytes decoded as UTF-8.
func formDecode(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b = append(b, byte(n))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	out, _ := decodeWHATWG(b)
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
