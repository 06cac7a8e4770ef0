package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/testnet"
)

// target is a running network the load generator drives.
type target interface {
	// gateways is the number of nodes that accept submissions.
	gateways() int
	// submit sends an output to node gw and returns the job id.
	submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error)
	// await returns the job's certificate once node gw has it.
	await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error)
	// usage is the cumulative resource use of the network so far.
	usage() (usage, error)
	// peakMemory is the peak resident memory per node, and how it was
	// measured.
	peakMemory() (uint64, string, error)
	close() error
}

// usage is a cumulative snapshot; Run subtracts two of them.
type usage struct {
	cpu time.Duration
	// gossip is the sum of every node's p2p stats; nil when the nodes'
	// stats are out of reach (subprocess mode).
	gossip *p2p.Stats
}

// Scopes of the measurements, stated in the report.
const (
	latencyInProcess  = "node.Submit to node.WaitFinal on the gateway, in this process (no HTTP)"
	latencySubprocess = "HTTP POST /v1/verify to client.Await returning the verified certificate"
	cpuInProcess      = "this process: all nodes and the load generator"
	cpuSubprocess     = "node processes (utime+stime from /proc/<pid>/stat); the load generator excluded"
	memInProcess      = "max RSS of this process (all nodes and the load generator) divided by nodes"
	memSubprocess     = "largest VmHWM of the node processes"
)

// inProcess is a network of nodes running in this process.
type inProcess struct {
	net   *testnet.Network
	nodes []*node.Node
	dir   string // the stores, removed by close
}

func startInProcess(ctx context.Context, cfg *Config) (*inProcess, error) {
	dir, err := os.MkdirTemp(cfg.StoreDir, "verity-bench-")
	if err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes:    cfg.Nodes,
		Verifier: func(int) node.Verifier { return claims.Arithmetic{} },
		Dir:      dir,
		Options:  func(_ int, o *node.Options) { o.GossipBallots = cfg.GossipBallots },
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start in-process network: %w", err), os.RemoveAll(dir))
	}
	return &inProcess{net: net, nodes: net.Nodes(), dir: dir}, nil
}

func (t *inProcess) gateways() int { return len(t.nodes) }

func (t *inProcess) submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error) {
	j, err := t.nodes[gw].Submit(ctx, req)
	if err != nil {
		return common.Hash{}, err
	}
	return j.JobID, nil
}

func (t *inProcess) await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error) {
	return t.nodes[gw].WaitFinal(ctx, id)
}

func (t *inProcess) usage() (usage, error) {
	cpu, err := selfCPU()
	if err != nil {
		return usage{}, err
	}
	var g p2p.Stats
	for _, n := range t.nodes {
		addStats(&g, n.Network().Stats())
	}
	return usage{cpu: cpu, gossip: &g}, nil
}

func (t *inProcess) peakMemory() (uint64, string, error) {
	rss, err := selfMaxRSS()
	if err != nil {
		return 0, "", err
	}
	return rss / uint64(len(t.nodes)), memInProcess, nil
}

func (t *inProcess) close() error { return errors.Join(t.net.Stop(), os.RemoveAll(t.dir)) }

func addStats(sum *p2p.Stats, s p2p.Stats) {
	sum.Delivered += s.Delivered
	sum.Rejected += s.Rejected
	sum.Ignored += s.Ignored
	sum.Duplicates += s.Duplicates
	sum.ValidationDropped += s.ValidationDropped
	sum.OutboundDropped += s.OutboundDropped
	sum.SubscriberDropped += s.SubscriberDropped
}

// subprocess is a temporary testnet with one `verity node` process per
// node, driven over HTTP.
type subprocess struct {
	dir     string
	procs   *testnet.Processes
	clients []*client.Client
	set     *consensus.ValidatorSet
}

func startSubprocess(ctx context.Context, cfg *Config) (_ *subprocess, err error) {
	dir, err := os.MkdirTemp(cfg.StoreDir, "verity-bench-")
	if err != nil {
		return nil, fmt.Errorf("testnet directory: %w", err)
	}
	t := &subprocess{dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
		}
	}()
	layout, err := testnet.Init(testnet.InitOptions{
		Dir:      dir,
		Nodes:    cfg.Nodes,
		BasePort: cfg.BasePort,
		Backend:  claims.BackendArithmetic,
	})
	if err != nil {
		return nil, fmt.Errorf("init testnet: %w", err)
	}
	g, err := consensus.LoadGenesis(layout.GenesisPath())
	if err != nil {
		return nil, err
	}
	if t.set, err = g.ValidatorSet(); err != nil {
		return nil, err
	}
	t.procs, err = testnet.StartProcesses(layout, testnet.ProcessOptions{Command: cfg.Command})
	if err != nil {
		return nil, fmt.Errorf("start nodes: %w", err)
	}
	if err := t.procs.WaitHealthy(ctx, nil); err != nil {
		return nil, fmt.Errorf("wait for nodes: %w", err)
	}
	// One connection per job in flight, kept alive: the client side should
	// not be what limits the measurement.
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: max(cfg.Concurrency, 64),
		IdleConnTimeout:     time.Minute,
	}}
	for _, info := range layout.Nodes {
		t.clients = append(t.clients, client.New(info.API, client.WithHTTPClient(hc)))
	}
	return t, nil
}

func (t *subprocess) gateways() int { return len(t.clients) }

func (t *subprocess) submit(ctx context.Context, gw int, req api.VerifyRequest) (common.Hash, error) {
	j, err := t.clients[gw].Submit(ctx, req)
	if err != nil {
		return common.Hash{}, err
	}
	return j.JobID, nil
}

func (t *subprocess) await(ctx context.Context, gw int, id common.Hash) (*consensus.Certificate, error) {
	return t.clients[gw].Await(ctx, id, t.set, client.AwaitOptions{})
}

func (t *subprocess) usage() (usage, error) {
	var u usage
	for _, p := range t.procs.List() {
		cpu, err := procCPU(p.PID())
		if err != nil {
			return usage{}, err
		}
		u.cpu += cpu
	}
	return u, nil
}

func (t *subprocess) peakMemory() (uint64, string, error) {
	var peak uint64
	for _, p := range t.procs.List() {
		hwm, err := procHWM(p.PID())
		if err != nil {
			return 0, "", err
		}
		peak = max(peak, hwm)
	}
	return peak, memSubprocess, nil
}

func (t *subprocess) close() error {
	var errs []error
	if t.procs != nil {
		if err := t.procs.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(t.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
