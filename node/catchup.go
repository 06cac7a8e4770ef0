package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/fifo"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
)

// Catch-up: a node that was down, or cut off, asks a peer for the
// certificates it missed over /verity/<network>/certs/sync/4 (p2p), and
// takes each exactly as it would from gossip (checkCert, then storeCert).
//
//   - When it has a peer on the certificates topic again (at start-up, or
//     after it had none), it asks for every certificate issued since its
//     newest one, less catchUpOverlap, a page at a time, until a page comes
//     back empty; and once more catchUpSettle later, that time only up to
//     the first certificate gossip brought it after it had a peer again
//     (plus certClockSkew): what was issued later reached it by gossip.
//   - Every catchUpInterval it asks for the certificates of the jobs it saw
//     announced (or stored unfinished before a restart) whose deadline has
//     passed, less certClockSkew, without a certificate arriving.
//
// Each request goes to one connected peer at random; a peer that fails or
// answers with a certificate that does not verify is dropped for the next
// (and penalised for the latter), up to catchUpPeers peers.
const (
	// maxSyncRequest bounds a request's bytes; maxSyncJobIDs its job ids.
	maxSyncRequest = 64 << 10
	maxSyncJobIDs  = 256
	// maxSyncCerts and maxSyncResponse bound one answer: certificates, and
	// bytes (each certificate at most MaxCertMessageSize, as on gossip).
	maxSyncCerts    = 256
	maxSyncResponse = 8 << 20
	// catchUpOverlap is how far before its newest certificate a node asks
	// from: certificates issued just before it went down may not have
	// reached it.
	catchUpOverlap = time.Minute
	// catchUpInterval is how often a node asks for the certificates of
	// overdue jobs; catchUpGiveUp how long after a job's deadline it stops.
	catchUpInterval = 5 * time.Second
	catchUpGiveUp   = 10 * time.Minute
	// catchUpSettle is when a node syncs a second time after it has a peer
	// again: certificates gossiped before its peers knew it subscribed may
	// have passed it by.
	catchUpSettle = 5 * time.Second
	// catchUpPeers is how many peers one catch-up round tries.
	catchUpPeers = 3
	// maxWanted bounds the overdue jobs remembered (the oldest forgotten).
	maxWanted = 1 << 16
	// syncRate and syncBurst bound the requests a node serves to one peer.
	syncRate  = 10
	syncBurst = 40
)

// syncLimits are the limits of the catch-up protocol, both sides.
var syncLimits = p2p.SyncLimits{
	MaxRequest:  maxSyncRequest,
	MaxItems:    maxSyncCerts,
	MaxItemSize: MaxCertMessageSize,
	MaxResponse: maxSyncResponse,
}

// CertSyncRequest asks a peer for certificates it stores: those of the jobs
// JobIDs (at most 256), or, without JobIDs, those issued at or after
// IssuedFromMS in order of issue time then job id, resuming after the job
// After (issued at IssuedFromMS) when it is not zero. Limit (1 to 256) bounds
// the answer, which the responder may cut shorter (at 8 MiB).
type CertSyncRequest struct {
	NetworkID    uint64        `json:"network_id"`
	JobIDs       []common.Hash `json:"job_ids,omitempty"`
	IssuedFromMS uint64        `json:"issued_from_ms"`
	After        common.Hash   `json:"after"`
	Limit        uint32        `json:"limit"`
}

// Errors of catch-up.
var (
	ErrBadSyncRequest = errors.New("invalid certificate sync request")
	// ErrBadSyncAnswer is an answer a correct peer never gives: a
	// certificate that does not verify, or one not asked for.
	ErrBadSyncAnswer = errors.New("invalid certificate sync answer")
)

