package p2p

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// maxBanned bounds the peers banned at once; beyond it the ban that ends
// first is dropped. Identities are free, so a ban list cannot hold them
// all: it keeps out the peers that misbehaved lately.
const maxBanned = 4096

// connGate is the host's connection gater. It refuses every connection,
// inbound and outbound, while offline is set (a node cut off from the
// network for fault tests), and connections to and from banned peers
// (see Network.Penalise) until their ban ends: Config.BanDuration has
// passed and their score is back above GraylistThreshold.
type connGate struct {
	offline atomic.Bool
	online  chan struct{} // a send wakes the bootstrap loop when back online

	mu     sync.Mutex
	banned map[peer.ID]time.Time // until when, at least
	// low reports whether a peer's score is still below the graylist
	// threshold: its ban lasts until it is not.
	low func(peer.ID) bool
}

func newConnGate(low func(peer.ID) bool) *connGate {
	return &connGate{online: make(chan struct{}, 1), banned: map[peer.ID]time.Time{}, low: low}
}

// ban refuses p until until.
func (g *connGate) ban(p peer.ID, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.banned[p]; !ok && len(g.banned) >= maxBanned {
		g.dropExpiredLocked(time.Now())
		if len(g.banned) >= maxBanned {
			var first peer.ID
			for q, t := range g.banned {
				if first == "" || t.Before(g.banned[first]) {
					first = q
				}
			}
			delete(g.banned, first)
		}
	}
	g.banned[p] = until
}

func (g *connGate) dropExpiredLocked(now time.Time) {
	for q, t := range g.banned {
		if !now.Before(t) && (g.low == nil || !g.low(q)) {
			delete(g.banned, q)
		}
	}
}

// isBanned reports whether p is banned now: its ban has not run out, or
// its score is still below the graylist threshold.
func (g *connGate) isBanned(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[p]
	if !ok {
		return false
	}
	if !time.Now().Before(until) && (g.low == nil || !g.low(p)) {
		delete(g.banned, p)
		return false
	}
	return true
}

func (g *connGate) allow(p peer.ID) bool { return !g.offline.Load() && !g.isBanned(p) }

func (g *connGate) InterceptPeerDial(p peer.ID) bool                 { return g.allow(p) }
func (g *connGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allow(p) }
func (g *connGate) InterceptAccept(network.ConnMultiaddrs) bool      { return !g.offline.Load() }
func (g *connGate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allow(p)
}
func (g *connGate) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return g.allow(c.RemotePeer()), 0
}

// SetOffline cuts the node off the network (offline true): every connection
// is closed and no new one is made or accepted, until SetOffline(false),
// after which the bootstrap loop reconnects. For fault tests.
func (n *Network) SetOffline(offline bool) {
	n.gate.offline.Store(offline)
	if !offline {
		select {
		case n.gate.online <- struct{}{}:
		default:
		}
		return
	}
	for _, c := range n.host.Network().Conns() {
		_ = c.Close()
	}
	log.Infow("p2p offline: all connections closed")
}

// Offline reports whether SetOffline(true) is in force.
func (n *Network) Offline() bool { return n.gate.offline.Load() }
