// Package sqlite is the embedded default faas.Store: one SQLite database
// file inside the DB manager's data directory, so the platform runs on one
// machine with no database server. SQLite's own C library is compiled into
// the binary (github.com/mattn/go-sqlite3), which the platform links with
// cgo anyway for ZeroMQ: against the same library translated to Go
// (modernc.org/sqlite), which the store used before, it takes 15-35% less
// CPU for a single statement and 2-13% less per row of a batched write.
//
// All writes go through a single connection: SQLite admits one writer at a
// time anyway, and queueing writers in Go instead of in SQLite's busy
// handler keeps them fair and free of SQLITE_BUSY. Reads use a separate
// pool, which WAL mode lets run beside the writer. Every hot path
// (CreateJob, StartJob, CompleteJob, Job, UserByToken) is one statement
// when it succeeds; completion and billing are one statement through a
// trigger. Only the unusual answers (a retry, a conflict) take an explicit
// transaction to decide.
//
// The one-row writes of concurrent requests are committed together (group
// commit, batch.go): under load most of a WAL commit's work is rewriting
// the same pages, so one transaction for the writes already waiting saves
// it, while a write that comes alone still commits at once.
//
// With synchronous=NORMAL a commit survives the process being killed at any
// point; only a power loss may drop the last transactions, never corrupt the
// file.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"faas/dbmanager/internal/lifecycle"
	"faas/proxies/faas"
)

// FileName is the database file inside the data directory.
const FileName = "faas.db"

// busyTimeout is how long a connection waits for another process's lock,
// which only happens if someone opens the file beside the DB manager.
const busyTimeout = 5 * time.Second

var _ faas.Store = (*Store)(nil)

// Store is a faas.Store over one SQLite database file.
type Store struct {
	writer *sql.DB
	reader *sql.DB
	stmts  statements

	// writes feeds the batcher, which commits concurrent one-row writes
	// together; closing stops it, and batcherDone says it has stopped.
	writes      chan []*rowWrite
	closing     chan struct{}
	closeOnce   sync.Once
	batcherDone chan struct{}
	// commits and batched count the batcher's transactions and the
	// writes they held, for the DB manager's metrics.
	commits, batched atomic.Uint64
}

// schema is idempotent so that Open can run it on every start. Times are
// Unix microseconds, durations nanoseconds, 0 meaning unset. The users table
// keeps each user's billed total; a trigger adds a job's billed time to it
// within the statement that finishes the job, so billing and completion are
// one atomic statement, and deleting a job never refunds it. Foreign keys
// cascade a user's deletion to their functions and jobs.
//
// The versions table keeps every function version a job may still run:
// triggers copy each version stored in functions into it, drop the versions
// a replacement leaves that no queued or running job was submitted with,
// and drop all of a deleted function's versions. So PutFunction and
// DeleteFunction stay one statement each. Versions whose last pending job
// finished after the replacement go at the next purge.
//
// The jobs_history index lists a user's jobs newest first a page at a
// time, and, its first column being the owner, serves the cascade of a
// user's deletion; its columns never change, so it costs an insert and a
// delete one more index entry each and a job's transitions nothing. The
// partial index jobs_unfinished holds the jobs not finished yet, by
// function version: it finds the pending jobs of a version for the
// triggers and the purge above, and lists every pending job for
// PendingJobs. It holds the jobs whose finish time is unset, which are
// exactly the queued and running ones, rather than naming the states: an
// update that changes a column a partial index's condition names moves the
// row's entry even when it stays in, and every start changes the state,
// while only the one update that finishes a job sets its finish time. So a
// start writes the jobs row alone, and a create two index entries. (An
// index of every job by version, jobs_version, used to do the finding: one
// more entry per create, and one per job kept, for the few pending ones.)
const schema = `
CREATE TABLE IF NOT EXISTS users (
	name       TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	created    INTEGER NOT NULL,
	billed     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS functions (
	owner     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	source    TEXT NOT NULL,
	version   INTEGER NOT NULL,
	timeout   INTEGER NOT NULL,
	memory_mb INTEGER NOT NULL,
	updated   INTEGER NOT NULL,
	settings  TEXT NOT NULL DEFAULT '',
	created   INTEGER NOT NULL DEFAULT 0,
	concurrency INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (owner, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
	id       TEXT PRIMARY KEY,
	owner    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	function TEXT NOT NULL,
	version  INTEGER NOT NULL,
	args     BLOB NOT NULL,
	state    TEXT NOT NULL,
	attempt  INTEGER NOT NULL,
	worker   TEXT NOT NULL,
	created  INTEGER NOT NULL,
	started  INTEGER NOT NULL,
	finished INTEGER NOT NULL,
	result   BLOB,
	error    TEXT,
	duration INTEGER NOT NULL,
	billed   INTEGER NOT NULL,
	logs     TEXT NOT NULL,
	lost     TEXT,
	trace    TEXT NOT NULL DEFAULT '',
	streams  TEXT NOT NULL DEFAULT '',
	concurrency INTEGER NOT NULL DEFAULT 0,
	triggered_by TEXT NOT NULL DEFAULT '',
	parent   TEXT NOT NULL DEFAULT '',
	calls    TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
DROP INDEX IF EXISTS jobs_owner;
CREATE INDEX IF NOT EXISTS jobs_history ON jobs(owner, created, id);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs(owner, function, version, created, id) WHERE finished = 0;
CREATE INDEX IF NOT EXISTS jobs_failed ON jobs(created, id) WHERE state = 'failed';
CREATE TRIGGER IF NOT EXISTS jobs_bill AFTER UPDATE OF billed ON jobs WHEN NEW.billed <> OLD.billed
BEGIN
	UPDATE users SET billed = billed + NEW.billed - OLD.billed WHERE name = NEW.owner;
END;
CREATE TABLE IF NOT EXISTS finished (
	outcome TEXT PRIMARY KEY,
	jobs    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS jobs_finished AFTER UPDATE OF state ON jobs
	WHEN NEW.state IN ('succeeded', 'failed') AND OLD.state IN ('queued', 'running')
BEGIN
	INSERT INTO finished (outcome, jobs) VALUES (` + outcomeSQL + `, 1)
	ON CONFLICT (outcome) DO UPDATE SET jobs = jobs + 1;
END;
CREATE TABLE IF NOT EXISTS versions (
	owner     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	version   INTEGER NOT NULL,
	source    TEXT NOT NULL,
	timeout   INTEGER NOT NULL,
	memory_mb INTEGER NOT NULL,
	updated   INTEGER NOT NULL,
	settings  TEXT NOT NULL DEFAULT '',
	created   INTEGER NOT NULL DEFAULT 0,
	concurrency INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (owner, name, version)
) WITHOUT ROWID;
` + versionTriggers + `
CREATE TABLE IF NOT EXISTS hooks (
	hash     TEXT PRIMARY KEY,
	id       TEXT NOT NULL,
	owner    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	function TEXT NOT NULL,
	created  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hooks_function ON hooks(owner, function, id);
CREATE TRIGGER IF NOT EXISTS hooks_function_deleted AFTER DELETE ON functions
BEGIN
	DELETE FROM hooks WHERE owner = OLD.owner AND function = OLD.name;
END;
CREATE TABLE IF NOT EXISTS schedules (
	owner     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	function  TEXT NOT NULL,
	cron      TEXT NOT NULL,
	timezone  TEXT NOT NULL,
	args      BLOB NOT NULL,
	updated   INTEGER NOT NULL,
	last_tick INTEGER NOT NULL,
	PRIMARY KEY (owner, function)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS schedules_function_deleted AFTER DELETE ON functions
BEGIN
	DELETE FROM schedules WHERE owner = OLD.owner AND function = OLD.name;
END;
CREATE TABLE IF NOT EXISTS subscriptions (
	owner    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	topic    TEXT NOT NULL,
	function TEXT NOT NULL,
	created  INTEGER NOT NULL,
	PRIMARY KEY (owner, topic, function)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_function ON subscriptions(owner, function);
CREATE TRIGGER IF NOT EXISTS subscriptions_function_deleted AFTER DELETE ON functions
BEGIN
	DELETE FROM subscriptions WHERE owner = OLD.owner AND function = OLD.name;
END;
CREATE TRIGGER IF NOT EXISTS functions_deleted AFTER DELETE ON functions
BEGIN
	DELETE FROM versions WHERE owner = OLD.owner AND name = OLD.name;
END;
`

