package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strings"
)

// ErrBelowFloor is returned for job parameters, and so for certificates,
// under which the network's policy does not let a claim be decided: a
// quorum rule it does not allow, or too little stake assigned to a claim
// for the stated fault assumption.
var ErrBelowFloor = errors.New("below the network's security floor")

// ErrBadPolicy is returned for a genesis policy that is malformed or that
// honest validators could never satisfy.
var ErrBadPolicy = errors.New("genesis: invalid policy")

// Fraction is num/den, used by the policy.
type Fraction struct {
	Num uint64 `json:"num"`
	Den uint64 `json:"den"`
}

func (f Fraction) String() string { return fmt.Sprintf("%d/%d", f.Num, f.Den) }

// Policy is the network's security policy, set in genesis.json and
// committed to by the genesis hash. Whatever a client asks for, a claim can
// be decided, and a certificate is valid, only within it.
//
// The floor it sets on every claim of every job: byzantine validators hold
// strictly less than ByzantineBelow of the total stake T, and no set of them
// may be able to make two different verdicts reach quorum on one claim
// (which would also let them decide a claim alone). For a stake quorum q
// over a claim's assigned stake A, two quorums overlap in more than
// (2q-1)*A stake, so the claim is safe when (2q-1)*A >= f*T. For a count
// quorum "N of M", two quorums share at least 2N-M validators, so the claim
// is safe when the 2N-M smallest assigned stakes sum to at least f*T. See
// docs/protocol.md for the derivation.
type Policy struct {
	// ByzantineBelow is the fault assumption f: byzantine validators hold
	// strictly less than this fraction of the total stake.
	ByzantineBelow Fraction `json:"byzantine_below"`
	// QuorumKinds are the quorum rules a job may use: "stake", "count".
	QuorumKinds []string `json:"quorum_kinds"`
	// MinStakeQuorum is the least stake quorum a job may ask for.
	MinStakeQuorum Fraction `json:"min_stake_quorum"`
	// MinClaimStake is the least stake that must be assigned to each claim,
	// on top of what the fault assumption needs (0: only that).
	MinClaimStake uint64 `json:"min_claim_stake"`
}

// DefaultPolicy is the policy of a genesis that states none: byzantine stake
// below 1/3, stake or count quorums, stake quorums of at least 2/3. Under
// it a claim needs every validator's stake assigned with the default 2/3
// quorum (replication 0), as in CometBFT.
func DefaultPolicy() Policy {
	return Policy{
		ByzantineBelow: Fraction{1, 3},
		QuorumKinds:    []string{QuorumStake, QuorumCount},
		MinStakeQuorum: Fraction{2, 3},
	}
}

// Validate checks the policy's ranges and that honest stake alone can reach
// its least quorum: f in (0, 1/2), a valid least stake quorum q with
// q <= 1-f, known quorum kinds without repeats.
func (p *Policy) Validate() error {
	f := p.ByzantineBelow
	if f.Den == 0 || f.Num == 0 || f.Den > MaxTotalStake || 2*f.Num >= f.Den {
		return fmt.Errorf("%w: byzantine_below %s must be above 0 and below 1/2 (den at most 2^62)", ErrBadPolicy, f)
	}
	if len(p.QuorumKinds) == 0 {
		return fmt.Errorf("%w: quorum_kinds is empty", ErrBadPolicy)
	}
	for i, k := range p.QuorumKinds {
		if k != QuorumStake && k != QuorumCount {
			return fmt.Errorf("%w: unknown quorum kind %q", ErrBadPolicy, k)
		}
		if slices.Contains(p.QuorumKinds[:i], k) {
			return fmt.Errorf("%w: quorum kind %q listed twice", ErrBadPolicy, k)
		}
	}
	q := StakeQuorum(p.MinStakeQuorum.Num, p.MinStakeQuorum.Den)
	if err := q.Validate(); err != nil {
		return fmt.Errorf("%w: min_stake_quorum: %w", ErrBadPolicy, err)
	}
	// Liveness: honest stake, more than (1-f)*T, must be able to exceed
	// q*T: q <= 1-f, that is q.num*f.den <= (f.den-f.num)*q.den.
	if cmp128(mul128(q.Num, f.Den), mul128(f.Den-f.Num, q.Den)) > 0 {
		return fmt.Errorf("%w: min_stake_quorum %s cannot be reached by honest stake alone while byzantine stake may reach %s", ErrBadPolicy, q, f)
	}
	return nil
}

// String describes the policy in words.
func (p *Policy) String() string {
	s := fmt.Sprintf("byzantine stake below %s; quorums: %s; stake quorum at least %s",
		p.ByzantineBelow, strings.Join(p.QuorumKinds, ", "), p.MinStakeQuorum)
	if p.MinClaimStake > 0 {
		s += fmt.Sprintf("; at least %d stake per claim", p.MinClaimStake)
	}
	return s
}

