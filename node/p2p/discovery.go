package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Peer discovery: a node below Config.TargetPeers connections asks its
// bootstrap peers for the peers they know on the network's topics, over a
// small request-response protocol, and dials some of them.
//
// Wire format: the requester writes peersRequest and closes its side; the
// responder writes one full multiaddr (with /p2p/<id>) per line, at most
// maxSharedPeers peers with at most maxSharedAddrs addresses each, and
// closes the stream.
const (
	peersRequest       = "peers\n"
	maxSharedPeers     = 64
	maxSharedAddrs     = 4
	maxPeersResponse   = 64 << 10
	peersStreamTimeout = 5 * time.Second
)

// errPeersResponse is returned for a peers response that is too large.
var errPeersResponse = errors.New("peers response too large")

// peersProtocol is the discovery protocol of a network.
func peersProtocol(networkID uint64) protocol.ID {
	return protocol.ID("/verity/" + strconv.FormatUint(networkID, 10) + "/peers/1")
}

// topicPeerSet returns the peers subscribed to any of the node's topics.
func (n *Network) topicPeerSet() map[peer.ID]struct{} {
	set := map[peer.ID]struct{}{}
	for _, t := range n.topics {
		for _, p := range t.ListPeers() {
			set[p] = struct{}{}
		}
	}
	return set
}

// handlePeers answers a peers request with the topic peers this node is
// connected to, the requester excluded, in random order.
func (n *Network) handlePeers(s network.Stream) {
	defer s.Close()
	if err := s.SetDeadline(time.Now().Add(peersStreamTimeout)); err != nil {
		_ = s.Reset()
		return
	}
	// The request carries nothing but must be read to its end.
	if _, err := io.Copy(io.Discard, io.LimitReader(s, int64(len(peersRequest)))); err != nil {
		_ = s.Reset()
		return
	}
	requester := s.Conn().RemotePeer()
	ps := n.host.Peerstore()
	ids := make([]peer.ID, 0, maxSharedPeers)
	for p := range n.topicPeerSet() {
		if p != requester {
			ids = append(ids, p)
		}
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(len(ids), maxSharedPeers)]

	w := bufio.NewWriter(s)
	for _, p := range ids {
		addrs := ps.Addrs(p)
		addrs = addrs[:min(len(addrs), maxSharedAddrs)]
		full, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p, Addrs: addrs})
		if err != nil {
			continue
		}
		for _, a := range full {
			if _, err := w.WriteString(a.String() + "\n"); err != nil {
				_ = s.Reset()
				return
			}
		}
	}
	if err := w.Flush(); err != nil {
		_ = s.Reset()
	}
}

// askPeers requests the peers p knows. Lines that are not full peer
// addresses are skipped.
func (n *Network) askPeers(ctx context.Context, p peer.ID) ([]peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, peersStreamTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, peersProtocol(n.cfg.NetworkID))
	if err != nil {
		return nil, fmt.Errorf("open peers stream: %w", err)
	}
	defer s.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := s.SetDeadline(deadline); err != nil {
			_ = s.Reset()
			return nil, fmt.Errorf("set deadline: %w", err)
		}
	}
	if _, err := io.WriteString(s, peersRequest); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("write peers request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("close peers request: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(s, maxPeersResponse+1))
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("read peers response: %w", err)
	}
	if len(data) > maxPeersResponse {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: over %d bytes", errPeersResponse, maxPeersResponse)
	}
	byID := map[peer.ID]int{}
	var out []peer.AddrInfo
	for line := range strings.Lines(string(data)) {
		ai, err := parsePeerAddr(strings.TrimSpace(line))
		if err != nil {
			continue
		}
		if i, ok := byID[ai.ID]; ok {
			if len(out[i].Addrs) < maxSharedAddrs {
				out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			}
			continue
		}
		if len(out) == maxSharedPeers {
			continue
		}
		byID[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// discover asks the connected bootstrap peers for more peers and dials some
// of them while the node has fewer than TargetPeers connections. It reports
// whether the node is still short of peers.
func (n *Network) discover(bootstrap []peer.AddrInfo) bool {
	net := n.host.Network()
	need := n.cfg.TargetPeers - len(net.Peers())
	if need <= 0 {
		return false
	}
	candidates := map[peer.ID]peer.AddrInfo{}
	for _, b := range bootstrap {
		if net.Connectedness(b.ID) != network.Connected {
			continue
		}
		found, err := n.askPeers(n.ctx, b.ID)
		if err != nil {
			if n.ctx.Err() == nil {
				log.Debugw("ask bootstrap peer for peers", "peer", b.ID, "err", err)
			}
			continue
		}
		for _, ai := range found {
			if ai.ID != n.host.ID() && net.Connectedness(ai.ID) != network.Connected {
				candidates[ai.ID] = ai
			}
		}
	}
	var wg sync.WaitGroup
	for _, ai := range candidates {
		if need == 0 {
			break
		}
		need--
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, bootstrapDialTimeout)
			defer cancel()
			if err := n.host.Connect(ctx, ai); err != nil && n.ctx.Err() == nil {
				log.Debugw("dial discovered peer", "peer", ai.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	return len(net.Peers()) < n.cfg.TargetPeers
}
