package consensus

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// randomProgress is a ClaimProgress with every field drawn at random,
// Voters nil, empty or not.
func randomProgress(r *rand.Rand) ClaimProgress {
	outcomes := []Outcome{OutcomePending, OutcomeTrue, OutcomeFalse, OutcomeUndecided, "a<b>&\"c\"\u2028"}
	units := []string{"stake", "validators", "", "x\ny"}
	p := ClaimProgress{
		Index: r.Uint32(), Outcome: outcomes[r.IntN(len(outcomes))],
		StakeTrue: r.Uint64(), StakeFalse: r.Uint64(), StakeAbstain: r.Uint64N(3), StakeAssigned: r.Uint64(),
		Needed: r.Uint64(), NeededUnit: units[r.IntN(len(units))],
		ValidatorsAssigned: r.Uint64N(100), ValidatorsTrue: r.Uint64(), ValidatorsFalse: 0, ValidatorsAbstain: r.Uint64(),
	}
	switch r.IntN(3) {
	case 1:
		p.Voters = []common.Address{}
	case 2:
		for range 1 + r.IntN(5) {
			var a common.Address
			for i := range a {
				a[i] = byte(r.Uint32())
			}
			p.Voters = append(p.Voters, a)
		}
	}
	return p
}

// TestClaimProgressJSON: AppendJSON writes what encoding/json writes, for
// progress of every shape, and text that needs escaping (HTML included).
func TestClaimProgressJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		p := randomProgress(r)
		want, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
	}
}
