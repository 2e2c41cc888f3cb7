package jqmanager

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"faas/dbmanager/sqlite"
	"faas/proxies/faas"
)

// newTicks is a counter of ticks for one test.
func newTicks() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticks"}, []string{"outcome"})
}

// scheduledStore is a SQLite store with user ann, her function f, and a
// schedule of it every 10s.
func scheduledStore(t *testing.T, ctx context.Context) (*sqlite.Store, faas.Schedule) {
	t.Helper()
	db, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.CreateUser(ctx, faas.User{Name: "ann", TokenHash: "h"}))
	_, _, err = db.PutFunction(ctx, faas.Function{Owner: "ann", Name: "f", Source: "x => x", Timeout: time.Second})
	require.NoError(t, err)
	put, err := db.PutSchedule(ctx, faas.Schedule{Owner: "ann", Function: "f", Cron: "@every 10s"})
	require.NoError(t, err)
	return db, put
}

// TestRefusedTick: a tick whose job the queue refuses for good is
// recorded as skipped, not retried; one refused for now is retried.
func TestRefusedTick(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code     faas.Code
		recorded bool
	}{
		{faas.TooMany, true},
		{faas.NotFound, true},
		{faas.Unavailable, false},
	} {
		t.Run(string(tc.code), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, put := scheduledStore(t, ctx)
			ticks := newTicks()
			refuse := func(context.Context, faas.Job) (faas.Job, error) { return faas.Job{}, faas.Errorf(tc.code, "refused") }
			s := newScheduler(db, refuse, ticks, slog.New(slog.DiscardHandler))
			now := put.Updated.Truncate(10 * time.Second).Add(10 * time.Second)
			_, err := s.fireDue(ctx, now)
			sc, rerr := db.Schedule(ctx, "ann", "f")
			require.NoError(t, rerr)
			if tc.recorded {
				require.NoError(t, err)
				require.Equal(t, now, sc.LastTick)
				require.Equal(t, 1.0, testutil.ToFloat64(ticks.WithLabelValues(tickSkipped)))
				return
			}
			require.Error(t, err)
			require.True(t, sc.LastTick.IsZero(), "a tick refused for now is tried again")
			require.Zero(t, testutil.ToFloat64(ticks.WithLabelValues(tickSkipped)))
		})
	}
}

// crashingStore is a real Store whose ScheduleFired fails the first time,
// as if the scheduler died between submitting a tick's job and recording
// the tick.
type crashingStore struct {
	faas.Store
	crashed bool
}

func (s *crashingStore) ScheduleFired(ctx context.Context, owner, function string, updated, tick time.Time) error {
	if !s.crashed {
		s.crashed = true
		return faas.Errorf(faas.Unavailable, "crashed")
	}
	return s.Store.ScheduleFired(ctx, owner, function, updated, tick)
}

// TestTickFiresOnceAcrossCrash: a tick fired again because it was not
// recorded submits the job it submitted before, which the Store keeps
// as one.
func TestTickFiresOnceAcrossCrash(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, put := scheduledStore(t, ctx)

	store := &crashingStore{Store: db}
	ticks := newTicks()
	s := newScheduler(store, db.CreateJob, ticks, slog.New(slog.DiscardHandler))
	now := put.Updated.Truncate(10 * time.Second).Add(10 * time.Second)
	_, err := s.fireDue(ctx, now)
	require.Error(t, err, "the tick was not recorded")
	next, err := s.fireDue(ctx, now.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, now.Add(10*time.Second), next)

	jobs, err := db.Jobs(ctx, "ann", faas.JobPage{})
	require.NoError(t, err)
	require.Len(t, jobs, 1, "one job for the tick")
	require.Equal(t, TickJobID("ann", "f", now), jobs[0].ID)
	require.Equal(t, faas.TriggerSchedule, jobs[0].Trigger)
	sc, err := db.Schedule(ctx, "ann", "f")
	require.NoError(t, err)
	require.Equal(t, now, sc.LastTick)
	require.Equal(t, 1.0, testutil.ToFloat64(ticks.WithLabelValues(tickFired)), "a tick fired twice counts once")
	// Recorded, the tick is not due again.
	_, err = s.fireDue(ctx, now.Add(2*time.Second))
	require.NoError(t, err)
	jobs, err = db.Jobs(ctx, "ann", faas.JobPage{})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
}
