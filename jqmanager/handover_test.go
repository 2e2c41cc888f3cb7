package jqmanager_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"faas/jqmanager"
	"faas/jqmanager/queuetest"
	"faas/proxies/faas"
)

// handedOver reports whether js is a creation of a job handed over to its
// worker before the Store answered: leased, at a version.
func handedOver(js []faas.Job) bool {
	return len(js) == 1 && js[0].State == faas.Running && js[0].Version != 0
}

// gatedStore holds back each creation of a job handed over until it
// receives from gate (nil: no wait), and fails the first fails of them as
// unavailable.
type gatedStore struct {
	*faultyStore
	gate  chan struct{}
	fails int
}

func (s *gatedStore) CreateJobs(ctx context.Context, js []faas.Job) ([]faas.JobResult, error) {
	if handedOver(js) {
		if s.gate != nil {
			select {
			case <-s.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if s.fails > 0 {
			s.fails--
			return nil, faas.Errorf(faas.Unavailable, "store down for a moment")
		}
	}
	return s.faultyStore.CreateJobs(ctx, js)
}

// handOverRig is a manager over store, for user ann with function f, that
// has run one job of f, so that it knows f's version.
func handOverRig(t *testing.T, wrap func(*faultyStore) faas.Store) (*rig, *jqmanager.Manager) {
	t.Helper()
	r := openRig(t, "ann")
	m, _, _ := runOver(t, wrap(&faultyStore{Store: r.store}))
	r.m = m
	r.awaitServing()
	first := queuetest.Submit(t, r.ctx, m, "ann", "f")
	j, ok, err := nextOne(m, r.ctx, "w0", time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, first.ID, j.ID)
	require.NoError(t, queuetest.Complete(r.ctx, m, j))
	return r, m
}

// pollIdle starts the poll of worker, one the queue has not seen yet, and
// waits until it is idle, so that the next job submitted is created
// leased to it.
func pollIdle(t *testing.T, r *rig, m *jqmanager.Manager, worker string) <-chan faas.Job {
	t.Helper()
	before, err := m.Stats(r.ctx)
	require.NoError(t, err)
	got := make(chan faas.Job, 1)
	go func() {
		j, _, _ := nextOne(m, r.ctx, worker, 5*time.Second)
		got <- j
	}()
	require.Eventually(t, func() bool { st, _ := m.Stats(r.ctx); return st.Workers > before.Workers }, 5*time.Second, time.Millisecond)
	return got
}

// TestHandOverBeforeCreation: a job submitted while a worker waits, of a
// function whose version the queue knows, reaches the worker before the
// Store has answered its creation, exactly as the Store then records it.
// The worker's children and completion wait for that answer, and the
// submitter is answered only once the job is durable.
func TestHandOverBeforeCreation(t *testing.T) {
	t.Parallel()
	store := &gatedStore{gate: make(chan struct{})}
	r, m := handOverRig(t, func(s *faultyStore) faas.Store { store.faultyStore = s; return store })
	fn, err := r.store.Function(r.ctx, "ann", "f")
	require.NoError(t, err)

	// handedOver submits a job while worker waits and returns it as the
	// worker got it, and the submitter's answer to come.
	handedOver := func(worker string) (faas.Job, <-chan faas.Job) {
		got := pollIdle(t, r, m, worker)
		submitted := make(chan faas.Job, 1)
		go func() { submitted <- queuetest.Submit(t, r.ctx, m, "ann", "f") }()
		select {
		case j := <-got:
			require.Equal(t, fn.Version, j.Version)
			require.Equal(t, faas.Running, j.State)
			require.Equal(t, worker, j.Worker)
			_, err = r.store.Job(r.ctx, j.ID)
			require.Equal(t, faas.NotFound, faas.ErrorCode(err), "handed over before it was stored")
			return j, submitted
		case <-time.After(5 * time.Second):
			t.Fatal("the worker got nothing while the creation was held back")
		}
		return faas.Job{}, nil
	}
	// stillWaiting checks that neither the submitter nor what is asked of
	// the job is answered before the Store answers the creation.
	stillWaiting := func(submitted <-chan faas.Job, asked <-chan error, what string) {
		select {
		case s := <-submitted:
			t.Fatalf("submitter answered before the job was stored: %+v", s)
		case err := <-asked:
			t.Fatalf("%s answered (%v) before the job was stored", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	parent, submitted := handedOver("w1")
	child := make(chan error, 1)
	go func() {
		_, err := m.SubmitChild(r.ctx, "w1", faas.Lease{ID: parent.ID, Attempt: 1}, faas.Job{ID: uuid.NewString(), Function: "f"})
		child <- err
	}()
	stillWaiting(submitted, child, "a child submission")
	store.gate <- struct{}{}
	require.Equal(t, parent, <-submitted, "the worker's job is the one stored")
	require.NoError(t, <-child)
	require.NoError(t, queuetest.Complete(r.ctx, m, parent))
	// The child ran, so that the next job is handed over again.
	c, ok, err := nextOne(m, r.ctx, "w9", time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, queuetest.Complete(r.ctx, m, c))

	j, submitted := handedOver("w2")
	done := make(chan error, 1)
	go func() {
		done <- completeOne(r.ctx, m, "w2", faas.Completion{JobID: j.ID, Attempt: 1, Result: json.RawMessage("1")})
	}()
	stillWaiting(submitted, done, "the completion")
	store.gate <- struct{}{}
	require.Equal(t, j, <-submitted)
	require.NoError(t, <-done)

	for id, children := range map[string]int{parent.ID: 1, j.ID: 0} {
		stored, err := r.store.Job(r.ctx, id)
		require.NoError(t, err)
		require.Equal(t, faas.Succeeded, stored.State)
		require.Len(t, stored.Children, children)
	}
}

// TestHandOverRevoked: when the Store does not create a job handed over
// as it was (it failed, or the function moved to another version), the
// worker's attempt is revoked: its completion and its children are
// refused, even once the same worker holds the job's next attempt. The
// job is created anew, queued past the revoked attempt, which it does not
// list as lost, and runs once.
func TestHandOverRevoked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fails int
		// replace replaces the function after the queue learnt its
		// version.
		replace bool
	}{
		{"store failed", 1, false},
		{"version moved", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &gatedStore{fails: tc.fails}
			r, m := handOverRig(t, func(s *faultyStore) faas.Store { store.faultyStore = s; return store })
			if tc.replace {
				_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ann", Name: "f", Source: "x => x + 1", Timeout: time.Second})
				require.NoError(t, err)
			}
			fn, err := r.store.Function(r.ctx, "ann", "f")
			require.NoError(t, err)

			got := pollIdle(t, r, m, "w1")
			s := queuetest.Submit(t, r.ctx, m, "ann", "f")
			j := <-got
			require.Equal(t, s.ID, j.ID)
			require.Equal(t, faas.Queued, s.State, "created anew, queued")
			require.Equal(t, 1, s.Attempt, "past the revoked attempt")
			require.Equal(t, fn.Version, s.Version)

			// The same worker, polling again, gets the job's next attempt.
			again, ok, err := nextOne(m, r.ctx, "w1", time.Second)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, j.ID, again.ID)
			require.Equal(t, 2, again.Attempt)
			require.Equal(t, fn.Version, again.Version)

			_, err = m.SubmitChild(r.ctx, "w1", faas.Lease{ID: j.ID, Attempt: 1}, faas.Job{ID: uuid.NewString(), Function: "f"})
			require.Equal(t, faas.Conflict, faas.ErrorCode(err), "a revoked attempt submits nothing")
			err = completeOne(r.ctx, m, "w1", faas.Completion{JobID: j.ID, Attempt: 1, Result: json.RawMessage("1")})
			require.Equal(t, faas.Conflict, faas.ErrorCode(err), "a revoked attempt completes nothing")

			require.NoError(t, queuetest.Complete(r.ctx, m, again))
			stored, err := r.store.Job(r.ctx, j.ID)
			require.NoError(t, err)
			require.Equal(t, faas.Succeeded, stored.State)
			require.Equal(t, 2, stored.Attempt)
			require.Empty(t, stored.Children)
			require.Empty(t, stored.Lost, "the revoked attempt is not the user's")
		})
	}
}

// TestChangedFunctionIsNotHandedOver: once told that a function was
// replaced (a frontend does, after storing it; a dry run stores its source
// as a function each time), the queue hands no job of it over before the
// Store names its version, where it would be revoked and run for nothing.
func TestChangedFunctionIsNotHandedOver(t *testing.T) {
	t.Parallel()
	store := &gatedStore{gate: make(chan struct{})}
	r, m := handOverRig(t, func(s *faultyStore) faas.Store { store.faultyStore = s; return store })
	for range 2 {
		_, _, err := r.store.PutFunction(r.ctx, faas.Function{Owner: "ann", Name: "f", Source: "x => x * 2", Timeout: time.Second})
		require.NoError(t, err)
		require.NoError(t, m.FunctionChanged(r.ctx, "ann", "f"))
		got := pollIdle(t, r, m, uuid.NewString())
		submitted := make(chan faas.Job, 1)
		go func() { submitted <- queuetest.Submit(t, r.ctx, m, "ann", "f") }()
		var s faas.Job
		select {
		case s = <-submitted:
		case <-time.After(5 * time.Second):
			t.Fatal("the job was handed over: its creation, held back, never came")
		}
		j := <-got
		require.Equal(t, s, j, "created leased before the worker got it")
		require.NoError(t, queuetest.Complete(r.ctx, m, j))
	}
}

// TestHandedOverJobIsReaped: a job handed over before its creation was
// answered is, once the Store has answered, a leased job like any other:
// if its worker goes quiet (killed), the lease runs out and the job goes
// to another worker at its next attempt.
func TestHandedOverJobIsReaped(t *testing.T) {
	t.Parallel()
	store := &gatedStore{}
	r, m := handOverRig(t, func(s *faultyStore) faas.Store { store.faultyStore = s; return store })
	got := pollIdle(t, r, m, "w1")
	s := queuetest.Submit(t, r.ctx, m, "ann", "f")
	j := <-got
	require.Equal(t, s, j, "handed over, then stored as handed over")

	// w1 never renews nor completes.
	again, ok, err := nextOne(m, r.ctx, "w2", 5*time.Second)
	require.NoError(t, err)
	require.True(t, ok, "the lease of the quiet worker never ran out")
	require.Equal(t, j.ID, again.ID)
	require.Equal(t, 2, again.Attempt)
	require.NoError(t, queuetest.Complete(r.ctx, m, again))
}
