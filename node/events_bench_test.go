package node

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// BenchmarkEventPublish publishes the events a gateway publishes for a
// one-claim job (accepted, claims extracted, four ballots attached, one
// claim decided) into a hub without subscribers, as at saturation.
func BenchmarkEventPublish(b *testing.B) {
	h := newEventHub(4096, 16<<20, time.Unix(1, 0))
	now := time.Now()
	progress := []consensus.ClaimProgress{{Index: 0, Outcome: consensus.OutcomeTrue, StakeTrue: 3, StakeAssigned: 4, Needed: 3}}
	b.ReportAllocs()
	for b.Loop() {
		job := common.Hash{1}
		h.publish(api.EventJobAccepted, job, now, &api.JobAcceptedData{Claims: 1, Deadline: now, Quorum: consensus.DefaultQuorum, Replication: 0})
		h.publish(api.EventClaimsExtracted, job, now, &api.ClaimsExtractedData{Claims: []api.ClaimRef{{Index: 0}}})
		for range 4 {
			h.publish(api.EventBallotAttached, job, now, &api.BallotAttachedData{Name: "validator-1", ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True}, Progress: progress, Stake: 1})
		}
		h.publish(api.EventClaimDecided, job, now, &progress[0])
	}
}
