package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

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
		p, err := startPlatform(ctx, log, admin)
		if err != nil {
			return err
		}
		defer p.stop()
		*url = p.url
	} else if admin == "" {
		return errors.New("bench -url needs the platform's FAAS_ADMIN_TOKEN in the environment, to read /stats")
	}
	b := &benchClient{base: *url, admin: admin, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *clients},
	}}
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

type benchClient struct {
	base    string
	http    *http.Client
	token   string
	admin   string
	runPath string
}

// call sends one request and decodes the {"error","res"} body into res.
// A 429 from a platform with its limits on is waited out and sent again.
func (b *benchClient) call(ctx context.Context, method, path, body string, res any) (int, error) {
	for {
		code, retry, err := b.try(ctx, method, path, body, res)
		if code != http.StatusTooManyRequests {
			return code, err
		}
		select {
		case <-ctx.Done():
			return code, ctx.Err()
		case <-time.After(retry):
		}
	}
}

func (b *benchClient) try(ctx context.Context, method, path, body string, res any) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, bytes.NewBufferString(body))
	if err != nil {
		return 0, 0, err
	}
	token := b.token
	if path == "/stats" {
		token = b.admin
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retry := 100 * time.Millisecond
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retry = time.Duration(s) * time.Second
		}
		return resp.StatusCode, retry, nil
	}
	var env struct {
		Error bool            `json:"error"`
		Res   json.RawMessage `json:"res"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return resp.StatusCode, 0, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if env.Error {
		return resp.StatusCode, 0, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, env.Res)
	}
	if res != nil {
		return resp.StatusCode, 0, json.Unmarshal(env.Res, res)
	}
	return resp.StatusCode, 0, nil
}

func (b *benchClient) setup(ctx context.Context) error {
	user := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	var reg struct {
		Token string `json:"token"`
	}
	if _, err := b.call(ctx, http.MethodPost, "/u/"+user, "", &reg); err != nil {
		return err
	}
	b.token = reg.Token
	b.runPath = "/u/" + user + "/fn/add/run"
	_, err := b.call(ctx, http.MethodPost, "/u/"+user+"/fn/add", benchSource, nil)
	return err
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
				if _, err := b.call(ctx, http.MethodPost, b.runPath, fmt.Sprintf("[%d,1]", i), nil); err != nil {
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
	var st struct {
		Completed int64 `json:"completed"`
	}
	_, err := b.call(ctx, http.MethodGet, "/stats", "", &st)
	return st.Completed, err
}

// syncLatency runs n sequential ?wait requests and returns the latency
// percentiles, indexed by percent.
func (b *benchClient) syncLatency(ctx context.Context, n int) (map[int]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		var sum int
		t := time.Now()
		code, err := b.call(ctx, http.MethodPost, b.runPath+"?wait=10s", fmt.Sprintf("[%d,2]", i), &sum)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK || sum != i+2 {
			return nil, fmt.Errorf("sync run %d: status %d, result %d", i, code, sum)
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
