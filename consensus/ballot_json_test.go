package consensus

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/strictjson"
)

// randomBallot is a ballot of any shape the JSON can carry: nil, empty
// and full lists, with and without a batch proof, numbers at their
// bounds. Not every one is valid; the encoding does not care.
func randomBallot(r *rand.Rand) *Ballot {
	b := &Ballot{NetworkID: []uint64{0, 1, 31337, math.MaxUint64, r.Uint64()}[r.IntN(5)]}
	for _, h := range []*common.Hash{&b.JobID, &b.OutputHash, &b.ClaimsRoot} {
		fill(r, h[:])
	}
	fill(r, b.Validator[:])
	n := r.IntN(6) - 1 // -1: nil
	if n >= 0 {
		b.ClaimIndexes = make([]uint32, n)
		b.Verdicts = make([]claims.Verdict, n)
		for i := range n {
			b.ClaimIndexes[i] = []uint32{0, 9, 10, math.MaxUint32, r.Uint32()}[r.IntN(5)]
			b.Verdicts[i] = claims.Verdict(r.IntN(3))
		}
	}
	if r.IntN(4) > 0 {
		b.Signature = make([]byte, []int{0, 65, 1, 64}[r.IntN(4)])
		fill(r, b.Signature)
	}
	if r.IntN(3) > 0 {
		b.Batch = &BatchProof{Index: r.Uint32(), Count: []uint32{0, 1, math.MaxUint32, r.Uint32()}[r.IntN(4)]}
		if s := r.IntN(6) - 1; s >= 0 {
			b.Batch.Siblings = make([]common.Hash, s)
			for i := range b.Batch.Siblings {
				fill(r, b.Batch.Siblings[i][:])
			}
		}
	}
	return b
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
}

// TestBallotJSONIsEncodingJSONs holds AppendJSON to encoding/json's bytes,
// which every node of a network compares a ballot's encoding against, and
// ParseBallotJSON to reading back what it wrote.
func TestBallotJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		b := randomBallot(r)
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got := b.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("ballot %d:\n got %s\nwant %s", i, got, want)
		}
		var back Ballot
		rest, ok := ParseBallotJSON(got, &back)
		if !ok || string(rest) != "}" {
			t.Fatalf("ballot %d: ParseBallotJSON = %q, %v on %s", i, rest, ok, got)
		}
		if b.Signature == nil {
			b.Signature = []byte{} // "0x" reads as no bytes, not nil
		}
		if !reflect.DeepEqual(&back, b) {
			t.Fatalf("ballot %d read back as\n%+v\nwant\n%+v", i, back, *b)
		}
	}
}

// TestParseBallotJSONRefusesOtherForms: every other way to write the same
// ballot, or a ballot out of range, is not taken by the fast path (the
// general decoder then decodes it and refuses it as not canonical, or as
// malformed).
func TestParseBallotJSONRefusesOtherForms(t *testing.T) {
	b := randomBallot(rand.New(rand.NewPCG(3, 4)))
	b.ClaimIndexes, b.Verdicts = []uint32{7}, []claims.Verdict{1}
	b.Signature = make([]byte, 65)
	b.Batch = &BatchProof{Index: 1, Count: 2, Siblings: []common.Hash{{1}}}
	canonical := string(b.AppendJSON(nil))
	var back Ballot
	if _, ok := ParseBallotJSON([]byte(canonical), &back); !ok {
		t.Fatal("canonical ballot refused")
	}
	edits := map[string][2]string{
		"space after a colon":    {`"network_id":`, `"network_id": `},
		"upper-case hex":         {`"0x0100`, `"0X0100`},
		"upper-case digit":       {`"0x0100000000`, `"0x01000000AA`},
		"leading zero":           {`"claim_indexes":[7]`, `"claim_indexes":[07]`},
		"verdict out of range":   {`"verdicts":[1]`, `"verdicts":[3]`},
		"verdict as a string":    {`"verdicts":[1]`, `"verdicts":["1"]`},
		"index over uint32":      {`"claim_indexes":[7]`, `"claim_indexes":[4294967296]`},
		"exponent":               {`"claim_indexes":[7]`, `"claim_indexes":[7e0]`},
		"verdicts left out":      {`"verdicts":[1],"signature"`, `"signature"`},
		"odd hex":                {`"signature":"0x00`, `"signature":"0x0`},
		"short hash":             {`"siblings":["0x01`, `"siblings":["0x`},
		"trailing comma":         {`"claim_indexes":[7]`, `"claim_indexes":[7,]`},
		"list without its [":     {`"claim_indexes":[7]`, `"claim_indexes":]`},
		"list without its ]":     {`"claim_indexes":[7]`, `"claim_indexes":[7`},
		"escaped hex digit":      {`"signature":"0x00`, `"signature":"0x\u0030`},
		"count over uint32":      {`"count":2`, `"count":4294967296`},
		"batch without siblings": {`,"siblings":["0x0100000000000000000000000000000000000000000000000000000000000000"]`, ``},
	}
	for name, e := range edits {
		t.Run(name, func(t *testing.T) {
			if !bytes.Contains([]byte(canonical), []byte(e[0])) {
				t.Fatalf("the edit's %q is not in %s", e[0], canonical)
			}
			data := bytes.Replace([]byte(canonical), []byte(e[0]), []byte(e[1]), 1)
			if _, ok := ParseBallotJSON(data, &back); ok {
				t.Fatalf("took %s", data)
			}
		})
	}
}

