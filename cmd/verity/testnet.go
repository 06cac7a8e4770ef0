package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/testnet"
)

func init() {
	register(&cli.Command{
		Name:  "testnet",
		Usage: "create and run a local testnet",
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "write a local testnet: keys, genesis.json, node homes and nodes.json",
				Description: `Writes DIR/genesis.json, one home per node (DIR/node<i>: keystore, password.txt,
config.toml) and DIR/nodes.json. Node i listens for peers on 127.0.0.1 at
BASE+2i (TCP and QUIC) and serves its API at 127.0.0.1:BASE+1000+i. Testnet
keys are throwaway keys: their password is stored next to them.`,
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "nodes", Usage: "number of validators", Value: 4},
					&cli.StringFlag{Name: "dir", Usage: "testnet `DIR`", Value: "verity-testnet"},
					&cli.IntFlag{Name: "base-port", Usage: "node0's p2p port; API ports start at base+1000", Value: testnet.DefaultBasePort},
					&cli.Uint64Flag{Name: "network-id", Usage: "network id of the genesis", Value: testnet.DefaultNetworkID},
					&cli.Uint64Flag{Name: "stake", Usage: "stake of every validator", Value: testnet.DefaultStake},
					&cli.StringFlag{Name: "backend", Usage: "verifier backend of every node", Value: testnet.DefaultBackend},
					&cli.BoolFlag{Name: "force", Usage: "replace the testnet already in DIR (keys, stores and logs included)"},
				},
				Action: runTestnetInit,
			},
			{
				Name:  "up",
				Usage: "run every node of a testnet until Ctrl-C",
				Description: `Starts every node of the testnet in DIR as its own process (verity node
--home DIR/node<i>), appending each one's output to DIR/node<i>/node.log, and
waits until every node's /healthz answers 200. On SIGINT or SIGTERM it stops
the nodes (SIGTERM, then SIGKILL after --grace) and exits 0. If a node exits
on its own, it prints the end of that node's log, stops the others and exits
1. With --inproc all nodes run inside this process instead.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "testnet `DIR`", Value: "verity-testnet"},
					&cli.BoolFlag{Name: "inproc", Usage: "run all nodes in this process"},
					&cli.DurationFlag{Name: "timeout", Usage: "how long to wait for every node to be healthy", Value: 60 * time.Second},
					&cli.DurationFlag{Name: "grace", Usage: "how long nodes get to stop before they are killed", Value: testnet.DefaultGrace},
				},
				Action: runTestnetUp,
			},
		},
	})
}

// testnetLogTail is how many lines of a failed node's log are shown.
const testnetLogTail = 20

func runTestnetInit(c *cli.Context) error {
	dir := c.String("dir")
	l, err := testnet.Init(testnet.InitOptions{
		Dir:       dir,
		Nodes:     c.Int("nodes"),
		BasePort:  c.Int("base-port"),
		NetworkID: c.Uint64("network-id"),
		Stake:     c.Uint64("stake"),
		Backend:   c.String("backend"),
		Force:     c.Bool("force"),
	})
	if errors.Is(err, testnet.ErrExists) {
		return fmt.Errorf("%w; pass --force to replace it", err)
	}
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote a %d-validator testnet (network %d) to %s\n", len(l.Nodes), c.Uint64("network-id"), l.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range l.Nodes {
		fmt.Fprintf(tw, "  %s\t%s\tp2p %s\tapi %s\n", n.Name, n.Address.Hex(), trimP2P(n.P2P[0]), n.API)
	}
	tw.Flush()
	fmt.Fprintf(w, "genesis:    %s\n", l.GenesisPath())
	fmt.Fprintf(w, "nodes.json: %s\n", l.NodesPath())
	fmt.Fprintf(w, "start it:   verity testnet up --dir %s\n", dir)
	return nil
}

func runTestnetUp(c *cli.Context) error {
	layout, err := testnet.LoadLayout(c.String("dir"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w; create a testnet first: verity testnet init --dir %s", err, c.String("dir"))
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Bool("inproc") {
		return testnetUpInProcess(ctx, c, layout)
	}
	return testnetUpProcesses(ctx, c, layout)
}

func testnetUpProcesses(ctx context.Context, c *cli.Context, layout *testnet.Layout) error {
	w, ew := c.App.Writer, c.App.ErrWriter
	var global []string
	if lvl := c.String("log-level"); lvl != "" {
		global = []string{"--log-level", lvl}
	}
	procs, err := testnet.StartProcesses(layout, testnet.ProcessOptions{GlobalArgs: global, Grace: c.Duration("grace")})
	if err != nil {
		return err
	}
	fmt.Fprintf(ew, "started %d node processes; logs in %s\n", len(layout.Nodes), filepath.Join(layout.Dir, "node*", testnet.LogFile))

	waitCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	err = procs.WaitHealthy(waitCtx, func(healthy, total int) {
		fmt.Fprintf(ew, "waiting for nodes: %d/%d healthy\n", healthy, total)
	})
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(ew, "interrupted; stopping nodes")
		return stopTestnetProcesses(w, procs)
	case errors.Is(err, testnet.ErrExited):
		for _, p := range procs.List() {
			if isDone(p.Done()) {
				printLogTail(ew, p.Info)
			}
		}
		return exitCode(1, errors.Join(err, procs.Stop()))
	case err != nil:
		for _, p := range procs.List() {
			if !testnet.Healthy(ctx, nil, p.Info.API) {
				printLogTail(ew, p.Info)
			}
		}
		return exitCode(1, errors.Join(err, procs.Stop()))
	}

	rows := make([]testnetRow, 0, len(layout.Nodes))
	for _, p := range procs.List() {
		rows = append(rows, testnetRow{info: p.Info, pid: p.PID()})
	}
	printTestnetTable(w, rows)
	fmt.Fprintf(w, "testnet up: %d nodes; Ctrl-C to stop\n", len(rows))

	select {
	case <-ctx.Done():
		fmt.Fprintln(ew, "stopping nodes")
		return stopTestnetProcesses(w, procs)
	case p := <-procs.Exited():
		fmt.Fprintf(ew, "%s exited: %s\n", p.Info.Name, describeExit(p.Err()))
		printLogTail(ew, p.Info)
		return exitCode(1, errors.Join(fmt.Errorf("%w: %s", testnet.ErrExited, p.Info.Name), procs.Stop()))
	}
}

func stopTestnetProcesses(w io.Writer, procs *testnet.Processes) error {
	if err := procs.Stop(); err != nil {
		return exitCode(1, err)
	}
	fmt.Fprintln(w, "testnet stopped")
	return nil
}

func testnetUpInProcess(ctx context.Context, c *cli.Context, layout *testnet.Layout) error {
	w, ew := c.App.Writer, c.App.ErrWriter
	fmt.Fprintf(ew, "starting %d nodes in this process\n", len(layout.Nodes))
	startCtx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	tn, err := testnet.StartInProcess(startCtx, layout.Dir)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(ew, "interrupted")
			return nil
		}
		return err
	}
	rows := make([]testnetRow, 0, len(layout.Nodes))
	for i, nd := range tn.Nodes() {
		info := layout.Nodes[i]
		info.PeerID = nd.PeerID().String()
		info.P2P = nd.P2PAddrs()
		info.API = nd.APIURL()
		rows = append(rows, testnetRow{info: info})
	}
	printTestnetTable(w, rows)
	fmt.Fprintf(w, "testnet up: %d nodes; Ctrl-C to stop\n", len(rows))
	<-ctx.Done()
	fmt.Fprintln(ew, "stopping nodes")
	if err := tn.Stop(); err != nil {
		return exitCode(1, err)
	}
	fmt.Fprintln(w, "testnet stopped")
	return nil
}

// testnetRow is one line of the table testnet up prints.
type testnetRow struct {
	info testnet.NodeInfo
	pid  int // 0 when the node runs in this process
}

func printTestnetTable(w io.Writer, rows []testnetRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	withPID := len(rows) > 0 && rows[0].pid != 0
	header := "NAME\tADDRESS\tPEER\tP2P\tAPI"
	if withPID {
		header += "\tPID"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		p2p := ""
		if len(r.info.P2P) > 0 {
			p2p = trimP2P(r.info.P2P[0])
		}
		line := strings.Join([]string{r.info.Name, r.info.Address.Hex(), shortPeerID(r.info.PeerID), p2p, r.info.API}, "\t")
		if withPID {
			line += "\t" + strconv.Itoa(r.pid)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// trimP2P drops the /p2p/<peer id> suffix of a multiaddr.
func trimP2P(addr string) string {
	if i := strings.Index(addr, "/p2p/"); i >= 0 {
		return addr[:i]
	}
	return addr
}

// shortPeerID abbreviates a peer id the way libp2p does: 16*Ab12cd.
func shortPeerID(id string) string {
	if len(id) <= 10 {
		return id
	}
	return id[:2] + "*" + id[len(id)-6:]
}

func printLogTail(w io.Writer, info testnet.NodeInfo) {
	tail, err := testnet.Tail(info.LogPath(), testnetLogTail)
	if err != nil {
		fmt.Fprintf(w, "%s: cannot read log: %v\n", info.Name, err)
		return
	}
	fmt.Fprintf(w, "--- last lines of %s\n%s---\n", info.LogPath(), tail)
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
