package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

var log = logging.Logger("verity/p2p")

// Errors of Network's methods. They are wrapped with detail; test with
// errors.Is.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("p2p network closed")
	// ErrMessageTooLarge is returned by Publish for data over
	// Config.MaxMessageSize.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrRejected is returned by Publish when the local validator rejects
	// the message.
	ErrRejected = errors.New("message rejected by local validator")
	// ErrIgnored is returned by Publish when the local validator ignores the
	// message.
	ErrIgnored = errors.New("message ignored by local validator")
	// ErrBadAddr is returned for a multiaddr that is not a full peer address.
	ErrBadAddr = errors.New("bad peer address")
)

// Message is a gossip message that passed validation.
type Message struct {
	// Kind is the topic kind, one of Kinds.
	Kind string
	// From is the peer that sent the message to this node: its author or a
	// peer forwarding it. It is this node's own id for messages it
	// published.
	From peer.ID
	// Data is the message's data. It is shared with other subscribers of
	// the same kind and must not be modified.
	Data []byte
	// Local reports whether this node published the message.
	Local bool
	// ValidatorData is the value the kind's DataValidatorFunc returned, or
	// nil for a plain ValidatorFunc.
	ValidatorData any
}

// scoreSnapshot is the latest set of peer scores from pubsub's inspector.
type scoreSnapshot struct {
	mu     sync.Mutex
	scores map[peer.ID]float64
}

// Network is a node's libp2p host with gossipsub joined to the topics of
// its network. Its methods are safe for concurrent use.
type Network struct {
	cfg    Config
	host   host.Host
	ps     *pubsub.PubSub
	topics map[string]*pubsub.Topic
	stats  *statsTracer
	scores scoreSnapshot
	gate   *connGate
	// penalties count misbehaviour gossipsub does not see; bans counts
	// the peers banned since New.
	penalties *penaltyBook
	bans      atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards closed, queues and wg.Add against Close
	closed bool
	queues map[queueKey]*sendQueue // destinations with a queued send under way
	once   sync.Once
	err    error
}

// New starts a node's libp2p host and gossipsub, joins every topic of Kinds
// on cfg.NetworkID with its validator, and starts keeping
// connections to the bootstrap peers, retrying with backoff until ctx ends or
// Close. Close must be called to release the host even if ctx ends first.
func New(ctx context.Context, cfg Config) (*Network, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	priv, err := cfg.identity()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	self, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("derive peer id: %w", err)
	}
	bootstrap, err := parseBootstrap(cfg.Bootstrap, self)
	if err != nil {
		return nil, err
	}

	var n *Network
	gate := newConnGate(func(p peer.ID) bool { return n.scoreBelowGraylist(p) })
	opts := []libp2p.Option{
		libp2p.ConnectionGater(gate),
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DisableRelay(),
	}
	if cfg.PrometheusRegisterer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.PrometheusRegisterer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	limits, release, err := peerLimitOptions(cfg.MaxPeers, cfg.PrometheusRegisterer != nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	// After the host options, which may bring a resource manager of their
	// own (peerLimitOptions' fallback then builds none).
	h, err := libp2p.New(append(append(opts, cfg.HostOptions...), limits...)...)
	if err != nil {
		release()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}

	n = &Network{
		cfg:       cfg,
		host:      h,
		topics:    make(map[string]*pubsub.Topic, len(Kinds)),
		stats:     newStatsTracer(),
		gate:      gate,
		penalties: newPenaltyBook(),
		scores:    scoreSnapshot{scores: map[peer.ID]float64{}},
	}
	n.ctx, n.cancel = context.WithCancel(ctx)
	if err := n.startPubSub(); err != nil {
		n.cancel()
		_ = h.Close()
		return nil, err
	}

	h.SetStreamHandler(peersProtocol(cfg.NetworkID), n.handlePeers)
	// A connection that passed the gater just before its peer was banned
	// is closed as soon as it is up.
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if gate.isBanned(c.RemotePeer()) {
			go c.Close()
		}
	}})
	for _, ai := range bootstrap {
		h.ConnManager().Protect(ai.ID, "verity-bootstrap")
	}
	if len(bootstrap) > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.keepConnected(bootstrap)
		}()
	}
	log.Infow("p2p network started", "peer", self, "addrs", h.Addrs(), "network", cfg.NetworkID, "bootstrap", len(bootstrap))
	return n, nil
}

