package core

import (
	"maps"
	"sync"
	"sync/atomic"
)

// cowMap is a map read without a lock: it is replaced, never modified, so
// a lookup costs one atomic load. Adding copies it, which suits what is
// added rarely and never removed (a broker's tenants, a history's parts),
// read on every publish.
type cowMap[V any] struct {
	mu sync.Mutex // serialises adds
	m  atomic.Pointer[map[string]V]
}

// get returns the value of k, and whether there is one.
func (c *cowMap[V]) get(k string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// getOrAdd returns the value of k, made by add on first use.
func (c *cowMap[V]) getOrAdd(k string, add func() V) V {
	if v, ok := c.get(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.get(k); ok {
		return v
	}
	next := make(map[string]V)
	if m := c.m.Load(); m != nil {
		maps.Copy(next, *m)
	}
	v := add()
	next[k] = v
	c.m.Store(&next)
	return v
}

// all returns the map as it stands; the caller must not modify it.
func (c *cowMap[V]) all() map[string]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}
