package p2p

import (
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Penalties for what gossipsub does not see: a direct message or a
// catch-up response that fails validation (Network.Penalise). Each counts
// as one rejected gossip message does: the peer's count of them decays to
// a hundredth in ten minutes, and it costs invalidMessageWeight times the
// square of the count, added to the peer's gossipsub score as its
// application-specific score. A peer whose score falls below
// GraylistThreshold, from rejected gossip, penalties or both, is
// disconnected and banned for Config.BanDuration, and for as long after as
// its score stays below the threshold (gossipsub keeps a disconnected
// peer's score for an hour, and its count decays).
const (
	// penaltyDecayTime is how long a count takes to decay to a hundredth,
	// as gossip's InvalidMessageDeliveriesDecay.
	penaltyDecayTime = 10 * time.Minute
	// maxPenalised bounds the peers with a penalty on record; beyond it the
	// smallest is forgotten.
	maxPenalised = 4096
	// penaltyTag is the connection manager tag of a penalised peer: its
	// connections are the first trimmed.
	penaltyTag = "verity-penalty"
)

// penaltyBook counts each peer's penalties, decaying with time. Safe for
// concurrent use; gossipsub calls score from its own goroutines.
type penaltyBook struct {
	mu    sync.Mutex
	peers map[peer.ID]*penaltyCount
}

type penaltyCount struct {
	count float64
	at    time.Time // when count was last brought up to date
}

func newPenaltyBook() *penaltyBook { return &penaltyBook{peers: map[peer.ID]*penaltyCount{}} }

// decayed brings c up to date at now.
func (c *penaltyCount) decayed(now time.Time) float64 {
	if d := now.Sub(c.at); d > 0 {
		c.count *= math.Pow(0.01, d.Seconds()/penaltyDecayTime.Seconds())
		c.at = now
	}
	return c.count
}

// add counts one penalty of p and returns p's penalty score.
func (b *penaltyBook) add(p peer.ID, now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.peers[p]
	if !ok {
		if len(b.peers) >= maxPenalised {
			b.forgetLocked(now)
		}
		c = &penaltyCount{at: now}
		b.peers[p] = c
	}
	n := c.decayed(now) + 1
	c.count = n
	return invalidMessageWeight * n * n
}

// forgetLocked drops every count that has decayed away and, if the book is
// still full, the smallest.
func (b *penaltyBook) forgetLocked(now time.Time) {
	var least peer.ID
	for p, c := range b.peers {
		if c.decayed(now) < 0.01 {
			delete(b.peers, p)
			continue
		}
		if least == "" || c.count < b.peers[least].count {
			least = p
		}
	}
	if len(b.peers) >= maxPenalised && least != "" {
		delete(b.peers, least)
	}
}

// score is p's penalty score now: 0 without penalties, negative otherwise.
func (b *penaltyBook) score(p peer.ID) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.peers[p]
	if !ok {
		return 0
	}
	n := c.decayed(time.Now())
	if n < 0.01 {
		delete(b.peers, p)
		return 0
	}
	return invalidMessageWeight * n * n
}

// Penalise counts one misbehaviour of peer p that gossipsub does not see
// (a direct message or a catch-up response that failed validation), as a
// rejected gossip message counts: it lowers p's score, and once the score
// is below GraylistThreshold p is disconnected and banned. reason is for
// the log. Penalising this node itself does nothing.
func (n *Network) Penalise(p peer.ID, reason string) {
	if p == n.host.ID() || p == "" {
		return
	}
	s := n.penalties.add(p, time.Now())
	n.host.ConnManager().TagPeer(p, penaltyTag, int(max(s/100, -1000)))
	log.Debugw("peer penalised", "peer", p, "reason", reason, "penalty", s)
	if s < GraylistThreshold {
		n.ban(p, reason)
	}
}

// PenaltyScore is p's score from penalties alone (0 without any): the
// application-specific part of its gossipsub score.
func (n *Network) PenaltyScore(p peer.ID) float64 { return n.penalties.score(p) }

// Banned reports whether p is banned: disconnected, and refused until its
// ban ends.
func (n *Network) Banned(p peer.ID) bool { return n.gate.isBanned(p) }

// ban disconnects p and refuses it for Config.BanDuration.
func (n *Network) ban(p peer.ID, reason string) {
	if p == n.host.ID() {
		return
	}
	first := !n.gate.isBanned(p)
	n.gate.ban(p, time.Now().Add(n.cfg.BanDuration))
	if first {
		n.bans.Add(1)
		log.Warnw("peer banned", "peer", p, "reason", reason, "for", n.cfg.BanDuration)
	}
	_ = n.host.Network().ClosePeer(p)
}

// scoreBelowGraylist reports whether p's score, as last snapshotted or from
// penalties since, is below GraylistThreshold.
func (n *Network) scoreBelowGraylist(p peer.ID) bool {
	if s, ok := n.PeerScore(p); ok && s < GraylistThreshold {
		return true
	}
	return n.penalties.score(p) < GraylistThreshold
}

// banGraylisted bans every peer whose gossipsub score is below
// GraylistThreshold: gossipsub would ignore what it sends, and it need not
// hold a connection either. Called with each score snapshot.
func (n *Network) banGraylisted(scores map[peer.ID]float64) {
	var low []peer.ID
	for p, s := range scores {
		if s < GraylistThreshold && !n.gate.isBanned(p) {
			low = append(low, p)
		}
	}
	if len(low) == 0 {
		return
	}
	// Not from gossipsub's goroutine: closing a connection calls back
	// into pubsub.
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for _, p := range low {
			n.ban(p, "graylisted")
		}
	}()
}
