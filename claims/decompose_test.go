package claims

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecompose(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   []string
	}{
		{"empty output", "", nil},
		{"whitespace only", " \n\t \r\n ", nil},
		{"punctuation only", "--- ... ***", nil},
		{"single sentence", "Paris is the capital of France.", []string{"Paris is the capital of France."}},
		{"missing final period", "Paris is the capital of France", []string{"Paris is the capital of France."}},
		{"whitespace collapsed", "  Paris   is\tthe capital\u00a0of France.  ", []string{"Paris is the capital of France."}},
		{"two sentences", "Paris is the capital of France. Berlin is the capital of Germany.",
			[]string{"Paris is the capital of France.", "Berlin is the capital of Germany."}},
		{"question and exclamation", "Is Paris big? Yes! It is huge.",
			[]string{"Is Paris big?", "Yes!", "It is huge."}},
		{"and joins two clauses", "Paris is the capital of France and Berlin is the capital of Germany.",
			[]string{"Paris is the capital of France.", "Berlin is the capital of Germany."}},
		{"and with pronoun subject is capitalised", "Paris is the capital of France and the Seine flows through it.",
			[]string{"Paris is the capital of France.", "The Seine flows through it."}},
		{"comma before and", "Water boils at 100 degrees Celsius, and ice melts at 0 degrees Celsius.",
			[]string{"Water boils at 100 degrees Celsius.", "Ice melts at 0 degrees Celsius."}},
		{"but joins two clauses", "Sydney is the largest city in Australia but Canberra is the capital.",
			[]string{"Sydney is the largest city in Australia.", "Canberra is the capital."}},
		{"semicolon joins two clauses", "The Earth orbits the Sun; the Moon orbits the Earth.",
			[]string{"The Earth orbits the Sun.", "The Moon orbits the Earth."}},
		{"three clauses in a comma list", "Paris is in France, Berlin is in Germany, and Rome is in Italy.",
			[]string{"Paris is in France.", "Berlin is in Germany.", "Rome is in Italy."}},
		{"noun pair is not split", "Salt and pepper are common seasonings.", []string{"Salt and pepper are common seasonings."}},
		{"adjective and plural object is not split", "He likes red apples and green pears.", []string{"He likes red apples and green pears."}},
		{"compound subject first, clause after", "Cats and dogs are pets and cows are livestock.",
			[]string{"Cats and dogs are pets.", "Cows are livestock."}},
		{"object pair is not split", "He added salt and pepper.", []string{"He added salt and pepper."}},
		{"number range is not split", "The value is between 3 and 5.", []string{"The value is between 3 and 5."}},
		{"compound subject is not split", "Tom and Jerry are cats.", []string{"Tom and Jerry are cats."}},
		{"shared subject is not split", "The Earth is round and orbits the Sun.", []string{"The Earth is round and orbits the Sun."}},
		{"adverb after and is not a subject", "He was born in Paris and later moved to London.",
			[]string{"He was born in Paris and later moved to London."}},
		{"compound subject then second clause", "Tom and Jerry are cats and Rex is a dog.",
			[]string{"Tom and Jerry are cats.", "Rex is a dog."}},
		{"range then second clause", "The value is between 3 and 5 and the mean is 4.",
			[]string{"The value is between 3 and 5.", "The mean is 4."}},
		{"list of adjectives is not split", "The flag is red, white and blue.", []string{"The flag is red, white and blue."}},
		{"introductory phrase is not split", "In 1969, Apollo 11 landed on the Moon.", []string{"In 1969, Apollo 11 landed on the Moon."}},
		{"dependent clause is not split", "If it rains, the ground gets wet.", []string{"If it rains, the ground gets wet."}},
		{"appositive is not split", "Paris, the capital of France, is large.", []string{"Paris, the capital of France, is large."}},
		{"short comma tail is not split", "Paris is the capital of France, I think.", []string{"Paris is the capital of France, I think."}},
		{"decimal number", "Pi is approximately 3.14159. It is irrational.",
			[]string{"Pi is approximately 3.14159.", "It is irrational."}},
		{"thousands separators", "The city has 1,000,000 residents. The rate is 1.000,5 per year.",
			[]string{"The city has 1,000,000 residents.", "The rate is 1.000,5 per year."}},
		{"title abbreviations", "Dr. Smith met Mr. Jones on St. Patrick's Day.", []string{"Dr. Smith met Mr. Jones on St. Patrick's Day."}},
		{"dotted acronym", "The U.S. Army was founded in 1775.", []string{"The U.S. Army was founded in 1775."}},
		{"e.g. and i.e. inside a sentence", "Some metals, e.g. iron, rust; noble metals, i.e. gold and platinum, do not.",
			[]string{"Some metals, e.g. iron, rust; noble metals, i.e. gold and platinum, do not."}},
		{"etc. ends a sentence before a capital", "He sells apples, pears, etc. The shop is open daily.",
			[]string{"He sells apples, pears, etc.", "The shop is open daily."}},
		{"vs. is not an end", "The final was France vs. Croatia in 2018.", []string{"The final was France vs. Croatia in 2018."}},
		{"initials", "J. R. R. Tolkien wrote The Hobbit.", []string{"J. R. R. Tolkien wrote The Hobbit."}},
		{"quoted sentences stay whole", `He said "Stop. Now."`, []string{`He said "Stop. Now."`}},
		{"quote ends a sentence", `He said "Stop." Then he left.`, []string{`He said "Stop."`, "Then he left."}},
		{"curly quotes", "She wrote “Go home. Rest.” It helped.", []string{"She wrote “Go home. Rest.”", "It helped."}},
		{"unbalanced quote is ignored", `He said "Stop. Then he left.`, []string{`He said "Stop.`, "Then he left."}},
		{"parentheses", "The Nile (the longest river. Some disagree.) flows north.",
			[]string{"The Nile (the longest river. Some disagree.) flows north."}},
		{"ellipsis before lower case", "The count went 1, 2, 3... and so on.", []string{"The count went 1, 2, 3... and so on."}},
		{"ellipsis before capital", "He paused... Then he spoke.", []string{"He paused...", "Then he spoke."}},
		{"unicode ellipsis", "Wait… Paris is the capital.", []string{"Wait…", "Paris is the capital."}},
		{"url", "See https://example.com/a.b?x=1 for details. It is free.",
			[]string{"See https://example.com/a.b?x=1 for details.", "It is free."}},
		{"url at the end", "The site is example.com. It is old.", []string{"The site is example.com.", "It is old."}},
		{"email", "Write to jane.doe@example.org for help.", []string{"Write to jane.doe@example.org for help."}},
		{"arithmetic", "17 * 3 = 51.", []string{"17 * 3 = 51."}},
		{"arithmetic without period", "2 + 2 = 4", []string{"2 + 2 = 4."}},
		{"two equations", "2 + 2 = 4 and 3 * 3 = 9.", []string{"2 + 2 = 4.", "3 * 3 = 9."}},
		{"compact equations", "2+2=4 and 3*3=9.", []string{"2+2=4.", "3*3=9."}},
		{"dash bullets", "- Paris is the capital of France\n- Berlin is the capital of Germany",
			[]string{"Paris is the capital of France.", "Berlin is the capital of Germany."}},
		{"star bullets", "* Tokyo is the capital of Japan.\n* The Earth orbits the Sun.",
			[]string{"Tokyo is the capital of Japan.", "The Earth orbits the Sun."}},
		{"numbered list", "1. Light travels faster than sound.\n2. The Pacific is the largest ocean on Earth.\n10) Water is wet",
			[]string{"Light travels faster than sound.", "The Pacific is the largest ocean on Earth.", "Water is wet."}},
		{"lead-in line and list", "Facts:\n- Paris is in France.\n- Rome is in Italy.",
			[]string{"Facts.", "Paris is in France.", "Rome is in Italy."}},
		{"list item wraps onto next line", "- The Amazon is a river\n  in South America.\n- It is long.",
			[]string{"The Amazon is a river in South America.", "It is long."}},
		{"heading", "# Answer\nParis is the capital of France.", []string{"Answer.", "Paris is the capital of France."}},
		{"lines without punctuation", "Paris is the capital of France\nBerlin is the capital of Germany",
			[]string{"Paris is the capital of France.", "Berlin is the capital of Germany."}},
		{"soft-wrapped paragraph", "Mount Everest is the highest\nmountain on Earth. It is in\nthe Himalayas.",
			[]string{"Mount Everest is the highest mountain on Earth.", "It is in the Himalayas."}},
		{"paragraphs", "Paris is in France.\n\nRome is in Italy.", []string{"Paris is in France.", "Rome is in Italy."}},
		{"crlf line endings", "Paris is in France.\r\nRome is in Italy.\r\n", []string{"Paris is in France.", "Rome is in Italy."}},
		{"no. before a number", "He lives at No. 10 Downing Street.", []string{"He lives at No. 10 Downing Street."}},
		{"lower case after period", "The temp. was high today.", []string{"The temp. was high today."}},
		{"contraction subject", "It's cold and it's raining.", []string{"It's cold.", "It's raining."}},
		{"invalid utf-8 is replaced", "Paris \xff is big.", []string{"Paris \uFFFD is big."}},
		{"control characters are spaces", "Paris\x00is\x07big.", []string{"Paris is big."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decompose(tt.output)
			texts := make([]string, len(got))
			for i, c := range got {
				texts[i] = c.Text
			}
			if !slices.Equal(texts, tt.want) {
				t.Fatalf("Decompose(%q)\n got %q\nwant %q", tt.output, texts, tt.want)
			}
			checkClaims(t, got)
		})
	}
}

