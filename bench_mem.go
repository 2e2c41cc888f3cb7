package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"faas/internal/platform"
	"faas/proxies/bus"
	"faas/proxies/faas"
)

// vmRSS is the resident memory of process pid (VmRSS), from
// /proc/pid/statm: its second field is the same count in pages, without
// the status file's forty other lines to format and scan.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/statm: %q has no resident field", pid, b)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize()), err
}

// pss is the proportional share of memory of process pid: its private
// pages, and each page it shares divided among the processes sharing it.
// The workers and sandboxes are processes of the same binary, so their
// RSS counts its pages once per process and a sum of RSS overstates what
// the platform takes; a sum of PSS does not.
func pss(pid int) (int64, error) {
	return procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
}

// procKB reads the figure in kB on the line starting with key of the
// /proc file path, in bytes.
func procKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			return n << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s", path, strings.TrimSuffix(key, ":"))
}

// treeMemory is the memory of a process and its descendants: the sums of
// their resident sets and of their proportional shares.
type treeMemory struct {
	rss, pss int64
}

// processTree lists process pid and all its descendants, pid first:
// `faas up` with its workers and their sandboxes. It reads the parent of
// every process on the machine, which costs a few ms of CPU.
func processTree(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// The command name may hold spaces and parentheses; the fields
		// after its closing one are state, then the parent's pid.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// treeMem is the memory of the processes of tree, as processTree lists
// them. withPSS also sums their proportional shares, which costs the
// kernel a walk of every page table: about 10 ms of CPU for `faas up`'s
// tree under load, against 0.2 ms for the resident sets alone.
func treeMem(tree []int, withPSS bool) (treeMemory, error) {
	var total treeMemory
	for _, p := range tree {
		rss, err := vmRSS(p)
		if err == nil && withPSS {
			var share int64
			share, err = pss(p)
			total.pss += share
		}
		if err == nil {
			total.rss += rss
		}
		if err != nil && p == tree[0] {
			return treeMemory{}, err
		}
		// A child that ended meanwhile counts nothing.
	}
	return total, nil
}

// treeMemOf is the memory of process pid and all its descendants.
func treeMemOf(pid int, withPSS bool) (treeMemory, error) {
	tree, err := processTree(pid)
	if err != nil {
		return treeMemory{}, err
	}
	return treeMem(tree, withPSS)
}

// rssSampler keeps the largest treeMem of a process and its descendants
// seen while it runs, each sum's peak on its own.
type rssSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak treeMemory
}

// pssEvery is how many resident-set samples go by for each one with the
// proportional shares: sampled as often as the resident sets, they took a
// fifth of a core from the platform being measured. The list of processes
// is read again with them: listing them at every sample took 6% of a core
// from the throughput workloads, and the tree changes only when the
// scaler starts or stops a worker.
const pssEvery = 20

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		var tree []int
		for n := 0; ; n++ {
			full := n%pssEvery == 0
			if full {
				if t, err := processTree(pid); err == nil {
					tree = t
				}
			}
			if m, err := treeMem(tree, full); err == nil && tree != nil {
				s.peak = treeMemory{rss: max(s.peak.rss, m.rss), pss: max(s.peak.pss, m.pss)}
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the peaks.
func (s *rssSampler) stop() treeMemory {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// backlogMemory starts a DB and a JQ manager as processes of this binary,
// with no worker, on free loopback ports and a CURVE bus keyed as `faas
// up` keys it, submits n jobs through jqproxy from clients goroutines,
// and returns the JQ manager's resident memory before and with the jobs
// queued.
func backlogMemory(ctx context.Context, log *slog.Logger, n, clients int) (idle, loaded int64, err error) {
	dir, err := os.MkdirTemp("", "faas-bench-backlog-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ring, err := bus.NewKeyring()
	if err != nil {
		return 0, 0, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return 0, 0, err
	}
	dbURL, jqURL := fmt.Sprintf("tcp://127.0.0.1:%d", ports[0]), fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	db, err := startRole(dir, "dbmanager", append(ring.Env(bus.DBManager), "DB_URL=", "PORT="+strconv.Itoa(ports[0]),
		"FAAS_DATA_DIR="+filepath.Join(dir, "data")))
	if err != nil {
		return 0, 0, err
	}
	defer db.stop()
	jq, err := startRole(dir, "jqmanager", append(ring.Env(bus.JQManager), "DB_URL="+dbURL, "PORT="+strconv.Itoa(ports[1]),
		fmt.Sprintf("FAAS_MAX_PENDING_PER_USER=%d", n)))
	if err != nil {
		return 0, 0, err
	}
	defer jq.stop()
	quiet := slog.New(slog.DiscardHandler)
	store, queue, closeProxies, err := platform.DialManagers(ring.Config(bus.Frontend), dbURL, jqURL, 10*time.Second, quiet)
	if err != nil {
		return 0, 0, err
	}
	defer closeProxies()

	// Both managers answer once they are up; the first requests may be
	// lost to a socket still connecting, and are resent.
	ready, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	const owner = "backlog"
	for {
		err = store.CreateUser(ready, faas.User{Name: owner, TokenHash: "backlog-token"})
		if err == nil {
			_, err = queue.Stats(ready)
		}
		if err == nil || ready.Err() != nil {
			break
		}
		if db.exited() || jq.exited() {
			return 0, 0, fmt.Errorf("a manager exited; its log is in %s: %w", dir, err)
		}
		select {
		case <-ready.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("managers not ready: %w", err)
	}
	if _, _, err := store.PutFunction(ctx, faas.Function{Owner: owner, Name: "add", Source: benchSource}); err != nil {
		return 0, 0, err
	}
	if idle, err = vmRSS(jq.cmd.Process.Pid); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	step := max(n/10, 1)
	if err := submitters(n, clients, func(i int) error {
		_, err := queue.Submit(ctx, faas.Job{ID: faas.NewJobID(), Owner: owner, Function: "add", Args: []byte(fmt.Sprintf("[%d,4]", i))})
		if i%step == 0 {
			log.Info("bench: backlog", "submitted", i, "of", n, "jobs_per_sec", int(float64(i)/time.Since(start).Seconds()))
		}
		return err
	}); err != nil {
		return 0, 0, err
	}
	st, err := queue.Stats(ctx)
	if err != nil {
		return 0, 0, err
	}
	if st.Queued != n {
		return 0, 0, fmt.Errorf("the JQ manager holds %d queued jobs, want %d", st.Queued, n)
	}
	loaded, err = vmRSS(jq.cmd.Process.Pid)
	return idle, loaded, err
}

// role is a process of this binary running one role.
type role struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startRole runs this binary as `faas name` with env added to this
// process's environment, logging warnings to name.log in dir. The
// process dies with this one.
func startRole(dir, name string, env []string) (*role, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, name)
	cmd.Env = append(append(os.Environ(), "FAAS_LOG_LEVEL=warn"), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	r := &role{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	return r, nil
}

func (r *role) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop ends the process gracefully, or kills it after ten seconds.
func (r *role) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// freePorts asks the kernel for n distinct free TCP ports on loopback.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
