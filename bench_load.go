package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"faas/dbmanager/sqlite"
	"faas/frontend"
	"faas/frontend/client"
	"faas/internal/platform"
	"faas/proxies/faas"
	"faas/worker/pool"
	"faas/worker/sandbox"
)

// startPlatform starts the platform in this process, with admin as the
// operator's token, on free loopback ports and the data directory dir,
// and returns its URL and how to stop it. The workers are child
// processes, as under `faas up`.
func startPlatform(ctx context.Context, admin, dir string) (stop func(), url string, err error) {
	cfg, err := platform.LoadConfig()
	if err != nil {
		return nil, "", err
	}
	cfg.Up = platform.UpConfig{} // free ports
	cfg.DB.DBURL, cfg.DB.DataDir = "", dir
	cfg.Frontend.Listen, cfg.Frontend.AdminToken = "127.0.0.1:0", admin
	// One user submits everything from one address: lift the per-user and
	// per-address limits, and the cap on users, which a preloaded store
	// already passes.
	cfg.Frontend.RateLimit, cfg.Frontend.RateLimitPerAddr, cfg.Frontend.MaxJobBytesPerUser = 0, 0, 0
	cfg.Frontend.MaxUsers = 0
	cfg.JQ.MaxPendingPerUser, cfg.JQ.MaxRunningPerUser = 1000000, 0
	// The platform's own logs would drown the figures: warnings only.
	cfg.WorkerEnv = []string{"FAAS_LOG_LEVEL=warn"}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := platform.New(ctx, cfg, quiet)
	if err != nil {
		return nil, "", err
	}
	stopTuning := platform.TuneRuntime("up") // as `faas up` runs
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(runCtx); err != nil {
			quiet.Error("platform", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		stopTuning()
	}, p.URL(), nil
}

// benchClient is the bench's user of the platform, and its operator for
// the completion counter in /stats.
type benchClient struct {
	user  *client.Client
	admin *client.Client
}

// retried calls f until it is not answered 429: a platform with its
// limits on is waited out, as its Retry-After asks.
func retried[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		var he *client.HTTPError
		if !errors.As(err, &he) || he.Err.Code != faas.TooMany {
			return v, err
		}
		wait := max(he.RetryAfter, 100*time.Millisecond)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (b *benchClient) setup(ctx context.Context) error {
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	cr, err := retried(ctx, func() (frontend.Credentials, error) { return b.user.Register(ctx, name) })
	if err != nil {
		return err
	}
	b.user = b.user.As(cr.Name, cr.Token)
	_, err = retried(ctx, func() (bool, error) {
		_, created, err := b.user.PutFunction(ctx, "add", client.Deploy{Source: benchSource})
		return created, err
	})
	return err
}

// run submits one job of the bench function.
func (b *benchClient) run(ctx context.Context, args string, wait time.Duration) (client.Outcome, error) {
	return retried(ctx, func() (client.Outcome, error) {
		return b.user.Run(ctx, "add", client.Run{Args: json.RawMessage(args), Wait: wait})
	})
}

// submitters runs job(i) for i in 1..n from clients goroutines and
// returns the first error.
func submitters(n, clients int, job func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := job(int(i)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// asyncThroughput submits n jobs from clients goroutines and waits until
// the queue has completed them all; the rate is from the first submission
// to the last completion.
func (b *benchClient) asyncThroughput(ctx context.Context, n, clients int) (float64, error) {
	before, err := b.completed(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := submitters(n, clients, func(i int) error {
		_, err := b.run(ctx, fmt.Sprintf("[%d,1]", i), 0)
		return err
	}); err != nil {
		return 0, err
	}
	for {
		done, err := b.completed(ctx)
		if err != nil {
			return 0, err
		}
		if done-before >= int64(n) {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// pollingThroughput is the reference project's clients: each submits a
// job, then reads GET /j/:id every poll until it has finished, then
// submits the next. The rate is n jobs from the first submission to the
// last job seen finished; the latencies are each job's, from its
// submission to the read that saw it finished.
func (b *benchClient) pollingThroughput(ctx context.Context, n, clients int, poll time.Duration) (float64, map[int]time.Duration, error) {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	err := submitters(n, clients, func(i int) error {
		t := time.Now()
		out, err := b.run(ctx, fmt.Sprintf("[%d,3]", i), 0)
		if err != nil {
			return err
		}
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
			done, err := retried(ctx, func() (bool, error) { return b.user.Finished(ctx, out.JobID) })
			if err != nil {
				return err
			}
			if done {
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
				return nil
			}
		}
	})
	if err != nil {
		return 0, nil, err
	}
	return float64(n) / time.Since(start).Seconds(), percentiles(lat), nil
}

func (b *benchClient) completed(ctx context.Context) (int64, error) {
	st, err := retried(ctx, func() (frontend.Stats, error) { return b.admin.Stats(ctx) })
	return st.Completed, err
}

// syncLatency runs n sequential ?wait requests and returns the latency
// percentiles, indexed by percent.
func (b *benchClient) syncLatency(ctx context.Context, n int) (map[int]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		d, err := b.timedRun(ctx, i)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	return percentiles(lat), nil
}

// percentiles are the 50th and 99th percentiles of lat, indexed by
// percent. It sorts lat in place.
func percentiles(lat []time.Duration) map[int]time.Duration {
	slices.Sort(lat)
	p := func(q int) time.Duration { return lat[min(len(lat)-1, len(lat)*q/100)] }
	return map[int]time.Duration{50: p(50), 99: p(99)}
}

// timedRun times one ?wait request, add(i, 2), and checks its answer.
func (b *benchClient) timedRun(ctx context.Context, i int) (time.Duration, error) {
	t := time.Now()
	out, err := b.run(ctx, fmt.Sprintf("[%d,2]", i), 10*time.Second)
	if err != nil {
		return 0, err
	}
	d := time.Since(t)
	if !out.Done || string(out.Result) != strconv.Itoa(i+2) {
		return 0, fmt.Errorf("sync run %d: finished %v, result %s", i, out.Done, out.Result)
	}
	return d, nil
}

// afterIdle leaves the platform alone for idle, then times one ?wait
// request: what the first user after a quiet spell waits.
func (b *benchClient) afterIdle(ctx context.Context, idle time.Duration) (time.Duration, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(idle):
	}
	return b.timedRun(ctx, 1)
}

// preloadBatch is the jobs LoadFinished writes per transaction.
const preloadBatch = 10000

// preload fills the SQLite store in dir with jobs finished jobs spread
// across users users, each with the bench function, before a platform
// opens it. Users and functions go through the Store's API; the jobs,
// which are most of the work, through LoadFinished in large
// transactions.
func preload(ctx context.Context, log *slog.Logger, dir string, jobs, users int) error {
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	owner := func(i int) string { return fmt.Sprintf("preload-%06d", i%users) }
	for i := range users {
		if err := s.CreateUser(ctx, faas.User{Name: owner(i), TokenHash: "preload-token-" + owner(i)}); err != nil {
			return err
		}
		if _, _, err := s.PutFunction(ctx, faas.Function{Owner: owner(i), Name: "add", Source: benchSource}); err != nil {
			return err
		}
	}
	log.Info("bench: preload users", "users", users, "took", time.Since(start).Round(time.Millisecond))
	batch := make([]sqlite.Finished, 0, preloadBatch)
	for done := 0; done < jobs; {
		batch = batch[:0]
		for i := done; i < min(jobs, done+preloadBatch); i++ {
			batch = append(batch, sqlite.Finished{
				Job:        faas.Job{ID: faas.NewJobID(), Owner: owner(i), Function: "add", Args: json.RawMessage(`[1,2]`)},
				Completion: faas.Completion{Result: json.RawMessage(`3`), Duration: time.Millisecond},
			})
		}
		slices.SortFunc(batch, func(x, y sqlite.Finished) int { return strings.Compare(x.Job.ID, y.Job.ID) })
		if err := s.LoadFinished(ctx, "preload", batch); err != nil {
			return err
		}
		done += len(batch)
		log.Info("bench: preload jobs", "done", done, "of", jobs, "jobs_per_sec", int(float64(done)/time.Since(start).Seconds()))
	}
	return nil
}

// pooledGoja times the bench function run the way a worker runs it: in a
// warm sandbox process of this binary, through its pipes.
func pooledGoja(ctx context.Context, n int, log *slog.Logger) (time.Duration, error) {
	p, err := pool.Start(ctx, pool.Config{Size: 1}, log)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	job := pool.Job{
		Key:    pool.Key{Owner: "bench", Name: "add", Version: 1},
		Source: benchSource,
		Args:   json.RawMessage("[4,5]"),
		Limits: sandbox.Limits{Timeout: time.Second},
	}
	if r := p.Run(ctx, job); r.Err != nil { // compiles it in the sandbox
		return 0, r.Err
	}
	return median(n, func() error { return runErr(p.Run(ctx, job)) })
}

// runErr is r's error as an error: nil, not a nil *faas.Error, on success.
func runErr(r sandbox.Result) error {
	if r.Err != nil {
		return r.Err
	}
	return nil
}

// median times n calls of f one by one and returns the median. The
// sandbox's overhead is the difference of two such figures: with means,
// a few calls stalled by the collector or a slow wake-up on either side
// moved it by tens of µs from run to run, and once below zero.
func median(n int, f func() error) (time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t))
	}
	return percentiles(lat)[50], nil
}

// directGoja times the bench function run the way a worker runs it (a
// fresh runtime per call) and called on one long-lived runtime.
func directGoja(n int) (fresh, reused time.Duration, err error) {
	prog, err := sandbox.Compile(benchSource, "add")
	if err != nil {
		return 0, 0, err
	}
	args := json.RawMessage("[4,5]")
	fresh, err = median(n, func() error {
		return runErr(sandbox.Run(context.Background(), prog, args, sandbox.Limits{Timeout: time.Second}))
	})
	if err != nil {
		return 0, 0, err
	}

	vm := goja.New()
	v, err := vm.RunString("(" + benchSource + ")")
	if err != nil {
		return 0, 0, err
	}
	add, ok := goja.AssertFunction(v)
	if !ok {
		return 0, 0, errors.New("bench source is not a function")
	}
	a, b := vm.ToValue(4), vm.ToValue(5)
	t := time.Now()
	for range n * 10 {
		if _, err := add(goja.Undefined(), a, b); err != nil {
			return 0, 0, err
		}
	}
	return fresh, time.Since(t) / time.Duration(n*10), nil
}
