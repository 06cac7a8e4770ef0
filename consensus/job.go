package consensus

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/keccak"
	"github.com/verity-network/verity/sigs"
)

// MaxClaims bounds the number of claims in one job.
const MaxClaims = 256

// ErrBadJob is returned for job parameters that cannot be tallied.
var ErrBadJob = errors.New("invalid job")

// JobParams are the parameters a job id commits to. Because every ballot
// signs the job id, validators sign the quorum rule, the replication, the
// job's gateway and its deadline too: a certificate cannot claim a weaker
// rule than the one its ballots were cast under, nor another gateway or
// deadline.
type JobParams struct {
	NetworkID   uint64
	OutputHash  common.Hash
	ClaimsRoot  common.Hash
	ClaimCount  uint32
	Quorum      Quorum
	Replication uint32 // validators per claim; 0 means every validator
	Gateway     common.Address
	Deadline    uint64 // unix milliseconds
	Nonce       common.Hash
}

// ID is the job id:
//
//	keccak256("verity.job.v2" || u64 network_id || output_hash || claims_root ||
//	          u32 claim_count || u8 kind || u64 a || u64 b || u32 replication ||
//	          gateway (20 bytes) || u64 deadline_ms || nonce)
//
// where kind is 1 with (a, b) = (num, den) for a stake quorum and 2 with
// (a, b) = (n, m) for a count quorum. Integers are big-endian.
func (p JobParams) ID() common.Hash {
	buf := make([]byte, 0, 13+8+32+32+4+1+8+8+4+20+8+32)
	buf = append(buf, "verity.job.v2"...)
	buf = binary.BigEndian.AppendUint64(buf, p.NetworkID)
	buf = append(buf, p.OutputHash[:]...)
	buf = append(buf, p.ClaimsRoot[:]...)
	buf = binary.BigEndian.AppendUint32(buf, p.ClaimCount)
	switch p.Quorum.Kind {
	case QuorumStake:
		buf = append(buf, 1)
		buf = binary.BigEndian.AppendUint64(buf, p.Quorum.Num)
		buf = binary.BigEndian.AppendUint64(buf, p.Quorum.Den)
	case QuorumCount:
		buf = append(buf, 2)
		buf = binary.BigEndian.AppendUint64(buf, p.Quorum.N)
		buf = binary.BigEndian.AppendUint64(buf, p.Quorum.M)
	default:
		buf = append(buf, 0)
		buf = binary.BigEndian.AppendUint64(buf, 0)
		buf = binary.BigEndian.AppendUint64(buf, 0)
	}
	buf = binary.BigEndian.AppendUint32(buf, p.Replication)
	buf = append(buf, p.Gateway[:]...)
	buf = binary.BigEndian.AppendUint64(buf, p.Deadline)
	buf = append(buf, p.Nonce[:]...)
	return keccak.Sum(buf)
}

// EffectiveReplication is the number of validators assigned to each claim.
func EffectiveReplication(set *ValidatorSet, replication uint32) int {
	if replication == 0 || int(replication) >= set.Len() {
		return set.Len()
	}
	return int(replication)
}

// Validate checks the parameters against the validator set: network id,
// claim count, quorum rule, for a count quorum that M is the number of
// validators assigned to each claim, a gateway from the set, and the
// network's security floor (ErrBelowFloor) on every claim.
func (p JobParams) Validate(set *ValidatorSet) error {
	_, err := p.check(set, p.ID())
	return err
}

// check is Validate for a job whose id is id; it returns the assignment.
func (p JobParams) check(set *ValidatorSet, id common.Hash) (*Assignment, error) {
	if p.NetworkID != set.NetworkID() {
		return nil, fmt.Errorf("%w: network id %d, this network is %d", ErrWrongNetwork, p.NetworkID, set.NetworkID())
	}
	if p.ClaimCount == 0 || p.ClaimCount > MaxClaims {
		return nil, fmt.Errorf("%w: claim count %d not in 1..%d", ErrBadJob, p.ClaimCount, MaxClaims)
	}
	if err := p.Quorum.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	if p.Replication > MaxValidators {
		return nil, fmt.Errorf("%w: replication %d too large", ErrBadJob, p.Replication)
	}
	if p.Quorum.Kind == QuorumCount {
		if r := EffectiveReplication(set, p.Replication); p.Quorum.M != uint64(r) {
			return nil, fmt.Errorf("%w: count quorum %s but %d validators are assigned per claim", ErrBadJob, p.Quorum, r)
		}
	}
	if _, _, ok := set.Lookup(p.Gateway); !ok {
		return nil, fmt.Errorf("%w: gateway %s", ErrUnknownValidator, p.Gateway.Hex())
	}
	if p.Deadline == 0 || p.Deadline > maxDeadlineMS {
		return nil, fmt.Errorf("%w: deadline %d is not a time in unix milliseconds", ErrBadJob, p.Deadline)
	}
	a := Assign(set, id, int(p.ClaimCount), p.Replication)
	if err := set.checkFloor(p.Quorum, a); err != nil {
		return nil, err
	}
	return a, nil
}

