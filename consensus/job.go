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
