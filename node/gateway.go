package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// gateway aggregates the jobs this node accepts: it starts a job (submit),
// adds the ballots validators send for it (addBallot), expires it at its
// deadline (expire) and issues its certificate (issue).
//
// Each job has a lock of its own (aggJob.mu), held while a ballot is
// counted and while the job's events are published, so that they go out in
// tally order; ballots of different jobs never wait for each other. The
// gateway's lock guards only the set of jobs.
type gateway struct {
	*env
	obs *observer
	// seen is the node's book of recent announcements and ballots: a copy
	// of a ballot taken lately is not taken again.
	seen *announceBook

	mu      sync.Mutex
	jobs    map[common.Hash]*aggJob
	stopped bool

	// signing signs the certificates issued at one moment with one
	// signature; set by startSigning.
	signing *batchSigner[*consensus.Certificate]
	// jobSigning signs the announcements of the jobs this gateway
	// accepts, several accepted together with one batch signature; set by
	// startSigning.
	jobSigning *batchSigner[*consensus.Job]
}

// startSigning starts the signer of the certificates this gateway issues:
// one alone at once (Certificate.Sign), several issued together with one
// batch signature (consensus.SignCertificateBatch), a proof each.
//
// The signature is remembered as this node's own (as a validator's
// ballots are), so that checking the certificate before it is gossiped
// does not recover it.
func (g *gateway) startSigning() {
	g.jobSigning = newBatchSigner(g.loaded,
		func(j *consensus.Job) error { return j.Sign(g.signer) },
		func(js []*consensus.Job) error { return consensus.SignJobBatch(g.signer, js) })
	g.signing = newBatchSigner(g.loaded,
		func(c *consensus.Certificate) error {
			if err := c.Sign(g.signer); err != nil {
				return err
			}
			return g.rememberOwn(c)
		},
		func(cs []*consensus.Certificate) error {
			if err := consensus.SignCertificateBatch(g.signer, cs); err != nil {
				return err
			}
			return g.rememberOwn(cs[0]) // one signature for all
		})
}

// rememberOwn adds c's gateway signature, this node's own, to the
// signature cache.
func (g *gateway) rememberOwn(c *consensus.Certificate) error {
	digest, ok := c.GatewaySignedDigest()
	if !ok {
		return fmt.Errorf("node: batch proof of certificate %d of %d does not fold", c.GatewayBatch.Index, c.GatewayBatch.Count)
	}
	g.sigCache.Add(digest, c.GatewaySignature, g.signer.Address())
	return nil
}

func newGateway(e *env, obs *observer, seen *announceBook) *gateway {
	return &gateway{env: e, obs: obs, seen: seen, jobs: make(map[common.Hash]*aggJob)}
}

// aggJob is a job this node accepted as gateway and is still tallying.
type aggJob struct {
	msg      *JobMessage
	claims   []claims.Claim
	accepted time.Time

	// mu guards the fields below.
	mu        sync.Mutex
	tally     *consensus.Tally
	announced []bool // claim.decided already emitted
	timer     Timer  // the deadline
	// reannounce fires every reannounceInterval while the job is pending.
	reannounce Timer
	resends    uint64
	closed     bool // finalized: no more ballots, no more timers
	// received are the ballots counted, with when they came; the first
	// saved of them are in the store. The others are stored with the
	// certificate, or on the first re-announcement of a job still
	// pending, or when the node stops (unsavedLocked).
	received []store.StoredBallot
	saved    int
}

// unsavedLocked returns the counted ballots not stored yet and marks them
// stored: the caller stores them. j.mu must be held.
func (j *aggJob) unsavedLocked() []store.StoredBallot {
	out := j.received[j.saved:]
	j.saved = len(j.received)
	return out
}

// storeBallots stores ballots counted for a pending job.
func (g *gateway) storeBallots(bs []store.StoredBallot) {
	if len(bs) == 0 {
		return
	}
	t0 := time.Now()
	if err := g.store.AddBallots(bs); err != nil && !errors.Is(err, store.ErrClosed) {
		log.Errorw("store ballots", "job", bs[0].Ballot.JobID.Hex(), "err", err)
	}
	g.metrics.observeStore("ballot", t0)
}

func (j *aggJob) stopTimers() {
	if j.timer != nil {
		j.timer.Stop()
	}
	if j.reannounce != nil {
		j.reannounce.Stop()
	}
}

