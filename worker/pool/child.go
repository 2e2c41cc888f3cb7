package pool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"faas/proxies/faas"
	"faas/worker/internal/lru"
	"faas/worker/sandbox"
)

// The limits a sandbox works within, beyond the job's own.
const (
	// maxRequest bounds a request frame: a source of 256 KiB and 1 MiB of
	// arguments fit many times over.
	maxRequest = 16 << 20
	// programCacheSize bounds the compiled programs a sandbox keeps.
	programCacheSize = 256
	// watchInterval is how often the watchdog samples the heap while a
	// job runs. A job allocating a gigabyte a second overshoots its cap by
	// about 5 MB before the watchdog sees it; the kernel's headroom covers
	// that.
	watchInterval = 5 * time.Millisecond
	// exitMemory is the exit status of a sandbox whose watchdog found its
	// memory past what even the kernel should have allowed.
	exitMemory = 3
)

// ServeProcess is the sandbox role (`faas sandbox`): it fences itself as
// the setup frame on stdin says, then serves jobs over stdin and stdout
// until stdin ends, which is how the worker stops it, or ctx ends.
//
// Anything else that writes to stdout (a stray print, a library) would
// corrupt the protocol, so the protocol keeps its own copy of the stdout
// descriptor and descriptor 1 is pointed at stderr, which the worker keeps
// for diagnostics.
func ServeProcess(ctx context.Context) error {
	// A sandbox runs one job at a time on one goroutine. A second
	// processor only costs a wake-up per job: each job's timers (its
	// deadline, the memory watchdog) wake an idle thread to watch them,
	// which finds nothing to do and sleeps again. With one, the timers
	// are run by the thread that runs the job; a job that never yields
	// is preempted for them within 10 ms by the runtime's monitor, which
	// the job's first system call woke.
	runtime.GOMAXPROCS(1)
	closeInherited()
	outFD, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("sandbox: keep stdout: %w", err)
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return fmt.Errorf("sandbox: point stdout at stderr: %w", err)
	}
	out := os.NewFile(uintptr(outFD), "sandbox-out")
	defer out.Close()
	// Stdin is read through the runtime's poller: a goroutine waiting there
	// holds no thread in a system call, so an idle sandbox has nothing
	// left running and its runtime sleeps until the next job. A read
	// blocked in the kernel keeps its processor in a system call instead,
	// which keeps the runtime's monitor thread polling every 20-40 us for
	// as long as the sandbox waits: it cost a sandbox under load several
	// times the CPU of its jobs. Ending ctx (SIGTERM) ends a wait for a
	// job; a running job is cancelled and replied to first.
	if err := syscall.SetNonblock(0, true); err != nil {
		return fmt.Errorf("sandbox: read stdin through the poller: %w", err)
	}
	in := os.NewFile(0, "sandbox-in")
	stop := context.AfterFunc(ctx, func() { in.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	// Read unbuffered: the jobs that follow are serve's to read.
	var set setup
	if _, err := (&decoder{r: in}).next(&set, 4096); err != nil {
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("sandbox: read setup: %w", err)
	}
	if err := serve(ctx, in, out, set); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// serve puts up the fences set asks for, then reads jobs from in and
// writes their results to out, one at a time, each in a fresh runtime,
// until in ends or ctx ends. It keeps the compiled programs, so a
// function's source crosses the pipe once. Each job's memory is capped by
// the kernel (RLIMIT_DATA) and by a watchdog on the Go heap; see
// limitMemory. Its hello reports the fences that are not up.
func serve(ctx context.Context, in io.Reader, out io.Writer, set setup) error {
	s := &server{
		programs: lru.New[Key, *sandbox.Program](programCacheSize),
		dec:      decoder{r: bufio.NewReaderSize(in, 64<<10)},
		enc:      newEncoder(),
		out:      out,
	}
	// The baseline reads /proc, which the fences may take away.
	s.measureBaseline()
	unfenced, err := fenceSelf(set)
	if err != nil {
		return err
	}
	hi := hello{Unfenced: unfenced}
	if err := s.probeDataLimit(); err != nil {
		hi.NoKernelLimit = err.Error()
	}
	if err := s.send(hi); err != nil {
		return fmt.Errorf("sandbox: say hello: %w", err)
	}
	for ctx.Err() == nil {
		var req request
		parts, err := s.dec.next(&req, maxRequest)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sandbox: read request: %w", err)
		}
		if err := s.handle(ctx, req, parts); err != nil {
			return fmt.Errorf("sandbox: write reply: %w", err)
		}
		s.tidy()
	}
	return nil
}

// probe, set only in this package's test binary, answers a request with
// Probe set from inside the sandbox process, where the tests look at the
// fences from the place a job runs. User code cannot reach it: it is a
// request of the worker's, and nil in the faas binary.
var probe func(args []byte) []byte

// server is the state of one sandbox process. Its goroutine runs the jobs;
// the watchdog only reads memory statistics and cancels a job.
type server struct {
	programs *lru.Cache[Key, *sandbox.Program]
	dec      decoder
	enc      *encoder
	out      io.Writer
	watch    watchdog
	samples  []metrics.Sample

	// base is the idle sandbox's Go memory and baseData its data
	// segment: a job's cap is counted on top of them.
	base     usage
	baseData uint64
	// memoryMB is the cap the limits are set for.
	memoryMB int
}

func (s *server) send(hdr any, parts ...[]byte) error {
	b, err := s.enc.frame(hdr, parts...)
	if err != nil {
		return err
	}
	_, err = s.out.Write(b)
	return err
}

// handle runs one job and sends its replies.
func (s *server) handle(ctx context.Context, req request, parts []byte) error {
	p, err := split(parts, req.SourceLen, req.ArgsLen)
	if err != nil {
		return s.send(reply{Err: faas.Errorf(faas.Internal, "sandbox: %v", err)})
	}
	source, args := p[0], p[1]
	if req.Probe {
		var out []byte
		if probe != nil {
			out = probe(args)
		}
		return s.send(reply{ValueLen: len(out)}, out, nil)
	}
	prog, ok := s.programs.Get(req.Key)
	if !ok {
		if !req.HasSource {
			return s.send(reply{NeedSource: true})
		}
		prog, err = s.program(req.Key, string(source), req.Env)
		if err != nil {
			return s.send(reply{Err: faas.AsError(err)})
		}
		if err := s.send(reply{Compiled: true}); err != nil {
			return err
		}
	}
	if req.MemoryMB <= 0 {
		req.MemoryMB = DefaultMemoryMB
	}
	s.limitMemory(req.MemoryMB)
	var emit func([]faas.LogLine)
	if req.Stream {
		emit = s.sendLines
	}
	res := s.run(ctx, prog, args, req.Limits, req.MemoryMB, emit)
	rep := reply{Err: res.Err, Duration: res.Duration, LogsLen: len(res.Logs), Calls: res.Calls, CallsTruncated: res.CallsTruncated}
	if res.Err == nil {
		rep.ValueLen = len(res.Value)
	}
	return s.send(rep, res.Value, []byte(res.Logs))
}

// program is the compiled function version key, from the cache or
// compiled from source with env.
func (s *server) program(key Key, source string, env map[string]string) (*sandbox.Program, error) {
	if prog, ok := s.programs.Get(key); ok {
		return prog, nil
	}
	prog, err := sandbox.Compile(source, key.Name)
	if err != nil {
		return nil, err
	}
	prog = prog.WithEnv(env)
	s.programs.Put(key, prog)
	return prog, nil
}

// sendLines sends console lines of the running job. A pipe that fails
// here fails the result's reply too, which the parent handles.
func (s *server) sendLines(lines []faas.LogLine) {
	b, err := json.Marshal(lines)
	if err == nil {
		_ = s.send(reply{LinesLen: len(b)}, b)
	}
}

// run runs one job under the memory watchdog, streaming its console to
// emit if not nil.
func (s *server) run(ctx context.Context, prog *sandbox.Program, args []byte, lim sandbox.Limits, memoryMB int, emit func([]faas.LogLine)) sandbox.Result {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	capBytes := uint64(memoryMB) << 20
	w := s.watch.arm(&armed{
		inUse:   s.base.inUse + capBytes,
		live:    s.base.live + capBytes/8*7,
		hard:    s.base.inUse + capBytes + headroom(capBytes),
		stop:    cancel,
		verdict: memoryError(memoryMB),
	})
	res := sandbox.RunStreaming(jctx, prog, args, lim, emit, link{s})
	s.watch.disarm(w)
	if w.tripped.Load() {
		// Whatever the run did after the watchdog spoke, it used more
		// than its share.
		res = sandbox.Result{Err: w.verdict, Duration: res.Duration, Logs: res.Logs, Calls: res.Calls, CallsTruncated: res.CallsTruncated}
	}
	return res
}

// tidyAbove is how far above the idle sandbox's memory a job may leave the
// heap before the sandbox collects it, between jobs.
const tidyAbove = 8 << 20

// tidy returns the garbage of a job that allocated much to the system
// before the next job, which must not pay for it: the watchdog counts all
// the memory the runtime holds, garbage included. It runs after the
// reply, while the sandbox would be idle anyway.
func (s *server) tidy() {
	if readUsage(s.samples).inUse > s.base.inUse+tidyAbove {
		debug.FreeOSMemory()
	}
}

// memoryError is the error of a job that used more than its memory cap.
func memoryError(memoryMB int) *faas.Error {
	return faas.Errorf(faas.MemoryLimit, "function exceeded its %d MiB memory limit", memoryMB)
}

// headroom is what the kernel allows beyond a job's cap, so that the
// watchdog, which ends the job cleanly and keeps the sandbox, normally
// acts first: the kernel's limit is for what the watchdog cannot stop,
// such as one huge allocation inside a native builtin.
func headroom(capBytes uint64) uint64 {
	return max(capBytes/2, 32<<20)
}

// measureBaseline records the idle sandbox's memory, after a collection
// so that start-up garbage does not count.
func (s *server) measureBaseline() {
	runtime.GC()
	s.samples = make([]metrics.Sample, len(usageMetrics))
	s.base = readUsage(s.samples)
	s.baseData, _ = dataSegment()
}

// limitMemory sets the limits for a job capped at memoryMB, if they are
// not already set for that cap:
//
//   - the Go runtime's soft memory limit, at seven eighths of the cap, so
//     that the collector works harder as the cap nears and garbage alone
//     never reaches it; the watchdog stops a job whose reachable heap
//     passes that line (the collector could no longer keep up) or whose
//     memory passes the cap;
//   - the kernel's RLIMIT_DATA, the cap plus headroom above the idle
//     sandbox's data segment: past it the kernel refuses memory, and the
//     Go runtime dies with "out of memory", which the worker reports as
//     memory_limit. RLIMIT_DATA counts every private writable mapping, the
//     heap included, since Linux 4.7; unlike RLIMIT_AS it ignores the
//     address space the runtime only reserves.
func (s *server) limitMemory(memoryMB int) {
	if memoryMB == s.memoryMB {
		return
	}
	s.memoryMB = memoryMB
	capBytes := uint64(memoryMB) << 20
	debug.SetMemoryLimit(int64(s.base.inUse + capBytes/8*7))
	if s.baseData > 0 {
		// A failure was reported in the hello, by probeDataLimit.
		_ = setDataLimit(s.baseData + (capBytes+headroom(capBytes))*raceFactor)
	}
}

// probeDataLimit tells whether limitMemory can have the kernel enforce the
// cap, by setting RLIMIT_DATA to what it is.
func (s *server) probeDataLimit() error {
	if s.baseData == 0 {
		return errors.New("data segment size unknown")
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &l); err != nil {
		return err
	}
	return syscall.Setrlimit(syscall.RLIMIT_DATA, &l)
}

// setDataLimit lowers (or raises) the soft RLIMIT_DATA, keeping the hard
// limit, so that a later job with a larger cap can raise it again.
func setDataLimit(n uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &l); err != nil {
		return err
	}
	l.Cur = min(n, l.Max)
	return syscall.Setrlimit(syscall.RLIMIT_DATA, &l)
}

