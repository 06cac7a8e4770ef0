package testnet

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/forge"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/sigs"
)

// TestCheckReportsSplitAndFloor: the stores of three nodes as the attacks
// of a keyless peer and of a single validator's key would have left them
// before nodes took only final certificates within the policy. node0 holds
// the gateway's "rejected"; node1 the keyless peer's zero-ballot
// "unresolved" for the same job; node2 a certificate one validator minted
// with replication 1. Check reports the split job, the certificate that is
// not final and the one below the floor.
func TestCheckReportsSplitAndFloor(t *testing.T) {
	keys := make([]*ecdsa.PrivateKey, 5)
	g := &consensus.Genesis{NetworkID: 77}
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		g.Validators = append(g.Validators, consensus.Validator{Name: fmt.Sprintf("node%d", i), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 100})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	cs := claims.FromTexts([]string{"Paris is the capital of France.", "The Sun orbits the Earth."})
	output := "Paris is the capital of France. The Sun orbits the Earth."
	deadline := time.UnixMilli(1_800_000_000_000)
	gateway := sigs.NewKeySigner(keys[0])
	p := consensus.JobParams{NetworkID: g.NetworkID, OutputHash: claims.OutputHash([]byte(output)), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: 2, Quorum: consensus.DefaultQuorum, Gateway: gateway.Address(), Deadline: uint64(deadline.UnixMilli())}
	tl, err := consensus.NewTally(set, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		pos, _, _ := set.Lookup(crypto.PubkeyToAddress(k.PublicKey))
		b, err := consensus.SignBallot(sigs.NewKeySigner(k), p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot,
			tl.Assignment().ByValidator[pos], []claims.Verdict{claims.True, claims.False})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tl.AddBallot(b); err != nil {
			t.Fatalf("ballot %d: %v", i, err)
		}
	}
	real, err := tl.Certificate(cs, deadline.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := real.Sign(gateway); err != nil {
		t.Fatal(err)
	}
	if err := consensus.VerifyCertificate(real, set, []byte(output)); err != nil || real.Status != consensus.StatusRejected {
		t.Fatalf("the gateway's certificate: %s, %v", real.Status, err)
	}
	keyless, err := forge.ZeroBallots(set, p, cs, deadline.Add(-500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	minted, err := forge.ReplicationOne(g, keys[3], "2 + 2 = 5.", deadline)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	refs := make([]StoreRef, 3)
	for i, c := range []*consensus.Certificate{real, keyless, minted} {
		refs[i] = StoreRef{Name: fmt.Sprintf("node%d", i), Path: filepath.Join(dir, fmt.Sprintf("node%d", i), StoreFile)}
		if err := os.MkdirAll(filepath.Dir(refs[i].Path), 0o700); err != nil {
			t.Fatal(err)
		}
		withStore(t, refs[i], func(st *store.Store) {
			if stored, err := st.PutCertificate(c, deadline); err != nil || !stored {
				t.Fatalf("put: %v %v", stored, err)
			}
		})
	}
	r, _, err := CheckStores(context.Background(), g, refs, CheckOptions{Now: deadline})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	r.WriteText(&text)
	if r.OK() {
		t.Fatalf("the split passes the check:\n%s", text.String())
	}
	if len(r.Splits) != 1 || r.Splits[0].JobID != real.JobID ||
		strings.Join(r.Splits[0].Outcomes["rejected: true false"], ",") != "node0" ||
		strings.Join(r.Splits[0].Outcomes["unresolved: undecided undecided"], ",") != "node1" {
		t.Errorf("splits %+v: want the job rejected on node0 and unresolved on node1\n%s", r.Splits, text.String())
	}
	var notFinal, belowFloor int
	for _, b := range r.BadCertificates {
		switch {
		case b.NotFinal && b.Node == "node1":
			notFinal++
		case b.BelowFloor && b.Node == "node2":
			belowFloor++
		default:
			t.Errorf("unexpected bad certificate %+v", b)
		}
	}
	if notFinal != 1 || belowFloor != 1 {
		t.Errorf("%d not final on node1, %d below the floor on node2; want 1 and 1\n%s", notFinal, belowFloor, text.String())
	}
	for _, want := range []string{"has different certificates: rejected: true false on node0; unresolved: undecided undecided on node1",
		"is not final", "is below the network's security floor", "1 split jobs"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
}
