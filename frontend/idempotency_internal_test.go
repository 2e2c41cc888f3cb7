package frontend

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/proxies/faas"
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	key, err := idempotencyKey(http.Header{})
	require.NoError(t, err)
	require.Empty(t, key, "no header, no key")

	for _, k := range []string{"a", "order-42", " !~{}\"'", strings.Repeat("k", 255)} {
		key, err := idempotencyKey(http.Header{"Idempotency-Key": {k}})
		require.NoError(t, err, "%q", k)
		require.Equal(t, k, key)
	}
	for _, h := range []http.Header{
		{"Idempotency-Key": {""}},
		{"Idempotency-Key": {strings.Repeat("k", 256)}},
		{"Idempotency-Key": {"café"}},
		{"Idempotency-Key": {"a\tb"}},
		{"Idempotency-Key": {"a\x7f"}},
		{"Idempotency-Key": {"a", "b"}},
	} {
		_, err := idempotencyKey(h)
		require.Equal(t, faas.Invalid, faas.ErrorCode(err), "%q", h)
	}
}

// FuzzIdempotencyKey checks that an accepted key is 1-255 printable ASCII
// characters and maps to a job id the API accepts.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "a", "order-42", "é", "a\x00b", strings.Repeat("k", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		key, err := idempotencyKey(http.Header{"Idempotency-Key": {k}})
		if err != nil {
			require.Equal(t, faas.Invalid, faas.ErrorCode(err))
			return
		}
		require.Equal(t, k, key)
		require.True(t, len(key) >= 1 && len(key) <= 255)
		for _, c := range []byte(key) {
			require.True(t, c >= 0x20 && c < 0x7f, "%q", key)
		}
		require.True(t, validJobID(keyedJobID("alice", key)))
	})
}

func TestKeyedJobID(t *testing.T) {
	t.Parallel()
	id := keyedJobID("alice", "k1")
	require.True(t, validJobID(id))
	require.Equal(t, id, keyedJobID("alice", "k1"), "deterministic")
	require.NotEqual(t, id, keyedJobID("alice", "k2"))
	require.NotEqual(t, id, keyedJobID("bob", "k1"), "keys are per user")
	require.NotEqual(t, keyedJobID("a", "bc"), keyedJobID("ab", "c"), "owner and key do not run together")
	// Pinned: a changed derivation would run a retried job again.
	require.Equal(t, "c8167f3d-6be3-5a98-8f04-dd76027cec25", keyedJobID("alice", "order-42"))
}

func TestSameRequest(t *testing.T) {
	t.Parallel()
	stored := faas.Job{Owner: "alice", Function: "add", Args: json.RawMessage(`[1,{"a":2,"b":[3.0]}]`)}
	for args, same := range map[string]bool{
		`[1,{"a":2,"b":[3.0]}]`:    true,
		`[1, {"b":[3], "a":2.00}]`: true,
		`[1,{"a":2,"b":[3.5]}]`:    false,
		`[1,{"a":2}]`:              false,
		`[1,{"a":2,"b":[3]},4]`:    false,
		`["1",{"a":2,"b":[3]}]`:    false,
	} {
		err := sameRequest(stored, faas.Job{Owner: "alice", Function: "add", Args: json.RawMessage(args)})
		if same {
			require.NoError(t, err, args)
		} else {
			require.Equal(t, faas.Conflict, faas.ErrorCode(err), args)
		}
	}
	require.Error(t, sameRequest(stored, faas.Job{Owner: "alice", Function: "mul", Args: stored.Args}), "another function")
	require.Error(t, sameRequest(stored, faas.Job{Owner: "bob", Function: "add", Args: stored.Args}), "another owner")
	// Numbers beyond float64 are compared as sent.
	require.True(t, sameJSON(json.RawMessage(`[1e400]`), json.RawMessage(`[1e400]`)))
	require.False(t, sameJSON(json.RawMessage(`[1e400]`), json.RawMessage(`[2e400]`)))
}

func TestUniqueClock(t *testing.T) {
	t.Parallel()
	var c uniqueClock
	const goroutines, each = 8, 1000
	var mu sync.Mutex
	seen := make(map[time.Time]bool, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			got := make([]time.Time, each)
			for i := range got {
				got[i] = c.now()
			}
			mu.Lock()
			defer mu.Unlock()
			for i, ts := range got {
				require.Equal(t, ts, ts.Truncate(time.Microsecond), "to the microsecond")
				require.Equal(t, time.UTC, ts.Location())
				require.False(t, seen[ts], "time handed out twice")
				seen[ts] = true
				if i > 0 {
					require.True(t, ts.After(got[i-1]), "increasing")
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, goroutines*each)
	require.WithinDuration(t, time.Now(), c.now(), time.Second, "close to the real time")
}
