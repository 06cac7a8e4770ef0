package testnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
)

// ErrNotReady is returned when nodes did not all become ready before the
// context ended. It is wrapped together with the context's error.
var ErrNotReady = errors.New("nodes not ready")

// readyPoll is how often the runners check whether nodes are ready.
const readyPoll = 50 * time.Millisecond

// Network is a set of nodes running in this process.
type Network struct {
	mu    sync.Mutex
	nodes []*node.Node
	// opts are the options each node started with, for restarts.
	opts []node.Options
	// down marks the nodes a perturbation stopped.
	down    map[int]bool
	genesis *consensus.Genesis
	// tempDir is removed by Stop when the network created it.
	tempDir string
}

// Nodes returns the running nodes, node0 first.
func (n *Network) Nodes() []*node.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.nodes)
}

// Genesis is the network's genesis.
func (n *Network) Genesis() *consensus.Genesis { return n.genesis }

// Stop stops every node, the last started first, and waits for them.
func (n *Network) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for i := len(n.nodes) - 1; i >= 0; i-- {
		if err := n.nodes[i].Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", n.nodes[i].Name(), err))
		}
	}
	if n.tempDir != "" {
		if err := os.RemoveAll(n.tempDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WaitReady waits until every node is Ready or ctx ends.
func (n *Network) WaitReady(ctx context.Context) error {
	return waitReady(ctx, n.Nodes())
}

func waitReady(ctx context.Context, nodes []*node.Node) error {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		var waiting []string
		for _, nd := range nodes {
			if !nd.Ready() {
				waiting = append(waiting, nd.Name())
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrNotReady, strings.Join(waiting, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// StartInProcess starts every node of the testnet in dir in this process,
// from its config.toml, and waits until all of them are ready. ctx bounds
// start-up only; Stop stops the network.
func StartInProcess(ctx context.Context, dir string) (*Network, error) {
	layout, err := LoadLayout(dir)
	if err != nil {
		return nil, err
	}
	tn := &Network{}
	for _, info := range layout.Nodes {
		cfg, err := node.LoadConfig(info.Home)
		if err != nil {
			return nil, errors.Join(err, tn.Stop())
		}
		opts, err := node.FromConfig(cfg)
		if err == nil {
			err = ApplyBehaviour(cfg, &opts)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s: %w", info.Name, err), tn.Stop())
		}
		if tn.genesis == nil {
			tn.genesis = opts.Genesis
		}
		if err := tn.start(ctx, opts); err != nil {
			return nil, errors.Join(err, tn.Stop())
		}
	}
	if err := tn.WaitReady(ctx); err != nil {
		return nil, errors.Join(err, tn.Stop())
	}
	return tn, nil
}

func (n *Network) start(ctx context.Context, opts node.Options) error {
	nd, err := node.New(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Name, err)
	}
	// The network outlives ctx, which bounds start-up only: the node gets a
	// context that is never cancelled, and Stop ends it.
	if err := nd.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("%s: %w", opts.Name, err)
	}
	n.mu.Lock()
	n.nodes = append(n.nodes, nd)
	n.opts = append(n.opts, opts)
	n.mu.Unlock()
	return nil
}

// EphemeralOptions configure NewEphemeral.
type EphemeralOptions struct {
	// Nodes is the number of validators, at least 1.
	Nodes int
	// NetworkID is the genesis network id (default 1337).
	NetworkID uint64
	// Stake is every validator's stake (default 100).
	Stake uint64
	// Policy is the genesis security policy (default
	// consensus.DefaultPolicy).
	Policy *consensus.Policy
	// Verifier returns node i's verifier. Default: the "kb+arithmetic"
	// backend over the shipped sample knowledge base.
	Verifier func(i int) node.Verifier
	// APIs serves each node's HTTP API on 127.0.0.1 at a free port.
	APIs bool
	// Dir holds the nodes' stores, one subdirectory per node. Empty: a
	// temporary directory that Stop removes.
	Dir string
	// Options, when set, adjusts node i's options before it starts.
	Options func(i int, o *node.Options)
}

// NewEphemeral starts a network of fresh random keys that listens on
// loopback at free ports, and waits until every node is ready. Node0 starts
// first; the others bootstrap to its actual address. ctx bounds start-up
// only; Stop stops the network.
func NewEphemeral(ctx context.Context, opts EphemeralOptions) (*Network, error) {
	if opts.Nodes < 1 || opts.Nodes > consensus.MaxValidators {
		return nil, fmt.Errorf("%w: %d nodes: need 1 to %d", ErrInvalidOptions, opts.Nodes, consensus.MaxValidators)
	}
	if opts.NetworkID == 0 {
		opts.NetworkID = DefaultNetworkID
	}
	if opts.Stake == 0 {
		opts.Stake = DefaultStake
	}
	keys := make([]*ecdsa.PrivateKey, opts.Nodes)
	policy := consensus.DefaultPolicy()
	if opts.Policy != nil {
		policy = *opts.Policy
	}
	g := &consensus.Genesis{NetworkID: opts.NetworkID, Policy: &policy}
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		keys[i] = k
		g.Validators = append(g.Validators, consensus.Validator{
			Name: nodeName(i), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: opts.Stake,
		})
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	tn := &Network{genesis: g}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "verity-testnet-")
		if err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
		dir, tn.tempDir = tmp, tmp
	}
	var bootstrap []string
	for i, key := range keys {
		o := node.Options{
			Name:        nodeName(i),
			Key:         key,
			Genesis:     g,
			DataDir:     filepath.Join(dir, nodeName(i)),
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Bootstrap:   slices.Clone(bootstrap),
		}
		if opts.APIs {
			o.APIListen = "127.0.0.1:0"
		}
		if opts.Verifier != nil {
			o.Verifier = opts.Verifier(i)
		} else {
			v, err := claims.NewVerifier(claims.VerifierSpec{Backend: DefaultBackend, Validator: o.Name})
			if err != nil {
				return nil, errors.Join(fmt.Errorf("verifier: %w", err), tn.Stop())
			}
			o.Verifier = v
		}
		if opts.Options != nil {
			opts.Options(i, &o)
		}
		if err := tn.start(ctx, o); err != nil {
			return nil, errors.Join(err, tn.Stop())
		}
		if i == 0 {
			bootstrap = dialAddrs(tn.nodes[0])
		}
	}
	if err := tn.WaitReady(ctx); err != nil {
		return nil, errors.Join(err, tn.Stop())
	}
	return tn, nil
}

func nodeName(i int) string { return fmt.Sprintf("node%d", i) }

// dialAddrs returns a node's listen multiaddrs, each ending in /p2p/<id>.
func dialAddrs(n *node.Node) []string {
	suffix := "/p2p/" + n.PeerID().String()
	var out []string
	for _, a := range n.P2PAddrs() {
		if !strings.Contains(a, "/p2p/") {
			a += suffix
		}
		out = append(out, a)
	}
	return out
}

// Stores lists every node's store file, node0 first.
func (n *Network) Stores() []StoreRef {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]StoreRef, len(n.opts))
	for i, o := range n.opts {
		out[i] = StoreRef{Name: o.Name, Path: filepath.Join(o.DataDir, StoreFile)}
	}
	return out
}

