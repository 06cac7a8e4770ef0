package node

import (
	"context"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// BallotPolicy decides what this validator's ballots for a job say. The
// default, Honest, judges each assigned claim with the node's verifier and
// signs one ballot. Policies that misbehave, for fault tests, live in the
// testnet package.
type BallotPolicy interface {
	// Ballots returns the verdict lists this validator signs for the
	// claims j.Mine, in the order they are sent: none casts no ballot; the
	// first is stored as this validator's ballot for the job; any further
	// one is signed and sent as well, once (a validator that does that
	// equivocates). Each list has one verdict per claim of j.Mine.
	Ballots(ctx context.Context, j *Judgement) [][]claims.Verdict
}

// Judgement is what a BallotPolicy knows of a job it casts ballots on.
type Judgement struct {
	Job *JobMessage
	// Mine are the claims assigned to this validator, in order: the
	// policy's own copy (the assignment it comes from is shared).
	Mine      []uint32
	Validator common.Address
	Set       *consensus.ValidatorSet
	// Verifier is the node's verifier.
	Verifier Verifier
	// Observed returns the ballots this node has seen for the job so far
	// (gossiped ones only) and a channel closed when the next arrives.
	Observed func() ([]*consensus.Ballot, <-chan struct{})
}

// Judge returns the node verifier's verdicts on the claims j.Mine.
func (j *Judgement) Judge(ctx context.Context) []claims.Verdict {
	cs := j.Job.ClaimList()
	verdicts := make([]claims.Verdict, len(j.Mine))
	for i, c := range j.Mine {
		verdicts[i] = j.Verifier.Verify(ctx, cs[c])
	}
	return verdicts
}

// Honest is the default ballot policy: one ballot with the verifier's
// verdicts.
type Honest struct{}

var _ BallotPolicy = Honest{}

// Ballots returns one ballot: j.Judge.
func (Honest) Ballots(ctx context.Context, j *Judgement) [][]claims.Verdict {
	return [][]claims.Verdict{j.Judge(ctx)}
}