// validate checks the request's shape.
func (r *CertSyncRequest) validate(set *consensus.ValidatorSet) error {
	switch {
	case r.NetworkID != set.NetworkID():
		return fmt.Errorf("%w: network %d", ErrBadSyncRequest, r.NetworkID)
	case len(r.JobIDs) > maxSyncJobIDs:
		return fmt.Errorf("%w: %d job ids, at most %d", ErrBadSyncRequest, len(r.JobIDs), maxSyncJobIDs)
	case len(r.JobIDs) > 0 && (r.IssuedFromMS != 0 || r.After != common.Hash{}):
		return fmt.Errorf("%w: job ids and a time", ErrBadSyncRequest)
	case r.Limit == 0 || r.Limit > maxSyncCerts:
		return fmt.Errorf("%w: limit %d not in 1..%d", ErrBadSyncRequest, r.Limit, maxSyncCerts)
	case r.IssuedFromMS > uint64(maxTimeMS):
		return fmt.Errorf("%w: issued_from_ms %d", ErrBadSyncRequest, r.IssuedFromMS)
	}
	return nil
}

// maxTimeMS bounds times in requests so that they convert to time.Time.
const maxTimeMS = 1 << 53

// catchUp is the state of a node's catch-up: the jobs whose certificate it
// waits for, and the rate limit of the requests it serves.
type catchUp struct {
	mu     sync.Mutex
	wanted *fifo.Map[common.Hash, time.Time] // job -> deadline; deleted when the certificate is stored
	served *rateLimiter
	// gossiped is when gossip first brought a certificate issued since the
	// node last had a peer again (Unix ms, this node's clock); 0: not yet.
	gossiped atomic.Int64
	// since is when the node last had a peer again (Unix ms).
	since atomic.Int64
}

// heard records that gossip brought, at now, a certificate issued at
// issued: the first one issued since the node had a peer again (less
// certClockSkew) bounds the next settle sync. An older one says nothing
// of gossip now: any peer, with no key at all, can replay one it kept.
func (c *catchUp) heard(now, issued time.Time) {
	if c.gossiped.Load() != 0 || issued.UnixMilli() < c.since.Load()-certClockSkew.Milliseconds() {
		return
	}
	c.gossiped.CompareAndSwap(0, max(now.UnixMilli(), 1))
}

// reconnected forgets when gossip last brought a certificate: the node has
// a peer again, at now, after having none.
func (c *catchUp) reconnected(now time.Time) {
	c.since.Store(now.UnixMilli())
	c.gossiped.Store(0)
}

// settleUntil is how far the settle sync reads: certificates issued up to
// the first one gossip brought since the node had a peer again, plus
// certClockSkew (a gateway's clock may run ahead). Zero: no certificate
// came by gossip, so the sync reads to the end.
func (c *catchUp) settleUntil() time.Time {
	ms := c.gossiped.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).Add(certClockSkew)
}

// pastUntil reports whether a sync that reads up to until (zero: to the
// end) has read far enough once a page ended with last.
func pastUntil(last *consensus.Certificate, until time.Time) bool {
	return !until.IsZero() && last != nil && last.IssuedAt.After(until)
}

func newCatchUp() *catchUp {
	return &catchUp{
		wanted: fifo.New[common.Hash, time.Time](maxWanted),
		served: newRateLimiter(syncRate, syncBurst, 1024),
	}
}

// want records a job whose certificate this node waits for; not one
// whose certificate it stored since it was announced (got): a late or
// replayed announcement does not make it awaited again.
func (c *catchUp) want(id common.Hash, deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.wanted.Get(id); ok && d.IsZero() {
		return
	}
	c.wanted.Put(id, deadline)
}

// awaited reports whether this node waits for a job's certificate: it saw
// the job announced, and has stored no certificate of it since.
func (c *catchUp) awaited(id common.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, ok := c.wanted.Get(id)
	return ok && !deadline.IsZero()
}

// got records that a job's certificate is stored.
func (c *catchUp) got(id common.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.wanted.Get(id); ok {
		c.wanted.Put(id, time.Time{}) // a zero deadline: done
	}
}

// overdue returns up to maxSyncJobIDs jobs whose deadline (less skew) has
// passed at now, within catchUpGiveUp, without their certificate.
func (c *catchUp) overdue(now time.Time) []common.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []common.Hash
	c.wanted.Range(func(id common.Hash, deadline time.Time) bool {
		if !deadline.IsZero() && now.After(deadline.Add(certClockSkew)) && now.Sub(deadline) < catchUpGiveUp {
			ids = append(ids, id)
		}
		return len(ids) < maxSyncJobIDs
	})
	return ids
}

