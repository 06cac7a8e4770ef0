package consensus

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Quorum kinds.
const (
	// QuorumStake: a verdict needs STRICTLY MORE than Num/Den of the stake
	// assigned to the claim.
	QuorumStake = "stake"
	// QuorumCount: a verdict needs AT LEAST N of the M validators assigned to
	// the claim (M is the claim's assigned count).
	QuorumCount = "count"
)

// ErrBadQuorum is returned for a quorum rule that could decide two verdicts
// at once or is otherwise malformed.
var ErrBadQuorum = errors.New("invalid quorum")

// Quorum is the rule that decides a claim. This type is the only place the
// rule is evaluated: Reached and Possible.
type Quorum struct {
	Kind string `json:"kind"`
	Num  uint64 `json:"num,omitempty"`
	Den  uint64 `json:"den,omitempty"`
	N    uint64 `json:"n,omitempty"`
	M    uint64 `json:"m,omitempty"`
}

// DefaultQuorum is "more than 2/3 of the assigned stake".
var DefaultQuorum = Quorum{Kind: QuorumStake, Num: 2, Den: 3}

// StakeQuorum is "more than num/den of the assigned stake".
func StakeQuorum(num, den uint64) Quorum { return Quorum{Kind: QuorumStake, Num: num, Den: den} }

// CountQuorum is "at least n of the m assigned validators".
func CountQuorum(n, m uint64) Quorum { return Quorum{Kind: QuorumCount, N: n, M: m} }

// Validate rejects rules under which two different verdicts could both reach
// quorum: a stake fraction must be at least 1/2 (strictly more than half is
// then needed) and below 1; a count needs a strict majority of M.
func (q Quorum) Validate() error {
	switch q.Kind {
	case QuorumStake:
		if q.N != 0 || q.M != 0 {
			return fmt.Errorf("%w: stake quorum takes num and den only", ErrBadQuorum)
		}
		if q.Den == 0 || q.Num == 0 || q.Num >= q.Den {
			return fmt.Errorf("%w: need 0 < num < den, got %d/%d", ErrBadQuorum, q.Num, q.Den)
		}
		if q.Den > 1<<32 {
			return fmt.Errorf("%w: den %d too large", ErrBadQuorum, q.Den)
		}
		if hi, lo := bits.Mul64(q.Num, 2); hi != 0 || lo < q.Den {
			return fmt.Errorf("%w: %d/%d is below 1/2", ErrBadQuorum, q.Num, q.Den)
		}
	case QuorumCount:
		if q.Num != 0 || q.Den != 0 {
			return fmt.Errorf("%w: count quorum takes n and m only", ErrBadQuorum)
		}
		if q.M == 0 || q.N == 0 || q.N > q.M || q.M > MaxValidators {
			return fmt.Errorf("%w: need 0 < n <= m <= %d, got %d of %d", ErrBadQuorum, MaxValidators, q.N, q.M)
		}
		if 2*q.N <= q.M {
			return fmt.Errorf("%w: %d of %d is not a strict majority", ErrBadQuorum, q.N, q.M)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadQuorum, q.Kind)
	}
	return nil
}

// Reached reports whether a verdict backed by forStake from forCount
// validators has quorum on a claim whose assigned validators hold
// assignedStake. Stake: forStake*Den > assignedStake*Num, computed in 128
// bits (strict). Count: forCount >= N.
func (q Quorum) Reached(forStake, forCount, assignedStake uint64) bool {
	switch q.Kind {
	case QuorumStake:
		lh, ll := bits.Mul64(forStake, q.Den)
		rh, rl := bits.Mul64(assignedStake, q.Num)
		return lh > rh || (lh == rh && ll > rl)
	case QuorumCount:
		return forCount >= q.N
	}
	return false
}

// Needed is the least stake (stake kind) or validator count (count kind) a
// verdict needs, for progress displays.
func (q Quorum) Needed(assignedStake uint64) uint64 {
	switch q.Kind {
	case QuorumStake:
		// smallest s with s*den > assigned*num: floor(assigned*num/den) + 1
		hi, lo := bits.Mul64(assignedStake, q.Num)
		if q.Den == 0 || hi >= q.Den {
			return 0
		}
		quo, _ := bits.Div64(hi, lo, q.Den)
		return quo + 1
	case QuorumCount:
		return q.N
	}
	return 0
}

// String is the compact form accepted by ParseQuorum: "2/3" or "3of5".
func (q Quorum) String() string {
	if q.Kind == QuorumCount {
		return fmt.Sprintf("%dof%d", q.N, q.M)
	}
	return fmt.Sprintf("%d/%d", q.Num, q.Den)
}

// ParseQuorum reads "num/den" (stake fraction, strictly more than) or "NofM"
// (validator count, at least N of M) and validates it.
func ParseQuorum(s string) (Quorum, error) {
	s = strings.TrimSpace(s)
	var q Quorum
	if a, b, ok := strings.Cut(s, "/"); ok {
		num, err1 := strconv.ParseUint(a, 10, 64)
		den, err2 := strconv.ParseUint(b, 10, 64)
		if err1 != nil || err2 != nil {
			return Quorum{}, fmt.Errorf("%w: %q is not num/den", ErrBadQuorum, s)
		}
		q = StakeQuorum(num, den)
	} else if a, b, ok := strings.Cut(s, "of"); ok {
		n, err1 := strconv.ParseUint(a, 10, 64)
		m, err2 := strconv.ParseUint(b, 10, 64)
		if err1 != nil || err2 != nil {
			return Quorum{}, fmt.Errorf("%w: %q is not NofM", ErrBadQuorum, s)
		}
		q = CountQuorum(n, m)
	} else {
		return Quorum{}, fmt.Errorf("%w: %q: want num/den (stake) or NofM (count)", ErrBadQuorum, s)
	}
	return q, q.Validate()
}
