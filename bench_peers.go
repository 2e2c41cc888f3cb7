package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// peers are the systems a user could pick instead, each a directory of
// the peers' folder with a run.sh (../shared/peers/README.md).
var peers = []struct{ dir, system string }{
	{"river", "River + SQLite + goja"},
	{"bullmq", "BullMQ + Redis + node:vm"},
}

// peerResult is what one peer's run.sh printed last, as
// `JSON {"jobs":..,"throughput":..,"p50_ms":..,"p99_ms":..}`, or why it
// printed nothing usable.
type peerResult struct {
	Dir        string  `json:"-"`
	System     string  `json:"-"`
	Err        error   `json:"-"`
	Jobs       int     `json:"jobs"`
	Throughput float64 `json:"throughput"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
}

func (p peerResult) p50() time.Duration { return time.Duration(p.P50ms * float64(time.Millisecond)) }
func (p peerResult) p99() time.Duration { return time.Duration(p.P99ms * float64(time.Millisecond)) }

// peer is the result of the peer in dir, if it ran and succeeded.
func (r *benchResults) peer(dir string) (peerResult, bool) {
	for _, p := range r.peers {
		if p.Dir == dir && p.Err == nil {
			return p, true
		}
	}
	return peerResult{}, false
}

// runPeers copies the peers' folder to a scratch directory (it may be
// read-only, and BullMQ installs its packages beside itself) and runs
// each peer's run.sh with JOBS=jobs, one after the other; their own
// output goes to stderr as progress. A peer that fails is reported as
// such, and the others still run.
func runPeers(ctx context.Context, log *slog.Logger, dir string, jobs int) []peerResult {
	results := make([]peerResult, len(peers))
	for i, p := range peers {
		results[i] = peerResult{Dir: p.dir, System: p.system}
	}
	fail := func(err error) []peerResult {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	scratch, err := os.MkdirTemp("", "faas-bench-peers-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(scratch)
	// cp keeps the scripts' modes and copies symbolic links as links.
	if out, err := exec.CommandContext(ctx, "cp", "-r", dir, filepath.Join(scratch, "peers")).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("copy %s: %w: %s", dir, err, strings.TrimSpace(string(out))))
	}
	for i := range results {
		r := &results[i]
		log.Info("bench: peer", "system", r.System, "jobs", jobs)
		script := filepath.Join(scratch, "peers", r.Dir, "run.sh")
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOBS=%d", jobs))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			r.Err = err
			continue
		}
		if err := cmd.Start(); err != nil {
			r.Err = err
			continue
		}
		parsed, perr := parsePeer(out, os.Stderr)
		if err := cmd.Wait(); err != nil {
			r.Err = fmt.Errorf("%s: %w", script, err)
			continue
		}
		if perr != nil {
			r.Err = fmt.Errorf("%s: %w", script, perr)
			continue
		}
		r.Jobs, r.Throughput, r.P50ms, r.P99ms = parsed.Jobs, parsed.Throughput, parsed.P50ms, parsed.P99ms
		log.Info("bench: peer done", "system", r.System, "jobs_per_sec", int(r.Throughput), "p50_ms", r.P50ms, "p99_ms", r.P99ms)
	}
	return results
}

// parsePeer copies a peer's output to progress and reads the figures of
// its last `JSON {...}` line.
func parsePeer(out io.Reader, progress io.Writer) (peerResult, error) {
	var last string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(progress, line)
		if strings.HasPrefix(line, "JSON ") {
			last = strings.TrimPrefix(line, "JSON ")
		}
	}
	if err := sc.Err(); err != nil {
		return peerResult{}, err
	}
	if last == "" {
		return peerResult{}, errors.New("no JSON line in its output")
	}
	var p peerResult
	if err := json.Unmarshal([]byte(last), &p); err != nil {
		return peerResult{}, fmt.Errorf("its JSON line %q: %w", last, err)
	}
	if p.Jobs < 1 || p.Throughput <= 0 || p.P50ms <= 0 || p.P99ms < p.P50ms {
		return peerResult{}, fmt.Errorf("its JSON line %q does not hold jobs, throughput, p50_ms and p99_ms", last)
	}
	return p, nil
}
