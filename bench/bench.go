package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// Defaults of Config.
const (
	DefaultNodes       = 5
	DefaultClaims      = 5
	DefaultConcurrency = 64
	DefaultDuration    = 10 * time.Second
	// DefaultWarmup is the CLI's warm-up; a zero Config.Warmup means none.
	DefaultWarmup   = time.Second
	DefaultDeadline = 10 * time.Second
	DefaultBasePort = 36600
)

// awaitGrace is how long after a job's deadline the load generator still
// waits for its certificate: at the deadline the gateway issues one with
// the ballots it has, so a job without a certificate by then is lost.
const awaitGrace = 5 * time.Second

// ErrInvalidConfig is returned by Run for a Config it cannot run.
var ErrInvalidConfig = errors.New("invalid bench config")

// Config describes one benchmark run.
type Config struct {
	// Nodes is the number of validators (default 5).
	Nodes int
	// Claims is the number of claims of each output (default 5).
	Claims int
	// Rate is the number of outputs submitted per second (open loop: the
	// submitter does not wait for certificates). 0 runs a closed loop of
	// Concurrency jobs in flight.
	Rate float64
	// Concurrency is the number of jobs in flight in a closed loop
	// (default 64).
	Concurrency int
	// Warmup runs before the measurement; its jobs count in neither the
	// latencies nor the rates.
	Warmup time.Duration
	// Duration is the measured time (default 10s).
	Duration time.Duration
	// Deadline is each job's deadline (default 10s).
	Deadline time.Duration

	// StoreDir is the directory under which the nodes keep their stores,
	// one temporary subdirectory per run (default: the system's temporary
	// directory). A directory on tmpfs shows what the network does when a
	// durable write costs no fsync.
	StoreDir string

	// GossipBallots has validators gossip ballots to every node instead of
	// sending them straight to each job's gateway
	// (node.Options.GossipBallots; in-process only).
	GossipBallots bool

	// Subprocess runs every node as its own `verity node` process, from a
	// temporary testnet directory, and submits over HTTP.
	Subprocess bool
	// Command is the verity binary of subprocess mode (default: this
	// executable).
	Command string
	// BasePort is node0's p2p port in subprocess mode (default 36600); node
	// i uses BasePort+2i for p2p and BasePort+1000+i for its API.
	BasePort int

	// Progress, when set, receives a line every second while the load runs.
	Progress io.Writer
	// CPUProfile, when set, receives a CPU profile of this process taken
	// over the measured time.
	CPUProfile io.Writer
}

func (c *Config) setDefaults() {
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Claims == 0 {
		c.Claims = DefaultClaims
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.BasePort == 0 {
		c.BasePort = DefaultBasePort
	}
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > consensus.MaxValidators:
		return fmt.Errorf("%w: %d nodes: need 1 to %d", ErrInvalidConfig, c.Nodes, consensus.MaxValidators)
	case c.Claims < 1 || c.Claims > MaxClaims:
		return fmt.Errorf("%w: %d claims per output: need 1 to %d", ErrInvalidConfig, c.Claims, MaxClaims)
	case c.Rate < 0:
		return fmt.Errorf("%w: negative rate", ErrInvalidConfig)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: concurrency %d: need at least 1", ErrInvalidConfig, c.Concurrency)
	case c.Duration <= 0 || c.Warmup < 0 || c.Deadline <= 0:
		return fmt.Errorf("%w: duration and deadline must be positive, warmup not negative", ErrInvalidConfig)
	}
	return nil
}

// MaxClaims bounds Config.Claims.
const MaxClaims = 1000