// submit accepts an output: it splits it into claims, stores the job,
// starts its tally and gossips it. It returns as soon as the job is stored
// and published: the result is provisional until the certificate. A
// request it refuses is a *RequestError.
func (g *gateway) submit(ctx context.Context, req api.VerifyRequest) (*api.Job, error) {
	rule, err := g.jobRule(req)
	if err != nil {
		return nil, err
	}
	if err := g.checkPending(); err != nil {
		return nil, err
	}
	cs, err := g.decompose(ctx, req.Output)
	if err != nil {
		return nil, err
	}
	now := g.clock.Now()
	msg, raw, err := g.newJob(req.Output, cs, rule, now)
	if err != nil {
		return nil, err
	}
	rec := &store.Job{
		ID:      msg.JobID,
		Message: raw,
		// This node's own encoding of the job.
		MessageChecked: true,
		Output:         req.Output,
		Prompt:         req.Prompt,
		Gateway:        true,
		Status:         consensus.StatusProvisional,
		SubmittedAt:    now,
		Deadline:       time.UnixMilli(int64(msg.Deadline)),
	}
	if err := g.accept(msg, raw, rec, cs, now); err != nil {
		return nil, err
	}
	return jobView(rec, msg), nil
}

// generate answers a prompt with the node's generator and submits the
// answer for verification like submit.
func (g *gateway) generate(ctx context.Context, req api.GenerateRequest) (*api.Job, error) {
	gen := g.opts.Generator
	if gen == nil {
		return nil, requestError(ErrDisabled, "generate_disabled", "this node has no generator; set [generator] backend in its config")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, requestError(ErrInvalidRequest, "empty_prompt", "prompt is empty")
	}
	if len(req.Prompt) > g.opts.MaxOutputBytes {
		return nil, requestError(ErrTooLarge, "prompt_too_large", "prompt is %d bytes; the limit is %d", len(req.Prompt), g.opts.MaxOutputBytes)
	}
	if m := req.Model; m != "" && m != gen.Name() && !strings.HasSuffix(gen.Name(), ":"+m) {
		return nil, requestError(ErrInvalidRequest, "unknown_model", "model %q: this node generates with %s", m, gen.Name())
	}
	if err := g.checkPending(); err != nil {
		return nil, err
	}
	answer, err := gen.Generate(ctx, req.Prompt)
	if err != nil {
		return nil, requestError(ErrUpstream, "generator_failed", "generator: %v", err)
	}
	return g.submit(ctx, api.VerifyRequest{
		Output: answer, Prompt: req.Prompt, Quorum: req.Quorum, Replication: req.Replication, DeadlineMS: req.DeadlineMS,
	})
}

// jobRule is what a request asks of its job, defaults filled in.
type jobRule struct {
	quorum      consensus.Quorum
	replication uint32
	deadline    time.Duration
}

// jobRule checks a request's output, prompt, quorum, replication and
// deadline, before anything costly.
func (g *gateway) jobRule(req api.VerifyRequest) (jobRule, error) {
	r := jobRule{quorum: g.opts.Quorum, replication: g.opts.Replication, deadline: g.opts.Deadline}
	if strings.TrimSpace(req.Output) == "" {
		return r, requestError(ErrInvalidRequest, "empty_output", "output is empty")
	}
	if len(req.Output) > g.opts.MaxOutputBytes {
		return r, requestError(ErrTooLarge, "output_too_large", "output is %d bytes; the limit is %d", len(req.Output), g.opts.MaxOutputBytes)
	}
	if !utf8.ValidString(req.Output) || !utf8.ValidString(req.Prompt) {
		return r, requestError(ErrInvalidRequest, "invalid_utf8", "output and prompt must be UTF-8")
	}
	if req.Quorum != "" {
		var err error
		if r.quorum, err = consensus.ParseQuorum(req.Quorum); err != nil {
			return r, requestError(ErrInvalidRequest, "invalid_quorum", "%v", err)
		}
	}
	if req.Replication != nil {
		r.replication = *req.Replication
	}
	if req.DeadlineMS < 0 {
		return r, requestError(ErrInvalidRequest, "invalid_deadline", "deadline_ms must be positive")
	}
	if req.DeadlineMS > 0 {
		// Compared in milliseconds first: a huge value would overflow a
		// time.Duration into a negative one.
		if req.DeadlineMS > g.opts.MaxDeadline.Milliseconds() {
			return r, requestError(ErrInvalidRequest, "invalid_deadline", "deadline_ms %d exceeds the maximum of %d", req.DeadlineMS, g.opts.MaxDeadline.Milliseconds())
		}
		r.deadline = time.Duration(req.DeadlineMS) * time.Millisecond
	}
	return r, nil
}

