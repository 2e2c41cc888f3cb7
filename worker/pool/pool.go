// Package pool runs jobs in sandbox child processes, kept warm so that a
// job never waits for a process to start.
//
// Each sandbox is this program re-executed in its hidden sandbox role
// (ServeProcess), talking over its stdin and stdout; it compiles and
// caches programs and runs each job in a fresh runtime with the sandbox
// package, one job at a time. The process boundary is what makes the
// limits hard: a job past its time limit plus a grace is killed with its
// process, whatever native code it is stuck in; a job past its memory cap
// is stopped by a watchdog or, failing that, by the kernel, and an
// out-of-memory crash takes only its own sandbox down. Either way the pool
// starts a replacement at once.
package pool

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"faas/internal/backoff"
	"faas/proxies/faas"
	"faas/worker/proc"
	"faas/worker/sandbox"
)

// The pool's defaults and bounds.
const (
	// DefaultMemoryMB is the memory cap of a job whose function sets none.
	DefaultMemoryMB = 256
	// MinMemoryMB and MaxMemoryMB bound a memory cap; a cap outside is
	// raised or lowered to the nearest bound.
	MinMemoryMB = 16
	MaxMemoryMB = 16 << 10
	// DefaultGrace is how long past its time limit a job may go before
	// its sandbox is killed. The sandbox's own interrupt ends ordinary
	// code at the limit; only native code that cannot be interrupted (a
	// backtracking regular expression) runs into the grace.
	DefaultGrace = 250 * time.Millisecond
	// compileGrace bounds the compiling of a source sent to a sandbox,
	// before the job's own clock starts: a 256 KiB source takes about
	// 25 ms.
	compileGrace = 5 * time.Second
	// startTimeout bounds a sandbox's start, to its first frame.
	startTimeout = 10 * time.Second
	// dyingTimeout is how long a sandbox that broke off a job gets to
	// finish writing why and exit.
	dyingTimeout = 2 * time.Second
)

// spawnRetry spaces out the tries to replace a sandbox that will not
// start: from 100ms to 5s at the least.
var spawnRetry = backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second}

// Config is a Pool's settings. Zero fields take their defaults.
type Config struct {
	// Size is the number of sandboxes; 0 means one.
	Size int
	// Command starts one sandbox; nil means this program with the
	// argument "sandbox". Tests point it at their own binary.
	Command []string
	// Env is the sandboxes' whole environment, empty by default: nothing
	// of this process's environment reaches them. Tests mark their own
	// binary as a sandbox with it.
	Env []string
	// MemoryMB is the memory cap of jobs that do not set their own.
	MemoryMB int
	// Grace is how long past its time limit a job may run before its
	// sandbox is killed.
	Grace time.Duration
	// Fence configures the operating system's fences around each
	// sandbox; see fence.go.
	Fence Fence
	// Metrics counts the sandboxes; nil keeps the counts unexported.
	Metrics *Metrics

	// refuse, set by tests, makes the fork fail as a host would.
	refuse func(*exec.Cmd) error
}

func (c Config) withDefaults() (Config, error) {
	if c.Size <= 0 {
		c.Size = 1
	}
	if len(c.Command) == 0 {
		self, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("sandbox command: %w", err)
		}
		c.Command = []string{self, "sandbox"}
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	var err error
	c.Fence, err = c.Fence.withDefaults()
	return c, err
}

// Job is one run of a function version.
type Job struct {
	Key Key
	// Source is the function's source, sent to a sandbox that has not
	// compiled Key yet.
	Source string
	// Env is what the function reads as faas.env: its env values and
	// decrypted secrets. It travels with Source and is kept with the
	// compiled program, both belonging to the version Key names.
	Env map[string]string
	// Args is a JSON array of arguments.
	Args   json.RawMessage
	Limits sandbox.Limits
	// MemoryMB caps the job's memory; 0 means the pool's default.
	MemoryMB int
	// OnLines, if not nil, is handed the console lines while the job
	// runs, in batches (sandbox.RunStreaming), on the goroutine calling
	// Run; Result.Logs has them all in the end.
	OnLines func([]faas.LogLine)
	// Host, if not nil, serves the job's faas.call and faas.submit, on
	// the goroutine calling Run; without it they reject.
	Host Host
	// Ready is when the job was ready to run: its wait for a sandbox
	// (faas_sandbox_wait_seconds) counts from then, so that it includes
	// what the caller waited for first, the worker's memory budget. Zero
	// is when Run is called.
	Ready time.Time

	// probe makes the job a test's look at the sandbox's fences.
	probe bool
}

