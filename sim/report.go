package sim

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/testnet"
)

// Report is the result of a run. Latencies are those of the jobs submitted
// during the measured time, followed to their certificate; costs per
// certificate count the certificates issued during it.
type Report struct {
	// Time is "virtual" (inside testing/synctest: latencies are the
	// simulated network's alone, processing takes no time) or "real" (the
	// machine's clock: latencies include waiting for the CPU).
	Time     string `json:"time"`
	TimeNote string `json:"time_note"`

	Seed        uint64  `json:"seed"`
	Validators  int     `json:"validators"`
	Regions     int     `json:"regions"`
	Quorum      string  `json:"quorum"`
	Replication uint32  `json:"replication"`
	Committee   int     `json:"committee"`
	Rate        float64 `json:"rate"`
	Claims      int     `json:"claims_per_output"`
	Warmup      float64 `json:"warmup_seconds"`
	Duration    float64 `json:"duration_seconds"`
	// Gateways is how many validators the load went to; GatewaysKept
	// whether every validator stayed connected to them ([load] gateways).
	Gateways     int  `json:"gateways"`
	GatewaysKept bool `json:"gateways_kept_connected,omitempty"`
	// AdversaryStake is the share of the total stake each misbehaviour
	// holds, as drawn.
	AdversaryStake map[string]float64 `json:"adversary_stake,omitempty"`
	Churn          []string           `json:"churn,omitempty"`

	// Submitted counts every job, warm-up included; Measured those due
	// in the measured time; Final those of them with a certificate;
	// NotFinal those without one by their deadline plus a grace period;
	// Refused those the gateway refused.
	Submitted int                      `json:"submitted"`
	Measured  int                      `json:"measured"`
	Final     int                      `json:"final"`
	NotFinal  int                      `json:"not_final"`
	Refused   int                      `json:"refused"`
	Statuses  map[consensus.Status]int `json:"statuses"`

	// LatencyMS is the time from submission to certificate on the gateway.
	LatencyMS Latency `json:"latency_ms"`
	// FloorMS is the network floor per job plus ProcessingMS: the round
	// trip from the gateway to the assigned validator that completes the
	// quorum, fastest first (see docs/simulation.md).
	FloorMS      Latency `json:"floor_ms"`
	ProcessingMS float64 `json:"processing_ms"`
	// LatencyOverFloor is LatencyMS.P50 / FloorMS.P50.
	LatencyOverFloor float64 `json:"latency_over_floor"`

	// ClaimsCertified counts the claims of measured certificates;
	// CorrectClaims, WrongClaims and Undecided split them against the
	// truth the load generated. WrongRate is WrongClaims/ClaimsCertified,
	// WrongRateSE its standard error; TheoryWrongRate is the chance that
	// a committee drawn for a claim holds enough liars to decide it
	// (hypergeometric tail, equal stakes assumed; -1 without liars).
	ClaimsCertified int     `json:"claims_certified"`
	CorrectClaims   int     `json:"correct_claims"`
	WrongClaims     int     `json:"wrong_claims"`
	Undecided       int     `json:"undecided_claims"`
	WrongRate       float64 `json:"wrong_rate"`
	WrongRateSE     float64 `json:"wrong_rate_se"`
	TheoryWrongRate float64 `json:"theory_wrong_rate"`

	CertificatesPerSecond float64 `json:"certificates_per_second"`
	// CPUPerCertificateMS is this process's CPU time (every node, the
	// simulated network and the load) over the measured time per
	// certificate issued in it; CPUPerNodeMS is that divided by the
	// validators.
	CPUPerCertificateMS float64 `json:"cpu_per_certificate_ms"`
	CPUPerNodeMS        float64 `json:"cpu_per_node_per_certificate_ms"`
	// CPUCores is that CPU time over the measured time's wall time: the
	// cores kept busy.
	CPUCores float64 `json:"cpu_cores"`
	// BytesPerNode is the bytes the validators' simulated sockets sent
	// (QUIC packets: gossip, ballots, certificates, heartbeats) per
	// certificate, divided by the validators. MessagesPerCertificate is
	// the gossip messages every node received (pubsub's counters).
	BytesPerNode           float64 `json:"bytes_per_node_per_certificate"`
	MessagesPerCertificate float64 `json:"gossip_messages_per_certificate"`

	// PeersPerNode and MaxPeersPerNode are the peers a running node is
	// connected to as the run ends, on average and at most: each costs
	// the node gossipsub's heartbeat and QUIC's timers.
	PeersPerNode    float64 `json:"peers_per_node"`
	MaxPeersPerNode int     `json:"max_peers_per_node"`

	PeakRSSBytes     uint64  `json:"peak_rss_bytes"`
	Goroutines       int     `json:"goroutines"`
	SetupWallSeconds float64 `json:"setup_wall_seconds"`
	WallSeconds      float64 `json:"wall_seconds"`
	GoVersion        string  `json:"go_version"`
	CPUs             int     `json:"cpus"`
}

