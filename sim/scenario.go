package sim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// ErrInvalidScenario means a scenario cannot be read or describes no
// network the simulator can run.
var ErrInvalidScenario = errors.New("invalid scenario")

// Scenario is a simulation in TOML: the validators, where they are, the
// links between them, the consensus settings, the load, the adversaries and
// a schedule of nodes leaving and joining. docs/simulation.md documents
// the format; sim/examples holds examples.
type Scenario struct {
	// Seed fixes the keys, the placement in regions, the stakes, the
	// choice of adversaries, the load's claims and the churn (default 1).
	Seed uint64 `toml:"seed"`
	// Validators is the number of validators (at least 1).
	Validators int `toml:"validators"`
	// NetworkID of the genesis (default 1337).
	NetworkID uint64 `toml:"network_id"`

	Stake     StakeSpec               `toml:"stake"`
	Network   NetworkSpec             `toml:"network"`
	Region    []RegionSpec            `toml:"region"`
	Latency   []LatencySpec           `toml:"latency"`
	Consensus ConsensusSpec           `toml:"consensus"`
	Policy    *testnet.ManifestPolicy `toml:"policy"`
	Load      LoadSpec                `toml:"load"`
	Adversary []AdversarySpec         `toml:"adversary"`
	Churn     []ChurnSpec             `toml:"churn"`
}

// StakeSpec is the [stake] table: how stake is spread over validators.
type StakeSpec struct {
	// Distribution is "equal" (default) or "zipf": the validator of rank k
	// (1-based, ranks shuffled by the seed) holds Base*N/k^Exponent,
	// rounded, at least 1.
	Distribution string  `toml:"distribution"`
	Base         uint64  `toml:"base"`     // default 100
	Exponent     float64 `toml:"exponent"` // zipf only; default 1
}

// NetworkSpec is the [network] table.
type NetworkSpec struct {
	// BandwidthMbps is every node's uplink and downlink, each way
	// (default 100).
	BandwidthMbps float64 `toml:"bandwidth_mbps"`
}

// RegionSpec is one [[region]] table: a region and the share of the
// validators placed in it. Without any, the five default regions hold
// equal shares.
type RegionSpec struct {
	Name  string  `toml:"name"`
	Share float64 `toml:"share"`
}

// LatencySpec is one [[latency]] table: the round-trip time between two
// regions (or within one, when From and To are equal), overriding the
// default table. Links are symmetric: one way is half the round trip.
type LatencySpec struct {
	From  string  `toml:"from"`
	To    string  `toml:"to"`
	RTTMS float64 `toml:"rtt_ms"`
}

// ConsensusSpec is the [consensus] table: every gateway's job defaults.
type ConsensusSpec struct {
	// Quorum is "num/den" or "NofM" (default "2/3").
	Quorum string `toml:"quorum"`
	// Replication is the committee size of each claim: that many
	// validators drawn by stake (consensus.Assign); 0 (default) means
	// every validator judges every claim. The genesis [policy] must allow
	// it.
	Replication uint32 `toml:"replication"`
	// Deadline of each job (default 10s).
	Deadline node.Duration `toml:"deadline"`
	// GossipBallots gossips ballots to every node instead of sending them
	// to the gateway (node.Options.GossipBallots).
	GossipBallots bool `toml:"gossip_ballots"`
}

// LoadSpec is the [load] table: outputs submitted at a fixed rate to
// gateways drawn by the seed from the validators that never leave.
type LoadSpec struct {
	// Rate is outputs per second (default 1).
	Rate float64 `toml:"rate"`
	// Claims per output (default 5).
	Claims int `toml:"claims"`
	// FalseShare is the share of claims that are false (default 0.5).
	FalseShare *float64 `toml:"false_share"`
	// Warmup runs load that is not measured (default 2s); Duration is the
	// measured time (default 10s).
	Warmup   node.Duration `toml:"warmup"`
	Duration node.Duration `toml:"duration"`
	// Gateways is how many gateways the load is submitted to, drawn by
	// the seed among the validators that never leave. Every other
	// validator stays connected to each of them (they are among its
	// bootstrap peers, which it redials and its connection manager keeps),
	// as validators would to a network's few well-known entry points, and
	// a gateway keeps a connection to every validator. 0 (default): every
	// validator that never leaves is a gateway, and none is kept
	// connected.
	Gateways int `toml:"gateways"`
}

