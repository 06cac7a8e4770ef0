package claims

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSampleKnowledgeBase(t *testing.T) {
	kb := SampleKnowledgeBase()
	if kb.Len() < 60 {
		t.Fatalf("sample knowledge base has %d statements, want at least 60", kb.Len())
	}
	if SampleKnowledgeBase() != kb {
		t.Fatal("SampleKnowledgeBase returned a different value on the second call")
	}
	// The demo relies on these exact sentences.
	demo := []struct {
		text string
		want Verdict
	}{
		{"Paris is the capital of France.", True},
		{"Berlin is the capital of Germany.", True},
		{"Water boils at 100 degrees Celsius at sea level.", True},
		{"The Earth orbits the Sun.", True},
		{"Mount Everest is the highest mountain on Earth.", True},
		{"The Pacific is the largest ocean on Earth.", True},
		{"Light travels faster than sound.", True},
		{"The Great Wall of China is visible from the Moon with the naked eye.", False},
		{"The capital of Australia is Sydney.", False},
		{"The capital of Australia is Canberra.", True},
		{"The Sun orbits the Earth.", False},
		{"Tokyo is the capital of Japan.", True},
		{"The Amazon is a river in South America.", True},
	}
	text := SampleKnowledgeBaseText()
	for _, d := range demo {
		if got := kb.Verify(context.Background(), FromTexts([]string{d.text})[0]); got != d.want {
			t.Errorf("%q: got %v, want %v", d.text, got, d.want)
		}
		if !strings.Contains(text, d.want.String()+": "+d.text+"\n") {
			t.Errorf("%q is not listed verbatim as %v", d.text, d.want)
		}
	}
	var nTrue, nFalse int
	for _, v := range kb.facts {
		if v == True {
			nTrue++
		} else {
			nFalse++
		}
	}
	if nTrue == 0 || nFalse < 10 {
		t.Fatalf("sample has %d true and %d false statements", nTrue, nFalse)
	}
}

func TestSampleKnowledgeBaseStatementsAreSingleClaims(t *testing.T) {
	for i, line := range strings.Split(SampleKnowledgeBaseText(), "\n") {
		_, stmt, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		cs := Decompose(stmt)
		if len(cs) != 1 || cs[0].Text != stmt {
			t.Errorf("line %d: %q decomposes into %d claims", i+1, stmt, len(cs))
		}
	}
}

func TestNormalizeStatement(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Paris is the capital of France.", "paris is the capital of france"},
		{"  PARIS   is the\tcapital of France!!", "paris is the capital of france"},
		{`"Paris is the capital of France."`, "paris is the capital of france"},
		{"“Paris is the capital of France”.", "paris is the capital of france"},
		{"Is Paris big?", "is paris big"},
		{"3.14 is pi.", "3.14 is pi"},
		{"...", ""},
	}
	for _, tt := range tests {
		if got := NormalizeStatement(tt.in); got != tt.want {
			t.Errorf("NormalizeStatement(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseKnowledgeBase(t *testing.T) {
	kb, err := ParseKnowledgeBase(strings.NewReader(`# comment
   # indented comment

TRUE: Paris is the capital of France.
false:The Sun orbits the Earth
true: Paris is the capital of France
true: C# is a programming language.
`))
	if err != nil {
		t.Fatal(err)
	}
	if kb.Len() != 3 {
		t.Fatalf("Len = %d, want 3", kb.Len())
	}
	ctx := context.Background()
	tests := []struct {
		claim string
		want  Verdict
	}{
		{"Paris is the capital of France.", True},
		{"paris is the capital of france", True},
		{"The Sun orbits the Earth.", False},
		{"C# is a programming language.", True},
		{"Berlin is the capital of Germany.", Abstain},
		{"Paris is the capital of France and more.", Abstain},
	}
	for _, tt := range tests {
		if got := kb.Verify(ctx, Claim{Text: tt.claim}); got != tt.want {
			t.Errorf("Verify(%q) = %v, want %v", tt.claim, got, tt.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := kb.Verify(cctx, Claim{Text: "Paris is the capital of France."}); got != Abstain {
		t.Fatalf("Verify after cancel = %v, want abstain", got)
	}
}

func TestParseKnowledgeBaseErrors(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantErr  error
		wantLine string
	}{
		{"missing label", "# ok\nParis is the capital of France.\n", ErrKBSyntax, "line 2"},
		{"unknown label", "maybe: Paris is big.\n", ErrKBSyntax, "line 1"},
		{"empty statement", "\n\ntrue:  ...\n", ErrKBSyntax, "line 3"},
		{"conflict", "true: The Sun orbits the Earth.\nfalse: the sun orbits the earth\n", ErrKBConflict, "line 2"},
		{"line too long", "true: " + strings.Repeat("a", MaxKBLine) + "\n", nil, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKnowledgeBase(strings.NewReader(tt.input))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantLine) {
				t.Fatalf("err %q does not name %s", err, tt.wantLine)
			}
		})
	}
}

func TestLoadKnowledgeBase(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.kb")
	if err := os.WriteFile(good, []byte("true: Ice is cold.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kb, err := LoadKnowledgeBase(good)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := kb.Lookup("ice is cold"); !ok || v != True {
		t.Fatalf("Lookup = %v, %v", v, ok)
	}
	bad := filepath.Join(dir, "bad.kb")
	if err := os.WriteFile(bad, []byte("true: Ice is cold.\nfalse: Ice is cold.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKnowledgeBase(bad); !errors.Is(err, ErrKBConflict) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v, want ErrKBConflict naming the file", err)
	}
	if _, err := LoadKnowledgeBase(filepath.Join(dir, "missing.kb")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
}

func TestNormalizeTypographicQuotes(t *testing.T) {
	if a, b := NormalizeStatement("The Earth’s core is hot."), NormalizeStatement("The Earth's core is hot."); a != b {
		t.Fatalf("%q != %q", a, b)
	}
}