// Report is the result of a run. Rates and per-certificate costs count what
// happened during the measured time; latencies are those of the jobs
// submitted during it, followed to their certificate.
type Report struct {
	Mode            string  `json:"mode"` // "in-process" or "subprocess"
	Load            string  `json:"load"` // "open" or "closed"
	Nodes           int     `json:"nodes"`
	ClaimsPerOutput int     `json:"claims_per_output"`
	Rate            float64 `json:"rate,omitempty"`
	Concurrency     int     `json:"concurrency,omitempty"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`

	// Submitted counts every job submitted, warm-up included; Measured
	// those scheduled during the measured time.
	Submitted int `json:"submitted"`
	Measured  int `json:"measured"`
	// Certified counts the measured jobs that got a certificate.
	Certified int `json:"certified"`
	// SubmitErrors counts submissions the gateway refused.
	SubmitErrors int `json:"submit_errors"`
	// NotFinal counts accepted jobs (warm-up included) with no certificate
	// by their deadline plus a grace period.
	NotFinal int `json:"not_final"`
	// Statuses counts the certificates of measured jobs by status. Every
	// claim is true, so anything but "verified" means a job ran out of time.
	Statuses map[consensus.Status]int `json:"statuses"`

	Latency      Latency `json:"latency_ms"`
	LatencyScope string  `json:"latency_scope"`

	CertificatesPerSecond float64 `json:"certificates_per_second"`
	ClaimsPerSecond       float64 `json:"claims_per_second"`

	CPUSecondsPerCertificate float64 `json:"cpu_seconds_per_certificate"`
	// CPUCores is the CPU time over the measured time: cores kept busy.
	CPUCores float64 `json:"cpu_cores"`
	CPUScope string  `json:"cpu_scope"`

	PeakMemoryPerNodeBytes uint64 `json:"peak_memory_per_node_bytes"`
	MemoryScope            string `json:"memory_scope"`

	// Gossip is nil when the nodes' p2p statistics are out of reach.
	Gossip *Gossip `json:"gossip,omitempty"`

	// Stages takes the median time to certificate apart along its
	// critical path (stageNames), over StageJobs of the measured jobs:
	// those whose every step was traced (in a closed loop, one job in 16
	// is traced). Nil in subprocess mode.
	Stages    []Stage `json:"stages,omitempty"`
	StageJobs int     `json:"stage_jobs,omitempty"`

	// Store and Signing are nil when the nodes' statistics are out of
	// reach (subprocess mode).
	Store   *StoreWrites `json:"store,omitempty"`
	Signing *Signing     `json:"signing,omitempty"`

	// Runs is the number of runs a median report stands for (0: one run).
	Runs int `json:"runs,omitempty"`

	// StoreDir is where the stores were, when not the default.
	StoreDir string `json:"store_dir,omitempty"`

	Env Env `json:"env"`
}

// Latency holds the time from submission to certificate in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Gossip is the gossip traffic of the measured time per certificate, summed
// over every node.
type Gossip struct {
	// MessagesPerCertificate counts messages received from peers: delivered,
	// duplicates, rejected and ignored.
	MessagesPerCertificate   float64 `json:"messages_per_certificate"`
	DuplicatesPerCertificate float64 `json:"duplicates_per_certificate"`
	// BytesPerCertificate estimates the message data received:
	// MessagesPerCertificate times the mean size of a job's distinct
	// messages (job, ballots, certificate as encoded on the wire). Framing
	// is not counted: p2p.Stats carries no byte counts.
	BytesPerCertificate float64 `json:"bytes_per_certificate"`
	BytesEstimated      bool    `json:"bytes_estimated"`
	// Dropped sums the validation, outbound and subscriber drop counters of
	// p2p.Stats; anything but 0 means a queue overflowed.
	Dropped uint64 `json:"dropped"`
	// Bundles is, by destination (a topic kind, or "direct/ballots"),
	// how many messages the nodes' queued sends carried in the measured
	// time and how many sends (bundles or messages alone) carried them.
	Bundles map[string]Bundles `json:"bundles,omitempty"`
}

// Bundles counts the sends to one kind of destination.
type Bundles struct {
	Sends    uint64 `json:"sends"`
	Messages uint64 `json:"messages"`
	// Mean is Messages per send.
	Mean float64 `json:"mean"`
	// Max is the largest bundle since the nodes started.
	Max uint64 `json:"max"`
}

// StoreWrites is the durable writes of the measured time per certificate,
// summed over every node's store.
type StoreWrites struct {
	// CommitsPerCertificate counts bbolt write transactions committed:
	// each costs two fdatasyncs.
	CommitsPerCertificate float64 `json:"commits_per_certificate"`
	// WritesPerCommit is the store writes (group commit) per transaction.
	WritesPerCommit float64 `json:"writes_per_commit"`
	// PageWritesPerCertificate counts bbolt's page writes (a page or a
	// run of overflow pages each, and each commit's meta page).
	PageWritesPerCertificate float64 `json:"page_writes_per_certificate"`
	// WritesPerCertificate counts the store writes by kind of record
	// (store.Kind names).
	WritesPerCertificate map[string]float64 `json:"writes_per_certificate"`
}

