package consensus

import (
	"bytes"
	"math"
	"math/rand/v2"
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

// TestJobJSONIsEncodingJSONs: checkCodec of jobs, and the fast path takes
// nothing written another way (a space).
func TestJobJSONIsEncodingJSONs(t *testing.T) {
	checkCodec(t, rand.New(rand.NewPCG(11, 12)), codec[Job]{
		random: randomJob,
		encode: func(j *Job) ([]byte, error) { return j.AppendJSON(nil), nil },
		parse:  ParseJobJSON, strict: strictJob,
		plain: func(j *Job) bool {
			plain := jsonw.Plain(j.Quorum.Kind)
			for _, s := range j.Claims {
				plain = plain && jsonw.Plain(s)
			}
			return plain
		},
	}, func(data []byte) {
		var back Job
		if spaced := bytes.Replace(data, []byte(`,"quorum":`), []byte(`, "quorum":`), 1); ParseJobJSON(spaced, &back) {
			t.Fatalf("took a space: %s", spaced)
		}
	})
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