// outcomeSQL is faas.Outcome of the row NEW in a trigger on jobs.
const outcomeSQL = `CASE WHEN NEW.error IS NULL THEN '` + faas.OutcomeOK + `' ELSE json_extract(NEW.error, '$.code') END`

// versionTriggers copy each version stored in functions into versions.
// The settings migration recreates them, so they are written once here.
const versionTriggers = `
CREATE TRIGGER IF NOT EXISTS functions_created AFTER INSERT ON functions
BEGIN
	INSERT OR REPLACE INTO versions (owner, name, version, source, timeout, memory_mb, updated, settings, created, concurrency)
	VALUES (NEW.owner, NEW.name, NEW.version, NEW.source, NEW.timeout, NEW.memory_mb, NEW.updated, NEW.settings, NEW.created, NEW.concurrency);
END;
CREATE TRIGGER IF NOT EXISTS functions_replaced AFTER UPDATE ON functions
BEGIN
	INSERT OR REPLACE INTO versions (owner, name, version, source, timeout, memory_mb, updated, settings, created, concurrency)
	VALUES (NEW.owner, NEW.name, NEW.version, NEW.source, NEW.timeout, NEW.memory_mb, NEW.updated, NEW.settings, NEW.created, NEW.concurrency);
	DELETE FROM versions WHERE owner = NEW.owner AND name = NEW.name AND version <> NEW.version
		AND NOT EXISTS (` + versionPending + `);
END;`

// migrations bring a database written by an earlier release up to date,
// each once: PRAGMA user_version counts those applied. They run after the
// schema, in one transaction; a database the schema has just created is
// already up to date and gets none. The schema may have created a table an
// older release did not have, so a migration adds a column only where it
// is missing.
var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	// Versions were not kept: keep every current one.
	execSQL(`INSERT OR IGNORE INTO versions (owner, name, version, source, timeout, memory_mb, updated)
		SELECT owner, name, version, source, timeout, memory_mb, updated FROM functions`),
	// Functions had no env or secrets. The triggers that copy them are
	// recreated by the last migration, once every column they name is in.
	func(ctx context.Context, tx *sql.Tx) error {
		for _, table := range []string{"functions", "versions"} {
			if err := addColumn(ctx, tx, table, "settings", "TEXT NOT NULL DEFAULT ''"); err != nil {
				return err
			}
		}
		return nil
	},
	// Creation times were not kept: the last update is the best known.
	// The triggers go first, so that filling the column in functions
	// does not fire them, and come back copying every column.
	func(ctx context.Context, tx *sql.Tx) error {
		if err := execSQL(`DROP TRIGGER IF EXISTS functions_created; DROP TRIGGER IF EXISTS functions_replaced`)(ctx, tx); err != nil {
			return err
		}
		for _, table := range []string{"functions", "versions"} {
			if err := addColumn(ctx, tx, table, "created", "INTEGER NOT NULL DEFAULT 0"); err != nil {
				return err
			}
			if err := execSQL(`UPDATE `+table+` SET created = updated WHERE created = 0`)(ctx, tx); err != nil {
				return err
			}
		}
		return execSQL(versionTriggers)(ctx, tx)
	},
	// Jobs had no trace context.
	func(ctx context.Context, tx *sql.Tx) error {
		return addColumn(ctx, tx, "jobs", "trace", "TEXT NOT NULL DEFAULT ''")
	},
	// Finished jobs kept their output's text but not its lines' streams.
	func(ctx context.Context, tx *sql.Tx) error {
		return addColumn(ctx, tx, "jobs", "streams", "TEXT NOT NULL DEFAULT ''")
	},
	// Functions had no concurrency limit, and jobs did not carry it. The
	// triggers copy the new column, so they are recreated once it is in.
	func(ctx context.Context, tx *sql.Tx) error {
		if err := execSQL(`DROP TRIGGER IF EXISTS functions_created; DROP TRIGGER IF EXISTS functions_replaced`)(ctx, tx); err != nil {
			return err
		}
		for _, table := range []string{"functions", "versions", "jobs"} {
			if err := addColumn(ctx, tx, table, "concurrency", "INTEGER NOT NULL DEFAULT 0"); err != nil {
				return err
			}
		}
		return execSQL(versionTriggers)(ctx, tx)
	},
	// Finished jobs were not counted: count those still kept, the best
	// known (purged ones are gone).
	execSQL(`INSERT INTO finished (outcome, jobs)
		SELECT ` + strings.ReplaceAll(outcomeSQL, "NEW.", "") + `, count(*) FROM jobs
		WHERE state IN ('succeeded', 'failed') GROUP BY 1`),
	// Jobs had no trigger. The column is not named trigger, a keyword.
	func(ctx context.Context, tx *sql.Tx) error {
		return addColumn(ctx, tx, "jobs", "triggered_by", "TEXT NOT NULL DEFAULT ''")
	},
	// Jobs had no parent (faas.submit) and no record of fused calls.
	func(ctx context.Context, tx *sql.Tx) error {
		for _, column := range []string{"parent", "calls"} {
			if err := addColumn(ctx, tx, "jobs", column, "TEXT NOT NULL DEFAULT ''"); err != nil {
				return err
			}
		}
		return nil
	},
	// Pending jobs were indexed by state, which every start changes, and
	// every job by function version; the schema has created
	// jobs_unfinished in place of both. The triggers that look pending
	// jobs up by version come back looking in it.
	func(ctx context.Context, tx *sql.Tx) error {
		if err := execSQL(`DROP INDEX IF EXISTS jobs_pending; DROP INDEX IF EXISTS jobs_version;
			DROP TRIGGER IF EXISTS functions_created; DROP TRIGGER IF EXISTS functions_replaced`)(ctx, tx); err != nil {
			return err
		}
		return execSQL(versionTriggers)(ctx, tx)
	},
}

