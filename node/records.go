package node

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/store"
)

// A node's records of a job, for reads: what a client sees of it (Job,
// Certificate) and its audit trail (Audit, RecordAction), built from the
// store and, while this node tallies the job, its gateway's progress.

// jobView is what a client sees of a job record.
func jobView(rec *store.Job, m *JobMessage) *api.Job {
	v := &api.Job{
		JobID:       m.JobID,
		Status:      rec.Status,
		OutputHash:  m.OutputHash,
		ClaimsRoot:  m.ClaimsRoot,
		Claims:      m.ClaimList(),
		Output:      rec.Output,
		Prompt:      rec.Prompt,
		Quorum:      m.Quorum,
		Replication: m.Replication,
		Gateway:     m.Gateway,
		SubmittedAt: rec.SubmittedAt,
		Deadline:    rec.Deadline,
	}
	if !rec.FinalAt.IsZero() {
		t := rec.FinalAt
		v.FinalAt = &t
	}
	return v
}

// ErrUnknownJob is returned for a job id this node has never seen.
var ErrUnknownJob = errors.New("unknown job")

// Job returns what this node knows of a job: its status, its progress while
// this node tallies it, and its certificate once final.
func (n *Node) Job(id common.Hash) (*api.Job, error) {
	cert, certErr := n.store.Certificate(id)
	if certErr != nil && !errors.Is(certErr, store.ErrNotFound) {
		return nil, certErr
	}
	rec, err := n.store.Job(id)
	switch {
	case errors.Is(err, store.ErrNotFound) && cert != nil:
		return certView(cert), nil
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrUnknownJob
	case err != nil:
		return nil, err
	}
	var m JobMessage
	if err := strictjson.Decode(rec.Message, &m, maxStoredJobMessageSize); err != nil {
		return nil, fmt.Errorf("stored job %s: %w", id.Hex(), err)
	}
	v := jobView(rec, &m)
	if cert != nil {
		v.Status = cert.Status
		v.Certificate = cert
		return v, nil
	}
	v.Progress = n.gw.progress(id)
	return v, nil
}

func certView(c *consensus.Certificate) *api.Job {
	cs := make([]claims.Claim, len(c.Claims))
	for i, cl := range c.Claims {
		cs[i] = claims.Claim{Index: cl.Index, Text: cl.Text, Hash: cl.Hash}
	}
	return &api.Job{
		JobID: c.JobID, Status: c.Status, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot,
		Claims: cs, Quorum: c.Quorum, Replication: c.Replication, Certificate: c,
	}
}

// Certificate returns the stored certificate of a job.
func (n *Node) Certificate(id common.Hash) (*consensus.Certificate, error) {
	return n.store.Certificate(id)
}

// recordRead notes that a client read a job's answer while it was
// provisional.
func (n *Node) recordRead(id common.Hash, client, detail string) {
	err := n.store.AddAudit(id, &store.AuditRecord{
		Time: n.clock.Now(), Kind: api.AuditRead, Client: client, Detail: detail, Status: consensus.StatusProvisional,
	})
	if err != nil {
		log.Errorw("record read", "job", id.Hex(), "err", err)
	}
}

// RecordAction records an action a client took on a job's answer, with the
// job's status at that moment.
func (n *Node) RecordAction(id common.Hash, client string, a api.ActionRequest) (*api.AuditEntry, error) {
	v, err := n.Job(id)
	if err != nil {
		return nil, err
	}
	rec := &store.AuditRecord{Time: n.clock.Now(), Kind: api.AuditAction, Client: client, Name: a.Name, Detail: a.Detail, Status: v.Status}
	if err := n.store.AddAudit(id, rec); err != nil {
		return nil, err
	}
	e := auditEntry(rec, v.Status)
	return &e, nil
}

func auditEntry(r *store.AuditRecord, final consensus.Status) api.AuditEntry {
	e := api.AuditEntry{Time: r.Time, Kind: r.Kind, Client: r.Client, Name: r.Name, Detail: r.Detail, Status: r.Status}
	if !r.Status.Final() {
		e.BeforeProof = true
		e.Flags = append(e.Flags, api.FlagBeforeProof)
	}
	if r.Kind == api.AuditAction && final == consensus.StatusRejected {
		e.Flags = append(e.Flags, api.FlagOnRejected)
	}
	return e
}

