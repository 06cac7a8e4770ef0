package models

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/claims"
)

func TestSampleStatements(t *testing.T) {
	st, err := SampleStatements()
	if err != nil {
		t.Fatal(err)
	}
	kb := claims.SampleKnowledgeBase()
	var nTrue, nFalse int
	for _, s := range st {
		v, ok := kb.Lookup(s.Text)
		want := claims.False
		if s.True {
			want = claims.True
			nTrue++
		} else {
			nFalse++
		}
		if !ok || v != want {
			t.Errorf("%q: knowledge base says %v (%v), want %v", s.Text, v, ok, want)
		}
	}
	if nTrue == 0 || nFalse == 0 {
		t.Errorf("%d true and %d false statements", nTrue, nFalse)
	}
}

func TestParseStatementsRejectsWhatValidatorsReject(t *testing.T) {
	for _, text := range []string{"maybe: x", "true: x\nfalse: x", "no label"} {
		if _, err := ParseStatements(text); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
	st, err := ParseStatements("# c\n\n TRUE:  Paris  is the capital of France. \nfalse: Sydney is the capital of Australia.\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Statement{{"Paris is the capital of France.", true}, {"Sydney is the capital of Australia.", false}}
	if len(st) != 2 || st[0] != want[0] || st[1] != want[1] {
		t.Errorf("statements = %+v, want %+v", st, want)
	}
}

// TestSimulatedGeneratorOverSampleKB runs the generator over the sample
// knowledge base and judges its answers as validators would: the rule
// decomposer, then the knowledge base verifier.
func TestSimulatedGeneratorOverSampleKB(t *testing.T) {
	st, err := SampleStatements()
	if err != nil {
		t.Fatal(err)
	}
	kb := claims.SampleKnowledgeBase()
	judge := func(t *testing.T, out string) []claims.Verdict {
		t.Helper()
		cs, err := claims.RuleDecomposer{}.Decompose(context.Background(), out)
		if err != nil {
			t.Fatalf("decompose %q: %v", out, err)
		}
		vs := make([]claims.Verdict, len(cs))
		for i, c := range cs {
			vs[i] = kb.Verify(context.Background(), c)
		}
		return vs
	}
	t.Run("rate 0 answers are true", func(t *testing.T) {
		g, err := NewGenerator(Spec{Kind: "simulated", Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if !s.True {
				continue
			}
			out, err := g.Generate(context.Background(), "Is it so that "+strings.TrimSuffix(s.Text, ".")+"?")
			if err != nil {
				t.Fatalf("%q: %v", s.Text, err)
			}
			for i, v := range judge(t, out) {
				if v != claims.True {
					t.Errorf("answer %q: claim %d judged %v", out, i, v)
				}
			}
		}
	})
	t.Run("the network catches the wrong facts of the knowledge base", func(t *testing.T) {
		g, err := NewSimulatedGenerator(st, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := g.GenerateSentences(context.Background(), "What is the capital of Australia?")
		if err != nil {
			t.Fatal(err)
		}
		if ss[0].Method != "kb-false" {
			t.Fatalf("first sentence %+v, want a false statement of the knowledge base", ss[0])
		}
		if v := judge(t, ss[0].Text); len(v) != 1 || v[0] != claims.False {
			t.Errorf("%q judged %v, want false", ss[0].Text, v)
		}
	})
}

func TestNewGeneratorFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kb.txt")
	if err := os.WriteFile(path, []byte("true: Oslo is the capital of Norway.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator(Spec{Kind: "Simulated", KnowledgeBase: path})
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.Generate(context.Background(), "What is the capital of Norway?")
	if err != nil || out != "Oslo is the capital of Norway." {
		t.Errorf("Generate = %q, %v", out, err)
	}
	if _, err := NewGenerator(Spec{Kind: "simulated", KnowledgeBase: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("no error for a missing knowledge base")
	}
}

func TestSpecConstructors(t *testing.T) {
	t.Setenv(testKeyEnv, "sk-spec")
	f := newFakeServer(t, ok("TRUE"), ok(`["A."]`), ok("Answer."))
	spec := Spec{Kind: "openai", BaseURL: f.url(), Model: "m", APIKeyEnv: testKeyEnv, Timeout: time.Second, MaxRetries: 1, MaxConcurrency: 2}
	hc := &http.Client{}

	v, err := NewModelVerifier(spec, WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Verify(testCtx(t), claims.FromTexts([]string{"A."})[0]); got != claims.True {
		t.Errorf("Verify = %v", got)
	}
	spec.Kind = "model"
	d, err := NewModelDecomposer(spec)
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := d.Decompose(testCtx(t), "A."); err != nil || len(cs) != 1 || d.Fallbacks() != 0 {
		t.Errorf("Decompose = %v, %v (fallbacks %d)", cs, err, d.Fallbacks())
	}
	g, err := NewGenerator(spec)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := g.Generate(testCtx(t), "Q?"); err != nil || out != "Answer." {
		t.Errorf("Generate = %q, %v", out, err)
	}
	for _, r := range f.recorded() {
		if r.Authorization != "Bearer sk-spec" || r.Model != "m" {
			t.Errorf("request auth %q model %q", r.Authorization, r.Model)
		}
	}

	for _, bad := range []Spec{{Kind: "simulated"}, {Kind: ""}, {Kind: "llama"}} {
		if _, err := NewModelVerifier(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("verifier %q: err = %v, want ErrConfig", bad.Kind, err)
		}
		if _, err := NewModelDecomposer(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("decomposer %q: err = %v, want ErrConfig", bad.Kind, err)
		}
	}
	if _, err := NewGenerator(Spec{Kind: "llama"}); !errors.Is(err, ErrConfig) {
		t.Errorf("generator llama: err = %v, want ErrConfig", err)
	}
	if _, err := NewGenerator(Spec{Kind: "openai", Model: "m"}); !errors.Is(err, ErrConfig) {
		t.Errorf("generator without base url: err = %v, want ErrConfig", err)
	}
}