// indexes are the indexes on columns a migration may have added: they go
// in after the migrations, on every start, since the schema runs before
// the migrations and cannot name such a column. jobs_parent finds a job's
// children; only child jobs are in it, so other jobs cost it nothing.
const indexes = `
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs(parent, created, id) WHERE parent <> '';
`

func execSQL(q string) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
}

// addColumn adds a column to table unless it has it.
func addColumn(ctx context.Context, tx *sql.Tx, table, column, decl string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, column, decl))
	return err
}

// migrate applies the migrations db has not had yet; fresh says the schema
// has just created the database.
func migrate(ctx context.Context, db *sql.DB, fresh bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var applied int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&applied); err != nil {
		return err
	}
	if applied >= len(migrations) {
		return nil
	}
	if fresh {
		applied = len(migrations)
	}
	for _, m := range migrations[applied:] {
		if err := m(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return err
	}
	return tx.Commit()
}

// versionPending selects a queued or running job submitted with the
// version of the versions row at hand. Its finished = 0 matches the partial
// index jobs_unfinished, which it searches by version; the states are
// checked as well, so that the answer does not rest on the index.
const versionPending = `SELECT 1 FROM jobs WHERE jobs.owner = versions.owner
	AND jobs.function = versions.name AND jobs.version = versions.version
	AND jobs.finished = 0 AND jobs.state IN ('queued', 'running')`

// Open opens (creating if needed) the database in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	writer, err := openDB(path, "immediate", 1)
	if err != nil {
		return nil, err
	}
	// The schema goes in before the readers open, so they see it.
	var tables int
	if err := writer.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil {
		writer.Close()
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	if _, err := writer.ExecContext(ctx, schema); err != nil {
		writer.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	if err := migrate(ctx, writer, tables == 0); err != nil {
		writer.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if _, err := writer.ExecContext(ctx, indexes); err != nil {
		writer.Close()
		return nil, fmt.Errorf("create indexes in %s: %w", path, err)
	}
	reader, err := openDB(path, "deferred", max(4, runtime.GOMAXPROCS(0)))
	if err != nil {
		writer.Close()
		return nil, err
	}
	s := &Store{writer: writer, reader: reader,
		writes: make(chan []*rowWrite), closing: make(chan struct{}), batcherDone: make(chan struct{})}
	go s.batchWrites()
	if err := s.stmts.prepare(ctx, writer, reader); err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare statements: %w", err)
	}
	return s, nil
}

// pragmas set up every connection, in the driver's connect hook: the
// driver's DSN names only some of them.
var pragmas = []string{
	fmt.Sprintf("busy_timeout = %d", busyTimeout.Milliseconds()),
	"journal_mode = WAL",
	"synchronous = NORMAL",
	"foreign_keys = 1",
	// Reads from the mapped file skip a system call per page.
	"mmap_size = 268435456",
}

func init() {
	sql.Register("faas-sqlite3", &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, p := range pragmas {
			if _, err := c.Exec("PRAGMA "+p, nil); err != nil {
				return fmt.Errorf("PRAGMA %s: %w", p, err)
			}
		}
		return nil
	}})
}

func openDB(path, txlock string, conns int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_txlock", txlock)
	db, err := sql.Open("faas-sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.batcherDone
	s.stmts.close()
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.reader.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// in returns stmt bound to tx; a statement prepared on the writer keeps its
// preparation.
func in(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, stmt) }

// CreateUser adds a user, never overwriting one.
func (s *Store) CreateUser(ctx context.Context, u faas.User) error {
	u, err := lifecycle.User(u)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := in(ctx, tx, s.stmts.createUser).ExecContext(ctx, u.Name, u.TokenHash, lifecycle.Micros(u.Created))
		if err != nil {
			return fmt.Errorf("create user %s: %w", u.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("create user %s: %w", u.Name, err)
		} else if n == 1 {
			return nil
		}
		existing, err := s.user(ctx, in(ctx, tx, s.stmts.userW), u.Name)
		return lifecycle.ExistingUser(u, existing, err)
	})
}

// User returns a user by name.
func (s *Store) User(ctx context.Context, name string) (faas.User, error) {
	return s.user(ctx, s.stmts.user, name)
}

func (s *Store) user(ctx context.Context, stmt *sql.Stmt, name string) (faas.User, error) {
	return queryOne(ctx, stmt, scanUser, lifecycle.UserNotFound(name), name)
}

// queryOne runs a statement that returns one row, answering missing when
// it returns none.
func queryOne[T any](ctx context.Context, stmt *sql.Stmt, scan func(scanner) (T, error), missing error, args ...any) (T, error) {
	ctx, err := short(ctx)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("read %v: %w", args, err)
	}
	v, err := scan(stmt.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, missing
	}
	if err != nil {
		return v, fmt.Errorf("read %v: %w", args, err)
	}
	return v, nil
}

// UserByToken returns the user whose token hashes to tokenHash.
func (s *Store) UserByToken(ctx context.Context, tokenHash string) (faas.User, error) {
	return queryOne(ctx, s.stmts.userByToken, scanUser, faas.Errorf(faas.NotFound, "no user has this token"), tokenHash)
}

func scanUser(row scanner) (faas.User, error) {
	var u faas.User
	var created int64
	err := row.Scan(&u.Name, &u.TokenHash, &created)
	u.Created = lifecycle.Time(created)
	return u, err
}

