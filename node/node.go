package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	logging "github.com/ipfs/go-log/v2"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/sigs"
)

var log = logging.Logger("verity/node")

// Verifier judges one claim. claims' backends implement it.
type Verifier interface {
	Verify(ctx context.Context, c claims.Claim) claims.Verdict
}

// Decomposer splits an output into claims. claims.RuleDecomposer implements it.
type Decomposer interface {
	Decompose(ctx context.Context, output string) ([]claims.Claim, error)
}

// Generator produces an answer to a prompt. models' generators implement it.
type Generator interface {
	Generate(ctx context.Context, prompt string) (string, error)
	Name() string
}

// Node is a validator node. It wires four parts, each with its own state
// and locks: the gateway (gateway.go) aggregates the jobs this node
// accepts into certificates; the validator (validator.go) judges the jobs
// assigned to it and sends its ballots; the observer (observer.go,
// catchup.go) takes every certificate and piece of evidence it sees and
// keeps the agreement counts; the HTTP API (api.go) serves clients. Node
// starts and stops them and holds no protocol state of its own.
type Node struct {
	*env
	// identity is the libp2p key of the validator's key.
	identity libp2pcrypto.PrivKey
	gw       *gateway
	val      *validator
	obs      *observer
	api      *httpAPI

	cancel  context.CancelFunc
	server  *http.Server
	apiLn   net.Listener
	conns   *connLimiter
	stopped atomic.Bool
}

// env is what the parts of a node share: fixed by New, but for the
// context, the store and the network, which Start sets before any part
// runs.
type env struct {
	opts    *Options
	set     *consensus.ValidatorSet
	signer  sigs.Signer
	clock   Clock
	events  *eventHub
	metrics *metrics
	tasks   *tasks
	// sigCache holds the signatures this node recovered or made (ballots,
	// and gateways' over certificates), so that none is recovered twice.
	sigCache *consensus.SignatureCache

	ctx   context.Context
	store *store.Store
	net   *p2p.Network

	// load counts the jobs under way here: aggregating as gateway, and
	// judging, signing or sending a ballot as validator (loaded).
	load atomic.Int64
}

// loadedJobs is how many jobs under way make a node loaded: its sends,
// signatures and commits then wait a moment for more to share them
// (p2p.Config.Loaded, batch.Config.Loaded, store.Store.SetLoad). A
// node at light load has a job or two under way at a time.
const loadedJobs = 8

// loaded reports whether the node is under load.
func (e *env) loaded() bool { return e.load.Load() >= loadedJobs }

// saturatedJobs is how many jobs under way make a node saturated: its
// store's commits then wait longer still (store.Saturated). A node at
// 200 jobs a second has fewer than a dozen under way; one of four with a
// thousand in flight, hundreds.
const saturatedJobs = 64

// storeLoad is the node's load as its store takes it (store.SetLoad).
func (e *env) storeLoad() store.Load {
	switch n := e.load.Load(); {
	case n >= saturatedJobs:
		return store.Saturated
	case n >= loadedJobs:
		return store.Loaded
	}
	return store.Light
}

