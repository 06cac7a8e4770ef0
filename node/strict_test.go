package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/sigs"
)

// strictFixture is a two-validator set and a job and ballot they signed.
type strictFixture struct {
	set    *consensus.ValidatorSet
	keys   []*ecdsa.PrivateKey
	job    []byte // encoded as gossiped
	ballot []byte // a BallotMessage with Resend set
	ev     []byte // evidence of two conflicting ballots
}

func newStrictFixture(t *testing.T) *strictFixture {
	t.Helper()
	f := &strictFixture{}
	g := &consensus.Genesis{NetworkID: 7}
	for i := range 2 {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{byte(i), 's', 't', 'r', 'i', 'c', 't'}))
		if err != nil {
			t.Fatal(err)
		}
		f.keys = append(f.keys, k)
		g.Validators = append(g.Validators, consensus.Validator{Name: string(rune('a' + i)), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 10})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	f.set = set
	cs := claims.FromTexts([]string{"Paris is the capital of France.", "2 + 2 = 4."})
	m := &JobMessage{
		NetworkID: 7, OutputHash: claims.OutputHash([]byte("x")), ClaimsRoot: claims.RootOf(cs),
		Claims: []string{cs[0].Text, cs[1].Text}, Quorum: consensus.DefaultQuorum,
		Deadline: uint64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()), Gateway: crypto.PubkeyToAddress(f.keys[0].PublicKey),
	}
	m.JobID = m.Params().ID()
	if m.Signature, err = sigs.SignDigest(f.keys[0], m.Digest()); err != nil {
		t.Fatal(err)
	}
	s := sigs.NewKeySigner(f.keys[1])
	b1, err := consensus.SignBallot(s, 7, m.JobID, m.OutputHash, m.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.True, claims.False})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := consensus.SignBallot(s, 7, m.JobID, m.OutputHash, m.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.False, claims.False})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		dst *[]byte
		v   any
	}{
		{&f.job, m},
		{&f.ballot, &BallotMessage{Ballot: *b1, Resend: 2}},
		{&f.ev, &consensus.Evidence{Validator: s.Address(), First: *b1, Second: *b2}},
	} {
		if *e.dst, err = encode(e.v); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// first puts member (`"name":value`) first in the top-level object.
func first(data []byte, member string) string {
	return "{" + member + "," + string(data[1:])
}

// before puts member before the first member named name, wherever it is.
func before(t *testing.T, data []byte, name, member string) string {
	t.Helper()
	loc := regexp.MustCompile(`"` + name + `":`).FindIndex(data)
	if loc == nil {
		t.Fatalf("no member %q in %s", name, data)
	}
	return string(data[:loc[0]]) + member + "," + string(data[loc[0]:])
}

// TestDecodeStrict: a gossiped job, ballot or evidence that another parser
// could read differently is refused as ErrDecode, naming the key.
func TestDecodeStrict(t *testing.T) {
	f := newStrictFixture(t)
	decJob := func(data []byte) error { _, err := DecodeJob(data, f.set); return err }
	decBallot := func(data []byte) error { _, err := DecodeBallot(data, f.set); return err }
	decEvidence := func(data []byte) error { _, err := DecodeEvidence(data, f.set); return err }
	for name, dec := range map[string]func([]byte) error{"job": decJob, "ballot": decBallot, "evidence": decEvidence} {
		data := map[string][]byte{"job": f.job, "ballot": f.ballot, "evidence": f.ev}[name]
		if err := dec(data); err != nil {
			t.Fatalf("the valid %s is refused: %v", name, err)
		}
	}
	tests := []struct {
		name   string
		decode func([]byte) error
		data   string
		want   string
	}{
		{"job duplicate network id", decJob, first(f.job, `"network_id":8`), `duplicate key "network_id"`},
		{"job duplicate claims", decJob, first(f.job, `"claims":["Paris is not the capital of France."]`), `duplicate key "claims"`},
		{"job duplicate quorum kind", decJob, before(t, f.job, "kind", `"kind":"count"`), `duplicate key "kind" in /quorum`},
		{"job case-variant network id", decJob, first(f.job, `"Network_ID":8`), `unknown key "Network_ID"`},
		{"job case-variant deadline", decJob, first(f.job, `"DEADLINE":1`), `unknown key "DEADLINE"`},
		{"job trailing data", decJob, string(f.job) + `{}`, "trailing data"},
		{"ballot duplicate verdicts", decBallot, first(f.ballot, `"verdicts":[1,1]`), `duplicate key "verdicts"`},
		{"ballot duplicate validator of the embedded vote", decBallot, first(f.ballot, `"validator":"0x0000000000000000000000000000000000000001"`), `duplicate key "validator"`},
		{"ballot duplicate resend", decBallot, first(f.ballot, `"resend":1`), `duplicate key "resend"`},
		{"ballot case-variant verdicts", decBallot, first(f.ballot, `"Verdicts":[1,1]`), `unknown key "Verdicts"`},
		{"ballot case-variant job id", decBallot, first(f.ballot, `"Job_Id":"0x00"`), `unknown key "Job_Id"`},
		{"evidence duplicate verdicts in a ballot", decEvidence, before(t, f.ev, "verdicts", `"verdicts":[1,1]`), `duplicate key "verdicts" in /first`},
		{"evidence case-variant first", decEvidence, first(f.ev, `"First":{}`), `unknown key "First"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode([]byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrDecode) || !errors.Is(err, strictjson.ErrInvalid) {
				t.Fatalf("%v: want ErrDecode and strictjson.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: want %q in it", err, tt.want)
			}
		})
	}
}

// TestDecodeSameAsEncodingJSON: the gossiped messages, with their embedded
// structs and methods, decode as encoding/json decoded them.
func TestDecodeSameAsEncodingJSON(t *testing.T) {
	f := newStrictFixture(t)
	check := func(t *testing.T, data []byte, old, got any) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(old); err != nil {
			t.Fatal(err)
		}
		if err := strictjson.Decode(data, got, len(data)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(old, got) {
			t.Fatalf("decoded differently:\nencoding/json %#v\nstrictjson    %#v", old, got)
		}
	}
	t.Run("job", func(t *testing.T) { check(t, f.job, new(JobMessage), new(JobMessage)) })
	t.Run("ballot with resend", func(t *testing.T) { check(t, f.ballot, new(BallotMessage), new(BallotMessage)) })
	t.Run("evidence", func(t *testing.T) { check(t, f.ev, new(consensus.Evidence), new(consensus.Evidence)) })
}

// TestHTTPBodyStrict: a request body that another parser could read
// differently is a 400 invalid_json naming the key.
func TestHTTPBodyStrict(t *testing.T) {
	f := newStrictFixture(t)
	n, err := New(Options{Key: f.keys[0], Genesis: f.set.Genesis(), Verifier: claims.Arithmetic{}, DataDir: t.TempDir(), RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.opts.MaxPendingJobs = -1 // a body that decodes goes no further
	h := n.Handler()
	tests := []struct {
		name   string
		body   string
		status int
		code   string
		want   string
	}{
		{"duplicate output", `{"output":"Paris is the capital of France.","output":"Paris is the capital of Spain."}`, 400, "invalid_json", `request body: invalid JSON: duplicate key "output" (offset 44)`},
		{"case-variant output", `{"Output":"Paris is the capital of France."}`, 400, "invalid_json", `request body: invalid JSON: unknown key "Output" (offset 1)`},
		{"duplicate quorum", `{"output":"a","quorum":"2/3","quorum":"1/2"}`, 400, "invalid_json", `duplicate key "quorum"`},
		{"trailing object", `{"output":"a"} {"output":"b"}`, 400, "invalid_json", "trailing data"},
		{"invalid UTF-8", "{\"output\":\"\xff\"}", 400, "invalid_json", "invalid UTF-8"},
		{"too deep", `{"output":` + strings.Repeat("[", 100) + `}`, 400, "invalid_json", "nested deeper than 64"},
		{"too large", `{"output":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "body_too_large", "request body exceeds 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(context.Background(), "POST", "/v1/verify", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if e.Code != tt.code || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("answer %+v, want code %q and %q in the message", e, tt.code, tt.want)
			}
		})
	}
}
