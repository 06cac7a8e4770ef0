package testnet

import (
	"context"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/node"
)

// allTrue is a verifier that finds every claim true.
type allTrue struct{}

func (allTrue) Verify(context.Context, claims.Claim) claims.Verdict { return claims.True }

func TestBehaviourPolicies(t *testing.T) {
	j := &node.Judgement{
		Job:       &node.JobMessage{JobID: common.HexToHash("0x1"), Claims: []string{"a", "b", "c"}},
		Mine:      []uint32{0, 2},
		Validator: common.HexToAddress("0x2"),
		Verifier:  allTrue{},
	}
	ctx := context.Background()
	ballots := func(kind string) [][]claims.Verdict {
		t.Helper()
		p, err := Behaviour{Kind: kind}.Policy()
		if err != nil {
			t.Fatal(err)
		}
		return p.Ballots(ctx, j)
	}
	tt := []claims.Verdict{claims.True, claims.True}
	ff := []claims.Verdict{claims.False, claims.False}
	for _, tc := range []struct {
		kind string
		want [][]claims.Verdict
	}{
		{"", [][]claims.Verdict{tt}},
		{BehaviourHonest, [][]claims.Verdict{tt}},
		{BehaviourLiar, [][]claims.Verdict{ff}},
		{BehaviourSilent, nil},
		{BehaviourEquivocator, [][]claims.Verdict{tt, ff}},
		{BehaviourSlow, [][]claims.Verdict{tt}},
	} {
		got := ballots(tc.kind)
		if !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%q: ballots %v, want %v", tc.kind, got, tc.want)
		}
	}
	if a, b := ballots(BehaviourRandom), ballots(BehaviourRandom); len(a) != 1 || !slices.Equal(a[0], b[0]) {
		t.Errorf("random: %v then %v, want one seeded ballot", a, b)
	}
	if _, err := (Behaviour{Kind: "sneaky"}).Policy(); err == nil {
		t.Error("unknown behaviour accepted")
	}
}
