package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// TestBallotAttachedJSON: AppendJSON writes what encoding/json writes for
// the data of a ballot.attached event, nil and empty lists and names that
// need escaping (HTML included) among them.
func TestBallotAttachedJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := []string{"node0", "", "a<b>&c", "quote\"back\\slash", "tab\there", "é\u2028"}
	for range 2000 {
		d := BallotAttachedData{Name: names[r.IntN(len(names))], Stake: r.Uint64()}
		for i := range d.Validator {
			d.Validator[i] = byte(r.Uint32())
		}
		if r.IntN(4) > 0 {
			d.ClaimIndexes = []uint32{}
			d.Verdicts = []claims.Verdict{}
			for i := range r.IntN(4) {
				d.ClaimIndexes = append(d.ClaimIndexes, uint32(i)*r.Uint32N(9))
				d.Verdicts = append(d.Verdicts, claims.Verdict(r.IntN(3)))
			}
		}
		if r.IntN(4) > 0 {
			d.Progress = []consensus.ClaimProgress{}
			for i := range r.IntN(3) {
				p := consensus.ClaimProgress{Index: uint32(i), Outcome: consensus.OutcomeTrue, StakeTrue: r.Uint64(), NeededUnit: "stake"}
				if r.IntN(2) == 0 {
					p.Voters = []common.Address{d.Validator}
				}
				d.Progress = append(d.Progress, p)
			}
		}
		want, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
		}
	}
}
