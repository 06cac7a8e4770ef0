package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/models"
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

// Options configure a node. FromConfig builds them from a config.toml.
type Options struct {
	Name       string
	Key        *ecdsa.PrivateKey
	Genesis    *consensus.Genesis
	Verifier   Verifier
	Decomposer Decomposer // default: the rule-based decomposer
	// Generator answers prompts for POST /v1/generate; nil disables it.
	Generator Generator

	DataDir     string
	ListenAddrs []string
	Bootstrap   []string
	// APIListen is the HTTP API address; empty runs no HTTP server.
	APIListen    string
	MaxBodyBytes int64
	// Tokens maps a client name to its bearer token. When any is set,
	// submitting and recording actions need a valid token; reads do not,
	// but a token names the reader in the audit trail.
	Tokens map[string]string
	// RateLimit is the sustained rate of POST requests each client may
	// make per second, with bursts of RateBurst (default 50/s, burst 100).
	// A negative RateLimit disables the limit.
	RateLimit float64
	RateBurst int
	// MaxPendingJobs bounds the jobs this node aggregates at once; beyond
	// it, submissions get 503 (default 10000).
	MaxPendingJobs int
	// AdminToken is the bearer token of the admin routes, which no client
	// token may equal. Empty: the node draws one at each start and writes
	// it to DataDir/admin.token (AdminTokenFile), readable by its owner.
	AdminToken string
	// APILimits bound the time, connections and event streams HTTP
	// clients can hold.
	APILimits APILimits

	Quorum         consensus.Quorum
	Replication    uint32
	Deadline       time.Duration
	MaxDeadline    time.Duration
	MaxOutputBytes int
	// JudgeConcurrency bounds the jobs judged at once (default 64).
	JudgeConcurrency int
	// EventBuffer and EventBufferBytes bound the recent events kept for
	// replay to clients that reconnect: at most that many events and that
	// much data (default 65536 events, 64 MiB), the oldest dropped first.
	EventBuffer      int
	EventBufferBytes int

	// GossipBallots publishes this validator's ballots on the ballots
	// topic, for every node to see. By default (false) a ballot goes
	// straight to the job's gateway over a libp2p stream, falling back to
	// the topic when the gateway cannot be reached: ballot traffic is then
	// n messages per job instead of n², other nodes learn a job's ballots
	// from its certificate, copycats see nothing to copy, and equivocation
	// is detected by the gateway, which gossips the evidence.
	GossipBallots bool

	// Ballots decides what this validator's ballots say (default
	// Honest); the testnet package has policies that misbehave, for
	// fault tests.
	Ballots BallotPolicy

	// Now is the clock (default time.Now).
	Now func() time.Time

	// HostOptions are extra libp2p options for the node's host (see
	// p2p.Config.HostOptions): they run the node over a simulated network.
	// Nil for a real one.
	HostOptions []libp2p.Option
}

// Defaults of Options, and of the config.toml settings that set them: the
// one place each is written.
const (
	DefaultDeadline       = 10 * time.Second
	DefaultMaxDeadline    = 10 * time.Minute
	DefaultMaxOutputBytes = 256 << 10
	DefaultMaxBodyBytes   = 1 << 20
)

