package mongo

import (
	"encoding/json"
	"time"

	"faas/dbmanager/internal/lifecycle"
	"faas/proxies/faas"
)

// The documents as stored. Times are Unix microseconds, durations
// nanoseconds, JSON values strings.

type userDoc struct {
	Name      string `bson:"_id"`
	TokenHash string `bson:"token_hash"`
	Created   int64  `bson:"created"`
}

type functionDoc struct {
	ID     string `bson:"_id"`
	Owner  string `bson:"owner"`
	Name   string `bson:"name"`
	Source string `bson:"source"`
	// SourceBytes is len(Source), kept so that usage sums it without
	// reading sources.
	SourceBytes int64 `bson:"source_bytes"`
	Version     int64 `bson:"version"`
	Timeout     int64 `bson:"timeout"`
	MemoryMB    int   `bson:"memory_mb"`
	// Concurrency is absent, so 0 (no limit), in documents stored before
	// it existed.
	Concurrency int   `bson:"concurrency,omitempty"`
	Updated     int64 `bson:"updated"`
	// Env and Secrets are stored as the DB manager hands them over:
	// secrets already encrypted.
	Env     map[string]string `bson:"env,omitempty"`
	Secrets map[string]string `bson:"secrets,omitempty"`
	// Created is 0 in documents stored before it was kept; their last
	// update stands in for it.
	Created int64 `bson:"created"`
}

func (d functionDoc) function() faas.Function {
	created := d.Created
	if created == 0 {
		created = d.Updated
	}
	return faas.Function{Owner: d.Owner, Name: d.Name, Source: d.Source, Version: d.Version,
		Timeout: time.Duration(d.Timeout), MemoryMB: d.MemoryMB, Concurrency: d.Concurrency, Updated: lifecycle.Time(d.Updated), Created: lifecycle.Time(created),
		Env: d.Env, Secrets: d.Secrets}
}

type errorDoc struct {
	Code    string `bson:"code"`
	Message string `bson:"message"`
}

func errorDocs(errs []*faas.Error) []errorDoc {
	docs := make([]errorDoc, 0, len(errs))
	for _, e := range errs {
		docs = append(docs, errorDoc{Code: string(e.Code), Message: e.Message})
	}
	return docs
}

type jobDoc struct {
	ID       string     `bson:"_id"`
	Owner    string     `bson:"owner"`
	Function string     `bson:"function"`
	Version  int64      `bson:"version"`
	Args     string     `bson:"args"`
	State    string     `bson:"state"`
	Attempt  int        `bson:"attempt"`
	Worker   string     `bson:"worker"`
	Created  int64      `bson:"created"`
	Started  int64      `bson:"started"`
	Finished int64      `bson:"finished"`
	Result   string     `bson:"result"`
	Error    *errorDoc  `bson:"error"`
	Duration int64      `bson:"duration"`
	Billed   int64      `bson:"billed"`
	Logs     string     `bson:"logs"`
	Lost     []errorDoc `bson:"lost"`
	// Bytes is the size of Args, Result and Logs, kept so that usage sums
	// it without reading them. Jobs stored before it existed count 0
	// until they are purged.
	Bytes int64 `bson:"bytes"`
	// BillingPending marks a finished job whose ledger entry may be
	// missing; see the package documentation.
	BillingPending bool `bson:"billing_pending"`
	// Trace is the job's faas.Job.Trace; jobs stored before it existed
	// have none.
	Trace string `bson:"trace,omitempty"`
	// Streams is the job's faas.Job.Streams, left out when empty.
	Streams string `bson:"streams,omitempty"`
	// Concurrency is the job's faas.Job.Concurrency.
	Concurrency int    `bson:"concurrency,omitempty"`
	Trigger     string `bson:"trigger,omitempty"`
	// Parent is the job's faas.Job.Parent; the jobs_parent index finds
	// a job's children by it.
	Parent         string    `bson:"parent,omitempty"`
	Calls          []callDoc `bson:"calls,omitempty"`
	CallsTruncated bool      `bson:"calls_truncated,omitempty"`
}

// callDoc is a faas.Call.
type callDoc struct {
	Function string    `bson:"function"`
	Version  int64     `bson:"version,omitempty"`
	Duration int64     `bson:"duration"`
	Error    *errorDoc `bson:"error,omitempty"`
}

func newJobDoc(j faas.Job, billingPending bool) jobDoc {
	d := jobDoc{ID: j.ID, Owner: j.Owner, Function: j.Function, Version: j.Version, Args: string(j.Args),
		State: string(j.State), Attempt: j.Attempt, Worker: j.Worker,
		Created: lifecycle.Micros(j.Created), Started: lifecycle.Micros(j.Started), Finished: lifecycle.Micros(j.Finished),
		Result: string(j.Result), Duration: int64(j.Duration), Billed: int64(j.Billed), Logs: j.Logs,
		Lost: errorDocs(j.Lost), BillingPending: billingPending, Trace: j.Trace, Streams: j.Streams, Concurrency: j.Concurrency, Trigger: j.Trigger,
		Parent: j.Parent, CallsTruncated: j.CallsTruncated}
	for _, c := range j.Calls {
		cd := callDoc{Function: c.Function, Version: c.Version, Duration: int64(c.Duration)}
		if c.Error != nil {
			cd.Error = &errorDoc{Code: string(c.Error.Code), Message: c.Error.Message}
		}
		d.Calls = append(d.Calls, cd)
	}
	d.Bytes = int64(len(d.Args) + len(d.Result) + len(d.Logs))
	if j.Error != nil {
		d.Error = &errorDoc{Code: string(j.Error.Code), Message: j.Error.Message}
	}
	return d
}

func (d jobDoc) job() (faas.Job, error) {
	j := faas.Job{ID: d.ID, Owner: d.Owner, Function: d.Function, Version: d.Version,
		State: faas.JobState(d.State), Attempt: d.Attempt, Worker: d.Worker,
		Created: lifecycle.Time(d.Created), Started: lifecycle.Time(d.Started), Finished: lifecycle.Time(d.Finished),
		Duration: time.Duration(d.Duration), Billed: time.Duration(d.Billed), Logs: d.Logs, Trace: d.Trace, Streams: d.Streams, Concurrency: d.Concurrency, Trigger: d.Trigger,
		Parent: d.Parent, CallsTruncated: d.CallsTruncated}
	for _, cd := range d.Calls {
		c := faas.Call{Function: cd.Function, Version: cd.Version, Duration: time.Duration(cd.Duration)}
		if cd.Error != nil {
			c.Error = &faas.Error{Code: faas.Code(cd.Error.Code), Message: cd.Error.Message}
		}
		j.Calls = append(j.Calls, c)
	}
	// A listing leaves the arguments out: nil, not an empty JSON value.
	if d.Args != "" {
		j.Args = json.RawMessage(d.Args)
	}
	if d.Result != "" {
		j.Result = json.RawMessage(d.Result)
	}
	if d.Error != nil {
		j.Error = &faas.Error{Code: faas.Code(d.Error.Code), Message: d.Error.Message}
	}
	for _, e := range d.Lost {
		j.Lost = append(j.Lost, &faas.Error{Code: faas.Code(e.Code), Message: e.Message})
	}
	return j, nil
}

type ledgerDoc struct {
	JobID  string `bson:"_id"`
	Owner  string `bson:"owner"`
	Billed int64  `bson:"billed"`
	// Outcome is faas.Outcome of the job, which FinishedCounts groups
	// by; entries written before it was kept have none and are not
	// counted.
	Outcome string `bson:"outcome,omitempty"`
}
