package bus_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager"
	"faas/dbmanager/dbmanagertest"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/proxies/bus/bustest"
	"faas/proxies/dbproxy"
	"faas/proxies/faas"
	"faas/proxies/jqproxy"
	"faas/proxies/wire"
)

// platform is both managers on loopback, secured with one keyring, over
// a real embedded database.
type platform struct {
	keys  bus.Keyring
	db    *dbmanager.Manager
	jq    *jqmanager.Manager
	store faas.Store // in-process, to seed and to check what calls changed
}

func startPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{keys: bustest.Keyring(t)}
	cfg := dbmanagertest.Embedded(t.TempDir())
	cfg.Bus = bustest.Server(t, p.keys, bus.DBManager)
	p.db, _ = dbmanagertest.Start(t, cfg, slog.New(slog.DiscardHandler))
	p.store = p.db.Store()

	jqStore, err := dbproxy.Dial(p.db.Endpoint(), time.Second, slog.New(slog.DiscardHandler), bustest.Dial(t, p.keys, bus.JQManager, bus.DBManager))
	require.NoError(t, err)
	t.Cleanup(func() { jqStore.Close() })
	p.jq, err = jqmanager.New(jqmanager.Config{
		Listen: "tcp://127.0.0.1:*", LeaseTimeout: 5 * time.Second, MaxAttempts: 3,
		MaxPendingPerUser: 100, RequestTimeout: time.Second,
		Bus: bustest.Server(t, p.keys, bus.JQManager),
	}, jqStore, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.jq.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return p
}

// caller is how a test dials: a role of the keyring, a key the managers
// never heard of, or no key at all.
type caller struct {
	name string
	opt  func(t *testing.T, p *platform, manager bus.Role) wire.Option
}

func as(role bus.Role) caller {
	return caller{string(role), func(t *testing.T, p *platform, manager bus.Role) wire.Option {
		return bustest.Dial(t, p.keys, role, manager)
	}}
}

var (
	plaintext = caller{"no key", func(*testing.T, *platform, bus.Role) wire.Option {
		return wire.WithSecurity(wire.Security{})
	}}
	stranger = caller{"unknown key", func(t *testing.T, p *platform, manager bus.Role) wire.Option {
		k, err := bus.NewKey()
		require.NoError(t, err)
		return wire.WithSecurity(wire.Security{PublicKey: k.Public, SecretKey: string(k.Secret), ServerKey: p.keys[manager].Public})
	}}
)

