package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// MaxClaims bounds the number of claims in one job.
const MaxClaims = 256

// ErrBadJob is returned for job parameters that cannot be tallied.
var ErrBadJob = errors.New("invalid job")

// JobParams are the parameters a job id commits to. Because every ballot
// signs the job id, validators sign the quorum rule and the replication too:
// a certificate cannot claim a weaker rule than the one its ballots were
// cast under.
type JobParams struct {
	NetworkID   uint64
	OutputHash  common.Hash
	ClaimsRoot  common.Hash
	ClaimCount  uint32
	Quorum      Quorum
	Replication uint32 // validators per claim; 0 means every validator
	Nonce       common.Hash
}

// ID is the job id:
//
//	keccak256("verity.job.v1" || u64 network_id || output_hash || claims_root ||
//	          u32 claim_count || u8 kind || u64 a || u64 b || u32 replication || nonce)
//
// where kind is 1 with (a, b) = (num, den) for a stake quorum and 2 with
// (a, b) = (n, m) for a count quorum. Integers are big-endian.
func (p JobParams) ID() common.Hash {
	buf := make([]byte, 0, 13+8+32+32+4+1+8+8+4+32)
	buf = append(buf, "verity.job.v1"...)
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
	buf = append(buf, p.Nonce[:]...)
	return crypto.Keccak256Hash(buf)
}

// EffectiveReplication is the number of validators assigned to each claim.
func EffectiveReplication(set *ValidatorSet, replication uint32) int {
	if replication == 0 || int(replication) >= set.Len() {
		return set.Len()
	}
	return int(replication)
}

// Validate checks the parameters against the validator set: network id,
// claim count, quorum rule, and for a count quorum that M is the number of
// validators assigned to each claim.
func (p JobParams) Validate(set *ValidatorSet) error {
	if p.NetworkID != set.NetworkID() {
		return fmt.Errorf("%w: network id %d, this network is %d", ErrWrongNetwork, p.NetworkID, set.NetworkID())
	}
	if p.ClaimCount == 0 || p.ClaimCount > MaxClaims {
		return fmt.Errorf("%w: claim count %d not in 1..%d", ErrBadJob, p.ClaimCount, MaxClaims)
	}
	if err := p.Quorum.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJob, err)
	}
	if p.Replication > MaxValidators {
		return fmt.Errorf("%w: replication %d too large", ErrBadJob, p.Replication)
	}
	if p.Quorum.Kind == QuorumCount {
		if r := EffectiveReplication(set, p.Replication); p.Quorum.M != uint64(r) {
			return fmt.Errorf("%w: count quorum %s but %d validators are assigned per claim", ErrBadJob, p.Quorum, r)
		}
	}
	return nil
}
