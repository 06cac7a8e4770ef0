package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/testnet"
)

// target is a running network the load generator drives, with the
// measurements bench takes of it.
type target interface {
	testnet.Cluster
	// usage is the cumulative resource use of the network so far.
	usage() (usage, error)
	// tracer has the nodes' trace events; nil when they are out of reach.
	tracer() *tracer
	// peakMemory is the peak resident memory per node, and how it was
	// measured.
	peakMemory() (uint64, string, error)
}

// usage is a cumulative snapshot; Run subtracts two of them.
type usage struct {
	cpu time.Duration
	// gossip is the sum of every node's p2p stats; nil when the nodes'
	// stats are out of reach (subprocess mode).
	gossip *p2p.Stats
	// stores and signing sum every node's store writes and signatures;
	// nil in subprocess mode.
	stores  *store.Stats
	signing *node.SigningStats
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
	*testnet.Network
	dir    string // the stores, removed by Stop
	traces *tracer
}

func startInProcess(ctx context.Context, cfg *Config) (*inProcess, error) {
	dir, err := os.MkdirTemp(cfg.StoreDir, "verity-bench-")
	if err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	every := byte(1)
	if cfg.Rate == 0 {
		every = closedLoopSample
	}
	traces := newTracer(every)
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes:    cfg.Nodes,
		Verifier: func(int) node.Verifier { return claims.Arithmetic{} },
		Dir:      dir,
		Options: func(_ int, o *node.Options) {
			o.GossipBallots = cfg.GossipBallots
			o.Trace = traces.add
		},
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("start in-process network: %w", err), os.RemoveAll(dir))
	}
	return &inProcess{Network: net, dir: dir, traces: traces}, nil
}

func (t *inProcess) usage() (usage, error) {
	cpu, err := selfCPU()
	if err != nil {
		return usage{}, err
	}
	var (
		g  p2p.Stats
		st store.Stats
		sg node.SigningStats
	)
	for _, n := range t.Nodes() {
		addStats(&g, n.Network().Stats())
		s := n.StoreStats()
		st.Commits += s.Commits
		st.PageWrites += s.PageWrites
		for k := range st.Writes {
			st.Writes[k] += s.Writes[k]
		}
		ns := n.SigningStats()
		sg.Ballots.Add(ns.Ballots)
		sg.Jobs.Add(ns.Jobs)
		sg.Certificates.Add(ns.Certificates)
	}
	return usage{cpu: cpu, gossip: &g, stores: &st, signing: &sg}, nil
}

func (t *inProcess) tracer() *tracer { return t.traces }

func (t *inProcess) peakMemory() (uint64, string, error) {
	rss, err := selfMaxRSS()
	if err != nil {
		return 0, "", err
	}
	return rss / uint64(t.Gateways()), memInProcess, nil
}

// Stop stops the nodes and removes their stores.
func (t *inProcess) Stop() error { return errors.Join(t.Network.Stop(), os.RemoveAll(t.dir)) }

func addStats(sum *p2p.Stats, s p2p.Stats) {
	sum.Delivered += s.Delivered
	sum.Rejected += s.Rejected
	sum.Ignored += s.Ignored
	sum.Duplicates += s.Duplicates
	sum.ValidationDropped += s.ValidationDropped
	sum.OutboundDropped += s.OutboundDropped
	sum.SubscriberDropped += s.SubscriberDropped
	for dest, x := range s.Sent {
		if sum.Sent == nil {
			sum.Sent = map[string]p2p.SendStats{}
		}
		t := sum.Sent[dest]
		t.Sends += x.Sends
		t.Items += x.Items
		t.Max = max(t.Max, x.Max)
		sum.Sent[dest] = t
	}
}

// subprocess is a temporary testnet with one `verity node` process per
// node, driven over HTTP.
type subprocess struct {
	*testnet.ProcessCluster
	dir string // the testnet, removed by Stop
}

func startSubprocess(ctx context.Context, cfg *Config) (_ *subprocess, err error) {
	dir, err := os.MkdirTemp(cfg.StoreDir, "verity-bench-")
	if err != nil {
		return nil, fmt.Errorf("testnet directory: %w", err)
	}
	layout, err := testnet.Init(testnet.InitOptions{
		Dir:      dir,
		Nodes:    cfg.Nodes,
		BasePort: cfg.BasePort,
		Backend:  claims.BackendArithmetic,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("init testnet: %w", err), os.RemoveAll(dir))
	}
	// One connection per job in flight, kept alive: the client side should
	// not be what limits the measurement.
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: max(cfg.Concurrency, 64),
		IdleConnTimeout:     time.Minute,
	}}
	c, err := testnet.StartProcessCluster(ctx, layout, testnet.ProcessClusterOptions{
		Process:    testnet.ProcessOptions{Command: cfg.Command},
		HTTPClient: hc,
	})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return &subprocess{ProcessCluster: c, dir: dir}, nil
}

func (t *subprocess) usage() (usage, error) {
	var u usage
	for _, p := range t.Processes().List() {
		cpu, err := procCPU(p.PID())
		if err != nil {
			return usage{}, err
		}
		u.cpu += cpu
	}
	return u, nil
}

func (t *subprocess) tracer() *tracer { return nil }

func (t *subprocess) peakMemory() (uint64, string, error) {
	var peak uint64
	for _, p := range t.Processes().List() {
		hwm, err := procHWM(p.PID())
		if err != nil {
			return 0, "", err
		}
		peak = max(peak, hwm)
	}
	return peak, memSubprocess, nil
}

// Stop stops the nodes and removes the testnet.
func (t *subprocess) Stop() error {
	return errors.Join(t.ProcessCluster.Stop(), os.RemoveAll(t.dir))
}
