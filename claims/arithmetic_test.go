package claims

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestArithmetic(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Verdict
	}{
		{"product", "17 * 3 = 51.", True},
		{"wrong product", "17 * 3 = 52.", False},
		{"exact decimals", "0.1 + 0.2 = 0.3", True},
		{"decimal not float", "0.1 + 0.2 = 0.30000000000000004", False},
		{"precedence", "2 + 3 * 4 = 14", True},
		{"left associative minus", "10 - 4 - 3 = 3", True},
		{"left associative division", "100 / 10 / 5 = 2", True},
		{"parentheses", "(2 + 3) * 4 = 20", True},
		{"nested parentheses", "((1 + 2) * (3 + 4)) / 7 = 3", True},
		{"unary minus", "-3 + 5 = 2", True},
		{"double unary minus", "- -3 = 3", True},
		{"negative result", "7 - 8 = -1", True},
		{"unicode operators", "6 × 7 = 42", True},
		{"division sign", "84 ÷ 2 = 42", True},
		{"unicode minus", "5 − 7 = −2", True},
		{"exact fraction", "1 / 3 * 3 = 1", True},
		{"non-terminating decimal", "1 / 3 = 0.333", False},
		{"thousands separators", "1,000 * 1,000 = 1,000,000", True},
		{"compact", "2+2=4", True},
		{"double equals", "2 + 2 == 4", True},
		{"equals word", "12 equals 6 + 6", True},
		{"is word", "2 + 2 is 5.", False},
		{"is equal to", "9 / 3 is equal to 3", True},
		{"not equal sign", "2 + 2 ≠ 5", True},
		{"bang equals", "2 + 2 != 4", False},
		{"is not", "3 * 3 is not 10", True},
		{"does not equal", "3 * 3 does not equal 9", False},
		{"expressions both sides", "2 * 6 = 3 * 4", True},
		{"large exact integers", "123456789012345678901234567890 * 10 = 1234567890123456789012345678900", True},
		{"division by zero abstains", "1 / 0 = 0", Abstain},
		{"division by zero expression abstains", "5 / (2 - 2) = 1", Abstain},
		{"not arithmetic", "Paris is the capital of France.", Abstain},
		{"words before expression", "The answer is 4.", Abstain},
		{"two relations", "2 + 2 = 4 = 4", Abstain},
		{"missing operand", "2 + = 4", Abstain},
		{"unbalanced parenthesis", "(2 + 2 = 4", Abstain},
		{"implicit multiplication", "2(3) = 6", Abstain},
		{"exponent not supported", "2 ^ 3 = 8", Abstain},
		{"scientific notation not supported", "1e3 = 1000", Abstain},
		{"empty sides", " = ", Abstain},
		{"bad thousands group", "1,00 + 1 = 101", Abstain},
		{"too long", strings.Repeat("1 + ", 70) + "1 = 71", Abstain},
		{"too deep", strings.Repeat("(", 70) + "1" + strings.Repeat(")", 70) + " = 1", Abstain},
		{"too many digits", strings.Repeat("9", 65) + " = 1", Abstain},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Arithmetic{}).Verify(ctx, Claim{Text: tt.text}); got != tt.want {
				t.Fatalf("Verify(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func FuzzArithmetic(f *testing.F) {
	for _, s := range []string{"17 * 3 = 51.", "0.1 + 0.2 = 0.3", "((1)) ÷ -(2) is not 1,000.5", "1 / 0 = 0", "- - - 1 = 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v := JudgeArithmetic(text)
		if !v.Valid() {
			t.Fatalf("invalid verdict %d", v)
		}
		if again := JudgeArithmetic(text); again != v {
			t.Fatalf("not deterministic: %v then %v", v, again)
		}
		if v == Abstain || !utf8.ValidString(text) || strings.ContainsAny(text, "≠!") {
			return
		}
		// Swapping the sides of an "=" never changes the verdict.
		if l, r, ok := strings.Cut(text, "="); ok && !strings.Contains(r, "=") {
			r = strings.TrimRight(strings.TrimSpace(r), ".! ")
			if got := JudgeArithmetic(r + " = " + l); got != v && len(r+" = "+l) <= MaxArithmeticLen {
				t.Fatalf("%q is %v but swapped is %v", text, v, got)
			}
		}
	})
}

