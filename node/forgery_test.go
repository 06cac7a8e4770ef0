package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// TestForgedEmptyCertificateIgnored: a peer without any validator key
// builds a certificate with no ballots for a pending job (it verifies: every
// claim undecided) and gossips it before the real one. No node may take it
// as final; the gateway's real certificate must be the one every node keeps.
func TestForgedEmptyCertificateIgnored(t *testing.T) {
	net, release := startGated(t, 3)
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	accept := func(context.Context, peer.ID, []byte) p2p.Verdict { return p2p.Accept }
	attacker, err := p2p.New(ctx, p2p.Config{
		Key: key, NetworkID: set.NetworkID(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap:  nodes[1].P2PAddrs(),
		Validators: map[string]p2p.ValidatorFunc{p2p.KindJobs: accept, p2p.KindBallots: accept, p2p.KindCerts: accept, p2p.KindEvidence: accept},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	jobs, err := attacker.Subscribe(p2p.KindJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := attacker.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	job, err := client.New(nodes[0].APIURL()).Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	var m node.JobMessage
	for msg := range jobs {
		if err := json.Unmarshal(msg.Data, &m); err == nil && m.JobID == job.JobID {
			break
		}
	}
	tally, err := consensus.NewTally(set, m.Params())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := tally.Certificate(m.ClaimList(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := consensus.VerifyCertificate(forged, set, []byte(answer)); err != nil {
		t.Fatalf("the forged certificate should verify on its own: %v", err)
	}
	data, _ := json.Marshal(forged)
	before := nodes[1].Network().Stats().Ignored
	if err := attacker.Publish(ctx, p2p.KindCerts, data); err != nil {
		t.Fatal(err)
	}
	// node1 is the attacker's peer: wait until it has judged the message.
	for nodes[1].Network().Stats().Ignored == before {
		select {
		case <-ctx.Done():
			t.Fatal("node1 never judged the forged certificate")
		case <-time.After(5 * time.Millisecond):
		}
	}
	for _, nd := range nodes {
		if _, err := nd.Certificate(job.JobID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s stored a certificate while the job was pending: %v", nd.Name(), err)
		}
	}
	release()
	for _, nd := range nodes {
		c, err := nd.WaitFinal(ctx, job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != consensus.StatusVerified || len(c.Ballots) == 0 {
			t.Fatalf("%s kept a %s certificate with %d ballots", nd.Name(), c.Status, len(c.Ballots))
		}
	}
}
