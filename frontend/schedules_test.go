package frontend_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
)

// scheduledJobs lists the user's jobs that a schedule submitted.
func scheduledJobs(t testing.TB, c *client.Client) []frontend.JobSummary {
	t.Helper()
	page, err := c.Jobs(context.Background(), client.JobFilter{Limit: 500})
	require.NoError(t, err)
	var out []frontend.JobSummary
	for _, j := range page.Jobs {
		if j.Trigger == "schedule" {
			out = append(out, j)
		}
	}
	return out
}

func TestScheduleRunsAndStops(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "cron")
	p.upload(t, user, token, "tick", `function tick(n) { return n + 1 }`)
	c := p.rest().As(user, token)
	ctx := context.Background()

	v, err := c.PutSchedule(ctx, "tick", frontend.ScheduleRequest{Cron: "@every 1s", Args: json.RawMessage(`[41]`)})
	require.NoError(t, err)
	require.Equal(t, "UTC", v.Timezone, "the default zone")
	require.Len(t, v.Next, 5)
	for i := 1; i < len(v.Next); i++ {
		require.Equal(t, time.Second, v.Next[i].Sub(v.Next[i-1]))
	}
	var jobs []frontend.JobSummary
	require.Eventually(t, func() bool {
		jobs = scheduledJobs(t, c)
		return len(jobs) > 0
	}, 10*time.Second, 50*time.Millisecond, "no job from the schedule")
	info, err := c.Info(ctx, jobs[0].ID)
	require.NoError(t, err)
	require.Equal(t, "schedule", info.Trigger)
	require.JSONEq(t, `[41]`, string(info.Args))

	got, err := c.Schedule(ctx, "tick")
	require.NoError(t, err)
	require.NotNil(t, got.LastTick)
	require.True(t, got.Next[0].After(*got.LastTick))
	require.JSONEq(t, `[41]`, string(got.Args))

	// Deleted, it is gone and fires no more.
	require.NoError(t, c.DeleteSchedule(ctx, "tick"))
	p.expect(t, http.StatusNotFound, "GET", "/u/"+user+"/fn/tick/schedule", token, nil)
	p.expect(t, http.StatusNotFound, "DELETE", "/u/"+user+"/fn/tick/schedule", token, nil)

	// A function deleted takes its schedule, also from a function put
	// again under its name.
	_, err = c.PutSchedule(ctx, "tick", frontend.ScheduleRequest{Cron: "@hourly", Timezone: "Europe/Madrid"})
	require.NoError(t, err)
	require.NoError(t, c.DeleteFunction(ctx, "tick"))
	p.upload(t, user, token, "tick", `function tick(n) { return n }`)
	p.expect(t, http.StatusNotFound, "GET", "/u/"+user+"/fn/tick/schedule", token, nil)
}

// TestScheduleBadInput: every bad schedule is refused with a message that
// names what is wrong, and changes nothing.
func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	user, token := p.newUser(t, "badcron")
	other, otherToken := p.newUser(t, "other")
	p.upload(t, user, token, "f", `function f() { return 1 }`)
	p.upload(t, other, otherToken, "g", `function g() { return 1 }`)
	// A schedule in place, which no refused PUT may change.
	const good = `{"cron": "0 9 * * 1-5", "args": [1], "timezone": "Europe/Madrid"}`
	p.expect(t, http.StatusOK, "PUT", "/u/"+user+"/fn/f/schedule", token, []byte(good))

	big := `{"cron": "@hourly", "args": ["` + strings.Repeat("x", 1<<20) + `"]}`
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"bad cron", "/u/" + user + "/fn/f/schedule", `{"cron": "61 * * * *"}`, http.StatusBadRequest, `invalid cron expression "61 * * * *"`},
		{"four fields", "/u/" + user + "/fn/f/schedule", `{"cron": "* * * *"}`, http.StatusBadRequest, "want five fields"},
		{"no cron", "/u/" + user + "/fn/f/schedule", `{"args": []}`, http.StatusBadRequest, "empty cron expression"},
		{"unknown zone", "/u/" + user + "/fn/f/schedule", `{"cron": "@daily", "timezone": "Mars/Olympus"}`, http.StatusBadRequest, `unknown timezone "Mars/Olympus"`},
		{"interval under 1s", "/u/" + user + "/fn/f/schedule", `{"cron": "@every 500ms"}`, http.StatusBadRequest, "under the minimum of 1s"},
		{"args not an array", "/u/" + user + "/fn/f/schedule", `{"cron": "@hourly", "args": {"a": 1}}`, http.StatusBadRequest, "arguments must be a JSON array"},
		{"args oversized", "/u/" + user + "/fn/f/schedule", big, http.StatusRequestEntityTooLarge, "larger than"},
		{"misspelt field", "/u/" + user + "/fn/f/schedule", `{"cron": "@hourly", "tz": "UTC"}`, http.StatusBadRequest, `unknown field "tz"`},
		{"not JSON", "/u/" + user + "/fn/f/schedule", `@hourly`, http.StatusBadRequest, "schedule is not"},
		{"unknown function", "/u/" + user + "/fn/nope/schedule", `{"cron": "@hourly"}`, http.StatusNotFound, "nope"},
		{"another user's function", "/u/" + other + "/fn/g/schedule", `{"cron": "@hourly"}`, http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, rep := p.do(t, "PUT", tc.path, token, []byte(tc.body))
			require.Equal(t, tc.status, status, "res %s", rep.Res)
			require.Contains(t, rep.str(t), tc.want)
		})
	}
	got, err := p.rest().As(user, token).Schedule(context.Background(), "f")
	require.NoError(t, err)
	require.Equal(t, "0 9 * * 1-5", got.Cron)
	require.Equal(t, "Europe/Madrid", got.Timezone)
	require.JSONEq(t, `[1]`, string(got.Args))
	p.expect(t, http.StatusNotFound, "GET", "/u/"+other+"/fn/g/schedule", otherToken, nil)
	p.expect(t, http.StatusForbidden, "GET", "/u/"+user+"/fn/f/schedule", otherToken, nil)
	p.expect(t, http.StatusForbidden, "DELETE", "/u/"+user+"/fn/f/schedule", otherToken, nil)
}