// Pool is a set of warm sandboxes. Create it with Start; Run may be called
// from many goroutines; Close stops the sandboxes.
type Pool struct {
	cfg  Config
	log  *slog.Logger
	idle *idleSandboxes

	// ctx ends at Close: it stops replacements under way.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	live      map[*child]struct{}
	closed    bool
	replacing sync.WaitGroup

	warnOnce atomic.Bool
	// netNS says sandboxes start in network namespaces of their own; it
	// turns false, for good, the first time the host refuses one.
	netNS atomic.Bool
	// unfencedSeen holds the fences a sandbox reported down, each
	// logged once.
	unfencedSeen sync.Map

	// starter forks the sandboxes, so that they die with the worker.
	starter *proc.Starter
}

// Start starts cfg.Size sandboxes and waits until each is ready, so that a
// command that cannot start fails here. Ending ctx abandons the start.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := guardWorker(); err != nil {
		return nil, fmt.Errorf("start sandboxes: make the worker not dumpable: %w", err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:     cfg,
		log:     log,
		idle:    newIdleSandboxes(cfg.Size),
		ctx:     pctx,
		cancel:  cancel,
		live:    make(map[*child]struct{}),
		starter: proc.NewStarter(),
	}
	p.netNS.Store(!cfg.Fence.NoNetNS)
	abandon := context.AfterFunc(ctx, cancel)
	defer abandon()
	errs := make(chan error, cfg.Size)
	for range cfg.Size {
		go func() {
			c, err := p.spawn()
			if err == nil {
				p.idle.put(c)
			}
			errs <- err
		}()
	}
	var first error
	for range cfg.Size {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil || ctx.Err() != nil {
		p.Close()
		if ctx.Err() != nil {
			first = fmt.Errorf("start sandboxes: %w", context.Cause(ctx))
		}
		return nil, first
	}
	return p, nil
}

// Run runs j in a sandbox and returns its result. It waits for an idle
// sandbox, then for the job, at most the job's time limit plus the grace;
// past that, or when ctx ends, the sandbox is killed and replaced. A
// sandbox that dies under the job is replaced too, and the job fails with
// MemoryLimit if it ran out of memory, Internal otherwise (the message then
// carries what the sandbox wrote on stderr, for the log).
func (p *Pool) Run(ctx context.Context, j Job) sandbox.Result {
	if j.MemoryMB <= 0 {
		j.MemoryMB = p.cfg.MemoryMB
	}
	j.MemoryMB = min(max(j.MemoryMB, MinMemoryMB), MaxMemoryMB)
	// The job's wait is observed once: a sandbox that died idle sends
	// the job on to another, which is the pool's wait, not the job's.
	start := j.Ready
	if start.IsZero() {
		start = time.Now()
	}
	waited := func() {
		if !start.IsZero() {
			p.cfg.Metrics.wait.Observe(time.Since(start).Seconds())
			start = time.Time{}
		}
	}
	for {
		var c *child
		select {
		case <-p.idle.ready:
			c = p.idle.pop()
		case <-ctx.Done():
			waited()
			return sandbox.Result{Err: cancelled(ctx)}
		case <-p.ctx.Done():
			return sandbox.Result{Err: faas.Errorf(faas.Unavailable, "sandbox pool closed")}
		}
		waited()
		res, end := c.run(ctx, j, p.cfg.Grace)
		switch end {
		case served:
			p.idle.put(c)
			return res
		case broken:
			p.cfg.Metrics.replaced.WithLabelValues(replaceReason(res.Err)).Inc()
			p.replace(c)
			return res
		default:
			// It died while idle: no job of its own to fail. Another
			// sandbox, or its replacement, takes the job.
			p.cfg.Metrics.replaced.WithLabelValues("crash").Inc()
			p.replace(c)
		}
	}
}

