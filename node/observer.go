package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/fifo"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// observer keeps what this node learns of the network as a whole: the
// certificates it takes, from gossip and from catch-up, and those it waits
// for; the first ballot of each validator for recent jobs, and the
// equivocation evidence they prove; and each validator's agreement with
// decided outcomes.
type observer struct {
	*env
	// aggregating reports whether this node's gateway still tallies a
	// job: it issues that job's certificate and takes none from peers.
	aggregating func(common.Hash) bool
	book        *ballotBook
	catchUp     *catchUp

	mu     sync.Mutex
	finals map[common.Hash]*finalWait // waiters of jobs not yet final

	// issued holds the certificates this node's gateway issued and is
	// publishing, by job, until their own gossip passes validateCert.
	issuedMu sync.Mutex
	issued   map[common.Hash][]byte

	statsMu sync.Mutex
	stats   map[common.Address]*agreement
}

func newObserver(e *env) *observer {
	return &observer{
		env:     e,
		book:    newBallotBook(4096),
		catchUp: newCatchUp(),
		finals:  make(map[common.Hash]*finalWait),
		issued:  make(map[common.Hash][]byte),
		stats:   make(map[common.Address]*agreement),
	}
}

// ballotBook remembers the first ballot of each validator for recent jobs,
// across every job the node sees gossiped (not only those it aggregates),
// so that every node detects equivocation and copycats can see what others
// voted. It holds at most maxJobs jobs, forgetting the oldest.
type ballotBook struct {
	mu   sync.Mutex
	jobs *fifo.Map[common.Hash, *bookJob]
}

type bookJob struct {
	first   map[common.Address]*consensus.Ballot
	changed chan struct{} // closed and replaced on every new ballot
}

func newBallotBook(maxJobs int) *ballotBook {
	return &ballotBook{jobs: fifo.New[common.Hash, *bookJob](maxJobs)}
}

func (bk *ballotBook) jobLocked(id common.Hash) *bookJob {
	j, ok := bk.jobs.Get(id)
	if !ok {
		j = &bookJob{first: make(map[common.Address]*consensus.Ballot), changed: make(chan struct{})}
		bk.jobs.Put(id, j)
	}
	return j
}

// record notes b and returns the earlier, different ballot of the same
// validator for the same job, if there is one (equivocation).
func (bk *ballotBook) record(b *consensus.Ballot) *consensus.Ballot {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	j := bk.jobLocked(b.JobID)
	prev, ok := j.first[b.Validator]
	if ok {
		if prev.Conflicts(b) {
			return prev
		}
		return nil
	}
	j.first[b.Validator] = b
	close(j.changed)
	j.changed = make(chan struct{})
	return nil
}

// observed returns the ballots seen for a job and a channel closed when
// the next one arrives.
func (bk *ballotBook) observed(id common.Hash) ([]*consensus.Ballot, <-chan struct{}) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	j := bk.jobLocked(id)
	out := make([]*consensus.Ballot, 0, len(j.first))
	for _, b := range j.first {
		out = append(out, b)
	}
	return out, j.changed
}

// checkEquivocation records b in the ballot book and, when it conflicts
// with an earlier ballot of the same validator, stores the evidence and
// gossips it.
func (o *observer) checkEquivocation(b *consensus.Ballot) {
	prev := o.book.record(b)
	if prev == nil {
		return
	}
	o.addEvidence(&consensus.Evidence{Validator: b.Validator, First: *prev, Second: *b}, true)
}

// addEvidence stores verified evidence once and, if asked, gossips it.
func (o *observer) addEvidence(e *consensus.Evidence, gossip bool) {
	added, err := o.store.AddEvidence(&store.Evidence{Evidence: *e, DetectedAt: o.clock.Now()})
	if err != nil {
		log.Errorw("store evidence", "validator", e.Validator.Hex(), "err", err)
		return
	}
	if !added {
		return
	}
	_, v, _ := o.set.Lookup(e.Validator)
	log.Warnw("equivocation evidence", "validator", e.Validator.Hex(), "name", v.Name, "job", e.First.JobID.Hex())
	if gossip {
		o.tasks.goTracked(func() { o.publish(p2p.KindEvidence, e) })
	}
}

