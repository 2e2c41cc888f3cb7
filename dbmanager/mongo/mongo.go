// Package mongo is the production faas.Store, over MongoDB through the
// official v2 driver.
//
// The design does not rely on multi-document transactions, TTL indexes, or
// on a single-document update being atomic against a concurrent one: its
// tests run on FerretDB, which has none of them, and a store that is correct
// there is correct on MongoDB. Instead:
//
//   - Exactly one DB manager process serves a database (the platform runs
//     one; a second one against the same database is a misconfiguration).
//     Inside it, every change to a job is serialized by a per-job lock, and
//     every change to a user's functions, or the user's deletion, by a
//     per-user lock that job changes hold shared. So each read-decide-write
//     sequence sees no concurrent writer, whatever the server's atomicity.
//   - Job transitions are also conditional updates filtered by (id, state,
//     attempt), so even a stray second writer cannot move a job from a state
//     it did not see; on MongoDB, where one update is atomic, this alone
//     fences stale attempts.
//   - Billing is an insert-only ledger keyed by job id: the server's
//     enforcement of the unique _id makes a second entry for a job
//     impossible, whoever tries. A user's total is the sum of their entries.
//   - Completion without a transaction is made crash-safe by ordering: the
//     job's terminal state is written with billing_pending set, then the
//     ledger entry is inserted (a duplicate key means it is already there),
//     then billing_pending is cleared. A crash in between leaves a finished
//     job with billing_pending set, which a retried CompleteJob, or the sweep
//     at Open, settles. Deleting a job leaves its ledger entry: a deleted job
//     is not refunded.
//   - Every function version a job may still run has a document in
//     versions, written before the function document that makes it
//     current. A replacement drops the versions no queued or running job
//     was submitted with (under the user's lock, which job creation holds
//     shared, so no job can take up a version being dropped); PurgeJobs
//     drops those whose last pending job finished since. Deleting a
//     function drops its versions first, so a crash part-way leaves a
//     function whose jobs fail as deleted, which the retried deletion
//     finishes.
//   - Deleting a user removes their jobs, function versions, functions and
//     ledger entries before the user document, so a crash part-way leaves
//     a user whose retried deletion finishes the job, never orphans under
//     a free name.
//
// Writes use majority write concern, so an acknowledged job or billing entry
// survives a replica-set failover.
//
// Times are stored as Unix microseconds and durations as nanoseconds (not
// BSON dates, which hold milliseconds), so both stores keep the same
// precision.
package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"faas/dbmanager/internal/lifecycle"
	"faas/proxies/faas"
)

// DefaultDatabase is used when the URL names none.
const DefaultDatabase = "faas"

// stripes is the number of locks each of users and jobs hash onto; two keys
// sharing one merely wait for each other.
const stripes = 256

var _ faas.Store = (*Store)(nil)

// Store is a faas.Store over one MongoDB database.
type Store struct {
	// JobBatches serves the batch job writes through the one-row ones, run
	// at once so that their round trips overlap.
	lifecycle.JobBatches
	client    *mongo.Client
	users     *mongo.Collection
	functions *mongo.Collection
	versions  *mongo.Collection
	jobs      *mongo.Collection
	ledger    *mongo.Collection
	hooks     *mongo.Collection
	schedules *mongo.Collection
	subs      *mongo.Collection
	// meta holds one document per migration applied to the database.
	meta *mongo.Collection

	userLocks [stripes]sync.RWMutex
	jobLocks  [stripes]sync.Mutex
}

// Open connects to the database named by url's path (DefaultDatabase if
// none), creates the indexes and settles any billing a crash left pending.
func Open(ctx context.Context, url string) (*Store, error) {
	cs, err := connstring.ParseAndValidate(url)
	if err != nil {
		return nil, fmt.Errorf("parse mongodb url: %w", err)
	}
	name := cs.Database
	if name == "" {
		name = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(url).SetWriteConcern(writeconcern.Majority()))
	if err != nil {
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	db := client.Database(name)
	s := &Store{
		client:    client,
		users:     db.Collection("users"),
		functions: db.Collection("functions"),
		versions:  db.Collection("versions"),
		jobs:      db.Collection("jobs"),
		ledger:    db.Collection("billing"),
		hooks:     db.Collection("hooks"),
		schedules: db.Collection("schedules"),
		subs:      db.Collection("subscriptions"),
		meta:      db.Collection("meta"),
	}
	s.JobBatches = lifecycle.JobBatches{Rows: s}
	if err := s.init(ctx); err != nil {
		client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	for _, ix := range []struct {
		coll  *mongo.Collection
		model mongo.IndexModel
	}{
		{s.users, mongo.IndexModel{Keys: bson.D{{Key: "token_hash", Value: 1}}, Options: options.Index().SetUnique(true)}},
		{s.functions, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "name", Value: 1}}}},
		{s.versions, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "name", Value: 1}}}},
		// The jobs of one version, for pruning; it serves lookups by owner too.
		{s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "function", Value: 1}, {Key: "version", Value: 1}}}},
		{s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "state", Value: 1}, {Key: "created", Value: 1}}}},
		// A user's jobs newest first, a page at a time.
		{s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "created", Value: -1}, {Key: "_id", Value: -1}}}},
		{s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "billing_pending", Value: 1}}}},
		// A job's children. Sparse, so that only child jobs are in it
		// (FerretDB has no partial indexes); a job's at most
		// faas.MaxChildren children are sorted after the lookup.
		{s.jobs, mongo.IndexModel{Keys: bson.D{{Key: "parent", Value: 1}}, Options: options.Index().SetSparse(true)}},
		{s.ledger, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}}}},
		{s.hooks, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "function", Value: 1}, {Key: "id", Value: 1}}}},
		{s.subs, mongo.IndexModel{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "topic", Value: 1}, {Key: "function", Value: 1}}}},
	} {
		if _, err := ix.coll.Indexes().CreateOne(ctx, ix.model); err != nil {
			return fmt.Errorf("create index on %s: %w", ix.coll.Name(), err)
		}
	}
	if err := s.sizeSources(ctx); err != nil {
		return err
	}
	if err := s.keepCurrentVersions(ctx); err != nil {
		return err
	}
	return s.settlePending(ctx)
}

