package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"faas/frontend"
	"faas/frontend/client"
	"faas/internal/platform"
	"faas/proxies/faas"
	"faas/worker/pool"
	"faas/worker/sandbox"
)

// benchSource is the trivial function every benchmark runs.
const benchSource = "function add(a, b) { return a + b }"

// bench measures a running platform, or one it starts itself, and prints
// one table: async throughput, sync latency, and the same function called
// in goja directly for comparison.
func bench(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("url", "", "frontend URL of a running platform (default: start one)")
	jobs := fs.Int("jobs", 5000, "async jobs to submit")
	clients := fs.Int("clients", 32, "concurrent HTTP clients submitting async jobs")
	syncN := fs.Int("sync", 1000, "sequential ?wait requests for the latency figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Only the operator reads /stats, which the throughput figure needs.
	admin := os.Getenv("FAAS_ADMIN_TOKEN")
	if *url == "" {
		if admin == "" {
			admin = rand.Text()
		}
		stop, u, err := startPlatform(ctx, admin)
		if err != nil {
			return err
		}
		defer stop()
		*url = u
	} else if admin == "" {
		return errors.New("bench -url needs the platform's FAAS_ADMIN_TOKEN in the environment, to read /stats")
	}
	hc := client.WithHTTPClient(&http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *clients},
	})
	b := &benchClient{user: client.New(*url, hc), admin: client.New(*url, hc, client.WithUser("", admin))}
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	// A short warm-up so the first figures do not pay for cold caches.
	if _, err := b.syncLatency(ctx, 50); err != nil {
		return err
	}
	log.Info("async throughput", "jobs", *jobs, "clients", *clients)
	rate, err := b.asyncThroughput(ctx, *jobs, *clients)
	if err != nil {
		return err
	}
	log.Info("sync latency", "requests", *syncN)
	lat, err := b.syncLatency(ctx, *syncN)
	if err != nil {
		return err
	}
	fresh, reused, err := directGoja(2000)
	if err != nil {
		return err
	}
	pooled, err := pooledGoja(ctx, 2000, log)
	if err != nil {
		return err
	}
	fmt.Printf("\n%-46s %14s %s\n", "measure", "value", "target")
	fmt.Printf("%-46s %14.0f %s\n", fmt.Sprintf("async throughput, %d jobs (jobs/s)", *jobs), rate, ">= 2000")
	fmt.Printf("%-46s %14s %s\n", "sync ?wait latency p50", lat[50].Round(time.Microsecond), "<= 2ms")
	fmt.Printf("%-46s %14s\n", "sync ?wait latency p99", lat[99].Round(time.Microsecond))
	fmt.Printf("%-46s %14s\n", "direct goja, fresh sandbox runtime per call", fresh.Round(100*time.Nanosecond))
	fmt.Printf("%-46s %14s\n", "same through a warm sandbox process", pooled.Round(100*time.Nanosecond))
	fmt.Printf("%-46s %14s %s\n", "sandbox process overhead per job", (pooled - fresh).Round(100*time.Nanosecond), "<= 100us")
	fmt.Printf("%-46s %14s\n", "direct goja, one runtime, call only", reused.Round(10*time.Nanosecond))
	return nil
}

// startPlatform starts the platform in this process, with admin as the
// operator's token, on free loopback ports and a scratch data directory,
// and returns its URL and how to stop it. The workers are child processes,
// as under `faas up`.
func startPlatform(ctx context.Context, admin string) (stop func(), url string, err error) {
	cfg, err := platform.LoadConfig()
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "faas-bench-")
	if err != nil {
		return nil, "", err
	}
	cfg.Up = platform.UpConfig{} // free ports
	cfg.DB.DBURL, cfg.DB.DataDir = "", dir
	cfg.Frontend.Listen, cfg.Frontend.AdminToken = "127.0.0.1:0", admin
	// One user submits everything from one address: lift the per-user and
	// per-address limits.
	cfg.Frontend.RateLimit, cfg.Frontend.RateLimitPerAddr, cfg.Frontend.MaxJobBytesPerUser = 0, 0, 0
	cfg.JQ.MaxPendingPerUser, cfg.JQ.MaxRunningPerUser = 1000000, 0
	// The platform's own logs would drown the figures: warnings only.
	cfg.WorkerEnv = []string{"FAAS_LOG_LEVEL=warn"}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := platform.New(ctx, cfg, quiet)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
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
		os.RemoveAll(dir)
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

// asyncThroughput submits n jobs from clients goroutines and waits until
// the queue has completed them all; the rate is from the first submission
// to the last completion.
func (b *benchClient) asyncThroughput(ctx context.Context, n, clients int) (float64, error) {
	before, err := b.completed(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := b.run(ctx, fmt.Sprintf("[%d,1]", i), 0); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
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

func (b *benchClient) completed(ctx context.Context) (int64, error) {
	st, err := retried(ctx, func() (frontend.Stats, error) { return b.admin.Stats(ctx) })
	return st.Completed, err
}

// syncLatency runs n sequential ?wait requests and returns the latency
// percentiles, indexed by percent.
func (b *benchClient) syncLatency(ctx context.Context, n int) (map[int]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		out, err := b.run(ctx, fmt.Sprintf("[%d,2]", i), 10*time.Second)
		if err != nil {
			return nil, err
		}
		if !out.Done || string(out.Result) != strconv.Itoa(i+2) {
			return nil, fmt.Errorf("sync run %d: finished %v, result %s", i, out.Done, out.Result)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	p := func(q int) time.Duration { return lat[min(len(lat)-1, len(lat)*q/100)] }
	return map[int]time.Duration{50: p(50), 99: p(99)}, nil
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
	t := time.Now()
	for range n {
		if r := p.Run(ctx, job); r.Err != nil {
			return 0, r.Err
		}
	}
	return time.Since(t) / time.Duration(n), nil
}

// directGoja times the bench function run the way a worker runs it (a
// fresh runtime per call) and called on one long-lived runtime.
func directGoja(n int) (fresh, reused time.Duration, err error) {
	prog, err := sandbox.Compile(benchSource, "add")
	if err != nil {
		return 0, 0, err
	}
	args := json.RawMessage("[4,5]")
	t := time.Now()
	for range n {
		if r := sandbox.Run(context.Background(), prog, args, sandbox.Limits{Timeout: time.Second}); r.Err != nil {
			return 0, 0, r.Err
		}
	}
	fresh = time.Since(t) / time.Duration(n)

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
	t = time.Now()
	for range n * 10 {
		if _, err := add(goja.Undefined(), a, b); err != nil {
			return 0, 0, err
		}
	}
	return fresh, time.Since(t) / time.Duration(n*10), nil
}
