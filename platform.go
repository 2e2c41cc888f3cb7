package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// platform is a `faas up` started as a child process, on free loopback
// ports and a scratch data directory.
type platform struct {
	url  string
	stop func()
}

// startPlatform starts the platform, with admin as the operator's token,
// and waits until it is ready.
func startPlatform(ctx context.Context, log *slog.Logger, admin string) (*platform, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "faas-bench-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(self, "up")
	cmd.Env = append(os.Environ(),
		"DB_URL=",
		"FAAS_DATA_DIR="+dir,
		fmt.Sprintf("PORT=%d", ports[0]),
		fmt.Sprintf("FAAS_DB_PORT=%d", ports[1]),
		fmt.Sprintf("FAAS_JQ_PORT=%d", ports[2]),
		"FAAS_LOG_LEVEL=warn",
		// One user submits everything from one address: lift the per-user
		// and per-address limits.
		"FAAS_RATE_LIMIT=0",
		"FAAS_RATE_LIMIT_PER_ADDR=0",
		"FAAS_MAX_PENDING_PER_USER=1000000",
		"FAAS_MAX_JOB_BYTES_PER_USER=0",
		"FAAS_ADMIN_TOKEN="+admin,
		"FAAS_MAX_RUNNING_PER_USER=0",
	)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start platform: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &platform{url: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	p.stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}
	log.Info("waiting for the platform", "url", p.url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("platform exited: %v", err)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("platform not ready after 30s")
		}
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