// serveCertSync answers a catch-up request from a peer with the
// certificates this node stores, each encoded as on gossip.
func (o *observer) serveCertSync(_ context.Context, from peer.ID, data []byte, send func([]byte) error) error {
	// libp2p runs this in a goroutine of its own: count it among the
	// node's, as directBallot does.
	if !o.tasks.enter() {
		return p2p.ErrClosed
	}
	defer o.tasks.exit()
	if ok, _ := o.catchUp.served.allow(from.String(), time.Now()); !ok {
		return fmt.Errorf("sync requests from %s over %d/s", from, syncRate)
	}
	var req CertSyncRequest
	err := strictjson.Decode(data, &req, maxSyncRequest)
	if err == nil {
		err = req.validate(o.set)
	}
	if err != nil {
		o.net.Penalise(from, "invalid sync request")
		return err
	}
	count := 0
	emit := func(c *consensus.Certificate) bool {
		data := consensus.CertificateBinary(c)
		if len(data) > MaxCertMessageSize {
			return true // kept by its gateway, not gossiped: not synced either
		}
		if err := send(data); err != nil {
			return false
		}
		count++
		return count < int(req.Limit) && o.ctx.Err() == nil
	}
	if len(req.JobIDs) > 0 {
		for _, id := range req.JobIDs {
			c, err := o.store.Certificate(id)
			if err != nil {
				continue
			}
			if !emit(c) {
				break
			}
		}
		return nil
	}
	return o.store.CertificatesIssuedFrom(time.UnixMilli(int64(req.IssuedFromMS)), req.After, emit)
}

// catchUpLoop runs catch-up until the node stops: a sync of everything
// issued since the newest certificate whenever the node has a peer on the
// certificates topic after having none (at start-up first), again
// catchUpSettle later up to where gossip took over (what was gossiped
// while the mesh formed), and a sync of overdue jobs every
// catchUpInterval.
func (o *observer) catchUpLoop() {
	if o.set.Len() == 1 {
		return
	}
	tick := time.NewTicker(catchUpInterval)
	defer tick.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	connected := false
	var again time.Time // when to sync once more; zero: not due
	for {
		if has := o.net.TopicPeers(p2p.KindCerts) > 0; has != connected {
			connected = has
			if has {
				o.catchUp.reconnected(o.clock.Now())
				o.catchUpSince(time.Time{})
				again = time.Now().Add(catchUpSettle)
			}
		}
		if connected && !again.IsZero() && time.Now().After(again) {
			again = time.Time{}
			o.catchUpSince(o.catchUp.settleUntil())
		}
		select {
		case <-o.ctx.Done():
			return
		case <-poll.C:
		case <-tick.C:
			if connected {
				o.catchUpOverdue()
			}
		}
	}
}

// catchUpSince asks peers for every certificate issued since this node's
// newest one, less catchUpOverlap (everything, for an empty store), up to
// until (zero: to the end), a page at a time.
func (o *observer) catchUpSince(until time.Time) {
	start := time.Now()
	newest, ok, err := o.store.LastIssued()
	if err != nil {
		log.Errorw("catch-up: read the newest certificate", "err", err)
		return
	}
	var from time.Time
	if ok {
		// A gateway's clock may run ahead: never start after this node's.
		if now := o.clock.Now(); newest.After(now) {
			newest = now
		}
		from = newest.Add(-catchUpOverlap)
	}
	req := CertSyncRequest{NetworkID: o.set.NetworkID(), IssuedFromMS: uint64(max(from.UnixMilli(), 0)), Limit: maxSyncCerts}
	stored := 0
	o.withPeers("since", func(p peer.ID) error {
		for {
			page, err := o.syncPage(p, &req)
			stored += page.stored
			if err != nil {
				return err
			}
			if page.received == 0 || pastUntil(page.last, until) {
				return nil
			}
			req.IssuedFromMS, req.After = uint64(max(page.last.IssuedAt.UnixMilli(), 0)), page.last.JobID
		}
	})
	log.Infow("catch-up done", "from", from, "until", until, "stored", stored, "took", time.Since(start))
}

