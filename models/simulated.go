package models

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"
)

// ErrNoAnswer is returned by SimulatedGenerator when no statement of its
// knowledge base matches the prompt.
var ErrNoAnswer = errors.New("models: no statement of the knowledge base matches the prompt")

// ErrNoStatements is returned for a simulated generator without any true statement.
var ErrNoStatements = errors.New("models: knowledge base has no true statement")

// Statement is one statement of a knowledge base and its truth.
type Statement struct {
	Text string
	True bool
}

// MaxAnswerSentences is the most sentences a SimulatedGenerator answers with.
const MaxAnswerSentences = 3

// Sentence is one sentence of a simulated answer.
type Sentence struct {
	Text string `json:"text"`
	// Source is the true statement the sentence answers with, or replaces
	// when it is a hallucination.
	Source string `json:"source"`
	// Hallucinated is set when Text is a wrong fact.
	Hallucinated bool `json:"hallucinated"`
	// Method says how a hallucination was made: "kb-false" (a false
	// statement of the knowledge base on the same subject), "number" (a
	// changed number), "entity" (a name swapped for another of the
	// knowledge base) or "negation". Empty for a true sentence.
	Method string `json:"method,omitempty"`
}

// SimulatedGenerator answers questions from a knowledge base and, at a set
// rate, states a wrong fact instead of a true one, so that a network
// verifying its answers has something real to catch.
//
// Matching: the prompt and every true statement are reduced to their
// content words (lower case, split at anything but letters and digits,
// common question and function words dropped, a plural "s" dropped from
// words longer than three letters). A statement's score is the number of
// distinct content words it shares with the prompt. The answer is the best
// scoring statement plus up to two more whose score is at least half the
// best, in order of score, then fewer content words, then knowledge base
// order. A prompt that shares no content word with any true statement gets
// ErrNoAnswer.
//
// Hallucination: sentence i of the answer to prompt is replaced when
//
//	u = first 8 bytes of keccak256("verity.simgen.v1" || u64 seed || u32 len(prompt) || prompt || u32 i) / 2^64
//
// is below the hallucination rate. The replacement is, in order of
// preference: the false statement of the knowledge base sharing the most
// content words (at least two) with the true one; the true one with its
// first number changed; the true one with its first name swapped for a name
// from another true statement (a name is a capitalised word that appears
// other than first in some true statement of the knowledge base); the true
// one negated ("not" after its first is, are, was, were, has, have, can or
// will, else "It is not true that ..."). Everything is a function of the
// seed and the prompt.
type SimulatedGenerator struct {
	truths  []fact
	falses  []fact
	names   []string // names in the true statements, in order of first use
	rate    float64
	seed    uint64
	nameTag string
}

type fact struct {
	text  string
	words []string // distinct content words
}

var _ Generator = (*SimulatedGenerator)(nil)

// NewSimulatedGenerator builds a generator over statements with the given
// hallucination rate in [0, 1] and seed.
func NewSimulatedGenerator(statements []Statement, rate float64, seed uint64) (*SimulatedGenerator, error) {
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		return nil, fmt.Errorf("%w: hallucination rate %v not in [0, 1]", ErrConfig, rate)
	}
	g := &SimulatedGenerator{rate: rate, seed: seed, nameTag: fmt.Sprintf("simulated(rate=%g,seed=%d)", rate, seed)}
	seenName := map[string]bool{}
	for _, s := range statements {
		text := strings.Join(strings.Fields(s.Text), " ")
		if text == "" {
			continue
		}
		f := fact{text: text, words: contentWords(text)}
		if !s.True {
			g.falses = append(g.falses, f)
			continue
		}
		g.truths = append(g.truths, f)
		for _, n := range innerNames(text) {
			if !seenName[n] {
				seenName[n] = true
				g.names = append(g.names, n)
			}
		}
	}
	if len(g.truths) == 0 {
		return nil, ErrNoStatements
	}
	return g, nil
}