// SetTokenHash replaces a user's token hash in one statement, which
// refuses a hash another user has; when it changes nothing, the user is
// looked up to tell why.
func (s *Store) SetTokenHash(ctx context.Context, name, tokenHash string) error {
	if err := lifecycle.TokenHash(name, tokenHash); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := in(ctx, tx, s.stmts.setTokenHash).ExecContext(ctx, name, tokenHash)
		if err != nil {
			return fmt.Errorf("set token of user %s: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("set token of user %s: %w", name, err)
		} else if n == 1 {
			return nil
		}
		if _, err := s.user(ctx, in(ctx, tx, s.stmts.userW), name); err != nil {
			return err
		}
		return lifecycle.TokenTaken(name)
	})
}

// DeleteUser removes a user; the foreign keys take their functions and jobs
// along in the same statement.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteOne(ctx, s.stmts.deleteUser, "user "+name, lifecycle.UserNotFound(name), name)
}

// BilledTime is the user's billed total.
func (s *Store) BilledTime(ctx context.Context, name string) (time.Duration, error) {
	var billed int64
	err := s.stmts.billedTime.QueryRowContext(ctx, name).Scan(&billed)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, lifecycle.UserNotFound(name)
	}
	if err != nil {
		return 0, fmt.Errorf("read billed time of %s: %w", name, err)
	}
	return time.Duration(billed), nil
}

// PutFunction creates or replaces a function. Replacing it with what it
// already holds changes nothing, so a retried upload does not bump the
// version.
func (s *Store) PutFunction(ctx context.Context, f faas.Function) (stored faas.Function, created bool, err error) {
	f, err = lifecycle.Function(f)
	if err != nil {
		return f, false, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.user(ctx, in(ctx, tx, s.stmts.userW), f.Owner); err != nil {
			return err
		}
		old, err := scanFunction(in(ctx, tx, s.stmts.function).QueryRowContext(ctx, f.Owner, f.Name))
		f = lifecycle.KeepSettings(old, f)
		switch {
		case err == nil && lifecycle.SameFunction(old, f):
			stored = lifecycle.Redacted(old)
			return nil
		case errors.Is(err, sql.ErrNoRows):
			created = true
		case err != nil:
			return fmt.Errorf("put function %s: %w", f.Name, err)
		}
		f.Version = lifecycle.NextVersion(old.Version, f.Updated)
		f.Created = lifecycle.Created(old, created, f.Updated)
		_, err = in(ctx, tx, s.stmts.putFunction).ExecContext(ctx,
			f.Owner, f.Name, f.Source, f.Version, int64(f.Timeout), f.MemoryMB, lifecycle.Micros(f.Updated), lifecycle.EncodeSettings(f),
			lifecycle.Micros(f.Created), f.Concurrency)
		if err != nil {
			return fmt.Errorf("put function %s: %w", f.Name, err)
		}
		stored = lifecycle.Redacted(f)
		return nil
	})
	return stored, created, err
}

// Function returns one function.
func (s *Store) Function(ctx context.Context, owner, name string) (faas.Function, error) {
	f, err := queryOne(ctx, s.stmts.readFunction, scanFunction, lifecycle.FunctionNotFound(owner, name), owner, name)
	return lifecycle.Redacted(f), err
}

// FunctionVersion returns one kept version of a function.
func (s *Store) FunctionVersion(ctx context.Context, owner, name string, version int64) (faas.Function, error) {
	return queryOne(ctx, s.stmts.readVersion, scanFunction, lifecycle.VersionNotFound(owner, name, version), owner, name, version)
}

// Functions lists a page of a user's functions by name.
func (s *Store) Functions(ctx context.Context, owner string, page faas.FunctionPage) ([]faas.Function, error) {
	if err := lifecycle.Page(page); err != nil {
		return nil, err
	}
	limit := int64(page.Limit)
	if limit == 0 {
		limit = -1 // SQLite's no limit
	}
	rows, err := s.stmts.functions.QueryContext(ctx, owner, page.After, page.NoSource, limit)
	if err != nil {
		return nil, fmt.Errorf("list functions of %s: %w", owner, err)
	}
	return collect(rows, func(row scanner) (faas.Function, error) {
		f, err := scanFunction(row)
		return lifecycle.Redacted(f), err
	})
}

// collect scans every row.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	all := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("scan rows: %w", err)
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan rows: %w", err)
	}
	return all, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanFunction(row scanner) (faas.Function, error) {
	var f faas.Function
	var timeout, updated, created int64
	var settings string
	err := row.Scan(&f.Owner, &f.Name, &f.Source, &f.Version, &timeout, &f.MemoryMB, &updated, &settings, &created, &f.Concurrency)
	if err != nil {
		return f, err
	}
	f.Timeout, f.Updated, f.Created = time.Duration(timeout), lifecycle.Time(updated), lifecycle.Time(created)
	return lifecycle.DecodeSettings(f, settings)
}

// DeleteFunction removes a function, and through the functions_deleted
// trigger its versions. Its jobs stay: they are the user's record of what
// ran and what it cost.
func (s *Store) DeleteFunction(ctx context.Context, owner, name string) error {
	return s.deleteOne(ctx, s.stmts.deleteFunction, "function "+name, lifecycle.FunctionNotFound(owner, name), owner, name)
}