// sizeSources fills in the source size of functions stored before it was
// kept, so that none escapes the source quota. There are few: a user's
// functions are bounded by a quota.
func (s *Store) sizeSources(ctx context.Context) error {
	cur, err := s.functions.Find(ctx, bson.D{{Key: "source_bytes", Value: bson.D{{Key: "$exists", Value: false}}}})
	if err != nil {
		return fmt.Errorf("find unsized functions: %w", err)
	}
	var docs []functionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("find unsized functions: %w", err)
	}
	for _, d := range docs {
		set := bson.D{{Key: "$set", Value: bson.D{{Key: "source_bytes", Value: int64(len(d.Source))}}}}
		if _, err := s.functions.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, set); err != nil {
			return fmt.Errorf("size function %s: %w", d.ID, err)
		}
	}
	return nil
}

// versionsKept names, in meta, the migration after which every current
// version has a versions document.
const versionsKept = "versions_kept"

// keepCurrentVersions gives every current version a versions document,
// which a database from before versions were kept lacks, once: the mark
// in meta is written after, so a crash part-way runs it again.
func (s *Store) keepCurrentVersions(ctx context.Context) error {
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: versionsKept}}).Err()
	if err == nil {
		return nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read migrations: %w", err)
	}
	docs, err := findAll[functionDoc](ctx, s.functions, bson.D{}, "functions")
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := s.putVersion(ctx, d); err != nil {
			return err
		}
	}
	if _, err := s.meta.InsertOne(ctx, bson.D{{Key: "_id", Value: versionsKept}}); err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("record migration: %w", err)
	}
	return nil
}

// settlePending finishes the billing of jobs a crash left half-completed.
func (s *Store) settlePending(ctx context.Context) error {
	docs, err := findAll[jobDoc](ctx, s.jobs, bson.D{{Key: "billing_pending", Value: true}}, "unsettled jobs")
	if err != nil {
		return err
	}
	for _, d := range docs {
		j, err := d.job()
		if err != nil {
			return err
		}
		if _, err := s.withJob(ctx, j.ID, func(j faas.Job, pending bool) (faas.Job, error) {
			return j, s.settle(ctx, j, pending)
		}); err != nil && faas.ErrorCode(err) != faas.NotFound {
			return err
		}
	}
	return nil
}

// Close disconnects from the server.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect from mongodb: %w", err)
	}
	return nil
}

// Ping checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ping mongodb: %w", err)
	}
	return nil
}

func stripe(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() % stripes
}

// lockUser takes a user's lock, exclusively for changes to the user and
// their functions, shared for changes to their jobs.
func (s *Store) lockUser(name string, exclusive bool) (unlock func()) {
	l := &s.userLocks[stripe(name)]
	if exclusive {
		l.Lock()
		return l.Unlock
	}
	l.RLock()
	return l.RUnlock
}

func (s *Store) lockJob(id string) (unlock func()) {
	l := &s.jobLocks[stripe(id)]
	l.Lock()
	return l.Unlock
}

// CreateUser adds a user, never overwriting one.
func (s *Store) CreateUser(ctx context.Context, u faas.User) error {
	u, err := lifecycle.User(u)
	if err != nil {
		return err
	}
	defer s.lockUser(u.Name, true)()
	_, err = s.users.InsertOne(ctx, userDoc{Name: u.Name, TokenHash: u.TokenHash, Created: lifecycle.Micros(u.Created)})
	if err == nil {
		return nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	existing, err := s.User(ctx, u.Name)
	return lifecycle.ExistingUser(u, existing, err)
}

// User returns a user by name.
func (s *Store) User(ctx context.Context, name string) (faas.User, error) {
	return s.findUser(ctx, bson.D{{Key: "_id", Value: name}}, lifecycle.UserNotFound(name))
}

// UserByToken returns the user whose token hashes to tokenHash.
func (s *Store) UserByToken(ctx context.Context, tokenHash string) (faas.User, error) {
	return s.findUser(ctx, bson.D{{Key: "token_hash", Value: tokenHash}}, faas.Errorf(faas.NotFound, "no user has this token"))
}

func (s *Store) findUser(ctx context.Context, filter bson.D, missing error) (faas.User, error) {
	var d userDoc
	if err := findOne(ctx, s.users, filter, &d, missing); err != nil {
		return faas.User{}, err
	}
	return faas.User{Name: d.Name, TokenHash: d.TokenHash, Created: lifecycle.Time(d.Created)}, nil
}

// SetTokenHash replaces a user's token hash. Another user's hash is
// looked for first: FerretDB reports the unique index refusing an update
// as an internal error, not as a duplicate key. The index still refuses
// a hash registered in between, which random tokens make a fault.
func (s *Store) SetTokenHash(ctx context.Context, name, tokenHash string) error {
	if err := lifecycle.TokenHash(name, tokenHash); err != nil {
		return err
	}
	defer s.lockUser(name, true)()
	holder, err := s.UserByToken(ctx, tokenHash)
	switch {
	case err == nil && holder.Name != name:
		return lifecycle.TokenTaken(name)
	case err != nil && faas.ErrorCode(err) != faas.NotFound:
		return fmt.Errorf("set token of user %s: %w", name, err)
	}
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: name}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token_hash", Value: tokenHash}}}})
	if mongo.IsDuplicateKeyError(err) {
		return lifecycle.TokenTaken(name)
	}
	if err != nil {
		return fmt.Errorf("set token of user %s: %w", name, err)
	}
	if res.MatchedCount == 0 {
		return lifecycle.UserNotFound(name)
	}
	return nil
}

