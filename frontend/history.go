package frontend

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"faas/proxies/faas"
)

// The page sizes of a job listing.
const (
	defaultJobLimit = 50
	maxJobLimit     = 500
)

// JobSummary is what a job listing says of one job; GET /j/:id/info has
// the rest.
type JobSummary struct {
	ID         string        `json:"id"`
	Function   string        `json:"function"`
	State      faas.JobState `json:"state"`
	Created    time.Time     `json:"created"`
	DurationMS float64       `json:"duration_ms"`
	// ErrorCode says why a failed job failed.
	ErrorCode faas.Code `json:"error_code,omitempty"`
	// Trigger is the job's faas.Job.Trigger, so that a listing tells a
	// schedule's or a webhook's jobs from the user's runs.
	Trigger string `json:"trigger,omitempty"`
}

// JobList is what GET /u/:u/jobs answers: a page of jobs, newest first,
// and the cursor of the next page, absent on the last.
type JobList struct {
	Jobs       []JobSummary `json:"jobs"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// listJobs answers a page of the user's jobs, newest first, optionally of
// one function (?fn) or in one state (?state).
func (s *Server) listJobs(c *gin.Context) {
	owner := c.Param("u")
	page, err := jobPageParams(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	limit := page.Limit
	page.Limit++ // one more tells whether there is a next page
	ctx, cancel := s.reqCtx(c, 0)
	defer cancel()
	jobs, err := s.store.Jobs(ctx, owner, page)
	if err != nil {
		s.fail(c, fmt.Errorf("list jobs of %s: %w", owner, err))
		return
	}
	list := JobList{Jobs: make([]JobSummary, 0, min(len(jobs), limit))}
	if len(jobs) > limit {
		jobs = jobs[:limit]
		list.NextCursor = encodeJobCursor(jobs[limit-1])
	}
	for _, j := range jobs {
		sum := JobSummary{ID: j.ID, Function: j.Function, State: j.State, Created: j.Created, DurationMS: millis(j.Duration), Trigger: j.Trigger}
		if j.Error != nil {
			sum.ErrorCode = j.Error.Code
		}
		list.Jobs = append(list.Jobs, sum)
	}
	ok(c, http.StatusOK, list)
}

// jobPageParams reads ?fn, ?state, ?limit and ?cursor of a job listing.
func jobPageParams(c *gin.Context) (faas.JobPage, error) {
	page := faas.JobPage{Limit: defaultJobLimit, Function: c.Query("fn"), State: faas.JobState(c.Query("state"))}
	if page.Function != "" && !faas.ValidName(page.Function) {
		return page, faas.Errorf(faas.Invalid, "invalid fn %.80q: want a function name", page.Function)
	}
	if page.State != "" && !page.State.Valid() {
		return page, faas.Errorf(faas.Invalid, "invalid state %.40q: want queued, running, succeeded or failed", page.State)
	}
	var err error
	if page.Limit, err = limitParam(c, defaultJobLimit, maxJobLimit); err != nil {
		return page, err
	}
	if v, present := c.GetQuery("cursor"); present {
		created, id, err := decodeJobCursor(v)
		if err != nil {
			return page, err
		}
		page.BeforeCreated, page.BeforeID = created, id
	}
	return page, nil
}

// limitParam reads ?limit, def when absent, which must be from 1 to most:
// every listing is bounded.
func limitParam(c *gin.Context, def, most int) (int, error) {
	v, present := c.GetQuery("limit")
	if !present {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, faas.Errorf(faas.Invalid, "invalid limit %.40q: want a number from 1 to %d", v, most)
	}
	return n, nil
}

// encodeJobCursor is the cursor of the page after job j: its creation
// time and ID, which order the listing. It is opaque to clients so that
// what it holds may change.
func encodeJobCursor(j faas.Job) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(j.Created.UnixMicro(), 10) + "." + j.ID))
}

// decodeJobCursor returns the creation time and ID a cursor holds.
func decodeJobCursor(v string) (time.Time, string, error) {
	bad := faas.Errorf(faas.Invalid, "invalid cursor %.80q: pass the next_cursor of the previous page", v)
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return time.Time{}, "", bad
	}
	micros, id, found := strings.Cut(string(b), ".")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !found || err != nil || us <= 0 || !validJobID(id) {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(us).UTC(), id, nil
}