// appendHash appends the policy's canonical encoding to buf (for the
// genesis hash): f.num, f.den, a kinds bitmask (1 stake, 2 count), q.num,
// q.den, min_claim_stake; integers are big-endian u64 but the mask (u8).
func (p *Policy) appendHash(buf []byte) []byte {
	buf = binary.BigEndian.AppendUint64(buf, p.ByzantineBelow.Num)
	buf = binary.BigEndian.AppendUint64(buf, p.ByzantineBelow.Den)
	var mask byte
	for _, k := range p.QuorumKinds {
		switch k {
		case QuorumStake:
			mask |= 1
		case QuorumCount:
			mask |= 2
		}
	}
	buf = append(buf, mask)
	buf = binary.BigEndian.AppendUint64(buf, p.MinStakeQuorum.Num)
	buf = binary.BigEndian.AppendUint64(buf, p.MinStakeQuorum.Den)
	return binary.BigEndian.AppendUint64(buf, p.MinClaimStake)
}

// Tolerance is how much byzantine stake one claim of a job survives: the
// claim cannot be decided two ways, nor by byzantine validators alone,
// while byzantine validators hold at most Stake. For a stake quorum q it is
// floor((2q-1)*A) for the claim's assigned stake A; for a count quorum "N
// of M" it is one less than the sum of the 2N-M smallest assigned stakes.
func Tolerance(set *ValidatorSet, q Quorum, a *Assignment, claim int) uint64 {
	switch q.Kind {
	case QuorumStake:
		// (2*num - den) * A / den; num/den >= 1/2 after Validate.
		if q.Num < q.Den && q.Num >= q.Den-q.Num {
			// As Validate leaves it: 2*num - den < den, so the product
			// over den stays below A, in 64 bits.
			hi, lo := bits.Mul64(q.Num-(q.Den-q.Num), a.Stake[claim])
			quo, _ := bits.Div64(hi, lo, q.Den)
			return quo
		}
		x := new(big.Int).SetUint64(2)
		x.Mul(x, new(big.Int).SetUint64(q.Num))
		x.Sub(x, new(big.Int).SetUint64(q.Den))
		x.Mul(x, new(big.Int).SetUint64(a.Stake[claim]))
		x.Quo(x, new(big.Int).SetUint64(q.Den))
		return x.Uint64()
	case QuorumCount:
		k := 2*q.N - q.M
		stakes := make([]uint64, 0, len(a.ByClaim[claim]))
		for _, v := range a.ByClaim[claim] {
			stakes = append(stakes, set.At(v).Stake)
		}
		slices.Sort(stakes)
		var sum uint64
		for i := 0; i < int(k) && i < len(stakes); i++ {
			sum += stakes[i]
		}
		if sum == 0 {
			return 0
		}
		return sum - 1
	}
	return 0
}

// Assumed is the most byzantine stake the policy's fault assumption allows:
// the largest integer strictly below f*T.
func (p *Policy) Assumed(total uint64) uint64 {
	f := p.ByzantineBelow
	// ceil(num*T/den) - 1
	hi, lo := bits.Mul64(total, f.Num)
	quo, rem := bits.Div64(hi, lo, f.Den) // hi < den: T < 2^62, num < den
	if rem == 0 {
		return quo - 1
	}
	return quo
}

// checkFloor enforces the policy on a job's quorum rule and assignment.
func (s *ValidatorSet) checkFloor(q Quorum, a *Assignment) error {
	p := &s.policy
	if !slices.Contains(p.QuorumKinds, q.Kind) {
		return fmt.Errorf("%w: quorum kind %q is not allowed (the policy allows %s)", ErrBelowFloor, q.Kind, strings.Join(p.QuorumKinds, ", "))
	}
	if q.Kind == QuorumStake {
		m := p.MinStakeQuorum
		if cmp128(mul128(q.Num, m.Den), mul128(m.Num, q.Den)) < 0 {
			return fmt.Errorf("%w: quorum %s is below the policy's least stake quorum %s", ErrBelowFloor, q, m)
		}
	}
	assumed := p.Assumed(s.total)
	for i := range a.Stake {
		if a.Stake[i] < p.MinClaimStake {
			return fmt.Errorf("%w: claim %d has %d stake assigned; the policy needs at least %d", ErrBelowFloor, i, a.Stake[i], p.MinClaimStake)
		}
		if tol := Tolerance(s, q, a, i); tol < assumed {
			return fmt.Errorf("%w: claim %d has %d of %d stake assigned (%d validators) under quorum %s, which survives byzantine stake up to %d; the policy assumes up to %d (below %s of the total)",
				ErrBelowFloor, i, a.Stake[i], s.total, a.Count[i], q, tol, assumed, p.ByzantineBelow)
		}
	}
	return nil
}

type u128 struct{ hi, lo uint64 }

func mul128(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func cmp128(a, b u128) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// CertificateTolerance is the most byzantine stake under which no claim of
// cert could have been decided another way: the least Tolerance over its
// claims. cert must have passed VerifyCertificate (or at least carry a valid
// quorum rule and claim count).
func CertificateTolerance(cert *Certificate, set *ValidatorSet) uint64 {
	if cert.Quorum.Validate() != nil || len(cert.Claims) == 0 {
		return 0
	}
	a := Assign(set, cert.JobID, len(cert.Claims), cert.Replication)
	least := uint64(0)
	for i := range cert.Claims {
		if t := Tolerance(set, cert.Quorum, a, i); i == 0 || t < least {
			least = t
		}
	}
	return least
}
