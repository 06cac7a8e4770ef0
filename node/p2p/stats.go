package p2p

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Stats counts what pubsub did with messages since New. The drop counters
// should stay zero; anything else there means a queue is too small or a
// subscriber too slow.
type Stats struct {
	// Delivered counts messages from peers accepted and delivered to local
	// subscriptions; the node's own messages are not counted.
	Delivered uint64
	// Rejected counts messages a validator rejected and messages pubsub
	// refused for carrying a signature or an author.
	Rejected uint64
	// Ignored counts messages a validator ignored.
	Ignored uint64
	// Duplicates counts copies of messages already seen.
	Duplicates uint64
	// ValidationDropped counts messages dropped because the validation queue
	// was full or validation was throttled.
	ValidationDropped uint64
	// OutboundDropped counts RPCs to a connected peer dropped because its
	// outbound queue was full (or the RPC was oversized).
	OutboundDropped uint64
	// UnreadyDropped counts RPCs dropped because the peer had no pubsub
	// stream: one just connecting, whose subscriptions arrived before the
	// outbound stream opened, or one gone. Control messages among them are
	// retried; messages reach such a peer through its other mesh peers.
	UnreadyDropped uint64
	// SubscriberDropped counts messages not delivered to a subscription
	// because its buffer was full.
	SubscriberDropped uint64
	// Banned counts the peers this node banned (disconnected and refused
	// for Config.BanDuration) for a score below GraylistThreshold.
	Banned uint64
	// Sent counts the queued sends (PublishQueued, SendDirectQueued) by
	// destination: a topic kind, or "direct/" and a kind; nil before the
	// first.
	Sent map[string]SendStats
}

// SendStats counts queued sends to one kind of destination: the messages
// (a bundle or a message alone) and the queued messages they carried.
type SendStats struct {
	Sends uint64 `json:"sends"`
	Items uint64 `json:"items"`
	Max   uint64 `json:"max"`
}

// statsTracer is a pubsub.RawTracer that counts into a Stats and follows the
// gossipsub mesh of each topic. Its methods are called from pubsub's
// goroutines, concurrently.
type statsTracer struct {
	delivered, rejected, ignored, duplicates      atomic.Uint64
	validationDropped, outboundDropped, undeliver atomic.Uint64
	unreadyDropped                                atomic.Uint64

	mu      sync.Mutex
	sent    map[string]SendStats
	mesh    map[string]map[peer.ID]struct{} // topic -> mesh peers
	streams map[peer.ID]struct{}            // peers with an outbound stream
}

func newStatsTracer() *statsTracer {
	return &statsTracer{
		mesh:    map[string]map[peer.ID]struct{}{},
		streams: map[peer.ID]struct{}{},
	}
}

// bundle counts one queued send of items messages to dest.
func (t *statsTracer) bundle(dest string, items int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent == nil {
		t.sent = map[string]SendStats{}
	}
	s := t.sent[dest]
	s.Sends++
	s.Items += uint64(items)
	s.Max = max(s.Max, uint64(items))
	t.sent[dest] = s
}

// meshPeers returns the number of peers in the mesh of a topic.
func (t *statsTracer) meshPeers(topic string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh[topic])
}

// Graft records a peer added to a topic's mesh.
func (t *statsTracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.mesh[topic]
	if m == nil {
		m = map[peer.ID]struct{}{}
		t.mesh[topic] = m
	}
	m[p] = struct{}{}
}

// Prune records a peer removed from a topic's mesh.
func (t *statsTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

// Leave records that the node left a topic and so its mesh.
func (t *statsTracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}

// OnNewOutboundStream records a peer pubsub can send to.
func (t *statsTracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.streams[p] = struct{}{}
}

// OnClosedOutboundStream records a peer gone: gossipsub removes it from every
// mesh.
func (t *statsTracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, p)
	for _, m := range t.mesh {
		delete(m, p)
	}
}

// DropRPC tells a full queue from a peer pubsub cannot send to yet.
func (t *statsTracer) DropRPC(_ *pubsub.RPC, p peer.ID) {
	t.mu.Lock()
	_, ok := t.streams[p]
	t.mu.Unlock()
	if ok {
		t.outboundDropped.Add(1)
	} else {
		t.unreadyDropped.Add(1)
	}
}

var _ pubsub.RawTracer = (*statsTracer)(nil)

func (t *statsTracer) snapshot() Stats {
	t.mu.Lock()
	sent := maps.Clone(t.sent)
	t.mu.Unlock()
	return Stats{
		Sent:              sent,
		Delivered:         t.delivered.Load(),
		Rejected:          t.rejected.Load(),
		Ignored:           t.ignored.Load(),
		Duplicates:        t.duplicates.Load(),
		ValidationDropped: t.validationDropped.Load(),
		OutboundDropped:   t.outboundDropped.Load(),
		UnreadyDropped:    t.unreadyDropped.Load(),
		SubscriberDropped: t.undeliver.Load(),
	}
}

func (t *statsTracer) DeliverMessage(*pubsub.Message)   { t.delivered.Add(1) }
func (t *statsTracer) DuplicateMessage(*pubsub.Message) { t.duplicates.Add(1) }
func (t *statsTracer) UndeliverableMessage(*pubsub.Message) {
	t.undeliver.Add(1)
}

func (t *statsTracer) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationIgnored:
		t.ignored.Add(1)
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.validationDropped.Add(1)
	default:
		t.rejected.Add(1)
	}
}

func (t *statsTracer) Join(string)                                          {}
func (t *statsTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *statsTracer) ThrottlePeer(peer.ID)                                 {}
func (t *statsTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *statsTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *statsTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
