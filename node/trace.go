package node

import (
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TraceStep is a step of a job's way from its submission to its
// certificate, in the order of the critical path: the gateway publishes
// the job; each assigned validator receives, signs and stores its ballot;
// the gateway receives the ballots until the quorum, then stores the
// certificate.
type TraceStep string

// The steps Options.Trace reports.
const (
	// TraceJobPublished: the gateway hands the signed job to the network
	// (its store write runs beside the hop).
	TraceJobPublished TraceStep = "job published"
	// TraceJobReceived: a validator's topic validator accepted the job
	// (decoded, its signature recovered).
	TraceJobReceived TraceStep = "job received"
	// TraceBallotSigned and TraceBallotStored: a validator signed its
	// ballot, then stored it with the job; it sends it next.
	TraceBallotSigned TraceStep = "ballot signed"
	TraceBallotStored TraceStep = "ballot stored"
	// TraceBallotReceived: the gateway checked a ballot (Validator is
	// its signer) and is about to count it.
	TraceBallotReceived TraceStep = "ballot received"
	// TraceQuorum: the gateway's tally is done; it signs the certificate.
	TraceQuorum TraceStep = "quorum"
	// TraceCertificateStored: the gateway stored the certificate; its
	// waiters are woken next.
	TraceCertificateStored TraceStep = "certificate stored"
)

// TraceEvent is one step of one job at one node.
type TraceEvent struct {
	Job  common.Hash
	Step TraceStep
	// Node is the address of the node that took the step; Validator, for
	// TraceBallotReceived, the ballot's signer.
	Node      common.Address
	Validator common.Address
	At        time.Time
}

// trace reports a step to Options.Trace, if set.
func (e *env) trace(step TraceStep, job common.Hash, validator common.Address) {
	if e.opts.Trace != nil {
		e.opts.Trace(TraceEvent{Job: job, Step: step, Node: e.signer.Address(), Validator: validator, At: time.Now()})
	}
}
