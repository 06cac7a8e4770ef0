package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/sigs"
)

// CertificateVersion is the format version this package writes and reads.
const CertificateVersion = 1

// MaxCertificateSize bounds the encoded size of a certificate accepted by
// ParseCertificate.
const MaxCertificateSize = 8 << 20

// Status is a job's status. A job starts provisional and ends in exactly one
// of the three final statuses; a certificate never says provisional.
type Status string

const (
	StatusProvisional Status = "provisional"
	StatusVerified    Status = "verified"
	StatusRejected    Status = "rejected"
	StatusUnresolved  Status = "unresolved"
)

// Final reports whether s is one of the final statuses.
func (s Status) Final() bool {
	return s == StatusVerified || s == StatusRejected || s == StatusUnresolved
}

// CertClaim is one claim of a certificate with its decided verdict.
type CertClaim struct {
	Index      uint32      `json:"index"`
	Text       string      `json:"text"`
	Hash       common.Hash `json:"hash"`
	Verdict    Outcome     `json:"verdict"`
	StakeFor   uint64      `json:"stake_for"`
	StakeTotal uint64      `json:"stake_total"`
}

// Certificate is the self-contained proof of a job's outcome. Anyone holding
// the validator set checks it with VerifyCertificate.
type Certificate struct {
	Version     uint32      `json:"version"`
	NetworkID   uint64      `json:"network_id"`
	GenesisHash common.Hash `json:"genesis_hash"`
	JobID       common.Hash `json:"job_id"`
	JobNonce    common.Hash `json:"job_nonce"`
	OutputHash  common.Hash `json:"output_hash"`
	ClaimsRoot  common.Hash `json:"claims_root"`
	Quorum      Quorum      `json:"quorum"`
	Replication uint32      `json:"replication"`
	// Gateway is the validator that accepted the job and issued this
	// certificate; DeadlineMS the job's deadline in unix milliseconds.
	// The job id commits to both.
	Gateway    common.Address `json:"gateway"`
	DeadlineMS uint64         `json:"deadline_ms"`
	Status     Status         `json:"status"`
	Claims     []CertClaim    `json:"claims"`
	Ballots    []Vote         `json:"ballots"`
	// IssuedAt is when the gateway issued the certificate, in whole
	// milliseconds.
	IssuedAt time.Time `json:"issued_at"`
	// GatewaySignature is the gateway's EIP-712 signature of the outcome
	// (GatewayDigest). A certificate without it is not final.
	GatewaySignature hexutil.Bytes `json:"gateway_signature,omitempty"`
	// GatewayBatch, when present, says GatewaySignature signs a batch of
	// certificates that holds this one (see BatchProof).
	GatewayBatch *BatchProof `json:"gateway_batch,omitempty"`
}

// Params are the job parameters the certificate states.
func (c *Certificate) Params() JobParams {
	return JobParams{
		NetworkID:   c.NetworkID,
		OutputHash:  c.OutputHash,
		ClaimsRoot:  c.ClaimsRoot,
		ClaimCount:  uint32(len(c.Claims)),
		Quorum:      c.Quorum,
		Replication: c.Replication,
		Gateway:     c.Gateway,
		Deadline:    c.DeadlineMS,
		Nonce:       c.JobNonce,
	}
}

// GatewayData is the EIP-712 content the gateway signs.
func (c *Certificate) GatewayData() sigs.CertificateData {
	d := sigs.CertificateData{
		JobID:       c.JobID,
		GenesisHash: c.GenesisHash,
		Status:      statusCode(c.Status),
		Verdicts:    make([]uint8, len(c.Claims)),
		Voters:      make([]common.Address, len(c.Ballots)),
		IssuedAt:    uint64(max(c.IssuedAt.UnixMilli(), 0)),
	}
	for i, cl := range c.Claims {
		d.Verdicts[i] = outcomeCode(cl.Verdict)
	}
	for i, b := range c.Ballots {
		d.Voters[i] = b.Validator
	}
	return d
}

