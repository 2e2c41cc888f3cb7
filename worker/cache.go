package worker

import (
	"container/list"
	"sync"
	"time"

	"faas/worker/sandbox"
)

// programKey names one version of one function. A version never changes
// once stored, so a compiled program for it never goes stale.
type programKey struct {
	owner, name string
	version     int64
}

// compiled is a function version ready to run, with its time limit.
type compiled struct {
	prog    *sandbox.Program
	timeout time.Duration
}

// programCache keeps the most recently used compiled programs, so that a
// function called again and again is fetched and compiled once.
type programCache struct {
	max int

	mu    sync.Mutex
	order *list.List // of *cacheEntry, most recently used first
	items map[programKey]*list.Element
}

type cacheEntry struct {
	key programKey
	val compiled
}

func newProgramCache(max int) *programCache {
	return &programCache{max: max, order: list.New(), items: make(map[programKey]*list.Element)}
}

func (c *programCache) get(k programKey) (compiled, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return compiled{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).val, true
}

func (c *programCache) put(k programKey, v compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&cacheEntry{key: k, val: v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *programCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
