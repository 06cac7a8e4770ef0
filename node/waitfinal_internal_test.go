package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// TestWaitFinalLeavesNoEntry: waiting, whether it ends in a certificate, a
// job already final, or a timeout, leaves nothing behind in the observer's finals.
func TestWaitFinalLeavesNoEntry(t *testing.T) {
	n := soloNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitFinal(ctx, j.JobID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitFinal(ctx, j.JobID); err != nil { // already final
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Millisecond)
	defer cancelShort()
	if _, err := n.WaitFinal(short, common.Hash{1}); err == nil { // never final
		t.Fatal("waiting for an unknown job returned no error")
	}
	n.obs.mu.Lock()
	left := len(n.obs.finals)
	n.obs.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiter entries left behind", left)
	}
}

// TestWaitFinalHandsTheNotifiedCertificate: a waiter woken with the
// certificate stored gets it as it was handed over, not read back from
// the store; woken without one, it reads the store.
func TestWaitFinalHandsTheNotifiedCertificate(t *testing.T) {
	n := soloNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait := func(id common.Hash, handed *consensus.Certificate) (*consensus.Certificate, error) {
		type result struct {
			c   *consensus.Certificate
			err error
		}
		got := make(chan result, 1)
		go func() {
			c, err := n.WaitFinal(ctx, id)
			got <- result{c, err}
		}()
		for registered := false; !registered; {
			if ctx.Err() != nil {
				t.Fatal("the waiter never registered")
			}
			n.obs.mu.Lock()
			registered = n.obs.finals[id] != nil
			n.obs.mu.Unlock()
			time.Sleep(time.Millisecond) // polls the condition; ctx bounds it
		}
		n.obs.notifyFinal(id, handed)
		r := <-got
		return r.c, r.err
	}
	handed := &consensus.Certificate{JobID: common.Hash{0xaa}} // in no store
	if c, err := wait(handed.JobID, handed); err != nil || c != handed {
		t.Errorf("woken with a certificate, the waiter got %p (%v), not it (%p)", c, err, handed)
	}
	if c, err := wait(common.Hash{0xbb}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("woken without a certificate, the waiter got %+v, %v; want the store's answer (not found)", c, err)
	}
}

// TestHoldsCertificateComparesOutcome: a certificate counts as one this
// node holds only with the same outcome under the same signature. One
// batch signature covers every outcome of its batch, so a gateway can sign
// two outcomes of one job under it: the second must not pass for a copy.
func TestHoldsCertificateComparesOutcome(t *testing.T) {
	n, _, held := soloCertificate(t)
	// As gossip and catch-up carry it (its stored bytes, other bytes of
	// the same certificate: compared decoded), and another outcome under
	// the same signature.
	wire, err := encode(held)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := json.Marshal(held)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{wire, stored, []byte("{}")} {
		if h, other := n.obs.holdsCertificate(held, data); !h || other {
			t.Fatalf("the held certificate received as %.40q… is not recognised as held", data)
		}
	}
	other := *held
	other.IssuedAt = held.IssuedAt.Add(time.Millisecond) // another outcome, the same signature
	otherData, err := encode(&other)
	if err != nil {
		t.Fatal(err)
	}
	if h, o := n.obs.holdsCertificate(&other, otherData); h || !o {
		t.Fatalf("another outcome under the held signature: held %v, other %v; want it not held, another one held", h, o)
	}
	// Taken (it verifies, as a conflict its gateway signed would), it
	// costs no write transaction: a gateway's key can sign such
	// certificates one after another.
	before := n.StoreStats().Commits
	n.obs.storeCert(takenCert{cert: &other, data: otherData, other: true})
	if after := n.StoreStats().Commits; after != before {
		t.Fatalf("a conflicting certificate cost %d commits", after-before)
	}
	if c, err := n.store.Certificate(held.JobID); err != nil || !c.IssuedAt.Equal(held.IssuedAt) {
		t.Fatalf("stored certificate after the conflict: %+v %v, want the first", c, err)
	}
}

// soloNode starts a one-validator node, stopped when the test ends.
func soloNode(t *testing.T) *Node { return soloNodeTraced(t, nil) }

// soloNodeTraced is soloNode with trace as its Options.Trace.
func soloNodeTraced(t *testing.T, trace func(TraceEvent)) *Node {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := &consensus.Genesis{NetworkID: 9, Validators: []consensus.Validator{{Name: "solo", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1}}}
	n, err := New(Options{Key: key, Genesis: g, Verifier: claims.Arithmetic{}, DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Trace: trace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

// soloCertificate starts a soloNode and has it certify one job; ctx
// bounds what the test does with them.
func soloCertificate(t *testing.T) (*Node, context.Context, *consensus.Certificate) {
	t.Helper()
	n := soloNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	j, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4."})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := n.WaitFinal(ctx, j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	return n, ctx, cert
}

// TestOwnCertificateNotDeliveredBack: a certificate this node publishes
// is checked by its topic validator (it must verify before it spreads)
// but not handed back to its own store, which holds it already. (One from
// a peer is handed on: every network test sees certificates reach the
// other nodes.)
func TestOwnCertificateNotDeliveredBack(t *testing.T) {
	n, ctx, cert := soloCertificate(t)
	data := consensus.CertificateBinary(cert) // as gossiped
	if v, value := n.obs.validateCert(ctx, n.net.PeerID(), data); v != p2p.Accept || value != nil {
		t.Fatalf("own certificate: %v with %T, want Accept and nothing to deliver", v, value)
	}
	if cert.Status != consensus.StatusVerified {
		t.Fatalf("status %s, want one to tamper with", cert.Status)
	}
	bad := *cert
	bad.Status = consensus.StatusRejected
	tampered := consensus.CertificateBinary(&bad)
	if v, _ := n.obs.validateCert(ctx, n.net.PeerID(), tampered); v != p2p.Reject {
		t.Fatalf("own certificate tampered with: %v, want Reject", v)
	}
}

// TestIssuedCertificateTakenOnce: a certificate this node's gateway noted
// as issued (observer.issuing) is taken on its way out without a check,
// once and only from this node; anything else with its job id, and the
// same bytes a second time or from a peer, are checked. The test notes a
// tampered certificate, which a check refuses, to see which way each went.
func TestIssuedCertificateTakenOnce(t *testing.T) {
	n, ctx, cert := soloCertificate(t)
	bad := *cert
	bad.Status = consensus.StatusRejected
	tampered := consensus.CertificateBinary(&bad)
	other := *cert
	other.Status = consensus.StatusUnresolved
	otherBytes := consensus.CertificateBinary(&other)

	n.obs.issuing(cert.JobID, tampered)
	if v, _ := n.obs.validateCert(ctx, "12D3KooWPeerThatIsNotThisNode", tampered); v != p2p.Reject {
		t.Fatalf("noted bytes from a peer: %v, want Reject (checked)", v)
	}
	if v, _ := n.obs.validateCert(ctx, n.net.PeerID(), otherBytes); v != p2p.Reject {
		t.Fatalf("other bytes of the noted job: %v, want Reject (checked)", v)
	}
	if v, value := n.obs.validateCert(ctx, n.net.PeerID(), tampered); v != p2p.Accept || value != nil {
		t.Fatalf("noted bytes on their way out: %v with %T, want Accept unchecked", v, value)
	}
	if v, _ := n.obs.validateCert(ctx, n.net.PeerID(), tampered); v != p2p.Reject {
		t.Fatalf("noted bytes a second time: %v, want Reject (checked)", v)
	}
}
