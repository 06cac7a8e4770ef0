package consensus

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

// Vote is a validator's signed verdicts on the claims assigned to it, as it
// appears in a certificate (the job fields are the certificate's own).
type Vote struct {
	Validator    common.Address   `json:"validator"`
	ClaimIndexes []uint32         `json:"claim_indexes"`
	Verdicts     []claims.Verdict `json:"verdicts"`
	Signature    hexutil.Bytes    `json:"signature"`
	// Batch, when present, says Signature signs a batch of ballots that
	// holds this one (see BatchProof); absent, it signs this ballot alone.
	Batch *BatchProof `json:"batch,omitempty"`
}

// Ballot is a Vote together with the job it is for, as gossiped.
type Ballot struct {
	NetworkID  uint64      `json:"network_id"`
	JobID      common.Hash `json:"job_id"`
	OutputHash common.Hash `json:"output_hash"`
	ClaimsRoot common.Hash `json:"claims_root"`
	Vote
}

// Data is the EIP-712 content of the ballot.
func (b *Ballot) Data() sigs.BallotData {
	v := make([]uint8, len(b.Verdicts))
	for i, x := range b.Verdicts {
		v[i] = uint8(x)
	}
	return sigs.BallotData{
		JobID:        b.JobID,
		OutputHash:   b.OutputHash,
		ClaimsRoot:   b.ClaimsRoot,
		ClaimIndexes: b.ClaimIndexes,
		Verdicts:     v,
	}
}

// Digest is the EIP-712 digest the validator signed.
func (b *Ballot) Digest() common.Hash { return sigs.BallotDigest(b.NetworkID, b.Data()) }

// ValidateBasic checks the ballot's shape without crypto or state: the
// vote's (Vote.ValidateBasic). Which claims the validator must cover is the
// job's assignment, checked by the tally.
func (b *Ballot) ValidateBasic() error { return b.Vote.ValidateBasic() }

// Validate checks the ballot against set: its network, a validator of the
// set, then ValidateBasic. No signature.
func (b *Ballot) Validate(set *ValidatorSet) error {
	if b.NetworkID != set.NetworkID() {
		return fmt.Errorf("%w: ballot for network %d", ErrWrongNetwork, b.NetworkID)
	}
	if _, _, ok := set.Lookup(b.Validator); !ok {
		return fmt.Errorf("%w %s", ErrUnknownValidator, b.Validator.Hex())
	}
	return b.ValidateBasic()
}

// ValidateBasic checks the vote's shape without crypto or state: one verdict
// per claim index, at most MaxClaims of them, each a known verdict code, and
// a batch proof, if any, of a possible shape. Errors wrap ErrBallotShape.
func (v *Vote) ValidateBasic() error {
	if len(v.Verdicts) != len(v.ClaimIndexes) || len(v.ClaimIndexes) > MaxClaims {
		return fmt.Errorf("%w: %s has %d claim indexes and %d verdicts", ErrBallotShape, v.Validator.Hex(), len(v.ClaimIndexes), len(v.Verdicts))
	}
	for i, x := range v.Verdicts {
		if !x.Valid() {
			return fmt.Errorf("%w: %s verdict %d has unknown code %d", ErrBallotShape, v.Validator.Hex(), i, uint8(x))
		}
	}
	if err := checkBatchShape(v.Batch); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBallotShape, v.Validator.Hex(), err)
	}
	return nil
}

// Conflicts reports whether o is a different ballot of the same validator
// for the same job: equivocation. A ballot that only repeats b (whatever
// its signature bytes) does not conflict with it.
func (b *Ballot) Conflicts(o *Ballot) bool {
	return b.Validator == o.Validator && b.JobID == o.JobID && !b.sameBallot(o)
}

// sameBallot reports whether b and o state the same verdicts on the same
// claims of the same output (signatures aside).
func (b *Ballot) sameBallot(o *Ballot) bool {
	return b.SameContent(&o.Vote) && b.OutputHash == o.OutputHash && b.ClaimsRoot == o.ClaimsRoot
}

// SameContent reports whether two votes state the same verdicts on the same
// claims (signatures aside).
func (v *Vote) SameContent(o *Vote) bool {
	return v.Validator == o.Validator &&
		slices.Equal(v.ClaimIndexes, o.ClaimIndexes) &&
		slices.Equal(v.Verdicts, o.Verdicts)
}

// SignBallot builds and signs a ballot.
func SignBallot(s sigs.Signer, networkID uint64, jobID, outputHash, claimsRoot common.Hash, indexes []uint32, verdicts []claims.Verdict) (*Ballot, error) {
	b := &Ballot{
		NetworkID:  networkID,
		JobID:      jobID,
		OutputHash: outputHash,
		ClaimsRoot: claimsRoot,
		Vote: Vote{
			Validator:    s.Address(),
			ClaimIndexes: slices.Clone(indexes),
			Verdicts:     slices.Clone(verdicts),
		},
	}
	sig, err := s.SignDigest(b.Digest())
	if err != nil {
		return nil, err
	}
	b.Signature = sig
	return b, nil
}