// New checks opts and builds a node; Start runs it.
func New(opts Options) (*Node, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	set, err := opts.Genesis.ValidatorSet()
	if err != nil {
		return nil, err
	}
	// The one place the key is used: the node signs through signer and
	// the network runs under identity; it keeps no other copy.
	signer := sigs.NewKeySigner(opts.Key)
	identity, err := p2p.Identity(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	opts.Key = nil
	pos, _, ok := set.Lookup(signer.Address())
	if !ok {
		return nil, fmt.Errorf("node: key %s is not a validator of network %d", signer.Address().Hex(), set.NetworkID())
	}
	if opts.Name == "" {
		opts.Name = set.At(pos).Name
	}
	e := &env{
		opts:     &opts,
		set:      set,
		signer:   signer,
		clock:    opts.Clock,
		events:   newEventHub(opts.EventBuffer, opts.EventBufferBytes, opts.Clock.Now()),
		metrics:  newMetrics(),
		tasks:    &tasks{},
		sigCache: consensus.NewSignatureCache(1 << 16),
	}
	announce := newAnnounceBook(1 << 16)
	obs := newObserver(e)
	gw := newGateway(e, obs, announce)
	obs.aggregating = gw.aggregating
	n := &Node{env: e, identity: identity, gw: gw, obs: obs, val: newValidator(e, pos, obs, gw, announce)}
	n.api = newHTTPAPI(n)
	return n, nil
}

// validate checks what New needs of opts, defaults filled in.
func (o *Options) validate() error {
	switch {
	case o.Key == nil:
		return errors.New("node: no key")
	case o.Genesis == nil:
		return errors.New("node: no genesis")
	case o.Verifier == nil:
		return errors.New("node: no verifier")
	case o.DataDir == "":
		return errors.New("node: no data directory")
	}
	if err := o.Quorum.Validate(); err != nil {
		return fmt.Errorf("node: default quorum: %w", err)
	}
	if err := o.APILimits.validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	for name, tok := range o.Tokens {
		if o.AdminToken != "" && tok == o.AdminToken {
			return fmt.Errorf("node: client token %q is the admin token; give the admin routes a token of their own", name)
		}
	}
	return nil
}

// Address is the validator address.
func (n *Node) Address() common.Address { return n.signer.Address() }

// Name is the validator name.
func (n *Node) Name() string { return n.opts.Name }

// ValidatorSet is the network's validator set.
func (n *Node) ValidatorSet() *consensus.ValidatorSet { return n.set }

// PeerID is the libp2p peer id (valid after Start).
func (n *Node) PeerID() peer.ID { return n.net.PeerID() }

// P2PAddrs are the full multiaddrs peers can dial (valid after Start).
func (n *Node) P2PAddrs() []string {
	var out []string
	for _, a := range n.net.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// Network is the node's p2p layer (valid after Start).
func (n *Node) Network() *p2p.Network { return n.net }

// APIAddr is the address the HTTP API listens on, "" without one.
func (n *Node) APIAddr() string {
	if n.apiLn == nil {
		return ""
	}
	return n.apiLn.Addr().String()
}

// APIURL is the base URL of the HTTP API.
func (n *Node) APIURL() string {
	if n.apiLn == nil {
		return ""
	}
	return "http://" + n.APIAddr()
}

// Start opens the store, joins the network, resumes unfinished jobs and
// serves the API. It returns once the node is running; ctx bounds start-up
// only. Stop ends everything Start began.
func (n *Node) Start(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(n.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	n.store, err = store.Open(n.opts.DataDir + "/verity.db")
	if err != nil {
		return err
	}
	n.store.SetLoad(n.storeLoad)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.val.startSigning()
	n.gw.startSigning()
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if err := n.joinNetwork(); err != nil {
		return err
	}
	if err := n.store.Certificates(func(c *consensus.Certificate) bool { n.obs.countAgreement(c); return true }); err != nil {
		return fmt.Errorf("node: read certificates: %w", err)
	}
	if err := n.resume(); err != nil {
		return fmt.Errorf("node: resume: %w", err)
	}
	// Certificates missed while down come from peers once one connects.
	n.tasks.goTracked(n.obs.catchUpLoop)
	if err := n.serveAPI(); err != nil {
		return err
	}
	log.Infow("node started", "name", n.opts.Name, "address", n.Address().Hex(), "peer", n.net.PeerID().String(), "api", n.APIAddr())
	return nil
}

// joinNetwork starts the p2p layer with each topic's validator and handler
// and the direct and catch-up protocols. The network lives as long as the
// node, not as long as Start's context.
func (n *Node) joinNetwork() (err error) {
	n.net, err = p2p.New(n.ctx, p2p.Config{
		Identity:    n.identity,
		ListenAddrs: n.opts.ListenAddrs,
		Bootstrap:   n.opts.Bootstrap,
		MaxPeers:    n.opts.MaxPeers,
		NetworkID:   n.set.NetworkID(),
		HostOptions: n.opts.HostOptions,
		Loaded:      n.loaded,
		DataValidators: map[string]p2p.DataValidatorFunc{
			p2p.KindJobs:     n.val.validateJob,
			p2p.KindBallots:  n.gw.validateBallot,
			p2p.KindCerts:    n.obs.validateCert,
			p2p.KindEvidence: n.obs.validateEvidence,
		},
	})
	if err != nil {
		return fmt.Errorf("node: p2p: %w", err)
	}
	// Validators decode and verify each message once; handlers receive the
	// decoded value as the message's ValidatorData.
	for kind, handle := range map[string]func(any){
		p2p.KindJobs:     n.val.onJob,
		p2p.KindBallots:  n.gw.onBallot,
		p2p.KindCerts:    n.obs.onCert,
		p2p.KindEvidence: n.obs.onEvidence,
	} {
		ch, err := n.net.Subscribe(kind)
		if err != nil {
			return fmt.Errorf("node: subscribe %s: %w", kind, err)
		}
		n.tasks.goTracked(func() { n.deliver(ch, handle) })
	}
	// Ballots sent straight to this node as gateway are taken whatever
	// this node's own GossipBallots.
	if err := n.net.HandleDirect(p2p.KindBallots, MaxBallotMessageSize, n.gw.directBallot); err != nil {
		return fmt.Errorf("node: direct ballots: %w", err)
	}
	n.net.HandleCertSync(syncLimits, n.obs.serveCertSync)
	return nil
}

// deliver hands each message of a subscription to handle until the node
// stops.
func (n *Node) deliver(ch <-chan p2p.Message, handle func(any)) {
	for {
		select {
		case <-n.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			handle(m.ValidatorData)
		}
	}
}

// serveAPI listens on APIListen, if set, and serves the HTTP API.
func (n *Node) serveAPI() (err error) {
	if n.opts.APIListen == "" {
		return nil
	}
	if err := n.api.setupAdminToken(); err != nil {
		return err
	}
	n.apiLn, err = net.Listen("tcp", n.opts.APIListen)
	if err != nil {
		return fmt.Errorf("node: api: %w", err)
	}
	n.conns = newConnLimiter(n.apiLn, connectionCap(n.opts.APILimits.MaxConnections), time.Now)
	n.api.registerMetrics(n.conns)
	n.server = newAPIServer(n.Handler(), n.opts.APILimits, n.conns)
	n.tasks.goTracked(func() {
		if err := n.server.Serve(n.conns); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("api server stopped", "err", err)
		}
	})
	return nil
}

// resume restarts what a crash or stop interrupted: the tallies of jobs this
// node is gateway of (republishing the job in case it never left), and the
// ballots of jobs it was assigned but had not yet published.
func (n *Node) resume() error {
	var pending []*store.Job
	var recent []common.Hash // gateway jobs final lately: certificates to send again
	horizon := n.clock.Now().Add(-n.opts.MaxDeadline)
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
			n.tasks.goTracked(func() { n.publishWhenReady(p2p.KindCerts, c) })
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
			if err := n.gw.resume(&m, ballots, j.SubmittedAt); err != nil {
				return err
			}
		}
		n.val.resume(&m, j.Gateway)
	}
	if len(pending) > 0 {
		log.Infow("resumed unfinished jobs", "count", len(pending))
	}
	return nil
}

