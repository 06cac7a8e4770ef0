package sim

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	"github.com/quic-go/quic-go"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/fx"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/testnet"
)

// member is one validator of a simulated network.
type member struct {
	name   string
	key    *ecdsa.PrivateKey
	stake  uint64
	region int
	ip     net.IP
	addr   string // listen multiaddr on the simulated network
	dial   string // addr with /p2p/<peer id>
	// behaviour is the adversary kind, "" for honest.
	behaviour testnet.Behaviour
	ballots   node.BallotPolicy
	opts      node.Options

	mu   sync.Mutex
	node *node.Node // nil while down
	// conns are the simulated sockets this member opened, for byte counts.
	conns []*simnet.SimConn
	// closed counts the bytes of sockets closed when the member left.
	closedSent, closedRcvd int64
}

// sentRcvd is the bytes this member's sockets sent and received so far.
func (m *member) sentRcvd() (sent, rcvd int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sent, rcvd = m.closedSent, m.closedRcvd
	for _, c := range m.conns {
		st := c.Stats()
		sent += int64(st.BytesSent)
		rcvd += int64(st.BytesRcvd)
	}
	return sent, rcvd
}

// running returns the member's node, nil while it is down.
func (m *member) running() *node.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// world is a simulated network of real nodes.
type world struct {
	sc      *Scenario
	genesis *consensus.Genesis
	set     *consensus.ValidatorSet
	members []*member
	// byIP maps the last 4 bytes of an address to a member index.
	byIP   map[[4]byte]int
	oneWay [][]time.Duration
	sim    *simnet.Simnet
	// zeroLatency, while set, delivers every packet at once: for the
	// calibration jobs that measure processing alone.
	zeroLatency atomic.Bool
	dir         string
}

