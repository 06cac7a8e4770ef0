package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// Submit accepts an output as gateway: it splits it into claims, stores the
// job, starts its tally and gossips it. It returns as soon as the job is
// stored and published: the result is provisional until the certificate.
// A request it refuses is a *RequestError.
func (n *Node) Submit(ctx context.Context, req api.VerifyRequest) (*api.Job, error) {
	rule, err := n.jobRule(req)
	if err != nil {
		return nil, err
	}
	if err := n.checkPending(); err != nil {
		return nil, err
	}
	cs, err := n.decompose(ctx, req.Output)
	if err != nil {
		return nil, err
	}
	now := n.opts.Now()
	msg, raw, err := n.newJob(req.Output, cs, rule, now)
	if err != nil {
		return nil, err
	}
	rec := &store.Job{
		ID:          msg.JobID,
		Message:     raw,
		Output:      req.Output,
		Prompt:      req.Prompt,
		Gateway:     true,
		Status:      consensus.StatusProvisional,
		SubmittedAt: now,
		Deadline:    time.UnixMilli(int64(msg.Deadline)),
	}
	if err := n.acceptJob(msg, raw, rec, cs, now); err != nil {
		return nil, err
	}
	return n.view(rec, msg), nil
}

// jobRule is what a request asks of its job, defaults filled in.
type jobRule struct {
	quorum      consensus.Quorum
	replication uint32
	deadline    time.Duration
}

// jobRule checks a request's output, prompt, quorum, replication and
// deadline, before anything costly.
func (n *Node) jobRule(req api.VerifyRequest) (jobRule, error) {
	r := jobRule{quorum: n.opts.Quorum, replication: n.opts.Replication, deadline: n.opts.Deadline}
	if strings.TrimSpace(req.Output) == "" {
		return r, requestError(ErrInvalidRequest, "empty_output", "output is empty")
	}
	if len(req.Output) > n.opts.MaxOutputBytes {
		return r, requestError(ErrTooLarge, "output_too_large", "output is %d bytes; the limit is %d", len(req.Output), n.opts.MaxOutputBytes)
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
		if req.DeadlineMS > n.opts.MaxDeadline.Milliseconds() {
			return r, requestError(ErrInvalidRequest, "invalid_deadline", "deadline_ms %d exceeds the maximum of %d", req.DeadlineMS, n.opts.MaxDeadline.Milliseconds())
		}
		r.deadline = time.Duration(req.DeadlineMS) * time.Millisecond
	}
	return r, nil
}