// CreateHook inserts a hook in one statement that also checks that its
// function exists; when it inserts nothing, the stored hook, if any, tells
// a retry from a missing function.
func (s *Store) CreateHook(ctx context.Context, h faas.Hook) error {
	h, err := lifecycle.Hook(h)
	if err != nil {
		return err
	}
	res, err := s.writer.ExecContext(ctx, `INSERT INTO hooks (hash, id, owner, function, created)
		SELECT ?1, ?2, owner, name, ?5 FROM functions WHERE owner = ?3 AND name = ?4
		ON CONFLICT DO NOTHING`, h.Hash, h.ID, h.Owner, h.Function, lifecycle.Micros(h.Created))
	if err != nil {
		return fmt.Errorf("create hook %s: %w", h.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	existing, err := s.HookByHash(ctx, h.Hash)
	if faas.ErrorCode(err) == faas.NotFound {
		return lifecycle.FunctionNotFound(h.Owner, h.Function)
	}
	if err != nil {
		return err
	}
	return lifecycle.ExistingHook(h, existing)
}

const hookColumns = `hash, id, owner, function, created`

func scanHook(row scanner) (faas.Hook, error) {
	var h faas.Hook
	var created int64
	err := row.Scan(&h.Hash, &h.ID, &h.Owner, &h.Function, &created)
	h.Created = lifecycle.Time(created)
	return h, err
}

// HookByHash reads a hook by its key.
func (s *Store) HookByHash(ctx context.Context, hash string) (faas.Hook, error) {
	h, err := scanHook(s.reader.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return h, lifecycle.HookNotFound(hash)
	}
	if err != nil {
		return h, fmt.Errorf("read hook: %w", err)
	}
	return h, nil
}

// Hooks lists a function's hooks through the hooks_function index.
func (s *Store) Hooks(ctx context.Context, owner, function string) ([]faas.Hook, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+hookColumns+` FROM hooks
		WHERE owner = ? AND function = ? ORDER BY created, id`, owner, function)
	if err != nil {
		return nil, fmt.Errorf("list hooks of %s/%s: %w", owner, function, err)
	}
	return collect(rows, scanHook)
}

// DeleteHook revokes a hook by its function and ID.
func (s *Store) DeleteHook(ctx context.Context, owner, function, id string) error {
	return s.deleteOne(ctx, s.stmts.deleteHook, "hook "+id, lifecycle.HookNotFound(id), owner, function, id)
}

// PutSchedule upserts a schedule in one statement that also checks that
// its function exists: when it writes nothing, the function is missing.
func (s *Store) PutSchedule(ctx context.Context, sc faas.Schedule) (faas.Schedule, error) {
	sc, err := lifecycle.Schedule(sc)
	if err != nil {
		return sc, err
	}
	res, err := s.writer.ExecContext(ctx, `INSERT INTO schedules (owner, function, cron, timezone, args, updated, last_tick)
		SELECT owner, name, ?3, ?4, ?5, ?6, 0 FROM functions WHERE owner = ?1 AND name = ?2
		ON CONFLICT (owner, function) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
			args = excluded.args, updated = excluded.updated, last_tick = 0`,
		sc.Owner, sc.Function, sc.Cron, sc.Timezone, []byte(sc.Args), lifecycle.Micros(sc.Updated))
	if err != nil {
		return sc, fmt.Errorf("put schedule of %s/%s: %w", sc.Owner, sc.Function, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = lifecycle.FunctionNotFound(sc.Owner, sc.Function)
	}
	return sc, err
}

const scheduleColumns = `owner, function, cron, timezone, args, updated, last_tick`

func scanSchedule(row scanner) (faas.Schedule, error) {
	var sc faas.Schedule
	var args []byte
	var updated, last int64
	err := row.Scan(&sc.Owner, &sc.Function, &sc.Cron, &sc.Timezone, &args, &updated, &last)
	sc.Args, sc.Updated = json.RawMessage(args), lifecycle.Time(updated)
	if last != 0 {
		sc.LastTick = lifecycle.Time(last)
	}
	return sc, err
}

// Schedule reads a function's schedule.
func (s *Store) Schedule(ctx context.Context, owner, function string) (faas.Schedule, error) {
	sc, err := scanSchedule(s.reader.QueryRowContext(ctx, `SELECT `+scheduleColumns+` FROM schedules
		WHERE owner = ? AND function = ?`, owner, function))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, lifecycle.ScheduleNotFound(owner, function)
	}
	if err != nil {
		return sc, fmt.Errorf("read schedule of %s/%s: %w", owner, function, err)
	}
	return sc, nil
}

// Schedules lists every schedule.
func (s *Store) Schedules(ctx context.Context) ([]faas.Schedule, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+scheduleColumns+` FROM schedules ORDER BY owner, function`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return collect(rows, scanSchedule)
}

// DeleteSchedule removes a function's schedule.
func (s *Store) DeleteSchedule(ctx context.Context, owner, function string) error {
	return s.deleteOne(ctx, s.stmts.deleteSchedule, "schedule of "+function, lifecycle.ScheduleNotFound(owner, function), owner, function)
}

// ScheduleFired moves last_tick forward, fenced by the time the schedule
// was put.
func (s *Store) ScheduleFired(ctx context.Context, owner, function string, updated, tick time.Time) error {
	_, err := s.writer.ExecContext(ctx, `UPDATE schedules SET last_tick = ?4
		WHERE owner = ?1 AND function = ?2 AND updated = ?3 AND last_tick < ?4`,
		owner, function, lifecycle.Micros(updated), lifecycle.Micros(tick))
	if err != nil {
		return fmt.Errorf("record tick of schedule of %s/%s: %w", owner, function, err)
	}
	return nil
}

// Subscribe inserts a subscription in one statement that also checks
// that its function exists; when it inserts nothing, the function's
// existence tells an existing subscription from a missing function.
func (s *Store) Subscribe(ctx context.Context, sub faas.Subscription) (bool, error) {
	sub, err := lifecycle.Subscription(sub)
	if err != nil {
		return false, err
	}
	res, err := s.writer.ExecContext(ctx, `INSERT INTO subscriptions (owner, topic, function, created)
		SELECT owner, ?3, name, ?4 FROM functions WHERE owner = ?1 AND name = ?2
		ON CONFLICT DO NOTHING`, sub.Owner, sub.Function, sub.Topic, lifecycle.Micros(sub.Created))
	if err != nil {
		return false, fmt.Errorf("subscribe %s to %s: %w", sub.Function, sub.Topic, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, err
	}
	_, err = s.Function(ctx, sub.Owner, sub.Function)
	return false, err
}

// Unsubscribe ends a subscription.
func (s *Store) Unsubscribe(ctx context.Context, owner, function, topic string) error {
	return s.deleteOne(ctx, s.stmts.unsubscribe, "subscription of "+function+" to "+topic,
		lifecycle.SubscriptionNotFound(owner, function, topic), owner, function, topic)
}

// Subscriptions lists owner's subscriptions that match filter, by topic
// then function. Only the fields set go into the query, so that SQLite
// seeks the primary key (owner, topic) or the subscriptions_function
// index instead of filtering every subscription of the owner.
func (s *Store) Subscriptions(ctx context.Context, owner string, filter faas.SubscriptionFilter) ([]faas.Subscription, error) {
	q, args := `SELECT owner, function, topic, created FROM subscriptions WHERE owner = ?`, []any{owner}
	if filter.Topic != "" {
		q, args = q+` AND topic = ?`, append(args, filter.Topic)
	}
	if filter.Function != "" {
		q, args = q+` AND function = ?`, append(args, filter.Function)
	}
	rows, err := s.reader.QueryContext(ctx, q+` ORDER BY topic, function`, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of %s: %w", owner, err)
	}
	return collect(rows, func(row scanner) (faas.Subscription, error) {
		var sub faas.Subscription
		var created int64
		err := row.Scan(&sub.Owner, &sub.Function, &sub.Topic, &created)
		sub.Created = lifecycle.Time(created)
		return sub, err
	})
}

// CreateJob stores a queued job in one statement that also reads the
// function's version and does nothing if the ID exists.
func (s *Store) CreateJob(ctx context.Context, j faas.Job) (faas.Job, error) {
	return s.writeJob(ctx, s.createJob(j))
}

// CreateJobs implements faas.Store: its rows share one commit.
func (s *Store) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	return writeBatch(ctx, s, js, s.createJob)
}

// createJob is the write of CreateJob. When the insert matched nothing,
// the ID exists, the function does not, or it is not at the version the
// job was handed over at (lifecycle.LeasedVersion).
func (s *Store) createJob(j faas.Job) *jobWrite {
	j, err := lifecycle.Job(j)
	if err != nil {
		return &jobWrite{err: err}
	}
	return &jobWrite{what: "create job " + j.ID, stmt: s.stmts.createJob, args: createJobArgs(j),
		scan: func(row scanner) (faas.Job, error) {
			stored := j
			return stored, row.Scan(&stored.Version, &stored.Concurrency)
		},
		refused: func(ctx context.Context, tx *sql.Tx) (faas.Job, error) {
			existing, err := s.job(ctx, in(ctx, tx, s.stmts.jobW), j.ID)
			if faas.ErrorCode(err) == faas.NotFound {
				f, err := queryOne(ctx, in(ctx, tx, s.stmts.function), scanFunction, lifecycle.FunctionNotFound(j.Owner, j.Function), j.Owner, j.Function)
				if err != nil {
					return faas.Job{}, err
				}
				return faas.Job{}, lifecycle.CheckVersion(j, f.Version)
			}
			if err != nil {
				return faas.Job{}, err
			}
			return lifecycle.ExistingJob(existing, j.Owner)
		}}
}

// createJobArgs are the arguments of the createJob statement for a job
// lifecycle.Job has checked.
func createJobArgs(j faas.Job) []any {
	return []any{j.ID, []byte(j.Args), lifecycle.Micros(j.Created), j.Owner, j.Function, j.Trace, j.Trigger, j.Parent,
		string(j.State), j.Attempt, j.Worker, lifecycle.Micros(j.Started), lifecycle.LeasedVersion(j)}
}

// Job returns one job, with its children.
func (s *Store) Job(ctx context.Context, id string) (faas.Job, error) {
	j, err := s.job(ctx, s.stmts.readJob, id)
	if err != nil {
		return j, err
	}
	rows, err := s.stmts.children.QueryContext(ctx, id, faas.MaxChildren)
	if err != nil {
		return faas.Job{}, fmt.Errorf("list children of job %s: %w", id, err)
	}
	j.Children, err = collect(rows, func(row scanner) (child string, err error) { return child, row.Scan(&child) })
	if len(j.Children) == 0 {
		j.Children = nil
	}
	return j, err
}

func (s *Store) job(ctx context.Context, stmt *sql.Stmt, id string) (faas.Job, error) {
	return queryOne(ctx, stmt, scanJob, lifecycle.JobNotFound(id), id)
}

// DeleteJob removes a job; what it was billed stays billed.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	return s.deleteOne(ctx, s.stmts.deleteJob, "job "+id, lifecycle.JobNotFound(id), id)
}