// Signing is the signatures the nodes made in the measured time: how many
// ballots, and how many jobs or certificates of a gateway, each signature
// covered.
type Signing struct {
	Ballots      Batches `json:"ballots"`
	Jobs         Batches `json:"jobs"`
	Certificates Batches `json:"certificates"`
}

// Batches describes signatures and the messages each covered.
type Batches struct {
	Signatures uint64 `json:"signatures"`
	Messages   uint64 `json:"messages"`
	// Mean is Messages per signature.
	Mean float64 `json:"mean"`
	// Max is the most messages one signature covered since the nodes
	// started (warm-up included).
	Max int `json:"max"`
	// Histogram counts signatures by the messages they covered, in
	// buckets "1", "2-3", "4-7", … "32-63", "64" (node.maxSignBatch).
	Histogram map[string]uint64 `json:"histogram"`
}

// histogramBuckets names node.BatchStats.Sizes.
var histogramBuckets = [node.SizeBuckets]string{"1", "2-3", "4-7", "8-15", "16-31", "32-63", "64"}

func batches(before, after node.BatchStats) Batches {
	d := after.Sub(before)
	b := Batches{Signatures: d.Signatures, Messages: d.Messages, Max: d.Max, Histogram: map[string]uint64{}}
	if d.Signatures > 0 {
		b.Mean = float64(d.Messages) / float64(d.Signatures)
	}
	for i, n := range d.Sizes {
		if n > 0 {
			b.Histogram[histogramBuckets[i]] = n
		}
	}
	return b
}

// add adds o's signatures to b.
func (b *Batches) add(o *Batches) {
	b.Signatures += o.Signatures
	b.Messages += o.Messages
	b.Max = max(b.Max, o.Max)
	for k, n := range o.Histogram {
		b.Histogram[k] += n
	}
	if b.Signatures > 0 {
		b.Mean = float64(b.Messages) / float64(b.Signatures)
	}
}