// DeleteUser removes a user with their functions, jobs and billing, the
// user last (see the package documentation).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	defer s.lockUser(name, true)()
	if _, err := s.User(ctx, name); err != nil {
		return err
	}
	owned := bson.D{{Key: "owner", Value: name}}
	for _, coll := range []*mongo.Collection{s.jobs, s.versions, s.hooks, s.schedules, s.subs, s.functions, s.ledger} {
		if _, err := coll.DeleteMany(ctx, owned); err != nil {
			return fmt.Errorf("delete %s of user %s: %w", coll.Name(), name, err)
		}
	}
	return deleteOne(ctx, s.users, bson.D{{Key: "_id", Value: name}}, "user "+name, lifecycle.UserNotFound(name))
}

// BilledTime sums the user's ledger entries.
func (s *Store) BilledTime(ctx context.Context, name string) (time.Duration, error) {
	if _, err := s.User(ctx, name); err != nil {
		return 0, err
	}
	total, err := sumOwned(ctx, s.ledger, name, "billed")
	return time.Duration(total), err
}

// sumOwned sums field over owner's documents in coll. It asks for one
// accumulator only: FerretDB answers the first of several and leaves the
// others zero.
func sumOwned(ctx context.Context, coll *mongo.Collection, owner, field string) (int64, error) {
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "owner", Value: owner}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "total", Value: bson.D{{Key: "$sum", Value: "$" + field}}}}}},
	})
	if err != nil {
		return 0, fmt.Errorf("sum %s of %s: %w", coll.Name(), owner, err)
	}
	var sums []struct {
		Total int64 `bson:"total"`
	}
	if err := cur.All(ctx, &sums); err != nil {
		return 0, fmt.Errorf("sum %s of %s: %w", coll.Name(), owner, err)
	}
	if len(sums) == 0 {
		return 0, nil
	}
	return sums[0].Total, nil
}

// functionID is a function's _id: owner and name, length-prefixed so that no
// two pairs share one.
func functionID(owner, name string) string { return fmt.Sprintf("%d:%s/%s", len(owner), owner, name) }

// PutFunction creates or replaces a function. Replacing it with what it
// already holds changes nothing, so a retried upload does not bump the
// version.
func (s *Store) PutFunction(ctx context.Context, f faas.Function) (faas.Function, bool, error) {
	f, err := lifecycle.Function(f)
	if err != nil {
		return f, false, err
	}
	defer s.lockUser(f.Owner, true)()
	if _, err := s.User(ctx, f.Owner); err != nil {
		return f, false, err
	}
	old, err := s.function(ctx, f.Owner, f.Name)
	created := faas.ErrorCode(err) == faas.NotFound
	f = lifecycle.KeepSettings(old, f)
	switch {
	case err == nil && lifecycle.SameFunction(old, f):
		return lifecycle.Redacted(old), false, nil
	case err != nil && !created:
		return f, false, err
	}
	f.Version = lifecycle.NextVersion(old.Version, f.Updated)
	f.Created = lifecycle.Created(old, created, f.Updated)
	d := functionDoc{ID: functionID(f.Owner, f.Name), Owner: f.Owner, Name: f.Name, Source: f.Source,
		SourceBytes: int64(len(f.Source)), Version: f.Version,
		Timeout: int64(f.Timeout), MemoryMB: f.MemoryMB, Concurrency: f.Concurrency, Updated: lifecycle.Micros(f.Updated), Created: lifecycle.Micros(f.Created),
		Env: f.Env, Secrets: f.Secrets}
	if err := s.putVersion(ctx, d); err != nil {
		return f, false, err
	}
	if _, err := s.functions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true)); err != nil {
		return f, false, fmt.Errorf("put function %s: %w", f.Name, err)
	}
	if created {
		return lifecycle.Redacted(f), true, nil
	}
	return lifecycle.Redacted(f), false, s.pruneVersions(ctx, bson.D{{Key: "owner", Value: f.Owner}, {Key: "name", Value: f.Name}})
}

// versionID is a function version's _id.
func versionID(owner, name string, version int64) string {
	return fmt.Sprintf("%s@%d", functionID(owner, name), version)
}

// putVersion stores the version of the function document d.
func (s *Store) putVersion(ctx context.Context, d functionDoc) error {
	d.ID = versionID(d.Owner, d.Name, d.Version)
	if _, err := s.versions.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("keep version %d of function %s: %w", d.Version, d.Name, err)
	}
	return nil
}

// pruneVersions drops the versions matching filter that are neither
// current nor needed by a queued or running job. Callers hold the lock of
// the versions' owner, exclusively.
func (s *Store) pruneVersions(ctx context.Context, filter bson.D) error {
	docs, err := findAll[functionDoc](ctx, s.versions, filter, "function versions")
	if err != nil {
		return err
	}
	for _, d := range docs {
		current, err := s.Function(ctx, d.Owner, d.Name)
		if err == nil && current.Version == d.Version {
			continue
		}
		if err != nil && faas.ErrorCode(err) != faas.NotFound {
			return err
		}
		needed, err := s.jobs.CountDocuments(ctx, append(bson.D{
			{Key: "owner", Value: d.Owner}, {Key: "function", Value: d.Name}, {Key: "version", Value: d.Version},
		}, pending...), options.Count().SetLimit(1))
		if err != nil {
			return fmt.Errorf("find jobs of version %d of function %s: %w", d.Version, d.Name, err)
		}
		if needed > 0 {
			continue
		}
		if _, err := s.versions.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
			return fmt.Errorf("drop version %d of function %s: %w", d.Version, d.Name, err)
		}
	}
	return nil
}