// transition is a conditional update of one job whose row scan makes
// into the job; when it matched nothing, refused decides what the job as
// it is means.
func (s *Store) transition(id string, update *sql.Stmt, args []any, scan func(scanner) (faas.Job, error),
	refused func(context.Context, *sql.Tx, faas.Job) (faas.Job, error)) *jobWrite {
	return &jobWrite{what: "update job " + id, stmt: update, args: args, scan: scan,
		refused: func(ctx context.Context, tx *sql.Tx) (faas.Job, error) {
			j, err := s.job(ctx, in(ctx, tx, s.stmts.jobW), id)
			if err != nil {
				return faas.Job{}, err
			}
			return refused(ctx, tx, j)
		}}
}

// StartJob leases a queued job in one conditional update, which also
// requires the job's function version to be kept.
func (s *Store) StartJob(ctx context.Context, id string, attempt int, worker string) (faas.Job, error) {
	return s.writeJob(ctx, s.startJob(id, attempt, worker))
}

// StartJobs implements faas.Store: its rows share one commit.
func (s *Store) StartJobs(ctx context.Context, starts []faas.Start) ([]faas.JobResult, error) {
	return writeBatch(ctx, s, starts, func(st faas.Start) *jobWrite { return s.startJob(st.ID, st.Attempt, st.Worker) })
}

// startJob is the write of StartJob. A queued job it refused at the right
// attempt has lost its version, and is failed in the transaction that
// decides so, which commits with the refusal.
func (s *Store) startJob(id string, attempt int, worker string) *jobWrite {
	if err := lifecycle.Start(id, attempt, worker); err != nil {
		return &jobWrite{err: err}
	}
	args, scan := startRow(id, attempt, worker, lifecycle.Now())
	return s.transition(id, s.stmts.startJob, args, scan,
		func(ctx context.Context, tx *sql.Tx, j faas.Job) (faas.Job, error) {
			if j.State != faas.Queued || j.Attempt != attempt-1 {
				return lifecycle.StartRefused(j, attempt, worker)
			}
			gone := lifecycle.FunctionGone(j, lifecycle.Now())
			enc, err := json.Marshal(gone.Error)
			if err != nil {
				return faas.Job{}, fmt.Errorf("fail job %s: %w", id, err)
			}
			if _, err := in(ctx, tx, s.stmts.failGone).ExecContext(ctx, lifecycle.Micros(gone.Finished), string(enc), id, j.Attempt); err != nil {
				return faas.Job{}, fmt.Errorf("fail job %s: %w", id, err)
			}
			return faas.Job{}, gone.Error
		})
}

// startRow makes the arguments of the startJob statement, which starts
// the job at now, and the scan of the row it returns into the started job.
func startRow(id string, attempt int, worker string, now time.Time) ([]any, func(scanner) (faas.Job, error)) {
	return []any{attempt, worker, lifecycle.Micros(now), id, attempt - 1},
		func(row scanner) (faas.Job, error) {
			j, err := scanLease(row, id)
			if err != nil {
				return faas.Job{}, err
			}
			return lifecycle.Started(j, attempt, worker, now), nil
		}
}

