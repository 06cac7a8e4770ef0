package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

func init() {
	register(&cli.Command{
		Name:  "testnet",
		Usage: "create and run a local testnet",
		Subcommands: []*cli.Command{
			testnetInitCommand(),
			testnetUpCommand(),
			testnetPerturbCommand(),
			testnetCheckCommand(),
		},
	})
}

// testnetInitCommand writes a testnet directory.
func testnetInitCommand() *cli.Command {
	return &cli.Command{
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
			&cli.StringFlag{Name: "manifest", Usage: "TOML `FILE` describing the network, each node and a perturbation schedule (docs/operations.md); flags set explicitly override its network settings"},
		},
		Action: runTestnetInit,
	}
}

// testnetUpCommand runs a testnet's nodes.
func testnetUpCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "run every node of a testnet until Ctrl-C",
		Description: `First checks that every node's p2p and API port is free, and refuses to
start anything when one is taken (naming the port and, when it can tell,
the process holding it). Then starts every node of the testnet in DIR as
its own process (verity node --home DIR/node<i>), appending each one's output to DIR/node<i>/node.log, and
waits until every node's /healthz answers 200 with that node's address. On SIGINT or SIGTERM it stops
the nodes (SIGTERM, then SIGKILL after --grace) and exits 0. If a node exits
on its own, it prints the end of that node's log, stops the others and exits
1. With --inproc all nodes run inside this process instead.

When DIR/schedule.json exists (written by init --manifest), up applies its
perturbations at their times after every node is healthy, logging each on
stderr. A node a perturbation killed (its home holds the "perturbed" marker,
whether the schedule or verity testnet perturb killed it) is no failure, and a
node a perturbation restarted is watched and stopped like the others.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "testnet `DIR`", Value: "verity-testnet"},
			&cli.BoolFlag{Name: "inproc", Usage: "run all nodes in this process"},
			&cli.BoolFlag{Name: "no-schedule", Usage: "do not run DIR/schedule.json"},
			&cli.DurationFlag{Name: "timeout", Usage: "how long to wait for every node to be healthy", Value: 60 * time.Second},
			&cli.DurationFlag{Name: "grace", Usage: "how long nodes get to stop before they are killed", Value: testnet.DefaultGrace},
		},
		Action: runTestnetUp,
	}
}

// testnetPerturbCommand perturbs one node of a running testnet.
func testnetPerturbCommand() *cli.Command {
	return &cli.Command{
		Name:      "perturb",
		Usage:     "kill, restart, pause, resume, disconnect or connect one node of a running testnet",
		ArgsUsage: "NODE kill|restart|pause|resume|disconnect|connect",
		Description: `Acts on a node of the testnet that verity testnet up runs in DIR:
  kill        SIGKILL the pid in DIR/NODE/node.pid, after writing the marker
              DIR/NODE/perturbed so that testnet up does not count it a failure
  restart     start the node again (detached, appending to its node.log, new
              node.pid), remove the marker, wait until /healthz answers 200
  pause       SIGSTOP the node's process
  resume      SIGCONT it
  disconnect  POST {"action":"disconnect"} to the node's /v1/admin/p2p, with
              the admin token its config names (DIR/NODE/admin.token)
  connect     POST {"action":"connect"} to it`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "testnet `DIR`", Value: "verity-testnet"},
			&cli.DurationFlag{Name: "timeout", Usage: "bound on waiting for a killed node to end or a restarted one to be healthy", Value: 60 * time.Second},
		},
		Action: runTestnetPerturb,
	}
}

// testnetCheckCommand checks the stores of a stopped testnet.
func testnetCheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the invariants over every node's store of a stopped testnet",
		Description: `Reads every node's store in DIR (read-only; the testnet must be stopped, since a
running node holds its store's lock) and reports: certificates that fail
verification against DIR/genesis.json, evidence that fails verification,
claims decided true on one node and false on another, jobs a node accepted
as gateway that are still provisional past their deadline and, with
--compare, certificates a snapshot listed that a store no longer holds.
--snapshot writes the list of certificates each store holds now, to
compare with after a crash. Exit status: 0 when every invariant holds, 1
when one does not (with a report), 2 when the stores cannot be checked.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "testnet `DIR`", Value: "verity-testnet"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "snapshot", Usage: "write the certificates each store holds to `FILE`"},
			&cli.StringFlag{Name: "compare", Usage: "report certificates listed in snapshot `FILE` and missing now"},
			&cli.DurationFlag{Name: "grace", Usage: "how long past its deadline a gateway job may stay provisional", Value: testnet.DefaultDeadlineGrace},
		},
		Action: runTestnetCheck,
		// A mistyped command line is "cannot check" (2), not a
		// failed invariant (1).
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return exitCode(2, fmt.Errorf("testnet check: %w", err))
		},
	}
}

