package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// statements are prepared once at Open: the writer's on its single
// connection, the readers' on the read pool.
type statements struct {
	all []*sql.Stmt

	// On the writer.
	createUser, deleteUser, function, putFunction, deleteFunction        *sql.Stmt
	createJob, deleteJob, startJob, requeueJob, completeJob, jobW, userW *sql.Stmt
	purgeJobs, failGone, pruneVersions, setTokenHash                     *sql.Stmt
	deleteHook, deleteSchedule, unsubscribe                              *sql.Stmt

	// On the readers.
	user, userByToken, billedTime, readFunction, functions, readJob, pendingJobs, children *sql.Stmt
	purgeable, usage, userCount, readVersion, jobs, failedJobs, finished                   *sql.Stmt
}

const functionColumns = `owner, name, source, version, timeout, memory_mb, updated, settings, created, concurrency`

// purgeable lists, in key order, up to ?3 jobs after the key ?1 that
// finished before ?2; purgeJobs deletes those of the JSON array of keys ?1
// that still did. Both look jobs up by key, never scanning the table from
// its start, which TestPurgeUsesKeys checks.
const (
	purgeable = `SELECT id FROM jobs WHERE id > ?1 AND state IN ('succeeded', 'failed') AND finished < ?2
		ORDER BY id LIMIT ?3`
	purgeJobs = `DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1))
		AND state IN ('succeeded', 'failed') AND finished < ?2`
)

// functionPage lists the functions of owner ?1 named after ?2, at most ?4
// of them (-1: all), without their sources if ?3. The CASE keeps SQLite
// from reading a source it does not return, overflow pages and all.
const functionPage = `SELECT owner, name, CASE WHEN ?3 THEN '' ELSE source END, version, timeout, memory_mb, updated, settings, created, concurrency
	FROM functions WHERE owner = ?1 AND name > ?2 ORDER BY name LIMIT ?4`

// jobPage lists the jobs of owner ?1 created before (?2, ?3) in (created,
// id) order, newest first, of function ?4 and state ?5 when they are not
// empty, at most ?6 of them (-1: all). It walks the jobs_history index
// backwards from the cursor, so an unfiltered page reads only the jobs it
// returns, which TestJobPageUsesIndex checks; a filter skips the rows it
// rejects on the way. Arguments, results and logs are left unread.
const jobPage = `SELECT id, owner, function, version, NULL, state, attempt, worker, created, started,
		finished, NULL, error, duration, billed, '', lost, trace, '', concurrency, triggered_by, parent, ''
	FROM jobs WHERE owner = ?1 AND (created, id) < (?2, ?3)
		AND (?4 = '' OR function = ?4) AND (?5 = '' OR state = ?5)
	ORDER BY created DESC, id DESC LIMIT ?6`

// failedJobs lists the newest ?1 failed jobs of every user. The partial
// index jobs_failed holds only failed jobs in (created, id) order, so the
// query walks it backwards and reads just the rows it returns, however
// many jobs succeed; TestFailedJobsUsesIndex checks the plan.
const failedJobs = `SELECT ` + bareColumns + `
	FROM jobs WHERE state = 'failed' ORDER BY created DESC, id DESC LIMIT ?1`

// bareColumns are jobColumns without the arguments, result, logs, streams
// and calls, which listings across users leave out: they could be large.
const bareColumns = `id, owner, function, version, NULL, state, attempt, worker, created, started,
		finished, NULL, error, duration, billed, '', lost, trace, '', concurrency, triggered_by, parent, ''`

// startJob leases queued job ?4 at attempt ?5 as attempt ?1 to worker ?2
// at ?3, if the version of its function is kept. It writes the jobs row
// and no index, which TestStartWritesNoIndex checks.
const startJob = `UPDATE jobs SET state = 'running', attempt = ?1, worker = ?2, started = ?3
	WHERE id = ?4 AND state = 'queued' AND attempt = ?5
		AND EXISTS (SELECT 1 FROM versions
			WHERE owner = jobs.owner AND name = jobs.function AND version = jobs.version)
	RETURNING ` + leaseColumns

// pendingJobs lists up to ?6 queued and running jobs after the key (?1,
// ?2, ?3, ?4, ?5), in the order of the partial index jobs_unfinished,
// which it walks from that key: finished = 0 matches the index, and a
// page reads just its own jobs however many have finished or come
// before. TestPendingJobsUsesIndex checks the plan. The states are checked
// as well, so that the answer does not rest on the index.
const pendingJobs = `SELECT ` + bareColumns + ` FROM jobs
	WHERE finished = 0 AND state IN ('queued', 'running')
		AND (owner, function, version, created, id) > (?1, ?2, ?3, ?4, ?5)
	ORDER BY owner, function, version, created, id LIMIT ?6`

// children lists the IDs of the first ?2 jobs job ?1 submitted, oldest
// first, from the partial index jobs_parent; TestChildrenUseIndex checks
// the plan.
const children = `SELECT id FROM jobs WHERE parent = ?1 AND parent <> '' ORDER BY created, id LIMIT ?2`

// usage sums what user ?1 keeps; no row if there is no such user. The
// length of a BLOB and octet_length of a TEXT come from the record header,
// so neither reads the value itself: the cost is one index walk per table
// over the user's rows.
const usage = `SELECT
	(SELECT count(*) FROM functions WHERE owner = ?1),
	(SELECT coalesce(sum(octet_length(source)), 0) FROM functions WHERE owner = ?1),
	(SELECT coalesce(sum(length(args) + coalesce(length(result), 0) + octet_length(logs)), 0) FROM jobs WHERE owner = ?1)
	FROM users WHERE name = ?1`

