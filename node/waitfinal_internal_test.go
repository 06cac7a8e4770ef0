package node

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// TestWaitFinalLeavesNoEntry: waiting, whether it ends in a certificate, a
// job already final, or a timeout, leaves nothing behind in n.finals.
func TestWaitFinalLeavesNoEntry(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := &consensus.Genesis{NetworkID: 9, Validators: []consensus.Validator{{Name: "solo", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1}}}
	n, err := New(Options{Key: key, Genesis: g, Verifier: claims.Arithmetic{}, DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
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
	n.mu.Lock()
	left := len(n.finals)
	n.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiter entries left behind", left)
	}
}
