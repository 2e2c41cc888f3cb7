package scaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"faas/worker/proc"
)

// LocalConfig says how the local backend starts a worker.
type LocalConfig struct {
	// Path is the program to run; the scaler's own binary if empty.
	Path string
	// Args are its arguments; ["worker"] if nil.
	Args []string
	// Env is added to the scaler's own environment (which the workers
	// inherit, minus the Kumori credentials), later entries winning.
	Env []string
	// Grace is how long a worker asked to stop (SIGTERM) may take before
	// it is killed; 10s if zero.
	Grace time.Duration
	// Stdout and Stderr receive the workers' output; the scaler's own if
	// nil, so the workers' logs land where the scaler's do.
	Stdout, Stderr io.Writer
	// ServeMetrics gives each worker a loopback port for its /metrics,
	// which Gatherer reads: `faas up` serves the workers' series with the
	// rest.
	ServeMetrics bool
}

// Local is the backend that runs workers as child processes of the scaler.
// It stops the newest workers first (the oldest have the warmest caches),
// reaps every child, and stops them all when closed. Children get SIGTERM
// from the kernel if the scaler dies without closing (Linux).
type Local struct {
	cfg LocalConfig
	log *slog.Logger

	// starter forks the workers, so that they die with the scaler.
	starter *proc.Starter
	// stops counts workers being stopped, so Close can wait for them.
	stops sync.WaitGroup

	mu      sync.Mutex
	running []*process // oldest first
	seq     int
	closed  bool
}

var _ Backend = (*Local)(nil)

// process is one worker.
type process struct {
	cmd  *exec.Cmd
	name string
	// metricsAddr is where the worker serves /metrics; empty for none.
	metricsAddr string
	// done is closed once the process has been reaped; err is Wait's
	// result, set before.
	done chan struct{}
	err  error
	// stopping is set when the scaler asked it to stop, so its exit is
	// no surprise.
	stopping atomic.Bool
}

// NewLocal returns a local backend with no workers yet.
func NewLocal(cfg LocalConfig, log *slog.Logger) (*Local, error) {
	if cfg.Path == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary to run workers: %w", err)
		}
		cfg.Path = self
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("worker binary: %w", err)
	}
	if cfg.Args == nil {
		cfg.Args = []string{"worker"}
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Local{
		cfg:     cfg,
		log:     log.With("backend", BackendLocal),
		starter: proc.NewStarter(),
	}
	return l, nil
}

// Workers counts the live workers not being stopped.
func (l *Local) Workers(context.Context) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	return len(l.running), nil
}

// Scale starts or stops workers until n run. Stopping does not wait: the
// stopped workers finish their jobs in their grace period meanwhile.
func (l *Local) Scale(_ context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("scale to %d workers: negative count", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("local backend closed")
	}
	l.prune()
	for len(l.running) < n {
		p, err := l.start()
		if err != nil {
			return err
		}
		l.running = append(l.running, p)
	}
	for len(l.running) > n {
		last := len(l.running) - 1
		l.stop(l.running[last])
		l.running = l.running[:last]
	}
	return nil
}

// Close stops every worker and waits until all are reaped, which takes
// at most the grace period and then the time to kill.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, p := range l.running {
		l.stop(p)
	}
	l.running = nil
	l.mu.Unlock()
	l.stops.Wait()
	l.starter.Close()
	return nil
}

// prune forgets workers that exited on their own; the next Scale replaces
// them. l.mu is held.
func (l *Local) prune() {
	live := l.running[:0]
	for _, p := range l.running {
		select {
		case <-p.done:
		default:
			live = append(live, p)
		}
	}
	clear(l.running[len(live):])
	l.running = live
}

// start starts one worker and a goroutine that reaps it. l.mu is held.
func (l *Local) start() (*process, error) {
	l.seq++
	name := fmt.Sprintf("worker-%d", l.seq)
	cmd := exec.Command(l.cfg.Path, l.cfg.Args...)
	cmd.Env = append(workerEnv(os.Environ()), l.cfg.Env...)
	var metricsAddr string
	if l.cfg.ServeMetrics {
		var err error
		if metricsAddr, err = freeMetricsAddr(); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "FAAS_METRICS_LISTEN="+metricsAddr)
	}
	cmd.Stdout, cmd.Stderr = l.cfg.Stdout, l.cfg.Stderr
	cmd.SysProcAttr = workerSysProcAttr()
	// Bounds Wait when Stdout is not a file and a grandchild keeps the
	// pipe open after the worker is gone.
	cmd.WaitDelay = time.Second
	if err := l.starter.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{cmd: cmd, name: name, metricsAddr: metricsAddr, done: make(chan struct{})}
	log := l.log.With("worker", name, "pid", cmd.Process.Pid)
	log.Info("worker started")
	go func() {
		p.err = cmd.Wait()
		// Log before done, so that nothing logs after Close returns.
		if p.stopping.Load() {
			log.Info("worker stopped", "exit", exitStatus(p.err))
		} else {
			log.Warn("worker exited unexpectedly", "exit", exitStatus(p.err))
		}
		close(p.done)
	}()
	return p, nil
}

// stop asks p to stop and kills it if it has not after the grace period.
// l.mu is held.
func (l *Local) stop(p *process) {
	p.stopping.Store(true)
	l.stops.Add(1)
	go func() {
		defer l.stops.Done()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			l.log.Warn("signal worker", "worker", p.name, "err", err)
		}
		grace := time.NewTimer(l.cfg.Grace)
		defer grace.Stop()
		select {
		case <-p.done:
			return
		case <-grace.C:
		}
		l.log.Warn("worker did not stop in time, killing it", "worker", p.name, "grace", l.cfg.Grace)
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			l.log.Warn("kill worker", "worker", p.name, "err", err)
		}
		<-p.done
	}()
}

// workerEnv is the environment a worker inherits: the scaler's, without
// the Kumori credentials, which a worker has no use for.
func workerEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KUMORI_") {
			out = append(out, kv)
		}
	}
	return out
}

// exitStatus describes how a process ended, for the log.
func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}