// decompose splits an output into claims, each within MaxClaimTextBytes.
func (g *gateway) decompose(ctx context.Context, output string) ([]claims.Claim, error) {
	cs, err := g.opts.Decomposer.Decompose(ctx, output)
	if err != nil || len(cs) == 0 {
		msg := "the output holds no claim to verify"
		if err != nil {
			msg = err.Error()
		}
		return nil, requestError(ErrUnprocessable, "no_claims", "%s", msg)
	}
	for _, c := range cs {
		if len(c.Text) > MaxClaimTextBytes {
			return nil, requestError(ErrUnprocessable, "claim_too_long", "claim %d is %d bytes; the limit is %d", c.Index, len(c.Text), MaxClaimTextBytes)
		}
	}
	return cs, nil
}

// newJob builds and signs the job of an output's claims under rule, and
// returns it with its wire encoding.
func (g *gateway) newJob(output string, cs []claims.Claim, rule jobRule, now time.Time) (*JobMessage, []byte, error) {
	texts := make([]string, len(cs))
	for i, c := range cs {
		texts[i] = c.Text
	}
	msg := &JobMessage{
		NetworkID:   g.set.NetworkID(),
		Nonce:       newNonce(),
		OutputHash:  claims.OutputHash([]byte(output)),
		ClaimsRoot:  claims.RootOf(cs),
		Claims:      texts,
		Quorum:      rule.quorum,
		Replication: rule.replication,
		Deadline:    uint64(now.Add(rule.deadline).UnixMilli()),
		Gateway:     g.signer.Address(),
	}
	// How validators that never met this node reach it with their ballots
	// (docs/protocol.md, "Committees"); a record over the limit (a host
	// with very many addresses) is left out rather than make the job
	// invalid.
	if rec := g.net.PeerRecord(); len(rec) <= consensus.MaxGatewayRecordSize {
		msg.GatewayRecord = rec
	}
	params := msg.Params()
	if err := params.Validate(g.set); err != nil {
		if errors.Is(err, consensus.ErrBelowFloor) {
			return nil, nil, requestError(ErrInvalidRequest, "below_security_floor", "%v", err)
		}
		return nil, nil, requestError(ErrInvalidRequest, "invalid_parameters", "%v", err)
	}
	msg.JobID = params.ID()
	// Alone at light load; under load with the jobs accepted at the same
	// moment, one batch signature for all (each validator recovers it
	// once).
	if err := g.jobSigning.sign(msg); err != nil {
		if errors.Is(err, errSigningStopped) {
			return nil, nil, errStopping()
		}
		return nil, nil, fmt.Errorf("sign job: %w", err)
	}
	raw, err := encode(msg)
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > MaxJobMessageSize {
		return nil, nil, requestError(ErrTooLarge, "job_too_large", "the job message for this output is %d bytes; gossip carries at most %d", len(raw), MaxJobMessageSize)
	}
	return msg, raw, nil
}

// errStopping refuses a job while the node stops.
func errStopping() error {
	return requestError(ErrUnavailable, "stopping", "this node is stopping")
}