// Perturb applies a to the node named name:
//
//   - kill stops the node (Stop: its store stays, and in one process this
//     is a clean stop rather than a crash);
//   - restart starts a new node with the options the node started with, its
//     store and the addresses it actually listened on (so that peers that
//     bootstrapped to it find it again), and waits until it is ready or
//     ctx ends;
//   - disconnect and connect cut the node off its peers and reconnect it,
//     directly on its p2p network (what the node's POST /v1/admin/p2p
//     does for a node in its own process);
//   - pause and resume are not possible in one process: ErrUnsupported.
func (n *Network) Perturb(ctx context.Context, name string, a Action) error {
	n.mu.Lock()
	i := slices.IndexFunc(n.nodes, func(nd *node.Node) bool { return nd.Name() == name })
	if i < 0 {
		n.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	nd := n.nodes[i]
	n.mu.Unlock()
	switch a {
	case ActionKill:
		return n.kill(i, nd)
	case ActionRestart:
		return n.restart(ctx, i, nd)
	case ActionPause, ActionResume:
		return fmt.Errorf("%w: %s in one process: run the testnet as processes (testnet up)", ErrUnsupported, a)
	case ActionDisconnect, ActionConnect:
		return n.setOffline(i, nd, a)
	}
	_, err := ParseAction(string(a))
	return err
}

// setOffline applies disconnect or connect to node i.
func (n *Network) setOffline(i int, nd *node.Node, a Action) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down[i] {
		return fmt.Errorf("%s %s: %w", a, nd.Name(), ErrNotRunning)
	}
	nd.Network().SetOffline(a == ActionDisconnect)
	return nil
}

func (n *Network) kill(i int, nd *node.Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down[i] {
		return fmt.Errorf("kill %s: %w", nd.Name(), ErrNotRunning)
	}
	// Restart on the addresses the node actually listened on.
	var listen []string
	for _, a := range nd.P2PAddrs() {
		if j := strings.Index(a, "/p2p/"); j >= 0 {
			a = a[:j]
		}
		listen = append(listen, a)
	}
	o := n.opts[i]
	o.ListenAddrs = listen
	if addr := nd.APIAddr(); addr != "" {
		o.APIListen = addr
	}
	if err := nd.Stop(); err != nil {
		return fmt.Errorf("kill %s: %w", nd.Name(), err)
	}
	n.opts[i] = o
	n.stopped(i, true)
	return nil
}

func (n *Network) restart(ctx context.Context, i int, old *node.Node) error {
	n.mu.Lock()
	if !n.down[i] {
		n.mu.Unlock()
		return fmt.Errorf("restart %s: %w", old.Name(), ErrRunning)
	}
	o := n.opts[i]
	n.mu.Unlock()
	nd, err := node.New(o)
	if err != nil {
		return fmt.Errorf("restart %s: %w", o.Name, err)
	}
	if err := nd.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("restart %s: %w", o.Name, err)
	}
	n.mu.Lock()
	n.nodes[i] = nd
	n.stopped(i, false)
	n.mu.Unlock()
	return waitReady(ctx, []*node.Node{nd})
}

// stopped records whether node i is down. n.mu must be held.
func (n *Network) stopped(i int, down bool) {
	if n.down == nil {
		n.down = make(map[int]bool)
	}
	n.down[i] = down
}
