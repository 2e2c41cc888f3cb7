package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"faas/frontend/client"
)

// chromiumPath finds the browser. Where make installs it (root on
// Debian) its absence is a failure, so the test cannot pass by skipping.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/etc/debian_version"); err == nil && os.Geteuid() == 0 {
		t.Fatal("chromium is not installed: run `make deps`, which installs Debian's chromium package (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed; the dashboard test drives Debian's chromium package (apt-get install -y chromium)")
	return ""
}

// browser starts a headless Chromium and returns a tab's context, bounded
// by limit. The allocator gives the browser a fresh profile directory,
// which it removes once the browser's processes have exited: cleanup
// closes the browser and waits for that.
func browser(t testing.TB, limit time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Chromium's renderers share memory through /dev/shm, which is
		// small on many machines; run out of it under load, the browser
		// dies and every step after ends "context canceled".
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	}
	ctx, cancelTime := context.WithTimeout(context.Background(), limit)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelTime() })
	require.NoError(t, chromedp.Run(tab, chromedp.EmulateViewport(1280, 800)), "start chromium")
	return tab
}

// screenshots is where the test leaves a picture of each page:
// FAAS_UI_SCREENSHOTS when set (to keep them), else the test's temp dir.
func screenshots(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("FAAS_UI_SCREENSHOTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// shot saves the viewport as dir/name.png once the page is drawn.
func shot(dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var png []byte
		if err := chromedp.CaptureScreenshot(&png).Do(ctx); err != nil {
			return fmt.Errorf("screenshot %s: %w", name, err)
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action {
	return chromedp.Poll(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q) })()`, sel, want), nil, chromedp.WithPollingInterval(50*time.Millisecond))
}

// setField sets a field's value the way the user does, with the input
// and change events that the page listens to (the editor's highlighting,
// the jobs' filters).
func setField(sel, value string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => {
		const e = document.querySelector(%q)
		e.value = %q
		for (const kind of ['input', 'change']) e.dispatchEvent(new Event(kind, {bubbles: true}))
	})()`, sel, value), nil)
}

// clickNow clicks the element sel names at the moment it runs, in the
// page: chromedp.Click finds the node first and clicks it after, and a
// table redrawn in between leaves it clicking a node that is gone.
func clickNow(sel string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click()`, sel), nil)
}

// pressTwice presses a button that asks for a second press, both presses
// in one go in the page: a list redrawn in between would hold a new
// button, not armed. armed gets the button's text after the first press.
func pressTwice(sel string, armed *string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => {
		const b = document.querySelector(%q)
		b.click()
		const armed = b.textContent
		b.click()
		return armed
	})()`, sel), armed)
}

// onlyAddRows is true once the history table shows rows of the function
// add alone.
const onlyAddRows = `(() => {
	const rows = [...document.querySelectorAll('#jobs-table tbody tr')]
	return rows.length > 0 && rows.every(r => r.children[1] && r.children[1].textContent.trim() === 'add')
})()`

// holdUnfilteredJobs makes the page hold back its requests for the jobs
// list without a function filter until window.releaseJobs(), which
// answers how many it held, and counts in window.jobLoads the list's
// loads started and done.
const holdUnfilteredJobs = `(() => {
	const fetch0 = window.fetch, held = []
	window.fetch = (url, opts) => {
		const u = String(url)
		if (!u.includes('/jobs?') || u.includes('fn=')) return fetch0(url, opts)
		return new Promise((resolve) => held.push(resolve)).then(() => fetch0(url, opts))
	}
	window.releaseJobs = () => {
		window.fetch = fetch0
		const n = held.length
		held.splice(0).forEach((resolve) => resolve())
		return n
	}
	const refresh = window.refreshJobs, loads = { started: 0, done: 0 }
	window.jobLoads = loads
	window.refreshJobs = async (...args) => {
		loads.started++
		try { return await refresh(...args) } finally { loads.done++ }
	}
})()`

// dashboardAdmin is the operator's token of the dashboard's platform.
const dashboardAdmin = "operator-token-of-the-dashboard-test"