// GatewayDigest is the EIP-712 digest the gateway signs.
func (c *Certificate) GatewayDigest() common.Hash {
	return sigs.CertificateDigest(c.NetworkID, c.GatewayData())
}

// Sign sets the gateway signature; s must be the job's gateway.
func (c *Certificate) Sign(s sigs.Signer) error {
	if s.Address() != c.Gateway {
		return fmt.Errorf("%w: %s cannot sign for gateway %s", ErrBadSignature, s.Address().Hex(), c.Gateway.Hex())
	}
	sig, err := s.SignDigest(c.GatewayDigest())
	if err != nil {
		return err
	}
	c.GatewaySignature, c.GatewayBatch = sig, nil
	return nil
}

// statusCode is a status's code in the gateway's signature.
func statusCode(s Status) uint8 {
	switch s {
	case StatusVerified:
		return 1
	case StatusRejected:
		return 2
	case StatusUnresolved:
		return 3
	}
	return 0
}

// outcomeCode is a claim verdict's code in the gateway's signature (the
// ballot verdict codes, with undecided in place of abstain).
func outcomeCode(o Outcome) uint8 {
	switch o {
	case OutcomeTrue:
		return uint8(claims.True)
	case OutcomeFalse:
		return uint8(claims.False)
	}
	return 0
}

// ParseCertificate decodes a certificate strictly (internal/strictjson):
// size-bounded, no unknown fields, no key given twice or in another letter
// case, no trailing data. It does not verify it.
func ParseCertificate(data []byte) (*Certificate, error) {
	if len(data) > MaxCertificateSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrCertificateTooLarge, len(data), MaxCertificateSize)
	}
	var c Certificate
	if ParseCertificateJSON(data, &c) {
		return &c, nil
	}
	if err := strictjson.Decode(data, &c, MaxCertificateSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertificateShape, err)
	}
	return &c, nil
}

// Certificate builds the certificate of the tally as it stands: claims still
// pending become undecided. texts are the job's claims in order.
func (t *Tally) Certificate(cs []claims.Claim, issuedAt time.Time) (*Certificate, error) {
	if len(cs) != len(t.outcome) {
		return nil, fmt.Errorf("%w: %d claim texts for %d claims", ErrBadJob, len(cs), len(t.outcome))
	}
	c := &Certificate{
		Version:     CertificateVersion,
		NetworkID:   t.params.NetworkID,
		GenesisHash: t.set.GenesisHash(),
		JobID:       t.id,
		JobNonce:    t.params.Nonce,
		OutputHash:  t.params.OutputHash,
		ClaimsRoot:  t.params.ClaimsRoot,
		Quorum:      t.params.Quorum,
		Replication: t.params.Replication,
		Gateway:     t.params.Gateway,
		DeadlineMS:  t.params.Deadline,
		Claims:      make([]CertClaim, len(cs)),
		IssuedAt:    issuedAt.UTC().Truncate(time.Millisecond),
	}
	for i, cl := range cs {
		o := t.outcome[i]
		if o == OutcomePending {
			o = OutcomeUndecided
		}
		c.Claims[i] = CertClaim{
			Index:      cl.Index,
			Text:       cl.Text,
			Hash:       cl.Hash,
			Verdict:    o,
			StakeFor:   stakeFor(t.stake[i], o),
			StakeTotal: t.assign.Stake[i],
		}
	}
	c.Status = statusOf(c.Claims)
	for _, b := range t.sortedBallots() {
		c.Ballots = append(c.Ballots, b.Vote)
	}
	if c.Ballots == nil {
		c.Ballots = []Vote{}
	}
	return c, nil
}