// idleSandboxes holds the idle sandboxes, last in first out: while jobs
// come one at a time, the same few sandboxes run them, their memory and
// caches warm, instead of each job waking the one idle longest. Three
// pairs of `faas bench -jobs 200 -sync 3000` on 2 CPUs gave a sync p50 of
// 0.83-0.87 ms first in first out, 0.76-0.79 ms last in first out.
type idleSandboxes struct {
	// ready holds a token per sandbox in stack: a run takes one, then
	// pops.
	ready chan struct{}
	mu    sync.Mutex
	stack []*child
}

func newIdleSandboxes(size int) *idleSandboxes {
	return &idleSandboxes{ready: make(chan struct{}, size), stack: make([]*child, 0, size)}
}

// put adds an idle sandbox.
func (s *idleSandboxes) put(c *child) {
	s.mu.Lock()
	s.stack = append(s.stack, c)
	s.mu.Unlock()
	s.ready <- struct{}{}
}

// pop takes the sandbox idle the shortest; the caller holds a token
// from ready.
func (s *idleSandboxes) pop() *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := len(s.stack) - 1
	c := s.stack[last]
	s.stack[last] = nil // a sandbox replaced later is not kept alive here
	s.stack = s.stack[:last]
	return c
}

// Close stops every sandbox and returns once they have exited. Runs under
// way fail; call it when none is.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cancel()
	p.mu.Unlock()
	p.replacing.Wait()

	p.mu.Lock()
	live := make([]*child, 0, len(p.live))
	for c := range p.live {
		live = append(live, c)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range live {
		wg.Go(func() { c.stop() })
	}
	wg.Wait()
	p.starter.Close()
}

// replace retires a sandbox that died or was killed and starts another,
// retrying (with backoff) until it starts or the pool closes.
func (p *Pool) replace(old *child) {
	p.mu.Lock()
	delete(p.live, old)
	p.liveChanged()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.replacing.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.replacing.Done()
		for failures := 1; ; failures++ {
			c, err := p.spawn()
			if err == nil {
				p.idle.put(c)
				return
			}
			if p.ctx.Err() != nil {
				return
			}
			p.log.Error("could not start a sandbox", "err", err, "failures", failures)
			if !spawnRetry.Sleep(p.ctx, failures) {
				return
			}
		}
	}()
}

// liveChanged publishes the number of live sandboxes. Callers hold mu.
func (p *Pool) liveChanged() { p.cfg.Metrics.live.Set(float64(len(p.live))) }

