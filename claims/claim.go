package claims

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Claim is one atomic statement taken from an output, in output order.
type Claim struct {
	Index uint32      `json:"index"`
	Text  string      `json:"text"`
	Hash  common.Hash `json:"hash"`
}

// HashText is the hash of a claim: keccak256 of its UTF-8 text.
func HashText(text string) common.Hash {
	return crypto.Keccak256Hash([]byte(text))
}

// OutputHash is keccak256 of the output bytes exactly as submitted.
func OutputHash(output []byte) common.Hash {
	return crypto.Keccak256Hash(output)
}

// FromTexts numbers texts in order and hashes each one.
func FromTexts(texts []string) []Claim {
	out := make([]Claim, len(texts))
	for i, t := range texts {
		out[i] = Claim{Index: uint32(i), Text: t, Hash: HashText(t)}
	}
	return out
}

// Hashes returns the claim hashes in order.
func Hashes(cs []Claim) []common.Hash {
	out := make([]common.Hash, len(cs))
	for i, c := range cs {
		out[i] = c.Hash
	}
	return out
}

// Verdict is a validator's judgement of one claim. The numeric codes are
// part of the signed ballot format and never change.
type Verdict uint8

const (
	Abstain Verdict = 0
	True    Verdict = 1
	False   Verdict = 2
)

// Valid reports whether v is one of the three defined codes.
func (v Verdict) Valid() bool { return v <= False }

func (v Verdict) String() string {
	switch v {
	case Abstain:
		return "abstain"
	case True:
		return "true"
	case False:
		return "false"
	default:
		return fmt.Sprintf("verdict(%d)", uint8(v))
	}
}

// Invert swaps true and false and keeps abstain.
func (v Verdict) Invert() Verdict {
	switch v {
	case True:
		return False
	case False:
		return True
	default:
		return v
	}
}

// MarshalJSON encodes a verdict as its numeric code, so that a []Verdict is a
// JSON array of numbers rather than base64.
func (v Verdict) MarshalJSON() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(v), 10), nil
}

// UnmarshalJSON accepts only the numeric codes 0, 1 and 2.
func (v *Verdict) UnmarshalJSON(b []byte) error {
	// The one-digit codes, as every encoder writes them, without a
	// decoder's scan (a verdict per claim of every ballot a node reads).
	if len(b) == 1 && b[0] >= '0' && b[0] <= '9' {
		if n := Verdict(b[0] - '0'); n.Valid() {
			*v = n
			return nil
		}
	}
	var n uint8
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	if !Verdict(n).Valid() {
		return fmt.Errorf("verdict: unknown code %d", n)
	}
	*v = Verdict(n)
	return nil
}
