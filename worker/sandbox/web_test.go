package sandbox

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebGlobals is a conformance table for the Web-standard globals: each
// case is an expression and the JSON of what Node 22 and browsers answer
// for it (or the error they throw), taken from the specifications'
// examples and checked against Node.
func TestWebGlobals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		want string
	}{
		// atob and btoa.
		{"btoa latin1", `btoa("\u00ff hi")`, `"/yBoaQ=="`},
		{"btoa above latin1", `(() => { try { btoa("\u0100") } catch (e) { return [e instanceof DOMException, e.name, e.code] } })()`, `[true,"InvalidCharacterError",5]`},
		{"atob", `atob("aGVsbG8=")`, `"hello"`},
		{"atob forgiving", `atob(" aGVs bG8 ")`, `"hello"`},
		{"atob unpadded", `atob("YQ")`, `"a"`},
		{"atob high bytes", `atob("/w==").charCodeAt(0)`, `255`},
		{"atob bad length", `(() => { try { atob("a") } catch (e) { return e.name } })()`, `"InvalidCharacterError"`},
		{"atob bad character", `(() => { try { atob("a*==") } catch (e) { return e.name } })()`, `"InvalidCharacterError"`},
		{"atob round trip", `atob(btoa("\u0000\u0080\u00ff"))`, `"\u0000\u0080ÿ"`},
		// TextEncoder and TextDecoder.
		{"encode", `Array.from(new TextEncoder().encode("é€😀"))`, `[195,169,226,130,172,240,159,152,128]`},
		{"encode is a Uint8Array", `new TextEncoder().encode("a") instanceof Uint8Array`, `true`},
		{"encode lone surrogate", `Array.from(new TextEncoder().encode("\ud800"))`, `[239,191,189]`},
		{"encoding", `[new TextEncoder().encoding, new TextDecoder().encoding]`, `["utf-8","utf-8"]`},
		{"encodeInto", `(() => { const d = new Uint8Array(4); return [new TextEncoder().encodeInto("aé€", d), Array.from(d)] })()`, `[{"read":2,"written":3},[97,195,169,0]]`},
		{"decode", `new TextDecoder().decode(new Uint8Array([104,195,169]))`, `"hé"`},
		{"decode ArrayBuffer", `new TextDecoder().decode(new Uint8Array([104,105]).buffer)`, `"hi"`},
		{"decode view offset", `new TextDecoder().decode(new Uint8Array([0,104,105,0]).subarray(1,3))`, `"hi"`},
		{"decode strips BOM", `new TextDecoder().decode(new Uint8Array([0xef,0xbb,0xbf,104]))`, `"h"`},
		{"decode ignoreBOM", `new TextDecoder("utf-8", {ignoreBOM: true}).decode(new Uint8Array([0xef,0xbb,0xbf,104])).length`, `2`},
		{"decode invalid replaced", `new TextDecoder().decode(new Uint8Array([0x61,0xff,0x62]))`, `"a\ufffdb"`},
		{"decode truncated is one replacement", `new TextDecoder().decode(new Uint8Array([0xf0,0x9f,0x98,0x61]))`, `"\ufffda"`},
		{"decode surrogate bytes", `new TextDecoder().decode(new Uint8Array([0xed,0xa0,0x80]))`, `"\ufffd\ufffd\ufffd"`},
		{"decode fatal", `(() => { try { new TextDecoder("utf-8", {fatal: true}).decode(new Uint8Array([0xff])) } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"decode nothing", `new TextDecoder().decode()`, `""`},
		{"label utf8", `new TextDecoder("UTF8").encoding`, `"utf-8"`},
		{"label unsupported", `(() => { try { new TextDecoder("latin2") } catch (e) { return e instanceof RangeError } })()`, `true`},
		// URL.
		{"URL relative", `new URL("../c?x=1#h", "http://a/b/d").href`, `"http://a/c?x=1#h"`},
		{"URL parts", `(() => { const u = new URL("https://user:pw@Example.COM:8080/p/a/t/h?query=string#hash"); return [u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin] })()`,
			`["https:","user","pw","example.com:8080","example.com","8080","/p/a/t/h","?query=string","#hash","https://example.com:8080"]`},
		{"URL default port dropped", `new URL("http://a.com:80/x").href`, `"http://a.com/x"`},
		{"URL empty path", `new URL("https://a.com").href`, `"https://a.com/"`},
		{"URL dot segments", `new URL("http://a/b/../c/./d").pathname`, `"/c/d"`},
		{"URL space in path", `new URL("http://a/b c").pathname`, `"/b%20c"`},
		{"URL space in query", `new URL("http://a/?q=a b").search`, `"?q=a%20b"`},
		{"URL backslash", `new URL("http://a\\b\\c").href`, `"http://a/b/c"`},
		{"URL IDN", `new URL("http://bücher.de/").host`, `"xn--bcher-kva.de"`},
		{"URL absolute ignores base", `new URL("https://x/y", "http://a/b").href`, `"https://x/y"`},
		{"URL scheme-relative", `new URL("//x/y", "https://a/b").href`, `"https://x/y"`},
		{"URL fragment only", `new URL("#f", "http://a/b?q").href`, `"http://a/b?q#f"`},
		{"URL mailto", `(() => { const u = new URL("mailto:a@b.c"); return [u.href, u.protocol, u.pathname, u.origin] })()`, `["mailto:a@b.c","mailto:","a@b.c","null"]`},
		{"URL invalid", `(() => { try { new URL("foo") } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"URL no host", `(() => { try { new URL("http://") } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"URL bad port", `(() => { try { new URL("http://a:99999/") } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"URL canParse", `[URL.canParse("http://a"), URL.canParse("nope"), URL.canParse("x", "http://a/")]`, `[true,false,true]`},
		{"URL toString and JSON", `(() => { const u = new URL("http://a/b"); return [String(u), JSON.stringify({u})] })()`, `["http://a/b","{\"u\":\"http://a/b\"}"]`},
		{"URL setters", `(() => { const u = new URL("http://a/b"); u.pathname = "c d"; u.search = "x=1"; u.hash = "h"; u.port = "8080"; u.hostname = "b.org"; return u.href })()`, `"http://b.org:8080/c%20d?x=1#h"`},
		{"URL protocol setter", `(() => { const u = new URL("http://a/b"); u.protocol = "https"; return u.href })()`, `"https://a/b"`},
		{"URL href setter invalid", `(() => { const u = new URL("http://a/"); try { u.href = "nope" } catch (e) { return [e instanceof TypeError, u.href] } })()`, `[true,"http://a/"]`},
		{"URL searchParams live", `(() => { const u = new URL("http://a/?x=1"); u.searchParams.append("y", "a b"); u.searchParams.set("x", "2"); return [u.href, u.search] })()`, `["http://a/?x=2&y=a+b","?x=2&y=a+b"]`},
		{"URL search updates searchParams", `(() => { const u = new URL("http://a/?x=1"); u.search = "?z=3"; return [u.searchParams.get("x"), u.searchParams.get("z")] })()`, `[null,"3"]`},
		// URLSearchParams.
		{"params parse", `(() => { const p = new URLSearchParams("?a=1&b=x+y&a=%F0%9F%98%80&c"); return [p.getAll("a"), p.get("b"), p.get("c"), p.get("d"), p.has("c"), p.size] })()`, `[["1","😀"],"x y","",null,true,4]`},
		{"params bad escape kept", `new URLSearchParams("a=%zz&b=%").toString()`, `"a=%25zz&b=%25"`},
		{"params serialize", `new URLSearchParams({q: "a b&c=d", e: "é*-._~!"}).toString()`, `"q=a+b%26c%3Dd&e=%C3%A9*-._%7E%21"`},
		{"params from pairs", `new URLSearchParams([["a","1"],["b","2"]]).toString()`, `"a=1&b=2"`},
		{"params bad pair", `(() => { try { new URLSearchParams([["a"]]) } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"params set removes duplicates", `(() => { const p = new URLSearchParams("a=1&b=2&a=3"); p.set("a", "4"); return p.toString() })()`, `"a=4&b=2"`},
		{"params delete", `(() => { const p = new URLSearchParams("a=1&b=2&a=3"); p.delete("a"); return p.toString() })()`, `"b=2"`},
		{"params delete value", `(() => { const p = new URLSearchParams("a=1&a=3"); p.delete("a", "3"); return p.toString() })()`, `"a=1"`},
		{"params sort stable", `(() => { const p = new URLSearchParams("c=1&a=2&b=3&a=1"); p.sort(); return p.toString() })()`, `"a=2&a=1&b=3&c=1"`},
		{"params iterate", `[...new URLSearchParams("a=1&b=2")]`, `[["a","1"],["b","2"]]`},
		{"params keys values", `(() => { const p = new URLSearchParams("a=1&b=2"); return [[...p.keys()], [...p.values()]] })()`, `[["a","b"],["1","2"]]`},
		{"params forEach", `(() => { const out = []; new URLSearchParams("a=1").forEach((v, k) => out.push(k + v)); return out })()`, `["a1"]`},
		{"params toStringTag", `Object.prototype.toString.call(new URLSearchParams())`, `"[object URLSearchParams]"`},
		// structuredClone.
		{"clone plain", `(() => { const o = {a: [1, {b: 2}]}; const c = structuredClone(o); return [c, c !== o, c.a !== o.a] })()`, `[{"a":[1,{"b":2}]},true,true]`},
		{"clone Map and Set", `(() => { const c = structuredClone(new Map([["k", new Set([1, 2])]])); return [c instanceof Map, c.get("k") instanceof Set, [...c.get("k")]] })()`, `[true,true,[1,2]]`},
		{"clone Date", `(() => { const d = new Date(0); const c = structuredClone(d); return [c instanceof Date, c.getTime(), c !== d] })()`, `[true,0,true]`},
		{"clone RegExp", `(() => { const c = structuredClone(/a+b/gi); return [c instanceof RegExp, c.source, c.flags, c.lastIndex] })()`, `[true,"a+b","gi",0]`},
		{"clone cycle", `(() => { const o = {}; o.self = o; const c = structuredClone(o); return [c.self === c, c !== o] })()`, `[true,true]`},
		{"clone shared reference", `(() => { const s = {}; const c = structuredClone([s, s]); return c[0] === c[1] })()`, `true`},
		{"clone typed array", `(() => { const a = new Uint16Array([1, 2]); const c = structuredClone(a); a[0] = 9; return [c instanceof Uint16Array, Array.from(c)] })()`, `[true,[1,2]]`},
		{"clone error", `(() => { const c = structuredClone(new RangeError("bad")); return [c instanceof RangeError, c.message] })()`, `[true,"bad"]`},
		{"clone drops prototype", `(() => { class P { constructor() { this.x = 1 } } const c = structuredClone(new P()); return [Object.getPrototypeOf(c) === Object.prototype, c.x] })()`, `[true,1]`},
		{"clone function throws", `(() => { try { structuredClone({f() {}}) } catch (e) { return [e instanceof DOMException, e.name, e.code] } })()`, `[true,"DataCloneError",25]`},
		{"clone symbol throws", `(() => { try { structuredClone(Symbol("s")) } catch (e) { return e.name } })()`, `"DataCloneError"`},
		{"clone WeakMap throws", `(() => { try { structuredClone(new WeakMap()) } catch (e) { return e.name } })()`, `"DataCloneError"`},
		{"clone primitives", `[structuredClone(1), structuredClone("s"), structuredClone(null), structuredClone(undefined) === undefined]`, `[1,"s",null,true]`},
		// crypto.
		{"getRandomValues fills and returns", `(() => { const a = new Uint32Array(64); const r = crypto.getRandomValues(a); return [r === a, a.some(x => x !== 0)] })()`, `[true,true]`},
		{"getRandomValues view offset", `(() => { const b = new Uint8Array(16); crypto.getRandomValues(b.subarray(8)); return b.slice(0, 8).every(x => x === 0) })()`, `true`},
		{"getRandomValues quota", `(() => { try { crypto.getRandomValues(new Uint8Array(65537)) } catch (e) { return e.name } })()`, `"QuotaExceededError"`},
		{"getRandomValues float refused", `(() => { try { crypto.getRandomValues(new Float64Array(1)) } catch (e) { return e.name } })()`, `"TypeMismatchError"`},
		{"randomUUID", `/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID())`, `true`},
		{"randomUUID differs", `crypto.randomUUID() !== crypto.randomUUID()`, `true`},
		// As globals.
		{"typeof", `[typeof URL, typeof atob, typeof crypto, typeof structuredClone, typeof DOMException]`, `["function","function","object","function","function"]`},
		{"in globalThis", `["URL" in globalThis, "TextEncoder" in globalThis]`, `[true,true]`},
		{"shadowed by the user", `(() => { globalThis.URL = 5; return URL })()`, `5`},
		{"natives are not reachable", `typeof n === "undefined" && !Object.getOwnPropertyNames(globalThis).includes("parseURL")`, `true`},
		{"function names", `[atob.name, URL.name, structuredClone.name]`, `["atob","URL","structuredClone"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, "function f() { return "+tc.expr+" }", `[]`, Limits{})
			require.Nil(t, res.Err)
			assert.JSONEq(t, tc.want, string(res.Value))
		})
	}
}

// TestEnv checks faas.env: the program's values, frozen, and an empty
// object for a function without any.
func TestEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		expr string
		want string
	}{
		{"values", map[string]string{"REGION": "eu", "API_KEY": "k"}, `[faas.env.REGION, faas.env.API_KEY, faas.env.NONE]`, `["eu","k",null]`},
		{"keys", map[string]string{"B": "2", "A": "1"}, `Object.keys(faas.env)`, `["A","B"]`},
		{"frozen", map[string]string{"A": "1"}, `[Object.isFrozen(faas), Object.isFrozen(faas.env)]`, `[true,true]`},
		{"assignment ignored", map[string]string{"A": "1"}, `(() => { faas.env.A = "2"; faas.env.B = "3"; return faas.env })()`, `{"A":"1"}`},
		{"strict assignment throws", map[string]string{"A": "1"}, `(() => { "use strict"; try { faas.env.A = "2" } catch (e) { return e instanceof TypeError } })()`, `true`},
		{"none", nil, `[typeof faas, faas.env]`, `["object",{}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Compile("function f() { return "+tc.expr+" }", "f")
			require.NoError(t, err)
			res := Run(context.Background(), p.WithEnv(tc.env), json.RawMessage(`[]`), Limits{})
			require.Nil(t, res.Err)
			assert.JSONEq(t, tc.want, string(res.Value))
		})
	}
}