// spawn starts a sandbox, sends it its setup and waits for its hello.
func (p *Pool) spawn() (*child, error) {
	fork := p.starter.Start
	if p.cfg.refuse != nil {
		fork = func(cmd *exec.Cmd) error {
			if err := p.cfg.refuse(cmd); err != nil {
				return err
			}
			return p.starter.Start(cmd)
		}
	}
	netNS := p.netNS.Load()
	c, err := startChild(p.cfg, fork, netNS)
	if netNS && refusedNamespace(err) {
		// The host does not let this process make namespaces (no
		// privilege, user namespaces disabled or used up): run without.
		if p.netNS.CompareAndSwap(true, false) {
			p.log.Warn("sandboxes share the worker's network namespace: the host refused them one of their own", "err", err)
		}
		c, err = startChild(p.cfg, fork, false)
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.kill()
		<-c.exited
		c.closePipes()
		return nil, errors.New("sandbox pool closed")
	}
	p.live[c] = struct{}{}
	p.liveChanged()
	p.mu.Unlock()

	stop := context.AfterFunc(p.ctx, func() { c.out.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	c.in.SetWriteDeadline(time.Now().Add(startTimeout))
	c.out.SetReadDeadline(time.Now().Add(startTimeout))
	set := setup{UID: p.cfg.Fence.UID, GID: p.cfg.Fence.GID, Seccomp: !p.cfg.Fence.NoSeccomp, Chroot: !p.cfg.Fence.NoChroot}
	frame, err := c.enc.frame(set)
	if err == nil {
		_, err = c.in.Write(frame)
	}
	var hi hello
	if err == nil {
		_, err = c.dec.next(&hi, 4096)
	}
	if err != nil {
		c.kill()
		<-c.exited
		c.closePipes()
		p.mu.Lock()
		delete(p.live, c)
		p.liveChanged()
		p.mu.Unlock()
		return nil, fmt.Errorf("start sandbox %q: no hello: %w (%s)", strings.Join(p.cfg.Command, " "), err, c.describeExit())
	}
	if hi.NoKernelLimit != "" && p.warnOnce.CompareAndSwap(false, true) {
		p.log.Warn("the kernel cannot cap sandbox memory here; the watchdog alone does, and cannot stop one huge allocation", "reason", hi.NoKernelLimit)
	}
	for _, u := range hi.Unfenced {
		if _, seen := p.unfencedSeen.LoadOrStore(u, true); !seen {
			p.log.Warn("a sandbox fence is down", "fence", u)
		}
	}
	p.cfg.Metrics.started.Inc()
	return c, nil
}

// cancelled is the error of a run its context ended, as the sandbox
// package reports it in-process.
func cancelled(ctx context.Context) *faas.Error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return faas.Errorf(faas.Timeout, "function run stopped at the caller's deadline")
	}
	return faas.Errorf(faas.Unavailable, "function run cancelled")
}

// child is one sandbox process. It belongs to the goroutine that took it
// from the pool's idle channel.
type child struct {
	cmd     *exec.Cmd
	in, out *os.File // its stdin and stdout
	enc     *encoder
	dec     decoder
	stderr  *stderrBuffer
	exited  chan struct{} // closed once the process is reaped
	killed  atomic.Bool   // the pool sent SIGKILL
}