// accept stores a new job, starts its tally, tells the event streams and
// gossips it. The job is gossiped, and its tally started, while it is
// being stored, so that validators judge it during the gateway's commit;
// but the job's lock is held until it is stored, so no ballot is counted
// and no event goes out before that, and the client's answer waits for
// it too. A job whose store fails is dropped and refused: validators may
// have judged it, and their ballots are ignored.
func (g *gateway) accept(msg *JobMessage, raw []byte, rec *store.Job, cs []claims.Claim, now time.Time) error {
	if !g.tasks.enter() {
		return errStopping()
	}
	defer g.tasks.exit()
	j, err := g.startLocked(msg, nil, now)
	if err != nil {
		return err
	}
	defer j.mu.Unlock()
	// Bundled with the jobs accepted at the same moment. The job is
	// stored below: if gossip fails, its re-announcement or a restart's
	// resume publishes it again, and the deadline still ends it.
	g.trace(TraceJobPublished, msg.JobID, common.Address{})
	g.publishRaw(p2p.KindJobs, raw)
	t0 := time.Now()
	if err := g.store.PutJob(rec); err != nil {
		g.closeLocked(j)
		return fmt.Errorf("store job: %w", err)
	}
	g.metrics.observeStore("job", t0)
	g.events.publish(api.EventJobAccepted, msg.JobID, now, &api.JobAcceptedData{
		Gateway: msg.Gateway, OutputHash: msg.OutputHash, Claims: len(cs),
		Quorum: msg.Quorum, Replication: msg.Replication, Deadline: rec.Deadline,
	})
	refs := make([]api.ClaimRef, len(cs))
	for i, c := range cs {
		refs[i] = api.ClaimRef{Index: c.Index, Hash: c.Hash}
	}
	g.events.publish(api.EventClaimsExtracted, msg.JobID, now, &api.ClaimsExtractedData{Claims: refs, ClaimsRoot: msg.ClaimsRoot})
	if j.tally.Done() {
		g.finalizeLocked(j, false)
	}
	log.Debugw("job accepted", "job", msg.JobID.Hex(), "claims", len(cs))
	return nil
}

// checkPending refuses new jobs while the node aggregates MaxPendingJobs.
func (g *gateway) checkPending() error {
	g.mu.Lock()
	pending := len(g.jobs)
	g.mu.Unlock()
	if pending >= g.opts.MaxPendingJobs {
		return requestError(ErrUnavailable, "overloaded", "this node is aggregating %d jobs, its limit; retry later or use another node", pending)
	}
	return nil
}

// job is the pending job id, nil when this node does not aggregate it.
func (g *gateway) job(id common.Hash) *aggJob {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.jobs[id]
}

// aggregating reports whether this node still tallies job id.
func (g *gateway) aggregating(id common.Hash) bool { return g.job(id) != nil }

// progress is the tally of job id, nil when this node does not aggregate
// it.
func (g *gateway) progress(id common.Hash) []consensus.ClaimProgress {
	j := g.job(id)
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.tally.Progress()
}

// start begins tallying a job this node is gateway of, replaying already
// stored ballots, and sets its deadline and re-announcement timers.
func (g *gateway) start(msg *JobMessage, stored []store.StoredBallot, accepted time.Time) error {
	j, err := g.startLocked(msg, stored, accepted)
	if err != nil {
		return err
	}
	defer j.mu.Unlock()
	if j.tally.Done() {
		g.finalizeLocked(j, false)
	}
	return nil
}

// startLocked is start up to the tally's first verdict: it lists the job
// and sets its timers, and returns it with its lock held, so that no
// ballot is counted, and no timer acts, until the caller unlocks it. The
// caller finalizes a tally already done.
func (g *gateway) startLocked(msg *JobMessage, stored []store.StoredBallot, accepted time.Time) (*aggJob, error) {
	t, err := consensus.NewTally(g.set, msg.Params())
	if err != nil {
		return nil, err
	}
	j := &aggJob{msg: msg, claims: msg.ClaimList(), tally: t, announced: make([]bool, len(msg.Claims)), accepted: accepted}
	for i := range stored {
		b := &stored[i].Ballot
		if _, err := t.AddVerifiedBallot(b); err != nil {
			log.Warnw("stored ballot not counted", "job", msg.JobID.Hex(), "validator", b.Validator.Hex(), "err", err)
		}
	}
	j.received = stored
	j.saved = len(stored)
	// Held from before the job is listed, so that no ballot is counted
	// before its timers are set.
	j.mu.Lock()
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		j.mu.Unlock()
		return nil, errStopping()
	}
	g.jobs[msg.JobID] = j
	g.mu.Unlock()
	g.metrics.jobsPending.Inc()
	g.load.Add(1)
	if t.Done() {
		return j, nil
	}
	wait := time.UnixMilli(int64(msg.Deadline)).Sub(g.clock.Now())
	id := msg.JobID
	j.timer = g.clock.AfterFunc(max(wait, 0), func() { g.expire(id) })
	// Re-announce a job still missing ballots four times per deadline, at
	// least a second apart.
	if every := max(wait/4, time.Second); every < wait {
		j.reannounce = g.clock.AfterFunc(every, func() { g.reannounce(id, every) })
	}
	return j, nil
}