// seededRand is the scenario's random source for one purpose, so that
// adding draws for one purpose does not change the others.
func seededRand(seed uint64, purpose string) *rand.Rand {
	h := crypto.Keccak256([]byte("verity.sim."+purpose), binary.BigEndian.AppendUint64(nil, seed))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// seededKey is validator i's key for a seed.
func seededKey(seed uint64, i int) *ecdsa.PrivateKey {
	for ctr := uint32(0); ; ctr++ {
		b := binary.BigEndian.AppendUint64([]byte("verity.sim.key"), seed)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint32(b, ctr)
		if k, err := crypto.ToECDSA(crypto.Keccak256(b)); err == nil {
			return k
		}
	}
}

// stakes draws the validators' stakes.
func (s *Scenario) stakes() []uint64 {
	n := s.Validators
	out := make([]uint64, n)
	for i := range out {
		out[i] = s.Stake.Base
	}
	if s.Stake.Distribution == "zipf" {
		ranks := seededRand(s.Seed, "stake").Perm(n)
		for i := range out {
			v := math.Round(float64(s.Stake.Base) * float64(n) / math.Pow(float64(ranks[i]+1), s.Stake.Exponent))
			out[i] = max(uint64(v), 1)
		}
	}
	return out
}

// regions places the validators: region r gets round(share*n) of them
// (the largest remainders first, so that they add up to n), in an order
// shuffled by the seed.
func (s *Scenario) regions() []int {
	n := s.Validators
	counts := make([]int, len(s.Region))
	total := 0
	type rem struct {
		r int
		f float64
	}
	var rems []rem
	for r, reg := range s.Region {
		x := reg.Share * float64(n)
		counts[r] = int(math.Floor(x))
		total += counts[r]
		rems = append(rems, rem{r, x - math.Floor(x)})
	}
	for total < n {
		best := 0
		for k := range rems {
			if rems[k].f > rems[best].f {
				best = k
			}
		}
		counts[rems[best].r]++
		rems[best].f = -1
		total++
	}
	out := make([]int, 0, n)
	for r, c := range counts {
		for range c {
			out = append(out, r)
		}
	}
	out = out[:n]
	rng := seededRand(s.Seed, "regions")
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// adversaries chooses, for each [[adversary]] table in turn, validators in
// an order shuffled by the seed until they hold its stake share (at least
// one validator each).
func (s *Scenario) adversaries(stakes []uint64) []testnet.Behaviour {
	out := make([]testnet.Behaviour, len(stakes))
	var total uint64
	for _, st := range stakes {
		total += st
	}
	order := seededRand(s.Seed, "adversaries").Perm(len(stakes))
	next := 0
	for k, a := range s.Adversary {
		var held uint64
		for next < len(order) && (held == 0 || float64(held) < a.StakeShare*float64(total)) {
			// Stop short rather than overshoot by more than half a stake.
			v := order[next]
			if held > 0 && float64(held)+float64(stakes[v])/2 > a.StakeShare*float64(total) {
				break
			}
			out[v] = testnet.Behaviour{Kind: a.Kind, Delay: a.Delay.Duration, Jitter: a.Jitter.Duration, Seed: s.Seed + uint64(k)}
			held += stakes[v]
			next++
		}
	}
	return out
}

func simName(i int) string { return fmt.Sprintf("node%d", i) }

// build makes the members, the genesis and the simulated network; no node
// runs yet.
func build(sc *Scenario, dir string) (*world, error) {
	policy, err := sc.Policy.ConsensusPolicy()
	if err != nil {
		return nil, err
	}
	q, err := consensus.ParseQuorum(sc.Consensus.Quorum)
	if err != nil {
		return nil, err
	}
	oneWay, err := sc.latencyMatrix()
	if err != nil {
		return nil, err
	}
	w := &world{sc: sc, oneWay: oneWay, byIP: map[[4]byte]int{}, dir: dir}
	stakes := sc.stakes()
	regions := sc.regions()
	behaviours := sc.adversaries(stakes)
	w.genesis = &consensus.Genesis{NetworkID: sc.NetworkID, Policy: policy}
	for i := range sc.Validators {
		key := seededKey(sc.Seed, i)
		ip := simnet.IntToPublicIPv4(i)
		m := &member{
			name: simName(i), key: key, stake: stakes[i], region: regions[i], ip: ip,
			addr:      fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ip),
			behaviour: behaviours[i],
		}
		id, err := p2p.PeerIDFromKey(key)
		if err != nil {
			return nil, err
		}
		m.dial = m.addr + "/p2p/" + id.String()
		w.byIP[[4]byte(ip.To4())] = i
		w.members = append(w.members, m)
		w.genesis.Validators = append(w.genesis.Validators, consensus.Validator{
			Name: m.name, Address: crypto.PubkeyToAddress(key.PublicKey), Stake: stakes[i],
		})
	}
	if w.set, err = w.genesis.ValidatorSet(); err != nil {
		return nil, fmt.Errorf("%w: genesis: %w", ErrInvalidScenario, err)
	}
	// Every job must be within the policy's floor: check the committee
	// size on a sample assignment before starting anything.
	probe := consensus.JobParams{
		NetworkID: sc.NetworkID, ClaimCount: uint32(sc.Load.Claims), Quorum: q,
		Replication: sc.Consensus.Replication, Gateway: w.set.At(0).Address, Deadline: 1,
		Nonce: crypto.Keccak256Hash([]byte("verity.sim.probe")),
	}
	if err := probe.Validate(w.set); err != nil {
		return nil, fmt.Errorf("%w: replication %d under quorum %s: %w (lower [policy] byzantine_below or raise replication)",
			ErrInvalidScenario, sc.Consensus.Replication, q, err)
	}
	for _, m := range w.members {
		if m.ballots, err = m.behaviour.Policy(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidScenario, m.name, err)
		}
	}
	w.sim = &simnet.Simnet{LatencyFunc: w.latency}
	bootRng := seededRand(sc.Seed, "bootstrap")
	bw := int(sc.Network.BandwidthMbps * 1e6)
	var entry []int // the gateways every validator stays connected to
	if sc.Load.Gateways > 0 {
		entry = sc.gatewaySet()
	}
	for i, m := range w.members {
		// Each node bootstraps to up to three earlier nodes drawn by the
		// seed, so that no one node is everyone's entry point, and to the
		// scenario's gateways, if it names how many.
		var boot []string
		for _, j := range bootRng.Perm(max(i, 1))[:min(i, 3)] {
			boot = append(boot, w.members[j].dial)
		}
		for _, j := range entry {
			if j != i && !slices.Contains(boot, w.members[j].dial) {
				boot = append(boot, w.members[j].dial)
			}
		}
		connMgr := simConnManager(simPeersLow, simPeersHigh)
		if slices.Contains(entry, i) {
			// A gateway keeps a connection to every validator.
			connMgr = simConnManager(len(w.members)+simPeersLow, len(w.members)+simPeersHigh)
		}
		link := simnet.LinkSettings{BitsPerSecond: bw}
		m.opts = node.Options{
			Name:          m.name,
			Key:           m.key,
			Genesis:       w.genesis,
			Verifier:      claims.Arithmetic{},
			DataDir:       filepath.Join(dir, m.name),
			ListenAddrs:   []string{m.addr},
			Bootstrap:     boot,
			Quorum:        q,
			Replication:   sc.Consensus.Replication,
			Deadline:      sc.Consensus.Deadline.Duration,
			GossipBallots: sc.Consensus.GossipBallots,
			Ballots:       m.ballots,
			RateLimit:     -1,
			HostOptions: []libp2p.Option{
				quicSimnet(w.sim, simnet.NodeBiDiLinkSettings{Downlink: link, Uplink: link}, m),
				// Address discovery through identify stalls synctest
				// (go-libp2p's x/simlibp2p turns it off for that reason);
				// the resource manager's limits are kept out of the
				// simulation.
				libp2p.DisableIdentifyAddressDiscovery(),
				libp2p.ResourceManager(&network.NullResourceManager{}),
				connMgr,
			},
		}
	}
	return w, nil
}