// evidence lists the stored equivocation evidence and the penalty record
// it makes against each validator.
func (o *observer) evidence() (*api.EvidenceList, error) {
	all, err := o.store.AllEvidence()
	if err != nil {
		return nil, err
	}
	out := &api.EvidenceList{Evidence: []api.EvidenceRecord{}, Penalties: []api.Penalty{}}
	byValidator := map[common.Address]*api.Penalty{}
	for _, e := range all {
		out.Evidence = append(out.Evidence, api.EvidenceRecord{
			Validator: e.Validator, JobID: e.First.JobID, First: e.First, Second: e.Second, DetectedAt: e.DetectedAt,
		})
		p, ok := byValidator[e.Validator]
		if !ok {
			_, v, _ := o.set.Lookup(e.Validator)
			out.Penalties = append(out.Penalties, api.Penalty{Validator: e.Validator, Name: v.Name, Stake: v.Stake, Slashed: v.Stake})
			p = &out.Penalties[len(out.Penalties)-1]
			byValidator[e.Validator] = p
		}
		p.Jobs = append(p.Jobs, e.First.JobID)
	}
	return out, nil
}

// agreement counts, per validator, its true/false verdicts on claims that
// certificates decided and how many matched.
type agreement struct {
	decided, agreed uint64
}

// MinFlagSamples is how many decided verdicts a validator needs before it
// can be flagged.
const MinFlagSamples = 20

// countAgreement adds a stored certificate's ballots to the agreement
// counts. Each certificate is counted once (the caller stored it first).
//
// Besides the certificate's ballots, it counts the ballots this node saw
// gossiped for the job but that came after the decision, so that a
// validator whose verdicts never make it into certificates is judged too.
func (o *observer) countAgreement(c *consensus.Certificate) {
	seen, _ := o.book.observed(c.JobID)
	o.statsMu.Lock()
	defer o.statsMu.Unlock()
	for i := range c.Ballots {
		o.countVoteLocked(c, &c.Ballots[i])
	}
	for _, b := range seen {
		if b.OutputHash == c.OutputHash && b.ClaimsRoot == c.ClaimsRoot && !votedIn(c, b.Validator) {
			o.countVoteLocked(c, &b.Vote)
		}
	}
}

// votedIn reports whether c carries a ballot of validator.
func votedIn(c *consensus.Certificate, validator common.Address) bool {
	for i := range c.Ballots {
		if c.Ballots[i].Validator == validator {
			return true
		}
	}
	return false
}

// countVoteLocked counts the verdicts of one vote against c's outcome.
// o.statsMu must be held.
func (o *observer) countVoteLocked(c *consensus.Certificate, b *consensus.Vote) {
	a := o.stats[b.Validator]
	if a == nil {
		a = &agreement{}
		o.stats[b.Validator] = a
	}
	for k, ci := range b.ClaimIndexes {
		if int(ci) >= len(c.Claims) || k >= len(b.Verdicts) || b.Verdicts[k] == claims.Abstain {
			continue
		}
		var decided claims.Verdict
		switch c.Claims[ci].Verdict {
		case consensus.OutcomeTrue:
			decided = claims.True
		case consensus.OutcomeFalse:
			decided = claims.False
		default:
			continue
		}
		a.decided++
		if b.Verdicts[k] == decided {
			a.agreed++
		}
	}
}

// validatorStats reports every validator's agreement and equivocations.
// A validator is flagged when, over at least MinFlagSamples decided
// verdicts, its agreement is not above one half by two standard deviations
// of a fair coin (agreed - decided/2 <= sqrt(decided)): no better than
// chance, as a random guesser or a liar.
func (o *observer) validatorStats() ([]api.ValidatorStats, error) {
	ev, err := o.store.AllEvidence()
	if err != nil {
		return nil, err
	}
	equiv := map[common.Address]int{}
	for _, e := range ev {
		equiv[e.Validator]++
	}
	o.statsMu.Lock()
	defer o.statsMu.Unlock()
	var out []api.ValidatorStats
	for _, v := range o.set.Validators() {
		s := api.ValidatorStats{Address: v.Address, Name: v.Name, Equivocations: equiv[v.Address]}
		if a := o.stats[v.Address]; a != nil {
			s.Decided, s.Agreed = a.decided, a.agreed
			if a.decided > 0 {
				s.Agreement = float64(a.agreed) / float64(a.decided)
			}
			if a.decided >= MinFlagSamples && float64(a.agreed)-float64(a.decided)/2 <= math.Sqrt(float64(a.decided)) {
				s.Flagged = true
				s.FlagReason = "agreement with decided outcomes is no better than chance"
			}
		}
		if s.Equivocations > 0 {
			s.Flagged = true
			s.FlagReason = "equivocation proven"
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b api.ValidatorStats) int { return a.Address.Cmp(b.Address) })
	return out, nil
}