// checkClaims asserts the invariants every decomposition keeps.
func checkClaims(t *testing.T, cs []Claim) {
	t.Helper()
	for i, c := range cs {
		if c.Index != uint32(i) {
			t.Fatalf("claim %d has index %d", i, c.Index)
		}
		if c.Text == "" || !utf8.ValidString(c.Text) {
			t.Fatalf("claim %d text %q is empty or invalid UTF-8", i, c.Text)
		}
		if c.Text != strings.TrimSpace(c.Text) || strings.Contains(c.Text, "  ") || strings.ContainsAny(c.Text, "\n\r\t") {
			t.Fatalf("claim %d text %q is not whitespace-canonical", i, c.Text)
		}
		if c.Hash != HashText(c.Text) {
			t.Fatalf("claim %d hash does not match its text", i)
		}
	}
}

func TestRuleDecomposerLimits(t *testing.T) {
	ctx := context.Background()
	var d RuleDecomposer
	tests := []struct {
		name    string
		output  string
		wantN   int
		wantErr error
	}{
		{"empty output", "", 0, ErrEmpty},
		{"punctuation only", "...", 0, ErrEmpty},
		{"exactly the limit", strings.Repeat("Water is wet. ", MaxClaims), MaxClaims, nil},
		{"one over the limit", strings.Repeat("Water is wet. ", MaxClaims+1), 0, ErrTooManyClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decompose(ctx, tt.output)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d claims, want %d", len(got), tt.wantN)
			}
		})
	}
	if n := len(Decompose(strings.Repeat("Water is wet. ", MaxClaims+1))); n != MaxClaims+1 {
		t.Fatalf("package Decompose returned %d claims, want all %d", n, MaxClaims+1)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Decompose(cctx, "Water is wet."); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v", err)
	}
}

