package p2p

import (
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p"
	coreconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// TestMaxPeers: a node with MaxPeers trims its connections down to five
// sixths of it above it, and its resource manager admits MaxPeers and a
// quarter more connections, where libp2p's defaults would refuse inbound
// connections past a few hundred; every other limit stays libp2p's. The
// running host's resource manager is the one with these limits.
func TestMaxPeers(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxPeers = 1200
	n := startNode(t, cfg)
	cm, ok := n.host.ConnManager().(*connmgr.BasicConnMgr)
	if !ok {
		t.Fatalf("connection manager %T", n.host.ConnManager())
	}
	if info := cm.GetInfo(); info.LowWater != 1000 || info.HighWater != 1200 || info.GracePeriod != maxPeersGrace {
		t.Fatalf("watermarks %d/%d, grace %s; want 1000/1200, %s", info.LowWater, info.HighWater, info.GracePeriod, maxPeersGrace)
	}

	def := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&def)
	defaults := def.AutoScale().ToPartialLimitConfig()
	got := peerLimits(1200).ToPartialLimitConfig()
	if defaults.System.ConnsInbound >= 1500 {
		t.Skipf("libp2p's defaults already admit %d inbound connections here", defaults.System.ConnsInbound)
	}
	for name, v := range map[string]rcmgr.LimitVal{
		"conns": got.System.Conns, "inbound": got.System.ConnsInbound,
		"outbound": got.System.ConnsOutbound, "fds": got.System.FD,
	} {
		if v != rcmgr.Unlimited && v < 1500 {
			t.Errorf("system %s limit %d, want at least 1500", name, v)
		}
	}
	got.System, defaults.System = rcmgr.ResourceLimits{}, rcmgr.ResourceLimits{}
	if !reflect.DeepEqual(got, defaults) {
		t.Error("limits other than the system's connections changed")
	}
	// The running host's resource manager holds them: its system scope
	// admits as many connections as peerLimits says.
	err := n.host.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
		l, ok := s.(rcmgr.ResourceScopeLimiter)
		if !ok {
			t.Fatalf("system scope %T exposes no limit", s)
		}
		want := rcmgr.NewFixedLimiter(peerLimits(1200)).GetSystemLimits()
		if got := l.Limit(); got.GetConnTotalLimit() != want.GetConnTotalLimit() ||
			got.GetConnLimit(network.DirInbound) != want.GetConnLimit(network.DirInbound) ||
			got.GetFDLimit() != want.GetFDLimit() {
			t.Errorf("the host's system limits: %d conns, %d inbound, %d fds; want %d, %d, %d",
				got.GetConnTotalLimit(), got.GetConnLimit(network.DirInbound), got.GetFDLimit(),
				want.GetConnTotalLimit(), want.GetConnLimit(network.DirInbound), want.GetFDLimit())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	both := testConfig(t)
	both.MaxPeers = 10
	both.HostOptions = []libp2p.Option{libp2p.ConnectionManager(coreconnmgr.NullConnMgr{})}
	if n, err := New(t.Context(), both); err == nil {
		n.Close()
		t.Fatal("MaxPeers and a host option's connection manager: no error")
	}

	none, release, err := peerLimitOptions(0, true)
	if err != nil || len(none) != 0 {
		t.Fatalf("MaxPeers 0: %d options, %v; want libp2p's defaults", len(none), err)
	}
	release()
}

// TestResourceManagerWithoutMetrics: a node without metrics has a
// resource manager of libp2p's default limits that traces nothing (no
// Prometheus collector would read it), unless the host's options bring
// their own manager, which stands; a node with metrics keeps libp2p's.
func TestResourceManagerWithoutMetrics(t *testing.T) {
	// The trace is libp2p's unexported field: read by reflection, and
	// the check left out (logged, the rest of the test goes on) should an
	// upgrade of libp2p rename it.
	traced := func(rm network.ResourceManager) (traced, known bool) {
		v := reflect.ValueOf(rm)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			t.Fatalf("resource manager %T", rm)
		}
		f := v.Elem().FieldByName("trace")
		if !f.IsValid() || f.Kind() != reflect.Pointer {
			return false, false
		}
		return !f.IsNil(), true
	}
	n := startNode(t, testConfig(t))
	rm := n.host.Network().ResourceManager()
	switch on, known := traced(rm); {
	case !known:
		t.Logf("libp2p's resource manager %T has no trace field any more: not checked", rm)
	case on:
		t.Error("a node without metrics traces its resource manager")
	}
	def := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&def)
	want := rcmgr.NewFixedLimiter(def.AutoScale()).GetSystemLimits()
	if err := rm.ViewSystem(func(s network.ResourceScope) error {
		l, ok := s.(rcmgr.ResourceScopeLimiter)
		if !ok {
			t.Fatalf("system scope %T exposes no limit", s)
		}
		if got := l.Limit(); got.GetConnTotalLimit() != want.GetConnTotalLimit() || got.GetMemoryLimit() != want.GetMemoryLimit() {
			t.Errorf("system limits %d conns, %d bytes; want libp2p's %d, %d",
				got.GetConnTotalLimit(), got.GetMemoryLimit(), want.GetConnTotalLimit(), want.GetMemoryLimit())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	own := testConfig(t)
	own.HostOptions = []libp2p.Option{libp2p.ResourceManager(&network.NullResourceManager{})}
	if _, ok := startNode(t, own).host.Network().ResourceManager().(*network.NullResourceManager); !ok {
		t.Error("the host options' resource manager was replaced")
	}

	if opts, release, err := peerLimitOptions(0, true); err != nil || len(opts) != 0 {
		t.Fatalf("with metrics: %d options, %v; want libp2p's defaults", len(opts), err)
	} else {
		release()
	}
}
