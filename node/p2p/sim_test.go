package p2p

import (
	"context"
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

		var nets []*Network
		for i := range 3 {
			cfg := testConfig(t)
			cfg.ListenAddrs = []string{simAddr(i)}
			cfg.HostOptions = simHostOptions(sim)
			cfg.TargetPeers = 1
			if i > 0 {
				cfg.Bootstrap = addrStrings(nets[0])
			}
			n, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			nets = append(nets, n)
		}
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