// Stop stops the node and waits for every goroutine it started.
func (n *Node) Stop() error {
	if !n.stopped.CompareAndSwap(false, true) {
		return nil
	}
	n.tasks.close()
	n.gw.stop()
	var errs []error
	// Cancel first: long polls and event streams end, so the API server's
	// shutdown does not wait for them.
	if n.cancel != nil {
		n.cancel()
	}
	n.events.closeAll()
	if n.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if n.net != nil {
		if err := n.net.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.tasks.wait()
	// Nothing signs once every task has ended: the signers have nothing
	// left to sign.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	for _, s := range []interface{ close(context.Context) error }{n.val.signing, n.gw.signing, n.gw.jobSigning} {
		if err := s.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("node: stop signing: %w", err))
		}
	}
	cancel()
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run starts the node and runs it until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Stop()
}

// Ready reports whether the node can take part in consensus: it has peers on
// every topic (or is the only validator).
func (n *Node) Ready() bool {
	if n.set.Len() == 1 {
		return true
	}
	for _, k := range p2p.Kinds {
		if n.net.TopicPeers(k) == 0 {
			return false
		}
	}
	return true
}

// TopicPeers is the fewest peers this node knows subscribed to any one
// of its topics.
func (n *Node) TopicPeers() int {
	fewest := -1
	for _, k := range p2p.Kinds {
		if c := n.net.TopicPeers(k); fewest < 0 || c < fewest {
			fewest = c
		}
	}
	return max(fewest, 0)
}