// decompose splits an output into claims, each within MaxClaimTextBytes.
func (n *Node) decompose(ctx context.Context, output string) ([]claims.Claim, error) {
	cs, err := n.opts.Decomposer.Decompose(ctx, output)
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
func (n *Node) newJob(output string, cs []claims.Claim, rule jobRule, now time.Time) (*JobMessage, []byte, error) {
	texts := make([]string, len(cs))
	for i, c := range cs {
		texts[i] = c.Text
	}
	msg := &JobMessage{
		NetworkID:   n.set.NetworkID(),
		Nonce:       newNonce(),
		OutputHash:  claims.OutputHash([]byte(output)),
		ClaimsRoot:  claims.RootOf(cs),
		Claims:      texts,
		Quorum:      rule.quorum,
		Replication: rule.replication,
		Deadline:    uint64(now.Add(rule.deadline).UnixMilli()),
		Gateway:     n.Address(),
	}
	params := msg.Params()
	if err := params.Validate(n.set); err != nil {
		if errors.Is(err, consensus.ErrBelowFloor) {
			return nil, nil, requestError(ErrInvalidRequest, "below_security_floor", "%v", err)
		}
		return nil, nil, requestError(ErrInvalidRequest, "invalid_parameters", "%v", err)
	}
	msg.JobID = params.ID()
	if err := msg.Sign(n.signer); err != nil {
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

// acceptJob stores a new job, starts its tally, tells the event streams
// and gossips it.
func (n *Node) acceptJob(msg *JobMessage, raw []byte, rec *store.Job, cs []claims.Claim, now time.Time) error {
	t0 := time.Now()
	if err := n.store.PutJob(rec); err != nil {
		return fmt.Errorf("store job: %w", err)
	}
	n.metrics.observeStore("job", t0)
	if err := n.startAggregation(msg, nil, now); err != nil {
		return err
	}
	n.events.publish(api.EventJobAccepted, msg.JobID, now, &api.JobAcceptedData{
		Gateway: msg.Gateway, OutputHash: msg.OutputHash, Claims: len(cs),
		Quorum: msg.Quorum, Replication: msg.Replication, Deadline: rec.Deadline,
	})
	refs := make([]api.ClaimRef, len(cs))
	for i, c := range cs {
		refs[i] = api.ClaimRef{Index: c.Index, Hash: c.Hash}
	}
	n.events.publish(api.EventClaimsExtracted, msg.JobID, now, &api.ClaimsExtractedData{Claims: refs, ClaimsRoot: msg.ClaimsRoot})
	if err := n.net.Publish(n.ctx, p2p.KindJobs, raw); err != nil {
		// The job is stored: resume() republishes it after a restart, and
		// the deadline still ends it. Tell the client what happened.
		log.Warnw("publish job", "job", msg.JobID.Hex(), "err", err)
	}
	log.Debugw("job accepted", "job", msg.JobID.Hex(), "claims", len(cs))
	return nil
}

// checkPending refuses new jobs while the node aggregates MaxPendingJobs.
func (n *Node) checkPending() error {
	n.mu.Lock()
	pending := len(n.agg)
	n.mu.Unlock()
	if pending >= n.opts.MaxPendingJobs {
		return requestError(ErrUnavailable, "overloaded", "this node is aggregating %d jobs, its limit; retry later or use another node", pending)
	}
	return nil
}

// startAggregation begins tallying a job this node is gateway of, replaying
// already stored ballots.
func (n *Node) startAggregation(msg *JobMessage, stored []store.StoredBallot, accepted time.Time) error {
	t, err := consensus.NewTally(n.set, msg.Params())
	if err != nil {
		return err
	}
	j := &aggJob{msg: msg, claims: msg.ClaimList(), tally: t, announced: make([]bool, len(msg.Claims)), accepted: accepted}
	for i := range stored {
		b := &stored[i].Ballot
		if _, err := t.AddVerifiedBallot(b); err != nil {
			log.Warnw("stored ballot not counted", "job", msg.JobID.Hex(), "validator", b.Validator.Hex(), "err", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return requestError(ErrUnavailable, "stopping", "this node is stopping")
	}
	n.agg[msg.JobID] = j
	n.metrics.jobsPending.Inc()
	if t.Done() {
		n.finalizeLocked(j, false)
		return nil
	}
	wait := time.UnixMilli(int64(msg.Deadline)).Sub(n.opts.Now())
	id := msg.JobID
	j.timer = time.AfterFunc(max(wait, 0), func() { n.expire(id) })
	// Re-announce a job still missing ballots four times per deadline, at
	// least a second apart.
	if every := max(wait/4, time.Second); every < wait {
		j.reannounce = time.AfterFunc(every, func() { n.reannounce(id, every) })
	}
	return nil
}

// reannounce publishes a pending job again, with the next Resend number, so
// that validators that missed it (or whose ballots this gateway missed
// while down) answer.
func (n *Node) reannounce(id common.Hash, every time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	j, ok := n.agg[id]
	if !ok || n.stopped {
		return
	}
	n.resendLocked(j, false)
	j.reannounce = time.AfterFunc(every, func() { n.reannounce(id, every) })
}

// resendLocked re-announces a job this node aggregates, signed with the
// next resend number: this node's clock in unix milliseconds, or one more
// than the last if the clock is not past it, so that resend numbers grow
// across restarts too. waitPeers publishes once the node has topic peers
// (after a restart). n.mu must be held and n.stopped false.
func (n *Node) resendLocked(j *aggJob, waitPeers bool) {
	j.resends = max(j.resends+1, uint64(max(n.opts.Now().UnixMilli(), 0)))
	m := *j.msg
	m.Resend = j.resends
	n.metrics.reannouncements.Inc()
	n.goTracked(func() {
		if err := m.Sign(n.signer); err != nil {
			log.Errorw("sign re-announcement", "job", m.JobID.Hex(), "err", err)
			return
		}
		if waitPeers {
			n.publishWhenReady(p2p.KindJobs, &m)
			return
		}
		n.publish(p2p.KindJobs, &m)
	})
}

// expire ends a job at its deadline with the ballots it has.
func (n *Node) expire(id common.Hash) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if j, ok := n.agg[id]; ok && !n.stopped {
		n.finalizeLocked(j, true)
	}
}

// finalizeLocked ends a job's tally and issues its certificate: built under
// the lock, then stored (group commit, outside the lock, so that other jobs'
// ballots keep flowing), and only then published. n.mu must be held.
func (n *Node) finalizeLocked(j *aggJob, expired bool) {
	delete(n.agg, j.msg.JobID)
	n.metrics.jobsPending.Dec()
	j.stopTimers()
	now := n.opts.Now()
	cert, err := j.tally.Certificate(j.claims, now)
	if err != nil {
		log.Errorw("build certificate", "job", j.msg.JobID.Hex(), "err", err)
		return
	}
	n.goTracked(func() { n.issue(j, cert, now, expired) })
}

// issue signs, stores and publishes the certificate of job j. Its events
// follow the job's other events (j.events).
func (n *Node) issue(j *aggJob, cert *consensus.Certificate, now time.Time, expired bool) {
	accepted := j.accepted
	// The gateway's signature makes the certificate final: it states the
	// outcome, the ballots and the time as this gateway issued them.
	if err := cert.Sign(n.signer); err != nil {
		log.Errorw("sign certificate", "job", cert.JobID.Hex(), "err", err)
		return
	}
	t0 := time.Now()
	var stored bool
	var err error
	for attempt := range 3 {
		if stored, err = n.store.PutCertificate(cert, now); err == nil || errors.Is(err, store.ErrClosed) {
			break
		}
		log.Errorw("store certificate", "job", cert.JobID.Hex(), "attempt", attempt+1, "err", err)
		select {
		case <-time.After(100 * time.Millisecond << attempt):
		case <-n.ctx.Done():
			return
		}
	}
	if err != nil {
		// The job stays provisional in the store; a restart resumes it.
		return
	}
	n.metrics.observeStore("certificate", t0)
	if !stored {
		// Another certificate of this job was stored first (received in the
		// moment between the end of the tally and this write): it stands.
		log.Warnw("a certificate of this job was already stored; keeping it", "job", cert.JobID.Hex())
		n.mu.Lock()
		n.notifyFinalLocked(cert.JobID)
		n.mu.Unlock()
		return
	}
	n.countAgreement(cert)
	n.metrics.timeToCertificate.Observe(n.opts.Now().Sub(accepted).Seconds())
	n.metrics.jobs.WithLabelValues(string(cert.Status)).Inc()
	n.mu.Lock()
	n.notifyFinalLocked(cert.JobID)
	n.mu.Unlock()
	log.Debugw("certificate issued", "job", cert.JobID.Hex(), "status", cert.Status, "ballots", len(cert.Ballots), "expired", expired)
	j.events.Lock()
	defer j.events.Unlock()
	if expired {
		var undecided []uint32
		for _, c := range cert.Claims {
			if c.Verdict == consensus.OutcomeUndecided {
				undecided = append(undecided, c.Index)
			}
		}
		n.events.publish(api.EventJobExpired, cert.JobID, now, &api.JobExpiredData{Undecided: undecided, Ballots: len(cert.Ballots)})
	}
	n.events.publish(api.EventCertificateIssued, cert.JobID, now, &api.CertificateIssuedData{Status: cert.Status, Certificate: cert})
	n.publish(p2p.KindCerts, cert)
}

// validateJob is the jobs topic validator: shape (with the canonical
// encoding), then whether the announcement is new (a job not seen, or a
// resend number above the highest taken), then the gateway's signature of
// the job and its resend number, then the deadline. An announcement that is
// not new is ignored before its signature is checked: replaying one, in
// any bytes, makes no validator answer again. One past its deadline is
// ignored once its signature holds, and rejected otherwise.
func (n *Node) validateJob(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	var pub *ecdsa.PublicKey
	m, err := decodeJobShape(data, n.set)
	if err == nil {
		if n.announce.stale(m.JobID, m.Resend) {
			n.metrics.announcements.WithLabelValues("stale").Inc()
			return p2p.Ignore, nil
		}
		// A job this node published itself was signed here. The signature
		// is checked even for a job whose deadline has passed: an honest
		// peer may forward one that expired on the way, never one with a
		// resend its gateway did not sign.
		if from != n.net.PeerID() {
			pub, err = m.VerifySignature()
		}
	}
	n.metrics.observeValidation(p2p.KindJobs, verdictLabel(err), start)
	if err != nil {
		n.metrics.announcements.WithLabelValues("rejected").Inc()
		log.Debugw("job rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	if time.UnixMilli(int64(m.Deadline)).Before(n.opts.Now()) {
		n.metrics.announcements.WithLabelValues("expired").Inc()
		return p2p.Ignore, nil
	}
	if !n.announce.take(m.JobID, m.Resend) {
		n.metrics.announcements.WithLabelValues("stale").Inc()
		return p2p.Ignore, nil
	}
	n.metrics.announcements.WithLabelValues("accepted").Inc()
	if m.Gateway != n.Address() {
		n.catchUp.want(m.JobID, time.UnixMilli(int64(m.Deadline)))
	}
	vj := &validJob{msg: m, raw: data}
	if pub != nil {
		vj.gateway = gatewayPeer(m, pub)
	}
	return p2p.Accept, vj
}

// validJob is a job message that passed the topic validator, with its
// gateway's peer id when the validator recovered it.
type validJob struct {
	msg     *JobMessage
	raw     []byte
	gateway peer.ID
}

// onJob judges a validated job if this validator is assigned claims of it.
func (n *Node) onJob(v any) {
	vj, ok := v.(*validJob)
	if !ok {
		return
	}
	m := vj.msg
	if !n.announce.answer(m.JobID, n.opts.Now()) {
		// Answered this job within answerInterval: a burst of
		// re-announcements gets one answer.
		return
	}
	rec := &store.Job{
		ID:          m.JobID,
		Message:     vj.raw,
		Status:      consensus.StatusProvisional,
		SubmittedAt: n.opts.Now(),
		Deadline:    time.UnixMilli(int64(m.Deadline)),
	}
	// An assigned validator stores the job with its ballot, in one commit;
	// otherwise the record is only for reads, stored behind. A job lost in
	// a crash before its ballot is announced again by its gateway.
	if !n.castBallot(m, vj.gateway, rec) {
		n.goTracked(func() {
			if _, err := n.store.AddJob(rec); err != nil && !errors.Is(err, store.ErrClosed) {
				log.Errorw("store job", "job", m.JobID.Hex(), "err", err)
			}
		})
	}
}

// castBallot judges the claims assigned to this validator, signs one ballot
// (or reuses the one already signed for this job) and publishes it.
//
// gw is the gateway's peer id, "" if not known yet. rec, when not nil, is
// the job record to store with the ballot. It reports whether it took
// charge of the job (the validator is assigned claims).
func (n *Node) castBallot(m *JobMessage, gw peer.ID, rec *store.Job) bool {
	a := consensus.Assign(n.set, m.JobID, len(m.Claims), m.Replication)
	mine := a.ByValidator[n.pos]
	if len(mine) == 0 {
		return false
	}
	if own, err := n.store.OwnBallot(m.JobID); err == nil {
		// Already voted: answer a re-announcement with the same ballot.
		n.goTracked(func() { n.sendBallot(m, gw, &BallotMessage{Ballot: *own, Resend: m.Resend}, true) })
		return true
	}
	if !n.announce.startJudging(m.JobID) {
		return true // a judgment of this job is under way
	}
	select {
	case n.judge <- struct{}{}:
	case <-n.ctx.Done():
		n.announce.doneJudging(m.JobID)
		return true
	}
	n.goTracked(func() {
		defer n.announce.doneJudging(m.JobID)
		defer func() { <-n.judge }()
		deadline := time.UnixMilli(int64(m.Deadline))
		ctx, cancel := context.WithDeadline(n.ctx, deadline)
		defer cancel()
		lists := n.opts.Ballots.Ballots(ctx, &Judgement{
			Job: m, Mine: mine, Validator: n.Address(), Set: n.set, Verifier: n.opts.Verifier,
			Observed: func() ([]*consensus.Ballot, <-chan struct{}) { return n.book.observed(m.JobID) },
		})
		if ctx.Err() != nil || len(lists) == 0 {
			if rec != nil { // keep the record for reads; no ballot is due any more
				if _, err := n.store.AddJob(rec); err != nil && !errors.Is(err, store.ErrClosed) {
					log.Errorw("store job", "job", m.JobID.Hex(), "err", err)
				}
			}
			return
		}
		n.signAndSend(m, gw, mine, rec, lists)
	})
	return true
}

// signAndSend signs the ballot lists[0], stores it with rec (or keeps the
// ballot already stored for the job) and sends it; then signs and sends
// each further list, the first time only.
func (n *Node) signAndSend(m *JobMessage, gw peer.ID, mine []uint32, rec *store.Job, lists [][]claims.Verdict) {
	b, err := consensus.SignBallot(n.signer, m.NetworkID, m.JobID, m.OutputHash, m.ClaimsRoot, mine, lists[0])
	if err != nil {
		log.Errorw("sign ballot", "job", m.JobID.Hex(), "err", err)
		return
	}
	n.sigCache.Add(b.Digest(), b.Signature, n.Address())
	prev, err := n.store.PutOwnBallotWithJob(b, rec)
	if err != nil {
		log.Errorw("store own ballot", "job", m.JobID.Hex(), "err", err)
		return
	}
	if prev != nil {
		b = prev
	}
	n.sendBallot(m, gw, &BallotMessage{Ballot: *b}, false)
	if prev != nil {
		return
	}
	for _, verdicts := range lists[1:] {
		if b2, err := consensus.SignBallot(n.signer, m.NetworkID, m.JobID, m.OutputHash, m.ClaimsRoot, mine, verdicts); err == nil {
			n.sendBallot(m, gw, &BallotMessage{Ballot: *b2}, false)
		}
	}
}

// validateBallot is the ballots topic validator: decode, shape, signature,
// then whether the ballot is new: a copy of a ballot already taken is
// ignored unless ballotRepeatInterval has passed (it answers a
// re-announcement), whatever its unsigned resend number.
func (n *Node) validateBallot(ctx context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	v, b := n.checkBallot(ctx, from, data)
	if v != p2p.Accept || from == n.net.PeerID() {
		return v, b
	}
	ballot := b.(*consensus.Ballot)
	if !n.announce.takeBallot(crypto.Keccak256Hash(ballot.Digest().Bytes(), ballot.Signature), n.opts.Now()) {
		n.metrics.ballots.WithLabelValues("repeat", "").Inc()
		return p2p.Ignore, nil
	}
	return v, b
}

// checkBallot decodes a ballot and checks its shape and signature, for the
// topic and for ballots sent straight to this node.
func (n *Node) checkBallot(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	// Each signature is recovered once per node; ballots this node signed
	// are in the cache from the start.
	b, err := DecodeBallot(data, n.set, consensus.WithSignatureCache(n.sigCache))
	if err != nil {
		n.metrics.observeValidation(p2p.KindBallots, "reject", start)
		n.metrics.ballots.WithLabelValues("rejected", reason(err)).Inc()
		log.Debugw("ballot rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	n.metrics.observeValidation(p2p.KindBallots, "accept", start)
	n.metrics.ballots.WithLabelValues("accepted", "").Inc()
	return p2p.Accept, b
}

// onBallot counts a validated ballot for a job this node aggregates.
func (n *Node) onBallot(v any) {
	b, ok := v.(*consensus.Ballot)
	if !ok {
		return
	}
	n.checkEquivocation(b)
	n.mu.Lock()
	j, ok := n.agg[b.JobID]
	if !ok {
		n.mu.Unlock()
		return
	}
	added, err := j.tally.AddVerifiedBallot(b)
	if err != nil || !added {
		n.mu.Unlock()
		n.ballotNotCounted(b, err)
		return
	}
	now := n.opts.Now()
	// Stored behind the tally (group commit): a ballot lost in a crash is
	// sent again when the restarted gateway re-announces the job.
	n.goTracked(func() {
		t0 := time.Now()
		if err := n.store.AddBallot(b, now); err != nil && !errors.Is(err, store.ErrClosed) {
			log.Errorw("store ballot", "job", b.JobID.Hex(), "err", err)
		}
		n.metrics.observeStore("ballot", t0)
	})
	progress := j.tally.Progress()
	var decided []*consensus.ClaimProgress
	for _, c := range b.ClaimIndexes {
		if p := &progress[c]; p.Outcome.Final() && !j.announced[c] {
			j.announced[c] = true
			decided = append(decided, p)
		}
	}
	// The job's events are published in tally order, but not under the
	// node-wide lock: j.events is taken before n.mu is let go, and the
	// certificate's events (issue) take it too.
	j.events.Lock()
	defer j.events.Unlock()
	if j.tally.Done() {
		n.metrics.timeToQuorum.Observe(now.Sub(j.accepted).Seconds())
		n.finalizeLocked(j, false)
	}
	n.mu.Unlock()
	_, val, _ := n.set.Lookup(b.Validator)
	n.events.publish(api.EventBallotAttached, b.JobID, now, &api.BallotAttachedData{
		Validator: b.Validator, Name: val.Name, Stake: val.Stake,
		ClaimIndexes: b.ClaimIndexes, Verdicts: b.Verdicts, Progress: progress,
	})
	for _, p := range decided {
		n.events.publish(api.EventClaimDecided, b.JobID, now, p)
	}
}

// ballotNotCounted notes a ballot the tally refused (err) or already had
// (err nil).
func (n *Node) ballotNotCounted(b *consensus.Ballot, err error) {
	if err == nil {
		return
	}
	n.metrics.ballots.WithLabelValues("rejected", reason(err)).Inc()
	var eq *consensus.EquivocationError
	if errors.As(err, &eq) {
		log.Warnw("equivocation", "validator", b.Validator.Hex(), "job", b.JobID.Hex())
	} else {
		log.Debugw("ballot not counted", "job", b.JobID.Hex(), "validator", b.Validator.Hex(), "err", err)
	}
}

// validateCert is the certs topic validator: a certificate spreads only if
// it verifies against the validator set and this node takes it
// (checkCert).
func (n *Node) validateCert(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	c, v, err := n.checkCert(data, from == n.net.PeerID())
	n.metrics.observeValidation(p2p.KindCerts, verdictLabel(err), start)
	switch {
	case err != nil:
		log.Debugw("certificate rejected", "from", from, "err", err)
		return p2p.Reject, nil
	case v != p2p.Accept:
		return v, nil
	}
	return p2p.Accept, c
}

// checkCert decodes and verifies a certificate from a peer, from gossip or
// from catch-up alike, and decides whether this node takes it. It returns
// Reject with the error for a certificate that is not valid and final, and
// Ignore for one this node already holds (unless own: this node is
// publishing it), for one of a job this node is still aggregating, and for
// an unsettled one before this node's clock reaches its deadline.
func (n *Node) checkCert(data []byte, own bool) (*consensus.Certificate, p2p.Verdict, error) {
	c, err := parseCertificate(data)
	if err != nil {
		return nil, p2p.Reject, err
	}
	if !own && n.holdsCertificate(c) {
		return nil, p2p.Ignore, nil
	}
	// Ballots this node already verified on the ballots topic are not
	// recovered again.
	if err := consensus.VerifyCertificate(c, n.set, nil, consensus.WithSignatureCache(n.sigCache)); err != nil {
		return nil, p2p.Reject, err
	}
	// VerifyCertificate took only a valid, final certificate: signed by
	// the job's gateway (the job id commits to the gateway and the
	// deadline), and settled on its ballots or issued at or after the
	// deadline. Never take one for a job this node is still aggregating
	// (it issues that one). Take an unsettled one only once this node's
	// clock has reached the deadline too: a gateway may not close its own
	// job early.
	n.mu.Lock()
	_, mine := n.agg[c.JobID]
	n.mu.Unlock()
	if mine {
		return nil, p2p.Ignore, nil
	}
	if !consensus.Settled(c, n.set) && n.opts.Now().Before(time.UnixMilli(int64(c.DeadlineMS)).Add(-certClockSkew)) {
		log.Debugw("premature certificate ignored", "job", c.JobID.Hex())
		return nil, p2p.Ignore, nil
	}
	return c, p2p.Accept, nil
}

// holdsCertificate reports whether this node stores c already: the same
// outcome under the same gateway signature. A copy brings nothing; a
// different one signed by the same gateway goes on, to be logged as a
// conflict. The signature alone does not tell: one batch signature covers
// every outcome of the batch, two for the same job among them.
func (n *Node) holdsCertificate(c *consensus.Certificate) bool {
	if ok, err := n.store.HasCertificate(c.JobID); err != nil || !ok {
		return false
	}
	held, err := n.store.Certificate(c.JobID)
	return err == nil && bytes.Equal(held.GatewaySignature, c.GatewaySignature) &&
		held.GatewayDigest() == c.GatewayDigest()
}

// certClockSkew is how far ahead of this node's clock a gateway's may be
// when it issues a certificate at the deadline.
const certClockSkew = time.Second

// onCert stores a verified certificate.
func (n *Node) onCert(v any) {
	c, ok := v.(*consensus.Certificate)
	if !ok {
		return
	}
	// Stored off the subscription loop, so that certificates share commits.
	n.goTracked(func() { n.storeCert(c) })
}

// storeCert stores a certificate this node took (checkCert), from gossip or
// catch-up. The job's record, if any, becomes final with it.
func (n *Node) storeCert(c *consensus.Certificate) {
	stored, err := n.store.PutCertificate(c, n.opts.Now())
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			log.Errorw("store certificate", "job", c.JobID.Hex(), "err", err)
		}
		return
	}
	n.catchUp.got(c.JobID)
	if !stored {
		// Only the job's gateway signs a final certificate; two that
		// differ mean the gateway signed twice. The first one stands here
		// and `verity testnet check` reports the split.
		if prev, err := n.store.Certificate(c.JobID); err == nil && !sameOutcome(prev, c) {
			log.Warnw("conflicting certificates signed by the job's gateway; keeping the first", "job", c.JobID.Hex(),
				"gateway", c.Gateway.Hex(), "kept", prev.Status, "other", c.Status)
		}
		return
	}
	n.countAgreement(c)
	n.mu.Lock()
	n.notifyFinalLocked(c.JobID)
	n.mu.Unlock()
	n.events.publish(api.EventCertificateIssued, c.JobID, n.opts.Now(), &api.CertificateIssuedData{Status: c.Status, Certificate: c})
}

// sameOutcome reports whether two certificates of a job state the same
// status and verdicts.
func sameOutcome(a, b *consensus.Certificate) bool {
	if a.Status != b.Status || len(a.Claims) != len(b.Claims) {
		return false
	}
	for i := range a.Claims {
		if a.Claims[i].Verdict != b.Claims[i].Verdict {
			return false
		}
	}
	return true
}

// resume restarts what a crash or stop interrupted: the tallies of jobs this
// node is gateway of (republishing the job in case it never left), and the
// ballots of jobs it was assigned but had not yet published.
func (n *Node) resume() error {
	var pending []*store.Job
	var recent []common.Hash // gateway jobs final lately: certificates to send again
	horizon := n.opts.Now().Add(-n.opts.MaxDeadline)
	if err := n.store.Jobs(func(j *store.Job) bool {
		switch {
		case !j.Status.Final():
			pending = append(pending, j)
		case j.Gateway && j.FinalAt.After(horizon):
			recent = append(recent, j.ID)
		}
		return true
	}); err != nil {
		return err
	}
	// A certificate stored just before a crash may never have been
	// published: publish recent ones again (a repeat is harmless).
	for _, id := range recent {
		if c, err := n.store.Certificate(id); err == nil {
			n.goTracked(func() { n.publishWhenReady(p2p.KindCerts, c) })
		}
	}
	for _, j := range pending {
		var m JobMessage
		if err := strictjson.Decode(j.Message, &m, maxStoredJobMessageSize); err != nil {
			log.Errorw("stored job undecodable", "job", j.ID.Hex(), "err", err)
			continue
		}
		if j.Gateway {
			ballots, err := n.store.Ballots(j.ID)
			if err != nil {
				return err
			}
			if err := n.startAggregation(&m, ballots, j.SubmittedAt); err != nil {
				return err
			}
			// Announce again, as new to gossip, so that ballots cast
			// while this node was down are sent again.
			n.mu.Lock()
			if a, ok := n.agg[m.JobID]; ok && !n.stopped {
				n.resendLocked(a, true)
			}
			n.mu.Unlock()
		} else {
			// Its certificate may have come while this node was down:
			// catch-up asks peers for it once its deadline has passed.
			n.catchUp.want(m.JobID, time.UnixMilli(int64(m.Deadline)))
		}
		if time.UnixMilli(int64(m.Deadline)).After(n.opts.Now()) {
			n.castBallot(&m, "", nil)
		}
	}
	if len(pending) > 0 {
		log.Infow("resumed unfinished jobs", "count", len(pending))
	}
	return nil
}

// sendBallot delivers this validator's ballot for a job: straight to the
// job's gateway (peer gw, recovered from the job's signature if "") (to itself without the network), falling back to gossip
// when that fails; on the ballots topic with GossipBallots.
// waitPeers publishes only once the node has topic peers (a resend after a
// restart).
func (n *Node) sendBallot(m *JobMessage, gw peer.ID, msg *BallotMessage, waitPeers bool) {
	if !n.opts.GossipBallots {
		if m.Gateway == n.Address() {
			n.onBallot(&msg.Ballot)
			return
		}
		if gw == "" {
			gw = gatewayPeer(m, nil)
		}
		if gw != "" {
			data, err := encode(msg)
			if err == nil {
				if err = n.net.SendDirect(n.ctx, gw, p2p.KindBallots, data); err == nil {
					n.metrics.ballotsSent.WithLabelValues("direct").Inc()
					return
				}
			}
			if n.ctx.Err() != nil {
				return
			}
			log.Debugw("direct ballot failed; gossiping it", "job", m.JobID.Hex(), "gateway", m.Gateway.Hex(), "err", err)
		}
	}
	n.metrics.ballotsSent.WithLabelValues("gossip").Inc()
	if waitPeers {
		n.publishWhenReady(p2p.KindBallots, msg)
		return
	}
	n.publish(p2p.KindBallots, msg)
}

// directBallot takes a ballot sent straight to this node as gateway: the
// same checks as the ballots topic, then the same handling.
func (n *Node) directBallot(ctx context.Context, from peer.ID, data []byte) p2p.Verdict {
	// libp2p runs this in a goroutine of its own: count it among the
	// node's, so that Stop waits for it and nothing it starts is missed.
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return p2p.Ignore
	}
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()
	// A rejected ballot costs the sender a penalty (p2p.HandleDirect), as
	// a rejected gossip message does.
	v, b := n.checkBallot(ctx, from, data)
	if v == p2p.Accept {
		n.onBallot(b)
	}
	return v
}
