package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/internal/batch"
)

// Queued sending: PublishQueued and SendDirectQueued send a message at once
// when nothing else is being sent to the same place, and otherwise queue it
// to go with the others that came meanwhile, as one bundle (bundle.go), as
// soon as the send under way ends. Under light load every message goes
// alone and without delay; under load a destination's messages share
// messages, and the bundles grow to what the sends' speed needs, as a group
// commit does.

// Under load a queued send also lingers: once a destination is busy
// (batch.Busy: 100 messages a second or more, the last send already
// carrying several) or the node is loaded (Config.Loaded), a send that
// finds nothing under way waits Config.BundleLinger for more messages
// before it goes. That makes bundles large enough to matter where the
// sends themselves are quick (a publication returns in microseconds); a
// message at light load does not wait.

// maxQueues bounds the destinations remembered (with their rates): past
// it, those with no send under way are forgotten, so that a node that has
// sent to many peers over time does not keep a queue for each.
const maxQueues = 1024

// queuedMsg is a message waiting in a sendQueue; done, if not nil, gets the
// outcome of its send.
type queuedMsg struct {
	data []byte
	done chan error
}

// sendQueue holds the messages for one destination (a topic, or a peer and
// kind) while a send to it is under way.
type sendQueue struct {
	msgs []queuedMsg
	busy bool       // a send is under way
	rate batch.Busy // the destination's recent rate
}

// queueKey names a destination: a topic kind, or a peer's direct kind.
type queueKey struct {
	kind string
	peer peer.ID
}

// enqueue adds m for key and, if no send to key is under way, starts one
// with send. It reports false once the network is closed.
func (n *Network) enqueue(key queueKey, m queuedMsg, send func([]queuedMsg)) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	if n.queues == nil {
		n.queues = map[queueKey]*sendQueue{}
	}
	q := n.queues[key]
	if q == nil {
		if len(n.queues) >= maxQueues {
			for k, other := range n.queues {
				if !other.busy {
					delete(n.queues, k)
				}
			}
		}
		q = &sendQueue{}
		n.queues[key] = q
	}
	busy := q.rate.Note(time.Now()) || (n.cfg.Loaded != nil && n.cfg.Loaded())
	q.msgs = append(q.msgs, m)
	if q.busy {
		return true
	}
	q.busy = true
	linger := time.Duration(0)
	if busy {
		linger = n.cfg.BundleLinger
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.drain(q, linger, send)
	}()
	return true
}

// drain sends q's messages, as many as fit in one message each time,
// until none waits, after lingering first if asked to.
func (n *Network) drain(q *sendQueue, linger time.Duration, send func([]queuedMsg)) {
	if linger > 0 {
		t := time.NewTimer(linger)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
	}
	for {
		n.mu.Lock()
		if len(q.msgs) == 0 {
			q.busy = false
			q.msgs = nil
			n.mu.Unlock()
			return
		}
		k, size := 0, 3
		for k < len(q.msgs) && k < MaxBundleItems {
			add := uvarintLen(uint64(len(q.msgs[k].data))) + len(q.msgs[k].data)
			if k > 0 && size+add > n.cfg.MaxMessageSize {
				break
			}
			size += add
			k++
		}
		batch := q.msgs[:k:k]
		q.msgs = q.msgs[k:]
		q.rate.Batch(k)
		n.mu.Unlock()
		send(batch)
	}
}

// PublishQueued publishes data on the kind's topic as Publish does, but
// without waiting: alone at once if nothing of its kind is being
// published, else bundled with the messages queued meanwhile. A bundle the
// local validator refuses as a whole is published again message by
// message, so that one bad message costs the others nothing. Errors are
// logged; what Publish would refuse at once (an unknown kind, data over
// the limit, a closed network) is returned.
func (n *Network) PublishQueued(kind string, data []byte) error {
	if _, err := n.topic(kind); err != nil {
		return err
	}
	if len(data) > n.cfg.MaxMessageSize {
		return fmt.Errorf("publish %s: %w: %d bytes, limit %d", kind, ErrMessageTooLarge, len(data), n.cfg.MaxMessageSize)
	}
	if len(data) == 0 || isBundle(data) {
		return fmt.Errorf("publish %s: %w: not a message", kind, ErrBadBundle)
	}
	if !n.enqueue(queueKey{kind: kind}, queuedMsg{data: data}, func(ms []queuedMsg) { n.publishBatch(kind, ms) }) {
		return fmt.Errorf("publish %s: %w", kind, ErrClosed)
	}
	return nil
}

// publishBatch publishes queued messages of a kind as one bundle.
func (n *Network) publishBatch(kind string, ms []queuedMsg) {
	n.stats.bundle(kind, len(ms))
	items := make([][]byte, len(ms))
	for i, m := range ms {
		items[i] = m.data
	}
	err := n.Publish(n.ctx, kind, encodeBundle(items))
	if err != nil && len(items) > 1 && (errors.Is(err, ErrRejected) || errors.Is(err, ErrIgnored)) {
		for _, it := range items {
			n.logPublish(kind, n.Publish(n.ctx, kind, it))
		}
		return
	}
	n.logPublish(kind, err)
}

func (n *Network) logPublish(kind string, err error) {
	if err != nil && n.ctx.Err() == nil {
		log.Warnw("publish failed", "kind", kind, "err", err)
	}
}

// SendDirectQueued sends data of kind straight to peer p as SendDirect
// does and waits for p's verdict on it: alone at once if nothing of its
// kind is being sent to p, else in one stream with the messages queued for
// p meanwhile, each with its own verdict.
func (n *Network) SendDirectQueued(ctx context.Context, p peer.ID, kind string, data []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if len(data) == 0 || isBundle(data) {
		return fmt.Errorf("direct %s to %s: %w: not a message", kind, p, ErrBadBundle)
	}
	done := make(chan error, 1)
	if !n.enqueue(queueKey{kind: kind, peer: p}, queuedMsg{data: data, done: done}, func(ms []queuedMsg) { n.sendDirectBatch(p, kind, ms) }) {
		return fmt.Errorf("direct %s to %s: %w", kind, p, ErrClosed)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendDirectBatch sends queued messages of a kind to p in one stream and
// tells each its outcome. It returns once the stream is written: the
// verdicts, a round trip away, are awaited on their own goroutine, so
// that the next messages for p do not wait for them.
func (n *Network) sendDirectBatch(p peer.ID, kind string, ms []queuedMsg) {
	n.stats.bundle("direct/"+kind, len(ms))
	items := make([][]byte, len(ms))
	for i, m := range ms {
		items[i] = m.data
	}
	written := make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		errs := n.sendDirect(n.ctx, p, kind, items, func() { close(written) })
		for i, m := range ms {
			m.done <- errs[i]
		}
	}()
	<-written
}
