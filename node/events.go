package node

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
)

// Event is api.Event: IDs increase by one per event on a node, so a client
// that reconnects with Last-Event-ID gets exactly what it missed.
type Event = api.Event

// eventHub keeps the most recent events in a ring for replay and fans new
// ones out to subscribers. A subscriber that falls a full buffer behind is
// dropped; it reconnects with Last-Event-ID and replays from the ring.
type eventHub struct {
	mu   sync.Mutex
	next uint64
	ring []Event // circular; ring[(head+i)%len] is the i-th oldest
	head int
	size int
	// bytes is the data held in the ring, at most maxBytes: the oldest
	// events go first when either bound is reached.
	bytes, maxBytes int
	subs            map[*eventSub]struct{}
}

type eventSub struct {
	job    common.Hash // zero: every job
	ch     chan Event
	closed bool
}

// newEventHub numbers events from the current time in microseconds, so
// that ids keep increasing across restarts: a client that resumes with an
// id from before a restart gets every event since, never an old id reused.
func newEventHub(capacity, maxBytes int, now time.Time) *eventHub {
	return &eventHub{next: uint64(now.UnixMicro()), ring: make([]Event, capacity), maxBytes: maxBytes, subs: make(map[*eventSub]struct{})}
}

// eventBytes is what an event costs the buffer.
func eventBytes(e *Event) int { return len(e.Data) + len(e.Type) + 64 }

func (h *eventHub) publish(typ string, job common.Hash, at time.Time, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		log.Errorw("encode event", "type", typ, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := Event{ID: h.next, Type: typ, JobID: job, Time: at.UTC(), Data: raw}
	h.next++
	for h.size > 0 && (h.size == len(h.ring) || h.bytes+eventBytes(&e) > h.maxBytes) {
		h.bytes -= eventBytes(&h.ring[h.head])
		h.ring[h.head] = Event{}
		h.head = (h.head + 1) % len(h.ring)
		h.size--
	}
	h.ring[(h.head+h.size)%len(h.ring)] = e
	h.size++
	h.bytes += eventBytes(&e)
	for s := range h.subs {
		if s.job != (common.Hash{}) && s.job != job {
			continue
		}
		select {
		case s.ch <- e:
		default:
			h.dropLocked(s)
		}
	}
}

func (h *eventHub) dropLocked(s *eventSub) {
	if !s.closed {
		s.closed = true
		close(s.ch)
		delete(h.subs, s)
	}
}

// subscribe returns the buffered events after lastID (for job, or all when
// job is zero) and a subscription for what comes next, atomically: nothing
// falls between the two.
func (h *eventHub) subscribe(job common.Hash, lastID uint64) ([]Event, *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var backlog []Event
	for i := range h.size {
		e := h.ring[(h.head+i)%len(h.ring)]
		if e.ID > lastID && (job == (common.Hash{}) || e.JobID == job) {
			backlog = append(backlog, e)
		}
	}
	s := &eventSub{job: job, ch: make(chan Event, 1024)}
	h.subs[s] = struct{}{}
	return backlog, s
}

func (h *eventHub) unsubscribe(s *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

// closeAll ends every subscription (node stopping).
func (h *eventHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.dropLocked(s)
	}
}
