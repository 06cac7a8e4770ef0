package consensus

import (
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

func TestSmokeBuildAndVerify(t *testing.T) {
	var keys []*ecdsa.PrivateKey
	g := &Genesis{NetworkID: 7}
	for i := range 4 {
		k, _ := crypto.GenerateKey()
		keys = append(keys, k)
		g.Validators = append(g.Validators, Validator{Name: string(rune('a' + i)), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 10})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	cs := claims.FromTexts([]string{"Paris is the capital of France.", "2 + 2 = 5."})
	out := []byte("Paris is the capital of France. 2 + 2 = 5.")
	p := JobParams{NetworkID: 7, OutputHash: claims.OutputHash(out), ClaimsRoot: claims.RootOf(cs), ClaimCount: 2, Quorum: DefaultQuorum, Nonce: common.Hash{1}}
	tl, err := NewTally(set, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b, err := SignBallot(sigs.NewKeySigner(k), 7, tl.JobID(), p.OutputHash, p.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.True, claims.False})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tl.AddBallot(b); err != nil {
			t.Fatal(err)
		}
	}
	if !tl.Done() {
		t.Fatal("not done")
	}
	c, err := tl.Certificate(cs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusRejected {
		t.Fatalf("status %s", c.Status)
	}
	if err := VerifyCertificate(c, set, out); err != nil {
		t.Fatal(err)
	}
	c.Claims[1].Verdict = OutcomeTrue
	if err := VerifyCertificate(c, set, out); err == nil {
		t.Fatal("flipped verdict verified")
	} else {
		t.Log(err)
	}
}
