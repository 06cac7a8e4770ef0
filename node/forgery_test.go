package node_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/forge"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/testnet"
)

// keylessAttacker is a libp2p peer with a fresh key that is no validator's,
// connected to every node, that accepts anything on every topic.
type keylessAttacker struct {
	net  *p2p.Network
	jobs <-chan p2p.Message
}

func newKeylessAttacker(t *testing.T, ctx context.Context, tn *testnet.Network) *keylessAttacker {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var bootstrap []string
	for _, nd := range tn.Nodes() {
		bootstrap = append(bootstrap, nd.P2PAddrs()...)
	}
	accept := func(context.Context, peer.ID, []byte) p2p.Verdict { return p2p.Accept }
	a, err := p2p.New(ctx, p2p.Config{
		Key: key, NetworkID: tn.Nodes()[0].ValidatorSet().NetworkID(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap:  bootstrap,
		Validators: map[string]p2p.ValidatorFunc{p2p.KindJobs: accept, p2p.KindBallots: accept, p2p.KindCerts: accept, p2p.KindEvidence: accept},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	jobs, err := a.Subscribe(p2p.KindJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForPeers(ctx, len(tn.Nodes())); err != nil {
		t.Fatal(err)
	}
	// The tests submit at node0, which every node bootstraps to. A job
	// node0 publishes before it knows the attacker's subscription reaches
	// the attacker only through gossip's short history, or re-announced
	// (with a resend number the tests do not wait for): on a busy machine
	// the attacker could miss it.
	gw := tn.Nodes()[0]
	eventually(t, ctx, "node0 knows the attacker's topics", func() bool { return gw.TopicPeers() >= len(tn.Nodes()) })
	return &keylessAttacker{net: a, jobs: jobs}
}

// job waits for the announcement of job id.
func (a *keylessAttacker) job(t *testing.T, ctx context.Context, id [32]byte) *node.JobMessage {
	t.Helper()
	for {
		select {
		case msg, ok := <-a.jobs:
			if !ok {
				t.Fatal("jobs subscription closed")
			}
			var m node.JobMessage
			if err := json.Unmarshal(msg.Data, &m); err == nil && m.JobID == id {
				return &m
			}
		case <-ctx.Done():
			t.Fatal("the attacker never saw the job announced")
		}
	}
}

// zeroBallotCertificate is what a peer without a key can build for any
// announced job.
func zeroBallotCertificate(t *testing.T, set *consensus.ValidatorSet, m *node.JobMessage, at time.Time) *consensus.Certificate {
	t.Helper()
	c, err := forge.ZeroBallots(set, m.Params(), m.ClaimList(), at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publishAndAwaitRejection publishes data on the certs topic and waits until
// every node's topic validator has rejected it.
func (a *keylessAttacker) publishAndAwaitRejection(t *testing.T, ctx context.Context, nodes []*node.Node, data []byte) {
	t.Helper()
	before := make([]uint64, len(nodes))
	for i, nd := range nodes {
		before[i] = nd.Network().Stats().Rejected
	}
	if err := a.net.Publish(ctx, p2p.KindCerts, data); err != nil {
		t.Fatal(err)
	}
	for i, nd := range nodes {
		for nd.Network().Stats().Rejected == before[i] {
			select {
			case <-ctx.Done():
				t.Fatalf("%s never rejected the forged certificate (stats %+v)", nd.Name(), nd.Network().Stats())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// TestForgedEmptyCertificateIgnored: a peer without any validator key
// builds a certificate with no ballots for a pending job (its signatures all
// hold: there are none, and every claim is undecided) and gossips it before
// the real one. It is not final (no gateway signature, claims open before
// the deadline): every node rejects it, and the gateway's real certificate
// is the one every node keeps.
func TestForgedEmptyCertificateIgnored(t *testing.T) {
	tn, release := startGated(t, 3)
	nodes := tn.Nodes()
	set := nodes[0].ValidatorSet()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	attacker := newKeylessAttacker(t, ctx, tn)

	job, err := client.New(nodes[0].APIURL()).Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	forged := zeroBallotCertificate(t, set, attacker.job(t, ctx, job.JobID), time.Now())
	if err := consensus.VerifyCertificate(forged, set, []byte(answer)); !errors.Is(err, consensus.ErrNotFinal) || consensus.IsVerificationError(err) {
		t.Fatalf("the forged certificate: %v, want valid signatures but not final", err)
	}
	data := consensus.AppendCertificateBinary(nil, forged)
	attacker.publishAndAwaitRejection(t, ctx, nodes, data)
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
	// The real certificate again, in JSON: certificates are gossiped in
	// their binary form only (one certificate, one message), so every node
	// rejects it where the same bytes in the binary form, held already,
	// would be ignored.
	real, err := nodes[0].Certificate(job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	data, err = json.Marshal(real)
	if err != nil {
		t.Fatal(err)
	}
	attacker.publishAndAwaitRejection(t, ctx, nodes, data)
}

// falseAfterGate judges every claim false once its gate opens.
type falseAfterGate struct{ gate <-chan struct{} }

func (g falseAfterGate) Verify(ctx context.Context, _ claims.Claim) claims.Verdict {
	select {
	case <-g.gate:
		return claims.False
	case <-ctx.Done():
		return claims.Abstain
	}
}

// TestKeylessCertificateAtDeadlineCannotHideRejection: a peer without a key
// publishes a zero-ballot "unresolved" certificate before the job's
// deadline, while the ballots that reject the job are on their way (they
// are held back until every node has rejected the forgery, with half the
// deadline left for that and for the ballots, however slow the machine).
// Every node rejects it; every node then serves the gateway's "rejected".
func TestKeylessCertificateAtDeadlineCannotHideRejection(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 3, APIs: true, Dir: t.TempDir(),
		Verifier: func(int) node.Verifier { return falseAfterGate{gate: gate} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	nodes := tn.Nodes()
	set := nodes[0].ValidatorSet()
	attacker := newKeylessAttacker(t, ctx, tn)

	const deadline = 6 * time.Second
	job, err := client.New(nodes[0].APIURL()).Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: deadline.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	m := attacker.job(t, ctx, job.JobID)
	at := time.UnixMilli(int64(m.Deadline)).Add(-deadline / 2)
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	forged := zeroBallotCertificate(t, set, m, time.Now())
	data := consensus.AppendCertificateBinary(nil, forged)
	attacker.publishAndAwaitRejection(t, ctx, nodes, data)
	release()
	var statuses []consensus.Status
	for _, nd := range nodes {
		c, err := nd.WaitFinal(ctx, job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, c.Status)
		if len(c.GatewaySignature) == 0 || c.Gateway != nodes[0].Address() {
			t.Fatalf("%s keeps a certificate not signed by the gateway", nd.Name())
		}
	}
	for i, s := range statuses {
		if s != consensus.StatusRejected {
			t.Fatalf("%s serves %s; the gateway's certificate says rejected (all: %v)", nodes[i].Name(), s, statuses)
		}
	}
}

// TestReplicationOneLiarRefused: on a network of five equal validators
// whose policy assumes byzantine stake below 1/3, a client may not ask for
// one validator per claim (400 below_security_floor), and the certificate a
// single validator's key can mint for such a job ("2 + 2 = 5." verified by
// its own ballot) is refused by every node's topic validator and stored by
// none.
func TestReplicationOneLiarRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := make([]*ecdsa.PrivateKey, 5)
	var mu sync.Mutex
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 5, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) { mu.Lock(); keys[i] = o.Key; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	nodes := tn.Nodes()

	one := uint32(1)
	_, err = client.New(nodes[0].APIURL()).Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 5.", Replication: &one})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "below_security_floor" {
		t.Fatalf("replication 1: %v, want 400 below_security_floor", err)
	}
	t.Logf("refused: %v", err)

	attacker := newKeylessAttacker(t, ctx, tn)
	mu.Lock()
	liar := keys[3]
	mu.Unlock()
	minted, err := forge.ReplicationOne(tn.Genesis(), liar, "2 + 2 = 5.", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	data := consensus.AppendCertificateBinary(nil, minted)
	attacker.publishAndAwaitRejection(t, ctx, nodes, data)
	for _, nd := range nodes {
		if _, err := nd.Certificate(minted.JobID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s stored the minted certificate: %v", nd.Name(), err)
		}
	}
}