// Latency holds durations in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Time notes.
const (
	noteVirtual = "virtual time (testing/synctest): latencies are the simulated links' alone; CPU work takes no simulated time"
	noteReal    = "real time: latencies include waiting for this machine's CPU, shared by every node"
)

// report builds the report of the run from its jobs and the snapshots
// taken before and after the measured time.
func (r *runner) report(before, after snapshot) *Report {
	sc := r.w.sc
	rep := &Report{
		Seed: sc.Seed, Validators: sc.Validators, Regions: len(sc.Region), Quorum: sc.Consensus.Quorum,
		Replication: sc.Consensus.Replication, Committee: consensus.EffectiveReplication(r.w.set, sc.Consensus.Replication),
		Rate: sc.Load.Rate, Claims: sc.Load.Claims,
		Warmup: sc.Load.Warmup.Duration.Seconds(), Duration: sc.Load.Duration.Duration.Seconds(),
		Gateways: len(r.gateways), GatewaysKept: sc.Load.Gateways > 0,
		Statuses:  map[consensus.Status]int{},
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		TheoryWrongRate: -1,
	}
	r.addAdversaries(rep)
	r.mu.Lock()
	jobs := slices.Clone(r.jobs)
	rep.Churn = slices.Clone(r.churnLog)
	r.mu.Unlock()
	slices.SortFunc(jobs, func(a, b *job) int { return a.k - b.k })
	inWindow := r.addJobs(rep, jobs)
	rep.CertificatesPerSecond = float64(inWindow) / sc.Load.Duration.Duration.Seconds()
	if before.taken && after.taken {
		addCosts(rep, before, after, inWindow, sc.Validators)
	}
	rep.PeersPerNode, rep.MaxPeersPerNode = r.peers()
	rep.PeakRSSBytes = selfMaxRSS()
	rep.Goroutines = goroutines()
	return rep
}

// peers is the mean and the largest number of peers the running nodes are
// connected to.
func (r *runner) peers() (mean float64, most int) {
	total, running := 0, 0
	for _, m := range r.w.members {
		nd := m.running()
		if nd == nil || nd.Network() == nil {
			continue
		}
		k := len(nd.Network().ConnectedPeers())
		total += k
		most = max(most, k)
		running++
	}
	if running == 0 {
		return 0, 0
	}
	return float64(total) / float64(running), most
}

// addAdversaries adds the adversaries' stake shares and, with liars, the
// theoretical rate of wrong verdicts.
func (r *runner) addAdversaries(rep *Report) {
	sc := r.w.sc
	var total uint64
	adv := map[string]uint64{}
	for _, m := range r.w.members {
		total += m.stake
		if k := m.behaviour.Kind; k != "" && k != testnet.BehaviourHonest {
			adv[k] += m.stake
		}
	}
	if len(adv) > 0 {
		rep.AdversaryStake = map[string]float64{}
		for k, v := range adv {
			rep.AdversaryStake[k] = float64(v) / float64(total)
		}
	}
	if n := adversaryCount(r.w, testnet.BehaviourLiar); n > 0 {
		q, _ := consensus.ParseQuorum(sc.Consensus.Quorum)
		rep.TheoryWrongRate = CommitteeFailure(sc.Validators, n, rep.Committee, q)
	}
}

