package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"faas/frontend/client"
	"faas/internal/platform"
)

// benchSource is the trivial function every benchmark runs.
const benchSource = "function add(a, b) { return a + b }"

// benchOptions are the sizes of the bench's phases, its flags.
type benchOptions struct {
	url          string
	jobs         int
	clients      int
	poll         time.Duration
	sync         int
	idle         time.Duration
	preload      bool
	preloadJobs  int
	preloadUsers int
	backlog      int
	goja         int
	peers        string
	cpuProfile   string
}

// quickSizes are the phases' sizes of `faas bench -quick`, a smoke run of
// about a minute; flags given explicitly still win.
var quickSizes = map[string]string{
	"jobs": "500", "sync": "200", "idle": "2s", "preload-jobs": "20000", "preload-users": "200",
	"backlog": "5000", "goja": "500",
}

func parseBench(args []string) (benchOptions, error) {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "frontend URL of a running platform (default: start one)")
	fs.IntVar(&o.jobs, "jobs", 5000, "jobs of the async and of the polling workload, and JOBS of the peers")
	fs.IntVar(&o.clients, "clients", 32, "concurrent HTTP clients submitting jobs")
	fs.DurationVar(&o.poll, "poll", 2*time.Millisecond, "how often a polling client reads GET /j/:id")
	fs.IntVar(&o.sync, "sync", 1000, "sequential ?wait requests for the latency figures")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "idle time before the first ?wait job is timed")
	fs.BoolVar(&o.preload, "preload", false, "measure again with a store preloaded with finished jobs")
	fs.IntVar(&o.preloadJobs, "preload-jobs", 1000000, "finished jobs -preload writes")
	fs.IntVar(&o.preloadUsers, "preload-users", 10000, "users -preload spreads them across")
	fs.IntVar(&o.backlog, "backlog", 100000, "queued jobs whose cost in the JQ manager's memory is measured; 0 skips it")
	fs.IntVar(&o.goja, "goja", 2000, "runs of the function for the sandbox overhead")
	fs.StringVar(&o.peers, "peers", "", "directory of the peers (river/, bullmq/) to run side by side; empty skips them")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (frontend, JQ and DB managers) over the workloads to this file")
	quick := fs.Bool("quick", false, "small sizes for a smoke run of about a minute")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickSizes {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return o, err
				}
			}
		}
	}
	for name, n := range map[string]int{"jobs": o.jobs, "clients": o.clients, "sync": o.sync, "goja": o.goja,
		"preload-jobs": o.preloadJobs, "preload-users": o.preloadUsers} {
		if n < 1 {
			return o, fmt.Errorf("bench -%s %d: must be at least 1", name, n)
		}
	}
	switch {
	case o.backlog < 0:
		return o, fmt.Errorf("bench -backlog %d: must be 0 (skip) or more", o.backlog)
	case o.poll <= 0:
		return o, fmt.Errorf("bench -poll %s: must be positive", o.poll)
	case o.idle < 0:
		return o, fmt.Errorf("bench -idle %s: must not be negative", o.idle)
	case o.preload && o.url != "":
		return o, errors.New("bench -preload fills the store of a platform it starts itself; it cannot with -url")
	}
	if o.peers != "" {
		for _, p := range peers {
			if _, err := os.Stat(filepath.Join(o.peers, p.dir, "run.sh")); err != nil {
				return o, fmt.Errorf("bench -peers %s: want the peers' folder, with %s/run.sh: %w", o.peers, p.dir, err)
			}
		}
	}
	return o, nil
}

