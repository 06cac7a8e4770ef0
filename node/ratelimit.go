package node

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter gives each client (token name or remote host) its own token
// bucket. It remembers at most maxClients clients, forgetting those idle
// longest, so a flood of addresses cannot grow it without bound.
type rateLimiter struct {
	mu         sync.Mutex
	limit      rate.Limit
	burst      int
	clients    map[string]*clientBucket
	maxClients int
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(perSecond float64, burst, maxClients int) *rateLimiter {
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, clients: make(map[string]*clientBucket), maxClients: maxClients}
}

// allow reports whether client may make a request now, and if not, how long
// until it may.
func (r *rateLimiter) allow(client string, now time.Time) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.clients[client]
	if !ok {
		if len(r.clients) >= r.maxClients {
			r.evictLocked(now)
		}
		b = &clientBucket{lim: rate.NewLimiter(r.limit, r.burst)}
		r.clients[client] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictLocked forgets clients idle for a minute; if none are, it forgets
// half of them (a client forgotten starts again with a full bucket, which a
// flood of fresh addresses cannot exploit beyond one burst each).
func (r *rateLimiter) evictLocked(now time.Time) {
	for k, b := range r.clients {
		if now.Sub(b.seen) > time.Minute {
			delete(r.clients, k)
		}
	}
	for k := range r.clients {
		if len(r.clients) < r.maxClients/2 {
			break
		}
		delete(r.clients, k)
	}
}
