package scaler

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"faas/internal/reexec"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from linux/prctl.h.
const prSetChildSubreaper = 36

// TestLocalWorkersDieWithScaler kills a scaler outright (no Close) and
// checks that the kernel stops its workers.
func TestLocalWorkersDieWithScaler(t *testing.T) {
	t.Parallel()
	// The orphaned workers become this process's children rather than
	// init's, so the test can reap them instead of leaving zombies where
	// init does not reap (containers).
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("become a subreaper: %v", errno)
	}

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), reexec.Env("scaler"), noExitDelay)
	cmd.SysProcAttr = workerSysProcAttr()
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	// The workers share the helper's stderr; do not wait for them to close it.
	cmd.WaitDelay = 100 * time.Millisecond
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(settle):
		t.Fatal("the scaler helper printed no pids")
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err, "helper output %q", line)
		pids = append(pids, pid)
	}
	require.Len(t, pids, 2, "helper output %q, stderr %s", line, stderr.String())
	t.Cleanup(func() {
		for _, pid := range pids {
			// Kill what survived a failed test; reap what is now ours.
			if !processGone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	})
	for _, pid := range pids {
		require.False(t, processGone(pid), "worker %d runs", pid)
	}

	require.NoError(t, cmd.Process.Kill())
	<-exited
	for _, pid := range pids {
		assert.Eventually(t, func() bool { return processGone(pid) }, settle, 20*time.Millisecond,
			"worker %d outlived its scaler", pid)
	}
}

// processGone reports whether pid has exited: no such process, or a zombie
// not reaped yet.
func processGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
