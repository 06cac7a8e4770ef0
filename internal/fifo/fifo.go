// Package fifo is a map bounded in size that forgets its oldest entries
// first. It is not safe for concurrent use; callers lock.
package fifo

// Map holds at most its capacity of entries; adding a new key to a full
// map evicts the key added longest ago. Updating a key keeps its place.
// Its memory grows with the entries it holds, not with its capacity: a
// node's caches are sized for a busy network, and a node that sees little
// (or a simulation running hundreds of nodes in one process) should not
// pay for the capacity up front.
type Map[K comparable, V any] struct {
	m     map[K]V
	order []K // ring of keys in insertion order
	next  int // oldest key once the ring is full
	cap   int
}

// New returns a map of the given capacity (at least 1).
func New[K comparable, V any](capacity int) *Map[K, V] {
	return &Map[K, V]{m: map[K]V{}, cap: max(capacity, 1)}
}

// Get returns the value of k.
func (f *Map[K, V]) Get(k K) (V, bool) {
	v, ok := f.m[k]
	return v, ok
}

// Put sets k to v, evicting the oldest key when a new key finds the map
// full.
func (f *Map[K, V]) Put(k K, v V) {
	if _, ok := f.m[k]; ok {
		f.m[k] = v
		return
	}
	if len(f.order) < f.cap {
		f.order = append(f.order, k)
	} else {
		delete(f.m, f.order[f.next])
		f.order[f.next] = k
		f.next = (f.next + 1) % len(f.order)
	}
	f.m[k] = v
}

// Range calls fn with each entry, in no particular order, until fn returns
// false. fn must not change the map.
func (f *Map[K, V]) Range(fn func(K, V) bool) {
	for k, v := range f.m {
		if !fn(k, v) {
			return
		}
	}
}

// Len is the number of entries.
func (f *Map[K, V]) Len() int { return len(f.m) }
