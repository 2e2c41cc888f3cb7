package dbmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager"
	"faas/dbmanager/dbmanagertest"
	"faas/dbmanager/internal/ferrettest"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
)

func start(t *testing.T, cfg dbmanager.Config, log *slog.Logger) (*dbmanager.Manager, func()) {
	return dbmanagertest.Start(t, cfg, log)
}

func dial(t *testing.T, endpoint string, timeout time.Duration) *dbproxy.Client {
	t.Helper()
	c, err := dbproxy.Dial(endpoint, timeout, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func sqliteConfig(t *testing.T) dbmanager.Config { return dbmanagertest.Embedded(t.TempDir()) }

// roundTrip exercises a manager through its proxy.
func roundTrip(t *testing.T, c faas.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx))
	require.NoError(t, c.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	u, err := c.UserByToken(ctx, "h")
	require.NoError(t, err)
	require.Equal(t, "ada", u.Name)
	_, err = c.User(ctx, "bob")
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
}

func TestManagerServesEmbeddedStore(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	m, stop := start(t, sqliteConfig(t), slog.New(slog.NewTextHandler(&logs, nil)))
	roundTrip(t, dial(t, m.Endpoint(), 0))
	// The in-process store is the one served.
	_, err := m.Store().User(context.Background(), "ada")
	require.NoError(t, err)
	stop()
	require.Contains(t, logs.String(), "serving")
}

func TestManagerServesMongoDB(t *testing.T) {
	t.Parallel()
	cfg := dbmanager.Config{Listen: "tcp://127.0.0.1:*", DBURL: ferrettest.Start(t) + "manager"}
	m, _ := start(t, cfg, slog.New(slog.DiscardHandler))
	roundTrip(t, dial(t, m.Endpoint(), 0))
}

// TestClientSurvivesManagerRestart restarts the manager on the same
// endpoint and data while a client keeps calling: requests sent while it is
// down are answered once it is back, and the data is still there.
func TestClientSurvivesManagerRestart(t *testing.T) {
	t.Parallel()
	cfg := sqliteConfig(t)
	m, stop := start(t, cfg, slog.New(slog.DiscardHandler))
	c := dial(t, m.Endpoint(), 300*time.Millisecond)
	roundTrip(t, c)

	stop()
	cfg.Listen = m.Endpoint()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(time.Second)
		start(t, cfg, slog.New(slog.DiscardHandler))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := c.User(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, "h", u.TokenHash)
	<-restarted
	require.NoError(t, c.CreateUser(ctx, faas.User{Name: "bob", TokenHash: "h2"}))
}

func TestNewFailsOnAddressInUse(t *testing.T) {
	t.Parallel()
	m, _ := start(t, sqliteConfig(t), slog.New(slog.DiscardHandler))
	cfg := sqliteConfig(t)
	cfg.Listen = m.Endpoint()
	_, err := dbmanager.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	// The store it opened was closed again: a new manager can open it.
	cfg.Listen = "tcp://127.0.0.1:*"
	start(t, cfg, slog.New(slog.DiscardHandler))
}

func TestConfig(t *testing.T) {
	for _, key := range []string{"DB_URL", "PORT", "FAAS_LISTEN", "FAAS_DATA_DIR", "FAAS_RETENTION", "FAAS_SECRET_KEY", "FAAS_SECRET_KEY_FILE"} {
		t.Setenv(key, "") // restored when the test ends
		os.Unsetenv(key)
	}
	cfg, err := dbmanager.LoadConfig()
	require.NoError(t, err)
	require.Equal(t, dbmanager.Config{Port: dbproxy.DefaultPort, DataDir: "data", Retention: dbmanager.DefaultRetention}, cfg)
	require.Equal(t, fmt.Sprintf("tcp://127.0.0.1:%d", dbproxy.DefaultPort), cfg.Endpoint(), "standalone managers bind loopback unless told otherwise")

	t.Setenv("DB_URL", "mongodb+srv://u:pw@cluster.example.net/faas")
	t.Setenv("FAAS_LISTEN", "tcp://127.0.0.1:9999")
	cfg, err = dbmanager.LoadConfig()
	require.NoError(t, err)
	require.Equal(t, "tcp://127.0.0.1:9999", cfg.Endpoint())

	for _, bad := range []struct{ key, value string }{
		{"DB_URL", "postgres://u:secret@db/faas"},
		{"DB_URL", "tcp://127.0.0.1:27017"},
		{"PORT", "many"},
		{"FAAS_RETENTION", "0"},
		{"FAAS_RETENTION", "-1h"},
		{"FAAS_RETENTION", "a week"},
	} {
		t.Run(bad.key+"="+bad.value, func(t *testing.T) {
			t.Setenv("FAAS_LISTEN", "")
			t.Setenv(bad.key, bad.value)
			_, err := dbmanager.LoadConfig()
			require.Error(t, err)
			require.NotContains(t, err.Error(), "secret")
		})
	}
	t.Setenv("DB_URL", "")
	t.Setenv("FAAS_LISTEN", "")
	t.Setenv("PORT", "70000")
	_, err = dbmanager.LoadConfig()
	require.Error(t, err)
	require.NoError(t, os.Unsetenv("PORT"))

	// Compose hands the secrets' key over as a file.
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret_key")
	key := dbmanagertest.SecretKey()
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	t.Setenv("FAAS_SECRET_KEY_FILE", keyFile)
	cfg, err = dbmanager.LoadConfig()
	require.NoError(t, err)
	require.Equal(t, key, cfg.SecretKey, "read from the file, without its newline")
	t.Setenv("FAAS_SECRET_KEY", key)
	_, err = dbmanager.LoadConfig()
	require.ErrorContains(t, err, "both FAAS_SECRET_KEY and FAAS_SECRET_KEY_FILE are set")
	t.Setenv("FAAS_SECRET_KEY", "")
	require.NoError(t, os.WriteFile(keyFile, []byte("c2hvcnQ=\n"), 0o600))
	_, err = dbmanager.LoadConfig()
	require.ErrorContains(t, err, "FAAS_SECRET_KEY holds 5 bytes", "a key from a file is checked as one set inline")
	require.NotContains(t, err.Error(), "c2hvcnQ=")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mongodb://u:secret@h1:27017,h2:27017/faas?authSource=admin": "mongodb://u:xxxxx@h1:27017,h2:27017/faas?authSource=admin",
		"mongodb+srv://u:p@ss@cluster.example.net":                   "mongodb+srv://u:xxxxx@cluster.example.net",
		"mongodb://h/faas?x=a@b":                                     "mongodb://h/faas?x=a@b",
		"mongodb://user@h/faas":                                      "mongodb://user@h/faas",
		// Unencoded '/' and '?' in the password used to end the search
		// for the '@' early and leave the password in the log.
		"mongodb://u:pa/ss?w@h/faas":     "mongodb://u:xxxxx@h/faas",
		"mongodb://u:a?b/c@h:27017/faas": "mongodb://u:xxxxx@h:27017/faas",
		"mongodb://h/faas?x=a:b@c":       "mongodb://h/faas?x=a:b@c",
		// No password, but an '@' in the options after a port: more is
		// hidden than needed, never less.
		"mongodb://h:27017/faas?x=a@b": "mongodb://h:xxxxx@b",
		"":                             "",
	} {
		require.Equal(t, want, dbmanager.Redact(in), in)
	}
}

