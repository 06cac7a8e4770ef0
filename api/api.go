// Package api holds the JSON types of Verity's HTTP API, shared by the node
// that serves them and the client that reads them.
package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	Output string `json:"output"`
	Prompt string `json:"prompt,omitempty"`
	// Quorum is "num/den" (more than that fraction of the assigned stake) or
	// "NofM" (at least N of the M assigned validators); empty uses the
	// node's default.
	Quorum string `json:"quorum,omitempty"`
	// Replication is validators per claim; absent uses the node's default,
	// 0 means every validator.
	Replication *uint32 `json:"replication,omitempty"`
	// DeadlineMS bounds the job in milliseconds; 0 uses the node's default.
	DeadlineMS int64 `json:"deadline_ms,omitempty"`
}

// Job is a job as the API shows it. Status is "provisional" until the
// certificate exists; Certificate is set once it does.
type Job struct {
	JobID       common.Hash               `json:"job_id"`
	Status      consensus.Status          `json:"status"`
	OutputHash  common.Hash               `json:"output_hash"`
	ClaimsRoot  common.Hash               `json:"claims_root"`
	Claims      []claims.Claim            `json:"claims"`
	Output      string                    `json:"output,omitempty"`
	Prompt      string                    `json:"prompt,omitempty"`
	Quorum      consensus.Quorum          `json:"quorum"`
	Replication uint32                    `json:"replication"`
	Gateway     common.Address            `json:"gateway"`
	SubmittedAt time.Time                 `json:"submitted_at,omitzero"`
	Deadline    time.Time                 `json:"deadline,omitzero"`
	FinalAt     *time.Time                `json:"final_at,omitempty"`
	Progress    []consensus.ClaimProgress `json:"progress,omitempty"`
	Certificate *consensus.Certificate    `json:"certificate,omitempty"`
}

// Validators is the body of GET /v1/validators: the genesis of the network
// and its hash.
type Validators struct {
	NetworkID   uint64                `json:"network_id"`
	GenesisHash common.Hash           `json:"genesis_hash"`
	Policy      *consensus.Policy     `json:"policy,omitempty"`
	TotalStake  uint64                `json:"total_stake"`
	Validators  []consensus.Validator `json:"validators"`
	// Stats is what the answering node has observed of each validator.
	Stats []ValidatorStats `json:"stats,omitempty"`
}

// ValidatorSet rebuilds the validator set and checks it against the stated
// genesis hash.
func (v *Validators) ValidatorSet() (*consensus.ValidatorSet, error) {
	g := &consensus.Genesis{NetworkID: v.NetworkID, Policy: v.Policy, Validators: v.Validators}
	set, err := g.ValidatorSet()
	if err != nil {
		return nil, err
	}
	if set.GenesisHash() != v.GenesisHash {
		return nil, fmt.Errorf("validator set hashes to %s, node states %s", set.GenesisHash().Hex(), v.GenesisHash.Hex())
	}
	return set, nil
}

// Error is the JSON body of every API error: a stable code and a message
// for a person.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// Health is the body of GET /healthz.
type Health struct {
	Status  string         `json:"status"` // "ready" or "not_ready"
	Name    string         `json:"name"`
	Address common.Address `json:"address"`
	PeerID  string         `json:"peer_id"`
	Peers   int            `json:"peers"`
	Error   string         `json:"error,omitempty"`
	Message string         `json:"message,omitempty"`
}

// Event types, in the order a job produces them.
const (
	EventJobAccepted       = "job.accepted"
	EventClaimsExtracted   = "claims.extracted"
	EventBallotAttached    = "ballot.attached"
	EventClaimDecided      = "claim.decided"
	EventJobExpired        = "job.expired"
	EventCertificateIssued = "certificate.issued"
)

// Event is one Server-Sent Event of GET /v1/events and
// GET /v1/jobs/{id}/events (the SSE data field holds this object).
type Event struct {
	ID    uint64          `json:"id"`
	Type  string          `json:"type"`
	JobID common.Hash     `json:"job_id"`
	Time  time.Time       `json:"time"`
	Data  json.RawMessage `json:"data"`
}