// Function returns one function.
func (s *Store) Function(ctx context.Context, owner, name string) (faas.Function, error) {
	f, err := s.function(ctx, owner, name)
	return lifecycle.Redacted(f), err
}

// function is the current version of a function with its secrets' values.
func (s *Store) function(ctx context.Context, owner, name string) (faas.Function, error) {
	var d functionDoc
	if err := findOne(ctx, s.functions, bson.D{{Key: "_id", Value: functionID(owner, name)}}, &d, lifecycle.FunctionNotFound(owner, name)); err != nil {
		return faas.Function{}, err
	}
	return d.function(), nil
}

// FunctionVersion returns one kept version of a function.
func (s *Store) FunctionVersion(ctx context.Context, owner, name string, version int64) (faas.Function, error) {
	var d functionDoc
	if err := findOne(ctx, s.versions, bson.D{{Key: "_id", Value: versionID(owner, name, version)}}, &d, lifecycle.VersionNotFound(owner, name, version)); err != nil {
		return faas.Function{}, err
	}
	return d.function(), nil
}

// Functions lists a page of a user's functions by name.
func (s *Store) Functions(ctx context.Context, owner string, page faas.FunctionPage) ([]faas.Function, error) {
	if err := lifecycle.Page(page); err != nil {
		return nil, err
	}
	opts := options.Find().SetSort(bson.D{{Key: "name", Value: 1}}).SetLimit(int64(page.Limit))
	if page.NoSource {
		opts.SetProjection(bson.D{{Key: "source", Value: 0}})
	}
	docs, err := findAll[functionDoc](ctx, s.functions, bson.D{{Key: "owner", Value: owner}, {Key: "name", Value: bson.D{{Key: "$gt", Value: page.After}}}},
		"functions of "+owner, opts)
	if err != nil {
		return nil, err
	}
	fns := make([]faas.Function, 0, len(docs))
	for _, d := range docs {
		fns = append(fns, lifecycle.Redacted(d.function()))
	}
	return fns, nil
}

// DeleteFunction removes a function and its versions; its jobs stay.
func (s *Store) DeleteFunction(ctx context.Context, owner, name string) error {
	defer s.lockUser(owner, true)()
	if _, err := s.versions.DeleteMany(ctx, bson.D{{Key: "owner", Value: owner}, {Key: "name", Value: name}}); err != nil {
		return fmt.Errorf("delete versions of function %s: %w", name, err)
	}
	for _, coll := range []*mongo.Collection{s.hooks, s.schedules, s.subs} {
		if _, err := coll.DeleteMany(ctx, bson.D{{Key: "owner", Value: owner}, {Key: "function", Value: name}}); err != nil {
			return fmt.Errorf("delete %s of function %s: %w", coll.Name(), name, err)
		}
	}
	return deleteOne(ctx, s.functions, bson.D{{Key: "_id", Value: functionID(owner, name)}}, "function "+name, lifecycle.FunctionNotFound(owner, name))
}

// hookDoc is a hook as stored, keyed by its hash.
type hookDoc struct {
	Hash     string `bson:"_id"`
	ID       string `bson:"id"`
	Owner    string `bson:"owner"`
	Function string `bson:"function"`
	Created  int64  `bson:"created"`
}

func (d hookDoc) hook() faas.Hook {
	return faas.Hook{Hash: d.Hash, ID: d.ID, Owner: d.Owner, Function: d.Function, Created: lifecycle.Time(d.Created)}
}

// CreateHook stores a hook under the owner's read lock, which keeps
// DeleteFunction (a writer) from running between the check that the
// function exists and the insert.
func (s *Store) CreateHook(ctx context.Context, h faas.Hook) error {
	h, err := lifecycle.Hook(h)
	if err != nil {
		return err
	}
	defer s.lockUser(h.Owner, false)()
	existing, err := s.HookByHash(ctx, h.Hash)
	if err == nil {
		return lifecycle.ExistingHook(h, existing)
	}
	if faas.ErrorCode(err) != faas.NotFound {
		return err
	}
	if _, err := s.Function(ctx, h.Owner, h.Function); err != nil {
		return err
	}
	d := hookDoc{Hash: h.Hash, ID: h.ID, Owner: h.Owner, Function: h.Function, Created: lifecycle.Micros(h.Created)}
	if _, err := s.hooks.InsertOne(ctx, d); err != nil {
		return fmt.Errorf("create hook %s: %w", h.ID, err)
	}
	return nil
}

// HookByHash reads a hook by its key.
func (s *Store) HookByHash(ctx context.Context, hash string) (faas.Hook, error) {
	var d hookDoc
	err := findOne(ctx, s.hooks, bson.D{{Key: "_id", Value: hash}}, &d, lifecycle.HookNotFound(hash))
	return d.hook(), err
}

// Hooks lists a function's hooks, oldest first.
func (s *Store) Hooks(ctx context.Context, owner, function string) ([]faas.Hook, error) {
	docs, err := findAll[hookDoc](ctx, s.hooks, bson.D{{Key: "owner", Value: owner}, {Key: "function", Value: function}},
		"hooks of "+function, options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]faas.Hook, len(docs))
	for i, d := range docs {
		out[i] = d.hook()
	}
	return out, nil
}

// DeleteHook revokes a hook by its function and ID.
func (s *Store) DeleteHook(ctx context.Context, owner, function, id string) error {
	return deleteOne(ctx, s.hooks, bson.D{{Key: "owner", Value: owner}, {Key: "function", Value: function}, {Key: "id", Value: id}},
		"hook "+id, lifecycle.HookNotFound(id))
}

