package mongo_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"faas/dbmanager/internal/ferrettest"
	"faas/dbmanager/mongo"
	"faas/dbmanager/storetest"
	"faas/proxies/faas"
)

func open(t testing.TB, url string) *mongo.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongo.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	s := open(t, ferrettest.Start(t)+"conformance")
	storetest.Run(t, func(t *testing.T) faas.Store { return s })
}

func TestOpenRejectsBadURL(t *testing.T) {
	t.Parallel()
	_, err := mongo.Open(context.Background(), "mongodb://")
	require.Error(t, err)
}

// crashAfterStateWrite rewinds a completed job to where a crash between
// writing its terminal state and its ledger entry would have left it.
func crashAfterStateWrite(t *testing.T, db *driver.Database, id string, ledgerWritten bool) {
	t.Helper()
	ctx := context.Background()
	if !ledgerWritten {
		res, err := db.Collection("billing").DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		require.NoError(t, err)
		require.Equal(t, int64(1), res.DeletedCount)
	}
	res, err := db.Collection("jobs").UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "billing_pending", Value: true}}}})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.ModifiedCount)
}

func TestCompletionInterruptedByCrashIsBilledOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := ferrettest.Start(t) + "crash"
	s := open(t, url)
	raw, err := driver.Connect(options.Client().ApplyURI(url))
	require.NoError(t, err)
	defer raw.Disconnect(context.Background())
	db := raw.Database("crash")

	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err = s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x=>x"})
	require.NoError(t, err)
	complete := func(id string, d time.Duration) faas.Completion {
		_, err := s.CreateJob(ctx, faas.Job{ID: id, Owner: "ada", Function: "f"})
		require.NoError(t, err)
		_, err = s.StartJob(ctx, id, 1, "w")
		require.NoError(t, err)
		c := faas.Completion{JobID: id, Attempt: 1, Duration: d}
		_, err = s.CompleteJob(ctx, c)
		require.NoError(t, err)
		return c
	}
	billed := func(s *mongo.Store) time.Duration {
		d, err := s.BilledTime(ctx, "ada")
		require.NoError(t, err)
		return d
	}

	// Crashed before the ledger entry: the retry writes it.
	c1 := complete("j1", time.Second)
	crashAfterStateWrite(t, db, "j1", false)
	require.Zero(t, billed(s))
	_, err = s.CompleteJob(ctx, c1)
	require.NoError(t, err)
	require.Equal(t, time.Second, billed(s))

	// Crashed after the ledger entry: the retry does not add another.
	c2 := complete("j2", 2*time.Second)
	crashAfterStateWrite(t, db, "j2", true)
	_, err = s.CompleteJob(ctx, c2)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, billed(s))

	// Nobody retries: the next Open settles it.
	complete("j3", 4*time.Second)
	crashAfterStateWrite(t, db, "j3", false)
	require.Equal(t, 3*time.Second, billed(s))
	reopened := open(t, url)
	require.Equal(t, 7*time.Second, billed(reopened))
	n, err := db.Collection("jobs").CountDocuments(ctx, bson.D{{Key: "billing_pending", Value: true}})
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestOpenUsesDefaultDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := ferrettest.Start(t)
	s := open(t, url)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	raw, err := driver.Connect(options.Client().ApplyURI(url))
	require.NoError(t, err)
	defer raw.Disconnect(context.Background())
	n, err := raw.Database(mongo.DefaultDatabase).Collection("users").CountDocuments(ctx, bson.D{{Key: "_id", Value: "ada"}})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestOpenFailsWhenServerIsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := mongo.Open(ctx, "mongodb://127.0.0.1:1/faas?serverSelectionTimeoutMS=500")
	require.Error(t, err)
}

// TestOpenSizesOldSources checks that functions stored before their
// source size was kept are sized at Open, so none escapes the quota.
func TestOpenSizesOldSources(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := ferrettest.Start(t) + "sizes"
	s := open(t, url)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	const src = "x => 'an old function'"
	_, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: src})
	require.NoError(t, err)
	raw, err := driver.Connect(options.Client().ApplyURI(url))
	require.NoError(t, err)
	defer raw.Disconnect(context.Background())
	_, err = raw.Database("sizes").Collection("functions").UpdateMany(ctx, bson.D{},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "source_bytes", Value: ""}}}})
	require.NoError(t, err)
	u, err := s.Usage(ctx, "ada")
	require.NoError(t, err)
	require.Zero(t, u.SourceBytes, "the size is gone, as before it was kept")

	u, err = open(t, url).Usage(ctx, "ada")
	require.NoError(t, err)
	require.Equal(t, faas.Usage{Functions: 1, SourceBytes: int64(len(src))}, u)
}

// TestVersionsOfOlderDatabase opens a database written before versions
// were kept: its current versions become readable, so its queued jobs run.
func TestVersionsOfOlderDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := ferrettest.Start(t) + "older"
	s := open(t, url)
	require.NoError(t, s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	f, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "add", Source: "(a,b)=>a+b", MemoryMB: 128})
	require.NoError(t, err)
	j, err := s.CreateJob(ctx, faas.Job{ID: "j1", Owner: "ada", Function: "add"})
	require.NoError(t, err)
	raw, err := driver.Connect(options.Client().ApplyURI(url))
	require.NoError(t, err)
	defer raw.Disconnect(context.Background())
	for _, coll := range []string{"versions", "meta"} {
		require.NoError(t, raw.Database("older").Collection(coll).Drop(ctx))
	}

	reopened := open(t, url)
	got, err := reopened.FunctionVersion(ctx, "ada", "add", f.Version)
	require.NoError(t, err)
	require.Equal(t, f, got)
	_, err = reopened.StartJob(ctx, j.ID, 1, "w1")
	require.NoError(t, err)
}