// The connection manager of a simulated node. A validator's ballot goes
// straight to the job's gateway, so over a run a node meets most of the
// others and, with libp2p's default manager (trimming above 192
// connections), keeps them all: every one is a gossipsub topic peer whose
// heartbeat, scoring and QUIC timers the node pays for, and the cost per
// node grows with n. Trimmed down to simPeersLow once above
// simPeersHigh, a node keeps its mesh (gossipsub protects mesh peers), its
// bootstrap peers (the p2p layer protects them) and its newest
// connections (those younger than simPeersGrace, such as a gateway's
// from the validators judging its job).
const (
	simPeersLow   = 32
	simPeersHigh  = 64
	simPeersGrace = 5 * time.Second
)

// simConnManager gives each host a connection manager of its own that
// trims down to low connections once above high (a restarted node gets a
// new one: a host closes its manager).
func simConnManager(low, high int) libp2p.Option {
	return func(cfg *libp2p.Config) error {
		cm, err := connmgr.NewConnManager(low, high,
			connmgr.WithGracePeriod(simPeersGrace), connmgr.WithSilencePeriod(time.Second))
		if err != nil {
			return err
		}
		return cfg.Apply(libp2p.ConnectionManager(cm))
	}
}

// latency is the simulated network's latency function: one way between
// the regions of the packet's ends.
func (w *world) latency(p *simnet.Packet) time.Duration {
	if w.zeroLatency.Load() {
		return 0
	}
	a, ok1 := w.memberOf(p.From)
	b, ok2 := w.memberOf(p.To)
	if !ok1 || !ok2 {
		return 0
	}
	return w.oneWay[w.members[a].region][w.members[b].region]
}

func (w *world) memberOf(addr net.Addr) (int, bool) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, false
	}
	ip := u.IP.To4()
	if ip == nil {
		return 0, false
	}
	i, ok := w.byIP[[4]byte(ip)]
	return i, ok
}

