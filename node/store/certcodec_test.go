package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// fullCert is a certificate with every field, however deep, set to a
// value other than its zero value (TestFullCertHasEveryField).
func fullCert() *consensus.Certificate {
	proof := func(b byte) *consensus.BatchProof {
		return &consensus.BatchProof{Index: 3, Count: 9, Siblings: []common.Hash{{b}, {b + 1}, {b + 2}, {b + 3}}}
	}
	sig := func(b byte) []byte { return bytes.Repeat([]byte{b}, 65) }
	c := &consensus.Certificate{
		Version: 1, NetworkID: 1337,
		GenesisHash: common.Hash{1}, JobID: common.Hash{2}, JobNonce: common.Hash{3},
		OutputHash: common.Hash{4}, ClaimsRoot: common.Hash{5},
		Quorum:      consensus.Quorum{Kind: "stake", Num: 2, Den: 3, N: 4, M: 5},
		Replication: 3, Gateway: common.Address{6}, DeadlineMS: 1_796_357_952_500,
		Status: consensus.StatusVerified,
		Claims: []consensus.CertClaim{{Index: 1, Text: "4292 + 1 = 4293.", Hash: common.Hash{7},
			Verdict: consensus.OutcomeTrue, StakeFor: 300, StakeTotal: 400}},
		IssuedAt:         time.UnixMilli(1_796_357_950_034).UTC(),
		GatewaySignature: sig(8),
		GatewayBatch:     proof(9),
	}
	for i := range 4 {
		c.Ballots = append(c.Ballots, consensus.Vote{Validator: common.Address{byte(10 + i)},
			ClaimIndexes: []uint32{1}, Verdicts: []claims.Verdict{claims.True},
			Signature: sig(byte(20 + i)), Batch: proof(byte(30 + 4*i))})
	}
	return c
}

// TestFullCertHasEveryField: every field of a certificate, through its
// lists' first items and its pointers, is set in fullCert, so that the
// round trip below covers a field added to the certificate.
func TestFullCertHasEveryField(t *testing.T) {
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if v.IsZero() {
			t.Errorf("%s is not set in fullCert", path)
			return
		}
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				return
			}
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Pointer:
			walk(v.Elem(), path)
		case reflect.Slice:
			walk(v.Index(0), path+"[0]")
		}
	}
	walk(reflect.ValueOf(fullCert()).Elem(), "Certificate")
}

// TestCertFormRoundTrip: every field of a certificate reads back from
// the binary form as it was, into memory of its own; the form of a
// 1-claim certificate of four batch ballots is under half a page.
func TestCertFormRoundTrip(t *testing.T) {
	for name, c := range map[string]*consensus.Certificate{
		"full": fullCert(),
		// Lists read back empty, not nil, as issued certificates hold them.
		"empty": {Claims: []consensus.CertClaim{}, Ballots: []consensus.Vote{}},
		"bare": {JobID: common.Hash{1}, Status: consensus.StatusRejected, Claims: []consensus.CertClaim{},
			Ballots: []consensus.Vote{{ClaimIndexes: []uint32{}, Verdicts: []claims.Verdict{}}}},
	} {
		data := appendCert(nil, c)
		var got consensus.Certificate
		if err := parseCert(data, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(&got, c) {
			t.Fatalf("%s read back as\n%+v\nwant\n%+v", name, &got, c)
		}
		if name != "full" {
			continue
		}
		clear(data)
		if got.GatewaySignature[0] != 8 || got.Ballots[0].Signature[0] != 20 {
			t.Fatal("the certificate read shares memory with the stored bytes")
		}
		if n := len(appendCert(nil, c)); n > 2000 {
			t.Fatalf("binary form of %d bytes, want at most 2,000 (two in a 4 KB page)", n)
		}
	}
}

// TestCertFormRefusesDamage: every truncation of the binary form, and the
// form with a byte appended, is refused with errCertForm, not read, and
// never panics; so is data that is not the form at all.
func TestCertFormRefusesDamage(t *testing.T) {
	data := appendCert(nil, fullCert())
	for n := range len(data) {
		var c consensus.Certificate
		if err := parseCert(data[:n], &c); !errors.Is(err, errCertForm) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(data), err)
		}
	}
	var c consensus.Certificate
	if err := parseCert(append(data, 0), &c); !errors.Is(err, errCertForm) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("with a byte appended: %v", err)
	}
	if err := parseCert([]byte(`{"version":1}`), &c); !errors.Is(err, errCertForm) {
		t.Fatalf("JSON read as the binary form: %v", err)
	}
	// A list count larger than the bytes left is refused before anything
	// is allocated for it.
	huge := append([]byte{certTag}, make([]byte, 2+5*32)...)
	huge = append(huge, 0, 0, 0, 0, 0, 0)             // quorum, replication
	huge = append(huge, make([]byte, 20+1+1)...)      // gateway, deadline, status
	huge = append(huge, 0xff, 0xff, 0xff, 0xff, 0x0f) // claims: 2^32-1
	if err := parseCert(huge, &c); !errors.Is(err, errCertForm) || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("a count of 2^32-1 claims: %v", err)
	}
}