// stakeFor is the stake behind the stated verdict; for an undecided claim,
// the stake behind the larger of true and false.
func stakeFor(s [3]uint64, o Outcome) uint64 {
	switch o {
	case OutcomeTrue:
		return s[claims.True]
	case OutcomeFalse:
		return s[claims.False]
	default:
		return max(s[claims.True], s[claims.False])
	}
}

// statusOf: rejected if any claim is false, verified if all are true,
// unresolved otherwise.
func statusOf(cs []CertClaim) Status {
	allTrue := true
	for _, c := range cs {
		if c.Verdict == OutcomeFalse {
			return StatusRejected
		}
		if c.Verdict != OutcomeTrue {
			allTrue = false
		}
	}
	if allTrue {
		return StatusVerified
	}
	return StatusUnresolved
}

// VerifyCertificate recomputes cert from its ballots against set and returns
// nil only if it is valid and final. When output is not nil, its keccak256
// must be the certificate's output hash. The checks, in order:
//
//  1. shape: version, network id, genesis hash, quorum rule, gateway from
//     the set, deadline, job id (it commits to the quorum rule,
//     replication, gateway and deadline), the network's security floor on
//     every claim (ErrBelowFloor), claims numbered in order with hashes of
//     their texts, the claims root, the output hash, issue time in whole
//     milliseconds; ballots sorted by address with no duplicates, each from
//     a validator of the set covering exactly its assigned claims with
//     valid verdict codes and a well-formed signature;
//  2. signatures: each ballot's EIP-712 digest recovers to its validator,
//     and the gateway signature, when present, to the gateway;
//  3. state: each claim's verdict, stake_for and stake_total follow from the
//     ballots under the quorum rule, and the status from the verdicts;
//  4. finality: the gateway signed it, and either every claim is settled on
//     the ballots alone (decided, or undecidable whatever the missing
//     ballots say) or it was issued at or after the job's deadline.
//
// A certificate that passes 1 to 3 but not 4 is valid but not final: the
// error wraps ErrNotFinal and no other sentinel of this package. Any other
// error names the first thing that is wrong and wraps one of the Err*
// values of this package.
func VerifyCertificate(cert *Certificate, set *ValidatorSet, output []byte, opts ...VerifyOption) error {
	o := applyOptions(opts)
	if cert == nil {
		return fmt.Errorf("%w: nil certificate", ErrCertificateShape)
	}
	if cert.Version != CertificateVersion {
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, cert.Version)
	}
	if cert.NetworkID != set.NetworkID() {
		return fmt.Errorf("%w: certificate is for network %d, validator set is for %d", ErrWrongNetwork, cert.NetworkID, set.NetworkID())
	}
	if cert.GenesisHash != set.GenesisHash() {
		return fmt.Errorf("%w: certificate has %s, genesis is %s", ErrGenesisMismatch, cert.GenesisHash.Hex(), set.GenesisHash().Hex())
	}
	if !cert.Status.Final() {
		return fmt.Errorf("%w: status %q is not final", ErrCertificateShape, cert.Status)
	}
	params := cert.Params()
	if err := checkJobID(params, cert.JobID); err != nil {
		return err
	}
	assign, err := params.check(set, cert.JobID)
	if err != nil {
		if errors.Is(err, ErrBelowFloor) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrCertificateShape, err)
	}
	if ms := cert.IssuedAt.UnixMilli(); ms < 0 || !cert.IssuedAt.Equal(time.UnixMilli(ms)) {
		return fmt.Errorf("%w: issued_at %s is not a time in whole milliseconds", ErrCertificateShape, cert.IssuedAt.Format(time.RFC3339Nano))
	}
	if n := len(cert.GatewaySignature); n != 0 && n != sigs.SignatureLength {
		return fmt.Errorf("%w: gateway signature of %d bytes", ErrCertificateShape, n)
	}
	if err := checkBatchShape(cert.GatewayBatch); err != nil {
		return fmt.Errorf("%w: gateway batch: %w", ErrCertificateShape, err)
	}
	if cert.GatewayBatch != nil && len(cert.GatewaySignature) == 0 {
		return fmt.Errorf("%w: a gateway batch proof without a gateway signature", ErrCertificateShape)
	}
	hashes := make([]common.Hash, len(cert.Claims))
	for i, c := range cert.Claims {
		if c.Index != uint32(i) {
			return fmt.Errorf("%w: claim at position %d has index %d", ErrClaimIndex, i, c.Index)
		}
		if h := claims.HashText(c.Text); h != c.Hash {
			return fmt.Errorf("%w: claim %d", ErrClaimHash, i)
		}
		switch c.Verdict {
		case OutcomeTrue, OutcomeFalse, OutcomeUndecided:
		default:
			return fmt.Errorf("%w: claim %d has verdict %q", ErrCertificateShape, i, c.Verdict)
		}
		hashes[i] = c.Hash
	}
	if err := checkClaimsRoot(hashes, cert.ClaimsRoot); err != nil {
		return err
	}
	if output != nil {
		if h := claims.OutputHash(output); h != cert.OutputHash {
			return fmt.Errorf("%w: stated %s, output gives %s", ErrOutputHash, cert.OutputHash.Hex(), h.Hex())
		}
	}
	if len(cert.Ballots) > set.Len() {
		return fmt.Errorf("%w: %d ballots for %d validators", ErrCertificateShape, len(cert.Ballots), set.Len())
	}
	// params are validated and cert.JobID is their id.
	t := newTally(set, params, cert.JobID, assign)
	ballots := make([]Ballot, len(cert.Ballots))
	for i := range cert.Ballots {
		v := &cert.Ballots[i]
		if i > 0 {
			switch cmp := bytes.Compare(cert.Ballots[i-1].Validator[:], v.Validator[:]); {
			case cmp == 0:
				return fmt.Errorf("%w: %s has two ballots", ErrDuplicateValidator, v.Validator.Hex())
			case cmp > 0:
				return fmt.Errorf("%w: %s after %s", ErrUnsortedBallots, v.Validator.Hex(), cert.Ballots[i-1].Validator.Hex())
			}
		}
		if _, err := checkVoteShape(set, t.assign, v); err != nil {
			return err
		}
		ballots[i] = Ballot{NetworkID: cert.NetworkID, JobID: cert.JobID, OutputHash: cert.OutputHash, ClaimsRoot: cert.ClaimsRoot, Vote: *v}
	}
	// Every ballot shares the network's EIP-712 domain: hash it once.
	domain := sigs.DomainSeparator(cert.NetworkID)
	for i := range ballots {
		if ballots[i].Batch != nil {
			if err := verifyBallotSignature(&ballots[i], o.cache); err != nil {
				return err
			}
			continue
		}
		digest := sigs.TypedDataDigest(domain, sigs.BallotStructHash(ballots[i].Data()))
		if err := verifyDigestSignature(&ballots[i], digest, o.cache); err != nil {
			return err
		}
	}
	if len(cert.GatewaySignature) != 0 {
		if err := verifyGatewaySignature(cert, o.cache); err != nil {
			return err
		}
	}
	for i := range ballots {
		t.apply(&ballots[i])
	}
	for i, c := range cert.Claims {
		o := t.outcome[i]
		if o == OutcomePending {
			o = OutcomeUndecided
		}
		if c.Verdict != o {
			if c.Verdict == OutcomeUndecided {
				return fmt.Errorf("%w: claim %d stated undecided, ballots decide %s", ErrVerdictMismatch, i, o)
			}
			return fmt.Errorf("%w: claim %d stated %s with %d of %d stake (quorum %s), ballots give %s",
				ErrNoQuorum, i, c.Verdict, stakeFor(t.stake[i], c.Verdict), t.assign.Stake[i], cert.Quorum, o)
		}
		if want := stakeFor(t.stake[i], o); c.StakeFor != want {
			return fmt.Errorf("%w: claim %d stake_for %d, ballots give %d", ErrStakeMismatch, i, c.StakeFor, want)
		}
		if c.StakeTotal != t.assign.Stake[i] {
			return fmt.Errorf("%w: claim %d stake_total %d, assignment gives %d", ErrStakeMismatch, i, c.StakeTotal, t.assign.Stake[i])
		}
	}
	if want := statusOf(cert.Claims); cert.Status != want {
		return fmt.Errorf("%w: stated %s, verdicts give %s", ErrStatusMismatch, cert.Status, want)
	}
	if len(cert.GatewaySignature) == 0 {
		return fmt.Errorf("%w: not signed by the job's gateway %s", ErrNotFinal, cert.Gateway.Hex())
	}
	if !t.Done() && cert.IssuedAt.UnixMilli() < int64(cert.DeadlineMS) {
		var open []int
		for i, o := range t.outcome {
			if o == OutcomePending {
				open = append(open, i)
			}
		}
		return fmt.Errorf("%w: claims %v still open, issued %s before the deadline",
			ErrNotFinal, open, time.UnixMilli(int64(cert.DeadlineMS)).Sub(cert.IssuedAt))
	}
	if o.settled != nil {
		*o.settled = t.Done()
	}
	return nil
}

