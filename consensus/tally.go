package consensus

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
)

// Outcome is the state of one claim in a tally, and its verdict in a
// certificate ("true", "false" or "undecided"; never "pending").
type Outcome string

const (
	OutcomePending   Outcome = "pending"
	OutcomeTrue      Outcome = "true"
	OutcomeFalse     Outcome = "false"
	OutcomeUndecided Outcome = "undecided"
)

// Final reports whether the outcome can no longer change.
func (o Outcome) Final() bool { return o != OutcomePending }

// Tally accumulates the ballots of one job. It is not safe for concurrent
// use; the aggregator owns one per job.
type Tally struct {
	set    *ValidatorSet
	params JobParams
	id     common.Hash
	assign *Assignment

	votes      map[common.Address]*Ballot
	stake      [][3]uint64 // per claim, per verdict code
	count      [][3]uint64
	votedStake []uint64
	votedCount []uint64
	outcome    []Outcome
}

// NewTally starts the tally of the job with params.
func NewTally(set *ValidatorSet, params JobParams) (*Tally, error) {
	id := params.ID()
	a, err := params.check(set, id)
	if err != nil {
		return nil, err
	}
	return newTally(set, params, id, a), nil
}

// newTally starts the tally of a job whose params are valid, whose id is id
// and whose assignment is a.
func newTally(set *ValidatorSet, params JobParams, id common.Hash, a *Assignment) *Tally {
	n := int(params.ClaimCount)
	t := &Tally{
		set:        set,
		params:     params,
		id:         id,
		votes:      make(map[common.Address]*Ballot),
		stake:      make([][3]uint64, n),
		count:      make([][3]uint64, n),
		votedStake: make([]uint64, n),
		votedCount: make([]uint64, n),
		outcome:    make([]Outcome, n),
	}
	t.assign = a
	for i := range t.outcome {
		t.outcome[i] = OutcomePending
	}
	return t
}

// JobID is the id of the tallied job.
func (t *Tally) JobID() common.Hash { return t.id }

// Params are the job parameters.
func (t *Tally) Params() JobParams { return t.params }

// Assignment is the job's claim assignment. Callers must not modify it.
func (t *Tally) Assignment() *Assignment { return t.assign }

// CheckShape checks everything about b that needs neither crypto nor state:
// network, job, known validator, exact assignment, verdict codes, signature
// encoding.
func (t *Tally) CheckShape(b *Ballot) error {
	if b.NetworkID != t.params.NetworkID {
		return fmt.Errorf("%w: ballot for network %d, job is on %d", ErrWrongNetwork, b.NetworkID, t.params.NetworkID)
	}
	if b.JobID != t.id || b.OutputHash != t.params.OutputHash || b.ClaimsRoot != t.params.ClaimsRoot {
		return fmt.Errorf("%w: job %s", ErrWrongJob, b.JobID.Hex())
	}
	_, err := checkVoteShape(t.set, t.assign, &b.Vote)
	return err
}

// AddBallot checks b's shape, then its signature, then applies it. It returns
// false with no error for a repeat of a ballot already counted, and an
// *EquivocationError (errors.Is ErrEquivocation) carrying both signed ballots
// when the validator already signed a different ballot for this job.
func (t *Tally) AddBallot(b *Ballot) (bool, error) { return t.add(b, true) }

// AddVerifiedBallot is AddBallot for a ballot whose signature the caller has
// already checked with VerifyBallotSignature (each ballot is verified once
// per node).
func (t *Tally) AddVerifiedBallot(b *Ballot) (bool, error) { return t.add(b, false) }

// VerifyBallotSignature checks that b's signature recovers to b.Validator.
func VerifyBallotSignature(b *Ballot, opts ...VerifyOption) error {
	return verifyBallotSignature(b, applyOptions(opts).cache)
}

func (t *Tally) add(b *Ballot, checkSig bool) (bool, error) {
	if err := t.CheckShape(b); err != nil {
		return false, err
	}
	if prev, ok := t.votes[b.Validator]; ok {
		if !prev.Conflicts(b) {
			return false, nil
		}
		if checkSig {
			if err := verifyVoteSignature(b); err != nil {
				return false, err
			}
		}
		return false, &EquivocationError{First: *prev, Second: *b}
	}
	if checkSig {
		if err := verifyVoteSignature(b); err != nil {
			return false, err
		}
	}
	t.apply(b)
	return true, nil
}

func (t *Tally) apply(b *Ballot) {
	_, v, _ := t.set.Lookup(b.Validator)
	t.votes[b.Validator] = b
	for j, c := range b.ClaimIndexes {
		verdict := b.Verdicts[j]
		t.stake[c][verdict] += v.Stake
		t.count[c][verdict]++
		t.votedStake[c] += v.Stake
		t.votedCount[c]++
		if t.outcome[c] == OutcomePending {
			t.outcome[c] = t.evaluate(int(c))
		}
	}
}