// bench measures the platform against the targets of issue 11 and prints
// one table, each figure beside its target; progress goes to the log.
// It starts the platform itself (the wiring of `faas up`, in this
// process, workers as child processes), or measures the one at -url.
func bench(ctx context.Context, log *slog.Logger, args []string) error {
	o, err := parseBench(args)
	if err != nil {
		return err
	}
	var r benchResults
	if r.empty, err = measurePlatform(ctx, log, o, "", &r); err != nil {
		return fmt.Errorf("empty store: %w", err)
	}
	if o.preload {
		dir, err := os.MkdirTemp("", "faas-bench-preload-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := preload(ctx, log, dir, o.preloadJobs, o.preloadUsers); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		f, err := measurePlatform(ctx, log, o, dir, nil)
		if err != nil {
			return fmt.Errorf("preloaded store: %w", err)
		}
		r.preloaded = &f
	}
	if o.backlog > 0 {
		log.Info("bench: JQ manager memory", "backlog", o.backlog)
		if r.jqIdle, r.jqBacklog, err = backlogMemory(ctx, log, o.backlog, o.clients); err != nil {
			return fmt.Errorf("backlog memory: %w", err)
		}
	}
	log.Info("bench: sandbox overhead", "runs", o.goja)
	if r.fresh, r.reused, err = directGoja(o.goja); err != nil {
		return err
	}
	if r.pooled, err = pooledGoja(ctx, o.goja, log); err != nil {
		return err
	}
	if o.peers != "" {
		r.peers = runPeers(ctx, log, o.peers, o.jobs)
	} else {
		log.Info("bench: peers skipped: no -peers directory")
	}
	r.print(os.Stdout, o)
	return nil
}

// measurePlatform runs the workloads against a platform: the one at
// o.url, or one it starts on the data directory dir (a fresh one if
// empty). With mem set, it also reads the platform's memory, idle and
// under load, and times the first job after o.idle of rest.
func measurePlatform(ctx context.Context, log *slog.Logger, o benchOptions, dir string, mem *benchResults) (figures, error) {
	// Only the operator reads /stats, which the throughput figure needs.
	admin, url := os.Getenv("FAAS_ADMIN_TOKEN"), o.url
	if url == "" {
		if admin == "" {
			admin = rand.Text()
		}
		if dir == "" {
			scratch, err := os.MkdirTemp("", "faas-bench-")
			if err != nil {
				return figures{}, err
			}
			defer os.RemoveAll(scratch)
			dir = scratch
		}
		stop, u, err := startPlatform(ctx, admin, dir)
		if err != nil {
			return figures{}, err
		}
		defer stop()
		url = u
	} else if admin == "" {
		return figures{}, errors.New("bench -url needs the platform's FAAS_ADMIN_TOKEN in the environment, to read /stats")
	}
	hc := client.WithHTTPClient(&http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.clients},
	})
	b := &benchClient{user: client.New(url, hc), admin: client.New(url, hc, client.WithUser("", admin))}
	if err := b.setup(ctx); err != nil {
		return figures{}, fmt.Errorf("set up: %w", err)
	}
	// A short warm-up so the first figures do not pay for cold caches.
	if _, err := b.syncLatency(ctx, 50); err != nil {
		return figures{}, err
	}
	// The platform's memory is this process's with its children when the
	// bench started it; a platform at -url is another machine's.
	var sampler *rssSampler
	if mem != nil && o.url == "" {
		var err error
		mem.rssMeasured = true
		if mem.rssIdle, err = treeMemOf(os.Getpid(), true); err != nil {
			return figures{}, err
		}
		sampler = sampleRSS(os.Getpid(), 50*time.Millisecond)
	}
	var f figures
	var err error
	if o.cpuProfile != "" {
		// This process runs the frontend and the managers when the bench
		// started the platform; the workers are child processes, not in it.
		stop, err := platform.ProfileCPU(o.cpuProfile, log)
		if err != nil {
			return f, fmt.Errorf("bench -cpuprofile: %w", err)
		}
		defer stop()
	}
	log.Info("bench: async throughput", "jobs", o.jobs, "clients", o.clients)
	if f.async, err = b.asyncThroughput(ctx, o.jobs, o.clients); err != nil {
		return f, err
	}
	log.Info("bench: polling workload", "jobs", o.jobs, "clients", o.clients, "poll", o.poll)
	var pollLat map[int]time.Duration
	if f.poll, pollLat, err = b.pollingThroughput(ctx, o.jobs, o.clients, o.poll); err != nil {
		return f, err
	}
	f.pollP50, f.pollP99 = pollLat[50], pollLat[99]
	if sampler != nil {
		mem.rssLoad = sampler.stop()
	}
	log.Info("bench: sync latency", "requests", o.sync)
	lat, err := b.syncLatency(ctx, o.sync)
	if err != nil {
		return f, err
	}
	f.p50, f.p99 = lat[50], lat[99]
	if mem != nil {
		log.Info("bench: idle before one ?wait job", "idle", o.idle)
		if mem.afterIdle, err = b.afterIdle(ctx, o.idle); err != nil {
			return f, err
		}
	}
	return f, nil
}

