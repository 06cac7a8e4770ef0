package claims

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixed is a fake verifier with one answer for every claim.
type fixed Verdict

func (f fixed) Verify(context.Context, Claim) Verdict { return Verdict(f) }
func (f fixed) Name() string                          { return "fixed-" + Verdict(f).String() }

// counting records how often it was asked.
type counting struct {
	v     Verdict
	calls int
}

func (c *counting) Verify(context.Context, Claim) Verdict { c.calls++; return c.v }
func (c *counting) Name() string                          { return "counting" }

func TestChain(t *testing.T) {
	ctx := context.Background()
	c := Claim{Text: "x"}
	tests := []struct {
		name string
		vs   []Verifier
		want Verdict
	}{
		{"empty chain abstains", nil, Abstain},
		{"nil entries skipped", []Verifier{nil, fixed(True)}, True},
		{"first non-abstain wins", []Verifier{fixed(Abstain), fixed(False), fixed(True)}, False},
		{"order matters", []Verifier{fixed(True), fixed(False)}, True},
		{"all abstain", []Verifier{fixed(Abstain), fixed(Abstain)}, Abstain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Chain(tt.vs...).Verify(ctx, c); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	later := &counting{v: True}
	if got := Chain(fixed(False), later).Verify(ctx, c); got != False || later.calls != 0 {
		t.Fatalf("chain asked a later verifier after a verdict: %v, %d calls", got, later.calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := Chain(fixed(True)).Verify(cctx, c); got != Abstain {
		t.Fatalf("cancelled chain = %v, want abstain", got)
	}
	if got := Chain(SampleKnowledgeBase(), Arithmetic{}).Name(); got != "kb+arithmetic" {
		t.Fatalf("Name = %q", got)
	}
}

func TestDefaultVerifierOnDemoOutput(t *testing.T) {
	v, err := NewVerifier(VerifierSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != DefaultBackend {
		t.Fatalf("Name = %q, want %q", v.Name(), DefaultBackend)
	}
	out := "Paris is the capital of France and Berlin is the capital of Germany. " +
		"The capital of Australia is Sydney. 17 * 3 = 51. 2 + 2 = 5. Cats like fish."
	want := []Verdict{True, True, False, True, False, Abstain}
	cs := Decompose(out)
	if len(cs) != len(want) {
		t.Fatalf("got %d claims, want %d", len(cs), len(want))
	}
	for i, c := range cs {
		if got := v.Verify(context.Background(), c); got != want[i] {
			t.Errorf("%q: got %v, want %v", c.Text, got, want[i])
		}
	}
}

func TestNewVerifier(t *testing.T) {
	dir := t.TempDir()
	kbPath := filepath.Join(dir, "facts.kb")
	if err := os.WriteFile(kbPath, []byte("true: Ice is cold.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ice := FromTexts([]string{"Ice is cold."})[0]
	paris := FromTexts([]string{"Paris is the capital of France."})[0]
	sum := FromTexts([]string{"2 + 2 = 4."})[0]
	tests := []struct {
		name     string
		spec     VerifierSpec
		wantName string
		want     [3]Verdict // ice, paris, sum
	}{
		{"default", VerifierSpec{}, "kb+arithmetic", [3]Verdict{Abstain, True, True}},
		{"kb sample", VerifierSpec{Backend: "kb"}, "kb", [3]Verdict{Abstain, True, Abstain}},
		{"kb file", VerifierSpec{Backend: "kb", KnowledgeBase: kbPath}, "kb", [3]Verdict{True, Abstain, Abstain}},
		{"arithmetic", VerifierSpec{Backend: "arithmetic"}, "arithmetic", [3]Verdict{Abstain, Abstain, True}},
		{"kb file + arithmetic", VerifierSpec{Backend: "kb+arithmetic", KnowledgeBase: kbPath}, "kb+arithmetic", [3]Verdict{True, Abstain, True}},
		{"simulated perfect", VerifierSpec{Backend: "simulated", Accuracy: 1}, "simulated(kb+arithmetic)", [3]Verdict{Abstain, True, True}},
		{"simulated always wrong", VerifierSpec{Backend: "simulated", Accuracy: 0, Inner: "arithmetic"}, "simulated(arithmetic)", [3]Verdict{Abstain, Abstain, False}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if v.Name() != tt.wantName {
				t.Fatalf("Name = %q, want %q", v.Name(), tt.wantName)
			}
			for i, c := range []Claim{ice, paris, sum} {
				if got := v.Verify(ctx, c); got != tt.want[i] {
					t.Errorf("%q: got %v, want %v", c.Text, got, tt.want[i])
				}
			}
		})
	}

	errTests := []struct {
		name string
		spec VerifierSpec
		want error
	}{
		{"unknown backend", VerifierSpec{Backend: "oracle"}, ErrUnknownBackend},
		{"simulated inside simulated", VerifierSpec{Backend: "simulated", Inner: "simulated", Accuracy: 0.5}, ErrUnknownBackend},
		{"accuracy above one", VerifierSpec{Backend: "simulated", Accuracy: 1.5}, ErrBadAccuracy},
		{"negative accuracy", VerifierSpec{Backend: "simulated", Accuracy: -0.1}, ErrBadAccuracy},
		{"NaN accuracy", VerifierSpec{Backend: "simulated", Accuracy: math.NaN()}, ErrBadAccuracy},
		{"missing kb file", VerifierSpec{Backend: "kb", KnowledgeBase: filepath.Join(dir, "none.kb")}, os.ErrNotExist},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewVerifier(tt.spec); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// syntheticClaims returns n distinct claims.
func syntheticClaims(n int) []Claim {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("Synthetic statement number %d.", i)
	}
	return FromTexts(texts)
}

func TestSimulatedAccuracy(t *testing.T) {
	const n = 10000
	cs := syntheticClaims(n)
	ctx := context.Background()
	for _, acc := range []float64{0, 0.5, 0.7, 0.9, 0.99, 1} {
		for _, inner := range []Verdict{True, False} {
			t.Run(fmt.Sprintf("accuracy %v inner %v", acc, inner), func(t *testing.T) {
				s := &Simulated{Inner: fixed(inner), Accuracy: acc, Seed: 42, Validator: "0xval1"}
				correct := 0
				for _, c := range cs {
					v := s.Verify(ctx, c)
					if v != inner && v != inner.Invert() {
						t.Fatalf("verdict %v is neither the inner answer nor its inverse", v)
					}
					if v == inner {
						correct++
					}
					if again := s.Verify(ctx, c); again != v {
						t.Fatalf("not deterministic on %q", c.Text)
					}
				}
				got := float64(correct) / n
				// Binomial standard deviation is at most 0.005 at n = 10000;
				// allow three of them.
				if math.Abs(got-acc) > 0.015 {
					t.Fatalf("observed accuracy %.4f, want %.2f ± 0.015", got, acc)
				}
			})
		}
	}
}

func TestSimulatedIndependentAcrossValidators(t *testing.T) {
	const n, acc = 10000, 0.8
	cs := syntheticClaims(n)
	ctx := context.Background()
	a := &Simulated{Inner: fixed(True), Accuracy: acc, Seed: 7, Validator: "a"}
	b := &Simulated{Inner: fixed(True), Accuracy: acc, Seed: 7, Validator: "b"}
	a2 := &Simulated{Inner: fixed(True), Accuracy: acc, Seed: 8, Validator: "a"}
	var both, seedBoth, same int
	for _, c := range cs {
		wa, wb, wa2 := a.Verify(ctx, c) == False, b.Verify(ctx, c) == False, a2.Verify(ctx, c) == False
		if wa && wb {
			both++
		}
		if wa && wa2 {
			seedBoth++
		}
		if wa == wb {
			same++
		}
	}
	// Independent errors: P(both wrong) = 0.2² = 0.04.
	for name, k := range map[string]int{"validators": both, "seeds": seedBoth} {
		if got := float64(k) / n; math.Abs(got-0.04) > 0.01 {
			t.Errorf("%s: both wrong on %.4f of claims, want 0.04 ± 0.01", name, got)
		}
	}
	if same == n {
		t.Fatal("two validators made identical errors")
	}
}

func TestSimulatedAbstainsWithInner(t *testing.T) {
	ctx := context.Background()
	c := syntheticClaims(1)[0]
	if got := (&Simulated{Inner: fixed(Abstain), Accuracy: 0}).Verify(ctx, c); got != Abstain {
		t.Fatalf("abstaining inner gave %v", got)
	}
	if got := (&Simulated{Accuracy: 1}).Verify(ctx, c); got != Abstain {
		t.Fatalf("nil inner gave %v", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := (&Simulated{Inner: fixed(True), Accuracy: 1}).Verify(cctx, c); got != Abstain {
		t.Fatalf("cancelled context gave %v", got)
	}
	if !(&Simulated{Accuracy: math.NaN()}).Errs(c) || (&Simulated{Accuracy: 2}).Errs(c) || !(&Simulated{Accuracy: -1}).Errs(c) {
		t.Fatal("out-of-range accuracies are not clamped")
	}
}

// TestSimulatedKnownAnswer pins the error rule so that simulated runs stay
// reproducible across versions.
func TestSimulatedKnownAnswer(t *testing.T) {
	s := &Simulated{Inner: fixed(True), Accuracy: 0.5, Seed: 1, Validator: "v"}
	var b strings.Builder
	for _, c := range syntheticClaims(32) {
		if s.Errs(c) {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	const want = "x.x.x...xx.xxx.xxxxxxxxxx.xx.xxx" // cross-checked with an independent Keccak-256
	if b.String() != want {
		t.Fatalf("error pattern %s, want %s", b.String(), want)
	}
}