// RequeueJob returns a running job to the queue in one conditional update.
func (s *Store) RequeueJob(ctx context.Context, id string, attempt int, reason *faas.Error) (faas.Job, error) {
	if err := lifecycle.Requeue(id, attempt, reason); err != nil {
		return faas.Job{}, err
	}
	enc, err := json.Marshal(reason)
	if err != nil {
		return faas.Job{}, fmt.Errorf("requeue job %s: %w", id, err)
	}
	return s.writeJob(ctx, s.transition(id, s.stmts.requeueJob, []any{string(enc), id, attempt}, scanJob,
		func(_ context.Context, _ *sql.Tx, j faas.Job) (faas.Job, error) {
			return lifecycle.RequeueRefused(j, attempt, reason)
		}))
}

// CompleteJob finishes a running job and bills its owner (through the
// jobs_bill trigger) in one statement, so both happen or neither does.
func (s *Store) CompleteJob(ctx context.Context, c faas.Completion) (faas.Job, error) {
	return s.writeJob(ctx, s.completeJob(c))
}

// CompleteJobs implements faas.Store: its rows share one commit, each
// billed by its own statement.
func (s *Store) CompleteJobs(ctx context.Context, cs []faas.Completion) ([]faas.JobResult, error) {
	return writeBatch(ctx, s, cs, s.completeJob)
}

// completeJob is the write of CompleteJob.
func (s *Store) completeJob(c faas.Completion) *jobWrite {
	args, scan, err := completeRow(c, lifecycle.Now())
	if err != nil {
		return &jobWrite{err: err}
	}
	return s.transition(c.JobID, s.stmts.completeJob, args, scan,
		func(_ context.Context, _ *sql.Tx, j faas.Job) (faas.Job, error) {
			return lifecycle.CompleteRefused(j, c.Attempt)
		})
}

// completeRow checks a completion and makes the arguments of the
// completeJob statement, which finishes the job at now, and the scan of
// the row it returns into the finished job.
func completeRow(c faas.Completion, now time.Time) ([]any, func(scanner) (faas.Job, error), error) {
	state, err := lifecycle.Complete(c)
	if err != nil {
		return nil, nil, err
	}
	var jobErr sql.NullString
	if c.Error != nil {
		enc, err := json.Marshal(c.Error)
		if err != nil {
			return nil, nil, fmt.Errorf("complete job %s: %w", c.JobID, err)
		}
		jobErr = sql.NullString{String: string(enc), Valid: true}
	}
	var result []byte
	if len(c.Result) > 0 {
		result = c.Result
	}
	calls, err := encodeCalls(c.Calls, c.CallsTruncated)
	if err != nil {
		return nil, nil, fmt.Errorf("complete job %s: %w", c.JobID, err)
	}
	args := []any{string(state), lifecycle.Micros(now), result, jobErr, int64(c.Duration), int64(c.Duration), c.Logs, c.JobID, c.Attempt, c.Streams, calls}
	return args, func(row scanner) (faas.Job, error) {
		j, err := scanLease(row, c.JobID)
		if err != nil {
			return faas.Job{}, err
		}
		j.State, j.Attempt = faas.Running, c.Attempt
		return lifecycle.Completed(j, c, state, now), nil
	}, nil
}

// pendingKey is where a page of PendingJobs ends in the order of the
// index jobs_unfinished. The zero key comes before every job: no owner's
// name is empty.
type pendingKey struct {
	Owner, Function string
	Version         int64
	Created         int64
	ID              string
}

// PendingJobs lists a page of the queued and running jobs.
func (s *Store) PendingJobs(ctx context.Context, after string, limit int) (faas.PendingPage, error) {
	var key pendingKey
	if err := lifecycle.PendingLimit(limit); err != nil {
		return faas.PendingPage{}, err
	}
	if err := lifecycle.ParseCursor(after, &key); err != nil {
		return faas.PendingPage{}, err
	}
	rows, err := s.stmts.pendingJobs.QueryContext(ctx, key.Owner, key.Function, key.Version, key.Created, key.ID, limit)
	if err != nil {
		return faas.PendingPage{}, fmt.Errorf("list pending jobs: %w", err)
	}
	jobs, err := collect(rows, scanJob)
	if err != nil {
		return faas.PendingPage{}, err
	}
	return lifecycle.PendingPage(jobs, limit, func(j faas.Job) any {
		return pendingKey{Owner: j.Owner, Function: j.Function, Version: j.Version, Created: lifecycle.Micros(j.Created), ID: j.ID}
	}), nil
}

// Jobs lists a page of a user's jobs, newest first.
func (s *Store) Jobs(ctx context.Context, owner string, page faas.JobPage) ([]faas.Job, error) {
	if err := lifecycle.JobPage(page); err != nil {
		return nil, err
	}
	limit := int64(page.Limit)
	if limit == 0 {
		limit = -1 // SQLite's no limit
	}
	// Before the first page is after every job: no creation time reaches
	// the largest integer.
	before := int64(math.MaxInt64)
	if page.BeforeID != "" {
		before = lifecycle.Micros(page.BeforeCreated)
	}
	rows, err := s.stmts.jobs.QueryContext(ctx, owner, before, page.BeforeID, page.Function, string(page.State), limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs of %s: %w", owner, err)
	}
	return collect(rows, scanJob)
}

// FailedJobs lists the newest failed jobs of every user.
func (s *Store) FailedJobs(ctx context.Context, limit int) ([]faas.Job, error) {
	if err := lifecycle.FailedLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.stmts.failedJobs.QueryContext(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed jobs: %w", err)
	}
	return collect(rows, scanJob)
}

// purgeBatch is how many jobs one purge statement deletes, so that the
// writer connection, which every job transition waits for, is never held
// for long however much there is to purge.
const purgeBatch = 1000

// PurgeJobs deletes finished jobs that finished before the cutoff, then
// the function versions that are neither current nor needed by a pending
// job (those whose last job finished after a replacement; there are few).
func (s *Store) PurgeJobs(ctx context.Context, before time.Time) (int, error) {
	n, err := s.purgeFinished(ctx, before)
	if err != nil {
		return n, err
	}
	if _, err := s.stmts.pruneVersions.ExecContext(ctx); err != nil {
		return n, fmt.Errorf("prune function versions: %w", err)
	}
	return n, nil
}

