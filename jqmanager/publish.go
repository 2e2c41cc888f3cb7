package jqmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"faas/proxies/faas"
)

// topicNamespace is the namespace of the ids of the jobs a publish
// creates. It must never change: a retried publish would then create its
// jobs again under new ids.
var topicNamespace = uuid.MustParse("0b6f1c52-61d6-4b8e-9a43-2f7d5d0c9e71")

// topicJobID is the id of the job that the publish of owner to topic under
// key creates for function. NUL occurs in no name, so no two tuples give
// the same input, whatever the key holds.
func topicJobID(owner, topic, key, function string) string {
	return uuid.NewSHA1(topicNamespace, []byte(owner+"\x00"+topic+"\x00"+key+"\x00"+function)).String()
}

// Publish implements faas.JobQueue. Every job's id derives from the
// publish and its function, so a retry (by the caller, or the proxy's
// resend of a request whose reply was lost) finds the jobs created before
// and creates only those missing: the subscribers added since, or those
// a failed try did not reach. The Store's CreateJob of an existing id is
// a no-op that answers the job.
func (m *Manager) Publish(ctx context.Context, owner, topic string, event json.RawMessage, key string) ([]string, error) {
	switch {
	case !faas.ValidName(topic):
		return nil, faas.Errorf(faas.Invalid, "invalid topic name %.80q: want 1-%d letters, digits, '_', '.' or '-', not dots alone", topic, faas.MaxNameLen)
	case key == "":
		return nil, faas.Errorf(faas.Invalid, "publish to %s has no idempotency key", topic)
	case !json.Valid(event):
		return nil, faas.Errorf(faas.Invalid, "event published to %s is not JSON", topic)
	}
	subs, err := m.store.Subscriptions(ctx, owner, faas.SubscriptionFilter{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("subscribers of %s: %w", topic, err)
	}
	args, err := json.Marshal([]json.RawMessage{event})
	if err != nil {
		return nil, faas.Errorf(faas.Invalid, "event published to %s: %v", topic, err)
	}
	created := time.Now().UTC()
	jobs := make([]faas.Job, len(subs))
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = topicJobID(owner, topic, key, sub.Function)
		jobs[i] = faas.Job{ID: ids[i], Owner: owner, Function: sub.Function, Args: args, Created: created, Trigger: faas.TriggerTopic}
	}
	stored, err := m.submitAll(ctx, owner, jobs)
	if faas.ErrorCode(err) == faas.TooMany {
		// A retry whose jobs have left the queue would count them again:
		// only those the Store does not hold are new.
		var fresh []faas.Job
		if fresh, stored, err = m.unstored(ctx, jobs); err == nil {
			_, err = m.submitAll(ctx, owner, fresh)
		}
	}
	if err == nil {
		err = sameEvent(stored, args, key)
	}
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", topic, err)
	}
	return ids, nil
}

// PublishChild implements faas.JobQueue. The event is published as the
// leased job's owner, so a worker can publish only for the users whose
// jobs it runs, and only while it runs them.
func (m *Manager) PublishChild(ctx context.Context, worker string, l faas.Lease, topic string, event json.RawMessage, key string) ([]string, error) {
	if err := m.awaitConfirmed(ctx, l); err != nil {
		return nil, err
	}
	m.mu.Lock()
	job, ok := m.holds(worker, l)
	m.mu.Unlock()
	if !ok {
		return nil, faas.Errorf(faas.Conflict, "job %s attempt %d is not held by worker %s", l.ID, l.Attempt, worker)
	}
	return m.Publish(ctx, job.owner(), topic, event, key)
}

// unstored splits jobs into those the Store does not hold and those it
// does, as stored.
func (m *Manager) unstored(ctx context.Context, jobs []faas.Job) (fresh, stored []faas.Job, err error) {
	for _, j := range jobs {
		sj, err := m.store.Job(ctx, j.ID)
		switch faas.ErrorCode(err) {
		case "":
			stored = append(stored, sj)
		case faas.NotFound:
			fresh = append(fresh, j)
		default:
			return nil, nil, fmt.Errorf("look up job %s: %w", j.ID, err)
		}
	}
	return fresh, stored, nil
}

// sameEvent checks that the stored jobs of a publish hold args: a key
// reused for another event is the caller's mistake, answered as a reused
// key of a run is, rather than with the first event's jobs as if they
// were the second's. The arguments are compared as stored, compact JSON,
// so spacing does not count but key order does.
func sameEvent(stored []faas.Job, args json.RawMessage, key string) error {
	for _, j := range stored {
		if !bytes.Equal(j.Args, args) {
			return faas.Errorf(faas.Conflict, "Idempotency-Key %.80q reused with a different event", key)
		}
	}
	return nil
}