// closeLocked ends a job's aggregation: it counts no more ballots, its
// timers stop and it is no longer listed. Alone it drops a job never
// accepted (its store failed); finalizeLocked goes on to its certificate.
func (g *gateway) closeLocked(j *aggJob) {
	j.closed = true
	j.stopTimers()
	g.mu.Lock()
	delete(g.jobs, j.msg.JobID)
	g.mu.Unlock()
	g.metrics.jobsPending.Dec()
	g.load.Add(-1)
}

// resume restarts the tally of a job this node accepted before a restart,
// with the ballots it stored, and announces the job again, as new to
// gossip, so that ballots cast while this node was down are sent again.
func (g *gateway) resume(m *JobMessage, ballots []store.StoredBallot, accepted time.Time) error {
	if err := g.start(m, ballots, accepted); err != nil {
		return err
	}
	if j := g.job(m.JobID); j != nil {
		j.mu.Lock()
		if !j.closed {
			g.resendLocked(j, true)
		}
		j.mu.Unlock()
	}
	return nil
}

// reannounce publishes a pending job again, with the next Resend number, so
// that validators that missed it (or whose ballots this gateway missed
// while down) answer.
func (g *gateway) reannounce(id common.Hash, every time.Duration) {
	if !g.tasks.enter() {
		return
	}
	defer g.tasks.exit()
	j := g.job(id)
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	g.resendLocked(j, false)
	// Still pending: store the ballots it has, so that a restart resumes
	// with them.
	if bs := j.unsavedLocked(); len(bs) > 0 {
		g.tasks.goTracked(func() { g.storeBallots(bs) })
	}
	j.reannounce = g.clock.AfterFunc(every, func() { g.reannounce(id, every) })
}

// resendLocked re-announces a job this node aggregates, signed with the
// next resend number: this node's clock in unix milliseconds, or one more
// than the last if the clock is not past it, so that resend numbers grow
// across restarts too. waitPeers publishes once the node has topic peers
// (after a restart). j.mu must be held.
func (g *gateway) resendLocked(j *aggJob, waitPeers bool) {
	j.resends = max(j.resends+1, uint64(max(g.clock.Now().UnixMilli(), 0)))
	m := *j.msg
	m.Resend = j.resends
	g.metrics.reannouncements.Inc()
	g.tasks.goTracked(func() {
		if err := m.Sign(g.signer); err != nil {
			log.Errorw("sign re-announcement", "job", m.JobID.Hex(), "err", err)
			return
		}
		if waitPeers {
			g.publishWhenReady(p2p.KindJobs, &m)
			return
		}
		g.publish(p2p.KindJobs, &m)
	})
}

// expire ends a job at its deadline with the ballots it has.
func (g *gateway) expire(id common.Hash) {
	if !g.tasks.enter() {
		return
	}
	defer g.tasks.exit()
	j := g.job(id)
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.closed {
		g.finalizeLocked(j, true)
	}
}

// finalizeLocked ends a job's tally and builds its certificate, then
// issues it in a goroutine of its own, so that the store's group commit
// does not hold the job's lock. j.mu must be held.
func (g *gateway) finalizeLocked(j *aggJob, expired bool) {
	g.closeLocked(j)
	now := g.clock.Now()
	ballots := j.unsavedLocked()
	cert, err := j.tally.Certificate(j.claims, now)
	if err != nil {
		log.Errorw("build certificate", "job", j.msg.JobID.Hex(), "err", err)
		g.tasks.goTracked(func() { g.storeBallots(ballots) })
		return
	}
	g.tasks.goTracked(func() { g.issue(j, cert, now, expired, ballots) })
}

