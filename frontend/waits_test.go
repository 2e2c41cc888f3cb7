package frontend_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/frontend"
	"faas/frontend/client"
	"faas/proxies/faas"
	"faas/proxies/wire/wiretest"
)

// percentile is the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// TestWaitFlood: one user sends 2,000 ?wait=60s replays of one slow job,
// all pending at once. With the default caps most are refused at once
// with 429; with the caps raised all 2,000 wait. Either way they hold no bus
// socket: another user's submit, run and result keep their latency,
// /readyz stays 200, nothing answers 5xx, and the bus sockets open stay
// bounded. The waits are cancelled at the end, not waited out.
func TestWaitFlood(t *testing.T) {
	const (
		flood = 2000
		// floodRate is the requests per second of the flood: twice the
		// default rate limit, which is off here.
		floodRate = 400
	)
	for _, tc := range []struct {
		name    string
		perUser int
		waiting int
	}{
		{"default caps", 0, 100},
		{"caps raised", 5000, flood},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlatform(t, func(s *settings) { s.frontend.MaxWaitsPerUser = tc.perUser })
			flooder, floodToken := p.newUser(t, "flood")
			quiet, quietToken := p.newUser(t, "bystander")
			p.deploy(t, flooder, floodToken, "slow", client.Deploy{Timeout: 2 * time.Minute, Source: `async function slow(){ await new Promise(r => setTimeout(r, 120000)) }`})
			p.upload(t, quiet, quietToken, "add", addSrc)
			jobID := p.submitKeyed(t, flooder, floodToken, "flood", "slow", "")
			baseFDs := wiretest.OpenSockets(t)

			// Sample the bus sockets and /readyz all through the flood.
			sampleCtx, stopSampling := context.WithCancel(context.Background())
			var sampling sync.WaitGroup
			// /readyz may fail for a moment: a ping of the managers that
			// a machine busy with the rest of the suite stalls past its
			// second (the bystander stalls as long then), whose verdict
			// is kept for readyTTL. Failing for 3 s on end is the flood's
			// doing. Only the sampling goroutine touches unready and
			// longestUnready until it is waited for.
			var maxFDs, readyFailures atomic.Int64
			var unready, longestUnready time.Duration
			sampling.Go(func() {
				for sampleCtx.Err() == nil {
					if n := int64(wiretest.OpenSockets(t)); n > maxFDs.Load() {
						maxFDs.Store(n)
					}
					began := time.Now()
					if status, _ := p.do(t, "GET", "/readyz", "", nil); status != http.StatusOK {
						readyFailures.Add(1)
						unready += time.Since(began) + 50*time.Millisecond
						longestUnready = max(longestUnready, unready)
					} else {
						unready = 0
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
			defer func() { stopSampling(); sampling.Wait() }()

			// The flood, on its own client so that cancelling it ends
			// every request at once.
			floodCtx, cancelFlood := context.WithCancel(context.Background())
			defer cancelFlood()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: flood}}
			defer client.CloseIdleConnections()
			var statuses sync.Map // status -> *atomic.Int64
			var refusedOK, answered atomic.Int64
			var flooding sync.WaitGroup
			path := p.url + "/u/" + flooder + "/fn/slow/run?wait=60s"
			flooding.Go(func() {
				tick := time.NewTicker(time.Second / floodRate)
				defer tick.Stop()
				for range flood {
					select {
					case <-tick.C:
					case <-floodCtx.Done():
						return
					}
					flooding.Go(func() {
						req, _ := http.NewRequestWithContext(floodCtx, "POST", path, nil)
						req.Header = bearer(floodToken)
						req.Header.Set("Idempotency-Key", "flood")
						resp, err := client.Do(req)
						if err != nil {
							return // cancelled at the end
						}
						defer resp.Body.Close()
						answered.Add(1)
						n, _ := statuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
						n.(*atomic.Int64).Add(1)
						if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
							refusedOK.Add(1)
						}
					})
				}
			})
			settled := func() bool {
				return p.fe.WaitingFor(jobID) == tc.waiting && answered.Load() == int64(flood-tc.waiting)
			}

			// The bystander, from the flood's start until it has been
			// settled, every wait the caps let in waiting, for 3s.
			var latencies []time.Duration
			timed := func(status int, method, path string, body []byte) reply {
				begin := time.Now()
				rep := p.expect(t, status, method, path, quietToken, body)
				latencies = append(latencies, time.Since(begin))
				return rep
			}
			giveUp := time.Now().Add(90 * time.Second)
			var calm time.Time
			for calm.IsZero() || time.Since(calm) < 3*time.Second {
				require.True(t, time.Now().Before(giveUp), "the flood did not settle: %d waiting, %d answered %v",
					p.fe.WaitingFor(jobID), answered.Load(), countsOf(&statuses))
				if calm.IsZero() && settled() {
					calm = time.Now()
				}
				id := timed(http.StatusAccepted, "POST", "/u/"+quiet+"/fn/add/run", []byte("[1,2]")).str(t)
				rep := timed(http.StatusOK, "POST", "/u/"+quiet+"/fn/add/run?wait=10s", []byte("[2,3]"))
				require.JSONEq(t, "5", string(rep.Res))
				p.awaitJob(t, quietToken, id)
				rep = timed(http.StatusOK, "GET", "/j/"+id+"/res", nil)
				require.JSONEq(t, "3", string(rep.Res))
			}
			require.Equal(t, tc.waiting, p.fe.WaitingFor(jobID), "the flood's waits ended early")
			require.Equal(t, int64(flood-tc.waiting), refusedOK.Load(), "refusals are 429 with Retry-After")
			stopSampling()
			sampling.Wait()

			cancelFlood()
			flooding.Wait()
			require.Eventually(t, func() bool { return p.fe.WaitsAdmitted() == 0 }, 10*time.Second, 10*time.Millisecond, "cancelled waits stayed")
			p.expect(t, http.StatusOK, "DELETE", "/j/"+jobID, floodToken, nil)

			slices.Sort(latencies)
			t.Logf("flood answers %v; bystander: %d requests, p50 %v, p99 %v, max %v; eventfds %d before, %d at most during the flood",
				countsOf(&statuses), len(latencies), percentile(latencies, 0.5), percentile(latencies, 0.99), latencies[len(latencies)-1], baseFDs, maxFDs.Load())
			statuses.Range(func(k, v any) bool {
				require.Equal(t, http.StatusTooManyRequests, k, "a flood request answered %d", k)
				return true
			})
			require.Less(t, longestUnready, 3*time.Second, "/readyz failed during the flood (%d samples)", readyFailures.Load())
			require.Less(t, percentile(latencies, 0.99), 2*time.Second, "the bystander slowed down")
			// Two clients of at most 256 calls under way each, and their
			// idle sockets: far below one socket per wait.
			require.Less(t, maxFDs.Load()-int64(baseFDs), int64(700), "bus sockets grew with the waits")
		})
	}
}