// invocationName is how the user ran this program, for commands it
// suggests: "./verity" when run by a relative path, else "verity" (an
// absolute path is go run's temporary binary or one found on PATH).
func invocationName() string {
	if a := os.Args[0]; strings.Contains(a, "/") && !filepath.IsAbs(a) {
		return a
	}
	return "verity"
}

// testnetLogTail is how many lines of a failed node's log are shown.
const testnetLogTail = 20

func runTestnetInit(c *cli.Context) error {
	dir := c.String("dir")
	opts := testnet.InitOptions{
		Dir:       dir,
		Nodes:     c.Int("nodes"),
		BasePort:  c.Int("base-port"),
		NetworkID: c.Uint64("network-id"),
		Stake:     c.Uint64("stake"),
		Backend:   c.String("backend"),
		Force:     c.Bool("force"),
	}
	if path := c.String("manifest"); path != "" {
		m, err := testnet.LoadManifest(path)
		if err != nil {
			return err
		}
		// The manifest describes the network; flags given explicitly
		// override its settings, the others' defaults do not.
		opts = testnet.InitOptions{Dir: dir, Force: opts.Force, Manifest: m}
		if c.IsSet("nodes") {
			opts.Nodes = c.Int("nodes")
		}
		if c.IsSet("base-port") {
			opts.BasePort = c.Int("base-port")
		}
		if c.IsSet("network-id") {
			opts.NetworkID = c.Uint64("network-id")
		}
		if c.IsSet("stake") {
			opts.Stake = c.Uint64("stake")
		}
		if c.IsSet("backend") {
			opts.Backend = c.String("backend")
		}
	}
	l, err := testnet.Init(opts)
	if errors.Is(err, testnet.ErrExists) {
		return fmt.Errorf("%w; pass --force to replace it", err)
	}
	if err != nil {
		return err
	}
	g, err := consensus.LoadGenesis(l.GenesisPath())
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote a %d-validator testnet (network %d) to %s\n", len(l.Nodes), g.NetworkID, l.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, n := range l.Nodes {
		extra := ""
		if cfg, err := node.LoadConfig(n.Home); err == nil && cfg.Behaviour.Kind != "" && cfg.Behaviour.Kind != testnet.BehaviourHonest {
			extra = "\t" + cfg.Behaviour.Kind
		}
		fmt.Fprintf(tw, "  %s\t%s\tstake %d\tp2p %s\tapi %s%s\n", n.Name, n.Address.Hex(), g.Validators[i].Stake, trimP2P(n.P2P[0]), n.API, extra)
	}
	tw.Flush()
	fmt.Fprintf(w, "genesis:    %s\n", l.GenesisPath())
	fmt.Fprintf(w, "nodes.json: %s\n", l.NodesPath())
	if s, err := testnet.LoadSchedule(l.Dir); err != nil {
		return err
	} else if len(s) > 0 {
		fmt.Fprintf(w, "schedule:   %s (%d perturbations, run by testnet up)\n", filepath.Join(l.Dir, testnet.ScheduleFile), len(s))
	}
	fmt.Fprintf(w, "start it:   %s testnet up --dir %s\n", invocationName(), dir)
	return nil
}

func runTestnetUp(c *cli.Context) error {
	layout, err := testnet.LoadLayout(c.String("dir"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w; create a testnet first: %s testnet init --dir %s", err, invocationName(), c.String("dir"))
	}
	if err != nil {
		return err
	}
	// Another process on a node's port (another testnet's node, most
	// often) would answer in its place: refuse before starting anything.
	if err := testnet.CheckPorts(layout); err != nil {
		return fmt.Errorf("cannot start the testnet in %s: %w", layout.Dir, err)
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
	global := globalArgs(c)
	procs, err := testnet.StartProcesses(layout, testnet.ProcessOptions{GlobalArgs: global, Grace: c.Duration("grace")})
	if err != nil {
		return err
	}
	fmt.Fprintf(ew, "started %d node processes; logs in %s\n", len(layout.Nodes), filepath.Join(layout.Dir, "node*", testnet.LogFile))
	if err := waitProcessesHealthy(ctx, ew, procs, c.Duration("timeout")); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(ew, "interrupted; stopping nodes")
			return stopTestnetProcesses(w, procs)
		}
		return exitCode(1, errors.Join(err, procs.Stop()))
	}

	rows := make([]testnetRow, 0, len(layout.Nodes))
	for _, p := range procs.List() {
		rows = append(rows, testnetRow{info: p.Info, pid: p.PID()})
	}
	printTestnetTable(w, rows)
	fmt.Fprintf(w, "testnet up: %d nodes; Ctrl-C to stop\n", len(rows))

	// Notes come from the watcher and the schedule at once.
	logw := &lockedWriter{w: ew}
	note := func(s string) { fmt.Fprintln(logw, s) }
	schedule := loadUpSchedule(c, layout, note)
	err = procs.Supervise(ctx, layout, testnet.SuperviseOptions{Schedule: schedule, GlobalArgs: global, Note: note})
	if err == nil {
		fmt.Fprintln(logw, "stopping nodes")
		return stopTestnetProcesses(w, procs)
	}
	var ne *testnet.NodeExitError
	if errors.As(err, &ne) {
		fmt.Fprintf(logw, "%s exited: %v\n", ne.Node.Name, describeExit(ne.Err))
		printLogTail(logw, ne.Node)
	}
	return exitCode(1, errors.Join(err, procs.Stop()))
}

