package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/testtier"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/sigs"
	"github.com/verity-network/verity/testnet"
)

// metric reads the value of one sample (name with its labels, exactly as
// the node writes it) from a node's /metrics; 0 if absent.
func metric(t *testing.T, nd *node.Node, sample string) float64 {
	t.Helper()
	resp, err := http.Get(nd.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

const (
	acceptedBallots       = `verity_ballots_total{reason="",result="accepted"}`
	acceptedAnnouncements = `verity_job_announcements_total{result="accepted"}`
)

// counted reports whether the gateway gw tallies a ballot of each of
// voters for job id (its progress on claim 0 names them).
func counted(t *testing.T, gw *node.Node, id common.Hash, voters ...*node.Node) bool {
	t.Helper()
	j, err := gw.Job(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Progress) == 0 {
		return false
	}
	for _, v := range voters {
		if !slices.Contains(j.Progress[0].Voters, v.Address()) {
			return false
		}
	}
	return true
}

// heldBack starts a network of n validators in which the last one judges
// nothing until release: its jobs stay pending (every validator is needed
// for quorum with three of equal stake) while the others have voted. It
// returns each node's key, for tests that sign as a gateway.
func heldBack(t *testing.T, ctx context.Context, n int) (*testnet.Network, []*ecdsa.PrivateKey, func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	keys := make([]*ecdsa.PrivateKey, n)
	var mu sync.Mutex
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: n, APIs: true, Dir: t.TempDir(),
		Verifier: func(i int) node.Verifier {
			if i == n-1 {
				return gatedVerifier{gate: gate}
			}
			v, err := claims.NewVerifier(claims.VerifierSpec{Backend: testnet.DefaultBackend, Validator: fmt.Sprintf("node%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		Options: func(i int, o *node.Options) { mu.Lock(); keys[i] = o.Key; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	// The tests submit at node0. A job published before node0 knows a
	// node's subscriptions reaches that node only through gossip's short
	// history, or at the job's re-announcement, minutes later: on a busy
	// machine the held-back node could miss the job that way.
	gw := tn.Nodes()[0]
	eventually(t, ctx, "node0 knows every node's topics", func() bool { return gw.TopicPeers() >= n-1 })
	return tn, keys, release
}

// announcement waits for the raw announcement of job id on the attacker's
// subscription.
func (a *keylessAttacker) announcement(t *testing.T, ctx context.Context, id common.Hash) []byte {
	t.Helper()
	for {
		select {
		case msg, ok := <-a.jobs:
			if !ok {
				t.Fatal("jobs subscription closed")
			}
			var m node.JobMessage
			if err := json.Unmarshal(msg.Data, &m); err == nil && m.JobID == id && m.Resend == 0 {
				return msg.Data
			}
		case <-ctx.Done():
			t.Fatal("the attacker never saw the job announced")
		}
	}
}

// replays builds count replays of a real announcement that only the
// gateway's key could make new: the same bytes (one message to gossip),
// the same message in other bytes (not the canonical encoding), and the
// message with ever new resend numbers it did not sign.
func replays(t *testing.T, real []byte, count int) [][]byte {
	t.Helper()
	if !bytes.HasSuffix(real, []byte("}")) || bytes.Contains(real, []byte(`"resend"`)) {
		t.Fatalf("unexpected announcement %s", real)
	}
	out := make([][]byte, 0, count)
	for i := range count {
		switch i % 4 {
		case 0:
			out = append(out, real)
		case 1:
			out = append(out, append([]byte("{ "), real[1:]...))
		default:
			forged := bytes.Clone(real[:len(real)-1])
			out = append(out, fmt.Appendf(forged, `,"resend":%d}`, i+1))
		}
	}
	return out
}

// eventually polls cond every 20ms until it holds or ctx ends.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReplayedAnnouncementsIgnored: a peer without a key replays a real
// job's announcement 400 times (the same bytes, other bytes, and resend
// numbers the gateway did not sign) while the job is pending. No node takes
// any of them, no validator answers again (the gateway receives no second
// ballot), every node penalises the peer until it is graylisted, then
// disconnects and bans it, and the job is certified as usual.
func TestReplayedAnnouncementsIgnored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, _, release := heldBack(t, ctx, 3)
	nodes := tn.Nodes()
	gw := nodes[0]
	attacker := newKeylessAttacker(t, ctx, tn)
	attackerID := attacker.net.PeerID()

	job, err := gw.Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: (2 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	real := attacker.announcement(t, ctx, job.JobID)
	// node1's ballot is in; node2 holds back.
	eventually(t, ctx, "node1's ballot at the gateway", func() bool { return counted(t, gw, job.JobID, nodes[1]) })
	ballots := metric(t, gw, acceptedBallots)
	before := make([]p2p.Stats, len(nodes))
	for i, nd := range nodes {
		before[i] = nd.Network().Stats()
	}

	msgs := replays(t, real, 400)
	start := time.Now()
	for _, m := range msgs {
		if err := attacker.net.Publish(ctx, p2p.KindJobs, m); err != nil {
			t.Fatalf("attacker publish: %v", err)
		}
	}
	sent := time.Since(start)
	for _, nd := range nodes {
		eventually(t, ctx, nd.Name()+" bans the replaying peer", func() bool { return nd.Network().Banned(attackerID) })
	}
	banned := time.Since(start)
	eventually(t, ctx, "the replaying peer disconnected", func() bool {
		for _, nd := range nodes {
			if slices.Contains(nd.Network().ConnectedPeers(), attackerID) {
				return false
			}
		}
		return true
	})

	for i, nd := range nodes {
		if got := metric(t, nd, acceptedAnnouncements); got != 1 {
			t.Errorf("%s took %v announcements of the job, want the first only", nd.Name(), got)
		}
		st := nd.Network().Stats()
		rejected := st.Rejected - before[i].Rejected
		if rejected < 13 {
			t.Errorf("%s rejected %d replays; the peer should be graylisted after 13", nd.Name(), rejected)
		}
		if s, _ := nd.Network().PeerScore(attackerID); s >= p2p.GraylistThreshold {
			t.Errorf("%s scores the replaying peer %.0f, above the graylist threshold", nd.Name(), s)
		}
		t.Logf("%s: %d replays rejected, %d duplicates, peer banned", nd.Name(), rejected, st.Duplicates-before[i].Duplicates)
	}
	if got := metric(t, gw, acceptedBallots); got != ballots {
		t.Errorf("the gateway checked %v ballots, %v before the replays: validators answered again", got, ballots)
	}
	// Banned, the peer cannot come back: no node holds a connection to it
	// (its own dials may see a connection for the moment the node takes
	// to refuse it).
	time.Sleep(500 * time.Millisecond)
	for _, nd := range nodes {
		if slices.Contains(nd.Network().ConnectedPeers(), attackerID) {
			t.Errorf("%s is connected to the banned peer again", nd.Name())
		}
	}
	t.Logf("%d replays sent in %v; every node banned the peer within %v", len(msgs), sent.Round(time.Millisecond), banned.Round(time.Millisecond))

	release()
	for _, nd := range nodes {
		c, err := nd.WaitFinal(ctx, job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Ballots) != 3 {
			t.Fatalf("%s holds a certificate of %d ballots, want 3", nd.Name(), len(c.Ballots))
		}
	}
}

// TestExpiredReplaysRejected: replays of a job whose deadline has passed
// with resend numbers its gateway did not sign are rejected, not merely
// ignored as late: the peer is banned as for a pending job.
func TestExpiredReplaysRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := startNetwork(t, 3)
	nodes := tn.Nodes()
	attacker := newKeylessAttacker(t, ctx, tn)
	job, err := nodes[0].Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	real := attacker.announcement(t, ctx, job.JobID)
	var m node.JobMessage
	if err := json.Unmarshal(real, &m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.UnixMilli(int64(m.Deadline)).Add(100 * time.Millisecond)))
	for i := range 200 {
		forged := bytes.Clone(real[:len(real)-1])
		if err := attacker.net.Publish(ctx, p2p.KindJobs, fmt.Appendf(forged, `,"resend":%d}`, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		eventually(t, ctx, nd.Name()+" bans the peer replaying an expired job", func() bool { return nd.Network().Banned(attacker.net.PeerID()) })
		if got := metric(t, nd, acceptedAnnouncements); got != 1 {
			t.Errorf("%s took %v announcements, want the first only", nd.Name(), got)
		}
	}
}

// TestSignedResendsAnsweredOncePerInterval: re-announcements that the
// gateway did sign, 60 of them in 1.5 s, are taken if they come in order
// (a resend number below one already taken is stale), but each
// validator answers a job at most once a second: the gateway receives at
// most one repeated ballot per validator per second, and nobody is
// penalised.
func TestSignedResendsAnsweredOncePerInterval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, keys, release := heldBack(t, ctx, 3)
	nodes := tn.Nodes()
	gw := nodes[0]
	relay := newKeylessAttacker(t, ctx, tn)

	job, err := gw.Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: (2 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	var m node.JobMessage
	if err := json.Unmarshal(relay.announcement(t, ctx, job.JobID), &m); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "node1's ballot at the gateway", func() bool { return counted(t, gw, job.JobID, nodes[1]) })
	// Wait out node1's answer interval after its first ballot.
	time.Sleep(time.Second)
	ballots := metric(t, gw, acceptedBallots)

	signer := sigs.NewKeySigner(keys[0])
	const resends = 60
	start := time.Now()
	base := uint64(time.Now().UnixMilli())
	for i := range resends {
		again := m
		again.Resend = base + uint64(i)
		if err := again.Sign(signer); err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(&again)
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.net.Publish(ctx, p2p.KindJobs, data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	// They are checked in parallel: one that arrives after a higher one is
	// stale and ignored, as a replay would be.
	stale := `verity_job_announcements_total{result="stale"}`
	eventually(t, ctx, "node1 checks every signed re-announcement", func() bool {
		return metric(t, nodes[1], acceptedAnnouncements)+metric(t, nodes[1], stale) == 1+resends
	})
	burst := time.Since(start)
	// Let any answer still under way arrive.
	time.Sleep(500 * time.Millisecond)
	answers := metric(t, gw, acceptedBallots) - ballots
	allowed := float64(int(burst/time.Second) + 1)
	t.Logf("%d signed re-announcements over %v: node1 took %v (any other came after a higher one), answered %v times",
		resends, burst.Round(time.Millisecond), metric(t, nodes[1], acceptedAnnouncements)-1, answers)
	if answers < 1 || answers > allowed {
		t.Errorf("node1 answered %v times in %v; want 1 to %v (once per second)", answers, burst, allowed)
	}
	for _, nd := range nodes {
		if nd.Network().Banned(relay.net.PeerID()) {
			t.Errorf("%s banned the peer that relayed signed re-announcements", nd.Name())
		}
	}
	release()
	if _, err := gw.WaitFinal(ctx, job.JobID); err != nil {
		t.Fatal(err)
	}
}

// liveHeap collects garbage and returns the bytes of heap objects still
// reachable: what the process keeps, whatever the race detector or the
// garbage collector's pace add to its RSS.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// timesToCertificate submits count jobs at rate per second, round robin
// over the first gateways nodes, and returns each one's time from
// submission to the certificate on its gateway, sorted. At most one
// second's worth of jobs is in flight: a machine too slow for the rate
// gets them more slowly rather than an ever longer queue.
func timesToCertificate(t *testing.T, ctx context.Context, nodes []*node.Node, gateways, count int, rate float64) []time.Duration {
	t.Helper()
	outputs, _ := knownOutputs(count)
	out := make([]time.Duration, count)
	errs := make(chan error, count)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	inFlight := make(chan struct{}, max(int(rate), 1))
	for i := range count {
		<-tick.C
		inFlight <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inFlight }()
			gw := nodes[i%gateways]
			start := time.Now()
			j, err := gw.Submit(ctx, api.VerifyRequest{Output: outputs[i]})
			if err != nil {
				errs <- err
				return
			}
			if _, err := gw.WaitFinal(ctx, j.JobID); err != nil {
				errs <- err
				return
			}
			out[i] = time.Since(start)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// Metrics of what a gateway re-announces and how validators send ballots.
const (
	reannounced = `verity_job_reannouncements_total`
	sentGossip  = `verity_ballots_sent_total{via="gossip"}`
)

// sumMetric is the sum of one sample over nodes.
func sumMetric(t *testing.T, nodes []*node.Node, sample string) float64 {
	t.Helper()
	var sum float64
	for _, nd := range nodes {
		sum += metric(t, nd, sample)
	}
	return sum
}

// TestLongReplayFlood: 10,000 replays of a real job in 10 s from a peer
// without a key, while the network certifies other jobs at 20 per second.
// Phases of 10 s (200 jobs) without and with a flood alternate, five of
// each (a fresh identity floods in each "on" phase).
//
// What is checked is what the protocol allows, counted, not how fast the
// machine is: every node bans each flooding peer; no node takes a replay
// (a node takes each job's first announcement and the re-announcements
// its gateway signed, at most: the gateways count those they make, more
// of them when a slow machine keeps jobs pending); and the gateway checks
// no ballot that does not answer an announcement it signed (each of the
// four other validators answers a taken announcement of one of its jobs
// at most once, plus the ballots validators gossiped instead). Then a
// sixth identity floods with no other load, and the heap that stays
// reachable afterwards (five nodes in the process) grows by less than the
// replays' own bytes: no node keeps them. The p99 time to certificate
// with and without a flood is reported, not checked: it measures the
// machine as much as the protocol.
func TestLongReplayFlood(t *testing.T) {
	testtier.Long(t, "5 nodes, six floods of 10,000 replays in 10 s, 2,040 jobs")
	ctx, cancel := context.WithTimeout(context.Background(), testtier.Limit(t, 30*time.Minute))
	defer cancel()
	tn := startNetwork(t, 5)
	nodes := tn.Nodes()
	const (
		warmUp   = 40
		jobs     = 200 // per phase
		rate     = 20
		replayed = 10000
		flood    = 10 * time.Second
	)
	// Warm up first (meshes forming, caches filling).
	timesToCertificate(t, ctx, nodes, len(nodes), warmUp, rate)

	// The replayed job is certified: before, each replay still made every
	// validator send its ballot again.
	first := newKeylessAttacker(t, ctx, tn)
	target, err := nodes[0].Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	msgs := replays(t, first.announcement(t, ctx, target.JobID), replayed)
	if _, err := nodes[0].WaitFinal(ctx, target.JobID); err != nil {
		t.Fatal(err)
	}
	var (
		without, with       []time.Duration // every job of each kind of phase
		p99Without, p99With []time.Duration // each phase's p99
		attackers           []*keylessAttacker
	)
	const pairs = 5
	for phase := range 2 * pairs {
		floodOn := phase%2 == 1
		if !floodOn {
			d := timesToCertificate(t, ctx, nodes, len(nodes), jobs, rate)
			without = append(without, d...)
			p99Without = append(p99Without, percentile(d, 0.99))
			t.Logf("phase %d, no flood: p50/p99 %v/%v", phase, percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond))
			continue
		}
		a := first
		if len(attackers) > 0 {
			a = newKeylessAttacker(t, ctx, tn)
		}
		attackers = append(attackers, a)
		floodDone := make(chan time.Duration)
		go func() { floodDone <- replayFlood(ctx, a, msgs, flood) }()
		d := timesToCertificate(t, ctx, nodes, len(nodes), jobs, rate)
		took := <-floodDone
		with = append(with, d...)
		p99With = append(p99With, percentile(d, 0.99))
		t.Logf("phase %d, %d replays in %v: p50/p99 %v/%v", phase, replayed, took.Round(time.Millisecond),
			percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond))
	}
	slices.Sort(without)
	slices.Sort(with)
	slices.Sort(p99Without)
	slices.Sort(p99With)
	t.Logf("median p99 time to certificate: %v without a flood, %v with one; all %d jobs of each: p50/p99 %v/%v without, %v/%v with",
		p99Without[pairs/2].Round(time.Millisecond), p99With[pairs/2].Round(time.Millisecond), len(with),
		percentile(without, 0.5).Round(time.Millisecond), percentile(without, 0.99).Round(time.Millisecond),
		percentile(with, 0.5).Round(time.Millisecond), percentile(with, 0.99).Round(time.Millisecond))
	// The gateway's ballots since the start: every fifth job is its own
	// (and the replayed one), each answered by the four other validators
	// once per announcement of it they took, plus ballots gossiped, which
	// every node checks. Ballots of the last jobs still on their way are
	// not counted: they can only lower the count.
	own := float64((warmUp+len(without)+len(with))/len(nodes) + 1)
	reGw, gossiped := metric(t, nodes[0], reannounced), sumMetric(t, nodes, sentGossip)
	allowed := 4*(own+reGw) + gossiped
	ballots := metric(t, nodes[0], acceptedBallots)
	t.Logf("the gateway checked %v ballots: %v of its jobs, %v re-announcements of them, %v ballots gossiped allow %v", ballots, own, reGw, gossiped, allowed)
	if ballots > allowed {
		t.Errorf("the gateway checked %v ballots; its jobs, their re-announcements and the gossiped ballots allow %v: validators answered replays", ballots, allowed)
	}
	// Each job's first announcement and the gateways' re-announcements, at
	// most; none of the replays.
	announced := float64(warmUp + len(without) + len(with) + 1)
	reannouncedAll := sumMetric(t, nodes, reannounced)
	for _, nd := range nodes {
		for i, a := range attackers {
			if !nd.Network().Banned(a.net.PeerID()) {
				t.Errorf("%s did not ban flooding peer %d", nd.Name(), i)
			}
		}
		got := metric(t, nd, acceptedAnnouncements)
		if got > announced+reannouncedAll {
			t.Errorf("%s took %v announcements; %v jobs and %v re-announcements allow %v: it took replays", nd.Name(), got, announced, reannouncedAll, announced+reannouncedAll)
		}
		t.Logf("%s: took %v announcements (%v jobs, %v re-announcements by all gateways); %+v", nd.Name(), got, announced, reannouncedAll, nd.Network().Stats())
	}

	// Memory: a fresh identity floods with nothing else going on.
	last := newKeylessAttacker(t, ctx, tn)
	var replayBytes uint64
	for _, m := range msgs {
		replayBytes += uint64(len(m))
	}
	before := liveHeap()
	took := replayFlood(ctx, last, msgs, flood)
	for _, nd := range nodes {
		eventually(t, ctx, nd.Name()+" bans the last flooding peer", func() bool { return nd.Network().Banned(last.net.PeerID()) })
	}
	after := liveHeap()
	t.Logf("a flood of %d replays (%d KiB) in %v, alone: live heap %d MiB before, %d MiB after", replayed, replayBytes>>10, took.Round(time.Millisecond), before>>20, after>>20)
	if after > before+replayBytes {
		t.Errorf("the live heap grew from %d to %d KiB over the flood, by more than the %d KiB of the replays", before>>10, after>>10, replayBytes>>10)
	}
}

// replayFlood publishes msgs evenly over d from the attacker, whether or
// not anyone listens, and returns how long it took.
func replayFlood(ctx context.Context, a *keylessAttacker, msgs [][]byte, d time.Duration) time.Duration {
	start := time.Now()
	every := d / time.Duration(len(msgs))
	next := start
	for _, m := range msgs {
		if ctx.Err() != nil {
			break
		}
		_ = a.net.Publish(ctx, p2p.KindJobs, m)
		next = next.Add(every)
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
	}
	return time.Since(start)
}