// TestArithmeticFactorialAbstains: a "!" that would be a factorial is not
// sentence punctuation; the checker does not evaluate factorials and must
// not read "5 + 5!" as "5 + 5".
func TestArithmeticFactorialAbstains(t *testing.T) {
	for text, want := range map[string]Verdict{
		"10 = 5 + 5!":        Abstain,
		"120 = 5!":           Abstain,
		"3 = (1 + 2)!":       Abstain,
		"2 + 2 = 4!":         Abstain,
		"2 + 2 = 4.":         True,
		"2 + 2 equals four!": Abstain,
		"2 + 2 = 5.":         False,
	} {
		if got := JudgeArithmetic(text); got != want {
			t.Errorf("JudgeArithmetic(%q) = %s, want %s", text, got, want)
		}
	}
}

// evalExact is evalExpr with every number a rational: the reference.
func evalExact(s string) (num, error) { return (&exprParser{s: s, exact: true}).eval() }

// FuzzArithmeticInt: the int64 path never changes a value or an error:
// evalExpr and evalExact refuse the same expressions, with the same
// error, and agree on every value.
func FuzzArithmeticInt(f *testing.F) {
	for _, s := range []string{"17 * 3", "-(2 + 3) * 4", "9223372036854775807 + 1", "- -9223372036854775807 - 1",
		"3037000500 * 3037000500", "-3037000499 * 3037000499", "1,000 + 1", "2.5 * 2", "6 / 3", "7 / 2 * 2",
		"((((1))))", "2(3)", "1 2", "5 / (2 - 2)", "0 - 999999999999999999 * 9 - 999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := evalExpr(s)
		w, werr := evalExact(s)
		if err != werr {
			t.Fatalf("%q: error %v, exactly %v", s, err, werr)
		}
		if err == nil && v.cmp(w) != 0 {
			t.Fatalf("%q: %s, exactly %s", s, v.rat().RatString(), w.rat().RatString())
		}
	})
}

// TestArithmeticIntEdges: values stay int64 up to an overflow or an
// inexact division, a decimal or a thousands group makes a rational, and
// the value is the exact one either way.
func TestArithmeticIntEdges(t *testing.T) {
	for _, tt := range []struct {
		expr   string
		int64s bool
	}{
		{"9223372036854775806 + 1", false}, // 19 digits: read as a rational
		{"999999999999999999 * 9 + 1", true},
		{"999999999999999999 * 9 + 999999999999999999", false},
		{"999999999999999999 * 10", false},
		{"-999999999999999999 * 10", false},
		{"3037000499 * 3037000499", true},
		{"3037000500 * 3037000500", false},
		{"0 - 999999999999999999 * 9 - 1", true},
		{"0 - 999999999999999999 * 9 - 999999999999999999", false},
		{"6 / 3", true},
		{"7 / 2", false},
		{"7 / 2 * 2", false},
		{"1,000 + 1", false},
		{"2.5 * 2", false},
		{strings.Repeat("(", 63) + "1" + strings.Repeat(")", 63), true},
	} {
		v, err := evalExpr(tt.expr)
		w, werr := evalExact(tt.expr)
		if err != nil || werr != nil {
			t.Errorf("%q: %v, exactly %v", tt.expr, err, werr)
			continue
		}
		if got := v.r == nil; got != tt.int64s {
			t.Errorf("%q: held in int64 %v, want %v", tt.expr, got, tt.int64s)
		}
		if v.cmp(w) != 0 {
			t.Errorf("%q: %s, exactly %s", tt.expr, v.rat().RatString(), w.rat().RatString())
		}
	}
	// Either way the verdict is exact.
	for text, want := range map[string]Verdict{
		"999999999999999999 * 10 = 9999999999999999990":                     True,
		"3037000500 * 3037000500 = 9223372037000250000":                     True,
		"9223372036854775807 + 1 = 9223372036854775808":                     True,
		"999999999999999999 * 9 + 999999999999999999 = 9999999999999999990": True,
		"7 / 2 * 2 = 7": True,
		"4 * 5 = 21":    False,
		"4 * 5 ≠ 21":    True,
	} {
		if got := JudgeArithmetic(text); got != want {
			t.Errorf("JudgeArithmetic(%q) = %v, want %v", text, got, want)
		}
	}
}

// BenchmarkJudgeArithmetic: the claims of verity bench ("792 + 1 = 793.")
// and one with decimals, which are rationals.
func BenchmarkJudgeArithmetic(b *testing.B) {
	for _, text := range []string{"792 + 1 = 793.", "0.1 + 0.2 = 0.3"} {
		b.Run(text, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				JudgeArithmetic(text)
			}
		})
	}
}