// Submit accepts an output as gateway: it splits it into claims, stores the
// job, starts its tally and gossips it. It returns as soon as the job is
// stored and published: the result is provisional until the certificate.
// A request it refuses is a *RequestError.
func (n *Node) Submit(ctx context.Context, req api.VerifyRequest) (*api.Job, error) {
	return n.gw.submit(ctx, req)
}

// Generate answers a prompt with the node's generator and submits the
// answer for verification like Submit. The answer comes back at once,
// provisional; its certificate follows.
func (n *Node) Generate(ctx context.Context, req api.GenerateRequest) (*api.Job, error) {
	return n.gw.generate(ctx, req)
}

// WaitFinal blocks until the job has a certificate on this node or ctx ends.
// The certificate may be the node's own copy, shared with other callers:
// it is not to be changed.
func (n *Node) WaitFinal(ctx context.Context, id common.Hash) (*consensus.Certificate, error) {
	return n.obs.waitFinal(ctx, id)
}

// Evidence lists the stored equivocation evidence and the penalty record
// it makes against each validator.
func (n *Node) Evidence() (*api.EvidenceList, error) { return n.obs.evidence() }

// ValidatorStats reports every validator's agreement and equivocations.
// A validator is flagged when, over at least MinFlagSamples decided
// verdicts, its agreement is not above one half by two standard deviations
// of a fair coin (agreed - decided/2 <= sqrt(decided)): no better than
// chance, as a random guesser or a liar.
func (n *Node) ValidatorStats() ([]api.ValidatorStats, error) { return n.obs.validatorStats() }

// publish gossips v on the kind's topic, bundled with the other messages
// of its kind published at the same moment (p2p.Network.PublishQueued).
func (e *env) publish(kind string, v any) {
	if c, ok := v.(*consensus.Certificate); ok && kind == p2p.KindCerts {
		// Certificates are gossiped in their binary form.
		e.publishRaw(kind, consensus.CertificateBinary(c))
		return
	}
	data, err := encode(v)
	if err != nil {
		log.Errorw("encode message", "kind", kind, "err", err)
		return
	}
	e.publishRaw(kind, data)
}

// publishRaw is publish of an encoded message.
func (e *env) publishRaw(kind string, data []byte) {
	if err := e.net.PublishQueued(kind, data); err != nil && e.ctx.Err() == nil {
		log.Warnw("publish failed", "kind", kind, "err", err)
	}
}

// publishWhenReady publishes once the node has topic peers (or after a
// bounded wait), for messages sent while the mesh may still be forming.
func (e *env) publishWhenReady(kind string, v any) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if e.set.Len() > 1 {
		if err := e.net.WaitForPeers(ctx, 1); err != nil && e.ctx.Err() != nil {
			return
		}
	}
	e.publish(kind, v)
}

func newNonce() common.Hash {
	var h common.Hash
	rand.Read(h[:]) // never fails (crypto/rand, Go 1.24+)
	return h
}

// SigningStats is what the node has signed since it started: its ballots
// (validator), the jobs it announced and the certificates it issued
// (gateway), and how many messages each signature covered.
type SigningStats struct {
	Ballots      BatchStats `json:"ballots"`
	Jobs         BatchStats `json:"jobs"`
	Certificates BatchStats `json:"certificates"`
}

// SigningStats returns the node's signing counts so far (valid after
// Start).
func (n *Node) SigningStats() SigningStats {
	return SigningStats{Ballots: n.val.signing.batchStats(), Jobs: n.gw.jobSigning.batchStats(), Certificates: n.gw.signing.batchStats()}
}

// StoreStats returns the node's store write counts so far (valid after
// Start).
func (n *Node) StoreStats() store.Stats { return n.store.Stats() }
