package consensus

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/jsonw"
	"github.com/verity-network/verity/internal/strictjson"
)

// texts are claim texts and other strings: plain ones, which the fast
// path reads, and every kind encoding/json escapes, which it leaves to
// the strict decoder.
var texts = []string{"", "Paris is the capital of France.", "2 < 3 && 4 > 1", "Zürich liegt in der Schweiz.",
	"日本の首都は東京です。", `a "quoted" word`, `back\slash`, "line\nbreak", "tab\there", "nul\x00", "bell\x07",
	"del\x7f", "sep\u2028arator", "para\u2029graph", "bad \xff utf-8", "emoji 🙂", "\u00e9\u0301"}

func randomCertificate(r *rand.Rand) *Certificate {
	c := &Certificate{
		Version:     []uint32{0, 1, math.MaxUint32}[r.IntN(3)],
		NetworkID:   []uint64{0, 31337, math.MaxUint64}[r.IntN(3)],
		Quorum:      Quorum{Kind: []string{"stake", "count", "", "<&>"}[r.IntN(4)]},
		Replication: []uint32{0, 3, math.MaxUint32}[r.IntN(3)],
		DeadlineMS:  r.Uint64(),
		Status:      Status([]string{"verified", "rejected", "", "x\ny"}[r.IntN(4)]),
		IssuedAt:    time.UnixMilli(r.Int64N(1 << 45)).UTC(),
	}
	for _, h := range [][]byte{c.GenesisHash[:], c.JobID[:], c.JobNonce[:], c.OutputHash[:], c.ClaimsRoot[:], c.Gateway[:]} {
		fill(r, h)
	}
	q := []*uint64{&c.Quorum.Num, &c.Quorum.Den, &c.Quorum.N, &c.Quorum.M}
	for _, v := range q {
		*v = []uint64{0, 0, 2, 3, math.MaxUint64}[r.IntN(5)]
	}
	if n := r.IntN(5) - 1; n >= 0 {
		c.Claims = make([]CertClaim, n)
		for i := range c.Claims {
			c.Claims[i] = CertClaim{Index: r.Uint32(), Text: texts[r.IntN(len(texts))],
				Verdict: Outcome([]string{"true", "false", "undecided", "\\"}[r.IntN(4)]), StakeFor: r.Uint64(), StakeTotal: r.Uint64()}
			fill(r, c.Claims[i].Hash[:])
		}
	}
	if n := r.IntN(5) - 1; n >= 0 {
		c.Ballots = make([]Vote, n)
		for i := range c.Ballots {
			c.Ballots[i] = randomBallot(r).Vote
		}
	}
	if r.IntN(4) > 0 {
		c.GatewaySignature = make([]byte, []int{0, 65}[r.IntN(2)])
		fill(r, c.GatewaySignature)
	}
	if r.IntN(2) > 0 {
		c.GatewayBatch = randomBallot(r).Batch
	}
	return c
}

// wireJSON is v's wire encoding as encoding/json writes it.
func wireJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := jsonw.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// strictCertificate is what the general path, the strict decoder, makes
// of data; ok false if it refuses it.
func strictCertificate(data []byte) (*Certificate, bool) {
	var c Certificate
	if err := strictjson.Decode(data, &c, MaxCertificateSize); err != nil {
		return nil, false
	}
	return &c, true
}

// codec is one message's hand-written encoder and fast parser, with what
// checkCodec compares them to.
type codec[T any] struct {
	random func(*rand.Rand) *T
	encode func(*T) ([]byte, error)
	parse  func([]byte, *T) bool
	strict func([]byte) (*T, bool)
	plain  func(*T) bool // all the message's text needs no escape
}

// checkCodec holds, over 5,000 random messages, encode to encoding/json's
// bytes, and parse to the strict decoder: it takes every message whose
// text is plain, to the same value. took is called with each encoding
// parse took.
func checkCodec[T any](t *testing.T, r *rand.Rand, c codec[T], took func(data []byte)) {
	t.Helper()
	fast := 0
	for i := range 5000 {
		m := c.random(r)
		want := wireJSON(t, m)
		got, err := c.encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d:\n got %s\nwant %s", i, got, want)
		}
		strict, ok := c.strict(got)
		if !ok {
			continue // invalid UTF-8 in a text: the strict decoder refuses it
		}
		var back T
		if !c.parse(got, &back) {
			if c.plain(m) {
				t.Fatalf("message %d, all its text plain, refused: %s", i, got)
			}
			continue
		}
		fast++
		if !reflect.DeepEqual(&back, strict) {
			t.Fatalf("message %d: fast\n%+v\nstrict\n%+v", i, back, *strict)
		}
		if took != nil {
			took(got)
		}
	}
	if fast < 1000 {
		t.Fatalf("only %d of 5000 messages took the fast path", fast)
	}
}

// TestCertificateJSONIsEncodingJSONs: checkCodec of certificates.
func TestCertificateJSONIsEncodingJSONs(t *testing.T) {
	checkCodec(t, rand.New(rand.NewPCG(7, 8)), codec[Certificate]{
		random: randomCertificate,
		encode: func(c *Certificate) ([]byte, error) { return c.AppendJSON(nil) },
		parse:  ParseCertificateJSON, strict: strictCertificate, plain: plainText,
	}, nil)
}