// AdversarySpec is one [[adversary]] table: validators holding StakeShare
// of the total stake, drawn by the seed, behave as Kind (one of the
// behaviours of testnet.Behaviour other than honest).
type AdversarySpec struct {
	Kind       string        `toml:"kind"`
	StakeShare float64       `toml:"stake_share"`
	Delay      node.Duration `toml:"delay"`
	Jitter     node.Duration `toml:"jitter"`
}

// Churn actions.
const (
	ChurnLeave = "leave"
	ChurnJoin  = "join"
)

// ChurnSpec is one [[churn]] table: At after the measured load starts
// (warm-up included), Count validators leave (stop; drawn by the seed among
// those running and not gateways), or Count of those that left join again
// (restart from their store).
type ChurnSpec struct {
	At     node.Duration `toml:"at"`
	Action string        `toml:"action"`
	Count  int           `toml:"count"`
}

// Defaults.
const (
	DefaultSeed          = 1
	DefaultNetworkID     = 1337
	DefaultStakeBase     = 100
	DefaultBandwidthMbps = 100
	DefaultRate          = 1
	DefaultClaims        = 5
	DefaultFalseShare    = 0.5
	DefaultWarmup        = 2 * time.Second
	DefaultDuration      = 10 * time.Second
	DefaultDeadline      = 10 * time.Second
)

// LoadScenario reads and checks a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	s, err := ParseScenario(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScenario decodes a scenario strictly (an unknown key is an error
// that names it and its line), fills in defaults and checks it.
func ParseScenario(src []byte) (*Scenario, error) {
	var s Scenario
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(&s)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrInvalidScenario, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%w: unknown key %q (see docs/simulation.md for the keys a scenario takes)", ErrInvalidScenario, und[0].String())
	}
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) setDefaults() {
	if s.Seed == 0 {
		s.Seed = DefaultSeed
	}
	if s.NetworkID == 0 {
		s.NetworkID = DefaultNetworkID
	}
	if s.Stake.Distribution == "" {
		s.Stake.Distribution = "equal"
	}
	if s.Stake.Base == 0 {
		s.Stake.Base = DefaultStakeBase
	}
	if s.Stake.Exponent == 0 {
		s.Stake.Exponent = 1
	}
	if s.Network.BandwidthMbps == 0 {
		s.Network.BandwidthMbps = DefaultBandwidthMbps
	}
	if len(s.Region) == 0 {
		for _, r := range DefaultRegions {
			s.Region = append(s.Region, RegionSpec{Name: r, Share: 1 / float64(len(DefaultRegions))})
		}
	}
	if s.Consensus.Quorum == "" {
		s.Consensus.Quorum = "2/3"
	}
	if s.Consensus.Deadline.Duration == 0 {
		s.Consensus.Deadline.Duration = DefaultDeadline
	}
	if s.Load.Rate == 0 {
		s.Load.Rate = DefaultRate
	}
	if s.Load.Claims == 0 {
		s.Load.Claims = DefaultClaims
	}
	if s.Load.FalseShare == nil {
		f := DefaultFalseShare
		s.Load.FalseShare = &f
	}
	if s.Load.Warmup.Duration == 0 {
		s.Load.Warmup.Duration = DefaultWarmup
	}
	if s.Load.Duration.Duration == 0 {
		s.Load.Duration.Duration = DefaultDuration
	}
}

