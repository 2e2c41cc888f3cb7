package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
)

// benchTable parses the bench's Markdown tables: the rows of the one
// whose header starts with first, keyed by their first cell.
func benchTable(t *testing.T, out, first string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "| "+first+" |"):
			in = true
		case !strings.HasPrefix(line, "|"):
			in = false
		case in && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows[cells[0]] = cells[1:]
		}
	}
	require.NotEmpty(t, rows, "no table starting with %q in:\n%s", first, out)
	return rows
}

// figure is the number a cell starts with, in the unit it is written in
// ("438 jobs/s", "62.8 MB", "2.91ms", "19.2µs", "1.05x").
func figure(t *testing.T, cell string) float64 {
	t.Helper()
	s := strings.Fields(cell)[0]
	if d, err := time.ParseDuration(s); err == nil {
		return float64(d)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	require.NoError(t, err, "cell %q", cell)
	return v
}

// fakePeers is a peers folder whose River fails and whose BullMQ prints
// what the real one prints last: the bench must show the one failure
// and use the other's figures.
func fakePeers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, script := range map[string]string{
		"river":  "echo 'river: cannot build' >&2; exit 3\n",
		"bullmq": "echo \"jobs $JOBS\"\necho 'JSON {\"jobs\":'$JOBS',\"throughput\":1.5,\"p50_ms\":900,\"p99_ms\":1000}'\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "run.sh"), []byte("#!/bin/sh\n"+script), 0o755))
	}
	return dir
}

// TestBenchQuick runs `faas bench` end to end with small sizes, as its
// own process with the platform's workers as its children, and checks
// that the table has every row with sane values (not that the targets
// are met: that is the benchmark's business, on a quiet machine). The
// preload has more users than FAAS_MAX_USERS allows by default, which the
// preloaded platform must still let the bench's own user register past.
func TestBenchQuick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "bench", "-quick", "-jobs", "60", "-clients", "8", "-sync", "30",
		"-idle", "100ms", "-preload", "-preload-jobs", "1001", "-preload-users", "1001", "-backlog", "300", "-goja", "50",
		"-peers", fakePeers(t))
	cmd.Env = append(os.Environ(), reexec.Env("faas"), "FAAS_ADMIN_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
	out := stdout.String()

	side := benchTable(t, out, "system")
	require.Contains(t, side, "this platform, `faas bench`")
	require.Contains(t, side["River + SQLite + goja"][0], "FAILED")
	require.Contains(t, side["River + SQLite + goja"][0], "exit status 3")
	require.Equal(t, []string{"2", "900ms", "1s"}, side["BullMQ + Redis + node:vm"])
	polling := side["this platform, 60 jobs through REST, each submitter polling `GET /j/:id` every 2ms"]
	require.Len(t, polling, 3)
	require.Positive(t, figure(t, polling[0]))
	require.LessOrEqual(t, figure(t, polling[1]), figure(t, polling[2]), "p50 <= p99: %v", polling)
	require.Contains(t, stderr.String(), "jobs 60", "the peers get JOBS")

	rows := benchTable(t, out, "measure")
	pre := "preloaded (1001 jobs, 1001 users): "
	for _, tt := range []struct {
		measure string
		min     float64 // the smallest sane value, in the cell's unit
	}{
		{"async throughput, 60 jobs", 1},
		{"async throughput / BullMQ's", 0.1},
		{"polling workload, 60 jobs, GET /j/:id every 2ms", 1},
		{"sync ?wait p50", float64(10 * time.Microsecond)},
		{"sync ?wait p99", float64(10 * time.Microsecond)},
		{"sync ?wait p50 vs BullMQ's", float64(10 * time.Microsecond)},
		{"sync ?wait p99 vs BullMQ's", float64(10 * time.Microsecond)},
		{"first ?wait job after 100ms idle", float64(10 * time.Microsecond)},
		{pre + "async throughput", 1},
		{pre + "polling workload", 1},
		{pre + "sync ?wait p50", float64(10 * time.Microsecond)},
		{pre + "sync ?wait p99", float64(10 * time.Microsecond)},
		{"JQ manager RSS with 300 jobs queued", 5},
		{"sandbox process overhead per job", float64(-time.Millisecond)},
	} {
		r, ok := rows[tt.measure]
		require.True(t, ok, "no row %q in:\n%s", tt.measure, out)
		require.GreaterOrEqual(t, figure(t, r[0]), tt.min, "%s: %v", tt.measure, r)
		require.Contains(t, []string{"PASS", "MISS"}, r[2], "%s: %v", tt.measure, r)
	}
	require.LessOrEqual(t, figure(t, rows["sync ?wait p50"][0]), figure(t, rows["sync ?wait p99"][0]))
	// The fake BullMQ is slow: the platform beats its latency.
	require.Equal(t, "PASS", rows["sync ?wait p99 vs BullMQ's"][2])
	for _, measure := range []string{"JQ manager RSS with no job", "faas up RSS with its workers, idle",
		"faas up RSS with its workers, under load (peak)", "the same as proportional shares (PSS), idle",
		"the same as proportional shares (PSS), under load (peak)"} {
		require.Contains(t, rows, measure)
		require.Greater(t, figure(t, rows[measure][0]), 5.0, "%s in MB", measure)
	}
	// The workers and sandboxes share the binary's pages, which each one's
	// RSS counts whole.
	require.Less(t, figure(t, rows["the same as proportional shares (PSS), idle"][0]),
		figure(t, rows["faas up RSS with its workers, idle"][0]))
	require.GreaterOrEqual(t, figure(t, rows["faas up RSS with its workers, under load (peak)"][0]),
		figure(t, rows["faas up RSS with its workers, idle"][0])*0.5)
}