// purgeFinished deletes the finished jobs PurgeJobs purges. It finds
// them on a reader, walking the table in key order a batch at a time, and
// deletes each batch by key on the writer. There is deliberately no index
// on the finish time: keeping one up to date cost every completion about a
// fifth of its time (one more page in each commit), while the walk costs a
// reader one pass over the table per purge. The users' billed totals stay:
// the jobs_bill trigger fires on updates only.
func (s *Store) purgeFinished(ctx context.Context, before time.Time) (int, error) {
	cutoff := before.UnixMicro()
	total, after := 0, ""
	for {
		rows, err := s.stmts.purgeable.QueryContext(ctx, after, cutoff, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("find jobs to purge: %w", err)
		}
		ids, err := collect(rows, func(row scanner) (id string, err error) { return id, row.Scan(&id) })
		if err != nil || len(ids) == 0 {
			return total, err
		}
		batch, err := json.Marshal(ids)
		if err != nil {
			return total, fmt.Errorf("purge jobs: %w", err)
		}
		// The statement checks the state again, so what it deletes is
		// finished whatever the reader saw.
		res, err := s.stmts.purgeJobs.ExecContext(ctx, string(batch), cutoff)
		if err != nil {
			return total, fmt.Errorf("purge jobs: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge jobs: %w", err)
		}
		total += int(n)
		if len(ids) < purgeBatch {
			return total, nil
		}
		after = ids[len(ids)-1]
	}
}

// jobColumns is the column order scanJob reads.
const jobColumns = `id, owner, function, version, args, state, attempt, worker, created, started,
	finished, result, error, duration, billed, logs, lost, trace, streams, concurrency, triggered_by, parent, calls`

func scanJob(row scanner) (faas.Job, error) {
	var j faas.Job
	var args, result []byte
	var state string
	var created, started, finished, duration, billed int64
	var jobErr, lost sql.NullString
	var calls string
	err := row.Scan(&j.ID, &j.Owner, &j.Function, &j.Version, &args, &state, &j.Attempt, &j.Worker,
		&created, &started, &finished, &result, &jobErr, &duration, &billed, &j.Logs, &lost, &j.Trace, &j.Streams, &j.Concurrency, &j.Trigger,
		&j.Parent, &calls)
	if err != nil {
		return faas.Job{}, err
	}
	if calls != "" {
		var rec callRecord
		if err := json.Unmarshal([]byte(calls), &rec); err != nil {
			return faas.Job{}, fmt.Errorf("decode calls of job %s: %w", j.ID, err)
		}
		j.Calls, j.CallsTruncated = rec.List, rec.Truncated
	}
	j.Args, j.State = args, faas.JobState(state)
	if len(result) > 0 {
		j.Result = result
	}
	j.Created, j.Started, j.Finished = lifecycle.Time(created), lifecycle.Time(started), lifecycle.Time(finished)
	j.Duration, j.Billed = time.Duration(duration), time.Duration(billed)
	if jobErr.Valid {
		if err := json.Unmarshal([]byte(jobErr.String), &j.Error); err != nil {
			return faas.Job{}, fmt.Errorf("decode error of job %s: %w", j.ID, err)
		}
	}
	return j, decodeLost(&j, lost)
}

// leaseColumns are what the updates that start and complete a job return,
// the column order scanLease reads: the columns of a queued or running job
// that the caller does not know. The others it knows (its key, state,
// attempt and what the update writes), or they are empty until the job
// finishes (finished, result, error, duration, billed, logs, streams,
// calls). Each column returned costs the driver its name, type and a copy,
// and the error and calls are JSON to decode, so returning 12 columns
// rather than all 23 cut the allocations of a started or completed row by
// 27-29% and its CPU by 5-17% (BenchmarkStartJobs, BenchmarkCompleteJobs).
const leaseColumns = `owner, function, version, args, worker, created, started, lost, trace, concurrency, triggered_by, parent`

// scanLease reads leaseColumns of job id, leaving the job's other fields
// for the caller to fill in.
func scanLease(row scanner, id string) (faas.Job, error) {
	j := faas.Job{ID: id}
	var args []byte
	var created, started int64
	var lost sql.NullString
	if err := row.Scan(&j.Owner, &j.Function, &j.Version, &args, &j.Worker, &created, &started, &lost,
		&j.Trace, &j.Concurrency, &j.Trigger, &j.Parent); err != nil {
		return faas.Job{}, err
	}
	j.Args, j.Created, j.Started = args, lifecycle.Time(created), lifecycle.Time(started)
	return j, decodeLost(&j, lost)
}

// decodeLost decodes the lost column into j.Lost.
func decodeLost(j *faas.Job, lost sql.NullString) error {
	if !lost.Valid {
		return nil
	}
	if err := json.Unmarshal([]byte(lost.String), &j.Lost); err != nil {
		return fmt.Errorf("decode lost attempts of job %s: %w", j.ID, err)
	}
	if len(j.Lost) == 0 {
		j.Lost = nil
	}
	return nil
}

// callRecord is how the calls column holds a job's fused calls; empty
// for a job that made none.
type callRecord struct {
	List      []faas.Call `json:"list"`
	Truncated bool        `json:"truncated,omitempty"`
}

func encodeCalls(calls []faas.Call, truncated bool) (string, error) {
	if len(calls) == 0 && !truncated {
		return "", nil
	}
	b, err := json.Marshal(callRecord{List: calls, Truncated: truncated})
	return string(b), err
}

// deleteOne runs a DELETE that should remove one row, answering missing
// when it removed none.
func (s *Store) deleteOne(ctx context.Context, stmt *sql.Stmt, what string, missing error, args ...any) error {
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	if n == 0 {
		return missing
	}
	return nil
}

// Usage sums what a user keeps, in one statement on a reader. Unlike the
// reads by key it keeps ctx's cancellation: it walks the user's rows.
func (s *Store) Usage(ctx context.Context, owner string) (faas.Usage, error) {
	var u faas.Usage
	err := s.stmts.usage.QueryRowContext(ctx, owner).Scan(&u.Functions, &u.SourceBytes, &u.JobBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return faas.Usage{}, lifecycle.UserNotFound(owner)
	}
	if err != nil {
		return faas.Usage{}, fmt.Errorf("usage of %s: %w", owner, err)
	}
	return u, nil
}

// FinishedCounts reads the finished table, which the jobs_finished
// trigger keeps in the statement that finishes each job.
func (s *Store) FinishedCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.stmts.finished.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("count finished jobs: %w", err)
	}
	defer rows.Close()
	counts := make(map[string]int64)
	for rows.Next() {
		var outcome string
		var n int64
		if err := rows.Scan(&outcome, &n); err != nil {
			return nil, fmt.Errorf("count finished jobs: %w", err)
		}
		counts[outcome] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count finished jobs: %w", err)
	}
	return counts, nil
}

// UserCount counts the users.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	var n int
	if err := s.stmts.userCount.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}