// secondFrontend starts another frontend on p's managers, stopped at the
// end of the test, and returns p as seen through it once it is ready.
func (p *platform) secondFrontend(t *testing.T) *platform {
	t.Helper()
	return p.frontendOn(t, frontend.Config{}, p.store, p.queue)
}

// frontendOn is secondFrontend with cfg (the listen address, auth and
// request timeout are set here) over store and queue, which may wrap p's.
func (p *platform) frontendOn(t *testing.T, cfg frontend.Config, store faas.Store, queue faas.JobQueue) *platform {
	t.Helper()
	cfg.Listen, cfg.Auth, cfg.RequestTimeout = "127.0.0.1:0", "on", 10*time.Second
	fe, err := frontend.New(cfg, store, queue, p.log)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- fe.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-ran) })
	other := &platform{url: "http://" + fe.Addr(), client: p.client}
	require.Eventually(t, func() bool {
		status, _ := other.do(t, "GET", "/readyz", "", nil)
		return status == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
	return other
}

// TestDeletedUserTokenFailsOnEveryFrontend: a user deleted through one
// frontend is locked out of another at once, though the other had just
// cached the token: the old eve's token must not act on a new eve.
func TestDeletedUserTokenFailsOnEveryFrontend(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	other := p.secondFrontend(t)

	eve, oldToken := p.newUser(t, "eve")
	// The other frontend learns the old token, and would keep it for a
	// while if nothing told it otherwise.
	other.expect(t, http.StatusOK, "GET", "/u/"+eve+"/fn", oldToken, nil)
	p.expect(t, http.StatusOK, "DELETE", "/u/"+eve, oldToken, nil)
	newToken := p.register(t, eve)
	p.upload(t, eve, newToken, "add", addSrc)

	rep := other.expect(t, http.StatusUnauthorized, "DELETE", "/u/"+eve+"/fn/add", oldToken, nil)
	require.Equal(t, "unauthorized", rep.Code)
	other.expect(t, http.StatusOK, "GET", "/u/"+eve+"/fn/add", newToken, nil)
}

// TestDeleteUserStopsRunningJobs: deleting a user stops their job running
// in the only worker slot at the worker's next heartbeat, so another
// user's job runs long before the deleted user's (20s) would have ended.
func TestDeleteUserStopsRunningJobs(t *testing.T) {
	t.Parallel()
	p := startPlatform(t, serial)
	gone, goneToken := p.newUser(t, "gone")
	stays, staysToken := p.newUser(t, "stays")
	p.upload(t, stays, staysToken, "add", addSrc)
	p.startSlow(t, gone, goneToken, 20*time.Second)

	p.expect(t, http.StatusOK, "DELETE", "/u/"+gone, goneToken, nil)
	rep := p.expect(t, http.StatusOK, "POST", "/u/"+stays+"/fn/add/run?wait=10s", staysToken, []byte("[2,3]"))
	require.JSONEq(t, "5", string(rep.Res))
}

// countsOf shows the flood's answers by status, as count×status.
func countsOf(statuses *sync.Map) []string {
	var codes []string
	statuses.Range(func(k, v any) bool {
		codes = append(codes, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), k))
		return true
	})
	return codes
}