func (o *Options) setDefaults() {
	if o.Decomposer == nil {
		o.Decomposer = claims.RuleDecomposer{}
	}
	if o.Ballots == nil {
		o.Ballots = Honest{}
	}
	if o.Quorum.Kind == "" {
		o.Quorum = consensus.DefaultQuorum
	}
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	if o.MaxDeadline == 0 {
		o.MaxDeadline = DefaultMaxDeadline
	}
	if o.MaxOutputBytes == 0 {
		o.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.JudgeConcurrency == 0 {
		o.JudgeConcurrency = 64
	}
	if o.RateLimit == 0 {
		o.RateLimit = 50
	}
	if o.RateBurst == 0 {
		o.RateBurst = 100
	}
	if o.MaxPendingJobs == 0 {
		o.MaxPendingJobs = 10000
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = 1 << 16
	}
	if o.EventBufferBytes == 0 {
		o.EventBufferBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.APILimits.setDefaults()
}

// FromConfig loads the key, genesis and verifier a config names. The
// keystore password comes from the config's password file or environment
// variable.
func FromConfig(cfg *Config) (Options, error) {
	g, err := consensus.LoadGenesis(cfg.Path(cfg.Genesis))
	if err != nil {
		return Options{}, err
	}
	pw, err := sigs.ReadPassword(cfg.Path(cfg.PasswordFile), cfg.PasswordEnv)
	if err != nil {
		return Options{}, fmt.Errorf("keystore password: %w", err)
	}
	key, err := sigs.UnlockKey(cfg.Path(cfg.KeyFile), pw)
	if err != nil {
		return Options{}, err
	}
	var v Verifier
	if b := cfg.Verifier.Backend; b == models.KindModel || b == models.KindOpenAI {
		v, err = models.NewModelVerifier(cfg.Verifier.spec(models.KindModel))
	} else {
		v, err = claims.NewVerifier(claims.VerifierSpec{
			Backend:       cfg.Verifier.Backend,
			KnowledgeBase: cfg.Path(cfg.Verifier.KnowledgeBase),
			Accuracy:      cfg.Verifier.Accuracy,
			Seed:          cfg.Verifier.Seed,
			Inner:         cfg.Verifier.Inner,
			Validator:     cfg.Name,
		})
	}
	if err != nil {
		return Options{}, fmt.Errorf("verifier: %w", err)
	}
	var dec Decomposer
	switch cfg.Decomposer.Backend {
	case "", "rule":
	case models.KindModel, models.KindOpenAI:
		if dec, err = models.NewModelDecomposer(cfg.Decomposer.spec(models.KindModel)); err != nil {
			return Options{}, fmt.Errorf("decomposer: %w", err)
		}
	default:
		return Options{}, fmt.Errorf("decomposer: unknown backend %q (want rule or model)", cfg.Decomposer.Backend)
	}
	var gen Generator
	if g := cfg.Generator; g.Backend != "" {
		spec := g.spec(g.Backend)
		spec.HallucinationRate, spec.Seed, spec.KnowledgeBase = g.HallucinationRate, g.Seed, cfg.Path(g.KnowledgeBase)
		if gen, err = models.NewGenerator(spec); err != nil {
			return Options{}, fmt.Errorf("generator: %w", err)
		}
	}
	q, err := consensus.ParseQuorum(cfg.Consensus.Quorum)
	if err != nil {
		return Options{}, fmt.Errorf("config consensus.quorum: %w", err)
	}
	apiListen := cfg.API.Listen
	if apiListen == "off" {
		apiListen = ""
	}
	var adminToken string
	if f := cfg.API.AdminTokenFile; f != "" {
		if adminToken, err = readTokenFile(cfg.Path(f)); err != nil {
			return Options{}, fmt.Errorf("config api.admin_token_file: %w", err)
		}
	}
	return Options{
		Name:           cfg.Name,
		Key:            key,
		Genesis:        g,
		Verifier:       v,
		Decomposer:     dec,
		Generator:      gen,
		DataDir:        cfg.Path(cfg.DataDir),
		ListenAddrs:    cfg.P2P.Listen,
		Bootstrap:      cfg.P2P.Bootstrap,
		APIListen:      apiListen,
		MaxBodyBytes:   cfg.API.MaxBodyBytes,
		Tokens:         cfg.API.Tokens,
		RateLimit:      cfg.API.RateLimit,
		RateBurst:      cfg.API.RateBurst,
		AdminToken:     adminToken,
		APILimits:      cfg.API.limits(),
		MaxPendingJobs: cfg.Consensus.MaxPendingJobs,
		GossipBallots:  cfg.P2P.GossipBallots,
		Quorum:         q,
		Replication:    cfg.Consensus.Replication,
		Deadline:       cfg.Consensus.Deadline.Duration,
		MaxDeadline:    cfg.Consensus.MaxDeadline.Duration,
		MaxOutputBytes: cfg.Consensus.MaxOutputBytes,
	}, nil
}

// Node is a validator node: it judges jobs assigned to it, aggregates the
// jobs it accepted as gateway into certificates, and stores every
// certificate it sees.
type Node struct {
	opts   Options
	set    *consensus.ValidatorSet
	signer sigs.Signer
	pos    int // this validator's position in the set

	store *store.Store
	net   *p2p.Network
	api   *http.Server
	apiLn net.Listener
	// adminToken is the bearer token of the admin routes.
	adminToken string
	// conns holds the API's connections; streams counts its event streams.
	conns   *connLimiter
	streams *streamGate

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	judge  chan struct{} // semaphore

	mu      sync.Mutex
	agg     map[common.Hash]*aggJob
	finals  map[common.Hash]*finalWait // waiters of jobs not yet final
	stopped bool

	events  *eventHub
	metrics *metrics
	book    *ballotBook
	// announce is what the node saw of recent job announcements and
	// ballots, so that a replay gets no second answer; catchUp the jobs
	// whose certificates it waits for.
	announce *announceBook
	catchUp  *catchUp
	// sigCache holds every ballot signature this node recovered or made,
	// so that none is recovered twice.
	sigCache *consensus.SignatureCache
	limiter  *rateLimiter

	statsMu sync.Mutex
	stats   map[common.Address]*agreement
}

// aggJob is a job this node accepted as gateway and is still tallying.
type aggJob struct {
	msg       *JobMessage
	claims    []claims.Claim
	tally     *consensus.Tally
	timer     *time.Timer
	announced []bool // claim.decided already emitted
	accepted  time.Time
	// reannounce fires every reannounceInterval while the job is pending.
	reannounce *time.Timer
	resends    uint64
	// events is held while the job's events are published, so that they
	// go out in tally order without the node-wide lock.
	events sync.Mutex
}

func (j *aggJob) stopTimers() {
	if j.timer != nil {
		j.timer.Stop()
	}
	if j.reannounce != nil {
		j.reannounce.Stop()
	}
}

// New checks opts and builds a node; Start runs it.
func New(opts Options) (*Node, error) {
	opts.setDefaults()
	if opts.Key == nil {
		return nil, errors.New("node: no key")
	}
	if opts.Genesis == nil {
		return nil, errors.New("node: no genesis")
	}
	if opts.Verifier == nil {
		return nil, errors.New("node: no verifier")
	}
	if opts.DataDir == "" {
		return nil, errors.New("node: no data directory")
	}
	if err := opts.Quorum.Validate(); err != nil {
		return nil, fmt.Errorf("node: default quorum: %w", err)
	}
	if err := opts.APILimits.validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for name, tok := range opts.Tokens {
		if opts.AdminToken != "" && tok == opts.AdminToken {
			return nil, fmt.Errorf("node: client token %q is the admin token; give the admin routes a token of their own", name)
		}
	}
	set, err := opts.Genesis.ValidatorSet()
	if err != nil {
		return nil, err
	}
	signer := sigs.NewKeySigner(opts.Key)
	pos, _, ok := set.Lookup(signer.Address())
	if !ok {
		return nil, fmt.Errorf("node: key %s is not a validator of network %d", signer.Address().Hex(), set.NetworkID())
	}
	if opts.Name == "" {
		opts.Name = set.At(pos).Name
	}
	return &Node{
		opts:     opts,
		set:      set,
		signer:   signer,
		pos:      pos,
		judge:    make(chan struct{}, opts.JudgeConcurrency),
		agg:      make(map[common.Hash]*aggJob),
		finals:   make(map[common.Hash]*finalWait),
		events:   newEventHub(opts.EventBuffer, opts.EventBufferBytes, opts.Now()),
		metrics:  newMetrics(),
		book:     newBallotBook(4096),
		announce: newAnnounceBook(1 << 16),
		catchUp:  newCatchUp(),
		sigCache: consensus.NewSignatureCache(1 << 16),
		limiter:  newRateLimiter(opts.RateLimit, opts.RateBurst, 10000),
		streams:  &streamGate{max: int64(opts.APILimits.MaxEventStreams)},
		stats:    make(map[common.Address]*agreement),
	}, nil
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
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	// The network lives as long as the node, not as long as ctx.
	n.net, err = p2p.New(n.ctx, p2p.Config{
		Key:         n.opts.Key,
		ListenAddrs: n.opts.ListenAddrs,
		Bootstrap:   n.opts.Bootstrap,
		NetworkID:   n.set.NetworkID(),
		HostOptions: n.opts.HostOptions,
		DataValidators: map[string]p2p.DataValidatorFunc{
			p2p.KindJobs:     n.validateJob,
			p2p.KindBallots:  n.validateBallot,
			p2p.KindCerts:    n.validateCert,
			p2p.KindEvidence: n.validateEvidence,
		},
	})
	if err != nil {
		return fmt.Errorf("node: p2p: %w", err)
	}
	// Validators decode and verify each message once; handlers receive the
	// decoded value as the message's ValidatorData.
	for kind, handle := range map[string]func(any){
		p2p.KindJobs:     n.onJob,
		p2p.KindBallots:  n.onBallot,
		p2p.KindCerts:    n.onCert,
		p2p.KindEvidence: n.onEvidence,
	} {
		ch, err := n.net.Subscribe(kind)
		if err != nil {
			return fmt.Errorf("node: subscribe %s: %w", kind, err)
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
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
		}()
	}
	// Ballots sent straight to this node as gateway are taken whatever
	// this node's own GossipBallots.
	if err := n.net.HandleDirect(p2p.KindBallots, MaxBallotMessageSize, n.directBallot); err != nil {
		return fmt.Errorf("node: direct ballots: %w", err)
	}
	n.net.HandleCertSync(syncLimits, n.serveCertSync)
	if err := n.store.Certificates(func(c *consensus.Certificate) bool { n.countAgreement(c); return true }); err != nil {
		return fmt.Errorf("node: read certificates: %w", err)
	}
	if err := n.resume(); err != nil {
		return fmt.Errorf("node: resume: %w", err)
	}
	// Certificates missed while down come from peers once one connects.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.catchUpLoop()
	}()
	if n.opts.APIListen != "" {
		if err := n.setupAdminToken(); err != nil {
			return err
		}
		n.apiLn, err = net.Listen("tcp", n.opts.APIListen)
		if err != nil {
			return fmt.Errorf("node: api: %w", err)
		}
		n.conns = newConnLimiter(n.apiLn, connectionCap(n.opts.APILimits.MaxConnections), time.Now)
		n.registerAPIMetrics(n.conns)
		n.api = newAPIServer(n.Handler(), n.opts.APILimits, n.conns)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.api.Serve(n.conns); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Errorw("api server stopped", "err", err)
			}
		}()
	}
	log.Infow("node started", "name", n.opts.Name, "address", n.Address().Hex(), "peer", n.net.PeerID().String(), "api", n.APIAddr())
	return nil
}