// invalidScenario is an error wrapping ErrInvalidScenario.
func invalidScenario(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidScenario}, args...)...)
}

// Validate checks a scenario with its defaults filled in.
func (s *Scenario) Validate() error {
	for _, check := range []func() error{s.validateRanges, s.validateRules, s.validateRegions, s.validateAdversaries, s.validateChurn} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateRanges checks that each number lies in its range.
func (s *Scenario) validateRanges() error {
	switch {
	case s.Validators < 1 || s.Validators > consensus.MaxValidators:
		return invalidScenario("validators = %d: need 1 to %d", s.Validators, consensus.MaxValidators)
	case s.Stake.Distribution != "equal" && s.Stake.Distribution != "zipf":
		return invalidScenario("stake.distribution %q: want equal or zipf", s.Stake.Distribution)
	case s.Stake.Exponent < 0 || s.Stake.Exponent > 10:
		return invalidScenario("stake.exponent %g: want 0 to 10", s.Stake.Exponent)
	case s.Stake.Base > consensus.MaxTotalStake/uint64(s.Validators)/uint64(s.Validators):
		return invalidScenario("stake.base %d is too large for %d validators", s.Stake.Base, s.Validators)
	case s.Network.BandwidthMbps < 0.01 || s.Network.BandwidthMbps > 100000:
		return invalidScenario("network.bandwidth_mbps %g: want 0.01 to 100000", s.Network.BandwidthMbps)
	case s.Load.Rate < 0 || s.Load.Rate > 10000:
		return invalidScenario("load.rate %g: want 0 to 10000 outputs per second", s.Load.Rate)
	case s.Load.Claims < 1 || s.Load.Claims > 100:
		return invalidScenario("load.claims %d: want 1 to 100", s.Load.Claims)
	case *s.Load.FalseShare < 0 || *s.Load.FalseShare > 1:
		return invalidScenario("load.false_share %g: want 0 to 1", *s.Load.FalseShare)
	case s.Load.Gateways < 0 || s.Load.Gateways > s.Validators:
		return invalidScenario("load.gateways %d: want 0 to %d (the validators)", s.Load.Gateways, s.Validators)
	case s.Load.Warmup.Duration < 0 || s.Load.Duration.Duration <= 0:
		return invalidScenario("load.warmup must not be negative, load.duration must be positive")
	case s.Consensus.Deadline.Duration <= 0 || s.Consensus.Deadline.Duration > 10*time.Minute:
		return invalidScenario("consensus.deadline %s: want above 0 and at most 10m", s.Consensus.Deadline.Duration)
	}
	return nil
}

// validateRules checks the quorum rule and the security policy.
func (s *Scenario) validateRules() error {
	if _, err := consensus.ParseQuorum(s.Consensus.Quorum); err != nil {
		return invalidScenario("consensus.quorum: %w", err)
	}
	if _, err := s.Policy.ConsensusPolicy(); err != nil {
		return invalidScenario("policy: %w", err)
	}
	return nil
}

// validateRegions checks that the regions are named once each, that their
// shares add up to 1 and that their latencies make a matrix.
func (s *Scenario) validateRegions() error {
	var share float64
	for i, r := range s.Region {
		if r.Name == "" {
			return invalidScenario("region %d has no name", i+1)
		}
		if slices.ContainsFunc(s.Region[:i], func(o RegionSpec) bool { return o.Name == r.Name }) {
			return invalidScenario("region %q listed twice", r.Name)
		}
		if r.Share <= 0 {
			return invalidScenario("region %q: share %g must be positive", r.Name, r.Share)
		}
		share += r.Share
	}
	if share < 0.999 || share > 1.001 {
		return invalidScenario("region shares add up to %g, not 1", share)
	}
	_, err := s.latencyMatrix()
	return err
}

// validateAdversaries checks each adversary and that honest validators
// keep some stake.
func (s *Scenario) validateAdversaries() error {
	var advShare float64
	for i, a := range s.Adversary {
		b := testnet.Behaviour{Kind: a.Kind}
		if a.Kind == "" || a.Kind == testnet.BehaviourHonest {
			return invalidScenario("adversary %d: kind must name a misbehaviour (liar, random, copycat, silent, equivocator or slow)", i+1)
		}
		if err := b.Validate(); err != nil {
			return invalidScenario("adversary %d: %w", i+1, err)
		}
		if a.StakeShare <= 0 || a.StakeShare >= 1 {
			return invalidScenario("adversary %d (%s): stake_share %g must lie strictly between 0 and 1", i+1, a.Kind, a.StakeShare)
		}
		if a.Delay.Duration < 0 || a.Jitter.Duration < 0 {
			return invalidScenario("adversary %d (%s): negative delay or jitter", i+1, a.Kind)
		}
		advShare += a.StakeShare
	}
	if advShare >= 1 {
		return invalidScenario("adversaries hold %g of the stake: leave some to honest validators", advShare)
	}
	return nil
}

// validateChurn checks each churn event, that a validator always stays,
// and that no more join at a time than have left.
func (s *Scenario) validateChurn() error {
	left := 0
	for i, c := range s.Churn {
		if c.At.Duration < 0 {
			return invalidScenario("churn %d: negative time %s", i+1, c.At.Duration)
		}
		if c.Count < 1 {
			return invalidScenario("churn %d: count %d must be at least 1", i+1, c.Count)
		}
		switch c.Action {
		case ChurnLeave:
			left += c.Count
		case ChurnJoin:
		default:
			return invalidScenario("churn %d: action %q: want leave or join", i+1, c.Action)
		}
	}
	if left >= s.Validators {
		return invalidScenario("churn takes %d of %d validators away: at least one must stay as a gateway", left, s.Validators)
	}
	if s.Load.Gateways > s.Validators-left {
		return invalidScenario("load.gateways = %d but churn takes %d of %d validators away: gateways never leave", s.Load.Gateways, left, s.Validators)
	}
	down := 0
	for _, c := range s.churnSchedule() {
		if c.Action == ChurnLeave {
			down += c.Count
		} else if c.Count > down {
			return invalidScenario("churn at %s: %d join but only %d have left", c.At.Duration, c.Count, down)
		} else {
			down -= c.Count
		}
	}
	return nil
}

// churnSchedule is the churn ordered by time (stable for equal times).
func (s *Scenario) churnSchedule() []ChurnSpec {
	c := slices.Clone(s.Churn)
	slices.SortStableFunc(c, func(a, b ChurnSpec) int { return int(a.At.Duration - b.At.Duration) })
	return c
}

// gatewaySet is the validators the load is submitted to, in increasing
// order: Load.Gateways of those that never leave, drawn by the seed, or all
// of them when Load.Gateways is 0.
func (s *Scenario) gatewaySet() []int {
	pool := s.churnPool()
	var stay []int
	for i := range s.Validators {
		if !slices.Contains(pool, i) {
			stay = append(stay, i)
		}
	}
	if s.Load.Gateways == 0 || s.Load.Gateways >= len(stay) {
		return stay
	}
	perm := seededRand(s.Seed, "gateway set").Perm(len(stay))[:s.Load.Gateways]
	set := make([]int, len(perm))
	for i, k := range perm {
		set[i] = stay[k]
	}
	slices.Sort(set)
	return set
}

// churnPool is the validators churn may take away, drawn by the seed: they
// are never gateways.
func (s *Scenario) churnPool() []int {
	return seededRand(s.Seed, "churn").Perm(s.Validators)[:s.churned()]
}

// churned is the number of validators churn ever takes away: they are never
// gateways.
func (s *Scenario) churned() int {
	n := 0
	for _, c := range s.Churn {
		if c.Action == ChurnLeave {
			n += c.Count
		}
	}
	return n
}