// waitProcessesHealthy waits at most timeout for every node to be healthy,
// reporting progress on ew. When a node ends or the time is up it prints
// the end of the log of each node at fault.
func waitProcessesHealthy(ctx context.Context, ew io.Writer, procs *testnet.Processes, timeout time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := procs.WaitHealthy(waitCtx, func(healthy, total int) {
		fmt.Fprintf(ew, "waiting for nodes: %d/%d healthy\n", healthy, total)
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	exited := errors.Is(err, testnet.ErrExited)
	for _, p := range procs.List() {
		if exited && isDone(p.Done()) || !exited && !testnet.HealthyNode(ctx, nil, p.Info) {
			printLogTail(ew, p.Info)
		}
	}
	return err
}

// loadUpSchedule is the schedule testnet up runs: DIR/schedule.json unless
// --no-schedule. A schedule that cannot be read is not run, with a note.
func loadUpSchedule(c *cli.Context, layout *testnet.Layout, note func(string)) []testnet.Perturbation {
	schedule, err := testnet.LoadSchedule(layout.Dir)
	if err != nil {
		note(fmt.Sprintf("schedule not run: %v", err))
	}
	if c.Bool("no-schedule") {
		return nil
	}
	return schedule
}

// globalArgs are the global flags to pass on to node processes.
func globalArgs(c *cli.Context) []string {
	if lvl := c.String("log-level"); lvl != "" {
		return []string{"--log-level", lvl}
	}
	return nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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

	schedule := loadUpSchedule(c, layout, func(s string) { fmt.Fprintln(ew, s) })
	var failure error
	if len(schedule) > 0 {
		fmt.Fprintf(ew, "running %d perturbations from %s\n", len(schedule), filepath.Join(layout.Dir, testnet.ScheduleFile))
		apply := func(ctx context.Context, p testnet.Perturbation) error { return tn.Perturb(ctx, p.Node, p.Action) }
		if failure = testnet.RunSchedule(ctx, schedule, time.Now(), apply, func(s string) { fmt.Fprintln(ew, s) }); failure != nil {
			fmt.Fprintf(ew, "schedule failed: %v\n", failure)
		} else if ctx.Err() == nil {
			fmt.Fprintln(ew, "schedule done")
		}
	}
	if failure == nil {
		<-ctx.Done()
	}
	fmt.Fprintln(ew, "stopping nodes")
	if err := tn.Stop(); err != nil {
		return exitCode(1, errors.Join(failure, err))
	}
	if failure != nil {
		return exitCode(1, failure)
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

func runTestnetPerturb(c *cli.Context) error {
	if c.NArg() != 2 {
		return fmt.Errorf("want NODE and ACTION (kill, restart, pause, resume, disconnect or connect), got %d arguments", c.NArg())
	}
	name := c.Args().Get(0)
	action, err := testnet.ParseAction(c.Args().Get(1))
	if err != nil {
		return err
	}
	layout, err := testnet.LoadLayout(c.String("dir"))
	if err != nil {
		return err
	}
	global := globalArgs(c)
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	began := time.Now()
	if err := testnet.Perturb(ctx, layout, name, action, testnet.PerturbOptions{GlobalArgs: global}); err != nil {
		return err
	}
	info, _ := layout.Node(name)
	detail := ""
	if action == testnet.ActionRestart {
		if pid, err := testnet.ReadPID(info.Home); err == nil {
			detail = fmt.Sprintf(" (pid %d, healthy)", pid)
		}
	}
	fmt.Fprintf(c.App.Writer, "%s: %s done in %s%s\n", name, action, time.Since(began).Round(time.Millisecond), detail)
	return nil
}

func runTestnetCheck(c *cli.Context) error {
	opts := testnet.CheckOptions{DeadlineGrace: c.Duration("grace")}
	if path := c.String("compare"); path != "" {
		snap, err := testnet.LoadSnapshot(path)
		if err != nil {
			return exitCode(2, err)
		}
		opts.Compare = snap
	}
	report, snap, err := testnet.Check(c.Context, c.String("dir"), opts)
	if err != nil {
		return exitCode(2, err)
	}
	if path := c.String("snapshot"); path != "" {
		if err := testnet.WriteSnapshot(path, snap); err != nil {
			return exitCode(2, err)
		}
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return exitCode(2, err)
		}
	} else {
		report.WriteText(w)
		if path := c.String("snapshot"); path != "" {
			fmt.Fprintf(w, "snapshot of %d stores written to %s\n", len(snap.Certificates), path)
		}
	}
	if !report.OK() {
		return exitCode(1, errors.New(""))
	}
	return nil
}
