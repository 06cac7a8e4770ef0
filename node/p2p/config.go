package p2p

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	// DefaultMaxMessageSize bounds a message's data: 1 MiB for the largest
	// job or certificate plus 64 KiB of framing and signatures.
	DefaultMaxMessageSize = 1<<20 + 64<<10
	// DefaultQueueSize is the length of each peer's outbound queue, of the
	// validation queue and of each subscription's buffer.
	DefaultQueueSize = 4096
	// DefaultHeartbeatInterval suits a closed network on a LAN or one host.
	DefaultHeartbeatInterval = 200 * time.Millisecond
	// DefaultTargetPeers is a little above the gossipsub mesh degree D (4)
	// so that a mesh can form and be refreshed.
	DefaultTargetPeers = 8
	// DefaultValidatorTimeout bounds one call of a topic validator.
	DefaultValidatorTimeout = 5 * time.Second
	// DefaultBundleLinger: a busy destination's sends wait this long
	// for more messages to bundle with (measured in docs/performance.md,
	// "Bundles" and "Proofs of a batch").
	DefaultBundleLinger = 10 * time.Millisecond
	// DefaultBanDuration is how long a peer whose score fell below
	// GraylistThreshold is refused: the time its count of rejected
	// messages takes to decay to a hundredth.
	DefaultBanDuration = 10 * time.Minute
)

// rpcOverhead is what an RPC around one message adds to the message's data:
// topic name, protobuf framing, length prefix. Generously rounded up.
const rpcOverhead = 4 << 10

// defaultListenAddrs are used when Config.ListenAddrs is empty: loopback
// only, never every interface.
var defaultListenAddrs = []string{
	"/ip4/127.0.0.1/tcp/0",
	"/ip4/127.0.0.1/udp/0/quic-v1",
}

// ErrInvalidConfig is returned by New for a config it cannot run with.
var ErrInvalidConfig = errors.New("invalid p2p config")

// Verdict is a topic validator's decision on one message.
type Verdict int

// Verdicts. The zero Verdict is not one of them and is treated as Ignore.
const (
	// Accept delivers the message locally and forwards it to peers.
	Accept Verdict = iota + 1
	// Reject drops the message and penalises the peer that sent it through
	// peer scoring: for messages that fail decoding, shape or signature
	// checks, which an honest peer never forwards.
	Reject
	// Ignore drops the message quietly, without penalty: for duplicates,
	// messages about jobs already finished, or anything an honest peer may
	// forward.
	Ignore
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Ignore:
		return "ignore"
	default:
		return fmt.Sprintf("verdict(%d)", int(v))
	}
}

// ValidatorFunc decides on a message before it is delivered to local
// subscribers or forwarded to peers, including messages this node publishes
// (from is then the node's own peer id). from is the peer that sent the
// message to this node, not necessarily its author: messages carry no author.
// ctx ends when the validator timeout expires or the network closes.
//
// A validator is called concurrently and must not keep data after it returns.
type ValidatorFunc func(ctx context.Context, from peer.ID, data []byte) Verdict

// DataValidatorFunc is a ValidatorFunc that also returns a value for
// Message.ValidatorData, typically the decoded and verified message, so that
// a subscriber need not decode it or check its signature again. The value is
// ignored unless the verdict is Accept.
type DataValidatorFunc func(ctx context.Context, from peer.ID, data []byte) (Verdict, any)