// scheduleDoc is a schedule as stored, keyed like its function.
type scheduleDoc struct {
	ID       string `bson:"_id"`
	Owner    string `bson:"owner"`
	Function string `bson:"function"`
	Cron     string `bson:"cron"`
	Timezone string `bson:"timezone"`
	Args     string `bson:"args"`
	Updated  int64  `bson:"updated"`
	LastTick int64  `bson:"last_tick"`
}

func (d scheduleDoc) schedule() faas.Schedule {
	sc := faas.Schedule{Owner: d.Owner, Function: d.Function, Cron: d.Cron, Timezone: d.Timezone,
		Args: json.RawMessage(d.Args), Updated: lifecycle.Time(d.Updated)}
	if d.LastTick != 0 {
		sc.LastTick = lifecycle.Time(d.LastTick)
	}
	return sc
}

// PutSchedule upserts a schedule under the owner's read lock, which keeps
// DeleteFunction (a writer) from running between the check that the
// function exists and the write.
func (s *Store) PutSchedule(ctx context.Context, sc faas.Schedule) (faas.Schedule, error) {
	sc, err := lifecycle.Schedule(sc)
	if err != nil {
		return sc, err
	}
	defer s.lockUser(sc.Owner, false)()
	if _, err := s.Function(ctx, sc.Owner, sc.Function); err != nil {
		return sc, err
	}
	id := functionID(sc.Owner, sc.Function)
	d := scheduleDoc{ID: id, Owner: sc.Owner, Function: sc.Function, Cron: sc.Cron, Timezone: sc.Timezone,
		Args: string(sc.Args), Updated: lifecycle.Micros(sc.Updated)}
	if _, err := s.schedules.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, d, options.Replace().SetUpsert(true)); err != nil {
		return sc, fmt.Errorf("put schedule of %s/%s: %w", sc.Owner, sc.Function, err)
	}
	return sc, nil
}

// Schedule reads a function's schedule.
func (s *Store) Schedule(ctx context.Context, owner, function string) (faas.Schedule, error) {
	var d scheduleDoc
	err := findOne(ctx, s.schedules, bson.D{{Key: "_id", Value: functionID(owner, function)}}, &d, lifecycle.ScheduleNotFound(owner, function))
	return d.schedule(), err
}