// validateQueueFactor sizes the validation queue relative to QueueSize.
const validateQueueFactor = 4

// startPubSub creates gossipsub, joins the topics and registers their
// validators.
func (n *Network) startPubSub() error {
	cfg := n.cfg
	gsParams := pubsub.DefaultGossipSubParams()
	gsParams.HeartbeatInterval = cfg.HeartbeatInterval
	gsParams.HeartbeatInitialDelay = min(50*time.Millisecond, cfg.HeartbeatInterval)
	// A smaller mesh than the default (D 6): every message is also flood-
	// published to all connected peers, so mesh forwarding mostly makes
	// duplicates. Measured with verity bench at light load: 25 nodes,
	// 4833 -> 2941 messages per certificate and p50 90 -> 75 ms; 10 nodes,
	// 754 -> 467 and 23 -> 18 ms; 5 nodes unchanged.
	gsParams.D, gsParams.Dlo, gsParams.Dhi, gsParams.Dscore, gsParams.Dout = 4, 3, 6, 2, 1

	ps, err := pubsub.NewGossipSub(n.ctx, n.host,
		pubsub.WithGossipSubParams(gsParams),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(cfg.MaxMessageSize+rpcOverhead),
		pubsub.WithPeerOutboundQueueSize(cfg.QueueSize),
		// Copies of one message arriving from several mesh peers at once all
		// enter the validation queue before the first is marked seen.
		pubsub.WithValidateQueueSize(validateQueueFactor*cfg.QueueSize),
		pubsub.WithValidateThrottle(len(Kinds)*cfg.QueueSize),
		// No peer exchange on prune: a node short of peers asks its
		// bootstrap peers for more (discovery.go). With it, a gateway that
		// every validator stays connected to, and that many graft, prunes
		// them each with peers to dial, which their connection managers
		// then trim: at 400 simulated validators with five such gateways,
		// hundreds of dials were under way at any moment
		// (docs/simulation.md, "Five gateways").
		pubsub.WithPeerExchange(false),
		pubsub.WithFloodPublish(true),
		pubsub.WithRawTracer(n.stats),
		pubsub.WithPeerScore(scoreParams(cfg.NetworkID, n.penalties.score), scoreThresholds()),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.recordScores), cfg.ScoreInspectPeriod),
	)
	if err != nil {
		return fmt.Errorf("start gossipsub: %w", err)
	}
	n.ps = ps

	for _, kind := range Kinds {
		name := TopicName(cfg.NetworkID, kind)
		err := ps.RegisterTopicValidator(name, n.topicValidator(kind, cfg.dataValidator(kind)),
			pubsub.WithValidatorTimeout(cfg.ValidatorTimeout),
			pubsub.WithValidatorConcurrency(cfg.QueueSize),
		)
		if err != nil {
			return fmt.Errorf("register validator of %s: %w", name, err)
		}
		t, err := ps.Join(name)
		if err != nil {
			return fmt.Errorf("join %s: %w", name, err)
		}
		// Relay announces the topic to peers and joins its mesh, so that
		// the node forwards every kind whether or not it subscribes. The
		// relay ends with the gossipsub context.
		if _, err := t.Relay(); err != nil {
			return fmt.Errorf("relay %s: %w", name, err)
		}
		n.topics[kind] = t
	}
	return nil
}

// messageID is the content hash of a message's data: the same bytes are one
// message whoever publishes them.
func messageID(m *pb.Message) string {
	sum := sha256.Sum256(m.Data)
	return string(sum[:])
}

