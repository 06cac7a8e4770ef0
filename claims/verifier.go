package claims

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Verifier judges one claim. Verify returns True, False or Abstain; it
// abstains when it cannot tell, including when ctx is done. Implementations
// are safe for concurrent use.
type Verifier interface {
	Verify(ctx context.Context, c Claim) Verdict
	Name() string
}

// Backend names accepted by NewVerifier.
const (
	BackendKB           = "kb"
	BackendArithmetic   = "arithmetic"
	BackendKBArithmetic = "kb+arithmetic"
	BackendSimulated    = "simulated"
	DefaultBackend      = BackendKBArithmetic
	defaultInner        = BackendKBArithmetic
)

// Chain returns a verifier that asks vs in order and returns the first
// verdict that is not Abstain. Nil entries are skipped; a chain of nothing
// always abstains.
func Chain(vs ...Verifier) Verifier {
	c := make(chain, 0, len(vs))
	for _, v := range vs {
		if v != nil {
			c = append(c, v)
		}
	}
	return c
}

type chain []Verifier

func (c chain) Verify(ctx context.Context, cl Claim) Verdict {
	for _, v := range c {
		if ctx.Err() != nil {
			return Abstain
		}
		if got := v.Verify(ctx, cl); got != Abstain {
			return got
		}
	}
	return Abstain
}

func (c chain) Name() string {
	names := make([]string, len(c))
	for i, v := range c {
		names[i] = v.Name()
	}
	return strings.Join(names, "+")
}

// VerifierSpec configures a verifier backend.
type VerifierSpec struct {
	// Backend is "kb", "arithmetic", "kb+arithmetic" (the knowledge base
	// first, then the arithmetic checker) or "simulated". Empty means
	// DefaultBackend, "kb+arithmetic".
	Backend string
	// KnowledgeBase is the path of a knowledge base file for the "kb"
	// backends; empty means the shipped sample (SampleKnowledgeBase).
	KnowledgeBase string
	// Accuracy, Seed and Validator configure the "simulated" backend (see
	// Simulated); other backends ignore them.
	Accuracy  float64
	Seed      uint64
	Validator string
	// Inner is the backend the "simulated" backend wraps: "kb",
	// "arithmetic" or "kb+arithmetic"; empty means "kb+arithmetic".
	Inner string
}

var (
	// ErrUnknownBackend is returned for a backend name NewVerifier does not know.
	ErrUnknownBackend = errors.New("claims: unknown verifier backend")
	// ErrBadAccuracy is returned for a simulated accuracy outside [0, 1].
	ErrBadAccuracy = errors.New("claims: simulated accuracy not in [0, 1]")
)

// NewVerifier builds the verifier described by spec.
func NewVerifier(spec VerifierSpec) (Verifier, error) {
	backend := spec.Backend
	if backend == "" {
		backend = DefaultBackend
	}
	if backend != BackendSimulated {
		return newPlainVerifier(backend, spec.KnowledgeBase)
	}
	if math.IsNaN(spec.Accuracy) || spec.Accuracy < 0 || spec.Accuracy > 1 {
		return nil, fmt.Errorf("%w: %v", ErrBadAccuracy, spec.Accuracy)
	}
	innerName := spec.Inner
	if innerName == "" {
		innerName = defaultInner
	}
	inner, err := newPlainVerifier(innerName, spec.KnowledgeBase)
	if err != nil {
		return nil, fmt.Errorf("simulated inner: %w", err)
	}
	return &Simulated{Inner: inner, Accuracy: spec.Accuracy, Seed: spec.Seed, Validator: spec.Validator}, nil
}

func newPlainVerifier(backend, kbPath string) (Verifier, error) {
	switch backend {
	case BackendArithmetic:
		return Arithmetic{}, nil
	case BackendKB, BackendKBArithmetic:
		kb := SampleKnowledgeBase()
		if kbPath != "" {
			var err error
			if kb, err = LoadKnowledgeBase(kbPath); err != nil {
				return nil, fmt.Errorf("knowledge base: %w", err)
			}
		}
		if backend == BackendKB {
			return kb, nil
		}
		return Chain(kb, Arithmetic{}), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownBackend, backend)
}