// benchResults is every figure of a bench run.
type benchResults struct {
	empty     figures
	preloaded *figures // nil without -preload
	afterIdle time.Duration
	// rssIdle and rssLoad are the platform's memory (this process and its
	// children) when the bench started it: rssMeasured.
	rssMeasured      bool
	rssIdle, rssLoad treeMemory
	// jqIdle and jqBacklog are the JQ manager's resident memory without
	// jobs and with the backlog queued; zero when skipped.
	jqIdle, jqBacklog     int64
	fresh, reused, pooled time.Duration
	peers                 []peerResult
}

// figures are the workloads' results on one platform.
type figures struct {
	async, poll float64 // jobs/s
	p50, p99    time.Duration
	// pollP50 and pollP99 are the polling workload's, submission to the
	// read that saw the job finished.
	pollP50, pollP99 time.Duration
}

// Targets of issue 11.
const (
	targetAsync   = 3000.0
	targetPoll    = 2000.0
	targetP50     = time.Millisecond
	targetP99     = 4 * time.Millisecond
	targetBacklog = 200 << 20
	targetSandbox = 100 * time.Microsecond
	flatTolerance = 0.2
	bullmqFactor  = 2.0
)

// row is one line of the bench's table.
type row struct{ measure, value, target, verdict string }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func rate(v float64) string { return fmt.Sprintf("%.0f jobs/s", v) }