// verifyGatewaySignature checks that the gateway signature recovers to the
// certificate's gateway, over its own digest or its batch's.
func verifyGatewaySignature(cert *Certificate, cache *SignatureCache) error {
	digest, ok := cert.gatewaySignedDigest(cache.merkle())
	if !ok {
		return fmt.Errorf("%w: gateway signature: %w: the proof does not fit its count", ErrBadSignature, ErrBatchProof)
	}
	if cache != nil && cache.verified(digest, cert.GatewaySignature, cert.Gateway) {
		return nil
	}
	signer, err := sigs.Recover(digest, cert.GatewaySignature)
	if err != nil {
		return fmt.Errorf("%w: gateway signature: %w", ErrBadSignature, err)
	}
	if signer != cert.Gateway {
		return fmt.Errorf("%w: gateway signature recovers to %s, gateway is %s", ErrBadSignature, signer.Hex(), cert.Gateway.Hex())
	}
	if cache != nil {
		cache.Add(digest, cert.GatewaySignature, signer)
	}
	return nil
}

// IsVerificationError reports whether err came from a failed check (as
// opposed to, say, a read error).
func IsVerificationError(err error) bool {
	for _, e := range []error{ErrWrongNetwork, ErrUnknownValidator, ErrNotAssigned, ErrBallotShape, ErrBadSignature,
		ErrDuplicateValidator, ErrUnsortedBallots, ErrGenesisMismatch, ErrJobID, ErrClaimHash, ErrClaimIndex,
		ErrClaimsRoot, ErrOutputHash, ErrNoQuorum, ErrVerdictMismatch, ErrStakeMismatch, ErrStatusMismatch,
		ErrCertificateShape, ErrUnsupportedVersion, ErrCertificateTooLarge, ErrBelowFloor} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Settled reports whether every claim of a verified certificate is final on
// its ballots alone: decided, or undecidable even had every validator that
// cast no ballot voted one way. A certificate that is not settled was
// issued at its job's deadline with ballots missing; one that claims to be
// final earlier is premature. The certificate must have passed
// VerifyCertificate.
func Settled(cert *Certificate, set *ValidatorSet) bool {
	t, err := NewTally(set, cert.Params())
	if err != nil {
		return false
	}
	for i := range cert.Ballots {
		b := Ballot{NetworkID: cert.NetworkID, JobID: cert.JobID, OutputHash: cert.OutputHash, ClaimsRoot: cert.ClaimsRoot, Vote: cert.Ballots[i]}
		if _, err := t.AddVerifiedBallot(&b); err != nil {
			return false
		}
	}
	return t.Done()
}