func (p *platform) storeAs(t *testing.T, c caller) faas.Store {
	t.Helper()
	s, err := dbproxy.Dial(p.db.Endpoint(), 200*time.Millisecond, slog.New(slog.DiscardHandler), c.opt(t, p, bus.DBManager))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func (p *platform) queueAs(t *testing.T, c caller) faas.JobQueue {
	t.Helper()
	q, err := jqproxy.Dial(p.jq.Endpoint(), 200*time.Millisecond, slog.New(slog.DiscardHandler), c.opt(t, p, bus.JQManager))
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return q
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRefusedCallsChangeNothing is the bus's attacks: a caller with no
// key, a key the managers never heard of, or the key of a role that may
// not make the call, tries to delete a user, purge, forge a completion
// with a huge bill, steal a job as a fake worker, read token hashes. Each
// is refused (unavailable when the handshake fails, forbidden when the
// role may not call) and the store is as it was.
func TestRefusedCallsChangeNothing(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	ctx := ctxFor(t, 60*time.Second)
	alice := faas.User{Name: "alice", TokenHash: "hash-of-alice", Created: time.Now().UTC().Truncate(time.Millisecond)}
	require.NoError(t, p.store.CreateUser(ctx, alice))
	fn, _, err := p.store.PutFunction(ctx, faas.Function{Owner: "alice", Name: "f", Source: "x => x", Timeout: time.Second})
	require.NoError(t, err)
	job, err := p.queueAs(t, as(bus.Frontend)).Submit(ctx, faas.Job{ID: "job-1", Owner: "alice", Function: "f", Args: json.RawMessage("[1]"), Created: time.Now().UTC()})
	require.NoError(t, err)
	running, err := p.store.CreateJob(ctx, faas.Job{ID: "job-2", Owner: "alice", Function: "f", Args: json.RawMessage("[2]"), Created: time.Now().UTC()})
	require.NoError(t, err)
	running, err = p.store.StartJob(ctx, running.ID, 1, "honest-worker")
	require.NoError(t, err)
	forged := faas.Completion{JobID: running.ID, Attempt: 1, Result: json.RawMessage("666"), Duration: 1000 * time.Hour}

	dbCalls := map[string]func(context.Context, faas.Store) error{
		"DeleteUser": func(ctx context.Context, s faas.Store) error { return s.DeleteUser(ctx, "alice") },
		"PurgeJobs": func(ctx context.Context, s faas.Store) error {
			_, err := s.PurgeJobs(ctx, time.Now().Add(time.Hour))
			return err
		},
		"CompleteJob": func(ctx context.Context, s faas.Store) error { _, err := s.CompleteJob(ctx, forged); return err },
		"CompleteJobs": func(ctx context.Context, s faas.Store) error {
			_, err := s.CompleteJobs(ctx, []faas.Completion{forged})
			return err
		},
		"StartJobs": func(ctx context.Context, s faas.Store) error {
			_, err := s.StartJobs(ctx, []faas.Start{{ID: job.ID, Attempt: 1, Worker: "fake-worker"}})
			return err
		},
		"UserByToken": func(ctx context.Context, s faas.Store) error {
			_, err := s.UserByToken(ctx, alice.TokenHash)
			return err
		},
		"CreateUser": func(ctx context.Context, s faas.Store) error {
			return s.CreateUser(ctx, faas.User{Name: "mallory", TokenHash: "m"})
		},
		"PutFunction": func(ctx context.Context, s faas.Store) error {
			_, _, err := s.PutFunction(ctx, faas.Function{Owner: "alice", Name: "f", Source: "() => 'pwned'", Timeout: time.Second})
			return err
		},
		"StartJob": func(ctx context.Context, s faas.Store) error {
			_, err := s.StartJob(ctx, job.ID, 1, "fake-worker")
			return err
		},
		"PendingJobs": func(ctx context.Context, s faas.Store) error { _, err := s.PendingJobs(ctx, "", 1); return err },
	}
	jqCalls := map[string]func(context.Context, faas.JobQueue) error{
		"Next": func(ctx context.Context, q faas.JobQueue) error {
			_, err := q.Next(ctx, "fake-worker", 1, 0)
			return err
		},
		"Submit": func(ctx context.Context, q faas.JobQueue) error {
			_, err := q.Submit(ctx, faas.Job{ID: "job-x", Owner: "alice", Function: "f"})
			return err
		},
		"Forget": func(ctx context.Context, q faas.JobQueue) error { return q.Forget(ctx, job.ID) },
		"FunctionChanged": func(ctx context.Context, q faas.JobQueue) error {
			return q.FunctionChanged(ctx, "alice", "f")
		},
		"ForgetUser": func(ctx context.Context, q faas.JobQueue) error { return q.ForgetUser(ctx, "alice") },
		"Stats":      func(ctx context.Context, q faas.JobQueue) error { _, err := q.Stats(ctx); return err },
		"Status":     func(ctx context.Context, q faas.JobQueue) error { _, err := q.Status(ctx, job.ID); return err },
		// A lease nobody holds: a worker's forged child job is refused
		// by the queue, anyone else's by the table.
		"SubmitChild": func(ctx context.Context, q faas.JobQueue) error {
			_, err := q.SubmitChild(ctx, "fake-worker", faas.Lease{ID: job.ID, Attempt: 1}, faas.Job{ID: "job-c", Owner: "alice", Function: "f"})
			return err
		},
	}
	// The attacks run in parallel; the group ends when all have.
	t.Run("attacks", func(t *testing.T) {
		for _, tc := range []struct {
			who   caller
			db    []string
			jq    []string
			wantC faas.Code
		}{
			{plaintext, []string{"DeleteUser", "PurgeJobs", "UserByToken"}, []string{"Next", "Stats"}, faas.Unavailable},
			{stranger, []string{"DeleteUser", "CompleteJob", "CreateUser"}, []string{"Next", "Submit"}, faas.Unavailable},
			{as(bus.Scaler), []string{"UserByToken", "PendingJobs"}, nil, faas.Unavailable}, // the DB manager does not take the scaler at all
			{as(bus.Scaler), nil, []string{"Next", "Submit", "Forget", "ForgetUser", "Status", "SubmitChild", "FunctionChanged"}, faas.Forbidden},
			{as(bus.Worker), []string{"DeleteUser", "PurgeJobs", "UserByToken", "CreateUser", "PutFunction", "StartJob", "PendingJobs", "CompleteJob", "CompleteJobs", "StartJobs"}, []string{"Submit", "Forget", "ForgetUser", "Stats", "Status", "FunctionChanged"}, faas.Forbidden},
			{as(bus.Frontend), []string{"PurgeJobs", "CompleteJob", "CompleteJobs", "StartJob", "StartJobs", "PendingJobs"}, []string{"Next", "SubmitChild"}, faas.Forbidden},
			{as(bus.Worker), nil, []string{"SubmitChild"}, faas.Conflict},
			{as(bus.JQManager), []string{"DeleteUser", "PurgeJobs", "UserByToken", "PutFunction"}, nil, faas.Forbidden},
		} {
			for _, m := range tc.db {
				t.Run(tc.who.name+"/db."+m, func(t *testing.T) {
					t.Parallel()
					err := dbCalls[m](ctxFor(t, time.Second), p.storeAs(t, tc.who))
					require.Equal(t, tc.wantC, faas.ErrorCode(err), "err %v", err)
				})
			}
			for _, m := range tc.jq {
				t.Run(tc.who.name+"/jq."+m, func(t *testing.T) {
					t.Parallel()
					err := jqCalls[m](ctxFor(t, time.Second), p.queueAs(t, tc.who))
					require.Equal(t, tc.wantC, faas.ErrorCode(err), "err %v", err)
				})
			}
		}
	})

	// Nothing changed.
	u, err := p.store.User(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, alice.TokenHash, u.TokenHash)
	_, err = p.store.User(ctx, "mallory")
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	f, err := p.store.Function(ctx, "alice", "f")
	require.NoError(t, err)
	require.Equal(t, fn.Source, f.Source)
	require.Equal(t, fn.Version, f.Version)
	billed, err := p.store.BilledTime(ctx, "alice")
	require.NoError(t, err)
	require.Zero(t, billed)
	j, err := p.store.Job(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Queued, j.State)
	require.Zero(t, j.Attempt)
	require.Empty(t, j.Children, "no forged child job")
	_, err = p.store.Job(ctx, "job-c")
	require.Equal(t, faas.NotFound, faas.ErrorCode(err))
	j, err = p.store.Job(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, faas.Running, j.State)
	require.Empty(t, j.Result)
	st, err := p.jq.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Queued)
}

// TestEveryRoleDoesItsJob is the positive path: each role's key makes the
// calls its component makes, and a job goes through from submission to
// billing with each step made by the role that makes it for real.
func TestEveryRoleDoesItsJob(t *testing.T) {
	t.Parallel()
	p := startPlatform(t)
	ctx := ctxFor(t, 30*time.Second)
	fe, feQueue := p.storeAs(t, as(bus.Frontend)), p.queueAs(t, as(bus.Frontend))
	w, wQueue := p.storeAs(t, as(bus.Worker)), p.queueAs(t, as(bus.Worker))

	require.NoError(t, fe.Ping(ctx))
	require.NoError(t, fe.CreateUser(ctx, faas.User{Name: "bob", TokenHash: "hash-of-bob"}))
	u, err := fe.UserByToken(ctx, "hash-of-bob")
	require.NoError(t, err)
	require.Equal(t, "bob", u.Name)
	_, _, err = fe.PutFunction(ctx, faas.Function{Owner: "bob", Name: "f", Source: "x => x", Timeout: time.Second})
	require.NoError(t, err)
	// The frontend submits; the JQ manager stores it with its own key.
	_, err = feQueue.Submit(ctx, faas.Job{ID: "job-b", Owner: "bob", Function: "f", Args: json.RawMessage("[3]"), Created: time.Now().UTC()})
	require.NoError(t, err)

	leased, err := wQueue.Next(ctx, "w1", 1, time.Second)
	require.NoError(t, err)
	require.Len(t, leased, 1)
	j := leased[0]
	_, err = w.FunctionVersion(ctx, "bob", "f", j.Version)
	require.NoError(t, err)
	lost, err := wQueue.Renew(ctx, "w1", []faas.Lease{{ID: j.ID, Attempt: j.Attempt}})
	require.NoError(t, err)
	require.Empty(t, lost)
	// The worker hands its outcome to the queue, which records it.
	refused, err := wQueue.Complete(ctx, "w1", []faas.Completion{{JobID: j.ID, Attempt: j.Attempt, Result: json.RawMessage("3"), Duration: time.Microsecond}})
	require.NoError(t, err)
	require.Equal(t, []*faas.Error{nil}, refused)

	_, finished, err := feQueue.Wait(ctx, j.ID, 5*time.Second)
	require.NoError(t, err)
	require.True(t, finished)
	got, err := fe.Job(ctx, j.ID)
	require.NoError(t, err)
	require.JSONEq(t, "3", string(got.Result))
	billed, err := fe.BilledTime(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, time.Microsecond, billed)

	_, err = p.queueAs(t, as(bus.Scaler)).Stats(ctx)
	require.NoError(t, err)
	// Maintenance is the admin's.
	_, err = p.storeAs(t, as(bus.Admin)).PurgeJobs(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.NoError(t, fe.DeleteUser(ctx, "bob"))
}

// TestTableNamesRealMethods keeps the table honest: every method it lists
// exists, so a rename on one side cannot silently close a method.
func TestTableNamesRealMethods(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"db.", "jq."} {
		for _, m := range bus.Methods(bus.Admin, prefix) {
			require.True(t, bus.Allowed(string(bus.Admin), m))
		}
	}
	// A worker reads functions; its outcomes go through the JQ manager.
	require.Equal(t, []string{"db.Function", "db.FunctionVersion"}, bus.Methods(bus.Worker, "db."))
	require.Equal(t, []string{"jq.stats"}, bus.Methods(bus.Scaler, "jq."))
	require.Empty(t, bus.Methods(bus.Scaler, "db."))
	require.False(t, bus.Allowed("", dbproxy.MethodPing), "an empty role is no role")
	require.False(t, bus.Allowed(string(bus.Frontend), dbproxy.MethodPurgeJobs))
}

func TestLoadConfig(t *testing.T) {
	ring := bustest.Keyring(t)
	dir := t.TempDir()
	require.NoError(t, ring.Write(dir))
	info, err := os.Stat(filepath.Join(dir, "worker.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "secret keys are for their owner only")
	require.Error(t, ring.Write(dir), "a second run must not overwrite keys in use")

	env := func(kv ...string) {
		for _, k := range []string{"FAAS_BUS_INSECURE", "FAAS_BUS_KEY", "FAAS_BUS_KEY_FILE", "FAAS_DB_PUBLIC_KEY", "FAAS_JQ_PUBLIC_KEY", "FAAS_DB_PUBLIC_KEY_FILE", "FAAS_JQ_PUBLIC_KEY_FILE", "FAAS_BUS_CLIENTS", "FAAS_BUS_CLIENTS_FILE"} {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
		for _, e := range kv {
			k, v, _ := strings.Cut(e, "=")
			t.Setenv(k, v)
		}
	}
	fromFile := func(role string) []string {
		b, err := os.ReadFile(filepath.Join(dir, role+".env"))
		require.NoError(t, err)
		require.NotContains(t, string(b), string(ring[bus.Role(role)].Secret), "an env file names the key file, never the key")
		return strings.Fields(string(b))
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string // error substring; "" for success
	}{
		{"nothing", nil, "no bus key"},
		{"insecure", []string{"FAAS_BUS_INSECURE=1"}, ""},
		{"the manager's env file", fromFile("dbmanager"), ""},
		{"a worker's env file", fromFile("worker"), ""},
		{"a short key", []string{"FAAS_BUS_KEY=abc"}, "3 characters"},
		{"both key and file", []string{"FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret), "FAAS_BUS_KEY_FILE=" + filepath.Join(dir, "worker.key")}, "want one"},
		{"a missing key file", []string{"FAAS_BUS_KEY_FILE=" + filepath.Join(dir, "nope.key")}, "no such file"},
		{"an unknown role", []string{"FAAS_BUS_KEY=" + string(ring[bus.DBManager].Secret), "FAAS_BUS_CLIENTS=root:" + ring[bus.Admin].Public}, `role "root"`},
		{"a bad client key", []string{"FAAS_BUS_KEY=" + string(ring[bus.DBManager].Secret), "FAAS_BUS_CLIENTS=worker:xyz"}, `"xyz"`},
		{"a bad public key", []string{"FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret), "FAAS_DB_PUBLIC_KEY=short"}, "FAAS_DB_PUBLIC_KEY"},
		{"a public key and its file", []string{"FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret), "FAAS_JQ_PUBLIC_KEY=" + ring[bus.JQManager].Public, "FAAS_JQ_PUBLIC_KEY_FILE=" + filepath.Join(dir, "jqmanager.pub")}, "both FAAS_JQ_PUBLIC_KEY and FAAS_JQ_PUBLIC_KEY_FILE"},
		{"a missing public key file", []string{"FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret), "FAAS_DB_PUBLIC_KEY_FILE=" + filepath.Join(dir, "nope.pub")}, "FAAS_DB_PUBLIC_KEY_FILE"},
		{"a secret key as public key file", []string{"FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret), "FAAS_DB_PUBLIC_KEY_FILE=" + filepath.Join(dir, "worker.env")}, "FAAS_DB_PUBLIC_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env(tc.env...)
			c, err := bus.LoadConfig()
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				require.NotContains(t, err.Error(), string(ring[bus.Worker].Secret))
				return
			}
			require.NoError(t, err)
			require.NotContains(t, slogged(c), string(ring[bus.Worker].Secret))
			require.NotContains(t, slogged(c), string(ring[bus.DBManager].Secret))
		})
	}

	// A manager needs client keys; a client needs the manager's key.
	env("FAAS_BUS_KEY=" + string(ring[bus.Worker].Secret))
	c, err := bus.LoadConfig()
	require.NoError(t, err)
	_, err = c.Server()
	require.ErrorContains(t, err, "FAAS_BUS_CLIENTS is empty")
	_, err = c.DialJQ()
	require.ErrorContains(t, err, "FAAS_JQ_PUBLIC_KEY is empty")
	_, err = c.WorkerEnv()
	require.ErrorContains(t, err, "FAAS_WORKER_BUS_KEY_FILE is empty")

	// Compose hands every key over as a file: the manager its clients, the
	// client the managers' public keys.
	env("FAAS_BUS_KEY_FILE="+filepath.Join(dir, "dbmanager.key"), "FAAS_BUS_CLIENTS_FILE="+filepath.Join(dir, "dbmanager.clients"))
	c, err = bus.LoadConfig()
	require.NoError(t, err)
	server, err := c.Server()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		ring[bus.JQManager].Public: "jqmanager", ring[bus.Frontend].Public: "frontend",
		ring[bus.Worker].Public: "worker", ring[bus.Admin].Public: "admin",
	}, server.Clients, "the DB manager's clients file: every role that calls it, and not the scaler")
	env("FAAS_BUS_KEY_FILE="+filepath.Join(dir, "worker.key"),
		"FAAS_DB_PUBLIC_KEY_FILE="+filepath.Join(dir, "dbmanager.pub"), "FAAS_JQ_PUBLIC_KEY_FILE="+filepath.Join(dir, "jqmanager.pub"))
	c, err = bus.LoadConfig()
	require.NoError(t, err)
	db, err := c.DialDB()
	require.NoError(t, err)
	require.Equal(t, ring[bus.DBManager].Public, db.ServerKey)
	jq, err := c.DialJQ()
	require.NoError(t, err)
	require.Equal(t, ring[bus.JQManager].Public, jq.ServerKey)

	// A scaler starting workers hands them the worker's key, not its own.
	env(fromFile("scaler")...)
	c, err = bus.LoadConfig()
	require.NoError(t, err)
	workerEnv, err := c.WorkerEnv()
	require.NoError(t, err)
	require.Contains(t, workerEnv, "FAAS_BUS_KEY_FILE="+filepath.Join(dir, "worker.key"))
	require.Contains(t, workerEnv, "FAAS_BUS_KEY=")
}

// slogged is how a Config would show in a log line.
func slogged(v any) string {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cfg", v)
	return b.String()
}
