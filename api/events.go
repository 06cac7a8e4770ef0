package api

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/jsonw"
	"github.com/verity-network/verity/internal/strictjson"
)

// The data of each event type. Fields are in the order of their JSON names,
// so that an event's bytes are what they were when events were maps.

// JobAcceptedData is the data of a job.accepted event.
type JobAcceptedData struct {
	Claims      int              `json:"claims"`
	Deadline    time.Time        `json:"deadline"`
	Gateway     common.Address   `json:"gateway"`
	OutputHash  common.Hash      `json:"output_hash"`
	Quorum      consensus.Quorum `json:"quorum"`
	Replication uint32           `json:"replication"`
}

// ClaimRef names a claim in events without its text: events show the proof
// forming, not the answer.
type ClaimRef struct {
	Index uint32      `json:"index"`
	Hash  common.Hash `json:"hash"`
}

// ClaimsExtractedData is the data of a claims.extracted event.
type ClaimsExtractedData struct {
	Claims     []ClaimRef  `json:"claims"`
	ClaimsRoot common.Hash `json:"claims_root"`
}

// BallotAttachedData is the data of a ballot.attached event: the ballot
// the gateway counted and every claim's progress after it.
type BallotAttachedData struct {
	ClaimIndexes []uint32                  `json:"claim_indexes"`
	Name         string                    `json:"name"`
	Progress     []consensus.ClaimProgress `json:"progress"`
	Stake        uint64                    `json:"stake"`
	Validator    common.Address            `json:"validator"`
	Verdicts     []claims.Verdict          `json:"verdicts"`
}

// ClaimDecidedData is the data of a claim.decided event: the claim's
// progress when its outcome became final.
type ClaimDecidedData = consensus.ClaimProgress

// JobExpiredData is the data of a job.expired event.
type JobExpiredData struct {
	Ballots   int      `json:"ballots"`
	Undecided []uint32 `json:"undecided"`
}

// CertificateIssuedData is the data of a certificate.issued event.
type CertificateIssuedData struct {
	Certificate *consensus.Certificate `json:"certificate"`
	Status      consensus.Status       `json:"status"`
}

// maxEventDataBytes bounds the data of one event: a certificate, at most
// consensus.MaxCertificateSize, and its status.
const maxEventDataBytes = 2 * consensus.MaxCertificateSize

// DecodeData decodes the event's data into the type of its event type: a
// *JobAcceptedData, *ClaimsExtractedData, *BallotAttachedData,
// *ClaimDecidedData, *JobExpiredData or *CertificateIssuedData. It decodes
// strictly (internal/strictjson); an event type it does not know is an
// error.
func (e *Event) DecodeData() (any, error) {
	var v any
	switch e.Type {
	case EventJobAccepted:
		v = new(JobAcceptedData)
	case EventClaimsExtracted:
		v = new(ClaimsExtractedData)
	case EventBallotAttached:
		v = new(BallotAttachedData)
	case EventClaimDecided:
		v = new(ClaimDecidedData)
	case EventJobExpired:
		v = new(JobExpiredData)
	case EventCertificateIssued:
		v = new(CertificateIssuedData)
	default:
		return nil, fmt.Errorf("event %d: unknown type %q", e.ID, e.Type)
	}
	if err := strictjson.Decode(e.Data, v, maxEventDataBytes); err != nil {
		return nil, fmt.Errorf("event %d (%s): %w", e.ID, e.Type, err)
	}
	return v, nil
}

// AppendJSON appends d's JSON to dst: byte for byte what encoding/json's
// Marshal writes for d (TestBallotAttachedJSON), without reflection: a
// gateway writes one for every ballot it counts.
func (d *BallotAttachedData) AppendJSON(dst []byte) []byte {
	size := 200 + len(d.Name) + 4*len(d.ClaimIndexes) + 2*len(d.Verdicts)
	for i := range d.Progress {
		size += d.Progress[i].JSONSize()
	}
	dst = slices.Grow(dst, size)
	dst = consensus.AppendUints(append(dst, `{"claim_indexes":`...), d.ClaimIndexes)
	dst = jsonw.AppendStringHTML(append(dst, `,"name":`...), d.Name)
	dst = consensus.AppendProgresses(append(dst, `,"progress":`...), d.Progress)
	dst = strconv.AppendUint(append(dst, `,"stake":`...), d.Stake, 10)
	dst = append(dst, `,"validator":"0x`...)
	dst = append(hex.AppendEncode(dst, d.Validator[:]), '"')
	dst = consensus.AppendUints(append(dst, `,"verdicts":`...), d.Verdicts)
	return append(dst, '}')
}