// Stop stops the node and waits for every goroutine it started.
func (n *Node) Stop() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	for _, j := range n.agg {
		j.stopTimers()
	}
	n.mu.Unlock()
	var errs []error
	// Cancel first: long polls and event streams end, so the API server's
	// shutdown does not wait for them.
	if n.cancel != nil {
		n.cancel()
	}
	n.events.closeAll()
	if n.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.api.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if n.net != nil {
		if err := n.net.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.wg.Wait()
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

// goTracked runs f as a goroutine that Stop waits for. Call it only from
// a goroutine Stop also waits for, or with n.mu held and n.stopped false,
// so that no Add can follow Stop's Wait.
func (n *Node) goTracked(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) publish(kind string, v any) {
	data, err := encode(v)
	if err != nil {
		log.Errorw("encode message", "kind", kind, "err", err)
		return
	}
	if err := n.net.Publish(n.ctx, kind, data); err != nil && n.ctx.Err() == nil {
		log.Warnw("publish failed", "kind", kind, "err", err)
	}
}

// publishWhenReady publishes once the node has topic peers (or after a
// bounded wait), for messages sent while the mesh may still be forming.
func (n *Node) publishWhenReady(kind string, v any) {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	if n.set.Len() > 1 {
		if err := n.net.WaitForPeers(ctx, 1); err != nil && n.ctx.Err() != nil {
			return
		}
	}
	n.publish(kind, v)
}

// finalWait is the waiters of one job: a channel closed when its
// certificate is stored, and how many wait on it.
type finalWait struct {
	ch      chan struct{}
	waiters int
}

// waitFor registers a waiter of id and returns its channel and a release
// function; the entry is removed when its last waiter leaves or the job
// becomes final. Callers check the store after registering, so no wake-up
// is lost.
func (n *Node) waitFor(id common.Hash) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, ok := n.finals[id]
	if !ok {
		w = &finalWait{ch: make(chan struct{})}
		n.finals[id] = w
	}
	w.waiters++
	return w.ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		w.waiters--
		if w.waiters == 0 && n.finals[id] == w {
			delete(n.finals, id)
		}
	}
}

// notifyFinalLocked wakes everyone waiting for id. n.mu must be held.
func (n *Node) notifyFinalLocked(id common.Hash) {
	if w, ok := n.finals[id]; ok {
		close(w.ch)
		delete(n.finals, id)
	}
}

// WaitFinal blocks until the job has a certificate on this node or ctx ends.
func (n *Node) WaitFinal(ctx context.Context, id common.Hash) (*consensus.Certificate, error) {
	ch, release := n.waitFor(id)
	defer release()
	if c, err := n.store.Certificate(id); err == nil {
		return c, nil
	}
	select {
	case <-ch:
		return n.store.Certificate(id)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.ctx.Done():
		return nil, errors.New("node stopped")
	}
}

func newNonce() common.Hash {
	var h common.Hash
	rand.Read(h[:]) // never fails (crypto/rand, Go 1.24+)
	return h
}