// issue signs, stores and publishes the certificate of job j, storing
// with it the counted ballots not stored yet. Its events follow the job's
// other events: it publishes them under j.mu.
func (g *gateway) issue(j *aggJob, cert *consensus.Certificate, now time.Time, expired bool, ballots []store.StoredBallot) {
	// The gateway's signature makes the certificate final: it states the
	// outcome, the ballots and the time as this gateway issued them. The
	// certificates issued at the same moment share one signature.
	if err := g.signing.sign(cert); err != nil {
		if g.ctx.Err() == nil {
			log.Errorw("sign certificate", "job", cert.JobID.Hex(), "err", err)
		}
		g.storeBallots(ballots)
		return
	}
	// Gossiped in the binary form (docs/protocol.md); event streams get
	// its JSON, written when an event is first read.
	data := consensus.CertificateBinary(cert)
	t0 := time.Now()
	stored, err := g.storeCertificate(cert, now, ballots)
	if err != nil {
		// The job stays provisional in the store; a restart resumes it.
		return
	}
	g.metrics.observeStore("certificate", t0)
	if !stored {
		// Another certificate of this job was stored first (received in the
		// moment between the end of the tally and this write): it stands.
		log.Warnw("a certificate of this job was already stored; keeping it", "job", cert.JobID.Hex())
		g.obs.notifyFinal(cert.JobID, nil)
		return
	}
	g.trace(TraceCertificateStored, cert.JobID, common.Address{})
	g.obs.countAgreement(cert)
	g.metrics.timeToCertificate.Observe(g.clock.Now().Sub(j.accepted).Seconds())
	g.metrics.jobs.WithLabelValues(string(cert.Status)).Inc()
	g.obs.notifyFinal(cert.JobID, cert)
	log.Debugw("certificate issued", "job", cert.JobID.Hex(), "status", cert.Status, "ballots", len(cert.Ballots), "expired", expired)
	j.mu.Lock()
	defer j.mu.Unlock()
	if expired {
		var undecided []uint32
		for _, c := range cert.Claims {
			if c.Verdict == consensus.OutcomeUndecided {
				undecided = append(undecided, c.Index)
			}
		}
		g.events.publish(api.EventJobExpired, cert.JobID, now, &api.JobExpiredData{Undecided: undecided, Ballots: len(cert.Ballots)})
	}
	g.events.publish(api.EventCertificateIssued, cert.JobID, now, certificateIssued(cert, data))
	g.obs.issuing(cert.JobID, data)
	g.publishRaw(p2p.KindCerts, data)
}

// storeCertificate stores a certificate this gateway issued, trying three
// times; it reports whether this one was stored (not another of the job).
func (g *gateway) storeCertificate(cert *consensus.Certificate, now time.Time, ballots []store.StoredBallot) (bool, error) {
	var stored bool
	var err error
	for attempt := range 3 {
		if stored, err = g.store.PutCertificate(cert, now, ballots...); err == nil || errors.Is(err, store.ErrClosed) {
			return stored, err
		}
		log.Errorw("store certificate", "job", cert.JobID.Hex(), "attempt", attempt+1, "err", err)
		select {
		case <-time.After(100 * time.Millisecond << attempt):
		case <-g.ctx.Done():
			return false, g.ctx.Err()
		}
	}
	return stored, err
}

// validateBallot is the ballots topic validator: decode, shape, signature,
// then whether the ballot is new: a copy of a ballot already taken is
// ignored unless ballotRepeatInterval has passed (it answers a
// re-announcement), whatever its unsigned resend number.
func (g *gateway) validateBallot(ctx context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	v, b := g.checkBallot(ctx, from, data)
	if v != p2p.Accept || from == g.net.PeerID() {
		return v, b
	}
	ballot := b.(*consensus.Ballot)
	if !g.seen.takeBallot(crypto.Keccak256Hash(ballot.Digest().Bytes(), ballot.Signature), g.clock.Now()) {
		g.metrics.ballots.WithLabelValues("repeat", "").Inc()
		return p2p.Ignore, nil
	}
	return v, b
}

