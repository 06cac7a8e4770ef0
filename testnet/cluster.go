package testnet

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
)

// Cluster is a running testnet, whether its nodes run in this process
// (Network) or each as its own process (ProcessCluster). Load generators
// and schedules drive either through it.
type Cluster interface {
	// Gateways is the number of nodes that accept submissions; gateway gw
	// is node gw, node0 first.
	Gateways() int
	// Submit sends an output to gateway gw and returns the job id.
	Submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error)
	// Await returns the job's final certificate once gateway gw has it.
	Await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error)
	// Perturb applies a to the node named name.
	Perturb(ctx context.Context, name string, a Action) error
	// Stop stops every node.
	Stop() error
}

var (
	_ Cluster = (*Network)(nil)
	_ Cluster = (*ProcessCluster)(nil)
)

// Gateways is the number of nodes.
func (n *Network) Gateways() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.nodes)
}

// Submit submits req to node gw (node.Submit: no HTTP).
func (n *Network) Submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error) {
	j, err := n.nodeAt(gw).Submit(ctx, req)
	if err != nil {
		return common.Hash{}, err
	}
	return j.JobID, nil
}

// Await waits for the job's final certificate on node gw (node.WaitFinal).
func (n *Network) Await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error) {
	return n.nodeAt(gw).WaitFinal(ctx, id)
}

// ProcessCluster is a testnet whose nodes run as processes, driven over
// their HTTP APIs.
type ProcessCluster struct {
	layout  *Layout
	procs   *Processes
	clients []*client.Client
	set     *consensus.ValidatorSet
	perturb PerturbOptions
}

// ProcessClusterOptions configure StartProcessCluster.
type ProcessClusterOptions struct {
	// Process starts the nodes.
	Process ProcessOptions
	// HTTPClient makes the API requests (default: http.DefaultClient).
	HTTPClient *http.Client
}

// StartProcessCluster starts every node of l as its own process
// (StartProcesses) and waits until all are healthy or ctx ends, stopping
// them if they do not become healthy.
func StartProcessCluster(ctx context.Context, l *Layout, opts ProcessClusterOptions) (*ProcessCluster, error) {
	g, err := consensus.LoadGenesis(l.GenesisPath())
	if err != nil {
		return nil, err
	}
	set, err := g.ValidatorSet()
	if err != nil {
		return nil, err
	}
	procs, err := StartProcesses(l, opts.Process)
	if err != nil {
		return nil, fmt.Errorf("start nodes: %w", err)
	}
	if err := procs.WaitHealthy(ctx, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("wait for nodes: %w", err), procs.Stop())
	}
	c := &ProcessCluster{
		layout: l, procs: procs, set: set,
		// Restarts are attached to this program, like its other nodes.
		perturb: PerturbOptions{Command: opts.Process.Command, GlobalArgs: opts.Process.GlobalArgs, Attached: true},
	}
	var copts []client.Option
	if opts.HTTPClient != nil {
		copts = append(copts, client.WithHTTPClient(opts.HTTPClient))
	}
	for _, info := range l.Nodes {
		c.clients = append(c.clients, client.New(info.API, copts...))
	}
	return c, nil
}

// Processes are the node processes.
func (c *ProcessCluster) Processes() *Processes { return c.procs }

// Gateways is the number of nodes.
func (c *ProcessCluster) Gateways() int { return len(c.clients) }

// Submit posts req to node gw's /v1/verify.
func (c *ProcessCluster) Submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error) {
	j, err := c.clients[gw].Submit(ctx, req)
	if err != nil {
		return common.Hash{}, err
	}
	return j.JobID, nil
}

// Await waits for the job's certificate on node gw and verifies it against
// the genesis (client.Await).
func (c *ProcessCluster) Await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error) {
	return c.clients[gw].Await(ctx, id, c.set, client.AwaitOptions{})
}

// Perturb applies a to the node named name (the package's Perturb; a
// restarted node is attached to this program).
func (c *ProcessCluster) Perturb(ctx context.Context, name string, a Action) error {
	return Perturb(ctx, c.layout, name, a, c.perturb)
}

// Stop stops every node (Processes.Stop).
func (c *ProcessCluster) Stop() error { return c.procs.Stop() }

// nodeAt is node i as it runs now (a restart replaces it).
func (n *Network) nodeAt(i int) *node.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[i]
}
