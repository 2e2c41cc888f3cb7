package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"faas/internal/backoff"
	"faas/proxies/faas"
)

// Backend runs workers somewhere.
type Backend interface {
	// Workers is the number of workers running (or, for a cluster, asked
	// for) now. A worker that died since the last Scale is not counted.
	Workers(ctx context.Context) (int, error)
	// Scale makes n workers run, starting or stopping some as needed.
	Scale(ctx context.Context, n int) error
	// Close releases the backend. The local backend stops its workers; a
	// cluster's workers outlive the scaler.
	Close() error
}

// maxBackoff caps the wait between two tries while the queue or the
// backend fails.
const maxBackoff = time.Minute

// Scaler polls the job queue and scales a backend to the policy's count.
type Scaler struct {
	cfg     Config
	queue   faas.JobQueue
	backend Backend
	log     *slog.Logger
	policy  Policy
	now     func() time.Time
	metrics *scalerMetrics
}

// New returns a scaler for queue and backend. The scaler owns the backend
// from then on: Run closes it when it returns.
func New(cfg Config, queue faas.JobQueue, backend Backend, log *slog.Logger) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if queue == nil || backend == nil {
		return nil, errors.New("scaler needs a queue and a backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scaler{
		cfg:     cfg,
		queue:   queue,
		backend: backend,
		log:     log.With("backend", cfg.Backend),
		policy:  cfg.policy(),
		now:     time.Now,
		metrics: newScalerMetrics(cfg.Metrics),
	}, nil
}

// Run scales until ctx ends, then closes the backend and returns. It keeps
// going through failures of the queue or the backend, waiting longer after
// each consecutive one; the workers stay as they are meanwhile.
func (s *Scaler) Run(ctx context.Context) error {
	s.log.Info("scaler started", "jq_url", s.cfg.JQURL,
		"min", s.cfg.MinWorkers, "max", s.cfg.MaxWorkers, "interval", s.cfg.Interval,
		"drain_target", s.cfg.DrainTarget, "cooldown", s.cfg.Cooldown,
		"worker_concurrency", s.cfg.WorkerConcurrency)
	timer := time.NewTimer(0)
	defer timer.Stop()
	target := -1 // unknown until the backend says
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return s.close()
		case <-timer.C:
		}
		var err error
		target, err = s.tick(ctx, target)
		wait := s.cfg.Interval
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			// Shutting down: the error is the cancellation itself.
		default:
			failures++
			s.metrics.failures.Inc()
			wait = retryPolicy(s.cfg.Interval).Delay(failures)
			s.log.Warn("scaling step failed", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
		}
		timer.Reset(wait)
	}
}

// tick runs one scaling step from the last target (-1 when unknown) and
// returns the new one.
func (s *Scaler) tick(ctx context.Context, target int) (int, error) {
	// A proxy retries until its context ends, so each call gets at most one
	// interval (but time enough for a round trip).
	callCtx, cancel := context.WithTimeout(ctx, max(s.cfg.Interval, time.Second))
	defer cancel()
	actual, err := s.backend.Workers(callCtx)
	if err != nil {
		return target, fmt.Errorf("count workers: %w", err)
	}
	if target < 0 {
		target = actual
	}
	stats, err := s.queue.Stats(callCtx)
	if err != nil {
		// Keep what runs; only replace workers that died.
		if actual != target {
			err = errors.Join(err, s.scale(ctx, actual, target, "replace"))
		}
		return target, fmt.Errorf("queue stats: %w", err)
	}
	d := s.policy.Decide(s.now(), stats, target)
	s.metrics.workers.Set(float64(actual))
	s.metrics.target.Set(float64(d.Target))
	attrs := []any{"queued", stats.Queued, "running", stats.Running,
		"seen_workers", stats.Workers, "avg_duration", stats.AvgDuration,
		"need", d.Need, "busy", d.Busy, "workers", actual, "target", d.Target,
		"reason", d.Reason}
	if d.Target == actual {
		s.log.Debug("scaling decision", attrs...)
		return d.Target, nil
	}
	s.log.Info("scaling decision", attrs...)
	if err := s.scale(ctx, actual, d.Target, d.Reason); err != nil {
		// Retry next time from the count that is known to run.
		return target, err
	}
	return d.Target, nil
}

func (s *Scaler) scale(ctx context.Context, from, to int, why string) error {
	if err := s.backend.Scale(ctx, to); err != nil {
		return fmt.Errorf("scale from %d to %d workers (%s): %w", from, to, why, err)
	}
	s.metrics.scaled(from, to)
	s.log.Info("scaled", "from", from, "to", to, "reason", why)
	return nil
}

func (s *Scaler) close() error {
	if err := s.backend.Close(); err != nil {
		return fmt.Errorf("close %s backend: %w", s.cfg.Backend, err)
	}
	s.log.Info("scaler stopped")
	return nil
}

// retryPolicy is the wait after consecutive failures: the interval
// doubled per failure up to maxBackoff (or twice the interval, if that is
// longer), jittered so that many scalers restarted together do not retry
// in step. It is never shorter than the interval.
func retryPolicy(interval time.Duration) backoff.Policy {
	return backoff.Policy{Base: 2 * interval, Max: max(maxBackoff, 2*interval)}
}