// FuzzParseBallotJSON: whatever bytes the fast path takes as a ballot,
// the strict general decoder takes too, to the same ballot, and they are
// exactly that ballot's encoding. So the fast path can take nothing the
// general path with its canonical check would refuse.
func FuzzParseBallotJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		f.Add(randomBallot(r).AppendJSON(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Ballot
		rest, ok := ParseBallotJSON(data, &fast)
		if !ok || string(rest) != "}" {
			return
		}
		var slow Ballot
		if err := strictjson.Decode(data, &slow, len(data)+1); err != nil {
			t.Fatalf("fast path took %q, the strict decoder refuses it: %v", data, err)
		}
		if slow.Signature == nil {
			slow.Signature = []byte{}
		}
		if !reflect.DeepEqual(&fast, &slow) {
			t.Fatalf("%q: fast %+v, strict %+v", data, fast, slow)
		}
		if enc, _ := json.Marshal(&slow); !bytes.Equal(enc, data) {
			t.Fatalf("fast path took %q, whose encoding is %q", data, enc)
		}
	})
}

// BenchmarkBallotJSON compares the reflection-free encoding and reading
// of a one-claim batched ballot with encoding/json's and the strict
// decoder's.
func BenchmarkBallotJSON(b *testing.B) {
	ballot := &Ballot{NetworkID: 31337, Vote: Vote{ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True},
		Signature: make([]byte, 65), Batch: &BatchProof{Index: 5, Count: 12, Siblings: make([]common.Hash, 4)}}}
	data := ballot.AppendJSON(nil)
	b.Run("encode/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ballot); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ballot.AppendJSON(make([]byte, 0, 1024))
		}
	})
	b.Run("decode/strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Ballot
			if err := strictjson.Decode(data, &v, 1<<16); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Ballot
			if _, ok := ParseBallotJSON(data, &v); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// TestFlatHintLooksOnlyAtItsList: the room a flat list is given is
// counted in the list itself, at most flatScan bytes of it: a null list
// or a long message after a list costs no scan of the rest (a
// certificate of many votes with null lists would otherwise be read
// once per list, in time quadratic in its size).
func TestFlatHintLooksOnlyAtItsList(t *testing.T) {
	for _, tc := range []struct {
		data string
		want int
	}{
		{`1]`, 1},
		{`1,2,3],"x":[4,5,6,7]`, 3},
		{strings.Repeat(`1,`, 100) + `1]`, maxListHint},
		{strings.Repeat(` `, flatScan) + `,,,]`, 1}, // the commas lie past the scan
		{`1,,,,`, 5}, // no ']' at all: the commas within the scan
	} {
		if got := flatHint([]byte(tc.data)); got != tc.want {
			t.Errorf("flatHint(%.20q...) = %d, want %d", tc.data, got, tc.want)
		}
	}

	// Votes with null lists, then a long tail: each null list is read
	// without looking past it. Counted by the bytes the hint would scan.
	var scanned int
	p := &jsonParser{data: []byte(`null,` + strings.Repeat(`0,`, 1<<16) + `]`)}
	var v []uint32
	if !readListOf(p, &v, readIndex, func(rest []byte) int { scanned += len(rest); return 1 }) || v != nil {
		t.Fatalf("null list: %v %v", v, p.data[:8])
	}
	if scanned != 0 {
		t.Errorf("a null list scanned %d bytes after it", scanned)
	}
}