// ActionRequest is the body of POST /v1/jobs/{id}/actions: an action a
// client took on the job's answer, such as "published" or "sent-to-user".
type ActionRequest struct {
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

// Audit entry kinds.
const (
	AuditSubmitted   = "submitted"
	AuditRead        = "read"
	AuditBallot      = "ballot"
	AuditAction      = "action"
	AuditExpired     = "expired"
	AuditCertificate = "certificate"
)

// Audit flags.
const (
	FlagBeforeProof = "before proof"
	FlagOnRejected  = "acted on rejected output"
)

// AuditEntry is one line of a job's audit timeline.
type AuditEntry struct {
	Time        time.Time        `json:"time"`
	Kind        string           `json:"kind"`
	Client      string           `json:"client,omitempty"`
	Validator   *common.Address  `json:"validator,omitempty"`
	Name        string           `json:"name,omitempty"`
	Detail      string           `json:"detail,omitempty"`
	Status      consensus.Status `json:"status,omitempty"`
	BeforeProof bool             `json:"before_proof"`
	Flags       []string         `json:"flags,omitempty"`
}

// Audit is the body of GET /v1/jobs/{id}/audit: the ordered timeline of a
// job on the node that answers, with what happened before proof flagged.
type Audit struct {
	JobID              common.Hash      `json:"job_id"`
	Status             consensus.Status `json:"status"`
	SubmittedAt        time.Time        `json:"submitted_at,omitzero"`
	CertifiedAt        *time.Time       `json:"certified_at,omitempty"`
	Entries            []AuditEntry     `json:"entries"`
	ReadsBeforeProof   int              `json:"reads_before_proof"`
	ActionsBeforeProof int              `json:"actions_before_proof"`
	ActionsOnRejected  int              `json:"actions_on_rejected_output"`
}

// GenerateRequest is the body of POST /v1/generate: the node's generator
// answers the prompt, and the answer enters the same flow as /v1/verify.
type GenerateRequest struct {
	Prompt string `json:"prompt"`
	// Model, when set, must name the node's generator model.
	Model       string  `json:"model,omitempty"`
	Quorum      string  `json:"quorum,omitempty"`
	Replication *uint32 `json:"replication,omitempty"`
	DeadlineMS  int64   `json:"deadline_ms,omitempty"`
}

// ValidatorStats is what a node has observed of one validator: how often
// its verdicts agreed with decided outcomes, and its equivocations.
type ValidatorStats struct {
	Address common.Address `json:"address"`
	Name    string         `json:"name"`
	// Decided counts the validator's true/false verdicts on claims that
	// certificates decided; Agreed those that matched the decision.
	Decided   uint64  `json:"decided"`
	Agreed    uint64  `json:"agreed"`
	Agreement float64 `json:"agreement"`
	// Flagged: the agreement is no better than chance (see FlagReason).
	Flagged       bool   `json:"flagged"`
	FlagReason    string `json:"flag_reason,omitempty"`
	Equivocations int    `json:"equivocations"`
}

// Penalty is the record a node keeps against a validator's stake for proven
// equivocation. The validator set is fixed at genesis, so it is a record
// for operators and future stake changes, not a change of voting power.
type Penalty struct {
	Validator common.Address `json:"validator"`
	Name      string         `json:"name"`
	Stake     uint64         `json:"stake"`
	// Slashed is the stake the records take away: all of it, for
	// equivocation.
	Slashed uint64        `json:"slashed"`
	Jobs    []common.Hash `json:"jobs"`
}

// EvidenceList is the body of GET /v1/evidence.
type EvidenceList struct {
	Evidence  []EvidenceRecord `json:"evidence"`
	Penalties []Penalty        `json:"penalties"`
}

// EvidenceRecord is one proven equivocation: both signed ballots.
type EvidenceRecord struct {
	Validator  common.Address   `json:"validator"`
	JobID      common.Hash      `json:"job_id"`
	First      consensus.Ballot `json:"first"`
	Second     consensus.Ballot `json:"second"`
	DetectedAt time.Time        `json:"detected_at"`
}