// rtt is the round trip between members a and b.
func (w *world) rtt(a, b int) time.Duration {
	return w.oneWay[w.members[a].region][w.members[b].region] + w.oneWay[w.members[b].region][w.members[a].region]
}

// storePrealloc is the size a node's store file is given before its first
// start (sparse: it takes no space until written).
const storePrealloc = 256 << 20

// preallocStore creates the bbolt store file of a node at its full size
// before the node opens it. A store that outgrows its memory map remaps
// it, which waits for every read transaction to end; a node serving a
// peer's certificate sync holds one while it writes to the peer's stream.
// In virtual time a goroutine waiting for a lock does not let the clock
// move, so the stream write never completes and the simulation stops; in
// real time the writer waits for the slowest reading peer. A store mapped
// at its full size from the start never remaps during a run.
func preallocStore(dir string) error {
	path := filepath.Join(dir, "verity.db")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Truncate(path, storePrealloc)
}

// start starts member i's node.
func (w *world) start(ctx context.Context, i int) error {
	m := w.members[i]
	if err := preallocStore(m.opts.DataDir); err != nil {
		return fmt.Errorf("%s: store: %w", m.name, err)
	}
	nd, err := node.New(m.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	if err := nd.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	m.mu.Lock()
	m.node = nd
	m.mu.Unlock()
	return nil
}

// stop stops member i's node, keeping its store and its byte counts.
func (w *world) stop(i int) error {
	m := w.members[i]
	m.mu.Lock()
	nd := m.node
	m.node = nil
	m.mu.Unlock()
	if nd == nil {
		return nil
	}
	err := nd.Stop()
	m.mu.Lock()
	for _, c := range m.conns {
		st := c.Stats()
		m.closedSent += int64(st.BytesSent)
		m.closedRcvd += int64(st.BytesRcvd)
	}
	m.conns = nil
	m.mu.Unlock()
	return err
}

// close stops every node, then the simulated network.
func (w *world) close() error {
	var errs []error
	for i := len(w.members) - 1; i >= 0; i-- {
		if err := w.stop(i); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", w.members[i].name, err))
		}
	}
	w.sim.Close()
	return errors.Join(errs...)
}

// waitReady waits until every running node is ready, polling.
func (w *world) waitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		waiting := 0
		for _, m := range w.members {
			if nd := m.running(); nd != nil && !nd.Ready() {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d nodes not ready: %w", waiting, ctx.Err())
		case <-t.C:
		}
	}
}

// sourceIP makes quic-go's socket selection pick the simulated address.
type sourceIP struct{ ip atomic.Pointer[net.IP] }

func (s *sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) {
	return *s.ip.Load(), nil
}

// quicSimnet runs the host's QUIC transport on sim, like go-libp2p's
// x/simlibp2p.QUICSimnet, and records each simulated socket in m so that
// its bytes can be counted.
func quicSimnet(sim *simnet.Simnet, link simnet.NodeBiDiLinkSettings, m *member) libp2p.Option {
	src := &sourceIP{}
	opts := []quicreuse.Option{
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return src, nil }),
		quicreuse.OverrideListenUDP(func(_ string, address *net.UDPAddr) (net.PacketConn, error) {
			src.ip.Store(&address.IP)
			c := sim.NewEndpoint(address, link)
			m.mu.Lock()
			m.conns = append(m.conns, c)
			m.mu.Unlock()
			return c, nil
		}),
	}
	return libp2p.QUICReuse(
		func(l fx.Lifecycle, reset quic.StatelessResetKey, token quic.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
			cm, err := quicreuse.NewConnManager(reset, token, opts...)
			if err != nil {
				return nil, err
			}
			// A connection manager passed in this way is not closed by
			// the host: close it when the host stops.
			l.Append(fx.StopHook(cm.Close))
			return cm, nil
		}, opts...)
}