// addJobs counts the jobs, sorted by submission, and the verdicts of those
// due in the measured time, and sets the latencies and the wrong-verdict
// rate. It returns how many certificates came in the measured time.
func (r *runner) addJobs(rep *Report, jobs []*job) (inWindow int) {
	var lat, floor []time.Duration
	for _, j := range jobs {
		rep.Submitted++
		measured := !j.due.Before(r.warmEnd) && j.due.Before(r.end)
		if j.cert != nil && !j.done.Before(r.warmEnd) && !j.done.After(r.end) {
			inWindow++
		}
		if !measured {
			continue
		}
		rep.Measured++
		switch {
		case j.refused:
			rep.Refused++
			continue
		case j.notFinal:
			rep.NotFinal++
			continue
		}
		rep.Final++
		rep.Statuses[j.cert.Status]++
		lat = append(lat, j.done.Sub(j.start))
		if j.floorOK {
			floor = append(floor, j.floor)
		}
		addVerdicts(rep, j)
	}
	rep.LatencyMS = latencyOf(lat)
	if rep.ClaimsCertified > 0 {
		p := float64(rep.WrongClaims) / float64(rep.ClaimsCertified)
		rep.WrongRate = p
		rep.WrongRateSE = math.Sqrt(p * (1 - p) / float64(rep.ClaimsCertified))
	}
	r.floorLat = floor
	return inWindow
}

// addVerdicts counts a final job's claim verdicts against their truth.
func addVerdicts(rep *Report, j *job) {
	for i, c := range j.cert.Claims {
		if i >= len(j.truth) {
			break
		}
		rep.ClaimsCertified++
		switch c.Verdict {
		case consensus.OutcomeUndecided:
			rep.Undecided++
		case consensus.OutcomeTrue, consensus.OutcomeFalse:
			if (c.Verdict == consensus.OutcomeTrue) == j.truth[i] {
				rep.CorrectClaims++
			} else {
				rep.WrongClaims++
			}
		}
	}
}

// addCosts adds the CPU, bytes and messages the measured time cost, per
// certificate that came in it.
func addCosts(rep *Report, before, after snapshot, inWindow, validators int) {
	cpu := after.cpu - before.cpu
	if wall := after.wall.Sub(before.wall); wall > 0 {
		rep.CPUCores = cpu.Seconds() / wall.Seconds()
	}
	if inWindow == 0 {
		return
	}
	rep.CPUPerCertificateMS = ms(cpu) / float64(inWindow)
	rep.CPUPerNodeMS = rep.CPUPerCertificateMS / float64(validators)
	rep.BytesPerNode = float64(after.sent-before.sent) / float64(inWindow) / float64(validators)
	var msgs uint64
	for nd, a := range after.stats {
		b, ok := before.stats[nd]
		if !ok {
			continue
		}
		msgs += (a.Delivered - b.Delivered) + (a.Duplicates - b.Duplicates) + (a.Rejected - b.Rejected) + (a.Ignored - b.Ignored)
	}
	rep.MessagesPerCertificate = float64(msgs) / float64(inWindow)
}

// finish adds what needs the calibrated processing time.
func (rep *Report) finish(r *runner, processing time.Duration) {
	rep.TimeNote = noteReal
	if rep.Time == "virtual" {
		rep.TimeNote = noteVirtual
	}
	fl := make([]time.Duration, len(r.floorLat))
	for i, d := range r.floorLat {
		fl[i] = d + processing
	}
	rep.FloorMS = latencyOf(fl)
	if rep.FloorMS.P50 > 0 {
		rep.LatencyOverFloor = rep.LatencyMS.P50 / rep.FloorMS.P50
	}
}

func adversaryCount(w *world, kind string) int {
	n := 0
	for _, m := range w.members {
		if m.behaviour.Kind == kind {
			n++
		}
	}
	return n
}

func latencyOf(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	// Whole microseconds: in virtual time what is left below them is the
	// nanoseconds packets take on the links, which vary with the order
	// goroutines run in.
	us := func(d time.Duration) float64 { return ms(d.Round(time.Microsecond)) }
	return Latency{P50: us(percentile(d, 50)), P90: us(percentile(d, 90)), P99: us(percentile(d, 99)), Max: us(d[len(d)-1])}
}

