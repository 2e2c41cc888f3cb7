package frontend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// readyTimeout bounds a readiness probe: a manager that cannot answer a
// ping this fast is in no state to serve requests.
const readyTimeout = time.Second

// healthz answers as long as the process serves HTTP at all.
func (s *Server) healthz(c *gin.Context) { ok(c, http.StatusOK, "ok") }

// readyTTL is how long a readiness verdict is reused, so that a flood of
// probes costs the managers at most one ping each per readyTTL.
const readyTTL = time.Second

// readiness is the last verdict of the readiness probe.
type readiness struct {
	mu      sync.Mutex
	checked time.Time
	down    []string
}

// readyz answers 200 when both managers answered a ping within
// readyTimeout, at most readyTTL ago, so a load balancer sends no traffic
// to a frontend cut off from them.
func (s *Server) readyz(c *gin.Context) {
	down := s.managersDown(c.Request.Context())
	if len(down) == 0 {
		ok(c, http.StatusOK, "ready")
		return
	}
	// The names of the managers are no secret; their addresses stay in the log.
	abort(c, http.StatusServiceUnavailable, faas.Unavailable, fmt.Sprintf("not ready: no answer from %s", strings.Join(down, " and ")))
}

// managersDown names the managers that did not answer, pinging them only
// when the last verdict is older than readyTTL. Probes that arrive during
// a ping wait for it and share its verdict. The ping is not cut short by
// the probe that started it hanging up, since others may share it.
func (s *Server) managersDown(ctx context.Context) []string {
	r := &s.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < readyTTL {
		return r.down
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	var storeErr, queueErr error
	var wg sync.WaitGroup
	wg.Go(func() { storeErr = s.store.Ping(ctx) })
	wg.Go(func() { _, queueErr = s.queue.Stats(ctx) })
	wg.Wait()
	r.down = nil
	if storeErr != nil {
		r.down = append(r.down, "DB manager")
		s.log.Warn("not ready", "dependency", "DB manager", "err", storeErr)
	}
	if queueErr != nil {
		r.down = append(r.down, "JQ manager")
		s.log.Warn("not ready", "dependency", "JQ manager", "err", queueErr)
	}
	r.checked = time.Now()
	return r.down
}

// Stats is what GET /stats answers: the operator's view of the platform.
type Stats struct {
	faas.Stats
	AvgDurationMS float64 `json:"avg_duration_ms"`
}

// getStats answers the queue's statistics, the recent completion rate
// among them.
// Only the operator may see them (requireAdmin): they tell how busy the
// platform is, which helps whoever times an attack.
func (s *Server) getStats(c *gin.Context) {
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	st, err := s.queue.Stats(ctx)
	if err != nil {
		s.fail(c, fmt.Errorf("queue stats: %w", err))
		return
	}
	ok(c, http.StatusOK, Stats{Stats: st, AvgDurationMS: millis(st.AvgDuration)})
}

// The sizes of the operator's list of recent failures.
const (
	defaultFailureLimit = 20
	maxFailureLimit     = 100
)

// Failure is one failed job in the operator's list: whose, of which
// function, when it ended and why.
type Failure struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Function     string    `json:"function"`
	Finished     time.Time `json:"finished"`
	ErrorCode    faas.Code `json:"error_code"`
	ErrorMessage string    `json:"error_message"`
}

// FailureList is what GET /admin/failures answers, newest first.
type FailureList struct {
	Failures []Failure `json:"failures"`
}

// getFailures answers the newest failed jobs of every user (?limit of
// them). Only the operator may see them (requireAdmin): they name other
// users and their functions.
func (s *Server) getFailures(c *gin.Context) {
	limit, err := limitParam(c, defaultFailureLimit, maxFailureLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	jobs, err := s.store.FailedJobs(ctx, limit)
	if err != nil {
		s.fail(c, fmt.Errorf("list failed jobs: %w", err))
		return
	}
	list := FailureList{Failures: make([]Failure, 0, len(jobs))}
	for _, j := range jobs {
		f := Failure{ID: j.ID, Owner: j.Owner, Function: j.Function, Finished: j.Finished}
		if j.Error != nil {
			f.ErrorCode, f.ErrorMessage = j.Error.Code, j.Error.Message
		}
		list.Failures = append(list.Failures, f)
	}
	ok(c, http.StatusOK, list)
}