// FuzzParseCert: no input panics the reader, and what it reads is
// written back to a form that reads the same.
func FuzzParseCert(f *testing.F) {
	f.Add(appendCert(nil, fullCert()))
	f.Add(appendCert(nil, &consensus.Certificate{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c consensus.Certificate
		if parseCert(data, &c) != nil {
			return
		}
		var again consensus.Certificate
		if err := parseCert(appendCert(nil, &c), &again); err != nil || !reflect.DeepEqual(&again, &c) {
			t.Fatalf("read back %+v (%v), want %+v", &again, err, &c)
		}
	})
}

// putJSONCert stores a certificate's JSON for its job, as a store written
// before the binary form holds it.
func putJSONCert(t *testing.T, s *Store, job common.Hash, data []byte) {
	t.Helper()
	sum, err := readSummary(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return s.certPut(tx, job, s.certKey(tx, job), sum.DeadlineMS, data) }); err != nil {
		t.Fatal(err)
	}
}

// TestCompareCertificate: a certificate stored in the binary form compares
// same with itself, whatever its JSON, and not with another signature of
// the outcome; one stored as JSON compares same with those bytes only.
func TestCompareCertificate(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	c := fullCert()
	if held, same, err := s.CompareCertificate(c, nil); err != nil || held || same {
		t.Fatalf("nothing stored: held %v same %v %v", held, same, err)
	}
	if stored, err := s.PutCertificate(c, time.Unix(20, 0)); err != nil || !stored {
		t.Fatalf("put certificate: %v %v", stored, err)
	}
	if held, same, err := s.CompareCertificate(fullCert(), []byte("any")); err != nil || !held || !same {
		t.Fatalf("compare with a copy: held %v same %v %v", held, same, err)
	}
	other := fullCert()
	other.GatewaySignature[64] = 1
	if held, same, err := s.CompareCertificate(other, nil); err != nil || !held || same {
		t.Fatalf("compare with another signature: held %v same %v %v", held, same, err)
	}

	old := fullCert()
	old.JobID = common.Hash{0xee}
	data, err := old.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	putJSONCert(t, s, old.JobID, data)
	if held, same, err := s.CompareCertificate(old, data); err != nil || !held || !same {
		t.Fatalf("JSON stored, compared with its bytes: held %v same %v %v", held, same, err)
	}
	indented, err := json.MarshalIndent(old, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if held, same, err := s.CompareCertificate(old, indented); err != nil || !held || same {
		t.Fatalf("JSON stored, compared with other bytes: held %v same %v %v", held, same, err)
	}
	got, err := s.Certificate(old.JobID)
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("JSON stored reads back as %+v (%v)", got, err)
	}
}