// maxDeadlineMS bounds a deadline so that it converts to a time.Time
// without overflow (year 9999).
const maxDeadlineMS = 253402300799999

// MaxClaimTextBytes bounds the text of one claim of a job.
const MaxClaimTextBytes = 4 << 10

// Job is a job as its gateway announces it: the parameters its id commits
// to, the claim texts, and the gateway's EIP-712 signature (sigs.JobDigest)
// of the job and its resend number. Gossip, direct streams and the store
// carry it in the same encoding; the checks are the same wherever it comes
// from: ValidateBasic (no crypto, no validator set), Validate (against the
// validator set), VerifySignature.
type Job struct {
	NetworkID   uint64         `json:"network_id"`
	JobID       common.Hash    `json:"job_id"`
	Nonce       common.Hash    `json:"nonce"`
	OutputHash  common.Hash    `json:"output_hash"`
	ClaimsRoot  common.Hash    `json:"claims_root"`
	Claims      []string       `json:"claims"`
	Quorum      Quorum         `json:"quorum"`
	Replication uint32         `json:"replication"`
	Deadline    uint64         `json:"deadline"` // unix milliseconds
	Gateway     common.Address `json:"gateway"`
	Signature   hexutil.Bytes  `json:"signature"`

	// Batch, when set, says the gateway signed this announcement in a
	// batch (SignJobBatch): Signature is then its one EIP-712
	// Batch{root, count} signature over the Job struct hashes of several
	// announcements, and Batch the proof that this one's is leaf Index.
	// The job id does not cover it. A batched announcement is worth what
	// the same one signed alone is worth.
	Batch *BatchProof `json:"batch,omitempty"`

	// Resend numbers a re-announcement of the job by its gateway: 0 for
	// the first announcement, then increasing (the gateway's clock in unix
	// milliseconds, or more). The gateway signs it with the job; it is not
	// part of the job id. A new resend makes the message new to gossip, so
	// that validators that missed the job, or whose ballot the gateway
	// missed, answer again; only the gateway can make one.
	Resend uint64 `json:"resend,omitempty"`

	// GatewayRecord is the gateway's signed peer record (libp2p's: its
	// listen addresses, signed with its key), so that validators that
	// have never met the gateway can still send their ballots straight
	// to it rather than gossip them to every node. Neither the job id
	// nor the gateway's job signature covers it: the record carries its
	// own signature, and a node takes its addresses only if that
	// signature is the gateway's (node/p2p). Optional; at most
	// MaxGatewayRecordSize bytes. Protocol rules do not depend on it.
	GatewayRecord hexutil.Bytes `json:"gateway_record,omitempty"`
}

// MaxGatewayRecordSize bounds a job's GatewayRecord: a record of a few
// addresses takes a few hundred bytes.
const MaxGatewayRecordSize = 2 << 10

// Params are the consensus parameters of the job.
func (j *Job) Params() JobParams {
	return JobParams{
		NetworkID:   j.NetworkID,
		OutputHash:  j.OutputHash,
		ClaimsRoot:  j.ClaimsRoot,
		ClaimCount:  uint32(len(j.Claims)),
		Quorum:      j.Quorum,
		Replication: j.Replication,
		Gateway:     j.Gateway,
		Deadline:    j.Deadline,
		Nonce:       j.Nonce,
	}
}

// ClaimList returns the claims with indexes and hashes.
func (j *Job) ClaimList() []claims.Claim { return claims.FromTexts(j.Claims) }

// Data is the signed content of the job: the job and the resend number.
func (j *Job) Data() sigs.JobData {
	return sigs.JobData{
		JobID:      j.JobID,
		OutputHash: j.OutputHash,
		ClaimsRoot: j.ClaimsRoot,
		ClaimCount: uint32(len(j.Claims)),
		Deadline:   j.Deadline,
		Resend:     j.Resend,
	}
}

// Digest is what the gateway signs for the job alone: the job and the
// resend number.
func (j *Job) Digest() common.Hash { return sigs.JobDigest(j.NetworkID, j.Data()) }

// SignedDigest is the digest the job's signature must recover over: its
// own Digest, or for a batched job the digest of the Batch its proof
// leads to. ok is false when the proof does not fit its count.
func (j *Job) SignedDigest() (common.Hash, bool) { return j.signedDigest(nil) }

