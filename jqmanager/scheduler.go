package jqmanager

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"faas/internal/schedule"
	"faas/proxies/faas"
)

// scheduler fires the ticks of the schedules in the Store as ordinary
// jobs, submitted to the manager like any other, so that the pending and
// concurrency limits apply. One goroutine runs it: it sleeps on a timer
// until the next tick is due, or until Reschedule wakes it, and rereads
// the schedules from the Store each time, which keeps no copy of them
// that could go stale.
type scheduler struct {
	store  faas.Store
	submit func(context.Context, faas.Job) (faas.Job, error)
	log    *slog.Logger
	// ticks counts the ticks recorded, by outcome.
	ticks *prometheus.CounterVec
	// wake holds one pending wake-up: more while it is full add nothing,
	// since one reread sees every change.
	wake chan struct{}
}

// The outcomes of a tick in faas_schedule_ticks_total.
const (
	tickFired   = "fired"
	tickSkipped = "skipped"
)

func newScheduler(store faas.Store, submit func(context.Context, faas.Job) (faas.Job, error), ticks *prometheus.CounterVec, log *slog.Logger) *scheduler {
	return &scheduler{store: store, submit: submit, ticks: ticks, log: log, wake: make(chan struct{}, 1)}
}

// poke makes the scheduler reread the schedules now.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run fires due ticks until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	failures := 0
	for {
		next, err := s.fireDue(ctx, time.Now())
		var timer *time.Timer
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			s.log.Warn("schedules not fired, retrying", "err", err, "failures", failures)
			timer = time.NewTimer(storeRetry.Delay(failures))
		case !next.IsZero():
			failures = 0
			timer = time.NewTimer(time.Until(next))
		default:
			failures = 0 // nothing scheduled: sleep until a schedule is put
		}
		var due <-chan time.Time
		if timer != nil {
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// fireDue fires every schedule's due tick at now and returns when the
// next tick of any schedule is due: zero when none ever is. It stops at
// the first error that a retry may cure, leaving the rest for the retry.
func (s *scheduler) fireDue(ctx context.Context, now time.Time) (next time.Time, err error) {
	list, err := s.store.Schedules(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, sc := range list {
		sp, err := schedule.Parse(sc.Cron, sc.Timezone)
		if err != nil {
			// The frontend checked it; a zone database without the
			// zone would do this, and no retry helps.
			s.log.Error("schedule unreadable", "user", sc.Owner, "function", sc.Function, "err", err)
			continue
		}
		// Ticks count from when the schedule was put: not before.
		last := sc.Updated
		if sc.LastTick.After(last) {
			last = sc.LastTick
		}
		if tick, ok := sp.Due(last, now); ok {
			if err := s.fire(ctx, sc, tick); err != nil {
				return time.Time{}, err
			}
			last = tick
		}
		if t := sp.Next(last); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next, nil
}

// fire submits the job of one tick, then records the tick. The job's id
// derives from the schedule and the tick, so that a scheduler that dies
// between the two steps submits the same job again when it restarts,
// which the Store takes as a no-op. A submission refused for good (the
// user at their pending limit, the function deleted meanwhile) still
// records the tick: it is skipped, not retried forever.
func (s *scheduler) fire(ctx context.Context, sc faas.Schedule, tick time.Time) error {
	j := faas.Job{ID: TickJobID(sc.Owner, sc.Function, tick), Owner: sc.Owner, Function: sc.Function,
		Args: sc.Args, Trigger: faas.TriggerSchedule}
	_, err := s.submit(ctx, j)
	outcome := tickFired
	switch {
	case err == nil:
		s.log.Debug("tick fired", "user", sc.Owner, "function", sc.Function, "tick", tick, "job_id", j.ID)
	case retryable(err):
		return err
	default:
		outcome = tickSkipped
		s.log.Warn("tick skipped", "user", sc.Owner, "function", sc.Function, "tick", tick, "err", err)
	}
	if err := s.store.ScheduleFired(ctx, sc.Owner, sc.Function, sc.Updated, tick); err != nil {
		return err
	}
	// Counted once recorded: a tick fired again after a crash counts once.
	s.ticks.WithLabelValues(outcome).Inc()
	return nil
}

// retryable reports whether a failed submission may succeed if tried
// again: the Store or the bus was down, or the manager is stopping.
func retryable(err error) bool {
	return faas.ErrorCode(err) == faas.Unavailable || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// tickNamespace makes tick job ids their own space of name-based UUIDs.
var tickNamespace = uuid.MustParse("0b7c3a4e-5f1d-4d2b-9a8e-6c0f2e9d7b31")

// TickJobID is the id of the job a schedule's tick submits: the same for
// the same function and tick, whichever scheduler fires it.
func TickJobID(owner, function string, tick time.Time) string {
	return uuid.NewSHA1(tickNamespace, []byte(owner+"\x00"+function+"\x00"+strconv.FormatInt(tick.UnixMicro(), 10))).String()
}
