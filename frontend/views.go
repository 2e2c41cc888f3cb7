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

// FunctionView is what GET /u/:u/fn/:f, an upload and a listing with
// ?fields=settings say of a function: its settings, the source (not in a
// listing), and the names (never the values) of its env and secrets.
type FunctionView struct {
	Name      string  `json:"name"`
	Source    string  `json:"src,omitempty"`
	Version   int64   `json:"version"`
	TimeoutMS float64 `json:"timeout_ms"`
	// MemoryMB is the sandbox memory cap; 0 means the worker's default.
	MemoryMB int       `json:"memory_mb"`
	Created  time.Time `json:"created,omitzero"`
	Updated  time.Time `json:"updated"`
	Env      []string  `json:"env,omitempty"`
	Secrets  []string  `json:"secrets,omitempty"`
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

// JobList is what GET /u/:u/jobs answers: a page of jobs, newest first,
// and the cursor of the next page, empty on the last.
type JobList struct {
	Jobs       []JobSummary `json:"jobs"`
	NextCursor string       `json:"next_cursor,omitempty"`
}
