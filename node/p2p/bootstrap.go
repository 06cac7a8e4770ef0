package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bootstrap connection timing.
const (
	bootstrapDialTimeout = 5 * time.Second
	bootstrapMinBackoff  = 100 * time.Millisecond
	bootstrapMaxBackoff  = 10 * time.Second
	// bootstrapRecheck is how often connections to bootstrap peers are
	// checked once all are up.
	bootstrapRecheck = 5 * time.Second
)

// keepConnected dials every bootstrap peer not connected, in parallel, asks
// them for more peers while the node has fewer than TargetPeers, and repeats:
// with doubling backoff while some dial fails or peers are short, every
// bootstrapRecheck otherwise. It returns when n.ctx ends.
func (n *Network) keepConnected(peers []peer.AddrInfo) {
	backoff := bootstrapMinBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-timer.C:
		case <-n.gate.online:
			backoff = bootstrapMinBackoff
		}
		if n.Offline() {
			timer.Reset(bootstrapRecheck)
			continue
		}
		failed := n.dialMissing(peers)
		short := n.discover(peers)
		wait := bootstrapRecheck
		if failed > 0 || short {
			wait = backoff
			backoff = min(2*backoff, bootstrapMaxBackoff)
		} else {
			backoff = bootstrapMinBackoff
		}
		timer.Reset(wait)
	}
}

// dialMissing dials the bootstrap peers not connected and returns how many
// dials failed.
func (n *Network) dialMissing(peers []peer.AddrInfo) int {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	for _, ai := range peers {
		if n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, bootstrapDialTimeout)
			defer cancel()
			if err := n.host.Connect(network.WithForceDirectDial(ctx, "verity bootstrap"), ai); err != nil {
				if n.ctx.Err() == nil {
					log.Debugw("bootstrap dial failed", "peer", ai.ID, "err", err)
				}
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			log.Debugw("connected to bootstrap peer", "peer", ai.ID)
		}()
	}
	wg.Wait()
	return failed
}