// Schedules lists every schedule.
func (s *Store) Schedules(ctx context.Context) ([]faas.Schedule, error) {
	docs, err := findAll[scheduleDoc](ctx, s.schedules, bson.D{}, "schedules",
		options.Find().SetSort(bson.D{{Key: "owner", Value: 1}, {Key: "function", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]faas.Schedule, len(docs))
	for i, d := range docs {
		out[i] = d.schedule()
	}
	return out, nil
}

// subDoc is a subscription as stored, keyed by owner, function and topic.
type subDoc struct {
	ID       string `bson:"_id"`
	Owner    string `bson:"owner"`
	Function string `bson:"function"`
	Topic    string `bson:"topic"`
	Created  int64  `bson:"created"`
}

// Subscribe stores a subscription under the owner's read lock, which
// keeps DeleteFunction (a writer) from running between the check that
// the function exists and the insert. The key makes a second insert a
// duplicate, which is how an existing subscription shows.
func (s *Store) Subscribe(ctx context.Context, sub faas.Subscription) (bool, error) {
	sub, err := lifecycle.Subscription(sub)
	if err != nil {
		return false, err
	}
	defer s.lockUser(sub.Owner, false)()
	if _, err := s.Function(ctx, sub.Owner, sub.Function); err != nil {
		return false, err
	}
	d := subDoc{ID: functionID(sub.Owner, sub.Function) + "\x00" + sub.Topic,
		Owner: sub.Owner, Function: sub.Function, Topic: sub.Topic, Created: lifecycle.Micros(sub.Created)}
	_, err = s.subs.InsertOne(ctx, d)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("subscribe %s to %s: %w", sub.Function, sub.Topic, err)
	}
	return true, nil
}

// Unsubscribe ends a subscription.
func (s *Store) Unsubscribe(ctx context.Context, owner, function, topic string) error {
	return deleteOne(ctx, s.subs, bson.D{{Key: "owner", Value: owner}, {Key: "function", Value: function}, {Key: "topic", Value: topic}},
		"subscription of "+function+" to "+topic, lifecycle.SubscriptionNotFound(owner, function, topic))
}

// Subscriptions lists owner's subscriptions that match filter, by topic
// then function, through the owner-topic-function index.
func (s *Store) Subscriptions(ctx context.Context, owner string, filter faas.SubscriptionFilter) ([]faas.Subscription, error) {
	q := bson.D{{Key: "owner", Value: owner}}
	if filter.Topic != "" {
		q = append(q, bson.E{Key: "topic", Value: filter.Topic})
	}
	if filter.Function != "" {
		q = append(q, bson.E{Key: "function", Value: filter.Function})
	}
	docs, err := findAll[subDoc](ctx, s.subs, q, "subscriptions of "+owner,
		options.Find().SetSort(bson.D{{Key: "topic", Value: 1}, {Key: "function", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]faas.Subscription, len(docs))
	for i, d := range docs {
		out[i] = faas.Subscription{Owner: d.Owner, Function: d.Function, Topic: d.Topic, Created: lifecycle.Time(d.Created)}
	}
	return out, nil
}

// DeleteSchedule removes a function's schedule.
func (s *Store) DeleteSchedule(ctx context.Context, owner, function string) error {
	return deleteOne(ctx, s.schedules, bson.D{{Key: "_id", Value: functionID(owner, function)}},
		"schedule of "+function, lifecycle.ScheduleNotFound(owner, function))
}

// ScheduleFired moves last_tick forward, fenced by the time the schedule
// was put.
func (s *Store) ScheduleFired(ctx context.Context, owner, function string, updated, tick time.Time) error {
	_, err := s.schedules.UpdateOne(ctx, bson.D{{Key: "_id", Value: functionID(owner, function)},
		{Key: "updated", Value: lifecycle.Micros(updated)}, {Key: "last_tick", Value: bson.D{{Key: "$lt", Value: lifecycle.Micros(tick)}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_tick", Value: lifecycle.Micros(tick)}}}})
	if err != nil {
		return fmt.Errorf("record tick of schedule of %s/%s: %w", owner, function, err)
	}
	return nil
}

// CreateJob stores a queued job unless its ID exists.
func (s *Store) CreateJob(ctx context.Context, j faas.Job) (faas.Job, error) {
	j, err := lifecycle.Job(j)
	if err != nil {
		return j, err
	}
	defer s.lockUser(j.Owner, false)()
	defer s.lockJob(j.ID)()
	existing, _, err := s.findJob(ctx, j.ID)
	if err == nil {
		return lifecycle.ExistingJob(existing, j.Owner)
	}
	if faas.ErrorCode(err) != faas.NotFound {
		return faas.Job{}, err
	}
	f, err := s.Function(ctx, j.Owner, j.Function)
	if err != nil {
		return faas.Job{}, err
	}
	if err := lifecycle.CheckVersion(j, f.Version); err != nil {
		return faas.Job{}, err
	}
	j.Version, j.Concurrency = f.Version, f.Concurrency
	if _, err := s.jobs.InsertOne(ctx, newJobDoc(j, false)); err != nil {
		return faas.Job{}, fmt.Errorf("create job %s: %w", j.ID, err)
	}
	return j, nil
}

// Job returns one job, with its children.
func (s *Store) Job(ctx context.Context, id string) (faas.Job, error) {
	j, _, err := s.findJob(ctx, id)
	if err != nil {
		return j, err
	}
	cur, err := s.jobs.Find(ctx, bson.D{{Key: "parent", Value: id}}, options.Find().
		SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(faas.MaxChildren).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return faas.Job{}, fmt.Errorf("list children of job %s: %w", id, err)
	}
	var children []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &children); err != nil {
		return faas.Job{}, fmt.Errorf("list children of job %s: %w", id, err)
	}
	for _, c := range children {
		j.Children = append(j.Children, c.ID)
	}
	return j, nil
}

func (s *Store) findJob(ctx context.Context, id string) (j faas.Job, billingPending bool, err error) {
	var d jobDoc
	if err := findOne(ctx, s.jobs, bson.D{{Key: "_id", Value: id}}, &d, lifecycle.JobNotFound(id)); err != nil {
		return faas.Job{}, false, err
	}
	j, err = d.job()
	return j, d.BillingPending, err
}

// withJob runs fn on the job as it is under its owner's shared lock and its
// own lock. The owner is read first, without locks: it never changes.
func (s *Store) withJob(ctx context.Context, id string, fn func(j faas.Job, billingPending bool) (faas.Job, error)) (faas.Job, error) {
	j, _, err := s.findJob(ctx, id)
	if err != nil {
		return faas.Job{}, err
	}
	defer s.lockUser(j.Owner, false)()
	defer s.lockJob(id)()
	j, pending, err := s.findJob(ctx, id)
	if err != nil {
		return faas.Job{}, err
	}
	return fn(j, pending)
}

// Jobs lists a page of a user's jobs, newest first, through the (owner,
// created, _id) index, leaving out the arguments, results and logs.
func (s *Store) Jobs(ctx context.Context, owner string, page faas.JobPage) ([]faas.Job, error) {
	if err := lifecycle.JobPage(page); err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "owner", Value: owner}}
	if page.Function != "" {
		filter = append(filter, bson.E{Key: "function", Value: page.Function})
	}
	if page.State != "" {
		filter = append(filter, bson.E{Key: "state", Value: string(page.State)})
	}
	if page.BeforeID != "" {
		before := lifecycle.Micros(page.BeforeCreated)
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created", Value: bson.D{{Key: "$lt", Value: before}}}},
			bson.D{{Key: "created", Value: before}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: page.BeforeID}}}},
		}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(page.Limit)).
		SetProjection(listProjection)
	return findJobs(ctx, s.jobs, filter, "jobs of "+owner, opts)
}

// FailedJobs lists the newest failed jobs of every user; the (state,
// created) index serves both the filter and the order.
func (s *Store) FailedJobs(ctx context.Context, limit int) ([]faas.Job, error) {
	if err := lifecycle.FailedLimit(limit); err != nil {
		return nil, err
	}
	opts := options.Find().SetSort(bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit)).
		SetProjection(listProjection)
	return findJobs(ctx, s.jobs, bson.D{{Key: "state", Value: string(faas.Failed)}}, "failed jobs", opts)
}

// listProjection leaves out what a listing of jobs does not show.
var listProjection = bson.D{{Key: "args", Value: 0}, {Key: "result", Value: 0}, {Key: "logs", Value: 0}, {Key: "streams", Value: 0},
	{Key: "calls", Value: 0}, {Key: "calls_truncated", Value: 0}}

// DeleteJob removes a job; its ledger entry, if any, stays.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	_, err := s.withJob(ctx, id, func(j faas.Job, _ bool) (faas.Job, error) {
		return j, deleteOne(ctx, s.jobs, bson.D{{Key: "_id", Value: id}}, "job "+id, lifecycle.JobNotFound(id))
	})
	return err
}

