// Package dbmanagertest runs a real DB manager inside a test, for the tests
// of the components that talk to it.
package dbmanagertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"sync"
	"testing"
	"time"

	"faas/dbmanager"
)

// stopTimeout bounds the wait for Run to return.
const stopTimeout = 10 * time.Second

// Start runs a manager until stop is called or the test ends; stop waits
// for Run to return and fails the test if it returned an error.
func Start(t testing.TB, cfg dbmanager.Config, log *slog.Logger) (m *dbmanager.Manager, stop func()) {
	t.Helper()
	m, err := dbmanager.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start dbmanager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("dbmanager run: %v", err)
				}
			case <-time.After(stopTimeout):
				t.Error("dbmanager did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// Embedded is the configuration of a manager on a free loopback port with
// its embedded database in dir and a fresh key for secrets.
func Embedded(dir string) dbmanager.Config {
	return dbmanager.Config{Listen: "tcp://127.0.0.1:*", DataDir: dir, SecretKey: SecretKey()}
}

// SecretKey is a new random FAAS_SECRET_KEY.
func SecretKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}
