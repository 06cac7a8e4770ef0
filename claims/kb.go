package claims

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode"
)

// MaxKBLine bounds the length in bytes of one knowledge base line.
const MaxKBLine = 64 << 10

var (
	// ErrKBSyntax is returned for a knowledge base line that is not a comment,
	// a blank line or a labelled statement.
	ErrKBSyntax = errors.New("claims: knowledge base syntax error")
	// ErrKBConflict is returned when a statement is listed both true and false.
	ErrKBConflict = errors.New("claims: conflicting knowledge base statement")
)

// KnowledgeBase judges claims by looking them up in a list of statements
// known to be true or false. It is immutable once parsed and safe for
// concurrent use.
//
// The text format has one entry per line:
//
//	# a comment (a line whose first non-blank character is #)
//	true: Paris is the capital of France.
//	false: The capital of Australia is Sydney.
//
// Labels are case-insensitive. Blank lines are ignored. Statements are
// compared after normalisation (see NormalizeStatement), so "paris is the
// capital of France" matches the first entry above. Listing the same
// statement twice with the same label is allowed; with both labels it is an
// error.
type KnowledgeBase struct {
	facts map[string]Verdict
}

var _ Verifier = (*KnowledgeBase)(nil)

// NormalizeStatement is the form under which knowledge base statements and
// claims are compared: whitespace collapsed to single spaces, quotes at
// either end and trailing terminal punctuation (. ! ? …) removed, then case
// folded to lower case.
func NormalizeStatement(s string) string {
	s = strings.Join(strings.Fields(typographic.Replace(s)), " ")
	for {
		t := strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || r == '!' || r == '?' || r == '…' })
		t = strings.TrimSpace(strings.TrimFunc(t, isQuote))
		if t == s {
			break
		}
		s = t
	}
	return strings.ToLower(s)
}

// typographic maps curly quotes and apostrophes, as models often write
// them, to their plain forms, so that "Earth’s" matches "Earth's".
var typographic = strings.NewReplacer("’", "'", "‘", "'", "“", "\"", "”", "\"")

func isQuote(r rune) bool {
	switch r {
	case '"', '\'', '“', '”', '‘', '’', '«', '»':
		return true
	}
	return false
}

// ParseKnowledgeBase reads a knowledge base in the text format described on
// KnowledgeBase. Errors name the offending line.
func ParseKnowledgeBase(r io.Reader) (*KnowledgeBase, error) {
	kb := &KnowledgeBase{facts: make(map[string]Verdict)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxKBLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		label, stmt, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: %w: want \"true: <statement>\" or \"false: <statement>\"", line, ErrKBSyntax)
		}
		var v Verdict
		switch strings.ToLower(strings.TrimSpace(label)) {
		case "true":
			v = True
		case "false":
			v = False
		default:
			return nil, fmt.Errorf("line %d: %w: unknown label %q", line, ErrKBSyntax, strings.TrimSpace(label))
		}
		key := NormalizeStatement(stmt)
		if !strings.ContainsFunc(key, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			return nil, fmt.Errorf("line %d: %w: empty statement", line, ErrKBSyntax)
		}
		if old, dup := kb.facts[key]; dup && old != v {
			return nil, fmt.Errorf("line %d: %w: %q is already %s", line, ErrKBConflict, strings.TrimSpace(stmt), old)
		}
		kb.facts[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return kb, nil
}

// LoadKnowledgeBase reads the knowledge base file at path.
func LoadKnowledgeBase(path string) (*KnowledgeBase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load knowledge base: %w", err)
	}
	defer f.Close()
	kb, err := ParseKnowledgeBase(f)
	if err != nil {
		return nil, fmt.Errorf("load knowledge base %s: %w", path, err)
	}
	return kb, nil
}

//go:embed kb/sample.kb
var sampleKB string

var parseSample = sync.OnceValues(func() (*KnowledgeBase, error) {
	return ParseKnowledgeBase(strings.NewReader(sampleKB))
})

// SampleKnowledgeBase returns the knowledge base shipped with the testnet
// (claims/kb/sample.kb, embedded in the binary). The same immutable value is
// returned on every call.
func SampleKnowledgeBase() *KnowledgeBase {
	kb, err := parseSample()
	if err != nil {
		// The file is embedded at build time and parsed by the tests.
		panic(fmt.Sprintf("claims: embedded sample knowledge base: %v", err))
	}
	return kb
}

// SampleKnowledgeBaseText returns the text of the shipped sample knowledge base.
func SampleKnowledgeBaseText() string { return sampleKB }

// Name implements Verifier.
func (kb *KnowledgeBase) Name() string { return BackendKB }

// Len is the number of distinct statements.
func (kb *KnowledgeBase) Len() int { return len(kb.facts) }

// Lookup returns the verdict listed for text, if any.
func (kb *KnowledgeBase) Lookup(text string) (Verdict, bool) {
	v, ok := kb.facts[NormalizeStatement(text)]
	return v, ok
}

// Verify returns the listed verdict of the claim's text and Abstain for a
// statement the knowledge base does not know.
func (kb *KnowledgeBase) Verify(ctx context.Context, c Claim) Verdict {
	if ctx.Err() != nil {
		return Abstain
	}
	v, _ := kb.Lookup(c.Text)
	return v
}