// startChild starts a sandbox process, through fork, in a network
// namespace of its own if netNS.
func startChild(cfg Config, fork func(*exec.Cmd) error, netNS bool) (*child, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	// Buffered, so that a reply's head and body come in one read.
	c := &child{in: inW, out: outR, enc: newEncoder(), dec: decoder{r: bufio.NewReaderSize(outR, 4<<10)}, stderr: &stderrBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(cfg.Command[0], cfg.Command[1:]...)
	// Not nil, which would mean this process's environment.
	c.cmd.Env = append([]string{}, cfg.Env...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		// The kernel kills the sandbox if the worker dies, so that none
		// outlives it, even mid-job.
		Pdeathsig: syscall.SIGKILL,
		// Its own process group: a Ctrl-C meant for the worker must not
		// reach the sandboxes, which stop when the worker says so.
		Setpgid: true,
	}
	if netNS {
		netNSAttr(c.cmd.SysProcAttr)
	}
	err = fork(c.cmd)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start sandbox %q: %w", strings.Join(cfg.Command, " "), err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// The ways an exchange with a sandbox can end, besides a reply.
var (
	errDeadline = errors.New("deadline")
	errStopped  = errors.New("stopped")
)

// runEnd is how a sandbox came out of a job.
type runEnd int

const (
	served      runEnd = iota // it can serve another
	broken                    // it is dead or killed; the result says why
	undelivered               // it was dead before the job reached it
)

// run runs one job and says how the sandbox came out of it.
func (c *child) run(ctx context.Context, j Job, grace time.Duration) (sandbox.Result, runEnd) {
	if j.Limits.Timeout <= 0 {
		j.Limits.Timeout = sandbox.DefaultTimeout
	}
	c.stderr.reset()
	withSource := false
	for {
		rep, value, logs, started, err := c.exchange(ctx, j, withSource, grace)
		switch {
		case err == nil && rep.NeedSource && !withSource:
			withSource = true
			continue
		case err == nil && rep.NeedSource:
			err = errors.New("sandbox asked twice for the source")
		case err == nil:
			res := sandbox.Result{Err: rep.Err, Duration: rep.Duration, Logs: string(logs), Calls: rep.Calls, CallsTruncated: rep.CallsTruncated}
			if rep.Err == nil {
				res.Value = json.RawMessage(append([]byte(nil), value...))
			}
			return res, served
		case errors.Is(err, syscall.EPIPE):
			// No reader: the process had exited before this request.
			c.kill()
			<-c.exited
			c.closePipes()
			return sandbox.Result{}, undelivered
		}
		return c.failed(ctx, err, time.Since(started), j), broken
	}
}

// exchange sends one request and reads its replies while ctx lasts: the
// word that the source compiled, if it was sent, within compileGrace, then
// the result within the job's time limit plus grace. It returns when the
// job's clock started.
func (c *child) exchange(ctx context.Context, j Job, withSource bool, grace time.Duration) (rep reply, value, logs []byte, started time.Time, err error) {
	started = time.Now()
	if ctx.Err() != nil {
		return reply{}, nil, nil, started, errStopped
	}
	req := request{Key: j.Key, Limits: j.Limits, MemoryMB: j.MemoryMB, ArgsLen: len(j.Args), Probe: j.probe, Stream: j.OnLines != nil}
	var src []byte
	if withSource {
		src = []byte(j.Source)
		req.HasSource, req.SourceLen, req.Env = true, len(src), j.Env
	}
	frame, err := c.enc.frame(req, src, j.Args)
	if err != nil {
		return reply{}, nil, nil, started, err
	}
	readBy := started.Add(j.Limits.Timeout + grace)
	if withSource {
		readBy = started.Add(compileGrace)
	}
	c.in.SetWriteDeadline(readBy)
	c.out.SetReadDeadline(readBy)
	// Once ctx ends, the deadlines are in the past and stay there.
	var mu sync.Mutex
	stopped := false
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			mu.Lock()
			defer mu.Unlock()
			stopped = true
			c.in.SetWriteDeadline(time.Unix(1, 0))
			c.out.SetReadDeadline(time.Unix(1, 0))
		})
		defer func() {
			if !stop() {
				<-fired
			}
		}()
	}
	_, err = c.in.Write(frame)
	var parts []byte
	for err == nil {
		rep = reply{}
		parts, err = c.dec.next(&rep, maxReply(j.Limits))
		if err == nil && rep.LinesLen > 0 {
			err = c.lines(j, rep, parts)
			continue
		}
		if err == nil && rep.Host != "" {
			// The answer must come while the job may still run.
			err = c.answerHost(ctx, readBy, j, rep, parts)
			continue
		}
		if err != nil || !rep.Compiled {
			break
		}
		started = time.Now()
		readBy = started.Add(j.Limits.Timeout + grace)
		mu.Lock()
		if !stopped {
			c.in.SetWriteDeadline(readBy)
			c.out.SetReadDeadline(readBy)
		}
		mu.Unlock()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if ctx.Err() != nil {
			return reply{}, nil, nil, started, errStopped
		}
		return reply{}, nil, nil, started, errDeadline
	}
	if err != nil {
		return reply{}, nil, nil, started, err
	}
	p, err := split(parts, rep.ValueLen, rep.LogsLen)
	if err != nil {
		return reply{}, nil, nil, started, err
	}
	return rep, p[0], p[1], started, nil
}

// lines hands the console lines of a news reply to j.OnLines. Lines
// that were not asked for, or do not decode, mean a broken sandbox.
func (c *child) lines(j Job, rep reply, parts []byte) error {
	if j.OnLines == nil || rep.LinesLen != len(parts) {
		return errors.New("sandbox sent console lines out of turn")
	}
	var lines []faas.LogLine
	if err := json.Unmarshal(parts, &lines); err != nil {
		return fmt.Errorf("sandbox sent bad console lines: %w", err)
	}
	j.OnLines(lines)
	return nil
}

