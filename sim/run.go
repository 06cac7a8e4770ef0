package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/testnet"
)

// Options configure a run.
type Options struct {
	// Virtual says the run is inside a testing/synctest bubble, where time
	// is virtual: the report says so. Only the simulation test tier sets
	// it (see TestScenario).
	Virtual bool
	// StoreDir is where the nodes' stores go, one temporary directory per
	// run (default: /dev/shm when it exists, else the system's temporary
	// directory).
	StoreDir string
	// Progress, when set, receives a line as the network starts and every
	// second of the load.
	Progress io.Writer
	// Measuring, when set, is called with true as the measured time begins
	// and with false as it ends (or as the run is cancelled, once it
	// began): to profile the measured time alone (TestScenario's -profile).
	Measuring func(begin bool)
}

// calibrationJobs is the number of jobs measured with zero latency before
// the load, to measure processing alone.
const calibrationJobs = 5

// awaitGrace is how long after its deadline a job's certificate is still
// awaited: at the deadline the gateway issues one with what it has.
const awaitGrace = 5 * time.Second

// job is the fate of one output.
type job struct {
	k        int
	gateway  int
	due      time.Time
	start    time.Time
	done     time.Time
	id       common.Hash
	truth    []bool
	cert     *consensus.Certificate
	refused  bool
	notFinal bool
	// floor is the network floor of this job (without processing); ok
	// false when no quorum of voting validators could be found.
	floor   time.Duration
	floorOK bool
}

// runner runs the load of one scenario on a world.
type runner struct {
	w        *world
	opts     Options
	gateways []int
	start    time.Time
	warmEnd  time.Time
	end      time.Time

	wallStart time.Time

	mu       sync.Mutex
	jobs     []*job
	recent   []time.Duration
	churnLog []string
	// floorLat is the network floor of each measured certified job.
	floorLat []time.Duration
}

// Run builds the scenario's network, runs its load and returns the report.
// ctx bounds the whole run.
func Run(ctx context.Context, sc *Scenario, opts Options) (*Report, error) {
	wallStart := wallNow()
	storeDir := opts.StoreDir
	if storeDir == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			storeDir = "/dev/shm"
		}
	}
	dir, err := os.MkdirTemp(storeDir, "verity-sim-")
	if err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	defer os.RemoveAll(dir)
	w, err := build(sc, dir)
	if err != nil {
		return nil, err
	}
	w.sim.Start()
	defer w.close()

	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "sim: "+format+"\n", args...)
		}
	}
	mode := "real"
	if opts.Virtual {
		mode = "virtual"
	}
	progress("starting %d validators in %d regions (%s time)", len(w.members), len(sc.Region), mode)
	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute+time.Duration(len(w.members))*time.Second)
	defer cancel()
	step := max(len(w.members)/5, 1)
	for i := range w.members {
		if err := w.start(setupCtx, i); err != nil {
			return nil, err
		}
		if (i+1)%step == 0 || i+1 == len(w.members) {
			progress("  %d of %d started", i+1, len(w.members))
		}
	}
	if err := w.waitReady(setupCtx); err != nil {
		return nil, err
	}
	// Let the meshes settle: a few heartbeats.
	time.Sleep(5 * p2p.DefaultHeartbeatInterval)
	setupWall := wallNow().Sub(wallStart)
	progress("network ready after %s of wall time", setupWall.Round(time.Millisecond))

	r := &runner{w: w, opts: opts, wallStart: wallStart}
	pool := sc.churnPool()
	r.gateways = sc.gatewaySet()
	processing, err := r.calibrate(ctx)
	if err != nil {
		return nil, err
	}
	progress("processing with zero latency: %s (median of %d jobs)", processing.Round(time.Microsecond), calibrationJobs)

	rep, err := r.load(ctx, pool)
	if err != nil {
		return nil, err
	}
	rep.Time = mode
	rep.ProcessingMS = ms(processing)
	rep.SetupWallSeconds = setupWall.Seconds()
	rep.finish(r, processing)
	rep.WallSeconds = wallNow().Sub(wallStart).Seconds()
	return rep, nil
}

