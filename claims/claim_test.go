package claims

import (
	"encoding/json"
	"fmt"
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
	// UnmarshalJSON takes what decoding the code as a uint8 takes, and
	// refuses the rest, with or without its one-digit shortcut.
	slow := func(b []byte) (Verdict, error) {
		var n uint8
		if err := json.Unmarshal(b, &n); err != nil {
			return 0, err
		}
		if !Verdict(n).Valid() {
			return 0, fmt.Errorf("code %d", n)
		}
		return Verdict(n), nil
	}
	for _, in := range []string{"0", "1", "2", "3", "9", "00", "01", "1.0", "1e0", "-0", " 1", "1 ", "null", `"1"`, "", "a", "２"} {
		var got Verdict
		gotErr := got.UnmarshalJSON([]byte(in))
		want, wantErr := slow([]byte(in))
		if (gotErr == nil) != (wantErr == nil) || got != want {
			t.Errorf("UnmarshalJSON(%q) = %v, %v; decoding a uint8 gives %v, %v", in, got, gotErr, want, wantErr)
		}
	}
}