// Name describes the generator and its parameters.
func (g *SimulatedGenerator) Name() string { return g.nameTag }

// Generate answers prompt with 1 to MaxAnswerSentences sentences.
func (g *SimulatedGenerator) Generate(ctx context.Context, prompt string) (string, error) {
	ss, err := g.GenerateSentences(ctx, prompt)
	if err != nil {
		return "", err
	}
	texts := make([]string, len(ss))
	for i, s := range ss {
		texts[i] = s.Text
	}
	return strings.Join(texts, " "), nil
}

// GenerateSentences is Generate that tells which sentences are wrong.
func (g *SimulatedGenerator) GenerateSentences(ctx context.Context, prompt string) ([]Sentence, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if strings.TrimSpace(prompt) == "" {
		return nil, ErrEmptyPrompt
	}
	picked := g.match(prompt)
	if len(picked) == 0 {
		return nil, ErrNoAnswer
	}
	out := make([]Sentence, len(picked))
	for i, f := range picked {
		out[i] = Sentence{Text: f.text, Source: f.text}
		if g.rate > 0 && g.draw(prompt, uint32(i)) < g.rate {
			text, method := g.corrupt(f, prompt, uint32(i))
			out[i] = Sentence{Text: text, Source: f.text, Hallucinated: true, Method: method}
		}
	}
	return out, nil
}

// match returns the true statements that answer prompt.
func (g *SimulatedGenerator) match(prompt string) []fact {
	pw := contentWords(prompt)
	type scored struct {
		f     fact
		score int
		pos   int
	}
	var cands []scored
	for i, f := range g.truths {
		if s := overlap(pw, f.words); s > 0 {
			cands = append(cands, scored{f, s, i})
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortStableFunc(cands, func(a, b scored) int {
		if a.score != b.score {
			return b.score - a.score
		}
		return len(a.f.words) - len(b.f.words)
	})
	best := cands[0].score
	var out []fact
	for _, c := range cands {
		if len(out) == MaxAnswerSentences || 2*c.score < best {
			break
		}
		out = append(out, c.f)
	}
	return out
}

// draw is the sentence's uniform number in [0, 1); sub varies it for the
// choices a hallucination makes.
func (g *SimulatedGenerator) draw(prompt string, i uint32, sub ...byte) float64 {
	buf := make([]byte, 0, 16+len("verity.simgen.v1")+8+4+len(prompt)+4+len(sub))
	buf = append(buf, "verity.simgen.v1"...)
	buf = binary.BigEndian.AppendUint64(buf, g.seed)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(prompt)))
	buf = append(buf, prompt...)
	buf = binary.BigEndian.AppendUint32(buf, i)
	buf = append(buf, sub...)
	return unitFloat(crypto.Keccak256(buf))
}

// pick is a deterministic index below n for sentence i.
func (g *SimulatedGenerator) pick(prompt string, i uint32, sub byte, n int) int {
	return min(int(g.draw(prompt, i, sub)*float64(n)), n-1)
}

var numberRE = regexp.MustCompile(`\d+(?:[.,]\d+)*`)

