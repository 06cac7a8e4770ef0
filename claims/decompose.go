package claims

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxClaims bounds the number of claims one output may decompose into. It
// equals the job limit of the consensus package.
const MaxClaims = 256

var (
	// ErrEmpty is returned when an output holds no claim at all.
	ErrEmpty = errors.New("claims: output has no claims")
	// ErrTooManyClaims is returned when an output holds more than MaxClaims claims.
	ErrTooManyClaims = errors.New("claims: too many claims")
)

// Decomposer splits an output into ordered atomic claims.
type Decomposer interface {
	Decompose(ctx context.Context, output string) ([]Claim, error)
}

// RuleDecomposer is the deterministic, rule-based Decomposer described in
// the package documentation. Its zero value is ready to use.
type RuleDecomposer struct{}

var _ Decomposer = RuleDecomposer{}

// Decompose returns the claims of output. It fails with ErrEmpty when the
// output holds no claim and with ErrTooManyClaims when it holds more than
// MaxClaims.
func (RuleDecomposer) Decompose(ctx context.Context, output string) ([]Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("decompose: %w", err)
	}
	texts := decomposeTexts(output)
	switch {
	case len(texts) == 0:
		return nil, ErrEmpty
	case len(texts) > MaxClaims:
		return nil, fmt.Errorf("%w: %d claims, limit %d", ErrTooManyClaims, len(texts), MaxClaims)
	}
	return FromTexts(texts), nil
}

// Decompose splits output into all of its claims with the rules of
// RuleDecomposer, without any limit on their number. An output without any
// claim gives an empty slice.
func Decompose(output string) []Claim {
	return FromTexts(decomposeTexts(output))
}

// decomposeTexts runs the pipeline: blocks (paragraphs, list items,
// headings), then sentences, then independent clauses, then the canonical
// text form.
func decomposeTexts(output string) []string {
	var out []string
	for _, block := range blocks(sanitize(output)) {
		for _, sent := range sentences(block) {
			for i, cl := range clauses(sent) {
				if t, ok := canonical(cl, i > 0); ok {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// sanitize makes the text valid UTF-8, unifies line breaks and turns every
// other control character into a space.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\r', r == '\u2028', r == '\u2029':
			return '\n'
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return ' '
		}
		return r
	}, s)
}

var (
	listMarker = regexp.MustCompile(`^(?:[-*+•‣◦▪]|\(?[0-9]{1,3}[.)]|\(?[a-z]\))(?:\s+|$)`)
	heading    = regexp.MustCompile(`^#{1,6}(?:\s+|$)`)
	quoteLead  = regexp.MustCompile(`^(?:>\s*)+`)
)

// blocks splits text into paragraphs, list items and headings, joining
// soft-wrapped lines.
func blocks(text string) []string {
	var (
		out  []string
		cur  []string
		last string // previous line of cur
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, " "))
			cur, last = nil, ""
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(quoteLead.ReplaceAllString(strings.TrimSpace(line), ""))
		switch {
		case line == "":
			flush()
		case heading.MatchString(line):
			flush()
			cur = []string{strings.TrimSpace(heading.ReplaceAllString(line, ""))}
			flush()
		case listMarker.MatchString(line):
			flush()
			cur = []string{strings.TrimSpace(listMarker.ReplaceAllString(line, ""))}
			last = cur[0]
		case len(cur) > 0 && continues(last, line):
			cur = append(cur, line)
			last = line
		default:
			flush()
			cur = []string{line}
			last = line
		}
	}
	flush()
	return out
}

// continues reports whether next is a soft-wrapped continuation of prev:
// prev does not end a sentence and either next starts in lower case or prev
// ends with a comma or a word that cannot end a sentence.
func continues(prev, next string) bool {
	if prev == "" {
		return false
	}
	lr, _ := utf8.DecodeLastRuneInString(prev)
	if isTerminal(lr) || lr == ':' {
		return false
	}
	fr, _ := utf8.DecodeRuneInString(next)
	if unicode.IsLower(fr) || lr == ',' {
		return true
	}
	words := strings.Fields(prev)
	w := strings.ToLower(words[len(words)-1])
	return functionWords[w] || articles[w]
}

func isTerminal(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '…' }

// isCloser reports closing quotes and brackets that may follow terminal
// punctuation and still belong to the sentence.
func isCloser(r rune) bool {
	switch r {
	case '"', '\'', '”', '’', '»', ')', ']', '}':
		return true
	}
	return false
}

// nesting tracks quotes and brackets. A kind of quote or bracket is only
// honoured when it is balanced in the text at hand, so that one stray quote
// cannot swallow the rest of an output.
type nesting struct {
	straight, curly, paren, square  bool // honoured kinds
	inStraight                      bool
	curlyDepth, parenDepth, sqDepth int
}

func newNesting(s string) *nesting {
	return &nesting{
		straight: strings.Count(s, `"`)%2 == 0,
		curly:    balanced(s, '“', '”'),
		paren:    balanced(s, '(', ')'),
		square:   balanced(s, '[', ']'),
	}
}