func dur(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(100 * time.Nanosecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// rows is the table: every target of the issue, then what explains them.
func (r *benchResults) rows(o benchOptions) []row {
	bull, haveBull := r.peer("bullmq")
	e := r.empty
	rows := []row{
		{fmt.Sprintf("async throughput, %d jobs", o.jobs), rate(e.async), fmt.Sprintf(">= %.0f jobs/s", targetAsync), verdict(e.async >= targetAsync)},
	}
	if haveBull {
		rows = append(rows, row{"async throughput / BullMQ's", fmt.Sprintf("%.2fx", e.async/bull.Throughput),
			fmt.Sprintf(">= %.0fx (BullMQ: %s)", bullmqFactor, rate(bull.Throughput)), verdict(e.async >= bullmqFactor*bull.Throughput)})
	} else {
		rows = append(rows, row{"async throughput / BullMQ's", "not measured", fmt.Sprintf(">= %.0fx", bullmqFactor), "-"})
	}
	rows = append(rows,
		row{fmt.Sprintf("polling workload, %d jobs, GET /j/:id every %s", o.jobs, o.poll), rate(e.poll), fmt.Sprintf(">= %.0f jobs/s", targetPoll), verdict(e.poll >= targetPoll)},
		row{"sync ?wait p50", dur(e.p50), "<= " + dur(targetP50), verdict(e.p50 <= targetP50)},
		row{"sync ?wait p99", dur(e.p99), "<= " + dur(targetP99), verdict(e.p99 <= targetP99)},
	)
	if haveBull {
		p50, p99 := bull.p50(), bull.p99()
		rows = append(rows,
			row{"sync ?wait p50 vs BullMQ's", dur(e.p50), "< " + dur(p50), verdict(e.p50 < p50)},
			row{"sync ?wait p99 vs BullMQ's", dur(e.p99), "< " + dur(p99), verdict(e.p99 < p99)})
	} else {
		rows = append(rows, row{"sync ?wait p50, p99 vs BullMQ's", "not measured", "below BullMQ's", "-"})
	}
	if r.afterIdle > 0 {
		rows = append(rows, row{fmt.Sprintf("first ?wait job after %s idle", o.idle), dur(r.afterIdle), "<= " + dur(targetP99), verdict(r.afterIdle <= targetP99)})
	} else {
		rows = append(rows, row{"first ?wait job after idle", "not measured", "<= " + dur(targetP99), "-"})
	}
	if p := r.preloaded; p != nil {
		pre := fmt.Sprintf("preloaded (%d jobs, %d users): ", o.preloadJobs, o.preloadUsers)
		rows = append(rows,
			row{pre + "async throughput", rate(p.async), fmt.Sprintf(">= %s (empty %s - 20%%)", rate(e.async*(1-flatTolerance)), rate(e.async)), verdict(p.async >= e.async*(1-flatTolerance))},
			row{pre + "polling workload", rate(p.poll), fmt.Sprintf(">= %s (empty %s - 20%%)", rate(e.poll*(1-flatTolerance)), rate(e.poll)), verdict(p.poll >= e.poll*(1-flatTolerance))},
			row{pre + "sync ?wait p50", dur(p.p50), fmt.Sprintf("<= %s (empty %s + 20%%)", dur(grown(e.p50)), dur(e.p50)), verdict(p.p50 <= grown(e.p50))},
			row{pre + "sync ?wait p99", dur(p.p99), fmt.Sprintf("<= %s (empty %s + 20%%)", dur(grown(e.p99)), dur(e.p99)), verdict(p.p99 <= grown(e.p99))})
	} else {
		rows = append(rows, row{"preloaded store (-preload)", "not measured", "within 20% of the empty store", "-"})
	}
	if r.jqBacklog > 0 {
		rows = append(rows,
			row{fmt.Sprintf("JQ manager RSS with %d jobs queued", o.backlog), mb(r.jqBacklog), "< " + mb(targetBacklog), verdict(r.jqBacklog < targetBacklog)},
			row{"JQ manager RSS with no job", mb(r.jqIdle), "", "-"})
	} else {
		rows = append(rows, row{"JQ manager RSS with a backlog", "not measured", "< " + mb(targetBacklog), "-"})
	}
	if r.rssMeasured {
		rows = append(rows,
			row{"faas up RSS with its workers, idle", mb(r.rssIdle.rss), "reported", "-"},
			row{"faas up RSS with its workers, under load (peak)", mb(r.rssLoad.rss), "reported", "-"},
			row{"the same as proportional shares (PSS), idle", mb(r.rssIdle.pss), "reported", "-"},
			row{"the same as proportional shares (PSS), under load (peak)", mb(r.rssLoad.pss), "reported", "-"})
	} else {
		rows = append(rows, row{"faas up RSS", "not measured (-url)", "reported", "-"})
	}
	overhead := r.pooled - r.fresh
	return append(rows,
		row{"sandbox process overhead per job", dur(overhead), "<= " + dur(targetSandbox), verdict(overhead <= targetSandbox)},
		row{"goja, fresh runtime per call, in-process", dur(r.fresh), "", "-"},
		row{"the same through a warm sandbox process", dur(r.pooled), "", "-"},
		row{"goja, one runtime, call only", dur(r.reused), "", "-"},
	)
}

// grown is a latency 20% worse than d, the most the preloaded store may
// cost.
func grown(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + flatTolerance))
}

// print writes the side-by-side table when the peers ran, then the
// table of targets, as Markdown so they paste into a note as they are.
func (r *benchResults) print(w io.Writer, o benchOptions) {
	if len(r.peers) > 0 {
		fmt.Fprintf(w, "\n| system | async jobs/s | sync p50 | sync p99 |\n|---|---|---|---|\n")
		fmt.Fprintf(w, "| this platform, `faas bench` | %.0f | %s | %s |\n", r.empty.async, dur(r.empty.p50), dur(r.empty.p99))
		fmt.Fprintf(w, "| this platform, %d jobs through REST, each submitter polling `GET /j/:id` every %s | %.0f | %s | %s |\n",
			o.jobs, o.poll, r.empty.poll, dur(r.empty.pollP50), dur(r.empty.pollP99))
		for _, p := range r.peers {
			if p.Err != nil {
				fmt.Fprintf(w, "| %s | FAILED: %v | | |\n", p.System, p.Err)
				continue
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s |\n", p.System, p.Throughput, dur(p.p50()), dur(p.p99()))
		}
	}
	fmt.Fprintf(w, "\n| measure | value | target | PASS/MISS |\n|---|---|---|---|\n")
	for _, x := range r.rows(o) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", x.measure, x.value, x.target, x.verdict)
	}
}
