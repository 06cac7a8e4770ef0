package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/record"
)

// ErrPeerRecord is a signed peer record that is malformed, not signed by
// the key of the peer it is expected from, or about another peer.
var ErrPeerRecord = errors.New("invalid peer record")

// PeerRecord returns this host's signed peer record (its addresses, signed
// with its key, as identify exchanges it), marshalled, or nil while the
// host has none. A gateway attaches it to the jobs it announces, so that
// validators that have never met it can reach it directly.
func (n *Network) PeerRecord() []byte {
	cab, ok := peerstore.GetCertifiedAddrBook(n.host.Peerstore())
	if !ok {
		return nil
	}
	env := cab.GetPeerRecord(n.host.ID())
	if env == nil {
		return nil
	}
	data, err := env.Marshal()
	if err != nil {
		return nil
	}
	return data
}

// LearnPeerRecord adds the addresses of p's signed peer record data to the
// peerstore for ttl, unless the peerstore has addresses of p already. The
// record must be p's and signed with p's key: a peer that forwards it
// cannot point p's id at addresses of its choosing.
func (n *Network) LearnPeerRecord(p peer.ID, data []byte, ttl time.Duration) error {
	if len(data) == 0 || p == n.host.ID() || len(n.host.Peerstore().Addrs(p)) > 0 {
		return nil
	}
	env, rec, err := record.ConsumeEnvelope(data, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerRecord, err)
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return fmt.Errorf("%w: not a peer record", ErrPeerRecord)
	}
	if pr.PeerID != p || !p.MatchesPublicKey(env.PublicKey) {
		return fmt.Errorf("%w: not signed by %s about itself", ErrPeerRecord, p)
	}
	cab, ok := peerstore.GetCertifiedAddrBook(n.host.Peerstore())
	if !ok {
		n.host.Peerstore().AddAddrs(p, pr.Addrs, ttl)
		return nil
	}
	if _, err := cab.ConsumePeerRecord(env, ttl); err != nil {
		return fmt.Errorf("%w: %w", ErrPeerRecord, err)
	}
	return nil
}

// Dial connects to peer p from the addresses this node knows of it (such
// as those of a record taken with LearnPeerRecord), unless it is connected
// already. A validator dials a job's gateway while it judges, so that the
// handshake is done by the time its ballot is ready.
func (n *Network) Dial(ctx context.Context, p peer.ID) error {
	if p == n.host.ID() || n.Connected(p) {
		return nil
	}
	if n.isClosed() {
		return ErrClosed
	}
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return fmt.Errorf("dial %s: %w", p, err)
	}
	return nil
}

// Connected reports whether this node has a connection to peer p.
func (n *Network) Connected(p peer.ID) bool {
	return n.host.Network().Connectedness(p) == network.Connected
}
