package jqmanager

import (
	"context"

	"faas/proxies/faas"
)

// maxLiveLogs bounds the bytes of a running job's output the queue holds:
// the sandbox's default cap on a job's console output (64 KiB), which
// the output cannot pass; a worker that sends more loses the rest here,
// but not in the Store, which gets the whole output with the completion.
const maxLiveLogs = 64 << 10

// maxEventLogs bounds the bytes of lines one JobLogs event carries, as
// maxEventResult does for results; a larger batch is announced without
// its lines and the readers ask Logs.
const maxEventLogs = 8 << 10

// AppendLogs implements faas.JobQueue.
func (m *Manager) AppendLogs(ctx context.Context, worker string, l faas.Lease, lines []faas.LogLine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.holds(worker, l)
	if !ok {
		return faas.Errorf(faas.Conflict, "job %s attempt %d is not held by worker %s", l.ID, l.Attempt, worker)
	}
	var added []faas.LogLine
	size := 0
	for _, line := range lines {
		if len(e.run.logs) == 0 {
			// A manager restarted under a running job hears its
			// output from wherever the worker is.
			e.run.logBase = line.Offset
		}
		if line.Offset != e.run.logBase+len(e.run.logs) {
			continue // held already: a retried batch
		}
		if e.run.logBytes+len(line.Line) > maxLiveLogs {
			break
		}
		e.run.logBytes += len(line.Line)
		e.run.logs = append(e.run.logs, line)
		added = append(added, line)
		size += len(line.Line)
	}
	if len(added) == 0 {
		return nil
	}
	ev := faas.Event{Kind: faas.JobLogs, JobID: e.id}
	if size <= maxEventLogs {
		ev.Lines = added
	}
	m.events.add(ev)
	return nil
}

// Logs implements faas.JobQueue.
func (m *Manager) Logs(ctx context.Context, id string, from int) ([]faas.LogLine, bool, error) {
	if from < 0 {
		return nil, false, faas.Errorf(faas.Invalid, "log offset %d: want 0 or more", from)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[id]
	if !ok || e.state != stateRunning {
		return nil, false, nil
	}
	from = max(from-e.run.logBase, 0)
	if from >= len(e.run.logs) {
		return nil, true, nil
	}
	return append([]faas.LogLine(nil), e.run.logs[from:]...), true, nil
}