// checkBallot decodes a ballot and checks its shape and signature, for the
// topic and for ballots sent straight to this node.
func (g *gateway) checkBallot(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	// Each signature is recovered once per node; ballots this node signed
	// are in the cache from the start.
	b, err := DecodeBallot(data, g.set, consensus.WithSignatureCache(g.sigCache))
	if err != nil {
		g.metrics.observeValidation(p2p.KindBallots, "reject", start)
		g.metrics.ballots.WithLabelValues("rejected", reason(err)).Inc()
		log.Debugw("ballot rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	g.metrics.observeValidation(p2p.KindBallots, "accept", start)
	g.metrics.ballots.WithLabelValues("accepted", "").Inc()
	return p2p.Accept, b
}

// directBallot takes a ballot sent straight to this node as gateway: the
// same checks as the ballots topic, then the same handling.
func (g *gateway) directBallot(ctx context.Context, from peer.ID, data []byte) p2p.Verdict {
	// libp2p runs this in a goroutine of its own: count it among the
	// node's, so that Stop waits for it and nothing it starts is missed.
	if !g.tasks.enter() {
		return p2p.Ignore
	}
	defer g.tasks.exit()
	// A rejected ballot costs the sender a penalty (p2p.HandleDirect), as
	// a rejected gossip message does.
	v, b := g.checkBallot(ctx, from, data)
	if v == p2p.Accept {
		g.onBallot(b)
	}
	return v
}

// onBallot takes a validated ballot from the ballots topic.
func (g *gateway) onBallot(v any) {
	if b, ok := v.(*consensus.Ballot); ok {
		g.addBallot(b)
	}
}

// addBallot records a verified ballot in the ballot book (which detects
// equivocation) and counts it when this node aggregates its job.
func (g *gateway) addBallot(b *consensus.Ballot) {
	g.obs.checkEquivocation(b)
	j := g.job(b.JobID)
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	g.trace(TraceBallotReceived, b.JobID, b.Validator)
	added, err := j.tally.AddVerifiedBallot(b)
	if err != nil || !added {
		g.ballotNotCounted(b, err)
		return
	}
	now := g.clock.Now()
	// Kept with the job and stored with its certificate, in the same
	// commit, or on its first re-announcement if it is still pending then:
	// a ballot lost in a crash is sent again when the restarted gateway
	// re-announces the job.
	j.received = append(j.received, store.StoredBallot{Ballot: *b, ReceivedAt: now})
	progress := j.tally.Progress()
	var decided []*consensus.ClaimProgress
	for _, c := range b.ClaimIndexes {
		if p := &progress[c]; p.Outcome.Final() && !j.announced[c] {
			j.announced[c] = true
			decided = append(decided, p)
		}
	}
	// Under the job's lock, which issue takes too: the job's events go
	// out in tally order, the certificate's last. They go out before the
	// certificate is issued, so before it is stored: a stream that finds
	// the certificate stored (handleEvents) has every other event of the
	// job in the buffer or in its subscription.
	_, val, _ := g.set.Lookup(b.Validator)
	g.events.publish(api.EventBallotAttached, b.JobID, now, &api.BallotAttachedData{
		Validator: b.Validator, Name: val.Name, Stake: val.Stake,
		ClaimIndexes: b.ClaimIndexes, Verdicts: b.Verdicts, Progress: progress,
	})
	for _, p := range decided {
		g.events.publish(api.EventClaimDecided, b.JobID, now, p)
	}
	if j.tally.Done() {
		g.trace(TraceQuorum, b.JobID, common.Address{})
		g.metrics.timeToQuorum.Observe(now.Sub(j.accepted).Seconds())
		g.finalizeLocked(j, false)
	}
}

// ballotNotCounted notes a ballot the tally refused (err) or already had
// (err nil).
func (g *gateway) ballotNotCounted(b *consensus.Ballot, err error) {
	if err == nil {
		return
	}
	g.metrics.ballots.WithLabelValues("rejected", reason(err)).Inc()
	var eq *consensus.EquivocationError
	if errors.As(err, &eq) {
		log.Warnw("equivocation", "validator", b.Validator.Hex(), "job", b.JobID.Hex())
	} else {
		log.Debugw("ballot not counted", "job", b.JobID.Hex(), "validator", b.Validator.Hex(), "err", err)
	}
}

// stop stops every job's timers and refuses new jobs. A ballot in flight
// may still complete a job; Stop waits for its certificate.
func (g *gateway) stop() {
	g.mu.Lock()
	g.stopped = true
	jobs := make([]*aggJob, 0, len(g.jobs))
	for _, j := range g.jobs {
		jobs = append(jobs, j)
	}
	g.mu.Unlock()
	var unsaved []store.StoredBallot
	for _, j := range jobs {
		j.mu.Lock()
		j.stopTimers()
		if !j.closed {
			unsaved = append(unsaved, j.unsavedLocked()...)
		}
		j.mu.Unlock()
	}
	// A stopping node keeps the ballots of its pending jobs, to resume
	// them.
	g.storeBallots(unsaved)
}

// pendingBallots returns the ballots counted for job id and not stored
// yet, nil when this node does not aggregate it.
func (g *gateway) pendingBallots(id common.Hash) []store.StoredBallot {
	j := g.job(id)
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.received[j.saved:])
}
