package models

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/verity-network/verity/claims"
)

// VerifierSystemPrompt is the system message of every ModelVerifier request.
const VerifierSystemPrompt = `You are a fact checker. You judge one claim at a time.
Reply with exactly one of: TRUE, FALSE, CANNOT TELL.
TRUE: the claim is correct as stated.
FALSE: the claim is wrong as stated.
CANNOT TELL: you do not know, or the claim is not a checkable statement of fact.
Reply with those words only, no explanation.`

// VerifierUserTemplate is the user message; %s is replaced by the claim
// text.
const VerifierUserTemplate = `Claim: %s

Is this claim true? Answer TRUE, FALSE or CANNOT TELL.`

// verifierMaxTokens leaves room for "CANNOT TELL." and little else.
const verifierMaxTokens = 8

// ParseJudgement reads a model's reply to the verifier prompt. After
// trimming white space and at most one trailing period, the reply must be
// TRUE, FALSE or CANNOT TELL in any letter case; CANNOT TELL and anything
// else give Abstain. ok reports whether the reply was one of the three.
func ParseJudgement(reply string) (v claims.Verdict, ok bool) {
	s := strings.TrimSpace(reply)
	s = strings.TrimSuffix(s, ".")
	switch {
	case strings.EqualFold(s, "TRUE"):
		return claims.True, true
	case strings.EqualFold(s, "FALSE"):
		return claims.False, true
	case strings.EqualFold(s, "CANNOT TELL"):
		return claims.Abstain, true
	}
	return claims.Abstain, false
}

// VerifierStats counts a ModelVerifier's outcomes.
type VerifierStats struct {
	Calls       uint64 // claims judged
	True        uint64
	False       uint64
	CannotTell  uint64 // the model answered CANNOT TELL
	Unparseable uint64 // the reply was none of the three answers
	Errors      uint64 // the request failed or timed out
}

// ModelVerifier judges one claim at a time by asking a chat model with
// VerifierSystemPrompt and VerifierUserTemplate at temperature 0. It
// abstains whenever the request fails (error, timeout, cancelled context)
// or the reply does not parse (see ParseJudgement). Timeout, retries and
// concurrency are the ChatClient's.
type ModelVerifier struct {
	client *ChatClient
	name   string

	calls, yes, no, cannot, unparseable, errs atomic.Uint64
}

var _ claims.Verifier = (*ModelVerifier)(nil)

// NewModelVerifierFromClient wraps client.
func NewModelVerifierFromClient(client *ChatClient) *ModelVerifier {
	return &ModelVerifier{client: client, name: "model:" + client.Model()}
}

// Name is "model:" followed by the model name.
func (v *ModelVerifier) Name() string { return v.name }

// Verify asks the model about c.Text and returns its verdict, or Abstain.
func (v *ModelVerifier) Verify(ctx context.Context, c claims.Claim) claims.Verdict {
	v.calls.Add(1)
	reply, err := v.client.Complete(ctx, []Message{
		{Role: "system", Content: VerifierSystemPrompt},
		{Role: "user", Content: verifierUserMessage(c.Text)},
	}, CompleteOptions{Temperature: 0, MaxTokens: verifierMaxTokens})
	if err != nil {
		v.errs.Add(1)
		return claims.Abstain
	}
	verdict, ok := ParseJudgement(reply)
	switch {
	case !ok:
		v.unparseable.Add(1)
	case verdict == claims.True:
		v.yes.Add(1)
	case verdict == claims.False:
		v.no.Add(1)
	default:
		v.cannot.Add(1)
	}
	return verdict
}

// Stats returns the counts so far.
func (v *ModelVerifier) Stats() VerifierStats {
	return VerifierStats{
		Calls:       v.calls.Load(),
		True:        v.yes.Load(),
		False:       v.no.Load(),
		CannotTell:  v.cannot.Load(),
		Unparseable: v.unparseable.Load(),
		Errors:      v.errs.Load(),
	}
}

// verifierUserMessage fills VerifierUserTemplate. The claim is put on one
// line so that it cannot add lines of its own to the prompt.
func verifierUserMessage(text string) string {
	return strings.Replace(VerifierUserTemplate, "%s", strings.Join(strings.Fields(text), " "), 1)
}