// dataSegment is the process's VmData: its private writable mappings, what
// RLIMIT_DATA limits.
func dataSegment() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmData:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmData: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmData in /proc/self/status")
}

// usage is the Go runtime's memory, as the watchdog sees it.
type usage struct {
	// inUse is all the memory the runtime has mapped, less what it gave
	// back to the system: the quantity debug.SetMemoryLimit bounds.
	inUse uint64
	// live is the heap the last collection found reachable.
	live uint64
}

// usageMetrics are the runtime metrics readUsage reads.
var usageMetrics = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes", "/gc/heap/live:bytes"}

// readUsage reads the Go runtime's memory into samples.
func readUsage(samples []metrics.Sample) usage {
	for i, name := range usageMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples)
	return usage{inUse: samples[0].Value.Uint64() - samples[1].Value.Uint64(), live: samples[2].Value.Uint64()}
}

// watchdog samples the Go runtime's memory while a job runs. Sampling
// runs on timers armed for the job only, so an idle sandbox never wakes.
type watchdog struct {
	mu      sync.Mutex
	cur     *armed
	samples []metrics.Sample
}

// armed is one job under watch.
type armed struct {
	// The job is over its cap when the runtime's memory passes inUse, or
	// when a collection finds more than live reachable: then the collector
	// would run without pause to keep the job under its cap, a job slowed
	// to a crawl rather than stopped. hard is the line past which the
	// kernel should have stopped it.
	inUse, live, hard uint64
	stop              context.CancelCauseFunc
	verdict           *faas.Error
	timer             *time.Timer
	tripped           atomic.Bool
}

func (w *watchdog) arm(a *armed) *armed {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = a
	a.timer = time.AfterFunc(watchInterval, func() { w.check(a) })
	return a
}

func (w *watchdog) disarm(a *armed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur = nil
	a.timer.Stop()
}

// check samples memory once and schedules the next sample. Past the soft
// line it stops the job, through its context (the runtime's interrupt);
// past the hard line, which the kernel should have enforced already, the
// job is beyond stopping (a native builtin allocating) and the sandbox
// exits, leaving the worker to report the memory limit and replace it.
func (w *watchdog) check(a *armed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur != a {
		return
	}
	if w.samples == nil {
		w.samples = make([]metrics.Sample, len(usageMetrics))
	}
	u := readUsage(w.samples)
	if u.inUse > a.hard {
		fmt.Fprintf(os.Stderr, "sandbox: out of memory: %d MiB in use, %d MiB allowed\n", u.inUse>>20, a.hard>>20)
		os.Exit(exitMemory)
	}
	if (u.inUse > a.inUse || u.live > a.live) && !a.tripped.Load() {
		a.tripped.Store(true)
		a.stop(a.verdict)
	}
	a.timer.Reset(watchInterval)
}