// percentile returns the p-th percentile of sorted durations (nearest
// rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// CommitteeFailure is the chance that a committee of k validators drawn
// without replacement from n, of which b lie, holds enough liars for a
// quorum q on its own: with equal stakes, at least t liars where t is the
// least count above q of k (stake quorum) or N (count quorum "N of M").
// It is the hypergeometric tail
//
//	P(X >= t) = sum_{i >= t} C(b, i) C(n-b, k-i) / C(n, k)
//
// of docs/certificate.md ("Security floor").
func CommitteeFailure(n, b, k int, q consensus.Quorum) float64 {
	if k <= 0 || k > n {
		k = n
	}
	var t int
	if q.Kind == consensus.QuorumCount {
		t = int(q.N)
	} else {
		// The least t with t*den > num*k.
		t = int(q.Num*uint64(k)/q.Den) + 1
	}
	var p float64
	for i := t; i <= min(b, k); i++ {
		if k-i > n-b {
			continue
		}
		p += math.Exp(lchoose(b, i) + lchoose(n-b, k-i) - lchoose(n, k))
	}
	return min(p, 1)
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// WriteText writes the report as a table of at most 80 columns.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	row := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "  %-30s %s\n", k, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "simulation: %d validators, %d regions, seed %d, %s time\n",
		rep.Validators, rep.Regions, rep.Seed, rep.Time)
	fmt.Fprintf(&b, "  (%s)\n", wrap(rep.TimeNote, 74, "   "))
	committee := fmt.Sprintf("%d of %d", rep.Committee, rep.Validators)
	if rep.Replication == 0 {
		committee = fmt.Sprintf("every validator (%d)", rep.Validators)
	}
	row("committee per claim", "%s, quorum %s", committee, rep.Quorum)
	row("load", "%g outputs/s x %d claims, %gs (+%gs warm-up)", rep.Rate, rep.Claims, rep.Duration, rep.Warmup)
	if rep.GatewaysKept {
		row("gateways", "%d, every validator connected to each", rep.Gateways)
	} else if rep.Gateways > 0 {
		row("gateways", "%d (every validator that never leaves)", rep.Gateways)
	}
	if len(rep.AdversaryStake) > 0 {
		var parts []string
		for _, k := range sortedKeys(rep.AdversaryStake) {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*rep.AdversaryStake[k]))
		}
		row("adversaries (share of stake)", "%s", strings.Join(parts, ", "))
	}
	for _, c := range rep.Churn {
		row("churn", "%s", c)
	}
	row("jobs measured", "%d: %d final, %d not final, %d refused", rep.Measured, rep.Final, rep.NotFinal, rep.Refused)
	var st []string
	for _, k := range []consensus.Status{consensus.StatusVerified, consensus.StatusRejected, consensus.StatusUnresolved} {
		if n := rep.Statuses[k]; n > 0 {
			st = append(st, fmt.Sprintf("%s %d", k, n))
		}
	}
	row("certificates", "%s", strings.Join(st, ", "))
	row("time to certificate p50 / p99", "%.1f / %.1f ms (max %.1f)", rep.LatencyMS.P50, rep.LatencyMS.P99, rep.LatencyMS.Max)
	if rep.FloorMS.P50 > 0 {
		row("network floor p50 / p99", "%.1f / %.1f ms (processing %.2f ms)", rep.FloorMS.P50, rep.FloorMS.P99, rep.ProcessingMS)
		row("p50 over floor", "%.2fx", rep.LatencyOverFloor)
	} else {
		row("network floor", "none: honest ballots cannot reach every quorum")
	}
	row("claims certified", "%d: %d right, %d wrong, %d undecided", rep.ClaimsCertified, rep.CorrectClaims, rep.WrongClaims, rep.Undecided)
	theory := "no liars"
	if rep.TheoryWrongRate >= 0 {
		theory = fmt.Sprintf("%.4f", rep.TheoryWrongRate)
	}
	row("certified-wrong rate", "%.4f ± %.4f (committee theory %s)", rep.WrongRate, rep.WrongRateSE, theory)
	row("certificates per second", "%.2f", rep.CertificatesPerSecond)
	row("CPU per certificate", "%.1f ms (per node %.2f ms; %.2f cores)", rep.CPUPerCertificateMS, rep.CPUPerNodeMS, rep.CPUCores)
	row("bytes sent per node per cert", "%.0f (gossip messages per cert %.0f)", rep.BytesPerNode, rep.MessagesPerCertificate)
	row("peers per node", "%.1f (at most %d)", rep.PeersPerNode, rep.MaxPeersPerNode)
	row("peak RSS, goroutines", "%.0f MiB, %d", float64(rep.PeakRSSBytes)/(1<<20), rep.Goroutines)
	row("wall time", "%.1f s (setup %.1f s), %d CPUs, %s", rep.WallSeconds, rep.SetupWallSeconds, rep.CPUs, rep.GoVersion)
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// wrap breaks s into lines of at most width characters, indenting the
// lines after the first.
func wrap(s string, width int, indent string) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	lines = append(lines, line)
	return strings.Join(lines, "\n"+indent)
}
