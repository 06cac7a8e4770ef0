package node

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/jsonw"
)

// encodeReflect is the wire encoding as encoding/json writes it, which
// BallotMessage.AppendJSON must equal: nodes of older builds compare a
// ballot's bytes with it.
func encodeReflect(t *testing.T, v any) []byte {
	t.Helper()
	data, err := jsonw.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBallotMessageEncoding(t *testing.T) {
	b := consensus.Ballot{NetworkID: 7, JobID: common.Hash{1}, Vote: consensus.Vote{
		ClaimIndexes: []uint32{0, 3}, Verdicts: []claims.Verdict{claims.True, claims.Abstain},
		Signature: make([]byte, 65), Batch: &consensus.BatchProof{Index: 2, Count: 3, Siblings: []common.Hash{{9}, {8}}},
	}}
	for _, resend := range []uint64{0, 1, 10, 1<<64 - 1} {
		m := &BallotMessage{Ballot: b, Resend: resend}
		want := encodeReflect(t, m)
		got, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("resend %d:\n got %s\nwant %s", resend, got, want)
		}
		var back BallotMessage
		if !back.parseCanonical(got) {
			t.Fatalf("resend %d: parseCanonical refused %s", resend, got)
		}
		if back.Resend != resend || !bytes.Equal(back.AppendJSON(nil), got) {
			t.Fatalf("resend %d read back as %+v", resend, back)
		}
	}
	canonical := string(b.AppendJSON(nil))
	for _, tail := range []string{`,"resend":0}`, `,"resend":01}`, `,"resend":-1}`, `,"resend":1e3}`,
		`,"resend":18446744073709551616}`, `,"resend":1,"resend":2}`, `,"other":1}`, `} `, `,"resend":1} `} {
		data := canonical[:len(canonical)-1] + tail
		var m BallotMessage
		if m.parseCanonical([]byte(data)) {
			t.Errorf("parseCanonical took the tail %s", tail)
		}
	}
}