// Errors of ballot and certificate checks. Returned errors wrap these with
// detail; test with errors.Is.
var (
	ErrWrongNetwork        = errors.New("wrong network id")
	ErrWrongJob            = errors.New("ballot is for another job")
	ErrUnknownValidator    = errors.New("unknown validator")
	ErrNotAssigned         = errors.New("claim indexes are not the validator's assignment")
	ErrBallotShape         = errors.New("malformed ballot")
	ErrBadSignature        = errors.New("signature does not match the validator")
	ErrEquivocation        = errors.New("equivocation")
	ErrDuplicateValidator  = errors.New("duplicate validator")
	ErrUnsortedBallots     = errors.New("ballots are not sorted by validator address")
	ErrGenesisMismatch     = errors.New("genesis hash does not match the validator set")
	ErrJobID               = errors.New("job id does not match the job parameters")
	ErrClaimHash           = errors.New("claim hash does not match its text")
	ErrClaimIndex          = errors.New("claims are not numbered 0..n-1 in order")
	ErrClaimsRoot          = errors.New("claims root does not match the claims")
	ErrOutputHash          = errors.New("output hash does not match the output")
	ErrNoQuorum            = errors.New("stated verdict lacks quorum")
	ErrVerdictMismatch     = errors.New("stated verdict does not follow from the ballots")
	ErrStakeMismatch       = errors.New("stated stake does not match the ballots")
	ErrStatusMismatch      = errors.New("status does not follow from the verdicts")
	ErrCertificateShape    = errors.New("malformed certificate")
	ErrUnsupportedVersion  = errors.New("unsupported certificate version")
	ErrCertificateTooLarge = errors.New("certificate too large")
	// ErrNotFinal: the certificate is valid (every signature and count
	// holds) but does not prove the job's final outcome: the gateway did
	// not sign it, or it leaves claims open before the job's deadline.
	ErrNotFinal = errors.New("certificate is not final")
)

// EquivocationError is returned when a validator signs two different ballots
// for one job. Both signed ballots are the evidence.
type EquivocationError struct {
	First, Second Ballot
}

func (e *EquivocationError) Error() string {
	return fmt.Sprintf("equivocation by %s on job %s: two different signed ballots", e.First.Validator.Hex(), e.First.JobID.Hex())
}

// Is makes errors.Is(err, ErrEquivocation) true.
func (e *EquivocationError) Is(target error) bool { return target == ErrEquivocation }

// checkVoteShape checks one vote against the assignment: known validator,
// Vote.ValidateBasic, assigned at least one claim, claim indexes exactly the
// assigned ones, a well-formed signature. No crypto, no state.
func checkVoteShape(set *ValidatorSet, a *Assignment, v *Vote) (int, error) {
	pos, _, ok := set.Lookup(v.Validator)
	if !ok {
		return -1, fmt.Errorf("%w %s", ErrUnknownValidator, v.Validator.Hex())
	}
	if err := v.ValidateBasic(); err != nil {
		return pos, err
	}
	if len(a.ByValidator[pos]) == 0 {
		return pos, fmt.Errorf("%w: %s judges no claim of this job", ErrNotAssigned, v.Validator.Hex())
	}
	if !slices.Equal(v.ClaimIndexes, a.ByValidator[pos]) {
		return pos, fmt.Errorf("%w: %s covers %v, assigned %v", ErrNotAssigned, v.Validator.Hex(), v.ClaimIndexes, a.ByValidator[pos])
	}
	if err := sigs.CheckSignature(v.Signature); err != nil {
		return pos, fmt.Errorf("%w: %s: %w", ErrBadSignature, v.Validator.Hex(), err)
	}
	return pos, nil
}

// verifyVoteSignature recovers the signer of b and checks it is b.Validator.
func verifyVoteSignature(b *Ballot) error { return verifyBallotSignature(b, nil) }

// verifyBallotSignature checks b's signature, alone or over its batch.
func verifyBallotSignature(b *Ballot, cache *SignatureCache) error {
	digest, ok := b.signedDigest(cache.merkle())
	if !ok {
		return fmt.Errorf("%w: %s: %w: the proof does not fit its count", ErrBadSignature, b.Validator.Hex(), ErrBatchProof)
	}
	return verifyDigestSignature(b, digest, cache)
}

// verifyDigestSignature checks that b's signature over digest, which must be
// b's EIP-712 digest, recovers to b.Validator. A cache, when given, saves
// recovering a signature it already holds.
func verifyDigestSignature(b *Ballot, digest common.Hash, cache *SignatureCache) error {
	if cache != nil && cache.verified(digest, b.Signature, b.Validator) {
		return nil
	}
	signer, err := sigs.Recover(digest, b.Signature)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadSignature, b.Validator.Hex(), err)
	}
	if signer != b.Validator {
		return fmt.Errorf("%w: ballot of %s recovers to %s", ErrBadSignature, b.Validator.Hex(), signer.Hex())
	}
	if cache != nil {
		cache.Add(digest, b.Signature, signer)
	}
	return nil
}
