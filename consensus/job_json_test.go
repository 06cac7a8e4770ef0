package consensus

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/internal/jsonw"
	"github.com/verity-network/verity/internal/strictjson"
)

func randomJob(r *rand.Rand) *Job {
	c := randomCertificate(r)
	j := &Job{NetworkID: c.NetworkID, JobID: c.JobID, Nonce: c.JobNonce, OutputHash: c.OutputHash,
		ClaimsRoot: c.ClaimsRoot, Quorum: c.Quorum, Replication: c.Replication, Deadline: c.DeadlineMS,
		Gateway: c.Gateway, Signature: c.GatewaySignature, Batch: c.GatewayBatch,
		Resend: []uint64{0, 1, math.MaxUint64}[r.IntN(3)]}
	if n := r.IntN(5) - 1; n >= 0 {
		j.Claims = make([]string, n)
		for i := range j.Claims {
			j.Claims[i] = texts[r.IntN(len(texts))]
		}
	}
	if r.IntN(3) > 0 {
		j.GatewayRecord = make([]byte, r.IntN(3)*100)
		fill(r, j.GatewayRecord)
	}
	return j
}

func strictJob(data []byte) (*Job, bool) {
	var j Job
	if err := strictjson.Decode(data, &j, 1<<20); err != nil {
		return nil, false
	}
	return &j, true
}

// TestJobJSONIsEncodingJSONs holds AppendJSON to encoding/json's bytes,
// and ParseJobJSON to the strict decoder: it takes every job whose claims
// need no escape, to the same value, and nothing written another way.
func TestJobJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	fast := 0
	for i := range 5000 {
		j := randomJob(r)
		want := wireJSON(t, j)
		got := j.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("job %d:\n got %s\nwant %s", i, got, want)
		}
		strict, ok := strictJob(got)
		if !ok {
			continue // invalid UTF-8 in a claim: the strict decoder refuses it
		}
		var back Job
		if !ParseJobJSON(got, &back) {
			plain := jsonw.Plain(j.Quorum.Kind)
			for _, s := range j.Claims {
				plain = plain && jsonw.Plain(s)
			}
			if plain {
				t.Fatalf("job %d, all its text plain, refused: %s", i, got)
			}
			continue
		}
		fast++
		if !reflect.DeepEqual(&back, strict) {
			t.Fatalf("job %d: fast\n%+v\nstrict\n%+v", i, back, *strict)
		}
		if spaced := bytes.Replace(got, []byte(`,"quorum":`), []byte(`, "quorum":`), 1); ParseJobJSON(spaced, &back) {
			t.Fatalf("job %d: took a space", i)
		}
	}
	if fast < 1000 {
		t.Fatalf("only %d of 5000 jobs took the fast path", fast)
	}
}

// FuzzParseJobJSON: whatever the fast path takes, the strict decoder
// takes to the same job, and it is exactly that job's encoding.
func FuzzParseJobJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 8 {
		f.Add(wireJSON(f, randomJob(r)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath(t, data, Job{Resend: 77}, ParseJobJSON, strictJob, true)
	})
}

// BenchmarkJobJSON compares the reflection-free encoding and reading of
// a one-claim job announcement (batched, with a gateway record) with
// encoding/json's and the strict decoder's followed by the canonical
// check (a second encoding).
func BenchmarkJobJSON(b *testing.B) {
	j := &Job{NetworkID: 31337, Claims: []string{"12 + 30 = 42."}, Quorum: DefaultQuorum,
		Deadline: 1767323045000, Signature: make([]byte, 65), GatewayRecord: make([]byte, 300),
		Batch: &BatchProof{Index: 1, Count: 4, Siblings: make([]common.Hash, 2)}}
	data := j.AppendJSON(nil)
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wireJSON(b, j)
		}
	})
	b.Run("encode/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			j.AppendJSON(make([]byte, 0, 5<<10))
		}
	})
	b.Run("decode/strict+canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, ok := strictJob(data)
			if !ok || !bytes.Equal(wireJSON(b, v), data) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("decode/parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Job
			if !ParseJobJSON(data, &v) {
				b.Fatal("refused")
			}
		}
	})
}
