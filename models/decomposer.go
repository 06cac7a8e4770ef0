package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
)

// MaxClaimBytes bounds the text of one claim a model may return; it equals
// the node's limit on a claim's text in a job.
const MaxClaimBytes = consensus.MaxClaimTextBytes

// DecomposerSystemPrompt is the system message of every ModelDecomposer
// request.
const DecomposerSystemPrompt = `You split a text into atomic claims.
An atomic claim is one short, self-contained declarative sentence that states exactly one fact.
Replace pronouns with the names they stand for, so that every claim can be read alone.
Keep the order of the text. Do not add, drop or correct facts.
Reply with a JSON array of strings and nothing else, for example:
["Paris is the capital of France.", "The Seine flows through Paris."]`

// DecomposerUserPrefix starts the user message; the output to split follows it.
const DecomposerUserPrefix = "Text:\n"

// ErrBadDecomposition is the reason recorded when a model's reply is not a
// usable list of claims.
var ErrBadDecomposition = errors.New("models: model reply is not a valid claim list")

// Decomposition paths, as recorded in DecomposeInfo.
const (
	PathModel = "model"
	PathRules = "rules"
)

// DecomposeInfo tells which path produced a decomposition.
type DecomposeInfo struct {
	// Path is PathModel or PathRules.
	Path string
	// Reason is why the model path was not used (nil on the model path).
	Reason error
}

// ModelDecomposer asks a chat model to split an output into atomic claims
// (DecomposerSystemPrompt) and checks the reply: a JSON array of 1 to
// claims.MaxClaims strings (an enclosing Markdown code fence is tolerated),
// each non-empty after trimming, at most MaxClaimBytes long and free of
// control characters. On any failure (request error, timeout, malformed
// JSON, empty or oversized list, bad item) it falls back to
// claims.RuleDecomposer and counts a fallback.
type ModelDecomposer struct {
	client   *ChatClient
	fallback claims.Decomposer

	modelUsed, fallbacks atomic.Uint64
}

var _ claims.Decomposer = (*ModelDecomposer)(nil)

// NewModelDecomposerFromClient wraps client, falling back to
// claims.RuleDecomposer.
func NewModelDecomposerFromClient(client *ChatClient) *ModelDecomposer {
	return &ModelDecomposer{client: client, fallback: claims.RuleDecomposer{}}
}

// Decompose returns the claims of output; see DecomposeInfo.
func (d *ModelDecomposer) Decompose(ctx context.Context, output string) ([]claims.Claim, error) {
	cs, _, err := d.DecomposeInfo(ctx, output)
	return cs, err
}

// DecomposeInfo is Decompose that also reports which path was taken and,
// after a fallback, why.
func (d *ModelDecomposer) DecomposeInfo(ctx context.Context, output string) ([]claims.Claim, DecomposeInfo, error) {
	texts, err := d.fromModel(ctx, output)
	if err == nil {
		d.modelUsed.Add(1)
		return claims.FromTexts(texts), DecomposeInfo{Path: PathModel}, nil
	}
	d.fallbacks.Add(1)
	info := DecomposeInfo{Path: PathRules, Reason: err}
	// The rule path runs even when ctx ended during the model call; it is
	// local and fast.
	cs, ferr := d.fallback.Decompose(context.WithoutCancel(ctx), output)
	return cs, info, ferr
}

// Fallbacks is the number of decompositions that fell back to the rules.
func (d *ModelDecomposer) Fallbacks() uint64 { return d.fallbacks.Load() }

// ModelDecompositions is the number of decompositions the model produced.
func (d *ModelDecomposer) ModelDecompositions() uint64 { return d.modelUsed.Load() }

func (d *ModelDecomposer) fromModel(ctx context.Context, output string) ([]string, error) {
	if strings.TrimSpace(output) == "" {
		return nil, fmt.Errorf("%w: empty output", ErrBadDecomposition)
	}
	reply, err := d.client.Complete(ctx, []Message{
		{Role: "system", Content: DecomposerSystemPrompt},
		{Role: "user", Content: DecomposerUserPrefix + output},
	}, CompleteOptions{Temperature: 0})
	if err != nil {
		return nil, err
	}
	return ParseClaimList(reply)
}

// ParseClaimList checks a model's reply to the decomposer prompt and
// returns the trimmed claim texts. The reply must be one JSON array of
// strings, optionally inside a Markdown code fence, with nothing after it.
func ParseClaimList(reply string) ([]string, error) {
	body := stripFence(strings.TrimSpace(reply))
	var raw []string
	// The reply is already bounded by the model client; strictjson refuses
	// trailing data as every other decoder of Verity does.
	if err := strictjson.Decode([]byte(body), &raw, max(len(body), 1)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDecomposition, err)
	}
	switch {
	case raw == nil:
		return nil, fmt.Errorf("%w: not an array", ErrBadDecomposition)
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: empty list", ErrBadDecomposition)
	case len(raw) > claims.MaxClaims:
		return nil, fmt.Errorf("%w: %d claims, limit %d", ErrBadDecomposition, len(raw), claims.MaxClaims)
	}
	out := make([]string, len(raw))
	for i, s := range raw {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return nil, fmt.Errorf("%w: claim %d is empty", ErrBadDecomposition, i)
		case len(s) > MaxClaimBytes:
			return nil, fmt.Errorf("%w: claim %d has %d bytes, limit %d", ErrBadDecomposition, i, len(s), MaxClaimBytes)
		case strings.ContainsFunc(s, unicode.IsControl):
			return nil, fmt.Errorf("%w: claim %d holds a control character", ErrBadDecomposition, i)
		case strings.ContainsRune(s, '\uFFFD'):
			return nil, fmt.Errorf("%w: claim %d is not valid UTF-8", ErrBadDecomposition, i)
		}
		out[i] = s
	}
	return out, nil
}

// stripFence removes one enclosing ``` or ```json fence.
func stripFence(s string) string {
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	inner := s[3 : len(s)-3]
	if nl := strings.IndexByte(inner, '\n'); nl >= 0 {
		lang := strings.TrimSpace(inner[:nl])
		if lang == "" || strings.EqualFold(lang, "json") {
			inner = inner[nl+1:]
		}
	}
	return strings.TrimSpace(inner)
}
