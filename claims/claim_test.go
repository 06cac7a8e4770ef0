package claims

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestFromTexts(t *testing.T) {
	cs := FromTexts([]string{"a.", "b.", "a."})
	for i, c := range cs {
		if c.Index != uint32(i) || c.Hash != crypto.Keccak256Hash([]byte(c.Text)) {
			t.Fatalf("claim %d = %+v", i, c)
		}
	}
	if cs[0].Hash != cs[2].Hash || cs[0].Hash == cs[1].Hash {
		t.Fatal("hash does not depend on text alone")
	}
	hs := Hashes(cs)
	if len(hs) != 3 || hs[1] != cs[1].Hash {
		t.Fatalf("Hashes = %v", hs)
	}
	if len(FromTexts(nil)) != 0 {
		t.Fatal("FromTexts(nil) is not empty")
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		v      Verdict
		valid  bool
		str    string
		invert Verdict
	}{
		{Abstain, true, "abstain", Abstain},
		{True, true, "true", False},
		{False, true, "false", True},
		{Verdict(3), false, "verdict(3)", Verdict(3)},
	}
	for _, tt := range tests {
		if tt.v.Valid() != tt.valid || tt.v.String() != tt.str || tt.v.Invert() != tt.invert {
			t.Errorf("%d: Valid %v String %q Invert %v", tt.v, tt.v.Valid(), tt.v.String(), tt.v.Invert())
		}
	}
}

func TestVerdictJSON(t *testing.T) {
	b, err := json.Marshal([]Verdict{Abstain, True, False})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[0,1,2]" {
		t.Fatalf("marshal = %s, want [0,1,2]", b)
	}
	var vs []Verdict
	if err := json.Unmarshal(b, &vs); err != nil || len(vs) != 3 || vs[2] != False {
		t.Fatalf("unmarshal = %v, %v", vs, err)
	}
	for _, bad := range []string{"[3]", `["true"]`, "[-1]", "[256]"} {
		if err := json.Unmarshal([]byte(bad), &vs); err == nil {
			t.Errorf("unmarshal %s accepted", bad)
		}
	}
}