func TestRuleDecomposerMatchesDecompose(t *testing.T) {
	out := "Paris is the capital of France and the Seine flows through it. 17 * 3 = 51."
	got, err := RuleDecomposer{}.Decompose(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, Decompose(out)) {
		t.Fatalf("RuleDecomposer and Decompose disagree: %v vs %v", got, Decompose(out))
	}
	if len(got) != 3 {
		t.Fatalf("got %d claims, want 3", len(got))
	}
}

// TestDecomposeLargeSeparatorRuns guards against quadratic regrouping: long
// runs of separators without any verb used to rescan the growing clause.
func TestDecomposeLargeSeparatorRuns(t *testing.T) {
	for _, s := range []string{strings.Repeat("a, ", 30000), strings.Repeat("x and ", 20000), strings.Repeat("a; ", 30000)} {
		if got := Decompose(s); len(got) != 1 {
			t.Fatalf("got %d claims, want 1", len(got))
		}
	}
}

func FuzzDecompose(f *testing.F) {
	for _, s := range []string{
		"Paris is the capital of France and Berlin is the capital of Germany.",
		`He said "Stop. Now." Then he left.`,
		"- a\n* b\n1. c",
		"3.14 and 1,000,000 and e.g. U.S. Dr. Smith...",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, output string) {
		got := Decompose(output)
		if again := Decompose(output); !slices.Equal(got, again) {
			t.Fatalf("Decompose(%q) is not deterministic", output)
		}
		checkClaims(t, got)
	})
}

// benchOutput is a typical answer of about 1 KB.
var benchOutput = strings.Repeat(`Paris is the capital of France and the Seine flows through it. `+
	`Water boils at 100 degrees Celsius at sea level, and ice melts at 0 degrees. `+
	`Dr. Smith said "Stop. Now." The U.S. population is about 335,000,000. `+
	"- The Earth orbits the Sun.\n- 17 * 3 = 51.\n", 4)

func BenchmarkDecompose(b *testing.B) {
	b.SetBytes(int64(len(benchOutput)))
	b.ReportAllocs()
	for b.Loop() {
		Decompose(benchOutput)
	}
}
