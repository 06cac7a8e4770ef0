package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/verity-network/verity/claims"
)

// testStatements is a small knowledge base in the shape the generator takes.
var testStatements = []Statement{
	{"Paris is the capital of France.", true},
	{"Berlin is the capital of Germany.", true},
	{"Tokyo is the capital of Japan.", true},
	{"Canberra is the capital of Australia.", true},
	{"Sydney is the capital of Australia.", false},
	{"The Seine flows through Paris.", true},
	{"Water boils at 100 degrees Celsius at sea level.", true},
	{"Water freezes at 0 degrees Celsius at sea level.", true},
	{"The Earth orbits the Sun.", true},
	{"The Sun orbits the Earth.", false},
	{"Light travels faster than sound.", true},
	{"Mount Everest is the highest mountain on Earth.", true},
	{"A week has 7 days.", true},
}

var testPrompts = []string{
	"What is the capital of France?",
	"What is the capital of Germany?",
	"Which city is the capital of Japan?",
	"What is the capital of Australia?",
	"At what temperature does water boil?",
	"When does water freeze?",
	"Does the Earth orbit the Sun?",
	"Which is faster, light or sound?",
	"What is the highest mountain on Earth?",
	"How many days does a week have?",
	"Which river flows through Paris?",
}

func newTestGenerator(t *testing.T, rate float64, seed uint64) *SimulatedGenerator {
	t.Helper()
	g, err := NewSimulatedGenerator(testStatements, rate, seed)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestSimulatedGeneratorAnswers(t *testing.T) {
	g := newTestGenerator(t, 0, 1)
	cases := []struct {
		prompt string
		first  string
	}{
		{"What is the capital of France?", "Paris is the capital of France."},
		{"what's the CAPITAL of australia", "Canberra is the capital of Australia."},
		{"Tell me the boiling point of water.", "Water boils at 100 degrees Celsius at sea level."},
		{"How many days are in a week?", "A week has 7 days."},
	}
	for _, tc := range cases {
		ss, err := g.GenerateSentences(context.Background(), tc.prompt)
		if err != nil {
			t.Fatalf("%q: %v", tc.prompt, err)
		}
		if len(ss) < 1 || len(ss) > MaxAnswerSentences || ss[0].Text != tc.first {
			t.Errorf("%q: answer %+v, want it to start with %q", tc.prompt, ss, tc.first)
		}
	}
	out, err := g.Generate(context.Background(), "What is the capital of France?")
	if err != nil || !strings.HasPrefix(out, "Paris is the capital of France.") {
		t.Errorf("Generate = %q, %v", out, err)
	}
}

func TestSimulatedGeneratorNoAnswer(t *testing.T) {
	g := newTestGenerator(t, 0.5, 1)
	if _, err := g.Generate(context.Background(), "Who wrote Hamlet?"); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("err = %v, want ErrNoAnswer", err)
	}
	if _, err := g.Generate(context.Background(), "  "); !errors.Is(err, ErrEmptyPrompt) {
		t.Errorf("err = %v, want ErrEmptyPrompt", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Generate(ctx, "What is the capital of France?"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSimulatedGeneratorConfig(t *testing.T) {
	for _, rate := range []float64{-0.1, 1.1, math.NaN()} {
		if _, err := NewSimulatedGenerator(testStatements, rate, 1); !errors.Is(err, ErrConfig) {
			t.Errorf("rate %v: err = %v, want ErrConfig", rate, err)
		}
	}
	if _, err := NewSimulatedGenerator([]Statement{{"The Sun orbits the Earth.", false}}, 0, 1); !errors.Is(err, ErrNoStatements) {
		t.Errorf("err = %v, want ErrNoStatements", err)
	}
}

// TestSimulatedGeneratorRateZeroIsTrue checks that at rate 0 every claim of
// every answer is a true statement of the knowledge base.
func TestSimulatedGeneratorRateZeroIsTrue(t *testing.T) {
	g := newTestGenerator(t, 0, 99)
	var truths []string
	for _, s := range testStatements {
		if s.True {
			truths = append(truths, s.Text)
		}
	}
	for _, p := range testPrompts {
		out, err := g.Generate(context.Background(), p)
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		cs, err := claims.RuleDecomposer{}.Decompose(context.Background(), out)
		if err != nil {
			t.Fatalf("%q: decompose %q: %v", p, out, err)
		}
		for _, c := range cs {
			if !slices.Contains(truths, c.Text) {
				t.Errorf("%q: claim %q is not a true statement", p, c.Text)
			}
		}
	}
}

func TestSimulatedGeneratorDeterministic(t *testing.T) {
	a, b := newTestGenerator(t, 0.5, 42), newTestGenerator(t, 0.5, 42)
	other := newTestGenerator(t, 0.5, 43)
	differs := false
	for _, p := range testPrompts {
		x, err1 := a.Generate(context.Background(), p)
		y, err2 := b.Generate(context.Background(), p)
		z, err3 := other.Generate(context.Background(), p)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		if x != y {
			t.Errorf("%q: %q then %q with the same seed", p, x, y)
		}
		differs = differs || x != z
	}
	if !differs {
		t.Error("another seed gave the same answers to every prompt")
	}
}

// TestSimulatedGeneratorRate observes the hallucination rate over many
// prompts and checks every wrong sentence really differs from the truth.
func TestSimulatedGeneratorRate(t *testing.T) {
	truth := map[string]bool{}
	for _, s := range testStatements {
		truth[s.Text] = s.True
	}
	for _, rate := range []float64{0.1, 0.3, 0.5} {
		g := newTestGenerator(t, rate, 7)
		var sentences, wrong int
		methods := map[string]int{}
		for i := range 4000 {
			p := fmt.Sprintf("%s (variant %d)", testPrompts[i%len(testPrompts)], i)
			ss, err := g.GenerateSentences(context.Background(), p)
			if err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			for _, s := range ss {
				sentences++
				if !s.Hallucinated {
					if !truth[s.Text] {
						t.Fatalf("%q: unmarked sentence %q is not true", p, s.Text)
					}
					continue
				}
				wrong++
				methods[s.Method]++
				if s.Text == s.Source || truth[s.Text] {
					t.Fatalf("%q: hallucination %q (%s) is a true statement", p, s.Text, s.Method)
				}
			}
		}
		got := float64(wrong) / float64(sentences)
		tol := 4 * math.Sqrt(rate*(1-rate)/float64(sentences))
		if math.Abs(got-rate) > tol {
			t.Errorf("rate %v: observed %.4f over %d sentences (tolerance %.4f)", rate, got, sentences, tol)
		}
		for _, m := range []string{"kb-false", "number", "entity", "negation"} {
			if methods[m] == 0 {
				t.Errorf("rate %v: no hallucination by %s (%v)", rate, m, methods)
			}
		}
	}
}

func TestSimulatedGeneratorCorruptions(t *testing.T) {
	g := newTestGenerator(t, 1, 5)
	cases := []struct {
		prompt string
		check  func(s Sentence) bool
	}{
		{"What is the capital of Australia?", func(s Sentence) bool {
			return s.Method == "kb-false" && s.Text == "Sydney is the capital of Australia."
		}},
		{"Does the Earth orbit the Sun?", func(s Sentence) bool {
			return s.Method == "kb-false" && s.Text == "The Sun orbits the Earth."
		}},
		{"How many days does a week have?", func(s Sentence) bool {
			return s.Method == "number" && strings.HasPrefix(s.Text, "A week has ") && s.Text != "A week has 7 days."
		}},
		{"What is the capital of France?", func(s Sentence) bool {
			return s.Method == "entity" && strings.HasSuffix(s.Text, " is the capital of France.") && !strings.HasPrefix(s.Text, "Paris")
		}},
		{"Which is faster, light or sound?", func(s Sentence) bool {
			return s.Method == "negation" && s.Text == "It is not true that light travels faster than sound."
		}},
	}
	for _, tc := range cases {
		ss, err := g.GenerateSentences(context.Background(), tc.prompt)
		if err != nil {
			t.Fatalf("%q: %v", tc.prompt, err)
		}
		if !ss[0].Hallucinated || !tc.check(ss[0]) {
			t.Errorf("%q: first sentence %+v", tc.prompt, ss[0])
		}
	}
}

func TestChangeNumberAndReplaceWord(t *testing.T) {
	if got, ok := changeNumber("100", 3); !ok || got != "103" {
		t.Errorf("changeNumber(100, 3) = %q, %v", got, ok)
	}
	if got, ok := changeNumber("3.14", 1); !ok || got != "4.14" {
		t.Errorf("changeNumber(3.14, 1) = %q, %v", got, ok)
	}
	if got := replaceWord("Parisian Paris is Paris.", "Paris", "Rome"); got != "Parisian Rome is Paris." {
		t.Errorf("replaceWord = %q", got)
	}
	for _, tc := range []struct {
		in   string
		name bool
		want string
	}{
		{"The Sun is a star.", false, "The Sun is not a star."},
		{"Light travels faster than sound.", false, "It is not true that light travels faster than sound."},
		{"Paris lies on the Seine.", true, "It is not true that Paris lies on the Seine."},
		{"Is it raining.", false, "It is not true that is it raining."},
	} {
		if got := negate(tc.in, tc.name); got != tc.want {
			t.Errorf("negate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
