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
	nodes   []*node.Node
	genesis *consensus.Genesis
	// tempDir is removed by Stop when the network created it.
	tempDir string
}

// Nodes returns the running nodes, node0 first.
func (n *Network) Nodes() []*node.Node { return slices.Clone(n.nodes) }

// Genesis is the network's genesis.
func (n *Network) Genesis() *consensus.Genesis { return n.genesis }

// Stop stops every node, the last started first, and waits for them.
func (n *Network) Stop() error {
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
	return waitReady(ctx, n.nodes)
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
	n.nodes = append(n.nodes, nd)
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
	g := &consensus.Genesis{NetworkID: opts.NetworkID}
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
