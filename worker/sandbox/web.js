// The Web-standard globals of the sandbox (see web.go). Evaluated once per
// run on first use; n holds the natives written in Go. It evaluates to get,
// which makes each global the first time it is asked for, so that a
// function using atob does not pay for URL.
(function (n) {
  "use strict";
  const define = (obj, props) => {
    for (const k of Object.keys(props)) {
      Object.defineProperty(obj, k, { value: props[k], writable: true, configurable: true, enumerable: false });
    }
  };
  const tag = (cls, name) => Object.defineProperty(cls.prototype, Symbol.toStringTag, { value: name, configurable: true });
  const made = Object.create(null);
  const get = (name) => (name in made ? made[name] : (made[name] = factories[name]()));

  const factories = {
    DOMException() {
      const codes = {
        IndexSizeError: 1, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
        InvalidCharacterError: 5, TypeMismatchError: 17, NetworkError: 19, AbortError: 20, DataCloneError: 25, QuotaExceededError: 22,
      };
      class DOMException extends Error {
        constructor(message = "", name = "Error") {
          super(String(message));
          define(this, { name: String(name) });
        }
        get code() { return codes[this.name] || 0; }
      }
      tag(DOMException, "DOMException");
      return DOMException;
    },

    TextEncoder() {
      class TextEncoder {
        get encoding() { return "utf-8"; }
        encode(input = "") { return new Uint8Array(n.encode(String(input))); }
        encodeInto(source, dest) {
          if (!(dest instanceof Uint8Array)) throw new TypeError("encodeInto: destination must be a Uint8Array");
          let read = 0, written = 0;
          for (const ch of String(source)) {
            const b = new Uint8Array(n.encode(ch));
            if (written + b.length > dest.length) break;
            dest.set(b, written);
            written += b.length;
            read += ch.length;
          }
          return { read, written };
        }
      }
      tag(TextEncoder, "TextEncoder");
      return TextEncoder;
    },

    TextDecoder() {
      // bytesOf views a BufferSource as (buffer, offset, length).
      const bytesOf = (src, what) => {
        if (src instanceof ArrayBuffer) return [src, 0, src.byteLength];
        if (ArrayBuffer.isView(src)) return [src.buffer, src.byteOffset, src.byteLength];
        throw new TypeError(what + ": argument must be an ArrayBuffer or a view of one");
      };

      const utf8Labels = ["utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8"];
      const decoders = new WeakMap();
      class TextDecoder {
        constructor(label = "utf-8", options = {}) {
          const l = String(label).trim().toLowerCase();
          if (!utf8Labels.includes(l)) throw new RangeError(`The "${label}" encoding is not supported`);
          options = options == null ? {} : options;
          decoders.set(this, { fatal: !!options.fatal, ignoreBOM: !!options.ignoreBOM });
        }
        get encoding() { return "utf-8"; }
        get fatal() { return decoders.get(this).fatal; }
        get ignoreBOM() { return decoders.get(this).ignoreBOM; }
        decode(input, options) {
          const d = decoders.get(this);
          if (!d) throw new TypeError("decode: not a TextDecoder");
          if (options && options.stream) throw new TypeError("decode: the stream option is not supported");
          if (input === undefined) return "";
          const [buf, off, len] = bytesOf(input, "decode");
          return n.decode(buf, off, len, d.fatal, d.ignoreBOM);
        }
      }
      tag(TextDecoder, "TextDecoder");
      return TextDecoder;
    },

    // URL and URLSearchParams share their state: a URL's searchParams
    // writes back to it.
    url() {
      const params = new WeakMap();
      class URLSearchParams {
        constructor(init = "") {
          const list = [];
          params.set(this, { list, url: null });
          if (init instanceof URLSearchParams) {
            for (const [k, v] of params.get(init).list) list.push([k, v]);
          } else if (init !== null && typeof init === "object" || typeof init === "function") {
            if (typeof init[Symbol.iterator] === "function") {
              for (const pair of init) {
                const p = [...pair];
                if (p.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
                list.push([String(p[0]), String(p[1])]);
              }
            } else {
              for (const k of Object.keys(init)) list.push([k, String(init[k])]);
            }
          } else {
            parseForm(list, String(init).replace(/^\?/, ""));
          }
        }
        get size() { return own(this).list.length; }
        append(name, value) { own(this).list.push([String(name), String(value)]); update(this); }
        delete(name, value) {
          const p = own(this);
          name = String(name);
          p.list = p.list.filter(([k, v]) => !(k === name && (value === undefined || v === String(value))));
          update(this);
        }
        get(name) { const e = own(this).list.find(([k]) => k === String(name)); return e ? e[1] : null; }
        getAll(name) { return own(this).list.filter(([k]) => k === String(name)).map(([, v]) => v); }
        has(name, value) { return own(this).list.some(([k, v]) => k === String(name) && (value === undefined || v === String(value))); }
        set(name, value) {
          const p = own(this);
          name = String(name);
          const i = p.list.findIndex(([k]) => k === name);
          if (i < 0) p.list.push([name, String(value)]);
          else {
            p.list[i][1] = String(value);
            p.list = p.list.filter(([k], j) => j <= i || k !== name);
          }
          update(this);
        }
        sort() {
          // Stable, by UTF-16 code units, as the standard says.
          own(this).list = own(this).list.map((e, i) => [e, i]).sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1])).map(([e]) => e);
          update(this);
        }
        forEach(fn, thisArg) { for (const [k, v] of own(this).list) fn.call(thisArg, v, k, this); }
        *entries() { for (const [k, v] of own(this).list) yield [k, v]; }
        *keys() { for (const [k] of own(this).list) yield k; }
        *values() { for (const [, v] of own(this).list) yield v; }
        [Symbol.iterator]() { return this.entries(); }
        toString() { return own(this).list.map(([k, v]) => n.formEncode(k) + "=" + n.formEncode(v)).join("&"); }
      }
      tag(URLSearchParams, "URLSearchParams");
      const own = (p) => {
        const s = params.get(p);
        if (!s) throw new TypeError("not a URLSearchParams");
        return s;
      };
      const parseForm = (list, s) => {
        for (const part of s.split("&")) {
          if (part === "") continue;
          const i = part.indexOf("=");
          list.push(i < 0 ? [n.formDecode(part), ""] : [n.formDecode(part.slice(0, i)), n.formDecode(part.slice(i + 1))]);
        }
      };
      // update writes a URL's search back from its searchParams.
      const update = (p) => {
        const url = own(p).url;
        if (!url) return;
        const s = p.toString();
        urls.get(url).search = s === "" ? "" : "?" + s;
      };

      const urls = new WeakMap();
      const record = (u) => {
        const r = urls.get(u);
        if (!r) throw new TypeError("not a URL");
        return r;
      };
      const href = (r) => {
        let s = r.protocol;
        if (r.hasHost === "true") {
          s += "//";
          if (r.username || r.password) s += r.username + (r.password ? ":" + r.password : "") + "@";
          s += r.host;
        }
        return s + r.pathname + r.search + r.hash;
      };
      // reparse replaces a URL's parts with those of text, if it parses; URL
      // setters ignore a value that does not.
      const reparse = (u, text) => {
        let p;
        try { p = n.parseURL(text); } catch (e) { return; }
        const r = record(u);
        Object.assign(r, p);
        const q = params.get(r.params);
        q.list = [];
        parseForm(q.list, r.search.slice(1));
      };
      const part = (k, make) => ({
        get() { return record(this)[k]; },
        set(v) { const r = record(this); reparse(this, href(Object.assign({}, r, make(String(v), r)))); },
        configurable: true, enumerable: true,
      });

      class URL {
        constructor(url, base) {
          const r = base === undefined ? n.parseURL(String(url)) : n.parseURL(String(url), String(base));
          r.params = new URLSearchParams(r.search);
          params.get(r.params).url = this;
          urls.set(this, r);
        }
        static canParse(url, base) {
          try { new URL(url, base); return true; } catch (e) { return false; }
        }
        get href() { return href(record(this)); }
        set href(v) {
          const before = this.href;
          reparse(this, String(v));
          if (this.href === before && String(v) !== before) {
            try { n.parseURL(String(v)); } catch (e) { throw new TypeError("Invalid URL: " + v); }
          }
        }
        get origin() {
          const r = record(this);
          return r.hasHost === "true" && r.protocol !== "file:" ? r.protocol + "//" + r.host : "null";
        }
        get searchParams() { return record(this).params; }
        toString() { return this.href; }
        toJSON() { return this.href; }
      }
      Object.defineProperties(URL.prototype, {
        protocol: part("protocol", (v) => ({ protocol: v.replace(/:.*$/, "") + ":" })),
        username: part("username", (v) => ({ username: encodeURIComponent(v) })),
        password: part("password", (v) => ({ password: encodeURIComponent(v) })),
        host: part("host", (v) => ({ host: v })),
        hostname: part("hostname", (v, r) => ({ host: v + (r.port ? ":" + r.port : "") })),
        port: part("port", (v, r) => ({ host: r.hostname + (v ? ":" + v : "") })),
        pathname: part("pathname", (v) => ({ pathname: v.startsWith("/") ? v : "/" + v })),
        search: part("search", (v) => ({ search: v === "" ? "" : "?" + v.replace(/^\?/, "") })),
        hash: part("hash", (v) => ({ hash: v === "" ? "" : "#" + v.replace(/^#/, "") })),
      });
      tag(URL, "URL");
      return { URL, URLSearchParams };
    },
    URL() { return get("url").URL; },
    URLSearchParams() { return get("url").URLSearchParams; },

    structuredClone() {
      const DOMException = get("DOMException");
      // structuredClone copies what the structured clone algorithm copies,
      // keeping shared references and cycles; anything else is a
      // DataCloneError.
      const errors = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
      function structuredClone(value) {
        const seen = new Map();
        const clone = (v) => {
          if (v === null || typeof v !== "object" && typeof v !== "function") {
            if (typeof v === "symbol") throw new DOMException(String(v) + " could not be cloned.", "DataCloneError");
            return v;
          }
          if (seen.has(v)) return seen.get(v);
          const tag = Object.prototype.toString.call(v).slice(8, -1);
          let out;
          const keep = (o) => { seen.set(v, o); return o; };
          switch (true) {
            case typeof v === "function":
              throw new DOMException((v.toString().split("\n")[0]) + " could not be cloned.", "DataCloneError");
            case Array.isArray(v):
              out = keep(new Array(v.length));
              for (const k of Object.keys(v)) out[k] = clone(v[k]);
              return out;
            case v instanceof Date: return keep(new Date(v.getTime()));
            case v instanceof RegExp: return keep(new RegExp(v.source, v.flags));
            case v instanceof Map:
              out = keep(new Map());
              for (const [k, x] of v) out.set(clone(k), clone(x));
              return out;
            case v instanceof Set:
              out = keep(new Set());
              for (const x of v) out.add(clone(x));
              return out;
            case v instanceof ArrayBuffer: return keep(v.slice(0));
            case ArrayBuffer.isView(v): {
              const buf = clone(v.buffer);
              const C = v.constructor;
              return keep(v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new C(buf, v.byteOffset, v.length));
            }
            case tag === "Boolean": return keep(Object(v.valueOf()));
            case tag === "Number": return keep(Object(v.valueOf()));
            case tag === "String": return keep(Object(v.valueOf()));
            case tag === "BigInt": return keep(Object(v.valueOf()));
            case v instanceof Error: {
              const C = errors[v.name] || Error;
              out = keep(new C(v.message));
              if ("stack" in v) define(out, { stack: String(v.stack) });
              if ("cause" in v) define(out, { cause: clone(v.cause) });
              return out;
            }
            case tag === "Object" || tag === "Arguments":
              if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) break;
              out = keep({});
              for (const k of Object.keys(v)) out[k] = clone(v[k]);
              return out;
          }
          throw new DOMException(`#<${tag}> could not be cloned.`, "DataCloneError");
        };
        if (arguments.length === 0) throw new TypeError("structuredClone: 1 argument required, but only 0 present.");
        return clone(value);
      }
      return structuredClone;
    },

    crypto() {
      const DOMException = get("DOMException");
      const integerArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array];
      class Crypto {
        getRandomValues(array) {
          if (!integerArrays.some((C) => array instanceof C)) {
            throw new DOMException("The data provided is not an integer typed array", "TypeMismatchError");
          }
          n.random(array.buffer, array.byteOffset, array.byteLength);
          return array;
        }
        randomUUID() { return n.uuid(); }
      }
      tag(Crypto, "Crypto");
      return new Crypto();
    },

    atob() {
      return function atob(s) {
        if (arguments.length === 0) throw new TypeError("atob: 1 argument required, but only 0 present.");
        return n.atob(String(s));
      };
    },

    btoa() {
      return function btoa(s) {
        if (arguments.length === 0) throw new TypeError("btoa: 1 argument required, but only 0 present.");
        return n.btoa(String(s));
      };
    },
  };
  return get;
})
