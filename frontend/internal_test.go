package frontend

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
)

func TestLoadConfig(t *testing.T) {
	// t.Setenv rules out t.Parallel here.
	for _, k := range []string{"PORT", "FAAS_HTTP_LISTEN", "DB_URL", "JQ_URL", "FAAS_AUTH", "FAAS_REQUEST_TIMEOUT", "FAAS_RATE_LIMIT", "FAAS_RATE_BURST",
		"FAAS_RATE_LIMIT_PER_ADDR", "FAAS_TOKEN_LOOKUPS_PER_ADDR", "FAAS_REGISTRATION", "FAAS_ADMIN_TOKEN", "FAAS_ADMIN_TOKEN_FILE", "FAAS_MAX_REGISTRATIONS_PER_ADDR_HOUR",
		"FAAS_MAX_USERS", "FAAS_MAX_FUNCTIONS_PER_USER", "FAAS_MAX_SOURCE_BYTES_PER_USER", "FAAS_MAX_JOB_BYTES_PER_USER", "FAAS_SANDBOX_MAX_MEMORY_MB", "FAAS_TRUSTED_PROXIES",
		"FAAS_MAX_WAITS_PER_USER", "FAAS_MAX_WAITS", "FAAS_HOOK_RATE", "FAAS_STATUS_CACHE_BYTES", "FAAS_STATUS_CACHE_TTL"} {
		t.Setenv(k, "") // restores the variable after the test
		require.NoError(t, os.Unsetenv(k))
	}
	cfg, err := LoadConfig()
	require.NoError(t, err)
	require.Equal(t, Config{
		Port:           DefaultPort,
		DBURL:          fmt.Sprintf("tcp://127.0.0.1:%d", dbproxy.DefaultPort),
		JQURL:          fmt.Sprintf("tcp://127.0.0.1:%d", jqproxy.DefaultPort),
		Auth:           "on",
		RequestTimeout: 3 * time.Second,
		RateLimit:      200,
		RateBurst:      400,

		RateLimitPerAddr:            1000,
		TokenLookupsPerAddr:         20,
		Registration:                "open",
		MaxRegistrationsPerAddrHour: 30,
		MaxUsers:                    1000,
		MaxFunctionsPerUser:         100,
		MaxSourceBytesPerUser:       4 << 20,
		MaxJobBytesPerUser:          64 << 20,
		SandboxMaxMemoryMB:          1024,
		// Set in full, though 0 would take the same defaults.
		MaxWaitsPerUser:  100,
		MaxWaits:         10000,
		StatusCacheBytes: 32 << 20,
		StatusCacheTTL:   time.Minute,
		HookRate:         10,
	}, cfg)
	require.True(t, cfg.rateLimitOn())
	require.Equal(t, fmt.Sprintf(":%d", DefaultPort), cfg.addr())

	t.Setenv("FAAS_HTTP_LISTEN", "127.0.0.1:0")
	t.Setenv("FAAS_AUTH", "off")
	t.Setenv("DB_URL", "tcp://db:1")
	cfg, err = LoadConfig()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:0", cfg.addr())
	require.False(t, cfg.authOn())
	require.Equal(t, "tcp://db:1", cfg.DBURL)

	t.Setenv("FAAS_RATE_LIMIT", "0")
	t.Setenv("FAAS_RATE_BURST", "0")
	cfg, err = LoadConfig()
	require.NoError(t, err, "0 turns the rate limit off")
	require.False(t, cfg.rateLimitOn())
	t.Setenv("FAAS_RATE_LIMIT", "0.5")
	t.Setenv("FAAS_RATE_BURST", "1")
	cfg, err = LoadConfig()
	require.NoError(t, err)
	require.Equal(t, 0.5, cfg.RateLimit)

	for _, tc := range []struct{ k, v, want string }{
		{"FAAS_AUTH", "yes", "FAAS_AUTH"},
		{"FAAS_REQUEST_TIMEOUT", "0s", "FAAS_REQUEST_TIMEOUT"},
		{"FAAS_RATE_LIMIT", "-1", "FAAS_RATE_LIMIT"},
		{"FAAS_RATE_LIMIT", "NaN", "FAAS_RATE_LIMIT"},
		{"FAAS_RATE_LIMIT", "+Inf", "FAAS_RATE_LIMIT"},
		{"FAAS_RATE_BURST", "-1", "FAAS_RATE_BURST"},
		{"FAAS_RATE_BURST", "0", "FAAS_RATE_BURST"}, // while the rate is 0.5
		{"FAAS_RATE_LIMIT_PER_ADDR", "-1", "FAAS_RATE_LIMIT_PER_ADDR"},
		{"FAAS_TOKEN_LOOKUPS_PER_ADDR", "NaN", "FAAS_TOKEN_LOOKUPS_PER_ADDR"},
		{"FAAS_HOOK_RATE", "-1", "FAAS_HOOK_RATE"},
		{"FAAS_REGISTRATION", "invite", "FAAS_REGISTRATION"},
		{"FAAS_REGISTRATION", "closed", "FAAS_ADMIN_TOKEN is empty"},
		{"FAAS_ADMIN_TOKEN", "short", "FAAS_ADMIN_TOKEN has 5 characters"},
		{"FAAS_MAX_USERS", "-1", "FAAS_MAX_USERS"},
		{"FAAS_MAX_JOB_BYTES_PER_USER", "-1", "FAAS_MAX_JOB_BYTES_PER_USER"},
		{"FAAS_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local", `FAAS_TRUSTED_PROXIES holds "proxy.local"`},
		{"FAAS_SANDBOX_MAX_MEMORY_MB", "16", "FAAS_SANDBOX_MAX_MEMORY_MB is 16"},
		{"FAAS_SANDBOX_MAX_MEMORY_MB", "8192", "FAAS_SANDBOX_MAX_MEMORY_MB is 8192"},
		{"FAAS_MAX_WAITS_PER_USER", "-1", "FAAS_MAX_WAITS_PER_USER is -1"},
		{"FAAS_MAX_WAITS", "-5", "FAAS_MAX_WAITS is -5"},
		{"FAAS_STATUS_CACHE_BYTES", "-1", "FAAS_STATUS_CACHE_BYTES is -1"},
		{"FAAS_STATUS_CACHE_TTL", "-1s", "FAAS_STATUS_CACHE_TTL is -1s"},
	} {
		t.Run(tc.k+"="+tc.v, func(t *testing.T) {
			t.Setenv(tc.k, tc.v)
			_, err := LoadConfig()
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Setenv("FAAS_REQUEST_TIMEOUT", "soon")
	_, err = LoadConfig()
	require.Error(t, err)
	require.NoError(t, os.Unsetenv("FAAS_REQUEST_TIMEOUT"))

	// Compose hands the operator's token over as a file.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin_token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("0123456789abcdef-operator\n"), 0o600))
	t.Setenv("FAAS_ADMIN_TOKEN_FILE", tokenFile)
	cfg, err = LoadConfig()
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef-operator", cfg.AdminToken, "read from the file, without its newline")
	t.Setenv("FAAS_ADMIN_TOKEN", "0123456789abcdef-inline")
	_, err = LoadConfig()
	require.ErrorContains(t, err, "both FAAS_ADMIN_TOKEN and FAAS_ADMIN_TOKEN_FILE are set")
	t.Setenv("FAAS_ADMIN_TOKEN", "")
	require.NoError(t, os.WriteFile(tokenFile, []byte("short\n"), 0o600))
	_, err = LoadConfig()
	require.ErrorContains(t, err, "FAAS_ADMIN_TOKEN has 5 characters", "a token from a file is checked as one set inline")
	t.Setenv("FAAS_ADMIN_TOKEN_FILE", filepath.Join(dir, "nope"))
	_, err = LoadConfig()
	require.ErrorContains(t, err, "FAAS_ADMIN_TOKEN_FILE")
}

func TestHTTPStatusCoversEveryCode(t *testing.T) {
	t.Parallel()
	want := map[faas.Code]int{
		faas.NotFound: 404, faas.Invalid: 400, faas.Conflict: 409, faas.Unauthorized: 401,
		faas.TooLarge: 413, faas.NotFinished: 409, faas.FunctionError: 422, faas.Timeout: 422,
		faas.Unavailable: 503, faas.Internal: 500, faas.TooMany: 429, "no_such_code": 500,
		faas.Forbidden: 403, faas.QuotaExceeded: 413,
	}
	for code, status := range want {
		require.Equal(t, status, httpStatus(code), code)
	}
}

func TestValidJobID(t *testing.T) {
	t.Parallel()
	require.True(t, validJobID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"))
	for _, id := range []string{"", "42", "6ba7b8109dad11d180b400c04fd430c8", "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "6ba7b810-9dad-11d1-80b4-00c04fd430cx"} {
		require.False(t, validJobID(id), id)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	token, hash, err := newToken()
	require.NoError(t, err)
	require.Len(t, token, 43, "32 bytes in unpadded base64url")
	require.Len(t, hash, 64, "hex sha256")
	require.Equal(t, hash, hashToken(token))
	other, _, err := newToken()
	require.NoError(t, err)
	require.NotEqual(t, token, other)

	got, err := bearerToken("Bearer " + token)
	require.NoError(t, err)
	require.Equal(t, token, got)
	got, err = bearerToken("bearer " + token)
	require.NoError(t, err, "the scheme is case-insensitive")
	require.Equal(t, token, got)
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + token, token, "Bearer " + token[:42], "Bearer " + token + "A", "Bearer " + strings.Repeat("!", 43)} {
		_, err := bearerToken(h)
		require.Equal(t, faas.Unauthorized, faas.ErrorCode(err), "%q", h)
	}
}

// FuzzBearerToken checks that an Authorization header either yields a
// token of the shape newToken makes or is refused as unauthorized.
func FuzzBearerToken(f *testing.F) {
	token, _, err := newToken()
	require.NoError(f, err)
	for _, s := range []string{"", "Bearer " + token, "bearer  " + token, "Basic x", "Bearer", "Bearer =" + token[1:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got, err := bearerToken(header)
		if err != nil {
			require.Equal(t, faas.Unauthorized, faas.ErrorCode(err))
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(got)
		require.NoError(t, err)
		require.Len(t, b, tokenBytes)
	})
}

func TestTokenCache(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tc := newTokenCache(time.Second, 3)
	tc.put(keyOf("h1"), "alice", now, 0)
	tc.put(keyOf("h2"), "alice", now, 0)
	tc.put(keyOf("h3"), "bob", now, 0)
	user, ok := tc.get(keyOf("h1"), now.Add(999*time.Millisecond))
	require.True(t, ok)
	require.Equal(t, "alice", user)
	_, ok = tc.get(keyOf("h1"), now.Add(1001*time.Millisecond))
	require.False(t, ok, "expired")

	tc.forget("alice")
	_, ok = tc.get(keyOf("h2"), now)
	require.False(t, ok, "forgotten")
	_, ok = tc.get(keyOf("h3"), now)
	require.True(t, ok, "another user's token stays")

	// Filling it past its bound drops entries instead of growing.
	for i := range 10 {
		tc.put(keyOf(string(rune('a'+i))), "carol", now, tc.generation())
		require.LessOrEqual(t, len(tc.entries), 3)
	}
	_, ok = tc.get(keyOf("j"), now)
	require.True(t, ok, "the newest entry is kept")

	// A lookup that began before a forget does not cache what it found:
	// the user may be the one just deleted.
	gen := tc.generation()
	tc.forget("zed")
	tc.put(keyOf("z"), "zed", now, gen)
	_, ok = tc.get(keyOf("z"), now)
	require.False(t, ok, "cached across a forget")
}

// TestTokenCacheTrust: past its TTL an entry lasts only while the watch of
// the queue's events caught up less than a TTL ago, and never past its
// longest age; without trust the TTL alone decides.
func TestTokenCacheTrust(t *testing.T) {
	t.Parallel()
	const ttl, maxAge = time.Second, time.Minute
	now := time.Now()
	for _, tc := range []struct {
		name     string
		trust    bool
		age      time.Duration
		caughtUp time.Duration // before now; 0 for never
		valid    bool
	}{
		{"young, never caught up", true, ttl - time.Millisecond, 0, true},
		{"old, caught up just now", true, 30 * time.Second, time.Millisecond, true},
		{"old, caught up a TTL ago", true, 30 * time.Second, ttl, false},
		{"old, never caught up", true, 30 * time.Second, 0, false},
		{"past the longest age, caught up just now", true, maxAge, time.Millisecond, false},
		{"old without trust", false, ttl, time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTokenCache(ttl, 10)
			if tc.trust {
				c.trust(maxAge, func() time.Time {
					if tc.caughtUp == 0 {
						return time.Time{}
					}
					return now.Add(-tc.caughtUp)
				})
			}
			c.put(keyOf("t"), "ann", now.Add(-tc.age), 0)
			_, ok := c.get(keyOf("t"), now)
			require.Equal(t, tc.valid, ok)
		})
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                   "[]",
		"  \n":               "[]",
		"[]":                 "[]",
		" [ 1 , \"a\" ] ":    `[1,"a"]`,
		`[{"a": [null]}]`:    `[{"a":[null]}]`,
		"[1e400]":            "[1e400]",
		`["\u00e9\ud83d"]`:   `["\u00e9\ud83d"]`,
		`["<a>&é",{"b":[]}]`: `["<a>&é",{"b":[]}]`,
		"[1,\n2]":            "[1,2]",
	} {
		got, err := parseArgs([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, string(got), "%q", in)
	}
	for _, in := range []string{"null", "{}", "1", `"a"`, "[", "[1] [2]", "[1,]", "true"} {
		_, err := parseArgs([]byte(in))
		require.Equal(t, faas.Invalid, faas.ErrorCode(err), "%q", in)
	}
}

// FuzzParseArgs checks that whatever a client sends, parseArgs either
// refuses it as invalid or returns a compact JSON array.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"", "[]", "[1,2]", `[{"a":"b"}]`, "null", "{", "[1] x", " [ ] "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseArgs(in)
		if err != nil {
			require.Equal(t, faas.Invalid, faas.ErrorCode(err))
			return
		}
		var args []json.RawMessage
		require.NoError(t, json.Unmarshal(got, &args))
		require.NotNil(t, args)
		require.NotContains(t, string(got), "\n")
	})
}

func TestMillis(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1.234, millis(1234567*time.Nanosecond))
	require.Equal(t, 0.0, millis(999*time.Nanosecond))
	require.Equal(t, 60000.0, millis(time.Minute))
}

func TestNewJobInfo(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	info := newJobInfo(faas.Job{ID: "id", Function: "f", State: faas.Queued, Created: created})
	b, err := json.Marshal(info)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"id","function":"f","args":[],"state":"queued","attempts":0,
		"created":"2026-01-02T03:04:05.000006Z","started":null,"finished":null,
		"wait_ms":null,"duration_ms":0,"billed_ms":0,"error":null,"lost":[],"trace_id":""}`, string(b))
	info = newJobInfo(faas.Job{ID: "id", Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", info.TraceID)

	info = newJobInfo(faas.Job{ID: "id", State: faas.Failed, Created: created, Started: created.Add(1500 * time.Microsecond),
		Finished: created.Add(time.Second), Duration: 2 * time.Millisecond, Billed: 2 * time.Millisecond, Attempt: 2,
		Error: faas.Errorf(faas.Timeout, "too slow"), Lost: []*faas.Error{faas.Errorf(faas.Lost, "worker vanished")}})
	require.Equal(t, 1.5, *info.WaitMS)
	require.Equal(t, 2, info.Attempts)
	require.Equal(t, faas.Timeout, info.Error.Code)
	require.Len(t, info.Lost, 1)
}

// TestStatusOfUsesRealStatuses guards the table against typos.
func TestStatusOfUsesRealStatuses(t *testing.T) {
	t.Parallel()
	for code, status := range statusOf {
		require.NotEmpty(t, http.StatusText(status), code)
	}
}

// FuzzCursor checks that a cursor decodes to a valid name or is refused as
// invalid, and that every name's cursor decodes back to it.
func FuzzCursor(f *testing.F) {
	for _, seed := range []string{"", "YWRk", encodeCursor(".."), "!!", "YQ==", strings.Repeat("A", 200)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		name, err := decodeCursor(v)
		if err != nil {
			require.Equal(t, faas.Invalid, faas.ErrorCode(err))
			return
		}
		require.True(t, faas.ValidName(name), "%q", name)
		if faas.ValidName(v) {
			back, err := decodeCursor(encodeCursor(v))
			require.NoError(t, err)
			require.Equal(t, v, back)
		}
	})
}
