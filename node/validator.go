package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// validator answers the jobs assigned to this node: it takes job
// announcements from gossip (validateJob), judges its claims of each
// (castBallot), signs its ballot, stores it and sends it to the job's
// gateway (signAndSend, sendBallot).
type validator struct {
	*env
	pos int // this validator's position in the set
	obs *observer
	// gw is this node's own gateway, which takes the ballots of its own
	// jobs without the network.
	gw *gateway
	// announce is what the node saw of recent job announcements and
	// ballots, so that a replay gets no second answer.
	announce *announceBook
	judge    chan struct{} // semaphore of the jobs judged at once
	// signing signs the ballots ready at one moment with one signature;
	// set by startSigning.
	signing *batchSigner[*consensus.Ballot]
}

func newValidator(e *env, pos int, obs *observer, gw *gateway, announce *announceBook) *validator {
	return &validator{env: e, pos: pos, obs: obs, gw: gw, announce: announce, judge: make(chan struct{}, e.opts.JudgeConcurrency)}
}

// validateJob is the jobs topic validator: shape (with the canonical
// encoding), then whether the announcement is new (a job not seen, or a
// resend number above the highest taken), then the gateway's signature of
// the job and its resend number, then the deadline. An announcement that is
// not new is ignored before its signature is checked: replaying one, in
// any bytes, makes no validator answer again. One past its deadline is
// ignored once its signature holds, and rejected otherwise.
func (v *validator) validateJob(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	var pub *ecdsa.PublicKey
	m, err := decodeJobShape(data, v.set)
	if err == nil {
		if v.announce.stale(m.JobID, m.Resend) {
			v.metrics.announcements.WithLabelValues("stale").Inc()
			return p2p.Ignore, nil
		}
		// A job this node published itself was signed here. The signature
		// is checked even for a job whose deadline has passed: an honest
		// peer may forward one that expired on the way, never one with a
		// resend its gateway did not sign.
		if from != v.net.PeerID() {
			pub, err = m.VerifySignature(consensus.WithSignatureCache(v.sigCache))
		}
	}
	v.metrics.observeValidation(p2p.KindJobs, verdictLabel(err), start)
	if err != nil {
		v.metrics.announcements.WithLabelValues("rejected").Inc()
		log.Debugw("job rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	if time.UnixMilli(int64(m.Deadline)).Before(v.clock.Now()) {
		v.metrics.announcements.WithLabelValues("expired").Inc()
		return p2p.Ignore, nil
	}
	if !v.announce.take(m.JobID, m.Resend) {
		v.metrics.announcements.WithLabelValues("stale").Inc()
		return p2p.Ignore, nil
	}
	v.metrics.announcements.WithLabelValues("accepted").Inc()
	if m.Gateway != v.signer.Address() {
		v.obs.awaitCertificate(m.JobID, time.UnixMilli(int64(m.Deadline)))
	}
	vj := &validJob{msg: m, raw: data}
	if pub != nil {
		vj.gateway = gatewayPeer(m, pub)
	}
	v.trace(TraceJobReceived, m.JobID, common.Address{})
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
func (v *validator) onJob(x any) {
	vj, ok := x.(*validJob)
	if !ok {
		return
	}
	m := vj.msg
	if !v.announce.answer(m.JobID, v.clock.Now()) {
		// Answered this job within answerInterval: a burst of
		// re-announcements gets one answer.
		return
	}
	rec := &store.Job{
		ID:      m.JobID,
		Message: vj.raw,
		// decodeJobShape took it: the canonical encoding of a job.
		MessageChecked: true,
		Status:         consensus.StatusProvisional,
		SubmittedAt:    v.clock.Now(),
		Deadline:       time.UnixMilli(int64(m.Deadline)),
	}
	// An assigned validator stores the job with its ballot, in one commit;
	// otherwise the record is only for reads, stored behind. A job lost in
	// a crash before its ballot is announced again by its gateway.
	if !v.castBallot(m, vj.gateway, rec) {
		v.tasks.goTracked(func() { v.storeJob(rec) })
	}
}

// storeJob stores the record of a job this validator casts no ballot for.
func (v *validator) storeJob(rec *store.Job) {
	if _, err := v.store.AddJob(rec); err != nil && !errors.Is(err, store.ErrClosed) {
		log.Errorw("store job", "job", rec.ID.Hex(), "err", err)
	}
}

// resume takes up a job announced before a restart and not final: its
// certificate may have come while this node was down (catch-up asks peers
// for it once its deadline has passed), and its ballot is cast if still
// due.
func (v *validator) resume(m *JobMessage, gateway bool) {
	if !gateway {
		v.obs.awaitCertificate(m.JobID, time.UnixMilli(int64(m.Deadline)))
	}
	if time.UnixMilli(int64(m.Deadline)).After(v.clock.Now()) {
		v.castBallot(m, "", nil)
	}
}

// castBallot judges the claims assigned to this validator, signs one ballot
// (or reuses the one already signed for this job) and publishes it.
//
// gw is the gateway's peer id, "" if not known yet. rec, when not nil, is
// the job record to store with the ballot. It reports whether it took
// charge of the job (the validator is assigned claims).
func (v *validator) castBallot(m *JobMessage, gw peer.ID, rec *store.Job) bool {
	a := consensus.Assign(v.set, m.JobID, len(m.Claims), m.Replication)
	mine := a.ByValidator[v.pos]
	if len(mine) == 0 {
		return false
	}
	if own, err := v.store.OwnBallot(m.JobID); err == nil {
		// Already voted: answer a re-announcement with the same ballot.
		v.tasks.goTracked(func() { v.sendBallot(m, gw, &BallotMessage{Ballot: *own, Resend: m.Resend}, true) })
		return true
	}
	if !v.announce.startJudging(m.JobID) {
		return true // a judgment of this job is under way
	}
	v.tasks.goTracked(func() { v.dialGateway(m, gw) })
	select {
	case v.judge <- struct{}{}:
	case <-v.ctx.Done():
		v.announce.doneJudging(m.JobID)
		return true
	}
	v.load.Add(1)
	v.tasks.goTracked(func() {
		defer v.load.Add(-1)
		defer v.announce.doneJudging(m.JobID)
		released := false
		release := func() {
			if !released {
				released = true
				<-v.judge
			}
		}
		defer release() // if judging panicked
		v.judgeAndSend(m, gw, mine, rec, release)
	})
	return true
}

// judgeAndSend has the ballot policy judge this validator's claims of m
// by the job's deadline, then signs and sends what it says. It calls
// judged once the policy has answered: the judging slot is free for the
// next job while this one's ballot is signed, stored and sent, which take
// a batch's linger and a durable commit (docs/performance.md, "Judging
// slots").
func (v *validator) judgeAndSend(m *JobMessage, gw peer.ID, mine []uint32, rec *store.Job, judged func()) {
	ctx := newDeadlineCtx(v.ctx, time.UnixMilli(int64(m.Deadline)))
	defer ctx.stop()
	lists := v.opts.Ballots.Ballots(ctx, &Judgement{
		Job: m, Mine: slices.Clone(mine), Validator: v.signer.Address(), Set: v.set, Verifier: v.opts.Verifier,
		Observed: func() ([]*consensus.Ballot, <-chan struct{}) { return v.obs.book.observed(m.JobID) },
	})
	judged()
	if ctx.Err() != nil || len(lists) == 0 {
		if rec != nil { // keep the record for reads; no ballot is due any more
			v.storeJob(rec)
		}
		return
	}
	v.signAndSend(m, gw, mine, rec, lists)
}

// signAndSend signs the ballot lists[0] (sign: with the other ballots
// ready at the same moment), stores it with rec (or keeps the ballot
// already stored for the job) and sends it; then signs and sends each
// further list, the first time only.
func (v *validator) signAndSend(m *JobMessage, gw peer.ID, mine []uint32, rec *store.Job, lists [][]claims.Verdict) {
	b := &consensus.Ballot{
		NetworkID:  m.NetworkID,
		JobID:      m.JobID,
		OutputHash: m.OutputHash,
		ClaimsRoot: m.ClaimsRoot,
		Vote: consensus.Vote{
			Validator:    v.signer.Address(),
			ClaimIndexes: slices.Clone(mine),
			Verdicts:     slices.Clone(lists[0]),
		},
	}
	if err := v.sign(b); err != nil {
		if v.ctx.Err() == nil {
			log.Errorw("sign ballot", "job", m.JobID.Hex(), "err", err)
		}
		return
	}
	v.trace(TraceBallotSigned, m.JobID, common.Address{})
	prev, err := v.store.PutOwnBallotWithJob(b, time.UnixMilli(int64(m.Deadline)), rec)
	if err != nil {
		log.Errorw("store own ballot", "job", m.JobID.Hex(), "err", err)
		return
	}
	v.trace(TraceBallotStored, m.JobID, common.Address{})
	if prev != nil {
		b = prev
	}
	v.sendBallot(m, gw, &BallotMessage{Ballot: *b}, false)
	if prev != nil {
		return
	}
	for _, verdicts := range lists[1:] {
		if b2, err := consensus.SignBallot(v.signer, m.NetworkID, m.JobID, m.OutputHash, m.ClaimsRoot, mine, verdicts); err == nil {
			v.sendBallot(m, gw, &BallotMessage{Ballot: *b2}, false)
		}
	}
}

// startSigning starts the signer of this validator's ballots.
func (v *validator) startSigning() {
	v.signing = newBatchSigner(v.loaded, v.signBallot, v.signBallots)
}

// sign signs b, alone or in a batch with the ballots ready at the same
// moment, and waits for it.
func (v *validator) sign(b *consensus.Ballot) error { return v.signing.sign(b) }

// signBallot signs one ballot alone, and remembers the signature as this
// node's own, so that its gateway and observer never recover it.
func (v *validator) signBallot(b *consensus.Ballot) error {
	sig, err := v.signer.SignDigest(b.Digest())
	if err != nil {
		return err
	}
	b.Signature = sig
	return v.rememberOwn(b)
}

// signBallots signs several ballots with one batch signature
// (consensus.SignBallotBatch), a proof each, and remembers it as
// signBallot does.
func (v *validator) signBallots(ballots []*consensus.Ballot) error {
	if err := consensus.SignBallotBatch(v.signer, ballots); err != nil {
		return err
	}
	return v.rememberOwn(ballots[0]) // one signature for all
}

// rememberOwn adds b's signature, this node's own, to the signature cache.
func (v *validator) rememberOwn(b *consensus.Ballot) error {
	digest, ok := b.SignedDigest()
	if !ok {
		return fmt.Errorf("node: batch proof of ballot %d of %d does not fold", b.Batch.Index, b.Batch.Count)
	}
	v.sigCache.Add(digest, b.Signature, v.signer.Address())
	return nil
}

// sendBallot delivers this validator's ballot for a job: straight to the
// job's gateway (peer gw, recovered from the job's signature if ""; this
// node's own gateway without the network), falling back to gossip when
// that fails; on the ballots topic with GossipBallots. waitPeers publishes
// only once the node has topic peers (a resend after a restart).
func (v *validator) sendBallot(m *JobMessage, gw peer.ID, msg *BallotMessage, waitPeers bool) {
	if !v.opts.GossipBallots {
		if m.Gateway == v.signer.Address() {
			v.gw.addBallot(&msg.Ballot)
			return
		}
		if gw == "" {
			gw = gatewayPeer(m, nil)
		}
		if gw != "" && (v.sendDirect(m, gw, msg) || v.ctx.Err() != nil) {
			return
		}
	}
	v.metrics.ballotsSent.WithLabelValues("gossip").Inc()
	if waitPeers {
		v.publishWhenReady(p2p.KindBallots, msg)
		return
	}
	v.publish(p2p.KindBallots, msg)
}

// learnGateway takes the addresses of the job's gateway, peer gw, from
// the record the job carries: those of a gateway this node never met come
// with its job, signed with the gateway's own key (docs/protocol.md,
// "Committees"). Once connected it has nothing to learn: the record's
// signature is checked only while this node needs the addresses, not
// again for each ballot it sends (a job's dial and its ballot both come
// here).
func (v *validator) learnGateway(m *JobMessage, gw peer.ID) {
	if v.net.Connected(gw) {
		return
	}
	ttl := max(time.UnixMilli(int64(m.Deadline)).Sub(v.clock.Now()), 0) + time.Minute
	if err := v.net.LearnPeerRecord(gw, m.GatewayRecord, ttl); err != nil {
		log.Debugw("gateway record refused", "job", m.JobID.Hex(), "gateway", m.Gateway.Hex(), "err", err)
	}
}

// dialGateway connects to the job's gateway (peer gw, recovered from the
// job's signature if "") while this validator judges its claims, so that
// a ballot to a gateway it never met does not wait for the handshake once
// it is ready: the handshake overlaps the judging. Nothing to do when
// ballots are gossiped or this node is the gateway.
func (v *validator) dialGateway(m *JobMessage, gw peer.ID) {
	if v.opts.GossipBallots || m.Gateway == v.signer.Address() {
		return
	}
	if gw == "" {
		if gw = gatewayPeer(m, nil); gw == "" {
			return
		}
	}
	v.learnGateway(m, gw)
	ctx := newDeadlineCtx(v.ctx, time.UnixMilli(int64(m.Deadline)))
	defer ctx.stop()
	if err := v.net.Dial(ctx, gw); err != nil && v.ctx.Err() == nil {
		log.Debugw("gateway dial failed", "job", m.JobID.Hex(), "gateway", m.Gateway.Hex(), "err", err)
	}
}

// sendDirect sends a ballot straight to the job's gateway, peer gw, over
// a libp2p stream, with the other ballots for that gateway ready at the
// same moment; it reports whether the gateway took it.
func (v *validator) sendDirect(m *JobMessage, gw peer.ID, msg *BallotMessage) bool {
	v.learnGateway(m, gw)
	data, err := encode(msg)
	if err == nil {
		if err = v.net.SendDirectQueued(v.ctx, gw, p2p.KindBallots, data); err == nil {
			v.metrics.ballotsSent.WithLabelValues("direct").Inc()
			return true
		}
	}
	if v.ctx.Err() == nil {
		log.Debugw("direct ballot failed; gossiping it", "job", m.JobID.Hex(), "gateway", m.Gateway.Hex(), "err", err)
	}
	return false
}
