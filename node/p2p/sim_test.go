package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"
)

// simAddr is node i's QUIC address on a simulated network.
func simAddr(i int) string {
	return fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", simnet.IntToPublicIPv4(i))
}

// simHostOptions run a node's host over the simulated network sim, with
// links of 100 Mbit/s each way.
func simHostOptions(sim *simnet.Simnet) []libp2p.Option {
	link := simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps}
	return []libp2p.Option{
		simlibp2p.QUICSimnet(sim, simnet.NodeBiDiLinkSettings{Downlink: link, Uplink: link}),
		// Address discovery through identify stalls synctest (go-libp2p's
		// x/simlibp2p turns it off for that reason); the resource manager
		// is turned off to keep its limits out of simulations.
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	}
}

// startSimNets starts count networks over sim, node i at simAddr(i), each
// config adjusted by adjust (if not nil) given the networks started
// before it. On a failure it closes those it started.
func startSimNets(t *testing.T, ctx context.Context, sim *simnet.Simnet, count int, adjust func(i int, cfg *Config, nets []*Network)) []*Network {
	t.Helper()
	var nets []*Network
	for i := range count {
		cfg := testConfig(t)
		cfg.ListenAddrs = []string{simAddr(i)}
		cfg.HostOptions = simHostOptions(sim)
		if adjust != nil {
			adjust(i, &cfg, nets)
		}
		n, err := New(ctx, cfg)
		if err != nil {
			closeAll(nets)
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	return nets
}

func closeAll(nets []*Network) {
	for _, n := range nets {
		_ = n.Close()
	}
}

// TestSimulatedGossipLatency runs three networks over a simulated network
// in virtual time (testing/synctest), each link with its own latency. Node
// 1 and node 2 know only node 0 and seek no more peers, so node 1's
// message reaches node 2 through node 0: after exactly the two links'
// latencies, whatever the machine's speed.
func TestSimulatedGossipLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Latency one way between nodes i and j, by the last byte of
		// their addresses (node i is 1+i).
		oneWay := map[[2]byte]time.Duration{
			{1, 2}: 15 * time.Millisecond, // nodes 0 and 1
			{1, 3}: 25 * time.Millisecond, // nodes 0 and 2
			{2, 3}: 5 * time.Millisecond,  // nodes 1 and 2: not connected
		}
		sim := &simnet.Simnet{LatencyFunc: func(p *simnet.Packet) time.Duration {
			a, b := p.From.(*net.UDPAddr).IP.To4()[3], p.To.(*net.UDPAddr).IP.To4()[3]
			return oneWay[[2]byte{min(a, b), max(a, b)}]
		}}
		sim.Start()
		defer sim.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		nets := startSimNets(t, ctx, sim, 3, func(i int, cfg *Config, nets []*Network) {
			cfg.TargetPeers = 1
			if i > 0 {
				cfg.Bootstrap = addrStrings(nets[0])
			}
		})
		defer closeAll(nets)
		sub, err := nets[2].Subscribe(KindJobs)
		if err != nil {
			t.Fatal(err)
		}
		if err := nets[2].WaitForMesh(ctx, 1); err != nil {
			t.Fatal(err)
		}
		// Let meshes form: a few heartbeats of virtual time.
		time.Sleep(10 * DefaultHeartbeatInterval)
		synctest.Wait()
		if peers := nets[2].ConnectedPeers(); !slices.Equal(peers, []peer.ID{nets[0].PeerID()}) {
			t.Fatalf("node 2's peers %v, want node 0 only", peers)
		}

		start := time.Now()
		if err := nets[1].Publish(ctx, KindJobs, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		m := <-sub
		got, want := time.Since(start), oneWay[[2]byte{1, 2}]+oneWay[[2]byte{1, 3}]
		t.Logf("node 2 received %q %v after node 1 published it; the links' latencies add to %v", m.Data, got, want)
		// Beyond the latencies only the time to send a packet of a few
		// hundred bytes at 100 Mbit/s twice: microseconds.
		if got < want || got > want+time.Millisecond {
			t.Fatalf("delivery took %v, want %v (+ at most 1ms)", got, want)
		}
	})
}

// TestFirstContactDirect sends a direct message to a peer this node has
// no connection to, over a simulated link of 20 ms each way, in virtual
// time. The message must arrive after the QUIC handshake's round trip and
// its own way (60 ms), not after identify's round trip too (100 ms with
// host.NewStream), and the verdict 20 ms later. A peer that does not
// serve the kind answers with an error, not a verdict.
func TestFirstContactDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 20 * time.Millisecond
		sim := &simnet.Simnet{LatencyFunc: func(*simnet.Packet) time.Duration { return oneWay }}
		sim.Start()
		defer sim.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		nets := startSimNets(t, ctx, sim, 2, nil)
		defer closeAll(nets)
		gw, val := nets[0], nets[1]
		arrived := make(chan time.Time, 1)
		if err := gw.HandleDirect(KindBallots, 64, func(context.Context, peer.ID, []byte) Verdict {
			arrived <- time.Now()
			return Accept
		}); err != nil {
			t.Fatal(err)
		}
		val.host.Peerstore().AddAddrs(gw.PeerID(), gw.host.Addrs(), time.Hour)
		if val.Connected(gw.PeerID()) {
			t.Fatal("the nodes are connected before the first message")
		}

		start := time.Now()
		if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, []byte("ballot")); err != nil {
			t.Fatal(err)
		}
		answered := time.Since(start)
		got := (<-arrived).Sub(start)
		rtt := 2 * oneWay
		t.Logf("first contact: message after %v, verdict after %v (round trip %v)", got, answered, rtt)
		// Beyond the latencies only the time to send a few packets at
		// 100 Mbit/s: microseconds.
		if want := rtt + oneWay; got < want || got > want+time.Millisecond {
			t.Fatalf("message arrived after %v, want %v (handshake and one way)", got, want)
		}
		if want := 2 * rtt; answered < want || answered > want+time.Millisecond {
			t.Fatalf("verdict after %v, want %v", answered, want)
		}

		// The connection is open now: a second message costs one way.
		start = time.Now()
		if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, []byte("again")); err != nil {
			t.Fatal(err)
		}
		if got := (<-arrived).Sub(start); got < oneWay || got > oneWay+time.Millisecond {
			t.Fatalf("second message arrived after %v, want %v", got, oneWay)
		}

		// A kind the gateway does not serve fails on the verdict.
		err := val.SendDirect(ctx, gw.PeerID(), KindCerts, []byte("x"))
		if err == nil || errors.Is(err, ErrIgnored) || errors.Is(err, ErrRejected) {
			t.Fatalf("a kind the peer does not serve: %v, want an error without a verdict", err)
		}
	})
}
