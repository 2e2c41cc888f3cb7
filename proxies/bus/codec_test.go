package bus_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/bus"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
)

// busMessages are the request and reply types of every method the
// managers serve, by method.
func busMessages(t testing.TB) map[string]wire.Messages {
	t.Helper()
	// The routes only take method values of the services; none is
	// called, so services that embed nil interfaces do.
	out := dbproxy.NewMux(struct{ faas.Store }{}).Messages()
	for m, msgs := range jqproxy.NewMux(struct{ faas.JobQueue }{}).Messages() {
		out[m] = msgs
	}
	for _, m := range bus.Methods(bus.Admin, "") {
		require.Contains(t, out, m, "method %s of the permission table is served by neither manager", m)
	}
	return out
}

// A kind of value fill builds: what the platform sends (valid UTF-8, UTC
// or fixed-offset times without a monotonic reading, compact JSON), which
// must arrive unchanged, or the edge cases it could send, which must
// arrive as encoding/json would deliver them.
const (
	plain = iota
	edge
	empty
)

var (
	plainTime = time.Date(2026, 12, 5, 3, 14, 7, 123456789, time.UTC)
	offset    = time.Date(1999, 12, 31, 23, 59, 59, 1, time.FixedZone("", -(9*3600+30*60)))
	rawType   = reflect.TypeFor[json.RawMessage]()
	timeType  = reflect.TypeFor[time.Time]()
)

// fill sets v, and what it holds, to values of the given kind; seq varies
// them between the elements of slices.
func fill(v reflect.Value, kind, seq int) {
	switch {
	case v.Type() == rawType:
		raw := map[int]string{
			plain: `[{"n":123456789012345678901234567890,"s":"\u00e9\ud83c\udf89","f":-1.5e-300,"t":true,"z":null}]`,
			edge:  " [ 1 ,\n\"<&>\\u2028\" , 1e400 ] ",
			empty: ``, // nil and empty are one on the wire
		}[kind]
		if kind != empty || seq%2 == 1 {
			v.SetBytes([]byte(raw))
		}
		return
	case v.Type() == timeType:
		t := map[int]time.Time{plain: plainTime.Add(time.Duration(seq)), edge: time.Now().In(time.FixedZone("CET", 3600)), empty: {}}[kind]
		if kind == plain && seq%2 == 1 {
			t = offset
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(map[int]string{plain: "ünïcødé 日本 🎉 <&> \u2028 \"q\" \\ ", edge: "bad \xff\xfe utf-8 \x00 \x1f", empty: ""}[kind] + strings.Repeat("x", seq))
	case reflect.Bool:
		v.SetBool(kind != empty)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(map[int]int64{plain: 1<<53 + 1 - int64(seq), edge: math.MinInt64 >> (64 - v.Type().Bits()), empty: 0}[kind])
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(map[int]uint64{plain: 1 << 53, edge: math.MaxUint64 >> (64 - v.Type().Bits()), empty: 0}[kind])
	case reflect.Float32, reflect.Float64:
		v.SetFloat(map[int]float64{plain: 1.0 / 3, edge: 1e21, empty: 0}[kind])
	case reflect.Pointer:
		if kind == empty {
			return // nil
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), kind, seq)
	case reflect.Slice:
		n := map[int]int{plain: 2, edge: 0, empty: 0}[kind]
		if kind == empty {
			return // nil
		}
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(v.Index(i), kind, seq+i)
		}
	case reflect.Map:
		if kind == empty {
			return // nil, which Function.Env keeps apart from {}
		}
		v.Set(reflect.MakeMap(v.Type()))
		if kind == plain {
			for i := range 2 {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				fill(k, kind, seq+i)
				fill(e, kind, seq+i)
				v.SetMapIndex(k, e)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" {
				fill(v.Field(i), kind, seq+i)
			}
		}
	}
}

// TestCodecRoundTrip: every message of the bus, of every method the
// managers serve, leaves the codec as the bytes encoding/json writes, so
// that processes of any version understand each other, and comes back as
// encoding/json decodes them; a message the platform sends comes back
// unchanged. The edge cases: nil and empty arguments, slices and maps;
// times with and without zones and monotonic readings, and zero; nil
// errors; numbers beyond float64 in arguments; invalid UTF-8 in strings.
func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	seen := map[reflect.Type]bool{}
	for method, msgs := range busMessages(t) {
		for _, typ := range []reflect.Type{msgs.Request, msgs.Reply} {
			if typ.Kind() == reflect.Interface || seen[typ] {
				continue // a reply of no result; or checked already
			}
			seen[typ] = true
			t.Run(method+"/"+typ.String(), func(t *testing.T) {
				t.Parallel()
				for kind, name := range []string{"plain", "edge", "empty"} {
					v := reflect.New(typ)
					fill(v.Elem(), kind, 0)
					want, wantErr := json.Marshal(v.Interface())
					got, err := wire.Marshal(v.Interface())
					if wantErr != nil {
						require.Error(t, err, "%s: encoding/json refuses it: %v", name, wantErr)
						continue
					}
					require.NoError(t, err, name)
					require.Equal(t, string(want), string(got), name)

					back, stdBack := reflect.New(typ), reflect.New(typ)
					require.NoError(t, wire.Unmarshal(got, back.Interface()), name)
					require.NoError(t, json.Unmarshal(want, stdBack.Interface()), name)
					require.True(t, reflect.DeepEqual(stdBack.Interface(), back.Interface()),
						"%s: decoded %+v\nencoding/json decodes %+v", name, back.Elem(), stdBack.Elem())
					if kind == plain {
						require.True(t, reflect.DeepEqual(v.Interface(), back.Interface()),
							"%s: sent %+v\nreceived %+v", name, v.Elem(), back.Elem())
					}
				}
			})
		}
	}
}
