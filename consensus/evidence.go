package consensus

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// Evidence proves that a validator signed two different ballots for one
// job: equivocation. Anyone holding the validator set can check it.
type Evidence struct {
	Validator common.Address `json:"validator"`
	First     Ballot         `json:"first"`
	Second    Ballot         `json:"second"`
}

// Verify checks the evidence against set: both ballots are for the set's
// network and the same job, both are signed by Validator, a member of the
// set, and they differ in content. Shape first, then signatures.
func (e *Evidence) Verify(set *ValidatorSet) error {
	if _, _, ok := set.Lookup(e.Validator); !ok {
		return fmt.Errorf("%w %s", ErrUnknownValidator, e.Validator.Hex())
	}
	for _, b := range []*Ballot{&e.First, &e.Second} {
		if b.NetworkID != set.NetworkID() {
			return fmt.Errorf("%w: evidence ballot for network %d", ErrWrongNetwork, b.NetworkID)
		}
		if b.Validator != e.Validator {
			return fmt.Errorf("%w: evidence ballot by %s, evidence names %s", ErrBallotShape, b.Validator.Hex(), e.Validator.Hex())
		}
		if err := b.ValidateBasic(); err != nil {
			return fmt.Errorf("evidence ballot: %w", err)
		}
	}
	if e.First.JobID != e.Second.JobID {
		return fmt.Errorf("%w: evidence ballots are for different jobs", ErrBallotShape)
	}
	if !e.First.Conflicts(&e.Second) {
		return fmt.Errorf("%w: evidence ballots do not differ", ErrBallotShape)
	}
	for _, b := range []*Ballot{&e.First, &e.Second} {
		if err := verifyVoteSignature(b); err != nil {
			return err
		}
	}
	return nil
}