// catchUpOverdue asks peers for the certificates of overdue jobs.
func (o *observer) catchUpOverdue() {
	ids := o.catchUp.overdue(o.clock.Now())
	if len(ids) == 0 {
		return
	}
	req := CertSyncRequest{NetworkID: o.set.NetworkID(), JobIDs: ids, Limit: maxSyncCerts}
	o.withPeers("overdue", func(p peer.ID) error {
		page, err := o.syncPage(p, &req)
		if err == nil && page.stored > 0 {
			log.Infow("catch-up of overdue jobs", "asked", len(ids), "stored", page.stored)
		}
		return err
	})
}

// withPeers runs f with connected peers in random order until it succeeds,
// up to catchUpPeers of them.
func (o *observer) withPeers(what string, f func(peer.ID) error) {
	peers := o.net.ConnectedPeers()
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	for i, p := range peers {
		if i == catchUpPeers || o.ctx.Err() != nil {
			return
		}
		err := f(p)
		if err == nil {
			return
		}
		log.Debugw("catch-up from a peer failed", "what", what, "peer", p, "err", err)
	}
}

// syncPageResult is what one answer brought.
type syncPageResult struct {
	received, stored int
	last             *consensus.Certificate // the last certificate received
}

// syncPage sends one request to p and takes what it answers, as from
// gossip: each certificate must verify (a peer that sends one that does not
// is penalised and the answer dropped) and is stored if this node takes it
// (checkCert). The certificates are stored together, before syncPage
// returns.
func (o *observer) syncPage(p peer.ID, req *CertSyncRequest) (syncPageResult, error) {
	var res syncPageResult
	data, err := encode(req)
	if err != nil {
		return res, err
	}
	asked := make(map[common.Hash]bool, len(req.JobIDs))
	for _, id := range req.JobIDs {
		asked[id] = true
	}
	from := time.UnixMilli(int64(req.IssuedFromMS))
	var take []takenCert
	err = o.net.RequestCertSync(o.ctx, p, data, syncLimits, func(item []byte) error {
		// A certificate checkCert takes or ignores comes back parsed.
		t, v, err := o.checkCert(item, false)
		c := t.cert
		if err == nil {
			// What was asked for, in order: a correct peer sends nothing else.
			switch {
			case len(asked) > 0 && !asked[c.JobID]:
				err = fmt.Errorf("%w: job %s not asked for", ErrBadSyncAnswer, c.JobID.Hex())
			case len(asked) == 0 && (c.IssuedAt.UnixMilli() < from.UnixMilli() ||
				res.last != nil && !issuedAfter(c, res.last)):
				err = fmt.Errorf("%w: job %s out of order", ErrBadSyncAnswer, c.JobID.Hex())
			}
		}
		if err != nil {
			o.metrics.catchUp.WithLabelValues("invalid").Inc()
			o.net.Penalise(p, "invalid certificate in a sync answer")
			return fmt.Errorf("%w: %w", ErrBadSyncAnswer, err)
		}
		res.received++
		res.last = c
		if v == p2p.Accept {
			take = append(take, t)
		} else {
			o.metrics.catchUp.WithLabelValues("ignored").Inc()
		}
		return nil
	})
	// Store what verified, even if the answer broke off: group commit
	// shares the writes.
	var wg sync.WaitGroup
	for _, t := range take {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.storeCert(t)
		}()
	}
	wg.Wait()
	res.stored = len(take)
	o.metrics.catchUp.WithLabelValues("stored").Add(float64(len(take)))
	return res, err
}

// issuedAfter reports whether a comes after b in the order of a sync
// answer: issue time in milliseconds, then job id.
func issuedAfter(a, b *consensus.Certificate) bool {
	am, bm := a.IssuedAt.UnixMilli(), b.IssuedAt.UnixMilli()
	if am != bm {
		return am > bm
	}
	return a.JobID.Cmp(b.JobID) > 0
}