// signedDigest is SignedDigest taking inner nodes of the proof from nodes.
func (j *Job) signedDigest(nodes *claims.Nodes) (common.Hash, bool) {
	if j.Batch == nil {
		return j.Digest(), true
	}
	return batchDigest(j.NetworkID, sigs.JobStructHash(j.Data()), j.Batch, nodes)
}

// Sign sets the signature of the job with its resend number, alone; s must
// be the job's gateway.
func (j *Job) Sign(s sigs.Signer) error {
	if s.Address() != j.Gateway {
		return fmt.Errorf("%w: %s cannot sign for gateway %s", ErrBadSignature, s.Address().Hex(), j.Gateway.Hex())
	}
	sig, err := s.SignDigest(j.Digest())
	if err != nil {
		return err
	}
	j.Signature, j.Batch = sig, nil
	return nil
}

// ValidateBasic checks what needs neither crypto nor the validator set: the
// claim count, each claim text (not empty, at most MaxClaimTextBytes,
// UTF-8), the gateway record's size, the claims root against the texts
// and the job id against the parameters. Errors wrap ErrBadJob and, for
// the root and the id, ErrClaimsRoot or ErrJobID.
func (j *Job) ValidateBasic() error {
	if len(j.Claims) == 0 || len(j.Claims) > MaxClaims {
		return fmt.Errorf("%w: claim count %d not in 1..%d", ErrBadJob, len(j.Claims), MaxClaims)
	}
	if len(j.GatewayRecord) > MaxGatewayRecordSize {
		return fmt.Errorf("%w: gateway record of %d bytes, at most %d", ErrBadJob, len(j.GatewayRecord), MaxGatewayRecordSize)
	}
	if err := checkBatchShape(j.Batch); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	hashes := make([]common.Hash, len(j.Claims))
	for i, t := range j.Claims {
		if t == "" || len(t) > MaxClaimTextBytes || !utf8.ValidString(t) {
			return fmt.Errorf("%w: claim %d is empty, too long or not UTF-8", ErrBadJob, i)
		}
		hashes[i] = claims.HashText(t)
	}
	if err := checkClaimsRoot(hashes, j.ClaimsRoot); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	if err := checkJobID(j.Params(), j.JobID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	return nil
}

// Validate checks the job against set: its network, a gateway from the set,
// ValidateBasic, then the parameters (JobParams.Validate: quorum rule,
// replication, deadline, the network's security floor). No signature.
func (j *Job) Validate(set *ValidatorSet) error {
	if j.NetworkID != set.NetworkID() {
		return fmt.Errorf("%w: job for network %d", ErrWrongNetwork, j.NetworkID)
	}
	if _, _, ok := set.Lookup(j.Gateway); !ok {
		return fmt.Errorf("%w: gateway %s", ErrUnknownValidator, j.Gateway.Hex())
	}
	if err := j.ValidateBasic(); err != nil {
		return err
	}
	if _, err := j.Params().check(set, j.JobID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	return nil
}

// VerifySignature checks that the job's gateway signed the job with its
// resend number, alone or in a batch, and returns the gateway's public
// key. A cache (WithSignatureCache) saves recovering a batch signature
// already recovered for another job of the batch.
func (j *Job) VerifySignature(opts ...VerifyOption) (*ecdsa.PublicKey, error) {
	cache := applyOptions(opts).cache
	digest, ok := j.signedDigest(cache.merkle())
	if !ok {
		return nil, fmt.Errorf("%w: job: %w: the proof does not fit its count", ErrBadSignature, ErrBatchProof)
	}
	if pub := cache.publicKey(digest, j.Signature, j.Gateway); pub != nil {
		return pub, nil
	}
	pub, err := sigs.RecoverPublicKey(digest, j.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: job: %w", ErrBadSignature, err)
	}
	signer := crypto.PubkeyToAddress(*pub)
	if signer != j.Gateway {
		return nil, fmt.Errorf("%w: job signed by %s, gateway is %s", ErrBadSignature, signer.Hex(), j.Gateway.Hex())
	}
	cache.addKey(digest, j.Signature, signer, pub)
	return pub, nil
}

// checkClaimsRoot is the rule that the claims root commits to the claim
// hashes in order, for jobs and certificates alike.
func checkClaimsRoot(hashes []common.Hash, root common.Hash) error {
	if got := claims.Root(hashes); got != root {
		return fmt.Errorf("%w: stated %s, claims give %s", ErrClaimsRoot, root.Hex(), got.Hex())
	}
	return nil
}

// checkJobID is the rule that a job id is the id of the job's parameters,
// for jobs and certificates alike.
func checkJobID(p JobParams, id common.Hash) error {
	if got := p.ID(); got != id {
		return fmt.Errorf("%w: stated %s, parameters give %s", ErrJobID, id.Hex(), got.Hex())
	}
	return nil
}