// TestDashboard does the reference flow in a real browser against the
// real platform, each role its own process: register, deploy, run, see the result and an error, find
// the job in the history and follow a running one's logs, read usage and
// the operator's view, delete the job and the function; then it looks at
// the pages on a phone.
func TestDashboard(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "FAAS_ADMIN_TOKEN="+dashboardAdmin)
	c.startAll(1)
	ctx := browser(t, 4*time.Minute)
	dir := screenshots(t)
	const user = "dana"

	// /ui leads to the page, which opens on sign-in for a new visitor.
	var token string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(c.http+"/ui"),
		chromedp.WaitVisible("#register-form"),
		shot(dir, "1-signin"),
		chromedp.SendKeys("#register-user", user),
		chromedp.Click("#register-form button[type=submit]"),
		chromedp.WaitVisible("#new-token"),
		chromedp.Text("#new-token", &token),
		shot(dir, "2-registered"),
		chromedp.Click("#register-continue"),
		chromedp.WaitVisible("#page-functions"),
	), "register")
	// The token shown is the user's real token.
	a := &api{Client: client.New(c.http, client.WithHTTPClient(c.httpClient()), client.WithUser(user, token)), t: t}
	r := a.do(http.MethodGet, "/u/"+user+"/time", "")
	require.Equal(t, http.StatusOK, r.Status, "the token the page showed: %s", r.Res)

	// Deploy with a timeout and memory cap, in the editor.
	var memory string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click("#fn-new"),
		chromedp.SendKeys("#fn-name", "add"),
		setField("#fn-timeout", "5"),
		setField("#fn-memory", "64"),
		setField("#fn-src", "// adds two numbers\nfunction add(a, b) {\n  console.log('adding', a, b)\n  return a + b\n}\n"),
		chromedp.Click("#fn-save"),
		chromedp.WaitVisible(`#fn-table tr[data-fn="add"]`),
		chromedp.Text(`#fn-table tr[data-fn="add"] td:nth-child(3)`, &memory),
		// The highlighter coloured the keyword.
		waitText("#fn-highlight .tok-kw", "function"),
		shot(dir, "3-functions"),
	), "deploy")
	require.Equal(t, "64 MB", memory)
	for name, src := range map[string]string{
		// What a function prints is text, never markup in the page.
		"boom": "function boom(){ console.log('<img src=x id=pwned>'); throw new Error('kaboom') }",
		"slow": "async function slow(){ console.log('first'); await new Promise(r => setTimeout(r, 3000)); console.log('second'); return 'done' }",
	} {
		r := a.do(http.MethodPost, "/u/"+user+"/fn/"+name, src)
		require.Equal(t, http.StatusCreated, r.Status, "upload %s: %s", name, r.Res)
	}

	// Run from the list's Run button: result, logs and duration.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(`#fn-table tr[data-fn="add"] button[aria-label="Run add"]`),
		chromedp.WaitVisible("#page-run"),
		waitText("#run-fn", "add"),
		setField("#run-args", "[4, 5]"),
		chromedp.Click("#run-go"),
		waitText("#run-meta", "took"),
		waitText("#run-result", "9"),
		waitText("#run-logs", "adding 4 5"),
		waitText("#run-state", "succeeded"),
		shot(dir, "4-run"),
	), "run add")

	// A function's failure shows its code and message; so does a bad
	// argument list, before any request.
	var injected bool
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue("#run-fn", "boom"),
		chromedp.Click("#run-go"),
		waitText("#run-result", "function_error"),
		waitText("#run-result", "kaboom"),
		waitText("#run-logs", "<img src=x id=pwned>"),
		chromedp.Evaluate(`document.getElementById('pwned') !== null`, &injected),
		shot(dir, "5-run-error"),
		setField("#run-args", "{\"a\": 1}"),
		chromedp.Click("#run-go"),
		waitText("#error-text", "invalid: arguments"),
		chromedp.Click("#error-close"),
	), "run errors")
	require.False(t, injected, "a log line became an element of the page")

	// A slow job, followed live on the jobs page while it runs. The run
	// page waits for it; the jobs page opens it from the history.
	require.NoError(t, chromedp.Run(ctx,
		setField("#run-args", "[]"),
		chromedp.SetValue("#run-fn", "slow"),
		chromedp.Click("#run-go"),
		waitText("#run-logs", "first"),
		chromedp.Click(`#nav a[href="#jobs"]`),
		chromedp.WaitVisible(`#jobs-table tr[data-job]`),
	), "start slow")
	var rows []*cdp.Node
	var held int
	var fnFilter string
	require.NoError(t, chromedp.Run(ctx,
		waitText("#jobs-table tbody", "running"),
		// Open it with the keyboard.
		chromedp.Focus(`#jobs-table tbody tr:first-child`),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible("#job-live"),
		waitText("#job-logs", "first"),
		shot(dir, "6-job-live"),
		waitText("#job-logs", "second"),
		waitText("#job-state", "succeeded"),
		waitText("#job-result", "done"),
		// Filters: only the failed job, then only add's.
		setField("#jobs-state", "failed"),
		chromedp.WaitNotPresent(`#jobs-table tbody tr:nth-child(2)`),
		waitText("#jobs-table tbody", "boom"),
		// Each filter reloads the table. The unfiltered reload is held
		// back until the function filter's has landed, as a slow answer
		// would be: that older load must not put its rows back.
		chromedp.Evaluate(holdUnfilteredJobs, nil),
		setField("#jobs-state", ""),
		setField("#jobs-fn", "add"),
		chromedp.Poll(onlyAddRows, nil),
		chromedp.Evaluate(`window.releaseJobs()`, &held),
		chromedp.Poll(`window.jobLoads.started === window.jobLoads.done`, nil),
		chromedp.Nodes(`#jobs-table tbody tr`, &rows),
		chromedp.Value("#jobs-fn", &fnFilter),
	), "jobs")
	require.Positive(t, held, "the unfiltered reload was held back")
	require.Len(t, rows, 1, "the function filter leaves add's one job")
	require.Equal(t, "add", fnFilter, "the function filter keeps its choice")
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(`#jobs-table tbody tr:first-child`),
		waitText("#job-result", "9"),
		waitText("#job-record", `"duration_ms"`),
		shot(dir, "7-jobs"),
	), "job record")

	// Usage: billed time and the day's jobs per hour.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(`#nav a[href="#usage"]`),
		waitText("#usage-jobs", "3"),
		waitText("#usage-failed", "1"),
		waitText("#usage-billed", "s"),
		chromedp.WaitVisible("#usage-chart rect.bar"),
		shot(dir, "8-usage"),
	), "usage")

	// The operator's view: a wrong token is refused out loud, the right
	// one shows the queue, after two samples the charts, and the failed
	// job of boom among the recent failures, with its owner and error.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(`#nav a[href="#ops"]`),
		chromedp.SendKeys("#ops-token", "not-the-operator-token"+kb.Enter),
		waitText("#error-text", "operator token was refused"),
		chromedp.WaitVisible("#ops-form"),
		chromedp.SendKeys("#ops-token", dashboardAdmin+kb.Enter),
		chromedp.WaitVisible("#ops-view"),
		waitText("#ops-workers", "1"),
		chromedp.WaitVisible("#ops-rate path.line"),
		chromedp.WaitVisible("#ops-latency path.line"),
		waitText("#ops-failures tbody", "kaboom"),
		waitText("#ops-failures tbody", "function_error"),
		waitText("#ops-failures tbody", user),
		waitText("#ops-failures tbody", "boom"),
		shot(dir, "9-operator"),
	), "operator")

	// Delete the job, then the function, each with a second press.
	var armed string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click(`#nav a[href="#jobs"]`),
		waitText("#jobs-table tbody", "add"),
		// Auto-refresh redraws the rows every few seconds; a click on a
		// row being replaced finds no node.
		chromedp.Evaluate(`document.querySelector('#jobs-auto').checked = false`, nil),
		setField("#jobs-fn", "add"),
		// The page kept the filter, so its first load may already show
		// add's rows alone while the reload the filter started is still
		// to come: click in the page itself, on whichever row is there
		// then, not on a node found a moment before.
		chromedp.Poll(onlyAddRows, nil),
		clickNow(`#jobs-table tbody tr:first-child`),
		waitText("#job-result", "9"),
		chromedp.Click("#job-delete"),
		waitText("#job-delete", "Confirm"),
		chromedp.Click("#job-delete"),
		chromedp.WaitVisible("#job-idle"),
		chromedp.WaitVisible("#jobs-empty"),
		clickNow(`#nav a[href="#functions"]`),
		chromedp.WaitVisible(`#fn-table tr[data-fn="add"]`),
		pressTwice(`button[aria-label="Delete add"]`, &armed),
		chromedp.WaitNotPresent(`#fn-table tr[data-fn="add"]`),
	), "delete")
	require.Equal(t, "Confirm", armed, "the first press asks for confirmation")
	r = a.do(http.MethodGet, "/u/"+user+"/fn/add", "")
	require.Equal(t, http.StatusNotFound, r.Status, "add after deleting it in the page: %s", r.Res)

	// A phone: every page stacks into one column.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Click(`#nav a[href="#functions"]`),
		chromedp.WaitVisible(`#fn-table tr[data-fn="slow"]`),
		shot(dir, "10-phone-functions"),
		chromedp.Click(`#nav a[href="#jobs"]`),
		setField("#jobs-fn", ""),
		chromedp.WaitVisible(`#jobs-table tr[data-job]`),
		clickNow(`#jobs-table tbody tr:first-child`),
		waitText("#job-result", "done"),
		shot(dir, "11-phone-jobs"),
		chromedp.Click(`#nav a[href="#ops"]`),
		chromedp.WaitVisible("#ops-view"),
		shot(dir, "12-phone-operator"),
	), "phone")
	// Nothing is wider than the phone's screen.
	var wide bool
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.documentElement.scrollWidth > innerWidth`, &wide)))
	require.False(t, wide, "the page scrolls sideways on a phone")

	// Signing out forgets the token; signing in with a wrong one says so.
	var stored bool
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Click("#signout"),
		chromedp.WaitVisible("#signin-form"),
		chromedp.Evaluate(`sessionStorage.getItem('faas.token') !== null`, &stored),
		chromedp.SendKeys("#signin-user", user),
		chromedp.SendKeys("#signin-token", "wrong-token"+kb.Enter),
		waitText("#error-text", "unauthorized"),
		chromedp.SetValue("#signin-token", token),
		chromedp.SendKeys("#signin-token", kb.Enter),
		chromedp.WaitVisible("#page-functions"),
	), "sign out and in")
	require.False(t, stored, "the token outlived signing out")

	// A function's concurrency limit and webhooks, in its editor. A bad
	// limit goes to the API, whose refusal the banner shows.
	r = a.do(http.MethodPost, "/u/"+user+"/fn/echo", "function echo(ev) { return ev.json }")
	require.Equal(t, http.StatusCreated, r.Status, "upload echo: %s", r.Res)
	var hookURL string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.EmulateViewport(1280, 800),
		// Through another page, so that the list is read again with echo.
		clickNow(`#nav a[href="#run"]`),
		chromedp.WaitVisible("#page-run"),
		clickNow(`#nav a[href="#functions"]`),
		chromedp.WaitVisible(`#fn-table tr[data-fn="echo"]`),
		clickNow(`#fn-table button[aria-label="Edit echo"]`),
		waitText("#hooks-fn", "echo"),
		chromedp.WaitVisible("#hooks-empty"),
		setField("#fn-concurrency", "-1"),
		clickNow("#fn-save"),
		waitText("#error-text", `invalid: invalid concurrency "-1"`),
		setField("#fn-concurrency", "2"),
		clickNow("#fn-save"),
		waitText("#fn-saved", "Saved echo"),
		chromedp.WaitNotVisible("#error"),
		clickNow("#hook-new"),
		chromedp.WaitVisible("#hook-url"),
		chromedp.Text("#hook-url", &hookURL),
		chromedp.WaitVisible(`#hooks-table tr[data-hook]`),
		chromedp.ScrollIntoView("#hooks"),
		shot(dir, "13-webhooks"),
	), "concurrency and a webhook")
	var fn struct{ Concurrency int }
	r = a.do(http.MethodGet, "/u/"+user+"/fn/echo", "")
	require.NoError(t, json.Unmarshal(r.Res, &fn), "%s", r.Res)
	require.Equal(t, 2, fn.Concurrency, "the limit saved in the page")

	// The URL runs echo for anyone, with no token.
	require.True(t, strings.HasPrefix(hookURL, c.http+"/hook/"), "hook URL %q", hookURL)
	anyone := &api{Client: client.New(c.http, client.WithHTTPClient(c.httpClient())), t: t}
	hookPath := strings.TrimPrefix(hookURL, c.http)
	r = anyone.do(http.MethodPost, hookPath, `{"n": 7}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, r.Status, "the hook's URL: %s", r.Res)
	require.JSONEq(t, `{"n": 7}`, string(r.Res))

	// The history tells the webhook's job from the others; revoking the
	// hook in the editor, with a second press, kills its URL.
	var revokeArmed string
	require.NoError(t, chromedp.Run(ctx,
		clickNow(`#nav a[href="#jobs"]`),
		waitText("#jobs-table tbody", "webhook"),
		clickNow(`#jobs-table tbody tr:first-child`),
		waitText("#job-trigger", "run by a webhook"),
		waitText("#job-result", "7"),
		clickNow(`#nav a[href="#functions"]`),
		chromedp.WaitVisible(`#fn-table tr[data-fn="echo"]`),
		clickNow(`#fn-table button[aria-label="Edit echo"]`),
		chromedp.WaitVisible(`#hooks-table tr[data-hook]`),
		// The URL was shown once: editing again does not show it.
		chromedp.WaitNotVisible("#hook-done"),
		pressTwice(`#hooks-table button.danger`, &revokeArmed),
		chromedp.WaitVisible("#hooks-empty"),
	), "revoke the webhook")
	require.Equal(t, "Confirm", revokeArmed, "the first press asks for confirmation")
	r = anyone.do(http.MethodPost, hookPath, `{"n": 8}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusNotFound, r.Status, "the hook's URL after revoking it in the page: %s", r.Res)

	// A topic subscription and a publish from the editor: a bad topic name
	// shows the API's refusal, the event's job opens from the list.
	var published string
	require.NoError(t, chromedp.Run(ctx,
		setField("#topic-name", "bad topic"),
		clickNow("#topic-sub"),
		waitText("#error-text", "invalid"),
		waitText("#error-text", "bad topic"),
		setField("#topic-name", "orders"),
		clickNow("#topic-sub"),
		chromedp.WaitVisible(`#topics-table tr[data-topic="orders"]`),
		chromedp.WaitNotVisible("#error"),
		setField("#topic-event", `{"json": {"order": 42}}`),
		clickNow("#topic-publish"),
		chromedp.WaitVisible("#topic-jobs a[data-job]"),
		chromedp.Text("#topic-jobs a[data-job]", &published),
		chromedp.ScrollIntoView("#topics"),
		shot(dir, "15-topics"),
		clickNow("#topic-jobs a[data-job]"),
		waitText("#job-id", published),
		waitText("#job-trigger", "run by a topic"),
		waitText("#job-result", "42"),
	), "subscribe and publish")
	var subs []struct{ Topic string }
	r = a.do(http.MethodGet, "/u/"+user+"/fn/echo/subscriptions", "")
	require.NoError(t, json.Unmarshal(r.Res, &subs), "%s", r.Res)
	require.Len(t, subs, 1, "subscribed in the page: %s", r.Res)
	require.Equal(t, "orders", subs[0].Topic)
	// Back in the editor, which still shows echo: opening it again would
	// read the panels anew, racing the steps that follow.
	require.NoError(t, chromedp.Run(ctx,
		clickNow(`#nav a[href="#functions"]`),
		chromedp.WaitVisible(`#topics-table tr[data-topic="orders"]`),
		clickNow(`#topics-table button[aria-label="Unsubscribe from orders"]`),
		chromedp.WaitVisible("#topics-empty"),
	), "unsubscribe")
	r = a.do(http.MethodGet, "/u/"+user+"/fn/echo/subscriptions", "")
	require.JSONEq(t, "[]", string(r.Res), "unsubscribed in the page")

	// A schedule, set and removed in the editor; a bad expression shows
	// the API's refusal.
	require.NoError(t, chromedp.Run(ctx,
		// Opening echo last read its schedule too; edits must come after.
		chromedp.WaitVisible("#schedule:not([aria-busy])"),
		setField("#schedule-cron", "every minute"),
		clickNow("#schedule-save"),
		waitText("#error-text", `invalid cron expression "every minute"`),
		setField("#schedule-cron", "0 9 * * 1-5"),
		setField("#schedule-tz", "Europe/Madrid"),
		setField("#schedule-args", `[{"team": "core"}]`),
		clickNow("#schedule-save"),
		chromedp.WaitVisible("#schedule-next li:nth-child(5)"),
		chromedp.WaitNotVisible("#error"),
		chromedp.ScrollIntoView("#schedule"),
		shot(dir, "14-schedule"),
	), "set a schedule")
	var sc struct {
		Cron, Timezone string
		Args           json.RawMessage
		Next           []time.Time
	}
	r = a.do(http.MethodGet, "/u/"+user+"/fn/echo/schedule", "")
	require.Equal(t, http.StatusOK, r.Status, "the schedule set in the page: %s", r.Res)
	require.NoError(t, json.Unmarshal(r.Res, &sc), "%s", r.Res)
	require.Equal(t, "0 9 * * 1-5", sc.Cron)
	require.Equal(t, "Europe/Madrid", sc.Timezone)
	require.JSONEq(t, `[{"team": "core"}]`, string(sc.Args))
	require.Len(t, sc.Next, 5)
	var removeArmed string
	require.NoError(t, chromedp.Run(ctx,
		pressTwice("#schedule-rm", &removeArmed),
		chromedp.WaitVisible("#schedule-none"),
	), "remove the schedule")
	require.Equal(t, "Confirm", removeArmed, "the first press asks for confirmation")
	r = a.do(http.MethodGet, "/u/"+user+"/fn/echo/schedule", "")
	require.Equal(t, http.StatusNotFound, r.Status, "the schedule after removing it in the page: %s", r.Res)

	// A job's fused calls and child jobs, and links between parent and
	// child in the job record.
	for name, src := range map[string]string{
		"sq":  "function sq(x) { return x * x }",
		"fam": "async function fam(x) { const y = await faas.call('sq', x); await faas.submit('sq', 3); return y }",
	} {
		r := a.do(http.MethodPost, "/u/"+user+"/fn/"+name, src)
		require.Equal(t, http.StatusCreated, r.Status, "upload %s: %s", name, r.Res)
	}
	r = a.do(http.MethodPost, "/u/"+user+"/fn/fam/run?wait=60s", "[4]")
	require.Equal(t, http.StatusOK, r.Status, "run fam: %s", r.Res)
	require.JSONEq(t, "16", string(r.Res))
	famID := strings.TrimPrefix(r.Header.Get("Location"), "/j/")
	require.NotEmpty(t, famID, "fam's job id")
	var childID, backTo string
	require.NoError(t, chromedp.Run(ctx,
		clickNow(`#nav a[href="#jobs"]`),
		chromedp.WaitVisible(fmt.Sprintf(`#jobs-table tr[data-job=%q]`, famID)),
		clickNow(fmt.Sprintf(`#jobs-table tr[data-job=%q]`, famID)),
		waitText("#job-id", famID),
		waitText("#job-calls tbody", "sq"),
		chromedp.WaitVisible("#job-children a[data-job]"),
		chromedp.Text("#job-children a[data-job]", &childID),
		chromedp.ScrollIntoView("#job-calls"),
		shot(dir, "16-fused-calls"),
		clickNow("#job-children a[data-job]"),
		chromedp.WaitVisible("#job-parent-row"),
		chromedp.Text("#job-id", &backTo),
		waitText("#job-parent", famID),
		clickNow("#job-parent a"),
		waitText("#job-id", famID),
	), "fused calls and child jobs")
	require.Equal(t, childID, backTo, "the child's link opens the child")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	t.Logf("%d screenshots in %s", len(entries), dir)
	require.True(t, strings.HasSuffix(entries[0].Name(), ".png"))
}
