package consensus

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
)

// TestCertificateBinaryVectors: each certificate of testdata/certs, read
// from JSON, written in the binary form and read back, verifies as the
// JSON one does and writes the same JSON; the binary form is under half
// the JSON's length.
func TestCertificateBinaryVectors(t *testing.T) {
	set := loadVectorSet(t)
	for _, name := range []string{"valid.json", "batched.json", "verified.json"} {
		raw, err := os.ReadFile(filepath.Join(certsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertificate(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bin := AppendCertificateBinary(nil, c)
		var got Certificate
		if err := ParseCertificateBinary(bin, &got); err != nil {
			t.Fatalf("%s: read back: %v", name, err)
		}
		if want, err := VerifyCertificate(c, set, nil), VerifyCertificate(&got, set, nil); !errors.Is(err, want) && (err != nil || want != nil) {
			t.Errorf("%s: read back verifies with %v, the JSON with %v", name, err, want)
		}
		wantJSON, err := c.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, err := got.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("%s: read back writes\n%s\nwant\n%s", name, gotJSON, wantJSON)
		}
		if 2*len(bin) >= len(wantJSON) {
			t.Errorf("%s: %d bytes in binary, %d in JSON", name, len(bin), len(wantJSON))
		}
		if b, err := got.AppendBinary(nil); err != nil || !bytes.Equal(b, bin) {
			t.Errorf("%s: AppendBinary differs from AppendCertificateBinary", name)
		}
	}
}

// TestCertificateBinaryRandom: random certificates read back equal.
func TestCertificateBinaryRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 200 {
		c := randomCertificate(r)
		bin := AppendCertificateBinary(nil, c)
		if id, ok := CertificateBinaryJobID(bin); !ok || id != c.JobID {
			t.Fatalf("certificate %d: job id %x %v, want %x", i, id, ok, c.JobID)
		}
		// The job id is read from the first n bytes, and not from fewer.
		n := 1 + uvarintLen(uint64(c.Version)) + uvarintLen(c.NetworkID) + 2*common.HashLength
		if id, ok := CertificateBinaryJobID(bin[:n]); !ok || id != c.JobID {
			t.Fatalf("certificate %d: job id from the first %d bytes %x %v", i, n, id, ok)
		}
		if _, ok := CertificateBinaryJobID(bin[:n-1]); ok {
			t.Fatalf("certificate %d: a job id read from %d bytes", i, n-1)
		}
		var got Certificate
		err := ParseCertificateBinary(bin, &got)
		if !allUTF8(c) {
			if !errors.Is(err, ErrCertificateBinary) {
				t.Fatalf("certificate %d, a string not UTF-8: %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("certificate %d: %v", i, err)
		}
		if again := AppendCertificateBinary(nil, &got); !bytes.Equal(again, bin) {
			t.Fatalf("certificate %d: written again differs", i)
		}
		emptyLists(c)
		if !reflect.DeepEqual(&got, c) {
			t.Fatalf("certificate %d: read back\n%+v\nwant\n%+v", i, &got, c)
		}
	}
}

func allUTF8(c *Certificate) bool {
	ok := utf8.ValidString(c.Quorum.Kind) && utf8.ValidString(string(c.Status))
	for _, cl := range c.Claims {
		ok = ok && utf8.ValidString(cl.Text) && utf8.ValidString(string(cl.Verdict))
	}
	return ok
}

// emptyLists makes c's nil lists empty, as the binary form reads them.
func emptyLists(c *Certificate) {
	if c.Claims == nil {
		c.Claims = []CertClaim{}
	}
	if c.Ballots == nil {
		c.Ballots = []Vote{}
	}
	proof := func(p *BatchProof) {
		if p != nil && p.Siblings == nil {
			p.Siblings = []common.Hash{}
		}
	}
	for i := range c.Ballots {
		v := &c.Ballots[i]
		if v.ClaimIndexes == nil {
			v.ClaimIndexes = []uint32{}
		}
		if v.Verdicts == nil {
			v.Verdicts = []claims.Verdict{}
		}
		if len(v.Signature) == 0 {
			v.Signature = nil
		}
		proof(v.Batch)
	}
	if len(c.GatewaySignature) == 0 {
		c.GatewaySignature = nil
	}
	proof(c.GatewayBatch)
}

// TestCertificateBinaryRefused: every cut of the form, a byte after it,
// JSON, a number not in its shortest encoding and a string not UTF-8 are
// refused with ErrCertificateBinary.
func TestCertificateBinaryRefused(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(certsDir, "batched.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	bin := AppendCertificateBinary(nil, c)
	var got Certificate
	for n := range len(bin) {
		if err := ParseCertificateBinary(bin[:n], &got); !errors.Is(err, ErrCertificateBinary) {
			t.Fatalf("cut at %d of %d: %v", n, len(bin), err)
		}
	}
	if err := ParseCertificateBinary(append(bin, 0), &got); !errors.Is(err, ErrCertificateBinary) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("a byte after it: %v", err)
	}
	if err := ParseCertificateBinary(raw, &got); !errors.Is(err, ErrCertificateBinary) {
		t.Fatalf("JSON: %v", err)
	}
	// The version, 1, as the two bytes 0x81 0x00.
	long := append([]byte{CertificateBinaryTag, 0x81, 0x00}, bin[2:]...)
	if err := ParseCertificateBinary(long, &got); !errors.Is(err, ErrCertificateBinary) || !strings.Contains(err.Error(), "version") {
		t.Fatalf("a number in two bytes where one does: %v", err)
	}
	// A claim's text with a byte that is not UTF-8.
	bad := *c
	bad.Claims = append([]CertClaim(nil), c.Claims...)
	bad.Claims[0].Text = "\xff" + bad.Claims[0].Text[1:]
	if err := ParseCertificateBinary(AppendCertificateBinary(nil, &bad), &got); !errors.Is(err, ErrCertificateBinary) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("a claim not UTF-8: %v", err)
	}
}

// FuzzParseCertificateBinary: no input panics the reader, and whatever it
// reads is written back byte for byte (a certificate has one binary form).
func FuzzParseCertificateBinary(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 4 {
		f.Add(AppendCertificateBinary(nil, randomCertificate(r)))
	}
	f.Add(AppendCertificateBinary(nil, &Certificate{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Certificate
		if err := ParseCertificateBinary(data, &c); err != nil {
			if !errors.Is(err, ErrCertificateBinary) {
				t.Fatalf("error %v is not ErrCertificateBinary", err)
			}
			return
		}
		if again := AppendCertificateBinary(nil, &c); !bytes.Equal(again, data) {
			t.Fatalf("read %x, written back as %x", data, again)
		}
		var twice Certificate
		if err := ParseCertificateBinary(data, &twice); err != nil || !reflect.DeepEqual(&twice, &c) {
			t.Fatalf("read twice differs")
		}
	})
}
