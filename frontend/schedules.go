package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"faas/internal/schedule"
	"faas/proxies/faas"
)

// nextTicks is how many fire times a schedule's view lists.
const nextTicks = 5

// defaultZone is the zone of a schedule that names none.
const defaultZone = "UTC"

// ScheduleRequest is the body of PUT /u/:u/fn/:f/schedule.
type ScheduleRequest struct {
	Cron string `json:"cron"`
	// Args is the JSON array each tick's job runs with; absent is [].
	Args json.RawMessage `json:"args,omitempty"`
	// Timezone is an IANA zone; absent is UTC.
	Timezone string `json:"timezone,omitempty"`
}

// ScheduleView is a schedule as the API shows it.
type ScheduleView struct {
	Function string          `json:"function"`
	Cron     string          `json:"cron"`
	Timezone string          `json:"timezone"`
	Args     json.RawMessage `json:"args"`
	Updated  time.Time       `json:"updated"`
	// LastTick is the latest tick fired; null until the first.
	LastTick *time.Time `json:"last_tick"`
	// Next is when the schedule fires next, the first nextTicks times.
	Next []time.Time `json:"next"`
}

func newScheduleView(sc faas.Schedule, sp schedule.Spec, now time.Time) ScheduleView {
	v := ScheduleView{Function: sc.Function, Cron: sc.Cron, Timezone: sc.Timezone, Args: sc.Args,
		Updated: sc.Updated, Next: sp.NextN(now, nextTicks)}
	if !sc.LastTick.IsZero() {
		v.LastTick = &sc.LastTick
	}
	return v
}

// parseSchedule reads and checks a schedule's body: every error names
// the bad value and what is expected, before anything is stored.
func parseSchedule(b []byte) (ScheduleRequest, schedule.Spec, error) {
	var req ScheduleRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt "timezone" would go unnoticed
	if err := dec.Decode(&req); err != nil {
		return req, schedule.Spec{}, faas.Errorf(faas.Invalid, `schedule is not {"cron": "...", "args": [...], "timezone": "..."}: %v`, err)
	}
	if req.Timezone == "" {
		req.Timezone = defaultZone
	}
	sp, err := schedule.Parse(req.Cron, req.Timezone)
	if err != nil {
		return req, sp, err
	}
	if len(req.Args) > maxArgsBytes {
		return req, sp, faas.Errorf(faas.TooLarge, "schedule arguments are larger than %d bytes", maxArgsBytes)
	}
	req.Args, err = parseArgs(req.Args)
	return req, sp, err
}

func (s *Server) putSchedule(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	// Room for the expression and zone besides arguments of the most
	// bytes a job may have.
	raw, err := readBody(c, maxArgsBytes+4<<10, "schedule")
	if err != nil {
		s.fail(c, err)
		return
	}
	req, sp, err := parseSchedule(raw)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	sc, err := s.store.PutSchedule(ctx, faas.Schedule{Owner: owner, Function: name, Cron: req.Cron,
		Timezone: req.Timezone, Args: req.Args, Updated: s.clock.now()})
	if err != nil {
		s.fail(c, fmt.Errorf("put schedule of %s/%s: %w", owner, name, err))
		return
	}
	if err := s.queue.Reschedule(ctx); err != nil {
		s.fail(c, fmt.Errorf("wake the scheduler for %s/%s: %w", owner, name, err))
		return
	}
	ok(c, http.StatusOK, newScheduleView(sc, sp, time.Now()))
}

func (s *Server) getSchedule(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	sc, err := s.store.Schedule(ctx, owner, name)
	if err != nil {
		s.fail(c, fmt.Errorf("read schedule of %s/%s: %w", owner, name, err))
		return
	}
	sp, err := schedule.Parse(sc.Cron, sc.Timezone)
	if err != nil {
		// The frontend checked it when it was put: not the client's fault.
		s.fail(c, fmt.Errorf("stored schedule of %s/%s: %v", owner, name, err))
		return
	}
	ok(c, http.StatusOK, newScheduleView(sc, sp, time.Now()))
}

func (s *Server) deleteSchedule(c *gin.Context) {
	owner, name := c.Param("u"), c.Param("f")
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	if err := s.store.DeleteSchedule(ctx, owner, name); err != nil {
		s.fail(c, fmt.Errorf("delete schedule of %s/%s: %w", owner, name, err))
		return
	}
	// A scheduler left asleep rereads the schedules before it fires and
	// finds this one gone: telling it only spares it a wake-up.
	if err := s.queue.Reschedule(ctx); err != nil {
		s.log.Warn("scheduler not told of a deleted schedule", "user", owner, "function", name, "err", err)
	}
	ok(c, http.StatusOK, name)
}
