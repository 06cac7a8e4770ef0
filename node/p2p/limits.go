package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// maxPeersGrace is how long a new connection is spared by a node with
// Config.MaxPeers: as libp2p's default connection manager does.
const maxPeersGrace = time.Minute

// peerLimitOptions are the host options of Config.MaxPeers: a connection
// manager that trims down to five sixths of maxPeers once the node holds
// more (sparing, as libp2p's default does, protected peers and new
// connections), and a resource manager with libp2p's default limits, scaled
// to the machine, but admitting a quarter more connections than maxPeers,
// since the manager trims only once a connection has gone over. None for
// maxPeers 0: libp2p's defaults, which trim to 160 connections above 192
// and, on a machine of 16 GiB, admit 192 inbound connections. The host
// closes both managers; release closes them if no host was built.
func peerLimitOptions(maxPeers int) (opts []libp2p.Option, release func(), err error) {
	if maxPeers <= 0 {
		return nil, func() {}, nil
	}
	cm, err := connmgr.NewConnManager(max(maxPeers*5/6, 1), maxPeers, connmgr.WithGracePeriod(maxPeersGrace))
	if err != nil {
		return nil, nil, fmt.Errorf("connection manager for %d peers: %w", maxPeers, err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(peerLimits(maxPeers)))
	if err != nil {
		_ = cm.Close()
		return nil, nil, fmt.Errorf("resource manager for %d peers: %w", maxPeers, err)
	}
	release = func() {
		_ = cm.Close()
		_ = rm.Close()
	}
	return []libp2p.Option{libp2p.ConnectionManager(cm), libp2p.ResourceManager(rm)}, release, nil
}

// peerLimits are libp2p's default resource limits, scaled to the machine,
// with the whole node's connections (and file descriptors, which TCP
// connections hold) raised to admit maxPeers and a quarter more.
func peerLimits(maxPeers int) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	scaled := limits.AutoScale()
	want := rcmgr.LimitVal(maxPeers + maxPeers/4)
	part := scaled.ToPartialLimitConfig()
	for _, v := range []*rcmgr.LimitVal{&part.System.Conns, &part.System.ConnsInbound, &part.System.ConnsOutbound, &part.System.FD} {
		if *v != rcmgr.Unlimited && *v < want {
			*v = want
		}
	}
	return part.Build(scaled)
}
