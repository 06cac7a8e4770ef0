package p2p

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// offlineGate is a connection gater that refuses every connection, inbound
// and outbound, while offline is set: a node cut off from the network for
// fault tests.
type offlineGate struct {
	offline atomic.Bool
	online  chan struct{} // a send wakes the bootstrap loop when back online
}

func newOfflineGate() *offlineGate { return &offlineGate{online: make(chan struct{}, 1)} }

func (g *offlineGate) InterceptPeerDial(peer.ID) bool               { return !g.offline.Load() }
func (g *offlineGate) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return !g.offline.Load() }
func (g *offlineGate) InterceptAccept(network.ConnMultiaddrs) bool  { return !g.offline.Load() }
func (g *offlineGate) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return !g.offline.Load()
}
func (g *offlineGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return !g.offline.Load(), 0
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
