package bench

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/node"
)

// TestTracerPath: a job's critical path follows the validator whose
// ballot the gateway received last before its quorum, not the first
// ballot nor one that came after the quorum; the tracer forgets a job
// once its path is taken.
func TestTracerPath(t *testing.T) {
	job := common.Hash{1}
	gw, fast, slow, late := common.Address{0xa}, common.Address{0xb}, common.Address{0xc}, common.Address{0xd}
	t0 := time.Unix(1000, 0)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	tr := newTracer(1)
	events := []node.TraceEvent{
		{Step: node.TraceJobPublished, Node: gw, At: at(200)},
		{Step: node.TraceJobReceived, Node: gw, At: at(300)},
		{Step: node.TraceJobReceived, Node: fast, At: at(1000)},
		{Step: node.TraceJobReceived, Node: slow, At: at(1500)},
		{Step: node.TraceJobReceived, Node: late, At: at(1600)},
		{Step: node.TraceBallotSigned, Node: fast, At: at(1100)},
		{Step: node.TraceBallotSigned, Node: slow, At: at(1700)},
		{Step: node.TraceBallotStored, Node: fast, At: at(1200)},
		{Step: node.TraceBallotStored, Node: slow, At: at(1900)},
		{Step: node.TraceBallotReceived, Node: gw, Validator: fast, At: at(2000)},
		{Step: node.TraceBallotReceived, Node: gw, Validator: slow, At: at(2900)},
		{Step: node.TraceQuorum, Node: gw, At: at(2950)},
		{Step: node.TraceBallotReceived, Node: gw, Validator: late, At: at(3000)},
		{Step: node.TraceCertificateStored, Node: gw, At: at(3300)},
	}
	for i := range events {
		events[i].Job = job
		tr.add(events[i])
	}
	// A step after the path is taken is dropped, not kept for ever.
	p, ok := tr.take(job, t0, at(3800))
	if !ok {
		t.Fatal("no path")
	}
	want := []int{200, 1300, 200, 200, 1000, 50, 350, 500}
	if len(p) != len(stageNames) {
		t.Fatalf("%d stages, want %d", len(p), len(stageNames))
	}
	for i, us := range want {
		if p[i] != time.Duration(us)*time.Microsecond {
			t.Errorf("stage %q took %v, want %dµs", stageNames[i], p[i], us)
		}
	}
	tr.add(node.TraceEvent{Job: job, Step: node.TraceBallotStored, Node: late, At: at(4000)})
	if n := tr.held(); n != 0 {
		t.Errorf("%d jobs' events held after their paths were taken", n)
	}
	if _, ok := tr.take(common.Hash{2}, t0, at(1)); ok {
		t.Error("a path for a job never traced")
	}
	// Without its certificate stored (an expired job, say), no path.
	if _, ok := path(events[:len(events)-1], t0, at(3800)); ok {
		t.Error("a path without the certificate stored")
	}
	s := stages([][]time.Duration{p, p, p})
	if len(s) != len(stageNames) || s[1].P50MS != 1.3 || s[7].P50MS != 0.5 {
		t.Errorf("stages %+v", s)
	}
}

// TestTracerSample: a tracer that follows one job in 16 keeps no event of
// the others and gives no path for them; it follows the same jobs on every
// node (by id).
func TestTracerSample(t *testing.T) {
	tr := newTracer(16)
	t0 := time.Unix(1000, 0)
	followed, other := common.Hash{7, 32}, common.Hash{7, 33}
	for _, job := range []common.Hash{followed, other} {
		for _, step := range []node.TraceStep{node.TraceJobPublished, node.TraceQuorum, node.TraceCertificateStored} {
			tr.add(node.TraceEvent{Job: job, Step: step, At: t0})
		}
	}
	if n := tr.held(); n != 1 {
		t.Fatalf("events of %d jobs held, want the one followed", n)
	}
	if _, ok := tr.take(other, t0, t0); ok {
		t.Error("a path for a job not followed")
	}
	if n := tr.held(); n != 1 {
		t.Errorf("events of %d jobs held after taking the other's", n)
	}
}

func TestMedianStages(t *testing.T) {
	mk := func(hop float64, jobs int) *Report {
		r := &Report{StageJobs: jobs, Stages: make([]Stage, len(stageNames))}
		for i := range r.Stages {
			r.Stages[i] = Stage{Name: stageNames[i], P50MS: hop * float64(i)}
		}
		return r
	}
	m, err := Median([]*Report{mk(1, 10), mk(3, 20), mk(2, 30)})
	if err != nil {
		t.Fatal(err)
	}
	if m.StageJobs != 60 || len(m.Stages) != len(stageNames) || m.Stages[1].P50MS != 2 || m.Stages[4].P50MS != 8 {
		t.Errorf("median stages %+v over %d jobs", m.Stages, m.StageJobs)
	}
	if m2, _ := Median([]*Report{mk(1, 10), {}}); m2.Stages != nil || m2.StageJobs != 0 {
		t.Errorf("a run without stages: %+v", m2.Stages)
	}
}
