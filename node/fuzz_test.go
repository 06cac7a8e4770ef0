package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/sigs"
)

// fuzzSet is a fixed two-validator set with real keys, and messages they
// signed, to seed the fuzzers with valid inputs.
func fuzzSet(f *testing.F) (*consensus.ValidatorSet, []*ecdsa.PrivateKey) {
	var keys []*ecdsa.PrivateKey
	g := &consensus.Genesis{NetworkID: 7}
	for i := range 2 {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{byte(i), 'f', 'u', 'z', 'z'}))
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
		g.Validators = append(g.Validators, consensus.Validator{Name: string(rune('a' + i)), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 10})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		f.Fatal(err)
	}
	return set, keys
}

func fuzzJob(f *testing.F, set *consensus.ValidatorSet, key *ecdsa.PrivateKey) *JobMessage {
	cs := claims.FromTexts([]string{"Paris is the capital of France.", "2 + 2 = 4."})
	m := &JobMessage{
		NetworkID: 7, OutputHash: claims.OutputHash([]byte("x")), ClaimsRoot: claims.RootOf(cs),
		Claims: []string{cs[0].Text, cs[1].Text}, Quorum: consensus.DefaultQuorum,
		Deadline: uint64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()), Gateway: crypto.PubkeyToAddress(key.PublicKey),
	}
	m.JobID = m.Params().ID()
	sig, err := sigs.SignDigest(key, m.Digest())
	if err != nil {
		f.Fatal(err)
	}
	m.Signature = sig
	return m
}

func mustJSON(f *testing.F, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzDecodeJob: no input makes the job decoder panic, and whatever it
// accepts is a job whose id and signature check out.
func FuzzDecodeJob(f *testing.F) {
	set, keys := fuzzSet(f)
	m := fuzzJob(f, set, keys[0])
	f.Add(mustJSON(f, m))
	// Three announcements signed in one batch: the second, with its proof.
	batch := []*JobMessage{fuzzJob(f, set, keys[0]), fuzzJob(f, set, keys[0]), fuzzJob(f, set, keys[0])}
	for i, j := range batch {
		j.Resend = uint64(i)
	}
	if err := consensus.SignJobBatch(sigs.NewKeySigner(keys[0]), batch); err != nil {
		f.Fatal(err)
	}
	if _, err := DecodeJob(mustJSON(f, batch[1]), set); err != nil {
		f.Fatalf("a batched job is refused: %v", err)
	}
	f.Add(mustJSON(f, batch[1]))
	f.Add([]byte(`{"network_id": 7}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeJob(data, set)
		if err != nil {
			return
		}
		if got.Params().ID() != got.JobID {
			t.Fatal("accepted a job whose id does not match its parameters")
		}
		// Signed alone, or in a batch whose root its proof leads to.
		digest, ok := got.SignedDigest()
		if signer, err := sigs.Recover(digest, got.Signature); !ok || err != nil || signer != got.Gateway {
			t.Fatal("accepted a job not signed by its gateway")
		}
		if got.Batch == nil && digest != got.Digest() {
			t.Fatal("a job signed alone recovers over another digest than its own")
		}
	})
}

// FuzzDecodeBallot: no input makes the ballot decoder panic, and whatever
// it accepts is signed by a validator of the set.
func FuzzDecodeBallot(f *testing.F) {
	set, keys := fuzzSet(f)
	m := fuzzJob(f, set, keys[0])
	b, err := consensus.SignBallot(sigs.NewKeySigner(keys[1]), 7, m.JobID, m.OutputHash, m.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.True, claims.False})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustJSON(f, b))
	f.Add(mustJSON(f, &BallotMessage{Ballot: *b, Resend: 3}))
	f.Add([]byte(`{"verdicts": [3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeBallot(data, set)
		if err != nil {
			return
		}
		if _, _, ok := set.Lookup(got.Validator); !ok {
			t.Fatal("accepted a ballot from outside the set")
		}
		if err := consensus.VerifyBallotSignature(got); err != nil {
			t.Fatalf("accepted a ballot with a bad signature: %v", err)
		}
	})
}

// FuzzDecodeEvidence: no input makes the evidence decoder panic.
func FuzzDecodeEvidence(f *testing.F) {
	set, keys := fuzzSet(f)
	m := fuzzJob(f, set, keys[0])
	s := sigs.NewKeySigner(keys[1])
	b1, _ := consensus.SignBallot(s, 7, m.JobID, m.OutputHash, m.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.True, claims.True})
	b2, _ := consensus.SignBallot(s, 7, m.JobID, m.OutputHash, m.ClaimsRoot, []uint32{0, 1}, []claims.Verdict{claims.False, claims.True})
	f.Add(mustJSON(f, &consensus.Evidence{Validator: s.Address(), First: *b1, Second: *b2}))
	f.Add(mustJSON(f, &consensus.Evidence{Validator: s.Address(), First: *b1, Second: *b1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := DecodeEvidence(data, set); err == nil && e.First.SameContent(&e.Second.Vote) &&
			e.First.OutputHash == e.Second.OutputHash && e.First.ClaimsRoot == e.Second.ClaimsRoot {
			t.Fatal("accepted evidence of two identical ballots")
		}
	})
}

// FuzzVerifyRequest drives POST /v1/verify's body decoding and checks with
// arbitrary bodies: never a panic, never a 5xx, always a JSON answer.
func FuzzVerifyRequest(f *testing.F) {
	set, keys := fuzzSet(f)
	n, err := New(Options{Key: keys[0], Genesis: set.Genesis(), Verifier: claims.Arithmetic{}, DataDir: f.TempDir(), RateLimit: -1})
	if err != nil {
		f.Fatal(err)
	}
	// Submissions stop before touching the store or the network: the
	// fuzzer exercises decoding and validation only.
	n.opts.MaxPendingJobs = -1
	h := n.Handler()
	f.Add([]byte(`{"output": "Paris is the capital of France."}`))
	f.Add([]byte(`{"output": "a", "quorum": "3of5", "replication": 2, "deadline_ms": 10}`))
	f.Add([]byte(`{"output": 1}`))
	f.Add([]byte(`{"output": "x"} {"output": "y"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequestWithContext(context.Background(), "POST", "/v1/verify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var e map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("non-JSON answer %q", rec.Body)
		}
	})
}
