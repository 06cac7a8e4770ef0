package consensus

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

var twoClaims = []string{"Paris is the capital of France.", "2 + 2 = 5."}

func TestTallyRejects(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := f.newJob(twoClaims, DefaultQuorum, 0, 1)
	other := f.newJob(twoClaims, DefaultQuorum, 0, 2) // same claims, another nonce
	stranger := sigs.NewKeySigner(testKey(99))

	tests := []struct {
		name  string
		build func(tl *Tally) *Ballot
		want  error
	}{
		{"wrong indexes and garbage signature report the shape first", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.ClaimIndexes, b.Verdicts = []uint32{0}, []claims.Verdict{claims.True}
			b.Signature = make([]byte, 3)
			return b
		}, ErrNotAssigned},
		{"extra claim index", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.ClaimIndexes, b.Verdicts = []uint32{0, 1, 2}, []claims.Verdict{1, 1, 1}
			return b
		}, ErrNotAssigned},
		{"unsorted claim indexes", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.ClaimIndexes = []uint32{1, 0}
			return b
		}, ErrNotAssigned},
		{"fewer verdicts than indexes", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.Verdicts = b.Verdicts[:1]
			return b
		}, ErrBallotShape},
		{"verdict code 3", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.Verdicts[1] = 3
			return b
		}, ErrBallotShape},
		{"unknown validator", func(tl *Tally) *Ballot {
			p := tl.Params()
			b, err := SignBallot(stranger, p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{1, 1})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, ErrUnknownValidator},
		{"wrong network", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.NetworkID = 8
			return b
		}, ErrWrongNetwork},
		{"wrong job id", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.JobID[0] ^= 1
			return b
		}, ErrWrongJob},
		{"wrong output hash", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.OutputHash[0] ^= 1
			return b
		}, ErrWrongJob},
		{"wrong claims root", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.ClaimsRoot[0] ^= 1
			return b
		}, ErrWrongJob},
		{"replayed from another job", func(*Tally) *Ballot {
			return f.ballot(t, f.tally(t, other), 0, all(claims.True))
		}, ErrWrongJob},
		{"replayed from another job with the job fields rewritten", func(tl *Tally) *Ballot {
			b := f.ballot(t, f.tally(t, other), 0, all(claims.True))
			b.JobID = tl.JobID()
			return b
		}, ErrBadSignature},
		{"signed by another validator", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 1, all(claims.True))
			b.Validator = f.addr(0)
			return b
		}, ErrBadSignature},
		{"verdict changed after signing", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.Verdicts[0] = claims.False
			return b
		}, ErrBadSignature},
		{"signature v out of range", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.Signature[64] = 29
			return b
		}, ErrBadSignature},
		{"signature too long", func(tl *Tally) *Ballot {
			b := f.ballot(t, tl, 0, all(claims.True))
			b.Signature = append(b.Signature, 0)
			return b
		}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := f.tally(t, j)
			added, err := tl.AddBallot(tt.build(tl))
			if added || !errors.Is(err, tt.want) {
				t.Fatalf("got added=%v err=%v, want %v", added, err, tt.want)
			}
			if tl.Len() != 0 {
				t.Fatal("a rejected ballot changed the tally")
			}
		})
	}
}

// TestTallyUnassignedValidator: with partial replication a validator that
// judges no claim of the job has nothing to sign; an empty ballot from it is
// rejected rather than counted.
func TestTallyUnassignedValidator(t *testing.T) {
	f := newFixture(t, 7, equalStakes(20)...)
	j := f.newJob([]string{"only claim"}, StakeQuorum(1, 2), 1, 1)
	tl := f.tally(t, j)
	pos := slices.IndexFunc(tl.Assignment().ByValidator, func(cs []uint32) bool { return len(cs) == 0 })
	if pos < 0 {
		t.Fatal("every validator is assigned")
	}
	b := f.ballot(t, tl, pos, all(claims.True))
	if len(b.ClaimIndexes) != 0 {
		t.Fatal("ballot is not empty")
	}
	if _, err := tl.AddBallot(b); !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("got %v, want %v", err, ErrNotAssigned)
	}
}