func plainText(c *Certificate) bool {
	ok := jsonw.Plain(c.Quorum.Kind) && jsonw.Plain(string(c.Status))
	for _, cl := range c.Claims {
		ok = ok && jsonw.Plain(cl.Text) && jsonw.Plain(string(cl.Verdict))
	}
	return ok
}

// TestParseCertificateJSONCorpus: the certificates of testdata read the
// same by both paths, compacted (as gossiped) by the fast one.
func TestParseCertificateJSONCorpus(t *testing.T) {
	for _, name := range []string{"valid.json", "batched.json", "verified.json"} {
		raw, err := os.ReadFile("../testdata/certs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			t.Fatal(err)
		}
		strict, ok := strictCertificate(raw)
		if !ok {
			t.Fatalf("%s: the strict decoder refuses it", name)
		}
		var fast Certificate
		if ParseCertificateJSON(raw, &fast) {
			t.Errorf("%s: the fast path took the indented form", name)
		}
		if !ParseCertificateJSON(compact.Bytes(), &fast) {
			t.Fatalf("%s: the fast path refused the compact form", name)
		}
		if !reflect.DeepEqual(&fast, strict) {
			t.Fatalf("%s: fast %+v, strict %+v", name, fast, *strict)
		}
	}
}

// FuzzParseCertificateJSON: whatever the fast path takes, the strict
// decoder takes to the same certificate; and on what it refuses it leaves
// its output alone.
func FuzzParseCertificateJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 8 {
		f.Add(wireJSON(f, randomCertificate(r)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPath(t, data, Certificate{Version: 77}, ParseCertificateJSON, strictCertificate, false)
	})
}

// checkFastPath checks a fast path, parse, against the strict decoder on
// data: a refusal leaves the output (set to sentinel) alone; what it takes
// the strict decoder takes to the same value; and, if canonical, data is
// exactly that value's encoding.
func checkFastPath[T any](t *testing.T, data []byte, sentinel T, parse func([]byte, *T) bool, strict func([]byte) (*T, bool), canonical bool) {
	t.Helper()
	fast := sentinel
	if !parse(data, &fast) {
		if !reflect.DeepEqual(fast, sentinel) {
			t.Fatalf("a refusal changed its output: %+v", fast)
		}
		return
	}
	want, ok := strict(data)
	if !ok {
		t.Fatalf("fast path took %q, the strict decoder refuses it", data)
	}
	if !reflect.DeepEqual(&fast, want) {
		t.Fatalf("%q: fast %+v, strict %+v", data, fast, *want)
	}
	if enc := wireJSON(t, want); canonical && !bytes.Equal(enc, data) {
		t.Fatalf("fast path took %q, whose encoding is %q", data, enc)
	}
}

// BenchmarkCertificateJSON compares the reflection-free encoding and
// reading of a certificate (testdata/certs/batched.json: 5 claims, 4
// ballots with batch proofs) with encoding/json's and the strict
// decoder's.
func BenchmarkCertificateJSON(b *testing.B) {
	raw, err := os.ReadFile("../testdata/certs/batched.json")
	if err != nil {
		b.Fatal(err)
	}
	c, ok := strictCertificate(raw)
	if !ok {
		b.Fatal("strict decoder refused the certificate")
	}
	data := wireJSON(b, c)
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wireJSON(b, c)
		}
	})
	b.Run("encode/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AppendJSON(make([]byte, 0, 5<<10)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := strictCertificate(data); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("decode/parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Certificate
			if !ParseCertificateJSON(data, &v) {
				b.Fatal("refused")
			}
		}
	})
	bin := CertificateBinary(c)
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Certificate
			if err := ParseCertificateBinary(bin, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestJSONSizeHints: the size each encoder grows its buffer to holds
// the encoding of a typical message without growing again, and is not
// much larger.
func TestJSONSizeHints(t *testing.T) {
	raw, err := os.ReadFile("../testdata/certs/batched.json")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := strictCertificate(raw)
	if !ok {
		t.Fatal("strict decoder refused the certificate")
	}
	job := &Job{NetworkID: 31337, Claims: []string{"12 + 30 = 42.", "The sky is blue."}, Quorum: DefaultQuorum,
		Signature: make([]byte, 65), GatewayRecord: make([]byte, 300), Batch: &BatchProof{Count: 4, Siblings: make([]common.Hash, 2)}}
	ballot := &Ballot{NetworkID: 31337, Vote: Vote{ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True},
		Signature: make([]byte, 65), Batch: &BatchProof{Index: 5, Count: 12, Siblings: make([]common.Hash, 4)}}}
	certData, err := c.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name     string
		data     []byte
		sizeHint int
	}{
		{"certificate", certData, c.jsonSize()},
		{"job", job.AppendJSON(nil), job.jsonSize()},
		{"ballot", ballot.AppendJSON(nil), ballot.jsonSize()},
	} {
		t.Logf("%s: %d bytes, hint %d", m.name, len(m.data), m.sizeHint)
		if m.sizeHint < len(m.data) || m.sizeHint > len(m.data)*5/4 {
			t.Errorf("%s of %d bytes: size hint %d", m.name, len(m.data), m.sizeHint)
		}
	}
}