func balanced(s string, open, close rune) bool {
	depth := 0
	for _, r := range s {
		switch r {
		case open:
			depth++
		case close:
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// step updates the nesting with r and reports whether r closed a quote or
// bracket, returning to the top level.
func (n *nesting) step(r rune) (closedToTop bool) {
	before := n.depth()
	switch {
	case r == '"' && n.straight:
		n.inStraight = !n.inStraight
	case r == '“' && n.curly:
		n.curlyDepth++
	case r == '”' && n.curly && n.curlyDepth > 0:
		n.curlyDepth--
	case r == '(' && n.paren:
		n.parenDepth++
	case r == ')' && n.paren && n.parenDepth > 0:
		n.parenDepth--
	case r == '[' && n.square:
		n.sqDepth++
	case r == ']' && n.square && n.sqDepth > 0:
		n.sqDepth--
	}
	return before > 0 && n.depth() == 0
}

func (n *nesting) depth() int {
	d := n.curlyDepth + n.parenDepth + n.sqDepth
	if n.inStraight {
		d++
	}
	return d
}

// sentences splits a block into sentences at terminal punctuation outside
// quotes and brackets.
func sentences(block string) []string {
	rs := []rune(block)
	nest := newNesting(block)
	var out []string
	start := 0
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if nest.step(r) {
			// A quote or bracket that closes right after terminal
			// punctuation may end the sentence: He said "Stop." Then ...
			k := i
			for k > start && isTerminal(rs[k-1]) {
				k--
			}
			if k < i && sentenceEnds(rs, k, i, i+1) {
				out = append(out, string(rs[start:i+1]))
				start = i + 1
			}
			continue
		}
		if !isTerminal(r) || nest.depth() > 0 {
			continue
		}
		j := i
		for j < len(rs) && isTerminal(rs[j]) {
			j++
		}
		e := j
		for e < len(rs) && isCloser(rs[e]) && !opens(nest, rs[e]) {
			e++
		}
		if sentenceEnds(rs, i, j, e) {
			out = append(out, string(rs[start:e]))
			start = e
		}
		i = j - 1
	}
	if start < len(rs) {
		out = append(out, string(rs[start:]))
	}
	return out
}

// opens reports whether r would open an honoured quote or bracket at the
// top level, so it cannot be a closer of the current sentence.
func opens(n *nesting, r rune) bool {
	switch r {
	case '"':
		return n.straight
	case ')':
		return n.paren
	case ']':
		return n.square
	}
	return false
}

// Abbreviations after which a period never ends a sentence.
var abbrevNever = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true,
	"mt": true, "ft": true, "jr": true, "sr": true, "vs": true, "v": true,
	"cf": true, "approx": true, "ca": true, "gen": true, "gov": true,
	"sen": true, "rep": true, "capt": true, "col": true, "lt": true,
	"sgt": true, "rev": true, "hon": true, "est": true, "dept": true,
	"univ": true, "e.g": true, "i.e": true, "viz": true, "al": true,
}

// Abbreviations after which a period does not end a sentence when a number follows.
var abbrevBeforeNumber = map[string]bool{
	"no": true, "nos": true, "vol": true, "fig": true, "p": true, "pp": true,
	"art": true, "sec": true, "ch": true, "eq": true, "op": true,
}

// sentenceEnds decides whether the terminal run rs[k:j], followed by
// closers up to e, ends a sentence.
func sentenceEnds(rs []rune, k, j, e int) bool {
	if e < len(rs) && !unicode.IsSpace(rs[e]) {
		return false // 3.14, example.com, "e.g.,"
	}
	n := e
	for n < len(rs) && unicode.IsSpace(rs[n]) {
		n++
	}
	if n == len(rs) {
		return true
	}
	next := rs[n]
	dots := 0
	for _, r := range rs[k:j] {
		switch r {
		case '!', '?':
			return true
		case '.':
			dots++
		case '…':
			dots += 3
		}
	}
	if dots > 1 { // ellipsis: ends a sentence only before a capital letter
		return unicode.IsUpper(next)
	}
	if unicode.IsLower(next) {
		return false
	}
	w := wordBefore(rs, k)
	lw := strings.ToLower(w)
	switch {
	case abbrevNever[lw]:
		return false
	case utf8.RuneCountInString(w) == 1 && unicode.IsUpper([]rune(w)[0]):
		return false // an initial: J. R. R. Tolkien
	case isDottedAcronym(w):
		return false // U.S., e.g., a.m.
	case abbrevBeforeNumber[lw] && unicode.IsDigit(next):
		return false
	}
	return true
}

// wordBefore returns the run of letters and inner periods ending at rs[k-1].
func wordBefore(rs []rune, k int) string {
	i := k
	for i > 0 && (unicode.IsLetter(rs[i-1]) || rs[i-1] == '.') {
		i--
	}
	return strings.Trim(string(rs[i:k]), ".")
}

// isDottedAcronym matches single letters joined by periods: U.S, e.g, a.m.
func isDottedAcronym(w string) bool {
	parts := strings.Split(w, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if utf8.RuneCountInString(p) != 1 || !unicode.IsLetter([]rune(p)[0]) {
			return false
		}
	}
	return true
}

// span is a byte range of a sentence.
type span struct{ a, b int }

// Separator kinds, tried in this order: semicolons, then the conjunctions
// "and" and "but", then commas.
const (
	sepSemicolon = iota
	sepConjunction
	sepComma
	sepKinds
)

// clauses splits a sentence into independent clauses. At each separator
// kind the sentence is cut at every top-level separator and the parts are
// regrouped so that every group is an independent clause: a part that is
// not one is joined to the group before it (or, for the first part, to the
// next). Each group is then split again at the next separator kind.
func clauses(sent string) []string {
	top := topLevel(sent)
	spans := splitSpan(sent, top, span{0, len(sent)}, sepSemicolon)
	out := make([]string, len(spans))
	for i, sp := range spans {
		out[i] = sent[sp.a:sp.b]
	}
	return out
}

// topLevel marks the bytes of s that are outside quotes and brackets.
func topLevel(s string) []bool {
	top := make([]bool, len(s))
	nest := newNesting(s)
	for i, r := range s {
		wasTop := nest.depth() == 0
		nest.step(r)
		top[i] = wasTop && nest.depth() == 0
	}
	return top
}

func splitSpan(s string, top []bool, sp span, kind int) []span {
	if kind == sepKinds {
		return []span{sp}
	}
	seps := separators(s, top, sp, kind)
	if len(seps) == 0 {
		return splitSpan(s, top, sp, kind+1)
	}
	parts := make([]span, 0, len(seps)+1)
	a := sp.a
	for _, sep := range seps {
		parts = append(parts, span{a, sep.a})
		a = sep.b
	}
	parts = append(parts, span{a, sp.b})

	minWords := 1
	if kind == sepComma {
		minWords = 3 // "Paris is big, I think" stays whole
	}
	var groups []span
	cur := parts[0]
	curScan := scanClause(s[cur.a:cur.b])
	for _, p := range parts[1:] {
		pScan := scanClause(s[p.a:p.b])
		if curScan.independent(minWords) && pScan.independent(minWords) {
			groups = append(groups, cur)
			cur, curScan = p, pScan
			continue
		}
		curScan.feed(s[cur.b:p.a]) // the separator
		curScan.feed(s[p.a:p.b])
		cur = span{cur.a, p.b}
	}
	groups = append(groups, cur)
	if len(groups) == 1 {
		return splitSpan(s, top, sp, kind+1)
	}
	var out []span
	for _, g := range groups {
		out = append(out, splitSpan(s, top, g, kind+1)...)
	}
	return out
}

// separators lists the top-level separators of one kind inside sp.
func separators(s string, top []bool, sp span, kind int) []span {
	var out []span
	for i := sp.a; i < sp.b; i++ {
		if !top[i] {
			continue
		}
		switch kind {
		case sepSemicolon:
			if s[i] == ';' {
				out = append(out, span{i, i + 1})
			}
		case sepComma:
			if s[i] == ',' && i+1 < sp.b && s[i+1] == ' ' {
				out = append(out, span{i, i + 1})
			}
		case sepConjunction:
			if s[i] != ' ' || i == sp.a {
				continue
			}
			rest := s[i+1 : sp.b]
			var n int
			switch {
			case strings.HasPrefix(rest, "and "):
				n = 3
			case strings.HasPrefix(rest, "but "):
				n = 3
			default:
				continue
			}
			a := i
			if a > sp.a && s[a-1] == ',' {
				a--
			}
			out = append(out, span{a, i + 1 + n})
			i += n
		}
	}
	return out
}

// canonical turns a clause into its canonical text: whitespace collapsed
// and trimmed, dangling separators removed, the first letter of a split-off
// clause capitalised and a period added when the clause lacks terminal
// punctuation. It reports false for a clause without any letter or digit.
func canonical(s string, splitOff bool) (string, bool) {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimRight(s, ",;: ")
	s = strings.TrimLeft(s, ",; ")
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		return "", false
	}
	if splitOff {
		r, size := utf8.DecodeRuneInString(s)
		if unicode.IsLower(r) {
			s = string(unicode.ToUpper(r)) + s[size:]
		}
	}
	if !endsSentence(s) {
		s += "."
	}
	return s, true
}

// endsSentence reports whether s ends with terminal punctuation, possibly
// followed by closing quotes or brackets.
func endsSentence(s string) bool {
	for s != "" {
		r, size := utf8.DecodeLastRuneInString(s)
		switch {
		case isTerminal(r):
			return true
		case isCloser(r):
			s = s[:len(s)-size]
		default:
			return false
		}
	}
	return false
}