// pruneVersions deletes the function versions that are neither current
// nor needed by a pending job. It looks the pending jobs of each version up
// in the jobs_unfinished index, which TestPruneVersionsUsesIndex checks.
const pruneVersions = `DELETE FROM versions
	WHERE NOT EXISTS (SELECT 1 FROM functions
			WHERE owner = versions.owner AND name = versions.name AND version = versions.version)
		AND NOT EXISTS (` + versionPending + `)`

func (st *statements) prepare(ctx context.Context, writer, reader *sql.DB) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&st.createUser, writer, `INSERT INTO users (name, token_hash, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.setTokenHash, writer, `UPDATE users SET token_hash = ?2 WHERE name = ?1
			AND NOT EXISTS (SELECT 1 FROM users WHERE token_hash = ?2 AND name <> ?1)`},
		{&st.deleteUser, writer, `DELETE FROM users WHERE name = ?`},
		{&st.function, writer, `SELECT ` + functionColumns + ` FROM functions WHERE owner = ? AND name = ?`},
		{&st.putFunction, writer, `INSERT INTO functions (owner, name, source, version, timeout, memory_mb, updated, settings, created, concurrency)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, name) DO UPDATE SET source = excluded.source, version = excluded.version,
				timeout = excluded.timeout, memory_mb = excluded.memory_mb, updated = excluded.updated,
				settings = excluded.settings, concurrency = excluded.concurrency`},
		{&st.deleteFunction, writer, `DELETE FROM functions WHERE owner = ? AND name = ?`},
		{&st.deleteHook, writer, `DELETE FROM hooks WHERE owner = ? AND function = ? AND id = ?`},
		{&st.deleteSchedule, writer, `DELETE FROM schedules WHERE owner = ? AND function = ?`},
		{&st.unsubscribe, writer, `DELETE FROM subscriptions WHERE owner = ? AND function = ? AND topic = ?`},
		{&st.createJob, writer, `INSERT INTO jobs (id, owner, function, version, args, state, attempt, worker,
				created, started, finished, duration, billed, logs, trace, concurrency, triggered_by, parent)
			SELECT ?1, owner, name, version, ?2, ?9, ?10, ?11, ?3, ?12, 0, 0, 0, '', ?6, concurrency, ?7, ?8
			FROM functions WHERE owner = ?4 AND name = ?5 AND ?13 IN (0, version)
			ON CONFLICT (id) DO NOTHING
			RETURNING version, concurrency`},
		{&st.deleteJob, writer, `DELETE FROM jobs WHERE id = ?`},
		{&st.startJob, writer, startJob},
		{&st.failGone, writer, `UPDATE jobs SET state = 'failed', finished = ?1, error = ?2
			WHERE id = ?3 AND state = 'queued' AND attempt = ?4`},
		{&st.pruneVersions, writer, pruneVersions},
		{&st.requeueJob, writer, `UPDATE jobs SET state = 'queued', worker = '',
				lost = json_insert(coalesce(lost, '[]'), '$[#]', json(?1))
			WHERE id = ?2 AND state = 'running' AND attempt = ?3
			RETURNING ` + jobColumns},
		{&st.completeJob, writer, `UPDATE jobs SET state = ?1, finished = ?2, result = ?3, error = ?4,
				duration = ?5, billed = ?6, logs = ?7, streams = ?10, calls = ?11
			WHERE id = ?8 AND state = 'running' AND attempt = ?9
			RETURNING ` + leaseColumns},
		{&st.purgeJobs, writer, purgeJobs},

		{&st.jobW, writer, `SELECT ` + jobColumns + ` FROM jobs WHERE id = ?`},
		{&st.userW, writer, `SELECT name, token_hash, created FROM users WHERE name = ?`},

		{&st.user, reader, `SELECT name, token_hash, created FROM users WHERE name = ?`},
		{&st.userByToken, reader, `SELECT name, token_hash, created FROM users WHERE token_hash = ?`},
		{&st.billedTime, reader, `SELECT billed FROM users WHERE name = ?`},
		{&st.readFunction, reader, `SELECT ` + functionColumns + ` FROM functions WHERE owner = ? AND name = ?`},
		{&st.functions, reader, functionPage},
		{&st.jobs, reader, jobPage},
		{&st.failedJobs, reader, failedJobs},
		{&st.readJob, reader, `SELECT ` + jobColumns + ` FROM jobs WHERE id = ?`},
		{&st.children, reader, children},
		{&st.purgeable, reader, purgeable},
		{&st.readVersion, reader, `SELECT ` + functionColumns + ` FROM versions WHERE owner = ? AND name = ? AND version = ?`},
		{&st.pendingJobs, reader, pendingJobs},
		{&st.usage, reader, usage},
		{&st.userCount, reader, `SELECT count(*) FROM users`},
		{&st.finished, reader, `SELECT outcome, jobs FROM finished`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("%s: %w", p.query, err)
		}
		*p.stmt = stmt
		st.all = append(st.all, stmt)
	}
	return nil
}

func (st *statements) close() {
	for _, stmt := range st.all {
		stmt.Close()
	}
}