// calibrate runs a few jobs one at a time with every latency zero and
// returns their median time to certificate: the processing that the
// network floor adds to the links' round trips.
func (r *runner) calibrate(ctx context.Context) (time.Duration, error) {
	r.w.zeroLatency.Store(true)
	defer r.w.zeroLatency.Store(false)
	var lat []time.Duration
	// The first round opens the validators' connections to the gateways
	// (ballots go straight to them), as the load's warm-up does; the
	// second is measured.
	for k := range 2 * calibrationJobs {
		gw := r.w.members[r.gateways[k%min(calibrationJobs, len(r.gateways))]].running()
		req := api.VerifyRequest{Output: calibrationOutput(k, r.w.sc.Load.Claims)}
		start := time.Now()
		j, err := gw.Submit(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("calibration job: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, r.w.sc.Consensus.Deadline.Duration+awaitGrace)
		_, err = gw.WaitFinal(wctx, j.JobID)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("calibration job %s: %w", j.JobID.Hex(), err)
		}
		if k >= calibrationJobs {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// calibrationOutput is an output of true claims that no load job repeats.
func calibrationOutput(k, claims int) string {
	var b strings.Builder
	for i := range claims {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d - %d = %d.", 1000000+k, i, 1000000+k-i)
	}
	return b.String()
}

// output is the output of load job k and the truth of its claims: claim i
// states "a + b = c." with c right or, for a false claim drawn by the
// seed, one too many.
func (sc *Scenario) output(k int) (string, []bool) {
	rng := seededRand(sc.Seed^uint64(k)*0x9e3779b97f4a7c15, "load")
	var b strings.Builder
	truth := make([]bool, sc.Load.Claims)
	for i := range truth {
		if i > 0 {
			b.WriteByte(' ')
		}
		a, c := k*sc.Load.Claims+i, i+1
		sum := a + c
		truth[i] = rng.Float64() >= *sc.Load.FalseShare
		if !truth[i] {
			sum++
		}
		fmt.Fprintf(&b, "%d + %d = %d.", a, c, sum)
	}
	return b.String(), truth
}

// load runs the scenario's load and churn and measures the measured time.
func (r *runner) load(ctx context.Context, pool []int) (*Report, error) {
	sc := r.w.sc
	r.start = time.Now()
	r.warmEnd = r.start.Add(sc.Load.Warmup.Duration)
	r.end = r.warmEnd.Add(sc.Load.Duration.Duration)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { r.progress(stop) })
	wg.Go(func() { r.churn(ctx, pool, stop) })

	var before, after snapshot
	wg.Go(func() {
		if !sleepUntil(ctx, r.warmEnd) {
			return
		}
		if r.opts.Measuring != nil {
			r.opts.Measuring(true)
		}
		before = r.snapshot()
		if sleepUntil(ctx, r.end) {
			after = r.snapshot()
		}
		if r.opts.Measuring != nil {
			r.opts.Measuring(false)
		}
	})

	var jobs sync.WaitGroup
	gwRng := seededRand(sc.Seed, "gateways")
	if sc.Load.Rate > 0 {
		for k := 0; ; k++ {
			due := r.start.Add(time.Duration(float64(k) * float64(time.Second) / sc.Load.Rate))
			if !due.Before(r.end) || !sleepUntil(ctx, due) {
				break
			}
			gw := r.gateways[gwRng.IntN(len(r.gateways))]
			jobs.Go(func() { r.job(ctx, k, gw, due) })
		}
	} else {
		sleepUntil(ctx, r.end)
	}
	jobs.Wait()
	close(stop)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.report(before, after), nil
}

// job submits output k to gateway gw and waits for its certificate.
func (r *runner) job(ctx context.Context, k, gw int, due time.Time) {
	sc := r.w.sc
	out, truth := sc.output(k)
	j := &job{k: k, gateway: gw, due: due, truth: truth}
	defer func() {
		r.mu.Lock()
		r.jobs = append(r.jobs, j)
		r.mu.Unlock()
	}()
	nd := r.w.members[gw].running()
	j.start = time.Now()
	res, err := nd.Submit(ctx, api.VerifyRequest{Output: out})
	if err != nil {
		j.refused = true
		return
	}
	j.id = res.JobID
	j.floor, j.floorOK = r.w.floor(gw, res.JobID, sc.Load.Claims)
	wctx, cancel := context.WithTimeout(ctx, sc.Consensus.Deadline.Duration+awaitGrace)
	defer cancel()
	cert, err := nd.WaitFinal(wctx, res.JobID)
	j.done = time.Now()
	if err != nil {
		j.notFinal = true
		return
	}
	j.cert = cert
	r.mu.Lock()
	r.recent = append(r.recent, j.done.Sub(j.start))
	r.mu.Unlock()
}

// floor is the network floor of a job on gateway gw: for each claim, the
// round trip from the gateway to the assigned validator whose ballot
// completes a quorum when ballots arrive fastest first (the gateway's own
// at once); the job's floor is the largest over its claims. Validators
// that are down, or whose behaviour keeps their ballot from counting
// towards the honest verdict, are left out; a slow validator's delay is
// added to its round trip.
func (w *world) floor(gw int, id common.Hash, claims int) (time.Duration, bool) {
	q, _ := consensus.ParseQuorum(w.sc.Consensus.Quorum)
	a := consensus.Assign(w.set, id, claims, w.sc.Consensus.Replication)
	pos := make(map[common.Address]int, len(w.members))
	for i, v := range w.genesis.Validators {
		pos[v.Address] = i
	}
	var worst time.Duration
	for c := range claims {
		type voter struct {
			d     time.Duration
			stake uint64
		}
		var vs []voter
		for _, p := range a.ByClaim[c] {
			i := pos[w.set.At(p).Address]
			m := w.members[i]
			if m.running() == nil {
				continue
			}
			d := time.Duration(0)
			if i != gw {
				d = w.rtt(gw, i)
			}
			switch m.behaviour.Kind {
			case "", testnet.BehaviourHonest:
			case testnet.BehaviourSlow:
				d += m.behaviour.Delay
			default:
				continue
			}
			vs = append(vs, voter{d, m.stake})
		}
		slices.SortFunc(vs, func(x, y voter) int { return int(x.d - y.d) })
		var stake, count uint64
		found := false
		for _, v := range vs {
			stake += v.stake
			count++
			if quorumReached(q, stake, count, a.Stake[c]) {
				worst = max(worst, v.d)
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return worst, true
}

// quorumReached applies the quorum rule to stake and count in favour out of
// the assigned stake.
func quorumReached(q consensus.Quorum, stake, count, assigned uint64) bool {
	if q.Kind == consensus.QuorumCount {
		return count >= q.N
	}
	// stake/assigned > num/den, in 128-bit-safe floats for these sizes.
	return float64(stake)*float64(q.Den) > float64(q.Num)*float64(assigned)
}

// churn applies the scenario's [[churn]] schedule.
func (r *runner) churn(ctx context.Context, pool []int, stop <-chan struct{}) {
	var left []int
	next := 0
	for _, c := range r.w.sc.churnSchedule() {
		if !sleepUntil(ctx, r.start.Add(c.At.Duration)) {
			return
		}
		select {
		case <-stop:
			return
		default:
		}
		var names []string
		for range c.Count {
			switch c.Action {
			case ChurnLeave:
				i := pool[next]
				next++
				if err := r.w.stop(i); err != nil {
					names = append(names, fmt.Sprintf("%s (stop: %v)", r.w.members[i].name, err))
					continue
				}
				left = append(left, i)
				names = append(names, r.w.members[i].name)
			case ChurnJoin:
				i := left[0]
				left = left[1:]
				if err := r.w.start(ctx, i); err != nil {
					names = append(names, fmt.Sprintf("%s (start: %v)", r.w.members[i].name, err))
					continue
				}
				names = append(names, r.w.members[i].name)
			}
		}
		line := fmt.Sprintf("+%s %s: %s", c.At.Duration, c.Action, strings.Join(names, ", "))
		r.mu.Lock()
		r.churnLog = append(r.churnLog, line)
		r.mu.Unlock()
		if r.opts.Progress != nil {
			fmt.Fprintf(r.opts.Progress, "sim: churn %s\n", line)
		}
	}
}

// progress writes a line every second of the load until stop is closed.
func (r *runner) progress(stop <-chan struct{}) {
	if r.opts.Progress == nil {
		<-stop
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			recent := r.recent
			r.recent = nil
			done := len(r.jobs)
			r.mu.Unlock()
			p50 := "-"
			if len(recent) > 0 {
				slices.Sort(recent)
				p50 = fmt.Sprintf("%.1fms", ms(percentile(recent, 50)))
			}
			phase := ""
			switch {
			case now.Before(r.warmEnd):
				phase = " (warm-up)"
			case !now.Before(r.end):
				phase = " (waiting for outstanding jobs)"
			}
			fmt.Fprintf(r.opts.Progress, "sim: %6.1fs  jobs done %4d  p50 %-9s  wall %s%s\n",
				now.Sub(r.start).Seconds(), done, p50, wallNow().Sub(r.wallStart).Round(100*time.Millisecond), phase)
		}
	}
}

// snapshot is the resource use so far.
type snapshot struct {
	taken bool
	// wall is the machine's clock, which virtual time does not move.
	wall time.Time
	cpu  time.Duration
	// sent is the bytes every member's sockets sent.
	sent int64
	// stats are each running node's pubsub counters.
	stats map[*node.Node]p2p.Stats
}

func (r *runner) snapshot() snapshot {
	s := snapshot{taken: true, wall: wallNow(), stats: map[*node.Node]p2p.Stats{}}
	s.cpu, _ = selfCPU()
	for _, m := range r.w.members {
		sent, _ := m.sentRcvd()
		s.sent += sent
		if nd := m.running(); nd != nil {
			s.stats[nd] = nd.Network().Stats()
		}
	}
	return s
}

// sleepUntil waits until t; it reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// goroutines is the number of goroutines now.
func goroutines() int { return runtime.NumGoroutine() }
