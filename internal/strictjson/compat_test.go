package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
)

// decodeV1 is the decoding strictjson replaces: encoding/json with no
// unknown fields and nothing after the value.
func decodeV1(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err == nil {
		return errTrailing
	}
	return nil
}

var errTrailing = errors.New("trailing data")

// sameAsV1 checks that strictjson decodes in to a T exactly as
// encoding/json does, or that both refuse it.
func sameAsV1[T any](t *testing.T, in []byte) {
	t.Helper()
	var old, got T
	oldErr := decodeV1(in, &old)
	newErr := strictjson.Decode(in, &got, 1<<20)
	if (oldErr == nil) != (newErr == nil) {
		t.Fatalf("encoding/json: %v; strictjson: %v", oldErr, newErr)
	}
	if !reflect.DeepEqual(old, got) {
		t.Fatalf("decoded differently:\nencoding/json %#v\nstrictjson    %#v", old, got)
	}
}

func marshal(t *testing.T, v any, indent bool) []byte {
	t.Helper()
	var (
		data []byte
		err  error
	)
	if indent {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testCertificate(t testing.TB) *consensus.Certificate {
	t.Helper()
	data, err := os.ReadFile("../../testdata/certs/valid.json")
	if err != nil {
		t.Fatal(err)
	}
	var c consensus.Certificate
	if err := decodeV1(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestSameAsEncodingJSON decodes what our writers write, and some inputs
// written by hand, with both decoders: a valid input decodes to the same
// value.
func TestSameAsEncodingJSON(t *testing.T) {
	cert := testCertificate(t)
	addr := common.HexToAddress("0x24d25b727eba0c4d4ef2d15d2bf9f1a2883627bf")
	final := time.Date(2026, 1, 2, 3, 4, 5, 678000000, time.FixedZone("", 2*3600))
	ballot := consensus.Ballot{
		NetworkID: 31337, JobID: cert.JobID, OutputHash: cert.OutputHash, ClaimsRoot: cert.ClaimsRoot,
		Vote: cert.Ballots[0],
	}
	job := api.Job{
		JobID: cert.JobID, Status: cert.Status, OutputHash: cert.OutputHash, ClaimsRoot: cert.ClaimsRoot,
		Claims:      []claims.Claim{{Index: 0, Text: "caf\u00e9 \U0001F600 <&> \u2028", Hash: cert.Claims[0].Hash}},
		Output:      "out",
		Quorum:      consensus.CountQuorum(3, 4),
		Replication: 4, Gateway: addr,
		SubmittedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FinalAt:     &final,
		Progress:    []consensus.ClaimProgress{{Index: 0, Outcome: consensus.OutcomeTrue, StakeTrue: 1<<64 - 1}},
		Certificate: cert,
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"certificate of testdata", func(t *testing.T) {
			data, err := os.ReadFile("../../testdata/certs/valid.json")
			if err != nil {
				t.Fatal(err)
			}
			sameAsV1[consensus.Certificate](t, data)
		}},
		{"genesis of testdata", func(t *testing.T) {
			data, err := os.ReadFile("../../testdata/certs/genesis.json")
			if err != nil {
				t.Fatal(err)
			}
			sameAsV1[consensus.Genesis](t, data)
		}},
		{"job with certificate, times and progress", func(t *testing.T) { sameAsV1[api.Job](t, marshal(t, job, false)) }},
		{"job indented", func(t *testing.T) { sameAsV1[api.Job](t, marshal(t, job, true)) }},
		{"ballot with embedded vote and verdicts", func(t *testing.T) { sameAsV1[consensus.Ballot](t, marshal(t, ballot, false)) }},
		{"evidence of two ballots", func(t *testing.T) {
			ev := api.EvidenceList{
				Evidence:  []api.EvidenceRecord{{Validator: addr, JobID: cert.JobID, First: ballot, Second: ballot, DetectedAt: final}},
				Penalties: []api.Penalty{{Validator: addr, Name: "alice", Stake: 10, Slashed: 5, Jobs: []common.Hash{cert.JobID}}},
			}
			sameAsV1[api.EvidenceList](t, marshal(t, ev, false))
		}},
		{"event with raw data", func(t *testing.T) {
			ev := api.Event{ID: 7, Type: api.EventCertificateIssued, JobID: cert.JobID, Time: final,
				Data: json.RawMessage(`{"status": "verified", "n": [1, 2]}`)}
			sameAsV1[api.Event](t, marshal(t, ev, true))
		}},
		{"audit with pointers", func(t *testing.T) {
			a := api.Audit{JobID: cert.JobID, Status: consensus.StatusVerified, CertifiedAt: &final,
				Entries: []api.AuditEntry{{Time: final, Kind: "read", Validator: &addr, BeforeProof: true, Flags: []string{"x"}}}}
			sameAsV1[api.Audit](t, marshal(t, a, false))
		}},
		{"validators", func(t *testing.T) {
			v := api.Validators{NetworkID: 1, GenesisHash: cert.GenesisHash, TotalStake: 10,
				Validators: []consensus.Validator{{Name: "alice", Address: addr, Stake: 10}},
				Stats:      []api.ValidatorStats{{Address: addr, Name: "alice", Agreement: 0.75}}}
			sameAsV1[api.Validators](t, marshal(t, v, false))
		}},
		{"null for slices, pointers and times", func(t *testing.T) {
			sameAsV1[api.Job](t, []byte(`{"claims":null,"progress":null,"final_at":null,"certificate":null,"submitted_at":null}`))
		}},
		{"empty slices stay empty, not nil", func(t *testing.T) {
			sameAsV1[consensus.Certificate](t, []byte(`{"claims":[],"ballots":[]}`))
		}},
		{"uint64 extremes", func(t *testing.T) {
			sameAsV1[consensus.Quorum](t, []byte(`{"kind":"stake","num":18446744073709551615,"den":0}`))
		}},
		{"verdict codes", func(t *testing.T) { sameAsV1[[]claims.Verdict](t, []byte(`[0,1,2]`)) }},
		{"verdict code out of range", func(t *testing.T) { sameAsV1[[]claims.Verdict](t, []byte(`[3]`)) }},
		{"verdict null", func(t *testing.T) { sameAsV1[[]claims.Verdict](t, []byte(`[null]`)) }},
		{"empty signature", func(t *testing.T) { sameAsV1[consensus.Vote](t, []byte(`{"signature":"0x"}`)) }},
		{"null signature", func(t *testing.T) { sameAsV1[consensus.Vote](t, []byte(`{"signature":null}`)) }},
		{"null hash", func(t *testing.T) { sameAsV1[claims.Claim](t, []byte(`{"hash":null}`)) }},
		{"unicode escapes", func(t *testing.T) {
			sameAsV1[claims.Claim](t, []byte(`{"text":"caf\u00e9 \ud83d\ude00 \u2028 \/ \""}`))
		}},
		{"time with a zone offset and nanoseconds", func(t *testing.T) {
			sameAsV1[api.AuditEntry](t, []byte(`{"time":"2026-01-02T03:04:05.123456789+05:30"}`))
		}},
		{"members in another order", func(t *testing.T) {
			sameAsV1[consensus.Validator](t, []byte(`{"stake":1,"address":"0x24d25b727eba0c4d4ef2d15d2bf9f1a2883627bf","name":"a"}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// benchInput is a certificate of about 5 KB, compact as gossiped.
func benchInput(b *testing.B) []byte {
	c := testCertificate(b)
	base := c.Claims
	for len(marshalB(b, c)) < 5000 {
		cl := base[len(c.Claims)%len(base)]
		cl.Index = uint32(len(c.Claims))
		c.Claims = append(c.Claims, cl)
	}
	return marshalB(b, c)
}

func marshalB(b *testing.B, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecode compares strictjson with the encoding/json decoding it
// replaces, on a certificate of about 5 KB.
func BenchmarkDecode(b *testing.B) {
	data := benchInput(b)
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var c consensus.Certificate
			if err := decodeV1(data, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strictjson", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var c consensus.Certificate
			if err := strictjson.Decode(data, &c, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-v2-alone", func(b *testing.B) {
		// What strictjson costs beyond the library: the depth check and
		// the size check.
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var c consensus.Certificate
			if err := jsonv2.Unmarshal(data, &c, jsonv2.RejectUnknownMembers(true)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strictjson-brackets-in-strings", func(b *testing.B) {
		// The depth check's worst case: brackets in every string.
		in := []byte(`{"text":"` + strings.Repeat(`[{\"`, len(data)/4) + `"}`)
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			var c claims.Claim
			if err := strictjson.Decode(in, &c, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzSameAsEncodingJSON: Decode never panics, and whatever it accepts
// encoding/json accepts too and decodes to the same value; strictjson only
// refuses more.
func FuzzSameAsEncodingJSON(f *testing.F) {
	cert := testCertificate(f)
	f.Add(marshalF(f, api.Job{JobID: cert.JobID, Status: cert.Status, Certificate: cert}))
	f.Add([]byte(`{"claims":null,"final_at":null,"submitted_at":"2026-01-02T03:04:05.5+01:00"}`))
	f.Add([]byte(`{"status":"verified","Status":"rejected"}`))
	f.Add([]byte(`{"quorum":{"kind":"count","n":1,"n":2}} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got api.Job
		if err := strictjson.Decode(data, &got, 1<<20); err != nil {
			if !errors.Is(err, strictjson.ErrInvalid) {
				t.Fatalf("%v is not ErrInvalid", err)
			}
			return
		}
		var old api.Job
		if err := decodeV1(data, &old); err != nil {
			t.Fatalf("strictjson accepts what encoding/json refuses (%v)", err)
		}
		if !reflect.DeepEqual(old, got) {
			t.Fatalf("decoded differently:\nencoding/json %#v\nstrictjson    %#v", old, got)
		}
	})
}

func marshalF(f *testing.F, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return data
}