// histogramText lists a histogram's buckets in order, "" for none.
func (b *Batches) histogramText() string {
	var parts []string
	for _, k := range histogramBuckets {
		if n, ok := b.Histogram[k]; ok {
			parts = append(parts, fmt.Sprintf("%s: %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}

func storePerCert(before, after *store.Stats, certs int) *StoreWrites {
	w := &StoreWrites{WritesPerCertificate: map[string]float64{}}
	commits := after.Commits - before.Commits
	var writes uint64
	for k := range after.Writes {
		n := after.Writes[k] - before.Writes[k]
		writes += n
		if n > 0 {
			w.WritesPerCertificate[store.Kind(k).String()] = float64(n) / float64(certs)
		}
	}
	w.CommitsPerCertificate = float64(commits) / float64(certs)
	w.PageWritesPerCertificate = float64(after.PageWrites-before.PageWrites) / float64(certs)
	if commits > 0 {
		w.WritesPerCommit = float64(writes) / float64(commits)
	}
	return w
}

// Env describes the machine.
type Env struct {
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
}

// Output is the output of job k: claims sentences "<a> + <b> = <a+b>.", all
// true, distinct across jobs.
func Output(k, claims int) string {
	var b strings.Builder
	for i := range claims {
		if i > 0 {
			b.WriteByte(' ')
		}
		a := k*claims + i
		c := i + 1
		fmt.Fprintf(&b, "%d + %d = %d.", a, c, a+c)
	}
	return b.String()
}

// Run starts a network, runs the load of cfg on it and stops it. ctx
// bounds the whole run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Starting is not measured: allow a machine whose cores are busy with
	// other work a generous minute and more for the nodes to be ready.
	startCtx, cancel := context.WithTimeout(ctx, 90*time.Second+time.Duration(cfg.Nodes)*2*time.Second)
	defer cancel()
	var (
		t   target
		err error
	)
	if cfg.Subprocess {
		t, err = startSubprocess(startCtx, &cfg)
	} else {
		t, err = startInProcess(startCtx, &cfg)
	}
	if err != nil {
		return nil, err
	}
	r, err := runLoad(ctx, &cfg, t)
	return r, errors.Join(err, t.Stop())
}

// record is the fate of one job.
type record struct {
	due       time.Time // when the job was scheduled
	submitted time.Time
	done      time.Time // when the certificate arrived
	status    consensus.Status
	claims    int
	// stages is the job's critical path (stageNames), nil if not traced.
	stages []time.Duration
	// lost is set when the gateway refused the job (refused) or its
	// certificate never came (not final); done and status are then unset.
	lost, refused bool
}

// runner drives the load against a target.
type runner struct {
	cfg       *Config
	t         target
	start     time.Time
	warmupEnd time.Time
	end       time.Time

	submitted  atomic.Int64
	submitErrs atomic.Int64
	notFinal   atomic.Int64
	certified  atomic.Int64
	inflight   sync.WaitGroup

	mu      sync.Mutex
	records []record
	recent  []time.Duration // latencies since the last progress line
	sample  *consensus.Certificate
	errs    []error // first few unexpected errors
}

func runLoad(ctx context.Context, cfg *Config, t target) (*Report, error) {
	r := &runner{cfg: cfg, t: t}
	r.start = time.Now()
	r.warmupEnd = r.start.Add(cfg.Warmup)
	r.end = r.warmupEnd.Add(cfg.Duration)

	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(stopProgress)
	}()

	var (
		before, after usage
		measureErr    error
		profiling     bool
	)
	window := make(chan struct{})
	go func() {
		defer close(window)
		if !sleepUntil(ctx, r.warmupEnd) {
			return
		}
		before, measureErr = t.usage()
		if cfg.CPUProfile != nil {
			if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
				measureErr = errors.Join(measureErr, fmt.Errorf("cpu profile: %w", err))
			} else {
				profiling = true
			}
		}
		if !sleepUntil(ctx, r.end) {
			return
		}
		var err error
		after, err = t.usage()
		measureErr = errors.Join(measureErr, err)
		if profiling {
			pprof.StopCPUProfile()
			profiling = false
		}
	}()

	if cfg.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	<-window
	if profiling {
		pprof.StopCPUProfile()
	}
	r.inflight.Wait()
	close(stopProgress)
	<-progressDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if measureErr != nil {
		return nil, measureErr
	}
	return r.report(before, after)
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

// openLoop starts job k at start + k/Rate, each in its own goroutine,
// without waiting for earlier jobs.
func (r *runner) openLoop(ctx context.Context) {
	for k := 0; ; k++ {
		due := r.start.Add(time.Duration(float64(k) * float64(time.Second) / r.cfg.Rate))
		if !due.Before(r.end) || !sleepUntil(ctx, due) {
			return
		}
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			r.job(ctx, k, due)
		}()
	}
}

// closedLoop keeps Concurrency jobs in flight until the end.
func (r *runner) closedLoop(ctx context.Context) {
	var next atomic.Int64
	for range r.cfg.Concurrency {
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			for ctx.Err() == nil && time.Now().Before(r.end) {
				r.job(ctx, int(next.Add(1)-1), time.Now())
			}
		}()
	}
}

// job submits output k to gateway k mod nodes and waits for its
// certificate. due is when the job was scheduled: it decides whether the
// job is measured, so that a goroutine started late does not move a job
// out of the measured time. Latency runs from the actual submission.
func (r *runner) job(ctx context.Context, k int, due time.Time) {
	gw := k % r.t.Gateways()
	req := api.VerifyRequest{Output: Output(k, r.cfg.Claims), DeadlineMS: r.cfg.Deadline.Milliseconds()}
	start := time.Now()
	r.submitted.Add(1)
	id, err := r.t.Submit(ctx, gw, req)
	if err != nil {
		if ctx.Err() == nil {
			r.submitErrs.Add(1)
			r.noteErr(fmt.Errorf("submit to node%d: %w", gw, err))
			r.add(record{due: due, submitted: start, lost: true, refused: true})
		}
		return
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(r.cfg.Deadline+awaitGrace))
	defer cancel()
	cert, err := r.t.Await(wctx, gw, id)
	done := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			r.notFinal.Add(1)
			if !errors.Is(err, context.DeadlineExceeded) {
				r.noteErr(fmt.Errorf("await job %s on node%d: %w", id.Hex(), gw, err))
			}
			r.add(record{due: due, submitted: start, lost: true})
		}
		return
	}
	r.certified.Add(1)
	rec := record{due: due, submitted: start, done: done, status: cert.Status, claims: len(cert.Claims)}
	if tr := r.t.tracer(); tr != nil {
		rec.stages, _ = tr.take(id, start, done)
	}
	r.add(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = append(r.recent, done.Sub(start))
	if r.sample == nil {
		r.sample = cert
	}
}

