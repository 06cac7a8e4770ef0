package consensus

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/internal/keccak"
)

// Assignment maps each claim of a job to the validators that judge it.
type Assignment struct {
	// ByClaim[i] lists positions in the validator set (address order),
	// ascending.
	ByClaim [][]int
	// ByValidator[v] lists the claim indexes assigned to validator v,
	// ascending; empty when v judges nothing in this job.
	ByValidator [][]uint32
	// Stake[i] is the total stake assigned to claim i.
	Stake []uint64
	// Count[i] is the number of validators assigned to claim i.
	Count []uint64
}

// maxSharedAssignment is the largest claim count whose full assignment a
// validator set keeps (ValidatorSet.full).
const maxSharedAssignment = 64

// Assign computes the deterministic, stake-weighted assignment of a job's
// claims. With replication 0 (or at least the set size) every validator
// judges every claim. Otherwise claim i gets r distinct validators drawn by
// stake-weighted sampling without replacement from a seed only the job id and
// claim index determine:
//
//	seed_i = keccak256("verity.assign.v1" || job_id || u32 i)
//	draw k: x = first 16 bytes of keccak256(seed_i || u32 k) as a u128,
//	        point = x mod (stake still undrawn); pick the validator whose
//	        cumulative stake range (address order, drawn ones removed) holds it.
//
// Integer arithmetic only, so every node and every verifier computes the same
// assignment.
//
// The Assignment returned may be shared with other callers: read it, never
// change it.
func Assign(set *ValidatorSet, jobID common.Hash, claimCount int, replication uint32) *Assignment {
	n := set.Len()
	r := EffectiveReplication(set, replication)
	if r == n && claimCount >= 0 && claimCount <= maxSharedAssignment {
		if a := set.full[claimCount].Load(); a != nil {
			return a
		}
		a := assign(set, jobID, claimCount, r)
		set.full[claimCount].Store(a)
		return a
	}
	return assign(set, jobID, claimCount, r)
}

func assign(set *ValidatorSet, jobID common.Hash, claimCount int, r int) *Assignment {
	n := set.Len()
	a := &Assignment{
		ByClaim:     make([][]int, claimCount),
		ByValidator: make([][]uint32, n),
		Stake:       make([]uint64, claimCount),
		Count:       make([]uint64, claimCount),
	}
	if r == n {
		all := make([]int, n)
		for v := range all {
			all[v] = v
		}
		idx := make([]uint32, claimCount)
		for i := range idx {
			idx[i] = uint32(i)
		}
		for i := range claimCount {
			a.ByClaim[i] = all
			a.Stake[i] = set.TotalStake()
			a.Count[i] = uint64(n)
		}
		for v := range n {
			a.ByValidator[v] = idx
		}
		return a
	}
	drawn := make([]bool, n)
	for i := range claimCount {
		clear(drawn)
		seed := assignSeed(jobID, uint32(i))
		remaining := set.TotalStake()
		picked := make([]int, 0, r)
		for k := range r {
			point := drawPoint(seed, uint32(k), remaining)
			v := 0
			for ; v < n; v++ {
				if drawn[v] {
					continue
				}
				s := set.At(v).Stake
				if point < s {
					break
				}
				point -= s
			}
			drawn[v] = true
			remaining -= set.At(v).Stake
			picked = append(picked, v)
		}
		slices.Sort(picked)
		a.ByClaim[i] = picked
		for _, v := range picked {
			a.Stake[i] += set.At(v).Stake
			a.ByValidator[v] = append(a.ByValidator[v], uint32(i))
		}
		a.Count[i] = uint64(len(picked))
	}
	return a
}

func assignSeed(jobID common.Hash, claim uint32) common.Hash {
	buf := make([]byte, 0, 16+32+4)
	buf = append(buf, "verity.assign.v1"...)
	buf = append(buf, jobID[:]...)
	buf = binary.BigEndian.AppendUint32(buf, claim)
	return keccak.Sum(buf)
}

func drawPoint(seed common.Hash, k uint32, modulus uint64) uint64 {
	var buf [36]byte
	copy(buf[:], seed[:])
	binary.BigEndian.PutUint32(buf[32:], k)
	h := keccak.Sum(buf[:])
	hi := binary.BigEndian.Uint64(h[0:8])
	lo := binary.BigEndian.Uint64(h[8:16])
	return bits.Rem64(hi, lo, modulus)
}