// TestParseBench: each bad flag is refused, naming the value and what is
// expected; -quick shrinks only the sizes not given.
func TestParseBench(t *testing.T) {
	t.Parallel()
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"-jobs", "0"}, "bench -jobs 0: must be at least 1"},
		{[]string{"-clients", "-2"}, "bench -clients -2: must be at least 1"},
		{[]string{"-preload-users", "0"}, "bench -preload-users 0: must be at least 1"},
		{[]string{"-backlog", "-1"}, "bench -backlog -1: must be 0 (skip) or more"},
		{[]string{"-poll", "0s"}, "bench -poll 0s: must be positive"},
		{[]string{"-idle", "-1s"}, "bench -idle -1s: must not be negative"},
		{[]string{"-preload", "-url", "http://127.0.0.1:1"}, "cannot with -url"},
		{[]string{"-peers", "/nonexistent"}, "bench -peers /nonexistent: want the peers' folder, with river/run.sh"},
		{[]string{"extra"}, `bench takes no arguments, got ["extra"]`},
	}
	for _, tt := range bad {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			_, err := parseBench(tt.args)
			require.ErrorContains(t, err, tt.want)
		})
	}
	o, err := parseBench([]string{"-quick", "-jobs", "7"})
	require.NoError(t, err)
	require.Equal(t, 7, o.jobs, "a size given wins over -quick's")
	require.Equal(t, 200, o.sync)
	require.Equal(t, 2*time.Second, o.idle)
	o, err = parseBench(nil)
	require.NoError(t, err)
	require.Equal(t, benchOptions{jobs: 5000, clients: 32, poll: 2 * time.Millisecond, sync: 1000, idle: 30 * time.Second,
		preloadJobs: 1000000, preloadUsers: 10000, backlog: 100000, goja: 2000}, o)
}

// TestParsePeer reads a peer's last JSON line and refuses output that
// has none, or one without the figures.
func TestParsePeer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, out string
		want      peerResult
		err       string
	}{
		{"last JSON line", "building\nJSON {\"jobs\":1}\nJSON {\"jobs\":5000,\"throughput\":1589.2,\"p50_ms\":1.43,\"p99_ms\":5.95}\nbye\n",
			peerResult{Jobs: 5000, Throughput: 1589.2, P50ms: 1.43, P99ms: 5.95}, ""},
		{"no JSON", "panic: oops\n", peerResult{}, "no JSON line in its output"},
		{"bad JSON", "JSON {\"jobs\":\n", peerResult{}, `its JSON line "{\"jobs\":"`},
		{"missing figures", "JSON {\"jobs\":10}\n", peerResult{}, "does not hold jobs, throughput, p50_ms and p99_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var progress bytes.Buffer
			got, err := parsePeer(strings.NewReader(tt.out), &progress)
			require.Equal(t, tt.out, progress.String(), "the peer's output is passed on")
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestProcessTree: the tree of this test holds its child and grandchild,
// and a resident set read from statm is the one the status file reports.
func TestProcessTree(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The shell forks sleep as its child, then reports sleep's pid.
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 30 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	defer syscall.Kill(grandchild, syscall.SIGKILL)

	tree, err := processTree(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), tree[0])
	require.Contains(t, tree, cmd.Process.Pid)
	require.Contains(t, tree, grandchild)

	rss, err := vmRSS(os.Getpid())
	require.NoError(t, err)
	status, err := procKB(fmt.Sprintf("/proc/%d/status", os.Getpid()), "VmRSS:")
	require.NoError(t, err)
	require.InEpsilon(t, status, rss, 0.1, "statm %d B, status %d B", rss, status)

	mem, err := treeMem(tree, true)
	require.NoError(t, err)
	require.Greater(t, mem.rss, rss, "the children's resident sets count too")
	require.Positive(t, mem.pss)
	_, err = treeMem([]int{-1}, false)
	require.Error(t, err, "the tree's root must be readable")
}