func (r *runner) add(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
}

func (r *runner) noteErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 5 {
		r.errs = append(r.errs, err)
	}
}

// progress writes a line every second until stop is closed.
func (r *runner) progress(stop <-chan struct{}) {
	if r.cfg.Progress == nil {
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
			r.mu.Unlock()
			p50 := "-"
			if len(recent) > 0 {
				slices.Sort(recent)
				p50 = fmtMS(ms(percentile(recent, 50)))
			}
			phase := ""
			switch {
			case now.Before(r.warmupEnd):
				phase = " (warm-up)"
			case !now.Before(r.end):
				phase = " (waiting for outstanding jobs)"
			}
			fmt.Fprintf(r.cfg.Progress, "bench: %5.1fs  submitted %d  certified %d  p50 %s%s\n",
				now.Sub(r.start).Seconds(), r.submitted.Load(), r.certified.Load(), p50, phase)
		}
	}
}

// report builds the report of the run from its records and the usage
// before and after the measured time.
func (r *runner) report(before, after usage) (*Report, error) {
	cfg := r.cfg
	rep := &Report{
		Mode:            "in-process",
		LatencyScope:    latencyInProcess,
		CPUScope:        cpuInProcess,
		Nodes:           cfg.Nodes,
		ClaimsPerOutput: cfg.Claims,
		WarmupSeconds:   cfg.Warmup.Seconds(),
		DurationSeconds: cfg.Duration.Seconds(),
		Submitted:       int(r.submitted.Load()),
		SubmitErrors:    int(r.submitErrs.Load()),
		NotFinal:        int(r.notFinal.Load()),
		Statuses:        map[consensus.Status]int{},
		StoreDir:        cfg.StoreDir,
		Env:             env(),
	}
	if cfg.Subprocess {
		rep.Mode, rep.LatencyScope, rep.CPUScope = "subprocess", latencySubprocess, cpuSubprocess
	}
	if cfg.Rate > 0 {
		rep.Load, rep.Rate = "open", cfg.Rate
	} else {
		rep.Load, rep.Concurrency = "closed", cfg.Concurrency
	}
	r.mu.Lock()
	records := r.records
	sample := r.sample
	errs := r.errs
	r.mu.Unlock()
	inWindow, claimsInWindow := r.addLatencies(rep, records)
	secs := cfg.Duration.Seconds()
	rep.CertificatesPerSecond = float64(inWindow) / secs
	rep.ClaimsPerSecond = float64(claimsInWindow) / secs
	cpu := after.cpu - before.cpu
	rep.CPUCores = cpu.Seconds() / secs
	if inWindow > 0 {
		rep.CPUSecondsPerCertificate = cpu.Seconds() / float64(inWindow)
	}
	if before.gossip != nil && after.gossip != nil && inWindow > 0 {
		rep.Gossip = gossipPerCert(before.gossip, after.gossip, inWindow, sample)
	}
	if before.stores != nil && after.stores != nil && inWindow > 0 {
		rep.Store = storePerCert(before.stores, after.stores, inWindow)
	}
	if before.signing != nil && after.signing != nil {
		rep.Signing = &Signing{
			Ballots:      batches(before.signing.Ballots, after.signing.Ballots),
			Jobs:         batches(before.signing.Jobs, after.signing.Jobs),
			Certificates: batches(before.signing.Certificates, after.signing.Certificates),
		}
	}
	var err error
	if rep.PeakMemoryPerNodeBytes, rep.MemoryScope, err = r.t.peakMemory(); err != nil {
		return nil, err
	}
	if rep.Certified == 0 && len(errs) > 0 {
		return rep, fmt.Errorf("no job was certified: %w", errors.Join(errs...))
	}
	return rep, nil
}

