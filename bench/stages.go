package bench

import (
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/node"
)

// Stage is one step of the critical path from a submission to its
// certificate, and the median time it took over the measured jobs.
type Stage struct {
	Name  string  `json:"name"`
	P50MS float64 `json:"p50_ms"`
}

// Stages of the critical path, in order. The validator of the middle
// stages is the one whose ballot completed the quorum: the gateway waited
// for it last.
var stageNames = []string{
	"gateway: submission to job published",
	"hop: job published to received by the validator",
	"validator: job received to ballot signed",
	"validator: ballot signed to stored",
	"hop: ballot stored to received by the gateway",
	"gateway: ballot received to quorum",
	"gateway: quorum to certificate stored",
	"gateway: certificate stored to WaitFinal returning",
}

// tracer collects the nodes' trace events (node.Options.Trace) by job,
// until the load generator takes a job's path: the events of a job are
// held only while it is under way.
//
// Every node of the network calls add several times per job, from many
// goroutines: the jobs are spread over shards by their id, each with a
// lock of its own, so that the measurement costs the network it measures
// little (one lock for all was 1.6% of CPU at saturation).
//
// Under saturation (a closed loop) it follows one job in closedLoopSample,
// chosen by id: hundreds of jobs a second make a median of each stage all
// the same, and the events of every job cost the nodes 1.9% of their CPU.
type tracer struct {
	shards [tracerShards]tracerShard
	every  byte // follows the jobs whose id's second byte is a multiple of it
}

// closedLoopSample is one in how many jobs the tracer follows in a closed
// loop.
const closedLoopSample = 16

const tracerShards = 64

type tracerShard struct {
	mu    sync.Mutex
	jobs  map[common.Hash][]node.TraceEvent
	taken map[common.Hash]struct{} // steps after these are dropped
}

// jobEvents is the room a job's events get at first: about what a job of
// a network of a few nodes records.
const jobEvents = 16

// newTracer returns a tracer that follows one job in every (1: all).
func newTracer(every byte) *tracer {
	t := &tracer{every: max(every, 1)}
	for i := range t.shards {
		t.shards[i] = tracerShard{jobs: map[common.Hash][]node.TraceEvent{}, taken: map[common.Hash]struct{}{}}
	}
	return t
}

func (t *tracer) shard(job common.Hash) *tracerShard { return &t.shards[job[0]%tracerShards] }

// held counts the jobs whose events the tracer holds.
func (t *tracer) held() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.jobs)
		s.mu.Unlock()
	}
	return n
}

// follows reports whether the tracer follows a job.
func (t *tracer) follows(job common.Hash) bool { return job[1]%t.every == 0 }

func (t *tracer) add(e node.TraceEvent) {
	if !t.follows(e.Job) {
		return
	}
	s := t.shard(e.Job)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.taken[e.Job]; ok {
		return
	}
	events, ok := s.jobs[e.Job]
	if !ok {
		events = make([]node.TraceEvent, 0, jobEvents)
	}
	s.jobs[e.Job] = append(events, e)
}

// take returns a job's critical path, the time of each stage
// (stageNames), and forgets its events; false if a step is missing (the
// job expired, or its quorum came without a ballot through the network)
// or the tracer does not follow the job.
func (t *tracer) take(job common.Hash, submitted, done time.Time) ([]time.Duration, bool) {
	if !t.follows(job) {
		return nil, false
	}
	s := t.shard(job)
	s.mu.Lock()
	events := s.jobs[job]
	delete(s.jobs, job)
	s.taken[job] = struct{}{}
	s.mu.Unlock()
	p, ok := path(events, submitted, done)
	if !ok {
		return nil, false
	}
	d := make([]time.Duration, len(p)-1)
	for i := range d {
		d[i] = p[i+1].Sub(p[i])
	}
	return d, true
}

// path is the critical path in a job's events: the time of each boundary
// between the stages (len(stageNames)+1 of them).
func path(events []node.TraceEvent, submitted, done time.Time) ([]time.Time, bool) {
	// find is the first event of step, at node at (any if zero).
	find := func(step node.TraceStep, at common.Address) (node.TraceEvent, bool) {
		var got node.TraceEvent
		ok := false
		for _, e := range events {
			if e.Step == step && (at == common.Address{} || e.Node == at) && (!ok || e.At.Before(got.At)) {
				got, ok = e, true
			}
		}
		return got, ok
	}
	published, ok1 := find(node.TraceJobPublished, common.Address{})
	quorum, ok2 := find(node.TraceQuorum, common.Address{})
	if !ok1 || !ok2 {
		return nil, false
	}
	// The last ballot the gateway received before its quorum.
	var last node.TraceEvent
	ok := false
	for _, e := range events {
		if e.Step == node.TraceBallotReceived && !e.At.After(quorum.At) && (!ok || e.At.After(last.At)) {
			last, ok = e, true
		}
	}
	if !ok {
		return nil, false
	}
	v := last.Validator
	received, ok3 := find(node.TraceJobReceived, v)
	signed, ok4 := find(node.TraceBallotSigned, v)
	stored, ok5 := find(node.TraceBallotStored, v)
	cert, ok6 := find(node.TraceCertificateStored, quorum.Node)
	if !ok3 || !ok4 || !ok5 || !ok6 {
		return nil, false
	}
	return []time.Time{submitted, published.At, received.At, signed.At, stored.At, last.At, quorum.At, cert.At, done}, true
}

// stages is the median of each stage over the jobs' paths; nil without
// any.
func stages(paths [][]time.Duration) []Stage {
	if len(paths) == 0 {
		return nil
	}
	out := make([]Stage, len(stageNames))
	d := make([]time.Duration, len(paths))
	for i, name := range stageNames {
		for k, p := range paths {
			d[k] = p[i]
		}
		slices.Sort(d)
		out[i] = Stage{Name: name, P50MS: ms(percentile(d, 50))}
	}
	return out
}
