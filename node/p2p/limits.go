package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
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
//
// Without metrics, the resource manager reports none: libp2p's, by
// default, traces every stream opened and closed and every reservation
// of memory to Prometheus collectors, which a node without metrics
// registers nowhere (1.5% of a node's allocations under load). With
// maxPeers 0 that takes a manager of libp2p's default limits, built
// here, unless the host's options bring their own (fallbackRM).
func peerLimitOptions(maxPeers int, metrics bool) (opts []libp2p.Option, release func(), err error) {
	var rmOpts []rcmgr.Option
	if !metrics {
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	if maxPeers <= 0 {
		if metrics {
			return nil, func() {}, nil
		}
		f := &fallbackRM{opts: rmOpts}
		return []libp2p.Option{f.option}, f.release, nil
	}
	cm, err := connmgr.NewConnManager(max(maxPeers*5/6, 1), maxPeers, connmgr.WithGracePeriod(maxPeersGrace))
	if err != nil {
		return nil, nil, fmt.Errorf("connection manager for %d peers: %w", maxPeers, err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(peerLimits(maxPeers)), rmOpts...)
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

// fallbackRM is a resource manager of libp2p's default limits (as
// libp2p.DefaultResourceManager builds it) for a host whose options bring
// none; its option goes after them all.
type fallbackRM struct {
	opts []rcmgr.Option
	rm   network.ResourceManager
}

func (f *fallbackRM) option(cfg *libp2p.Config) error {
	if cfg.ResourceManager != nil {
		return nil
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), f.opts...)
	if err != nil {
		return fmt.Errorf("resource manager: %w", err)
	}
	f.rm, cfg.ResourceManager = rm, rm
	return nil
}

func (f *fallbackRM) release() {
	if f.rm != nil {
		_ = f.rm.Close()
	}
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