// StartJob leases a queued job, or fails it if its function version is
// gone. The owner's lock, held shared, keeps DeleteFunction out between
// the check and the start.
func (s *Store) StartJob(ctx context.Context, id string, attempt int, worker string) (faas.Job, error) {
	if err := lifecycle.Start(id, attempt, worker); err != nil {
		return faas.Job{}, err
	}
	return s.withJob(ctx, id, func(j faas.Job, _ bool) (faas.Job, error) {
		if j.State != faas.Queued || j.Attempt != attempt-1 {
			return lifecycle.StartRefused(j, attempt, worker)
		}
		_, err := s.FunctionVersion(ctx, j.Owner, j.Function, j.Version)
		switch {
		case faas.ErrorCode(err) == faas.NotFound:
			gone := lifecycle.FunctionGone(j, lifecycle.Now())
			d := newJobDoc(gone, false)
			if err := s.transition(ctx, j, bson.D{
				{Key: "state", Value: d.State},
				{Key: "finished", Value: d.Finished},
				{Key: "error", Value: d.Error},
			}); err != nil {
				return faas.Job{}, err
			}
			// Its ledger entry bills nothing; it counts the job as
			// finished. A crash before it leaves the job uncounted.
			if err := s.settle(ctx, gone, true); err != nil {
				return faas.Job{}, err
			}
			return faas.Job{}, gone.Error
		case err != nil:
			return faas.Job{}, err
		}
		next := lifecycle.Started(j, attempt, worker, lifecycle.Now())
		return next, s.transition(ctx, j, bson.D{
			{Key: "state", Value: string(next.State)},
			{Key: "attempt", Value: next.Attempt},
			{Key: "worker", Value: next.Worker},
			{Key: "started", Value: lifecycle.Micros(next.Started)},
		})
	})
}

// RequeueJob returns a running job to the queue.
func (s *Store) RequeueJob(ctx context.Context, id string, attempt int, reason *faas.Error) (faas.Job, error) {
	if err := lifecycle.Requeue(id, attempt, reason); err != nil {
		return faas.Job{}, err
	}
	return s.withJob(ctx, id, func(j faas.Job, _ bool) (faas.Job, error) {
		if j.State != faas.Running || j.Attempt != attempt {
			return lifecycle.RequeueRefused(j, attempt, reason)
		}
		next := lifecycle.Requeued(j, reason)
		return next, s.transition(ctx, j, bson.D{
			{Key: "state", Value: string(next.State)},
			{Key: "worker", Value: next.Worker},
			{Key: "lost", Value: errorDocs(next.Lost)},
		})
	})
}

// CompleteJob finishes a running job, then bills it through the ledger (see
// the package documentation for why this order is crash-safe).
func (s *Store) CompleteJob(ctx context.Context, c faas.Completion) (faas.Job, error) {
	state, err := lifecycle.Complete(c)
	if err != nil {
		return faas.Job{}, err
	}
	return s.withJob(ctx, c.JobID, func(j faas.Job, pending bool) (faas.Job, error) {
		if j.State != faas.Running || j.Attempt != c.Attempt {
			j, err := lifecycle.CompleteRefused(j, c.Attempt)
			if err != nil {
				return j, err
			}
			// A retry after a crash or a failed ledger write settles it.
			return j, s.settle(ctx, j, pending)
		}
		next := lifecycle.Completed(j, c, state, lifecycle.Now())
		d := newJobDoc(next, true)
		if err := s.transition(ctx, j, bson.D{
			{Key: "state", Value: d.State},
			{Key: "finished", Value: d.Finished},
			{Key: "result", Value: d.Result},
			{Key: "error", Value: d.Error},
			{Key: "duration", Value: d.Duration},
			{Key: "billed", Value: d.Billed},
			{Key: "logs", Value: d.Logs},
			{Key: "streams", Value: d.Streams},
			{Key: "calls", Value: d.Calls},
			{Key: "calls_truncated", Value: d.CallsTruncated},
			{Key: "bytes", Value: d.Bytes},
			{Key: "billing_pending", Value: true},
		}); err != nil {
			return faas.Job{}, err
		}
		return next, s.settle(ctx, next, true)
	})
}

// settle writes a finished job's ledger entry, if pending, and clears the
// mark. Both steps may be repeated.
func (s *Store) settle(ctx context.Context, j faas.Job, pending bool) error {
	if !pending {
		return nil
	}
	_, err := s.ledger.InsertOne(ctx, ledgerDoc{JobID: j.ID, Owner: j.Owner, Billed: int64(j.Billed), Outcome: faas.Outcome(j)})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("bill job %s to %s: %w", j.ID, j.Owner, err)
	}
	_, err = s.jobs.UpdateOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "billing_pending", Value: false}}}})
	if err != nil {
		return fmt.Errorf("mark job %s billed: %w", j.ID, err)
	}
	return nil
}

// transition applies set to the job if it is still in the state and
// attempt it was read in; Conflict if it is not (another writer got there
// first, which the locks make possible only across processes).
func (s *Store) transition(ctx context.Context, from faas.Job, set bson.D) error {
	res, err := s.jobs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: from.ID}, {Key: "state", Value: string(from.State)}, {Key: "attempt", Value: from.Attempt}},
		bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return fmt.Errorf("update job %s: %w", from.ID, err)
	}
	if res.MatchedCount == 0 {
		return faas.Errorf(faas.Conflict, "job %s changed concurrently", from.ID)
	}
	return nil
}

// pending matches the queued and running jobs.
var pending = bson.D{{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{string(faas.Queued), string(faas.Running)}}}}}

// pendingKey is where a page of PendingJobs ends: pages go by creation
// and ID, which the (state, created) index serves.
type pendingKey struct {
	Created int64
	ID      string
}