// corrupt makes a wrong version of f.
func (g *SimulatedGenerator) corrupt(f fact, prompt string, i uint32) (text, method string) {
	// A false statement of the knowledge base on the same subject.
	var closest []string
	bestScore := 1
	for _, fl := range g.falses {
		s := overlap(f.words, fl.words)
		switch {
		case s > bestScore:
			bestScore, closest = s, []string{fl.text}
		case s == bestScore && closest != nil:
			closest = append(closest, fl.text)
		}
	}
	if len(closest) > 0 {
		return closest[g.pick(prompt, i, 1, len(closest))], "kb-false"
	}
	// A changed number.
	if loc := numberRE.FindStringIndex(f.text); loc != nil {
		num := f.text[loc[0]:loc[1]]
		if repl, ok := changeNumber(num, 1+g.pick(prompt, i, 2, 9)); ok {
			return f.text[:loc[0]] + repl + f.text[loc[1]:], "number"
		}
	}
	// A swapped name.
	var own, others []string
	for _, w := range words(f.text) {
		if slices.Contains(g.names, w) && !slices.Contains(own, w) {
			own = append(own, w)
		}
	}
	for _, n := range g.names {
		if !slices.Contains(own, n) {
			others = append(others, n)
		}
	}
	if len(own) > 0 && len(others) > 0 {
		repl := others[g.pick(prompt, i, 3, len(others))]
		return replaceWord(f.text, own[0], repl), "entity"
	}
	// A negation.
	return negate(f.text, slices.Contains(g.names, firstWord(f.text))), "negation"
}

// auxiliaries are the verbs after which a negation goes.
var auxiliaries = []string{"is", "are", "was", "were", "has", "have", "can", "will"}

// negate makes the opposite of sentence s: "not" after its first auxiliary
// verb, else "It is not true that" before it (keeping the first word's
// capital when it is a name).
func negate(s string, startsWithName bool) string {
	ws := strings.Fields(s)
	for k, w := range ws {
		if k > 0 && slices.Contains(auxiliaries, strings.ToLower(w)) {
			return strings.Join(slices.Insert(ws, k+1, "not"), " ")
		}
	}
	if !startsWithName {
		r, size := utf8.DecodeRuneInString(s)
		s = string(unicode.ToLower(r)) + s[size:]
	}
	return "It is not true that " + s
}

// words splits s into words of letters, apostrophes and hyphens.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' && r != '-' })
}

func firstWord(s string) string {
	if ws := words(s); len(ws) > 0 {
		return ws[0]
	}
	return ""
}

// changeNumber adds delta to the integer part of num, keeping any decimal
// part and thousands separators out of the way by working on the digits
// before the first separator.
func changeNumber(num string, delta int) (string, bool) {
	end := strings.IndexAny(num, ".,")
	if end < 0 {
		end = len(num)
	}
	n, err := strconv.ParseUint(num[:end], 10, 62)
	if err != nil {
		return "", false
	}
	return strconv.FormatUint(n+uint64(delta), 10) + num[end:], true
}

// replaceWord replaces the first whole-word occurrence of old in s.
func replaceWord(s, old, repl string) string {
	for from := 0; ; {
		i := strings.Index(s[from:], old)
		if i < 0 {
			return s
		}
		i += from
		j := i + len(old)
		before := i == 0 || !isWordByte(s[i-1])
		after := j == len(s) || !isWordByte(s[j])
		if before && after {
			return s[:i] + repl + s[j:]
		}
		from = j
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

// innerNames lists the capitalised words of s that do not start it: the
// words that are names whatever their position.
func innerNames(s string) []string {
	ws := words(s)
	var out []string
	for _, w := range ws[min(1, len(ws)):] {
		if r := []rune(w); len(r) >= 2 && unicode.IsUpper(r[0]) {
			out = append(out, w)
		}
	}
	return out
}

// contentWords reduces text to its distinct content words.
func contentWords(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if stopWords[w] {
			continue
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1]
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

func overlap(a, b []string) int {
	n := 0
	for _, w := range a {
		if slices.Contains(b, w) {
			n++
		}
	}
	return n
}

// stopWords are question and function words that say nothing about a subject.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the of in on at to for from by with about as into
		and or but not no nor so than then that this these those there here
		is are was were be been being am do does did done has have had having
		will would shall should can could may might must
		what which who whom whose when where why how many much
		it its it's they them their he she his her we our you your i me my
		tell say please explain describe give name list us
		some any all each every one also very just only`) {
		m[w] = true
	}
	return m
}()

// unitFloat maps the first 8 bytes of h to [0, 1).
func unitFloat(h []byte) float64 {
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
}
