package forge

import (
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/consensus"
)

// TestReplicationOneRefusedByDefaultPolicy: the minted certificate is sound
// under a policy that trusts one validator, and below the floor of the
// default one.
func TestReplicationOneRefusedByDefaultPolicy(t *testing.T) {
	g := &consensus.Genesis{NetworkID: 9}
	var liar = mustKey(t)
	g.Validators = append(g.Validators, consensus.Validator{Name: "liar", Address: crypto.PubkeyToAddress(liar.PublicKey), Stake: 100})
	for _, name := range []string{"a", "b", "c", "d"} {
		k := mustKey(t)
		g.Validators = append(g.Validators, consensus.Validator{Name: name, Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 100})
	}
	c, err := ReplicationOne(g, liar, "2 + 2 = 5.", time.UnixMilli(1_800_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != consensus.StatusVerified || len(c.Ballots) != 1 {
		t.Fatalf("minted %s with %d ballots, want verified with 1", c.Status, len(c.Ballots))
	}
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	if err := consensus.VerifyCertificate(c, set, []byte("2 + 2 = 5.")); !errors.Is(err, consensus.ErrBelowFloor) {
		t.Fatalf("verify under the default policy: %v, want ErrBelowFloor", err)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
