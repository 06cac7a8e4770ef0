package claims

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the arithmetic checker. Longer claims, longer numbers or deeper
// nesting are not judged (Abstain), which keeps every evaluation small.
const (
	MaxArithmeticLen    = 256 // bytes of claim text
	maxArithmeticDigits = 64  // characters of one number
	maxArithmeticDepth  = 64  // nested parentheses and unary signs
)

// Arithmetic judges claims that state the value of an arithmetic
// expression: "<expr> = <expr>", "<expr> equals <expr>", "<expr> is equal to
// <expr>" or "<expr> is <expr>", and their negations "≠", "!=", "is not",
// "does not equal", "is not equal to". An expression has integers and
// decimals (1,000 thousands separators allowed), + - − * × · / ÷,
// parentheses and unary signs. Evaluation is exact (rational numbers), so
// "0.1 + 0.2 = 0.3" is true. A trailing period or exclamation mark is
// ignored.
//
// It abstains on anything else: claims that are not arithmetic, division by
// zero, claims longer than MaxArithmeticLen bytes. It never panics.
type Arithmetic struct{}

var _ Verifier = Arithmetic{}

// Name implements Verifier.
func (Arithmetic) Name() string { return BackendArithmetic }

// Verify implements Verifier.
func (Arithmetic) Verify(ctx context.Context, c Claim) Verdict {
	if ctx.Err() != nil {
		return Abstain
	}
	return JudgeArithmetic(c.Text)
}

// Relations in the order they are looked for. Word relations need spaces
// around them.
var wordRelations = []struct {
	word   string
	negate bool
}{
	{" is not equal to ", true},
	{" does not equal ", true},
	{" is equal to ", false},
	{" equals ", false},
	{" is not ", true},
	{" is ", false},
}

// JudgeArithmetic is the verdict of the Arithmetic verifier on text.
func JudgeArithmetic(text string) Verdict {
	if len(text) > MaxArithmeticLen {
		return Abstain
	}
	// Only sentence punctuation is dropped. A "!" after a digit or a
	// bracket would be a factorial, which this checker does not evaluate:
	// it abstains rather than read "5 + 5!" as "5 + 5".
	s := strings.TrimRight(strings.TrimSpace(text), ". ")
	if t, found := strings.CutSuffix(s, "!"); found {
		if t = strings.TrimRight(t, " "); t == "" || strings.ContainsAny(t[len(t)-1:], "0123456789)") {
			return Abstain
		}
		s = strings.TrimRight(t, ". ")
	}
	left, right, negate, ok := splitRelation(s)
	if !ok {
		return Abstain
	}
	a, err := evalExpr(left)
	if err != nil {
		return Abstain
	}
	b, err := evalExpr(right)
	if err != nil {
		return Abstain
	}
	if (a.cmp(b) == 0) != negate {
		return True
	}
	return False
}

// splitRelation finds the one relation of s.
func splitRelation(s string) (left, right string, negate, ok bool) {
	s = strings.ReplaceAll(s, "==", "=")
	s = strings.ReplaceAll(s, "!=", "≠")
	eq, ne := strings.Count(s, "="), strings.Count(s, "≠")
	switch {
	case eq+ne > 1:
		return "", "", false, false
	case eq == 1:
		l, r, _ := strings.Cut(s, "=")
		return l, r, false, true
	case ne == 1:
		l, r, _ := strings.Cut(s, "≠")
		return l, r, true, true
	}
	lower := strings.ToLower(s)
	for _, rel := range wordRelations {
		if i := strings.Index(lower, rel.word); i >= 0 {
			// Lower-casing keeps byte offsets for the ASCII text that can
			// parse as an expression; anything else fails to parse.
			if len(lower) != len(s) {
				return "", "", false, false
			}
			return s[:i], s[i+len(rel.word):], rel.negate, true
		}
	}
	return "", "", false, false
}

var (
	errSyntax  = errors.New("arithmetic: syntax error")
	errDivZero = errors.New("arithmetic: division by zero")
	errBounds  = errors.New("arithmetic: too large")
)

// exprParser is a recursive-descent parser over the runes of an expression:
//
//	expr    = term { ("+" | "-") term }
//	term    = unary { ("*" | "/") unary }
//	unary   = ("+" | "-") unary | primary
//	primary = number | "(" expr ")"
//
// Its values are nums: int64 while they are integers that fit, rationals
// otherwise. exact makes every number a rational from the start (the
// reference the tests hold the int64 path to).
type exprParser struct {
	s     string
	pos   int
	depth int
	exact bool
}

func evalExpr(s string) (num, error) { return (&exprParser{s: s}).eval() }

func (p *exprParser) eval() (num, error) {
	v, err := p.expr()
	if err != nil {
		return num{}, err
	}
	if p.peek() != 0 {
		return num{}, errSyntax
	}
	return v, nil
}

// num is an exact value: i while r is nil (an integer that fits an
// int64), else r. Most claims are small integers, evaluated without a
// big.Rat; an operation whose result would not fit, a division that is
// not exact, or a decimal makes a rational.
type num struct {
	i int64
	r *big.Rat
}

func (a num) rat() *big.Rat {
	if a.r != nil {
		return a.r
	}
	return new(big.Rat).SetInt64(a.i)
}