// topicValidator adapts a DataValidatorFunc to pubsub. Oversized data is
// rejected before the validator sees it. A bundle (bundle.go) is judged
// message by message. A validator that panics is a bug in this node, not
// misbehaviour of the sender: the message is ignored.
func (n *Network) topicValidator(kind string, v DataValidatorFunc) pubsub.ValidatorEx {
	maxSize := n.cfg.MaxMessageSize
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > maxSize {
			return pubsub.ValidationReject
		}
		var verdict Verdict
		var data any
		if isBundle(m.Data) {
			verdict, data = n.validateBundle(ctx, kind, from, m.Data, v)
		} else {
			verdict, data = callValidator(ctx, kind, from, m.Data, v)
		}
		switch verdict {
		case Accept:
			m.ValidatorData = data
			return pubsub.ValidationAccept
		case Reject:
			log.Debugw("message rejected", "kind", kind, "from", from)
			return pubsub.ValidationReject
		default:
			return pubsub.ValidationIgnore
		}
	}
}

// callValidator calls v on one message; a panic is an Ignore.
func callValidator(ctx context.Context, kind string, from peer.ID, data []byte, v DataValidatorFunc) (verdict Verdict, value any) {
	defer func() {
		if r := recover(); r != nil {
			log.Errorw("topic validator panicked; message ignored", "kind", kind, "from", from, "panic", r)
			verdict, value = Ignore, nil
		}
	}()
	return v(ctx, from, data)
}

// bundled is the ValidatorData of an accepted bundle: its accepted
// messages and their validators' values, delivered one by one.
type bundled struct {
	items  [][]byte
	values []any
}

// validateBundle judges each message of a bundle (bundle.go): Reject if
// the bundle is malformed or any message is rejected, Ignore if all are
// ignored, else Accept with the accepted messages as a *bundled. Messages
// are judged in parallel, on as many goroutines as the bundle's share of
// the validation throttle allows (judgeParallel).
func (n *Network) validateBundle(ctx context.Context, kind string, from peer.ID, data []byte, v DataValidatorFunc) (Verdict, any) {
	items, err := decodeBundle(data)
	if err != nil {
		log.Debugw("malformed bundle", "kind", kind, "from", from, "err", err)
		return Reject, nil
	}
	verdicts, values := judgeParallel(ctx, items, func(ctx context.Context, it []byte) (Verdict, any) {
		return callValidator(ctx, kind, from, it, v)
	})
	out := &bundled{}
	for i, vd := range verdicts {
		switch vd {
		case Reject:
			return Reject, nil
		case Accept:
			out.items = append(out.items, items[i])
			out.values = append(out.values, values[i])
		}
	}
	if len(out.items) == 0 {
		return Ignore, nil
	}
	return Accept, out
}

// judgeParallel calls judge on every item, on up to GOMAXPROCS goroutines,
// and returns the verdicts and values in the items' order. Once an item is
// rejected the items not started yet are not judged (their verdict stays
// Ignore): the whole bundle is refused anyway.
func judgeParallel(ctx context.Context, items [][]byte, judge func(context.Context, []byte) (Verdict, any)) ([]Verdict, []any) {
	verdicts := make([]Verdict, len(items))
	values := make([]any, len(items))
	for i := range verdicts {
		verdicts[i] = Ignore
	}
	workers := min(runtime.GOMAXPROCS(0), len(items))
	var next atomic.Int64
	var rejected atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !rejected.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				verdicts[i], values[i] = judge(ctx, items[i])
				if verdicts[i] == Reject {
					rejected.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return verdicts, values
}

func (n *Network) recordScores(scores map[peer.ID]float64) {
	n.scores.mu.Lock()
	n.scores.scores = scores
	n.scores.mu.Unlock()
	n.banGraylisted(scores)
}

// parseBootstrap parses full peer multiaddrs, merging addresses of one peer
// and dropping self.
func parseBootstrap(addrs []string, self peer.ID) ([]peer.AddrInfo, error) {
	byID := map[peer.ID]int{}
	var out []peer.AddrInfo
	for _, s := range addrs {
		ai, err := parsePeerAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap: %w", ErrInvalidConfig, err)
		}
		if ai.ID == self {
			continue
		}
		if i, ok := byID[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		byID[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

func parsePeerAddr(s string) (*peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadAddr, s, err)
	}
	if len(ai.Addrs) == 0 {
		return nil, fmt.Errorf("%w %q: no transport address", ErrBadAddr, s)
	}
	return ai, nil
}

// PeerID returns the node's peer id, PeerIDFromKey of its key.
func (n *Network) PeerID() peer.ID { return n.host.ID() }

// Host returns the libp2p host.
func (n *Network) Host() host.Host { return n.host }

// Addrs returns the node's listen addresses as full multiaddrs ending in
// /p2p/<id>, ready for another node's Bootstrap or Connect.
func (n *Network) Addrs() []multiaddr.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		// Only possible for an empty peer id, which a running host never has.
		log.Errorw("build p2p addrs", "err", err)
		return nil
	}
	return addrs
}