// PendingJobs lists a page of the queued and running jobs, oldest first.
func (s *Store) PendingJobs(ctx context.Context, after string, limit int) (faas.PendingPage, error) {
	if err := lifecycle.PendingLimit(limit); err != nil {
		return faas.PendingPage{}, err
	}
	filter := pending
	if after != "" {
		var key pendingKey
		if err := lifecycle.ParseCursor(after, &key); err != nil {
			return faas.PendingPage{}, err
		}
		filter = append(slices.Clone(pending), bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created", Value: bson.D{{Key: "$gt", Value: key.Created}}}},
			bson.D{{Key: "created", Value: key.Created}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: key.ID}}}},
		}})
	}
	jobs, err := findJobs(ctx, s.jobs, filter, "pending jobs", options.Find().
		SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit)).SetProjection(listProjection))
	if err != nil {
		return faas.PendingPage{}, err
	}
	return lifecycle.PendingPage(jobs, limit, func(j faas.Job) any {
		return pendingKey{Created: lifecycle.Micros(j.Created), ID: j.ID}
	}), nil
}

// findJobs finds the jobs filter matches.
func findJobs(ctx context.Context, coll *mongo.Collection, filter bson.D, what string, opts ...options.Lister[options.FindOptions]) ([]faas.Job, error) {
	docs, err := findAll[jobDoc](ctx, coll, filter, what, opts...)
	if err != nil {
		return nil, err
	}
	jobs := make([]faas.Job, 0, len(docs))
	for _, d := range docs {
		j, err := d.job()
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// PurgeJobs deletes finished jobs that finished before the cutoff, then
// the function versions no longer current nor needed by a pending job. Their
// ledger entries stay, so billing is kept. No index serves the finish time,
// which would cost every job transition one more index update; the purge
// runs rarely and the (state, created) index narrows it to finished jobs. A job whose billing is still
// pending is left for the retry or the sweep at Open to settle; a finished
// and settled job is never written again, so deleting it needs no lock.
func (s *Store) PurgeJobs(ctx context.Context, before time.Time) (int, error) {
	res, err := s.jobs.DeleteMany(ctx, bson.D{
		{Key: "state", Value: bson.D{{Key: "$in", Value: bson.A{string(faas.Succeeded), string(faas.Failed)}}}},
		{Key: "finished", Value: bson.D{{Key: "$lt", Value: before.UnixMicro()}}},
		{Key: "billing_pending", Value: false},
	})
	if err != nil {
		return 0, fmt.Errorf("purge jobs finished before %s: %w", before.Format(time.RFC3339), err)
	}
	return int(res.DeletedCount), s.pruneAllVersions(ctx)
}

// pruneAllVersions prunes every user's versions, each under their lock.
// The collection is small: current versions and a few pending ones.
func (s *Store) pruneAllVersions(ctx context.Context) error {
	type ownerDoc struct {
		Owner string `bson:"owner"`
	}
	docs, err := findAll[ownerDoc](ctx, s.versions, bson.D{}, "function versions",
		options.Find().SetProjection(bson.D{{Key: "owner", Value: 1}}))
	if err != nil {
		return err
	}
	seen := make(map[string]bool)
	for _, d := range docs {
		if seen[d.Owner] {
			continue
		}
		seen[d.Owner] = true
		unlock := s.lockUser(d.Owner, true)
		err := s.pruneVersions(ctx, bson.D{{Key: "owner", Value: d.Owner}})
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// findAll decodes every document of coll that matches filter; what names
// them in errors.
func findAll[T any](ctx context.Context, coll *mongo.Collection, filter bson.D, what string, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	var docs []T
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	return docs, nil
}

func findOne(ctx context.Context, coll *mongo.Collection, filter bson.D, into any, missing error) error {
	err := coll.FindOne(ctx, filter).Decode(into)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return missing
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", coll.Name(), err)
	}
	return nil
}

func deleteOne(ctx context.Context, coll *mongo.Collection, filter bson.D, what string, missing error) error {
	res, err := coll.DeleteOne(ctx, filter)
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	if res.DeletedCount == 0 {
		return missing
	}
	return nil
}

// Usage sums what a user keeps, from the sizes stored beside sources and
// job data, so that it reads none of them.
func (s *Store) Usage(ctx context.Context, owner string) (faas.Usage, error) {
	if _, err := s.User(ctx, owner); err != nil {
		return faas.Usage{}, err
	}
	owned := bson.D{{Key: "owner", Value: owner}}
	fns, err := s.functions.CountDocuments(ctx, owned)
	if err != nil {
		return faas.Usage{}, fmt.Errorf("count functions of %s: %w", owner, err)
	}
	sources, err := sumOwned(ctx, s.functions, owner, "source_bytes")
	if err != nil {
		return faas.Usage{}, err
	}
	jobs, err := sumOwned(ctx, s.jobs, owner, "bytes")
	if err != nil {
		return faas.Usage{}, err
	}
	return faas.Usage{Functions: int(fns), SourceBytes: sources, JobBytes: jobs}, nil
}

// FinishedCounts groups the ledger by outcome: every finished job has an
// entry, which purging the job keeps and deleting its user removes.
func (s *Store) FinishedCounts(ctx context.Context) (map[string]int64, error) {
	cur, err := s.ledger.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "outcome", Value: bson.D{{Key: "$exists", Value: true}}}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$outcome"}, {Key: "jobs", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("count finished jobs: %w", err)
	}
	var groups []struct {
		Outcome string `bson:"_id"`
		Jobs    int64  `bson:"jobs"`
	}
	if err := cur.All(ctx, &groups); err != nil {
		return nil, fmt.Errorf("count finished jobs: %w", err)
	}
	counts := make(map[string]int64, len(groups))
	for _, g := range groups {
		counts[g.Outcome] = g.Jobs
	}
	return counts, nil
}

// UserCount counts the users.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	n, err := s.users.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return int(n), nil
}