// maxReply bounds a reply: the result, the logs and their marker, and a
// header.
func maxReply(lim sandbox.Limits) int {
	res, logs := lim.MaxResult, lim.MaxLogs
	if res <= 0 {
		res = sandbox.DefaultMaxResult
	}
	if logs <= 0 {
		logs = sandbox.DefaultMaxLogs
	}
	return res + logs + 64<<10
}

// failed ends a sandbox whose job did not come back and says what became
// of the job: stopped, out of time, out of memory, or crashed.
func (c *child) failed(ctx context.Context, err error, took time.Duration, j Job) sandbox.Result {
	switch {
	case errors.Is(err, errStopped):
		c.kill()
		<-c.exited
		c.closePipes()
		return sandbox.Result{Err: cancelled(ctx), Duration: took}
	case errors.Is(err, errDeadline):
		c.kill()
		<-c.exited
		c.closePipes()
		// The sandbox's clock started after the request arrived: the
		// job ran no longer than took.
		return sandbox.Result{Err: faas.Errorf(faas.Timeout, "function exceeded its %s time limit", j.Limits.Timeout), Duration: took}
	}
	// The sandbox broke the protocol, or died: give a dying one time to
	// finish writing why.
	select {
	case <-c.exited:
	case <-time.After(dyingTimeout):
		c.kill()
		<-c.exited
	}
	c.closePipes()
	if c.outOfMemory() {
		return sandbox.Result{Err: memoryError(j.MemoryMB), Duration: took}
	}
	return sandbox.Result{Err: faas.Errorf(faas.Internal, "sandbox failed running %s: %v (%s)", j.Key, err, c.describeExit()), Duration: took}
}

// outOfMemory tells, once the sandbox has exited, whether it died of
// memory: its watchdog's exit status, the Go runtime's or the race
// detector's report of a refused allocation, or a SIGKILL the pool did
// not send (the system's out-of-memory killer).
func (c *child) outOfMemory() bool {
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return false
	}
	if ws.Exited() && ws.ExitStatus() == exitMemory {
		return true
	}
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL && !c.killed.Load() {
		return true
	}
	out := c.stderr.String()
	for _, sign := range []string{
		"fatal error: runtime: out of memory",
		"fatal error: runtime: cannot allocate memory",
		"ThreadSanitizer failed to allocate",
		"pthread_create failed: Resource temporarily unavailable",
	} {
		if strings.Contains(out, sign) {
			return true
		}
	}
	return false
}

// describeExit says how the sandbox ended and what it wrote on stderr.
func (c *child) describeExit() string {
	state := "still running"
	select {
	case <-c.exited:
		state = c.cmd.ProcessState.String()
	default:
	}
	if tail := strings.TrimSpace(c.stderr.String()); tail != "" {
		return state + "; stderr: " + tail
	}
	return state
}

func (c *child) kill() {
	c.killed.Store(true)
	c.cmd.Process.Kill()
}

func (c *child) closePipes() {
	c.in.Close()
	c.out.Close()
}

// stop ends an idle sandbox. It is killed rather than asked to exit: it
// holds nothing worth a clean exit, no job and no output, and a kill ends
// it at once whatever state it is in (a binary built with the race
// detector otherwise lingers a second at exit).
func (c *child) stop() {
	c.kill()
	<-c.exited
	c.closePipes()
}

// stderrBuffer keeps what a sandbox writes on stderr during one job: the
// beginning, where the Go runtime names a fatal error, and the end.
type stderrBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int
}

const stderrKeep = 4 << 10

func (b *stderrBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := stderrKeep - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - stderrKeep; over > 0 {
		b.dropped += over
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
	return n, nil
}

func (b *stderrBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.head, b.tail, b.dropped = b.head[:0], b.tail[:0], 0
}

func (b *stderrBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("%s\n[%d bytes left out]\n%s", b.head, b.dropped, b.tail)
	}
	return string(b.head) + string(b.tail)
}