// auditKindOrder breaks ties between entries with the same time.
var auditKindOrder = map[string]int{
	api.AuditSubmitted: 0, api.AuditRead: 1, api.AuditBallot: 2, api.AuditAction: 3, api.AuditExpired: 4, api.AuditCertificate: 5,
}

// auditBallots is an audit entry for each ballot of job id this node
// holds: stored, or counted by its tally and not stored yet (a job this
// node aggregates stores its ballots with its certificate).
func (n *Node) auditBallots(id common.Hash) ([]api.AuditEntry, error) {
	ballots, err := n.store.Ballots(id)
	if err != nil {
		return nil, err
	}
	for _, b := range n.gw.pendingBallots(id) {
		if !slices.ContainsFunc(ballots, func(s store.StoredBallot) bool { return s.Ballot.Validator == b.Ballot.Validator }) {
			ballots = append(ballots, b)
		}
	}
	out := make([]api.AuditEntry, 0, len(ballots))
	for _, b := range ballots {
		addr := b.Ballot.Validator
		_, val, _ := n.set.Lookup(addr)
		out = append(out, api.AuditEntry{Time: b.ReceivedAt, Kind: api.AuditBallot, Validator: &addr, Name: val.Name})
	}
	return out, nil
}

// certificateEntries adds to a the certificate of job v (which has one)
// and, for a job that ended unresolved at its deadline, the expiry.
func certificateEntries(a *api.Audit, v *api.Job) {
	at := v.Certificate.IssuedAt
	if v.FinalAt != nil {
		at = *v.FinalAt
	}
	a.CertifiedAt = &at
	if v.Certificate.Status == consensus.StatusUnresolved && !v.Deadline.IsZero() && !at.Before(v.Deadline) {
		a.Entries = append(a.Entries, api.AuditEntry{Time: v.Deadline, Kind: api.AuditExpired, Detail: "deadline passed with claims undecided"})
	}
	a.Entries = append(a.Entries, api.AuditEntry{Time: at, Kind: api.AuditCertificate, Status: v.Certificate.Status,
		Detail: string(v.Certificate.Status)})
}

// Audit builds a job's timeline on this node: submission, reads of the
// answer while provisional, ballots, client actions and the certificate,
// in time order. Reads and actions that happened while the job was
// provisional are flagged "before proof"; actions on an output the network
// rejected are flagged too. It is built from the store, so it survives
// restarts.
func (n *Node) Audit(id common.Hash) (*api.Audit, error) {
	v, err := n.Job(id)
	if err != nil {
		return nil, err
	}
	a := &api.Audit{JobID: id, Status: v.Status, SubmittedAt: v.SubmittedAt, Entries: []api.AuditEntry{}}
	if !v.SubmittedAt.IsZero() {
		detail := "received from the network"
		if v.Output != "" {
			detail = "accepted by this node as gateway"
		}
		a.Entries = append(a.Entries, api.AuditEntry{Time: v.SubmittedAt, Kind: api.AuditSubmitted, Detail: detail, Status: consensus.StatusProvisional})
	}
	ballots, err := n.auditBallots(id)
	if err != nil {
		return nil, err
	}
	a.Entries = append(a.Entries, ballots...)
	recs, err := n.store.Audit(id)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		e := auditEntry(&recs[i], v.Status)
		switch {
		case e.Kind == api.AuditRead && e.BeforeProof:
			a.ReadsBeforeProof++
		case e.Kind == api.AuditAction && e.BeforeProof:
			a.ActionsBeforeProof++
		}
		if slices.Contains(e.Flags, api.FlagOnRejected) {
			a.ActionsOnRejected++
		}
		a.Entries = append(a.Entries, e)
	}
	if v.Certificate != nil {
		certificateEntries(a, v)
	}
	slices.SortStableFunc(a.Entries, func(x, y api.AuditEntry) int {
		if c := x.Time.Compare(y.Time); c != 0 {
			return c
		}
		return cmp.Compare(auditKindOrder[x.Kind], auditKindOrder[y.Kind])
	})
	return a, nil
}