// TestManagerPurgesOldJobs runs a manager with a short retention: a
// finished job disappears once it is older than that, while a queued one and
// the user's billing stay.
func TestManagerPurgesOldJobs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := sqliteConfig(t)
	cfg.Retention = 200 * time.Millisecond
	var logs bytes.Buffer
	m, stop := start(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	c := dial(t, m.Endpoint(), 0)

	require.NoError(t, c.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err := c.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x=>x"})
	require.NoError(t, err)
	for _, id := range []string{"done", "queued"} {
		_, err := c.CreateJob(ctx, faas.Job{ID: id, Owner: "ada", Function: "f", Args: json.RawMessage(`[1]`)})
		require.NoError(t, err)
	}
	_, err = c.StartJob(ctx, "done", 1, "w")
	require.NoError(t, err)
	done, err := c.CompleteJob(ctx, faas.Completion{JobID: "done", Attempt: 1, Result: json.RawMessage(`1`), Duration: time.Second})
	require.NoError(t, err)

	// Retention plus two purge intervals at most; the deadline is ample.
	for {
		_, err := c.Job(ctx, "done")
		if faas.ErrorCode(err) == faas.NotFound {
			break
		}
		require.NoError(t, err)
		require.Less(t, time.Since(done.Finished), 5*time.Second, "job not purged")
		time.Sleep(10 * time.Millisecond)
	}
	require.GreaterOrEqual(t, time.Since(done.Finished), cfg.Retention, "purged before its time")
	queued, err := c.Job(ctx, "queued")
	require.NoError(t, err)
	require.Equal(t, faas.Queued, queued.State)
	billed, err := c.BilledTime(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, time.Second, billed)

	stop()
	require.Regexp(t, `msg="purged finished jobs" jobs=1 `, logs.String())
}
