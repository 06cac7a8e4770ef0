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
	// Most claims are small integers: evaluated in int64, exactly, when
	// both sides allow it; everything else in rational numbers.
	if a, ok := evalInt(left); ok {
		if b, ok := evalInt(right); ok {
			if (a == b) != negate {
				return True
			}
			return False
		}
	}
	a, err := evalExpr(left)
	if err != nil {
		return Abstain
	}
	b, err := evalExpr(right)
	if err != nil {
		return Abstain
	}
	if (a.Cmp(b) == 0) != negate {
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
type exprParser struct {
	s     string
	pos   int
	depth int
}

func evalExpr(s string) (*big.Rat, error) {
	p := &exprParser{s: s}
	v, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.peek() != 0 {
		return nil, errSyntax
	}
	return v, nil
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

func (p *exprParser) expr() (*big.Rat, error) {
	v, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != '+' && op != '-' {
			return v, nil
		}
		p.next()
		w, err := p.term()
		if err != nil {
			return nil, err
		}
		if op == '+' {
			v.Add(v, w)
		} else {
			v.Sub(v, w)
		}
	}
}

func (p *exprParser) term() (*big.Rat, error) {
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != '*' && op != '/' {
			return v, nil
		}
		p.next()
		w, err := p.unary()
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v.Mul(v, w)
		} else {
			if w.Sign() == 0 {
				return nil, errDivZero
			}
			v.Quo(v, w)
		}
	}
}

func (p *exprParser) unary() (*big.Rat, error) {
	if p.depth++; p.depth > maxArithmeticDepth {
		return nil, errBounds
	}
	defer func() { p.depth-- }()
	switch p.peek() {
	case '-':
		p.next()
		v, err := p.unary()
		if err != nil {
			return nil, err
		}
		return v.Neg(v), nil
	case '+':
		p.next()
		return p.unary()
	}
	return p.primary()
}

func (p *exprParser) primary() (*big.Rat, error) {
	r := p.peek()
	if r == '(' {
		p.next()
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, errSyntax
		}
		p.next()
		return v, nil
	}
	if r < '0' || r > '9' {
		return nil, errSyntax
	}
	return p.number()
}

// number reads digits with optional comma thousands groups (1,000,000) and
// an optional decimal fraction (3.14).
func (p *exprParser) number() (*big.Rat, error) {
	start := p.pos
	var b strings.Builder
	digits := func() int {
		n := 0
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			b.WriteByte(p.s[p.pos])
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
	}
	if p.pos+1 < len(p.s) && p.s[p.pos] == '.' && p.s[p.pos+1] >= '0' && p.s[p.pos+1] <= '9' {
		b.WriteByte('.')
		p.pos++
		digits()
	}
	if p.pos-start > maxArithmeticDigits {
		return nil, errBounds
	}
	v, ok := new(big.Rat).SetString(b.String())
	if !ok {
		return nil, errSyntax
	}
	return v, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// intParser evaluates the expressions of exprParser's grammar that hold
// only integers without separators, + - * and parentheses, in int64. It
// gives up (ok false) on anything else, on an overflow and on what
// exprParser refuses, so that whatever it evaluates, exprParser evaluates
// to the same value; JudgeArithmetic then asks exprParser.
type intParser struct {
	exprParser
}

func evalInt(s string) (v int64, ok bool) {
	p := &intParser{exprParser{s: s}}
	v, ok = p.expr()
	return v, ok && p.peek() == 0
}

func (p *intParser) expr() (int64, bool) {
	v, ok := p.term()
	for ok {
		op := p.peek()
		if op != '+' && op != '-' {
			return v, true
		}
		p.next()
		var w int64
		if w, ok = p.term(); !ok {
			break
		}
		if op == '+' {
			v, ok = addInt(v, w)
		} else {
			v, ok = subInt(v, w)
		}
	}
	return 0, false
}

func (p *intParser) term() (int64, bool) {
	v, ok := p.unary()
	for ok {
		switch p.peek() {
		case '*':
		case '/':
			return 0, false // exact division is exprParser's
		default:
			return v, true
		}
		p.next()
		var w int64
		if w, ok = p.unary(); !ok {
			break
		}
		v, ok = mulInt(v, w)
	}
	return 0, false
}

func addInt(v, w int64) (int64, bool) {
	if (w > 0 && v > math.MaxInt64-w) || (w < 0 && v < math.MinInt64-w) {
		return 0, false
	}
	return v + w, true
}

func subInt(v, w int64) (int64, bool) {
	if (w < 0 && v > math.MaxInt64+w) || (w > 0 && v < math.MinInt64+w) {
		return 0, false
	}
	return v - w, true
}

func mulInt(v, w int64) (int64, bool) {
	if v == 0 || w == 0 {
		return 0, true
	}
	r := v * w
	if r/w != v || (v == -1 && w == math.MinInt64) || (w == -1 && v == math.MinInt64) {
		return 0, false
	}
	return r, true
}

func (p *intParser) unary() (int64, bool) {
	if p.depth++; p.depth > maxArithmeticDepth {
		return 0, false
	}
	defer func() { p.depth-- }()
	switch p.peek() {
	case '-':
		p.next()
		v, ok := p.unary()
		if !ok || v == math.MinInt64 {
			return 0, false
		}
		return -v, true
	case '+':
		p.next()
		return p.unary()
	}
	return p.primary()
}

func (p *intParser) primary() (int64, bool) {
	r := p.peek()
	if r == '(' {
		p.next()
		v, ok := p.expr()
		if !ok || p.peek() != ')' {
			return 0, false
		}
		p.next()
		return v, true
	}
	// A run of at most 18 digits, not followed by what would make it a
	// thousands group or a decimal (exprParser reads those).
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	n := p.pos - start
	if n == 0 || n > 18 || (p.pos < len(p.s) && (p.s[p.pos] == ',' || p.s[p.pos] == '.')) {
		return 0, false
	}
	var v int64
	for i := start; i < p.pos; i++ {
		v = v*10 + int64(p.s[i]-'0')
	}
	return v, true
}
