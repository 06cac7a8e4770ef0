package consensus

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseCertificate: parsing never panics, and whatever parses encodes
// and parses again to the same value.
func FuzzParseCertificate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCertificate(data)
		if err != nil {
			if !IsVerificationError(err) {
				t.Fatalf("parse error %v is not a verification error", err)
			}
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal a parsed certificate: %v", err)
		}
		if _, err := ParseCertificate(again); err != nil {
			t.Fatalf("re-encoded certificate does not parse: %v", err)
		}
	})
}

// FuzzVerifyCertificate decodes arbitrary bytes and verifies them against
// the validator set of testdata/certs: never panics, and fails only with
// verification errors or as not final.
func FuzzVerifyCertificate(f *testing.F) {
	set := loadVectorSet(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCertificate(data)
		if err != nil {
			return
		}
		if err := VerifyCertificate(c, set, nil); err != nil && !IsVerificationError(err) && !errors.Is(err, ErrNotFinal) {
			t.Fatalf("verify error %v is not a verification error", err)
		}
	})
}

// FuzzParseGenesis: parsing never panics, and a parsed genesis gives a
// validator set whose hash survives a JSON round trip.
func FuzzParseGenesis(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGenesis(data)
		if err != nil {
			return
		}
		set, err := g.ValidatorSet()
		if err != nil {
			t.Fatalf("parsed genesis has no validator set: %v", err)
		}
		again, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		g2, err := ParseGenesis(again)
		if err != nil {
			t.Fatalf("re-encoded genesis does not parse: %v", err)
		}
		if g2.Hash() != set.GenesisHash() {
			t.Fatal("genesis hash changed across a round trip")
		}
	})
}
