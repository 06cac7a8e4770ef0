package claims

import (
	"context"
	"encoding/binary"
	"math"

	"github.com/ethereum/go-ethereum/crypto"
)

// Simulated is a model with a set accuracy: it asks Inner and, for a
// deterministic pseudo-random share 1-Accuracy of the claims, returns the
// opposite verdict (True for False and False for True). When Inner abstains
// (or is nil) it abstains too, so Accuracy is the share of correct verdicts
// among the claims Inner can judge.
//
// Whether a claim is answered wrongly is decided by
//
//	u = first 8 bytes, big-endian, of keccak256("verity.simulated.v1" ||
//	    u64 Seed || u32 len(Validator) || Validator || claim hash)
//
// and the answer is wrong when u < (1-Accuracy)·2^64. The same validator
// always answers the same claim the same way; different validators (or
// seeds) err independently of each other. An Accuracy at or above 1 never
// errs, at or below 0 (or NaN) always errs.
type Simulated struct {
	Inner     Verifier
	Accuracy  float64
	Seed      uint64
	Validator string
}

var _ Verifier = (*Simulated)(nil)

const simulatedDomain = "verity.simulated.v1"

// Name implements Verifier.
func (s *Simulated) Name() string {
	if s.Inner == nil {
		return BackendSimulated
	}
	return BackendSimulated + "(" + s.Inner.Name() + ")"
}

// Verify implements Verifier.
func (s *Simulated) Verify(ctx context.Context, c Claim) Verdict {
	if s.Inner == nil || ctx.Err() != nil {
		return Abstain
	}
	v := s.Inner.Verify(ctx, c)
	if v == Abstain || !s.Errs(c) {
		return v
	}
	return v.Invert()
}

// Errs reports whether this simulated validator answers claim c wrongly.
func (s *Simulated) Errs(c Claim) bool {
	p := 1 - s.Accuracy
	switch {
	case math.IsNaN(p) || p >= 1:
		return true
	case p <= 0:
		return false
	}
	buf := make([]byte, 0, len(simulatedDomain)+8+4+len(s.Validator)+32)
	buf = append(buf, simulatedDomain...)
	buf = binary.BigEndian.AppendUint64(buf, s.Seed)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s.Validator)))
	buf = append(buf, s.Validator...)
	buf = append(buf, c.Hash[:]...)
	u := binary.BigEndian.Uint64(crypto.Keccak256(buf))
	// p < 1, so p·2^64 < 2^64; the float product is exact to 53 bits.
	threshold := math.Ldexp(p, 64)
	if threshold >= math.Ldexp(1, 64) {
		return true
	}
	return u < uint64(threshold)
}
