package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/internal/schedule"
	"faas/proxies/faas"
)

func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func TestNextTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, expr, zone, after string
		want                    []string
	}{
		{"five fields", "*/15 9 * * 1-5", "", "2026-12-04T09:20:00Z", // a Friday
			[]string{"2026-12-04T09:30:00Z", "2026-12-04T09:45:00Z", "2026-12-07T09:00:00Z", "2026-12-07T09:15:00Z", "2026-12-07T09:30:00Z"}},
		{"hourly", "@hourly", "UTC", "2026-12-04T09:20:00Z",
			[]string{"2026-12-04T10:00:00Z", "2026-12-04T11:00:00Z", "2026-12-04T12:00:00Z", "2026-12-04T13:00:00Z", "2026-12-04T14:00:00Z"}},
		{"daily in a zone", "@daily", "Europe/Madrid", "2026-12-04T09:20:00Z",
			[]string{"2026-12-04T23:00:00Z", "2026-12-05T23:00:00Z", "2026-12-06T23:00:00Z", "2026-12-07T23:00:00Z", "2026-12-08T23:00:00Z"}},
		{"zone across a DST change", "30 8 * * *", "America/New_York", "2026-03-06T00:00:00Z",
			[]string{"2026-03-06T13:30:00Z", "2026-03-07T13:30:00Z", "2026-03-08T12:30:00Z", "2026-03-09T12:30:00Z", "2026-03-10T12:30:00Z"}},
		{"every on a fixed grid", "@every 10s", "", "2026-12-04T09:20:03Z",
			[]string{"2026-12-04T09:20:10Z", "2026-12-04T09:20:20Z", "2026-12-04T09:20:30Z", "2026-12-04T09:20:40Z", "2026-12-04T09:20:50Z"}},
		{"every from a tick", "@every 1m30s", "Asia/Tokyo", "2026-12-04T09:21:00Z",
			[]string{"2026-12-04T09:22:30Z", "2026-12-04T09:24:00Z", "2026-12-04T09:25:30Z", "2026-12-04T09:27:00Z", "2026-12-04T09:28:30Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp, err := schedule.Parse(tc.expr, tc.zone)
			require.NoError(t, err)
			var got []string
			for _, tick := range sp.NextN(at(t, tc.after), 5) {
				got = append(got, tick.UTC().Format(time.RFC3339))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, expr, zone, want string
	}{
		{"empty", " ", "", "empty cron expression"},
		{"four fields", "* * * *", "", `invalid cron expression "* * * *"`},
		{"six fields", "0 * * * * *", "", "invalid cron expression"},
		{"out of range", "61 * * * *", "", "invalid cron expression"},
		{"unknown descriptor", "@fortnightly", "", "invalid cron expression"},
		{"never fires", "0 0 30 2 *", "", "never fires"},
		{"zone in the expression", "CRON_TZ=UTC * * * * *", "", "give it as timezone"},
		{"zone prefix without a space", "TZ=UTC", "", "give it as timezone"},
		{"unknown zone", "@hourly", "Mars/Olympus", `unknown timezone "Mars/Olympus"`},
		{"machine's zone", "@hourly", "Local", "unknown timezone"},
		{"interval under a second", "@every 500ms", "", "under the minimum of 1s"},
		{"zero interval", "@every 0s", "", "under the minimum of 1s"},
		{"fractional interval", "@every 1500ms", "", "not whole seconds"},
		{"bad interval", "@every often", "", "invalid interval"},
		{"too long", strings.Repeat("1,", 200) + "1 * * * *", "", "at most 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := schedule.Parse(tc.expr, tc.zone)
			require.Error(t, err)
			require.Equal(t, faas.Invalid, faas.ErrorCode(err))
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestDueCollapsesMissedTicks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, expr, last, now string
		want                  string // "" when nothing is due
	}{
		{"not yet", "@every 10s", "2026-12-04T09:20:00Z", "2026-12-04T09:20:09Z", ""},
		{"on time", "@every 10s", "2026-12-04T09:20:00Z", "2026-12-04T09:20:10Z", "2026-12-04T09:20:10Z"},
		{"a little late", "@every 10s", "2026-12-04T09:20:00Z", "2026-12-04T09:20:12Z", "2026-12-04T09:20:10Z"},
		{"a stretch missed fires its latest tick", "@every 10s", "2026-12-04T09:20:00Z", "2026-12-04T09:24:35Z", "2026-12-04T09:24:30Z"},
		{"a year of seconds missed", "@every 1s", "2025-12-04T09:20:00Z", "2026-12-04T09:20:00Z", "2026-12-04T09:20:00Z"},
		{"a rare tick long ago", "0 0 1 1 *", "2024-12-31T00:00:00Z", "2026-12-04T09:20:00Z", "2026-01-01T00:00:00Z"},
		{"a rare tick not yet", "0 0 1 1 *", "2026-01-01T00:00:00Z", "2026-12-04T09:20:00Z", ""},
		{"hourly after a night down", "@hourly", "2026-12-03T22:00:00Z", "2026-12-04T07:59:59Z", "2026-12-04T07:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp, err := schedule.Parse(tc.expr, "")
			require.NoError(t, err)
			start := time.Now()
			tick, ok := sp.Due(at(t, tc.last), at(t, tc.now))
			require.Less(t, time.Since(start), time.Second, "Due walks a window, not every missed tick")
			if tc.want == "" {
				require.False(t, ok, "due %v", tick)
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.want, tick.UTC().Format(time.RFC3339))
			// Once the tick is recorded, nothing is due until the next.
			_, again := sp.Due(tick, at(t, tc.now))
			require.False(t, again)
		})
	}
}

// FuzzParse feeds the parser what a client may send: it answers an
// expression or an Invalid error, and never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * *", "@every 1s", "@hourly", "TZ=", "0 0 30 2 *", "*/0 * * * *", "1-0 * * * *"} {
		f.Add(s, "UTC")
	}
	f.Fuzz(func(t *testing.T, expr, zone string) {
		sp, err := schedule.Parse(expr, zone)
		if err != nil {
			require.Equal(t, faas.Invalid, faas.ErrorCode(err))
			return
		}
		sp.NextN(time.Now(), 5)
	})
}
