package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// TestEventDataBytesUnchanged: the typed payloads encode to the bytes the
// node wrote when its events were maps, so that no reader sees a change.
func TestEventDataBytesUnchanged(t *testing.T) {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		typed, old any
	}{
		{"job accepted", &JobAcceptedData{Claims: 2, Deadline: deadline, Gateway: common.HexToAddress("0x1"), OutputHash: common.HexToHash("0x2"), Quorum: consensus.DefaultQuorum, Replication: 3},
			map[string]any{"gateway": common.HexToAddress("0x1"), "output_hash": common.HexToHash("0x2"), "claims": 2, "quorum": consensus.DefaultQuorum, "replication": uint32(3), "deadline": deadline}},
		{"claims extracted", &ClaimsExtractedData{Claims: []ClaimRef{{Index: 0, Hash: common.HexToHash("0x3")}}, ClaimsRoot: common.HexToHash("0x4")},
			map[string]any{"claims": []ClaimRef{{Index: 0, Hash: common.HexToHash("0x3")}}, "claims_root": common.HexToHash("0x4")}},
		{"ballot attached", &BallotAttachedData{ClaimIndexes: []uint32{0, 1}, Name: "n", Progress: []consensus.ClaimProgress{{Outcome: consensus.OutcomePending, Voters: []common.Address{}}}, Stake: 10, Validator: common.HexToAddress("0x5"), Verdicts: []claims.Verdict{claims.True, claims.Abstain}},
			map[string]any{"validator": common.HexToAddress("0x5"), "name": "n", "stake": uint64(10), "claim_indexes": []uint32{0, 1}, "verdicts": []claims.Verdict{claims.True, claims.Abstain}, "progress": []consensus.ClaimProgress{{Outcome: consensus.OutcomePending, Voters: []common.Address{}}}}},
		{"job expired, nothing undecided", &JobExpiredData{Ballots: 3}, map[string]any{"undecided": []uint32(nil), "ballots": 3}},
		{"certificate issued", &CertificateIssuedData{Certificate: &consensus.Certificate{Status: consensus.StatusVerified}, Status: consensus.StatusVerified},
			map[string]any{"status": consensus.StatusVerified, "certificate": &consensus.Certificate{Status: consensus.StatusVerified}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typed, err := json.Marshal(tc.typed)
			if err != nil {
				t.Fatal(err)
			}
			old, err := json.Marshal(tc.old)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(typed, old) {
				t.Fatalf("typed %s\n     was %s", typed, old)
			}
		})
	}
}

func TestEventDecodeData(t *testing.T) {
	data, _ := json.Marshal(&BallotAttachedData{ClaimIndexes: []uint32{0}, Name: "n", Verdicts: []claims.Verdict{claims.False}})
	e := Event{Type: EventBallotAttached, Data: data}
	got, err := e.DecodeData()
	if err != nil {
		t.Fatal(err)
	}
	b, ok := got.(*BallotAttachedData)
	if !ok || b.Name != "n" || len(b.Verdicts) != 1 || b.Verdicts[0] != claims.False {
		t.Fatalf("decoded %#v", got)
	}
	for _, bad := range []Event{
		{Type: EventBallotAttached, Data: []byte(`{"verdicts":[7]}`)},
		{Type: EventJobExpired, Data: []byte(`{"ballots":1,"extra":2}`)},
		{Type: EventJobExpired, Data: []byte(`{"ballots":1} {}`)},
		{Type: "job.unknown", Data: []byte(`{}`)},
	} {
		if _, err := bad.DecodeData(); err == nil {
			t.Errorf("%s %s decoded", bad.Type, bad.Data)
		}
	}
}