// Publish validates data with the kind's local validator and gossips it. The
// message is delivered to this node's own subscriptions too, once. Publish
// does not wait for peers: a message published before the mesh forms reaches
// only the peers connected then; see WaitForPeers. Publishing bytes already
// delivered (within pubsub's two-minute seen-message window) is a no-op,
// since the message id is the hash of the data.
func (n *Network) Publish(ctx context.Context, kind string, data []byte) error {
	t, err := n.topic(kind)
	if err != nil {
		return err
	}
	if n.isClosed() {
		return fmt.Errorf("publish %s: %w", kind, ErrClosed)
	}
	if len(data) > n.cfg.MaxMessageSize {
		return fmt.Errorf("publish %s: %w: %d bytes, limit %d", kind, ErrMessageTooLarge, len(data), n.cfg.MaxMessageSize)
	}
	if err := t.Publish(ctx, data); err != nil {
		var verr pubsub.ValidationError
		if errors.As(err, &verr) {
			switch verr.Reason {
			case pubsub.RejectValidationFailed:
				return fmt.Errorf("publish %s: %w", kind, ErrRejected)
			case pubsub.RejectValidationIgnored:
				return fmt.Errorf("publish %s: %w", kind, ErrIgnored)
			}
		}
		if n.ctx.Err() != nil {
			return fmt.Errorf("publish %s: %w", kind, ErrClosed)
		}
		return fmt.Errorf("publish %s: %w", kind, err)
	}
	return nil
}

// Subscribe returns a channel of the messages of a kind that pass validation,
// including the ones this node publishes, each once. Every call makes an
// independent subscription. The channel is closed by Close.
//
// The consumer must keep up: up to Config.QueueSize messages wait in the
// subscription's buffer, and pubsub drops messages for a subscription whose
// buffer is full (counted in Stats.SubscriberDropped).
func (n *Network) Subscribe(kind string) (<-chan Message, error) {
	t, err := n.topic(kind)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(n.cfg.QueueSize))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", kind, err)
	}
	ch := make(chan Message)
	self := n.host.ID()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(ch)
		defer sub.Cancel()
		for {
			m, err := sub.Next(n.ctx)
			if err != nil {
				return
			}
			msg := Message{
				Kind:          kind,
				From:          m.ReceivedFrom,
				Data:          m.Data,
				Local:         m.ReceivedFrom == self,
				ValidatorData: m.ValidatorData,
			}
			if b, ok := m.ValidatorData.(*bundled); ok {
				// A bundle's accepted messages, one by one.
				for i, it := range b.items {
					msg.Data, msg.ValidatorData = it, b.values[i]
					if !n.send(ch, msg) {
						return
					}
				}
				continue
			}
			if !n.send(ch, msg) {
				return
			}
		}
	}()
	return ch, nil
}

