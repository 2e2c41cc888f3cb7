package frontend

import (
	"sync"

	"faas/proxies/faas"
)

// waitCaps bounds the requests of this process waiting for jobs, per user
// and in all. A wait holds no socket (jqproxy.Watch multiplexes them onto
// one stream of events) but a goroutine, a connection and some memory:
// the caps keep one user from taking all of them.
type waitCaps struct {
	perUser int
	total   int

	mu    sync.Mutex
	users map[string]int
	count int
}

func newWaitCaps(perUser, total int) *waitCaps {
	return &waitCaps{perUser: perUser, total: total, users: make(map[string]int)}
}

// admit counts a request of user that is about to wait, or refuses it
// with TooMany past the caps; release uncounts it. Requests are admitted
// before their job is submitted, so a refused one leaves nothing behind.
func (w *waitCaps) admit(user string) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.users[user] >= w.perUser:
		return nil, waitsFull(faas.Errorf(faas.TooMany, "user %s already has %d requests waiting for jobs, the most allowed (FAAS_MAX_WAITS_PER_USER); retry later or poll /j/:id", user, w.perUser))
	case w.count >= w.total:
		return nil, waitsFull(faas.Errorf(faas.TooMany, "%d requests are waiting for jobs, the most this server allows (FAAS_MAX_WAITS); retry later or poll /j/:id", w.total))
	}
	w.users[user]++
	w.count++
	return sync.OnceFunc(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.users[user]--; w.users[user] <= 0 {
			delete(w.users, user)
		}
		w.count--
	}), nil
}

// waitsFull marks a refusal by the wait caps for the metrics; a place
// frees up when any wait ends, so the retry comes as soon as a submission's.
func waitsFull(err *faas.Error) error {
	return &retryLater{err: err, after: pendingRetryAfter, reason: "waits"}
}

// admitted is how many requests were let in to wait.
func (w *waitCaps) admitted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}
