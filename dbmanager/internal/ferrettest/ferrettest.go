// Package ferrettest starts FerretDB, a MongoDB wire-protocol server with a
// SQLite backend, as a real process for the MongoDB store's tests: no mongod
// exists for the machines the tests run on.
//
// The binary comes from FAAS_FERRETDB_BIN if set (the Makefile builds it);
// otherwise it is built from dbmanager/internal/ferretdb, its own Go module,
// into the user's cache directory, once per version of that module, under a
// file lock so that test processes running in parallel build it only once.
package ferrettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BinEnv names the environment variable holding a prebuilt binary.
const BinEnv = "FAAS_FERRETDB_BIN"

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 30 * time.Second

// buildTimeout bounds building the binary (about a minute from a cold
// module cache).
const buildTimeout = 10 * time.Minute

var binary = sync.OnceValues(findOrBuild)

// Start runs a FerretDB server on a free loopback port with its data in a
// directory of t's, stops it when t ends, and returns its MongoDB URL
// without a database name. The process also dies with the test binary.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("ferretdb binary: %v", err)
	}
	for try := 1; ; try++ {
		url, err := start(t, bin)
		if err == nil {
			return url
		}
		// Another process may have taken the free port first.
		if try == 3 {
			t.Fatalf("start ferretdb: %v", err)
		}
		t.Logf("start ferretdb (try %d): %v", try, err)
	}
}

func start(t testing.TB, bin string) (string, error) {
	addr, err := freePort()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-listen", addr, "-dir", filepath.Join(t.TempDir(), "ferretdb"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	url := "mongodb://" + addr + "/"
	if err := waitReady(url, exited); err != nil {
		stop()
		return "", fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	t.Cleanup(stop)
	return url, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady pings the server until it answers, it exits, or time is up.
func waitReady(url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(url).SetServerSelectionTimeout(200 * time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer client.Disconnect(context.Background())
	for {
		if err := client.Ping(ctx, nil); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("ferretdb exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("ferretdb did not answer at %s within %v", url, startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// findOrBuild returns the binary to run, building it if need be.
func findOrBuild() (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w", BinEnv, err)
		}
		return bin, nil
	}
	src, err := sourceDir()
	if err != nil {
		return "", err
	}
	key, err := sourceKey(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	dir := filepath.Join(cache, "faas", "ferretdb-"+key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	bin := filepath.Join(dir, "ferretdb")
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ferretdb in %s: %w\n%s", src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("install ferretdb: %w", err)
	}
	return bin, nil
}

// sourceDir finds the ferretdb module beside this package, from the
// enclosing module's root.
func sourceDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the faas module")
	}
	return filepath.Join(filepath.Dir(gomod), "dbmanager", "internal", "ferretdb"), nil
}

// sourceKey hashes the module's files, so that a changed version builds a
// new binary instead of reusing a stale one.
func sourceKey(src string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", fmt.Errorf("read ferretdb source: %w", err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("take build lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