// send hands msg to a subscription's channel, or reports false once the
// network closes.
func (n *Network) send(ch chan<- Message, msg Message) bool {
	select {
	case ch <- msg:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// TopicPeers returns how many connected peers are subscribed to the kind's
// topic, or 0 for an unknown kind.
func (n *Network) TopicPeers(kind string) int {
	t, err := n.topic(kind)
	if err != nil {
		return 0
	}
	return len(t.ListPeers())
}

// ConnectedPeers returns the peers the host is connected to.
func (n *Network) ConnectedPeers() []peer.ID { return n.host.Network().Peers() }

// PeerScore returns the gossipsub score of a connected peer as last
// snapshotted (every Config.ScoreInspectPeriod), and whether there is one.
func (n *Network) PeerScore(p peer.ID) (float64, bool) {
	n.scores.mu.Lock()
	defer n.scores.mu.Unlock()
	s, ok := n.scores.scores[p]
	return s, ok
}

// PeerScores returns a copy of the last snapshot of peer scores.
func (n *Network) PeerScores() map[peer.ID]float64 {
	n.scores.mu.Lock()
	defer n.scores.mu.Unlock()
	return maps.Clone(n.scores.scores)
}

// Stats returns counters of what pubsub did with messages, and of the
// peers banned.
func (n *Network) Stats() Stats {
	s := n.stats.snapshot()
	s.Banned = n.bans.Load()
	return s
}

// MeshPeers returns how many peers are in this node's gossipsub mesh of the
// kind's topic: the peers it forwards every message to. It is 0 for an
// unknown kind and at most the gossipsub Dhi (12).
func (n *Network) MeshPeers(kind string) int {
	if !ValidKind(kind) {
		return 0
	}
	return n.stats.meshPeers(TopicName(n.cfg.NetworkID, kind))
}

// waitPoll is how often WaitForPeers and WaitForMesh check peer counts.
const waitPoll = 20 * time.Millisecond

// WaitForPeers blocks until every topic has at least minPeers connected
// subscribed peers, ctx ends or the network closes. A message published then
// reaches those peers directly (flood publishing); forwarding beyond them
// needs the mesh, formed at the next heartbeat: see WaitForMesh.
func (n *Network) WaitForPeers(ctx context.Context, minPeers int) error {
	return n.waitFor(ctx, "peers", minPeers, n.TopicPeers)
}

// WaitForMesh blocks until every topic's mesh has at least minPeers peers,
// ctx ends or the network closes. minPeers above the gossipsub D (4) may
// never be reached.
func (n *Network) WaitForMesh(ctx context.Context, minPeers int) error {
	return n.waitFor(ctx, "mesh peers", minPeers, n.MeshPeers)
}

func (n *Network) waitFor(ctx context.Context, what string, minPeers int, count func(kind string) int) error {
	ticker := time.NewTicker(waitPoll)
	defer ticker.Stop()
	for {
		ready := true
		for _, kind := range Kinds {
			if count(kind) < minPeers {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			have := make([]string, 0, len(Kinds))
			for _, kind := range Kinds {
				have = append(have, fmt.Sprintf("%s %d", kind, count(kind)))
			}
			return fmt.Errorf("wait for %d %s per topic (have %s): %w",
				minPeers, what, strings.Join(have, ", "), ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// Connect dials a peer by full multiaddr (with /p2p/<id>), bypassing the
// dial backoff of earlier failures.
func (n *Network) Connect(ctx context.Context, addr string) error {
	ai, err := parsePeerAddr(addr)
	if err != nil {
		return err
	}
	if ai.ID == n.host.ID() {
		return fmt.Errorf("%w %q: own address", ErrBadAddr, addr)
	}
	if n.isClosed() {
		return ErrClosed
	}
	if err := n.host.Connect(network.WithForceDirectDial(ctx, "verity connect"), *ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return nil
}

// Close stops the bootstrap loop, subscriptions, gossipsub and the host.
// Subscription channels are closed before Close returns. Close is idempotent.
func (n *Network) Close() error {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		n.wg.Wait()
		if err := n.host.Close(); err != nil {
			n.err = fmt.Errorf("close libp2p host: %w", err)
		}
		log.Infow("p2p network closed", "peer", n.host.ID())
	})
	return n.err
}

func (n *Network) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

func (n *Network) topic(kind string) (*pubsub.Topic, error) {
	t, ok := n.topics[kind]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	return t, nil
}