// Config configures a Network. Key, NetworkID and a validator for every kind
// are required; the rest has defaults.
type Config struct {
	// Key is the validator's secp256k1 key. It is also the libp2p identity,
	// so the node's peer id is PeerIDFromKey(Key). Give Key or Identity.
	Key *ecdsa.PrivateKey
	// Identity is the libp2p key of the validator's key (Identity(key)),
	// for a caller that hands the network no raw key.
	Identity crypto.PrivKey
	// ListenAddrs are multiaddrs to listen on, such as /ip4/127.0.0.1/tcp/9000
	// and /ip4/127.0.0.1/udp/9000/quic-v1. TCP and QUIC are supported.
	// Default: loopback TCP and QUIC on random ports.
	ListenAddrs []string
	// Bootstrap are full multiaddrs, with /p2p/<id>, of peers to keep
	// connected to. The node's own address may be among them; it is skipped.
	Bootstrap []string
	// NetworkID names the network in topic names.
	NetworkID uint64
	// MaxMessageSize bounds the data of one message. Default
	// DefaultMaxMessageSize. Every node of a network must use the same value.
	MaxMessageSize int
	// Validators holds one validator per topic kind. Each kind needs a
	// validator here or in DataValidators, not both.
	Validators map[string]ValidatorFunc
	// DataValidators holds validators that also produce
	// Message.ValidatorData.
	DataValidators map[string]DataValidatorFunc

	// TargetPeers is how many connections the node seeks: while it has
	// fewer, it asks its bootstrap peers for the peers they know and dials
	// some. Default DefaultTargetPeers.
	TargetPeers int
	// MaxPeers, if above 0, is how many connections the node keeps: above
	// it, its connection manager trims down to five sixths of it, sparing
	// its bootstrap peers, its gossipsub mesh peers and connections less
	// than a minute old; and its resource manager admits MaxPeers and a
	// quarter more. 0: libp2p's defaults (trim to 160 above 192; about 192
	// inbound connections on a machine of 16 GiB). A gateway that a
	// network's validators stay connected to (they list it as a bootstrap
	// peer) sets it above the number of validators. With MaxPeers,
	// HostOptions must not set a connection or resource manager (libp2p
	// refuses two).
	MaxPeers int
	// QueueSize is the length of each peer's outbound queue, of the
	// validation queue and of each subscription's buffer. Default
	// DefaultQueueSize.
	QueueSize int
	// HeartbeatInterval is the gossipsub heartbeat. Default
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ValidatorTimeout bounds one validator call. Default
	// DefaultValidatorTimeout.
	ValidatorTimeout time.Duration
	// ScoreInspectPeriod is how often peer scores are snapshotted for
	// PeerScore. Default one second.
	ScoreInspectPeriod time.Duration
	// BanDuration is how long a peer whose score fell below
	// GraylistThreshold stays disconnected: dials to it and connections
	// from it are refused. Default DefaultBanDuration.
	BanDuration time.Duration
	// PrometheusRegisterer receives libp2p's metrics. Nil disables them.
	PrometheusRegisterer prometheus.Registerer
	// BundleLinger is how long a queued send (PublishQueued,
	// SendDirectQueued) to a busy destination waits for more messages to
	// bundle with (queue.go). Default DefaultBundleLinger; negative for
	// none.
	BundleLinger time.Duration
	// Loaded, if set, reports whether the node is under load (work
	// queued): queued sends then wait BundleLinger for more messages
	// whatever their own rate.
	Loaded func() bool
	// HostOptions are libp2p options applied after the network's own when
	// its host is built. They run the node over another transport, such
	// as a simulated network (go-libp2p's x/simlibp2p.QUICSimnet with
	// ListenAddrs on that network). The identity, connection gater and
	// topics stay the network's own. Nil for a real network.
	HostOptions []libp2p.Option
}

// withDefaults checks c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Key == nil && c.Identity == nil:
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, ErrNoKey)
	case c.Key != nil && c.Identity != nil:
		return c, fmt.Errorf("%w: both a key and an identity", ErrInvalidConfig)
	}
	if c.MaxMessageSize < 0 || c.QueueSize < 0 || c.TargetPeers < 0 || c.MaxPeers < 0 || c.HeartbeatInterval < 0 ||
		c.ValidatorTimeout < 0 || c.ScoreInspectPeriod < 0 || c.BanDuration < 0 {
		return c, fmt.Errorf("%w: negative size or duration", ErrInvalidConfig)
	}
	c.fillDefaults()
	if err := c.checkValidators(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// fillDefaults sets every zero size, duration and list to its default.
func (c *Config) fillDefaults() {
	orDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	orDefault(&c.TargetPeers, DefaultTargetPeers)
	orDefault(&c.QueueSize, DefaultQueueSize)
	orDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	orDefault(&c.ValidatorTimeout, DefaultValidatorTimeout)
	orDefault(&c.ScoreInspectPeriod, time.Second)
	orDefault(&c.BanDuration, DefaultBanDuration)
	orDefault(&c.BundleLinger, DefaultBundleLinger)
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = defaultListenAddrs
	}
}

// orDefault sets *v to def when it is zero.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// checkValidators checks that every kind has exactly one validator and
// that no validator is for an unknown kind.
func (c *Config) checkValidators() error {
	for kind := range c.Validators {
		if err := checkKind(kind); err != nil {
			return fmt.Errorf("validators: %w", err)
		}
	}
	for kind := range c.DataValidators {
		if err := checkKind(kind); err != nil {
			return fmt.Errorf("data validators: %w", err)
		}
	}
	for _, kind := range Kinds {
		v, dv := c.Validators[kind], c.DataValidators[kind]
		switch {
		case v == nil && dv == nil:
			return fmt.Errorf("no validator for topic kind %q", kind)
		case v != nil && dv != nil:
			return fmt.Errorf("two validators for topic kind %q", kind)
		}
	}
	return nil
}

// dataValidator returns the validator of kind in DataValidator form.
func (c Config) dataValidator(kind string) DataValidatorFunc {
	if dv := c.DataValidators[kind]; dv != nil {
		return dv
	}
	v := c.Validators[kind]
	return func(ctx context.Context, from peer.ID, data []byte) (Verdict, any) {
		return v(ctx, from, data), nil
	}
}