// MaxEvidenceMessageSize bounds a gossiped evidence message.
const MaxEvidenceMessageSize = 2 * MaxBallotMessageSize

// DecodeEvidence decodes gossiped evidence and verifies it against set.
func DecodeEvidence(data []byte, set *consensus.ValidatorSet) (*consensus.Evidence, error) {
	if len(data) > MaxEvidenceMessageSize {
		return nil, fmt.Errorf("%w: evidence of %d bytes", ErrMessageTooLarge, len(data))
	}
	var e consensus.Evidence
	if err := strictjson.Decode(data, &e, MaxEvidenceMessageSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if err := e.Verify(set); err != nil {
		return nil, err
	}
	return &e, nil
}

// validateEvidence is the evidence topic validator.
func (o *observer) validateEvidence(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	e, err := DecodeEvidence(data, o.set)
	if err != nil {
		log.Debugw("evidence rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	return p2p.Accept, e
}

// onEvidence stores verified evidence received from the network.
func (o *observer) onEvidence(v any) {
	if e, ok := v.(*consensus.Evidence); ok {
		o.addEvidence(e, false)
	}
}

// errCertNotBinary is a certificate gossiped in another form than the
// binary one (docs/protocol.md).
var errCertNotBinary = errors.New("certificate not in the binary form")

// validateCert is the certs topic validator: a certificate spreads only if
// it verifies against the validator set and this node takes it
// (checkCert).
func (o *observer) validateCert(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	start := time.Now()
	own := from == o.net.PeerID()
	if own && o.issuedHere(data) {
		// Its gateway built it from ballots it verified as they came,
		// signed it and stored it just now: not checked a second time.
		o.metrics.observeValidation(p2p.KindCerts, verdictLabel(nil), start)
		return p2p.Accept, nil
	}
	var t takenCert
	var v p2p.Verdict
	var err error
	if !consensus.IsCertificateBinary(data) {
		// One form on the topic, so that one certificate is one message
		// (gossip tells messages apart by their bytes): the binary one.
		err, v = errCertNotBinary, p2p.Reject
	} else {
		t, v, err = o.checkCert(data, own)
	}
	c := t.cert
	o.metrics.observeValidation(p2p.KindCerts, verdictLabel(err), start)
	if err != nil {
		log.Debugw("certificate rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	if !own {
		// Gossip reaches this node: the settle sync reads up to here.
		o.catchUp.heard(o.clock.Now(), c.IssuedAt)
	}
	switch {
	case v != p2p.Accept:
		return v, nil
	case own:
		// This node stored it before publishing it (again, after a
		// restart): checked, so that it never gossips one that does not
		// verify, and not delivered back to its own store.
		return p2p.Accept, nil
	}
	return p2p.Accept, &t
}

// maxIssuing bounds the certificates held by issuing: more than a
// gateway publishes in the moment their gossip takes to come back.
const maxIssuing = 4096

// issuing notes a certificate this node's gateway issued and is about to
// publish (data, its binary form), so that validateCert takes it on its
// way out without checking it again. What else this node publishes (its
// stored certificates, again after a restart) is checked as a peer's is:
// it never gossips one that does not verify.
func (o *observer) issuing(id common.Hash, data []byte) {
	o.issuedMu.Lock()
	defer o.issuedMu.Unlock()
	if len(o.issued) >= maxIssuing {
		// Publishes that failed left theirs here: those are checked if
		// they ever come by.
		clear(o.issued)
	}
	o.issued[id] = data
}

// issuedHere reports whether data is a certificate noted by issuing, and
// forgets it.
func (o *observer) issuedHere(data []byte) bool {
	id, ok := consensus.CertificateBinaryJobID(data)
	if !ok {
		return false
	}
	o.issuedMu.Lock()
	defer o.issuedMu.Unlock()
	if d, ok := o.issued[id]; ok && bytes.Equal(d, data) {
		delete(o.issued, id)
		return true
	}
	return false
}

// takenCert is a certificate this node took (checkCert), with its bytes as
// received: stored and told to event streams as they are, not encoded
// again. strictjson, which parsed them, decodes only what encoding/json
// decodes the same (internal/strictjson's FuzzSameAsEncodingJSON), so the
// store reads back the certificate that was verified.
type takenCert struct {
	cert *consensus.Certificate
	data []byte
	// other says that checkCert found another certificate of the job
	// stored (a conflict its gateway signed): storeCert then only logs it.
	other bool
}

// checkCert decodes and verifies a certificate from a peer, from gossip or
// from catch-up alike, and decides whether this node takes it. It returns
// Reject with the error for a certificate that is not valid and final, and
// Ignore for one this node already holds (unless own: this node is
// publishing it; the store is asked only for jobs it does not await), for
// one of a job this node is still aggregating, and for
// an unsettled one before this node's clock reaches its deadline. With
// Accept and Ignore it returns the certificate, parsed, with data.
func (o *observer) checkCert(data []byte, own bool) (takenCert, p2p.Verdict, error) {
	c, err := parseCertificate(data)
	if err != nil {
		return takenCert{}, p2p.Reject, err
	}
	t := takenCert{cert: c, data: data}
	// The store is not asked about a job this node awaits (the common
	// case: its first copy, from gossip or catch-up): a job stays
	// awaited until a certificate of it is stored here, and is not
	// awaited again after that (catchUp.want). Were it held all the
	// same (a second copy checked while the first is being stored, or
	// a certificate stored before a restart), the copy is verified for
	// nothing and storing it writes nothing: the first certificate
	// stands.
	if !own && !o.catchUp.awaited(c.JobID) {
		var held bool
		if held, t.other = o.holdsCertificate(c, data); held {
			return t, p2p.Ignore, nil
		}
	}
	// Ballots this node already verified on the ballots topic are not
	// recovered again.
	var settled bool
	if err := consensus.VerifyCertificate(c, o.set, nil, consensus.WithSignatureCache(o.sigCache), consensus.ReportSettled(&settled)); err != nil {
		return takenCert{}, p2p.Reject, err
	}
	// VerifyCertificate took only a valid, final certificate: signed by
	// the job's gateway (the job id commits to the gateway and the
	// deadline), and settled on its ballots or issued at or after the
	// deadline. Never take one for a job this node is still aggregating
	// (it issues that one). Take an unsettled one only once this node's
	// clock has reached the deadline too: a gateway may not close its own
	// job early.
	if o.aggregating(c.JobID) {
		return t, p2p.Ignore, nil
	}
	if !settled && o.clock.Now().Before(time.UnixMilli(int64(c.DeadlineMS)).Add(-certClockSkew)) {
		log.Debugw("premature certificate ignored", "job", c.JobID.Hex())
		return t, p2p.Ignore, nil
	}
	return t, p2p.Accept, nil
}

// holdsCertificate reports whether this node stores c already: the same
// outcome under the same gateway signature. A copy brings nothing; a
// different one signed by the same gateway goes on, to be logged as a
// conflict. The signature alone does not tell: one batch signature covers
// every outcome of the batch, two for the same job among them.
//
// data is c as received: a copy whose bytes are those stored (as a
// catch-up answer's are) is held without decoding the stored one. other
// says that another certificate of the job is stored.
func (o *observer) holdsCertificate(c *consensus.Certificate, data []byte) (held, other bool) {
	if held, same, err := o.store.CompareCertificate(c, data); err != nil || !held || same {
		return err == nil && held, false
	}
	stored, err := o.store.Certificate(c.JobID)
	if err == nil && bytes.Equal(stored.GatewaySignature, c.GatewaySignature) &&
		stored.GatewayDigest() == c.GatewayDigest() {
		return true, false
	}
	return false, true
}

// certClockSkew is how far ahead of this node's clock a gateway's may be
// when it issues a certificate at the deadline.
const certClockSkew = time.Second

// onCert stores a verified certificate.
func (o *observer) onCert(v any) {
	t, ok := v.(*takenCert)
	if !ok {
		return
	}
	// Stored off the subscription loop, so that certificates share commits.
	o.tasks.goTracked(func() { o.storeCert(*t) })
}

// storeCert stores a certificate this node took (checkCert), from gossip or
// catch-up. The job's record, if any, becomes final with it.
func (o *observer) storeCert(t takenCert) {
	c, data := t.cert, t.data
	// checkCert looked for it already, or knew the job awaited. Another
	// certificate of the job found there (a conflict, which a gateway's
	// key can sign again and again) is looked up once more, with no
	// write transaction; else the write transaction looks again (this
	// one taken meanwhile from gossip and catch-up at once stands:
	// stored is false).
	put := o.store.PutNewCertificate
	if t.other {
		put = func(c *consensus.Certificate, at time.Time) (bool, error) { return o.store.PutCertificate(c, at) }
	}
	stored, err := put(c, o.clock.Now())
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			log.Errorw("store certificate", "job", c.JobID.Hex(), "err", err)
		}
		return
	}
	o.catchUp.got(c.JobID)
	if !stored {
		// Only the job's gateway signs a final certificate; two that
		// differ mean the gateway signed twice. The first one stands here
		// and `verity testnet check` reports the split.
		if prev, err := o.store.Certificate(c.JobID); err == nil && !sameOutcome(prev, c) {
			log.Warnw("conflicting certificates signed by the job's gateway; keeping the first", "job", c.JobID.Hex(),
				"gateway", c.Gateway.Hex(), "kept", prev.Status, "other", c.Status)
		}
		return
	}
	o.countAgreement(c)
	o.notifyFinal(c.JobID, c)
	o.events.publish(api.EventCertificateIssued, c.JobID, o.clock.Now(), certificateIssued(c, data))
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

// awaitCertificate records a job, announced by another gateway, whose
// certificate this node waits for: catch-up asks peers for it once its
// deadline has passed.
func (o *observer) awaitCertificate(id common.Hash, deadline time.Time) {
	o.catchUp.want(id, deadline)
}

// finalWait is the waiters of one job: a channel closed when its
// certificate is stored, and how many wait on it. cert, set before the
// channel is closed, is the certificate stored, when notifyFinal had it.
type finalWait struct {
	ch      chan struct{}
	waiters int
	cert    *consensus.Certificate
}

// waitFor registers a waiter of id and returns its entry and a release
// function; the entry is removed when its last waiter leaves or the job
// becomes final. Callers check the store after registering, so no wake-up
// is lost.
func (o *observer) waitFor(id common.Hash) (*finalWait, func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.finals[id]
	if !ok {
		w = &finalWait{ch: make(chan struct{})}
		o.finals[id] = w
	}
	w.waiters++
	return w, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		w.waiters--
		if w.waiters == 0 && o.finals[id] == w {
			delete(o.finals, id)
		}
	}
}

// notifyFinal wakes everyone waiting for id: its certificate is stored.
// c, if not nil, is that certificate, handed to the waiters as it is
// rather than read back from the store.
func (o *observer) notifyFinal(id common.Hash, c *consensus.Certificate) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.finals[id]; ok {
		w.cert = c
		close(w.ch)
		delete(o.finals, id)
	}
}

// waitFinal blocks until the job has a certificate on this node or ctx
// ends. The certificate may be the one the node stored, shared with the
// other waiters: it is not to be changed.
func (o *observer) waitFinal(ctx context.Context, id common.Hash) (*consensus.Certificate, error) {
	w, release := o.waitFor(id)
	defer release()
	if c, err := o.store.Certificate(id); err == nil {
		return c, nil
	}
	select {
	case <-w.ch:
		if w.cert != nil {
			return w.cert, nil
		}
		return o.store.Certificate(id)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-o.ctx.Done():
		return nil, errors.New("node stopped")
	}
}
