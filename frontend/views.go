package frontend

import (
	"time"

	"faas/proxies/faas"
)

// The REST views below are the shapes of answers that differ from the
// domain records. They live here once, for the handlers and for the typed
// client in frontend/client alike, so the two cannot drift apart.

// Credentials is what registering and rotating a token answer: the only
// time the token is ever shown.
type Credentials struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// FunctionSettings is what an upload and a listing with ?fields=settings
// say of a function.
type FunctionSettings struct {
	Name      string    `json:"name,omitempty"`
	Version   int64     `json:"version"`
	TimeoutMS float64   `json:"timeout_ms"`
	MemoryMB  int       `json:"memory_mb"`
	Updated   time.Time `json:"updated"`
}

// FunctionInfo is what GET /u/:u/fn/:f answers: the source, the settings,
// and the names (never the values) of the function's env and secrets.
type FunctionInfo struct {
	Name        string    `json:"name"`
	Source      string    `json:"src"`
	Version     int64     `json:"version,omitempty"`
	TimeoutMS   float64   `json:"timeout_ms,omitempty"`
	MemoryMB    int       `json:"memory_mb,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	Updated     time.Time `json:"updated,omitzero"`
	Env         []string  `json:"env,omitempty"`
	Secrets     []string  `json:"secrets,omitempty"`
}

// JobSummary is one job of a listing.
type JobSummary struct {
	ID         string        `json:"id"`
	Function   string        `json:"function"`
	State      faas.JobState `json:"state"`
	Created    time.Time     `json:"created"`
	DurationMS float64       `json:"duration_ms"`
	ErrorCode  faas.Code     `json:"error_code,omitempty"`
}

// JobPage is what GET /u/:u/jobs answers: a page of jobs, newest first,
// and the cursor of the next page, empty on the last.
type JobPage struct {
	Jobs       []JobSummary `json:"jobs"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// LogLine is one line a function printed, with the stream it went to
// (log, info, warn or error) and its 0-based offset among the job's lines.
type LogLine struct {
	Offset int    `json:"offset"`
	Stream string `json:"stream"`
	Line   string `json:"line"`
}
