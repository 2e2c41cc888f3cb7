// Package lru is a small least-recently-used cache, safe for concurrent
// use. The worker keeps function versions in one and each sandbox keeps
// its compiled programs in another; both key by a function version, which
// never changes once stored, so entries never go stale and only size
// evicts them.
package lru

import (
	"container/list"
	"sync"
)

// Cache keeps at most a fixed number of entries, dropping the least
// recently used first. Create it with New.
type Cache[K comparable, V any] struct {
	max int

	mu    sync.Mutex
	order *list.List // of *entry[K, V], most recently used first
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a Cache that holds at most size entries (at least one).
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{max: max(size, 1), order: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value under k and marks it the most recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry[K, V]).val, true
}

// Put stores v under k, unless k is already there, and evicts the least
// recently used entries beyond the limit.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry[K, V]).key)
	}
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