func TestTallyRepeatAndEquivocation(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := f.newJob(twoClaims, DefaultQuorum, 0, 1)
	tl := f.tally(t, j)
	first := f.ballot(t, tl, 0, per(claims.True, claims.False))
	mustAdd(t, tl, first)
	before := tl.Progress()

	t.Run("identical ballot is a no-op", func(t *testing.T) {
		again := f.ballot(t, tl, 0, per(claims.True, claims.False))
		if added, err := tl.AddBallot(again); added || err != nil {
			t.Fatalf("got added=%v err=%v, want false, nil", added, err)
		}
		if tl.Len() != 1 || !reflect.DeepEqual(before, tl.Progress()) {
			t.Fatal("repeat changed the tally")
		}
	})
	t.Run("different ballot is equivocation with both ballots", func(t *testing.T) {
		second := f.ballot(t, tl, 0, per(claims.True, claims.True))
		added, err := tl.AddBallot(second)
		if added || !errors.Is(err, ErrEquivocation) {
			t.Fatalf("got added=%v err=%v, want %v", added, err, ErrEquivocation)
		}
		var eq *EquivocationError
		if !errors.As(err, &eq) {
			t.Fatalf("error %T is not *EquivocationError", err)
		}
		if !reflect.DeepEqual(eq.First, *first) || !reflect.DeepEqual(eq.Second, *second) {
			t.Fatal("evidence does not carry both signed ballots")
		}
		for _, b := range []*Ballot{&eq.First, &eq.Second} {
			if err := VerifyBallotSignature(b); err != nil {
				t.Fatalf("evidence ballot does not verify: %v", err)
			}
		}
		if tl.Len() != 1 || !reflect.DeepEqual(before, tl.Progress()) {
			t.Fatal("equivocation changed the tally")
		}
	})
	t.Run("different ballot with a bad signature is a bad signature", func(t *testing.T) {
		forged := f.ballot(t, tl, 1, per(claims.True, claims.True))
		forged.Validator = f.addr(0)
		if _, err := tl.AddBallot(forged); !errors.Is(err, ErrBadSignature) || errors.Is(err, ErrEquivocation) {
			t.Fatalf("got %v, want %v only", err, ErrBadSignature)
		}
	})
}

func TestTallyOutcomes(t *testing.T) {
	T, F, A := claims.True, claims.False, claims.Abstain
	tests := []struct {
		name   string
		stakes []uint64
		q      Quorum
		votes  []claims.Verdict // votes[i] by the validator at position i, in order
		want   []Outcome        // outcome after each vote
	}{
		{"4 equal, 2/3: decided true at the third true", equalStakes(4), DefaultQuorum,
			[]claims.Verdict{T, T, T},
			[]Outcome{OutcomePending, OutcomePending, OutcomeTrue}},
		{"4 equal, 2/3: decided false at the third false after a true", equalStakes(4), DefaultQuorum,
			[]claims.Verdict{F, T, F, F},
			[]Outcome{OutcomePending, OutcomePending, OutcomePending, OutcomeFalse}},
		{"4 equal, 2/3: 2 true 2 false is undecided", equalStakes(4), DefaultQuorum,
			[]claims.Verdict{T, F, T, F},
			[]Outcome{OutcomePending, OutcomePending, OutcomePending, OutcomeUndecided}},
		{"5 equal, 2/3: 2 true 2 false is undecided without the fifth", equalStakes(5), DefaultQuorum,
			[]claims.Verdict{T, F, T, F},
			[]Outcome{OutcomePending, OutcomePending, OutcomePending, OutcomeUndecided}},
		{"3 equal, 2/3: 1 true 1 false is undecided at once", equalStakes(3), DefaultQuorum,
			[]claims.Verdict{T, F, A},
			[]Outcome{OutcomePending, OutcomeUndecided, OutcomeUndecided}},
		{"3 equal, 2/3: 1 true 1 abstain is undecided", equalStakes(3), DefaultQuorum,
			[]claims.Verdict{T, A},
			[]Outcome{OutcomePending, OutcomeUndecided}},
		{"2 equal, 1/2: a tie is undecided", equalStakes(2), StakeQuorum(1, 2),
			[]claims.Verdict{T, F},
			[]Outcome{OutcomePending, OutcomeUndecided}},
		{"count 3of5: 3 true decide", equalStakes(5), CountQuorum(3, 5),
			[]claims.Verdict{T, F, T, T},
			[]Outcome{OutcomePending, OutcomePending, OutcomePending, OutcomeTrue}},
		{"count 3of5: 3 abstain is undecided", equalStakes(5), CountQuorum(3, 5),
			[]claims.Verdict{A, A, A},
			[]Outcome{OutcomePending, OutcomePending, OutcomeUndecided}},
		{"a decided claim stays decided", equalStakes(4), DefaultQuorum,
			[]claims.Verdict{T, T, T, F},
			[]Outcome{OutcomePending, OutcomePending, OutcomeTrue, OutcomeTrue}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 7, tt.stakes...)
			tl := f.tally(t, f.newJob([]string{"claim"}, tt.q, 0, 1))
			for i, v := range tt.votes {
				mustAdd(t, tl, f.ballot(t, tl, i, all(v)))
				if got := tl.Outcome(0); got != tt.want[i] {
					t.Fatalf("after vote %d: %s, want %s", i+1, got, tt.want[i])
				}
				if tl.Done() != tt.want[i].Final() {
					t.Fatalf("after vote %d: Done %v with outcome %s", i+1, tl.Done(), tt.want[i])
				}
			}
		})
	}
}

