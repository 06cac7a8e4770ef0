package node_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// simNetwork starts count validators, real node code, over a simulated
// network in the synctest bubble of the calling test: node i listens on
// QUIC at the simulated address of index i, and every packet from a to b
// (node indexes) takes latency(a, b), read when the packet is sent.
func simNetwork(t *testing.T, count int, latency func(a, b int) time.Duration) *testnet.Network {
	t.Helper()
	index := func(addr net.Addr) int { return int(addr.(*net.UDPAddr).IP.To4()[3]) - 1 }
	sim := &simnet.Simnet{LatencyFunc: func(p *simnet.Packet) time.Duration {
		return latency(index(p.From), index(p.To))
	}}
	sim.Start()
	t.Cleanup(sim.Close)
	link := simnet.LinkSettings{BitsPerSecond: 10_000 * simlibp2p.OneMbps}
	tn, err := testnet.NewEphemeral(context.Background(), testnet.EphemeralOptions{
		Nodes: count, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			o.ListenAddrs = []string{fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", simnet.IntToPublicIPv4(i))}
			o.HostOptions = []libp2p.Option{
				simlibp2p.QUICSimnet(sim, simnet.NodeBiDiLinkSettings{Downlink: link, Uplink: link}),
				// Address discovery through identify stalls synctest
				// (go-libp2p's x/simlibp2p turns it off for that reason).
				libp2p.DisableIdentifyAddressDiscovery(),
				libp2p.ResourceManager(&network.NullResourceManager{}),
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Stopped before the simulated network closes (cleanups run last
	// first).
	t.Cleanup(func() {
		if err := tn.Stop(); err != nil {
			t.Errorf("stop network: %v", err)
		}
	})
	return tn
}

// certificateTime is when the gateway (node0) of a job submitted at time
// 0 holds its certificate, by the latency model alone: the announcement
// reaches each validator by the fastest path of gossip (every node
// forwards it to all of its peers: with five nodes, gossipsub's mesh holds
// them all), its ballot comes back straight to the gateway, and the
// gateway certifies with its own ballot and need-1 others. Validators in
// cut are unreachable.
func certificateTime(latency func(a, b int) time.Duration, count, need int, cut map[int]bool) time.Duration {
	const never = time.Duration(1<<63 - 1)
	reach := make([]time.Duration, count) // shortest path from node0 (Dijkstra)
	done := make([]bool, count)
	for i := range reach {
		reach[i] = never
	}
	reach[0] = 0
	for range count {
		u := -1
		for i := range count {
			if !done[i] && !cut[i] && reach[i] != never && (u < 0 || reach[i] < reach[u]) {
				u = i
			}
		}
		if u < 0 {
			break
		}
		done[u] = true
		for v := range count {
			if !cut[v] && reach[u]+latency(u, v) < reach[v] {
				reach[v] = reach[u] + latency(u, v)
			}
		}
	}
	var ballots []time.Duration
	for v := 1; v < count; v++ {
		if reach[v] != never {
			ballots = append(ballots, reach[v]+latency(v, 0))
		}
	}
	slices.Sort(ballots)
	return ballots[need-2]
}

// TestSimulatedTimeToCertificate: five validators of equal stake on a
// simulated network in virtual time (testing/synctest), each link with its
// own latency. Judging, signing and the nodes' other work take no virtual
// time, so the time from submission to certificate is the network's alone,
// and the same on every run and machine: it must equal what the latency
// model predicts (certificateTime), to within the time packets take to
// cross 10 Gbit/s links (0.1 ms). The gateway needs four ballots of five
// (2/3 of the stake). Then node1, the nearest, is cut off: the certificate
// waits for the slowest validator.
func TestSimulatedTimeToCertificate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One-way latency from the gateway (node0) to node1..node4; 5ms
		// between any two others. A node cut off gets nothing in time.
		fromGateway := []time.Duration{0, 10 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}
		latency := func(a, b int) time.Duration {
			if a == 0 || b == 0 {
				return fromGateway[a+b]
			}
			return 5 * time.Millisecond
		}
		const count, need = 5, 4
		var cutNode1 atomic.Bool
		tn := simNetwork(t, count, func(a, b int) time.Duration {
			if cutNode1.Load() && (a == 1 || b == 1) {
				return time.Hour
			}
			return latency(a, b)
		})
		gw := tn.Nodes()[0]
		ctx := context.Background()
		certify := func(cut map[int]bool) {
			t.Helper()
			want := certificateTime(latency, count, need, cut)
			start := time.Now()
			j, err := gw.Submit(ctx, api.VerifyRequest{Output: answer})
			if err != nil {
				t.Fatal(err)
			}
			c, err := gw.WaitFinal(ctx, j.JobID)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("certificate %s with %d ballots %v after submission (%v predicted)", c.Status, len(c.Ballots), took.Round(100*time.Microsecond), want)
			if len(c.Ballots) != need {
				t.Errorf("certificate of %d ballots, want %d", len(c.Ballots), need)
			}
			if took < want || took > want+100*time.Microsecond {
				t.Errorf("certificate %v after submission; the latencies predict %v", took, want)
			}
		}
		for range 3 {
			certify(nil)
		}
		cutNode1.Store(true)
		for range 2 {
			certify(map[int]bool{1: true})
		}
	})
}