// evaluate decides claim c: a verdict with quorum decides it; if neither
// verdict could reach quorum even were every missing ballot cast for it, the
// claim is undecided at once.
func (t *Tally) evaluate(c int) Outcome {
	q, assigned := t.params.Quorum, t.assign.Stake[c]
	if q.Reached(t.stake[c][claims.True], t.count[c][claims.True], assigned) {
		return OutcomeTrue
	}
	if q.Reached(t.stake[c][claims.False], t.count[c][claims.False], assigned) {
		return OutcomeFalse
	}
	missStake := assigned - t.votedStake[c]
	missCount := t.assign.Count[c] - t.votedCount[c]
	if !q.Reached(t.stake[c][claims.True]+missStake, t.count[c][claims.True]+missCount, assigned) &&
		!q.Reached(t.stake[c][claims.False]+missStake, t.count[c][claims.False]+missCount, assigned) {
		return OutcomeUndecided
	}
	return OutcomePending
}

// Outcome is the current state of claim c.
func (t *Tally) Outcome(c int) Outcome { return t.outcome[c] }

// Done reports whether every claim is decided or can no longer be.
func (t *Tally) Done() bool {
	for _, o := range t.outcome {
		if o == OutcomePending {
			return false
		}
	}
	return true
}

// Has reports whether a ballot of addr is counted.
func (t *Tally) Has(addr common.Address) bool { _, ok := t.votes[addr]; return ok }

// Len is the number of ballots counted.
func (t *Tally) Len() int { return len(t.votes) }

// ClaimProgress is the state of one claim while the proof forms.
type ClaimProgress struct {
	Index         uint32  `json:"index"`
	Outcome       Outcome `json:"outcome"`
	StakeTrue     uint64  `json:"stake_true"`
	StakeFalse    uint64  `json:"stake_false"`
	StakeAbstain  uint64  `json:"stake_abstain"`
	StakeAssigned uint64  `json:"stake_assigned"`
	Needed        uint64  `json:"needed"`
	// NeededUnit says what Needed counts: "stake" or "validators".
	NeededUnit string `json:"needed_unit"`
	// ValidatorsAssigned is the number of validators assigned to the claim.
	ValidatorsAssigned uint64 `json:"validators_assigned"`
	// ValidatorsTrue, ValidatorsFalse and ValidatorsAbstain count the
	// validators whose counted ballots gave each verdict: what a count
	// quorum ("4of4") weighs, as the stake fields are what a stake quorum
	// weighs.
	ValidatorsTrue    uint64           `json:"validators_true"`
	ValidatorsFalse   uint64           `json:"validators_false"`
	ValidatorsAbstain uint64           `json:"validators_abstain"`
	Voters            []common.Address `json:"voters"`
}

// Progress reports every claim's stake per verdict, what quorum needs, and
// which validators have attached ballots.
func (t *Tally) Progress() []ClaimProgress {
	out := make([]ClaimProgress, len(t.outcome))
	for c := range out {
		out[c] = ClaimProgress{
			Index:              uint32(c),
			Outcome:            t.outcome[c],
			StakeTrue:          t.stake[c][claims.True],
			StakeFalse:         t.stake[c][claims.False],
			StakeAbstain:       t.stake[c][claims.Abstain],
			StakeAssigned:      t.assign.Stake[c],
			Needed:             t.params.Quorum.Needed(t.assign.Stake[c]),
			NeededUnit:         neededUnit(t.params.Quorum),
			ValidatorsAssigned: t.assign.Count[c],
			ValidatorsTrue:     t.count[c][claims.True],
			ValidatorsFalse:    t.count[c][claims.False],
			ValidatorsAbstain:  t.count[c][claims.Abstain],
			Voters:             []common.Address{},
		}
	}
	for _, b := range t.sortedBallots() {
		for _, c := range b.ClaimIndexes {
			out[c].Voters = append(out[c].Voters, b.Validator)
		}
	}
	return out
}

func (t *Tally) sortedBallots() []*Ballot {
	bs := make([]*Ballot, 0, len(t.votes))
	for _, b := range t.votes {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b *Ballot) int { return bytes.Compare(a.Validator[:], b.Validator[:]) })
	return bs
}

// Ballots returns the counted ballots sorted by validator address.
func (t *Tally) Ballots() []*Ballot { return t.sortedBallots() }

func neededUnit(q Quorum) string {
	if q.Kind == QuorumCount {
		return "validators"
	}
	return "stake"
}
