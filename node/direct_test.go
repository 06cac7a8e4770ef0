package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// TestGossipBallots: with ballots gossiped to every node (GossipBallots),
// outputs of known truth are certified correctly and an equivocator is
// caught; the default, ballots sent straight to each gateway, runs in every
// other test.
func TestGossipBallots(t *testing.T) { testBallotRoute(t, true) }

// TestDirectBallots: with ballots sent straight to each gateway, outputs of
// known truth are certified correctly, every node stores the same
// certificates, and an equivocator is still caught (by the gateway, which
// gossips the evidence to every node).
func TestDirectBallots(t *testing.T) { testBallotRoute(t, false) }

func testBallotRoute(t *testing.T, gossip bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 5, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			o.GossipBallots = gossip
			if i == 4 {
				o.Ballots = ballotPolicy(t, testnet.BehaviourEquivocator)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()
	outputs, want := knownOutputs(20)
	for i, out := range outputs {
		gw := nodes[i%4]
		j, err := gw.Submit(ctx, api.VerifyRequest{Output: out})
		if err != nil {
			t.Fatal(err)
		}
		c, err := gw.WaitFinal(ctx, j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if err := consensus.VerifyCertificate(c, set, []byte(out)); err != nil {
			t.Fatal(err)
		}
		if c.Status != want[i] {
			t.Errorf("output %d: %s, want %s", i, c.Status, want[i])
		}
		checkDecisions(t, c)
		for _, nd := range nodes {
			if _, err := nd.WaitFinal(ctx, j.JobID); err != nil {
				t.Fatalf("%s never stored job %d's certificate: %v", nd.Name(), i, err)
			}
		}
	}
	for _, nd := range nodes {
		for {
			ev, err := nd.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Penalties) == 1 && ev.Penalties[0].Name == "node4" {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s has no evidence against the equivocator: %+v", nd.Name(), ev.Penalties)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}