func TestTallyStakeWeightedDecision(t *testing.T) {
	// One validator holding 70 of 100 decides alone under 2/3 (70*3 > 200).
	f := newFixture(t, 7, 70, 10, 10, 10)
	tl := f.tally(t, f.newJob([]string{"claim"}, DefaultQuorum, 0, 1))
	heavy, _, _ := f.set.Lookup(f.genesis.Validators[0].Address)
	mustAdd(t, tl, f.ballot(t, tl, heavy, all(claims.False)))
	if tl.Outcome(0) != OutcomeFalse {
		t.Fatalf("outcome %s, want false", tl.Outcome(0))
	}
}

func TestTallyProgress(t *testing.T) {
	f := newFixture(t, 7, 10, 20, 30, 40)
	j := f.newJob(twoClaims, DefaultQuorum, 0, 1)
	tl := f.tally(t, j)
	stakeAt := func(pos int) uint64 { return f.set.At(pos).Stake }
	mustAdd(t, tl, f.ballot(t, tl, 2, per(claims.True, claims.Abstain)))
	mustAdd(t, tl, f.ballot(t, tl, 0, per(claims.False, claims.Abstain)))
	got := tl.Progress()
	want := []ClaimProgress{
		{Index: 0, Outcome: OutcomePending, StakeTrue: stakeAt(2), StakeFalse: stakeAt(0), StakeAssigned: 100, Needed: 67,
			NeededUnit: "stake", ValidatorsAssigned: 4, ValidatorsTrue: 1, ValidatorsFalse: 1, Voters: []common.Address{f.addr(0), f.addr(2)}},
		// half the stake abstained: 50 more can never exceed 2/3 of 100
		{Index: 1, Outcome: OutcomeUndecided, StakeAbstain: stakeAt(0) + stakeAt(2), StakeAssigned: 100, Needed: 67,
			NeededUnit: "stake", ValidatorsAssigned: 4, ValidatorsAbstain: 2, Voters: []common.Address{f.addr(0), f.addr(2)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("progress\n got %+v\nwant %+v", got, want)
	}
	if !tl.Has(f.addr(0)) || tl.Has(f.addr(1)) || tl.Len() != 2 {
		t.Fatal("Has or Len wrong")
	}
	bs := tl.Ballots()
	if len(bs) != 2 || bs[0].Validator != f.addr(0) || bs[1].Validator != f.addr(2) {
		t.Fatal("Ballots not sorted by address")
	}
	empty := f.tally(t, j).Progress()
	if empty[0].Voters == nil || len(empty[0].Voters) != 0 || empty[0].Outcome != OutcomePending {
		t.Fatalf("empty progress %+v", empty[0])
	}
}

func TestNewTallyRejectsBadParams(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	j := f.newJob(twoClaims, DefaultQuorum, 0, 1)
	tests := []struct {
		name   string
		mutate func(p *JobParams)
		want   error
	}{
		{"wrong network", func(p *JobParams) { p.NetworkID = 8 }, ErrWrongNetwork},
		{"zero claims", func(p *JobParams) { p.ClaimCount = 0 }, ErrBadJob},
		{"too many claims", func(p *JobParams) { p.ClaimCount = MaxClaims + 1 }, ErrBadJob},
		{"bad quorum", func(p *JobParams) { p.Quorum = StakeQuorum(1, 3) }, ErrBadQuorum},
		{"replication too large", func(p *JobParams) { p.Replication = MaxValidators + 1 }, ErrBadJob},
		{"count quorum m is not the replication", func(p *JobParams) { p.Quorum = CountQuorum(2, 3) }, ErrBadJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := j.params
			tt.mutate(&p)
			if _, err := NewTally(f.set, p); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	p := j.params
	p.Quorum, p.Replication = CountQuorum(2, 3), 3
	if _, err := NewTally(f.set, p); err != nil {
		t.Fatalf("count quorum 2of3 with replication 3: %v", err)
	}
}

func TestJobIDCommitsToEveryParameter(t *testing.T) {
	base := JobParams{NetworkID: 1, OutputHash: common.Hash{1}, ClaimsRoot: common.Hash{2}, ClaimCount: 3, Quorum: DefaultQuorum, Replication: 0, Nonce: common.Hash{3}}
	id := base.ID()
	tests := []struct {
		name   string
		mutate func(p *JobParams)
	}{
		{"network id", func(p *JobParams) { p.NetworkID = 2 }},
		{"output hash", func(p *JobParams) { p.OutputHash[31] = 1 }},
		{"claims root", func(p *JobParams) { p.ClaimsRoot[31] = 1 }},
		{"claim count", func(p *JobParams) { p.ClaimCount = 4 }},
		{"equivalent fraction", func(p *JobParams) { p.Quorum = StakeQuorum(4, 6) }},
		{"count kind with the same numbers", func(p *JobParams) { p.Quorum = Quorum{Kind: QuorumCount, N: 2, M: 3} }},
		{"replication", func(p *JobParams) { p.Replication = 1 }},
		{"nonce", func(p *JobParams) { p.Nonce[31] = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mutate(&p)
			if p.ID() == id {
				t.Fatal("job id unchanged")
			}
		})
	}
}
