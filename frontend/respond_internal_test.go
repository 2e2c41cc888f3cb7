package frontend

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

// TestOKMatchesEncodingJSON checks that the envelope ok writes is byte
// for byte, headers included, what Gin's c.JSON writes through
// encoding/json, and that the answers of the hot path take the fast way.
func TestOKMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	for _, tc := range []struct {
		name string
		res  any
		fast bool
	}{
		{"job id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", true},
		{"empty string", "", true},
		{"spaces", "a b c", true},
		{"unicode", "héllo wörld ✓ 🎉", false},
		{"html", "<script>alert('x')</script> & co", false},
		{"quote and backslash", `say "hi" \ bye`, false},
		{"control", "line\nbreak\ttab\x00nul\x7f", false},
		{"invalid utf-8", "bad \xff\xfe bytes", false},
		{"line separators", "a\u2028b\u2029c", false},
		{"state 0", 0, true},
		{"state 1", 1, true},
		{"negative", -42, true},
		{"max int", math.MaxInt, true},
		{"min int", math.MinInt, true},
		{"result number", json.RawMessage("9"), true},
		{"result null", json.RawMessage("null"), true},
		{"large number", json.RawMessage("123456789012345678901234567890"), true},
		{"huge float", json.RawMessage("1e400"), true},
		{"nested", json.RawMessage(`{"a":[1,{"b":[true,null,"x"]}],"c":{}}`), true},
		{"escaped string", json.RawMessage(`"tab\tq\"\\ \u00e9"`), false},
		{"spaced", json.RawMessage(`{ "a" : [ 1 , 2 ] }`), false},
		{"newlines", json.RawMessage("[1,\n2]"), false},
		{"html in result", json.RawMessage(`{"h":"<b>&amp;</b>"}`), false},
		{"unicode in result", json.RawMessage(`{"é":"✓🎉"}`), false},
		{"line separator in result", json.RawMessage("\"a\u2028b\""), false},
		{"float", 1.5, false},
		{"nil", nil, false},
		{"struct", JobInfo{ID: "x"}, false},
		{"list", []string{"a", "<b>"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := render(t, func(c *gin.Context) { c.JSON(http.StatusAccepted, body{Res: tc.res}) })
			got := render(t, func(c *gin.Context) { ok(c, http.StatusAccepted, tc.res) })
			require.Equal(t, want.Code, got.Code)
			require.Equal(t, want.Header(), got.Header())
			require.Equal(t, want.Body.String(), got.Body.String())
			_, fast := appendOK(nil, tc.res)
			require.Equal(t, tc.fast, fast, "fast path")
		})
	}
}

// TestOKInvalidRawMessage checks that a result that is not JSON is not
// copied into the envelope: it goes to encoding/json, which refuses it.
func TestOKInvalidRawMessage(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "{", "[1,]", "nul", `"open`} {
		_, fast := appendOK(nil, json.RawMessage(raw))
		require.False(t, fast, "%q", raw)
	}
}

// render runs answer on a fresh Gin context and returns what it wrote.
func render(t testing.TB, answer func(*gin.Context)) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	answer(c)
	return w
}
