package node

import (
	"crypto/ecdsa"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// Options configure a node. FromConfig builds them from a config.toml.
type Options struct {
	Name string
	// Key is the validator's key. New makes of it the node's signer
	// (sigs.Signer) and its libp2p identity (p2p.Identity), and keeps no
	// other copy.
	Key        *ecdsa.PrivateKey
	Genesis    *consensus.Genesis
	Verifier   Verifier
	Decomposer Decomposer // default: the rule-based decomposer
	// Generator answers prompts for POST /v1/generate; nil disables it.
	Generator Generator

	DataDir     string
	ListenAddrs []string
	Bootstrap   []string
	// MaxPeers, if above 0, is how many libp2p connections the node keeps
	// (p2p.Config.MaxPeers); 0 keeps libp2p's defaults.
	MaxPeers int
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
	// JudgeConcurrency bounds the jobs judged at once (default 64): the
	// ballot policy's judgments, not the signing, storing and sending of
	// the ballots they give, which go on without a slot.
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

	// Clock is the node's time: what it records and the timers of its
	// jobs (default the system clock).
	Clock Clock

	// Trace, when set, is called at each step of a job's way through this
	// node (TraceStep), in the goroutine that took the step: it must
	// return at once. verity bench uses it to take the time to a
	// certificate apart. Nil costs nothing.
	Trace func(TraceEvent)

	// HostOptions are extra libp2p options for the node's host (see
	// p2p.Config.HostOptions): they run the node over a simulated network.
	// Nil for a real one.
	HostOptions []libp2p.Option
}

// Defaults of Options, and of the config.toml settings that set them:
// the one place each is written. Options.setDefaults applies them, and
// Config.setDefaults takes them from there.
const (
	DefaultDeadline         = 10 * time.Second
	DefaultMaxDeadline      = 10 * time.Minute
	DefaultMaxOutputBytes   = 256 << 10
	DefaultMaxBodyBytes     = 1 << 20
	DefaultJudgeConcurrency = 64
	DefaultRateLimit        = 50
	DefaultRateBurst        = 100
	DefaultMaxPendingJobs   = 10000
	DefaultEventBuffer      = 1 << 16
	DefaultEventBufferBytes = 64 << 20
)

// setDefaults fills in every zero option with its default.
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
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	orDefault(&o.Deadline, DefaultDeadline)
	orDefault(&o.MaxDeadline, DefaultMaxDeadline)
	orDefault(&o.MaxOutputBytes, DefaultMaxOutputBytes)
	orDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&o.JudgeConcurrency, DefaultJudgeConcurrency)
	orDefault(&o.RateLimit, DefaultRateLimit)
	orDefault(&o.RateBurst, DefaultRateBurst)
	orDefault(&o.MaxPendingJobs, DefaultMaxPendingJobs)
	orDefault(&o.EventBuffer, DefaultEventBuffer)
	orDefault(&o.EventBufferBytes, DefaultEventBufferBytes)
	o.APILimits.setDefaults()
}

// orDefault sets *v to def when it is zero.
func orDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}