func (a num) sign() int {
	if a.r != nil {
		return a.r.Sign()
	}
	return cmpInt(a.i, 0)
}

func (a num) cmp(b num) int {
	if a.r == nil && b.r == nil {
		return cmpInt(a.i, b.i)
	}
	return a.rat().Cmp(b.rat())
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// op applies one of + - * / to a and b (b not zero for /): in int64 when
// both are and the result is an integer that fits, else in rationals.
func op(o rune, a, b num) num {
	if a.r == nil && b.r == nil {
		if v, ok := opInt(o, a.i, b.i); ok {
			return num{i: v}
		}
	}
	x, y := a.rat(), b.rat()
	z := new(big.Rat)
	switch o {
	case '+':
		z.Add(x, y)
	case '-':
		z.Sub(x, y)
	case '*':
		z.Mul(x, y)
	default:
		z.Quo(x, y)
	}
	return num{r: z}
}

// opInt is op in int64; ok is false when the result does not fit or is
// not an integer.
func opInt(o rune, v, w int64) (int64, bool) {
	switch o {
	case '+':
		if (w > 0 && v > math.MaxInt64-w) || (w < 0 && v < math.MinInt64-w) {
			return 0, false
		}
		return v + w, true
	case '-':
		if (w < 0 && v > math.MaxInt64+w) || (w > 0 && v < math.MinInt64+w) {
			return 0, false
		}
		return v - w, true
	case '*':
		if v == 0 || w == 0 {
			return 0, true
		}
		if r := v * w; r/w == v && !(v == -1 && w == math.MinInt64) && !(w == -1 && v == math.MinInt64) {
			return r, true
		}
		return 0, false
	}
	if w == 0 || v%w != 0 || (v == math.MinInt64 && w == -1) {
		return 0, false
	}
	return v / w, true
}

// peek skips spaces and returns the next rune in canonical form (− as -,
// × and · as *, ÷ as /), or 0 at the end.
func (p *exprParser) peek() rune {
	for p.pos < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.pos:])
		if !unicode.IsSpace(r) {
			switch r {
			case '−':
				return '-'
			case '×', '·':
				return '*'
			case '÷':
				return '/'
			}
			return r
		}
		p.pos += size
	}
	return 0
}

func (p *exprParser) next() {
	_, size := utf8.DecodeRuneInString(p.s[p.pos:])
	p.pos += size
}

func (p *exprParser) expr() (num, error) {
	v, err := p.term()
	if err != nil {
		return num{}, err
	}
	for {
		o := p.peek()
		if o != '+' && o != '-' {
			return v, nil
		}
		p.next()
		w, err := p.term()
		if err != nil {
			return num{}, err
		}
		v = op(o, v, w)
	}
}

func (p *exprParser) term() (num, error) {
	v, err := p.unary()
	if err != nil {
		return num{}, err
	}
	for {
		o := p.peek()
		if o != '*' && o != '/' {
			return v, nil
		}
		p.next()
		w, err := p.unary()
		if err != nil {
			return num{}, err
		}
		if o == '/' && w.sign() == 0 {
			return num{}, errDivZero
		}
		v = op(o, v, w)
	}
}

func (p *exprParser) unary() (num, error) {
	if p.depth++; p.depth > maxArithmeticDepth {
		return num{}, errBounds
	}
	defer func() { p.depth-- }()
	switch p.peek() {
	case '-':
		p.next()
		v, err := p.unary()
		if err != nil {
			return num{}, err
		}
		return op('-', num{}, v), nil
	case '+':
		p.next()
		return p.unary()
	}
	return p.primary()
}

func (p *exprParser) primary() (num, error) {
	r := p.peek()
	if r == '(' {
		p.next()
		v, err := p.expr()
		if err != nil {
			return num{}, err
		}
		if p.peek() != ')' {
			return num{}, errSyntax
		}
		p.next()
		return v, nil
	}
	if r < '0' || r > '9' {
		return num{}, errSyntax
	}
	return p.number()
}

// number reads digits with optional comma thousands groups (1,000,000) and
// an optional decimal fraction (3.14).
func (p *exprParser) number() (num, error) {
	start := p.pos
	plain := true // digits only
	digits := func() int {
		n := 0
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	lead := digits()
	for lead <= 3 && p.pos+3 < len(p.s) && p.s[p.pos] == ',' && isDigits(p.s[p.pos+1:p.pos+4]) &&
		(p.pos+4 == len(p.s) || p.s[p.pos+4] < '0' || p.s[p.pos+4] > '9') {
		p.pos++
		digits()
		plain = false
	}
	if p.pos+1 < len(p.s) && p.s[p.pos] == '.' && p.s[p.pos+1] >= '0' && p.s[p.pos+1] <= '9' {
		p.pos++
		digits()
		plain = false
	}
	if p.pos-start > maxArithmeticDigits {
		return num{}, errBounds
	}
	if plain && !p.exact && p.pos-start <= 18 {
		// Fits an int64 (at most 999,999,999,999,999,999).
		var v int64
		for i := start; i < p.pos; i++ {
			v = v*10 + int64(p.s[i]-'0')
		}
		return num{i: v}, nil
	}
	v, ok := new(big.Rat).SetString(strings.ReplaceAll(p.s[start:p.pos], ",", ""))
	if !ok {
		return num{}, errSyntax
	}
	return num{r: v}, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