// addLatencies sets the latencies and statuses of the jobs due in the
// measured time, and returns how many certificates, and of how many
// claims, came in it.
func (r *runner) addLatencies(rep *Report, records []record) (inWindow, claimsInWindow int) {
	var lat []time.Duration
	var paths [][]time.Duration
	for _, rec := range records {
		measured := !rec.due.Before(r.warmupEnd) && rec.due.Before(r.end)
		if measured {
			rep.Measured++
		}
		if rec.lost {
			continue
		}
		if measured {
			lat = append(lat, rec.done.Sub(rec.submitted))
			rep.Statuses[rec.status]++
			if rec.stages != nil {
				paths = append(paths, rec.stages)
			}
		}
		if !rec.done.Before(r.warmupEnd) && !rec.done.After(r.end) {
			inWindow++
			claimsInWindow += rec.claims
		}
	}
	rep.Certified = len(lat)
	rep.Stages, rep.StageJobs = stages(paths), len(paths)
	if len(lat) > 0 {
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		rep.Latency = Latency{
			P50:  ms(percentile(lat, 50)),
			P90:  ms(percentile(lat, 90)),
			P99:  ms(percentile(lat, 99)),
			Max:  ms(lat[len(lat)-1]),
			Mean: ms(sum / time.Duration(len(lat))),
		}
	}
	return inWindow, claimsInWindow
}

func gossipPerCert(before, after *p2p.Stats, certs int, sample *consensus.Certificate) *Gossip {
	received := (after.Delivered - before.Delivered) + (after.Duplicates - before.Duplicates) +
		(after.Rejected - before.Rejected) + (after.Ignored - before.Ignored)
	dropped := (after.ValidationDropped - before.ValidationDropped) + (after.OutboundDropped - before.OutboundDropped) +
		(after.SubscriberDropped - before.SubscriberDropped)
	g := &Gossip{
		MessagesPerCertificate:   float64(received) / float64(certs),
		DuplicatesPerCertificate: float64(after.Duplicates-before.Duplicates) / float64(certs),
		Dropped:                  dropped,
	}
	for dest, a := range after.Sent {
		b := before.Sent[dest]
		if a.Sends == b.Sends {
			continue
		}
		if g.Bundles == nil {
			g.Bundles = map[string]Bundles{}
		}
		x := Bundles{Sends: a.Sends - b.Sends, Messages: a.Items - b.Items, Max: a.Max}
		x.Mean = float64(x.Messages) / float64(x.Sends)
		g.Bundles[dest] = x
	}
	if sample != nil {
		if size, n, err := messageSizes(sample); err == nil && n > 0 {
			g.BytesPerCertificate = g.MessagesPerCertificate * float64(size) / float64(n)
			g.BytesEstimated = true
		}
	}
	return g
}

// messageSizes returns the total data size of the distinct gossip messages
// of the certificate's job, as the nodes encode them, and their number: the
// job, one ballot per validator and the certificate.
func messageSizes(c *consensus.Certificate) (size, n int, err error) {
	texts := make([]string, len(c.Claims))
	for i, cl := range c.Claims {
		texts[i] = cl.Text
	}
	job := node.JobMessage{
		NetworkID: c.NetworkID, JobID: c.JobID, Nonce: c.JobNonce, OutputHash: c.OutputHash,
		ClaimsRoot: c.ClaimsRoot, Claims: texts, Quorum: c.Quorum, Replication: c.Replication,
		Deadline: c.DeadlineMS, Gateway: c.Gateway, Signature: make([]byte, 65),
	}
	// The certificate is gossiped in its binary form, the rest as JSON.
	size = len(consensus.AppendCertificateBinary(nil, c))
	msgs := []any{&job}
	for _, v := range c.Ballots {
		msgs = append(msgs, &consensus.Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: v})
	}
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			return 0, 0, err
		}
		size += len(data)
	}
	return size, len(msgs) + 1, nil
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

func env() Env {
	return Env{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), CPUModel: cpuModel(), OS: runtime.GOOS + "/" + runtime.GOARCH}
}

// cpuModel is the "model name" of /proc/cpuinfo, "" where there is none.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
