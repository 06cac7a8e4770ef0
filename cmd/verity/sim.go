package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/sim"
)

func init() {
	register(&cli.Command{
		Name:      "sim",
		Usage:     "run validators of the real node code over a simulated WAN",
		ArgsUsage: "SCENARIO.toml",
		Description: `Runs the scenario's validators in this process, each a real node, over an
in-process simulated network (QUIC over virtual links: go-libp2p's
x/simlibp2p and marcopolo/simnet) with the scenario's regions, latencies and
bandwidth; submits its load, applies its adversaries and churn, and reports
time to certificate beside the network floor, certificates final or not,
certified-wrong claims against the truth, CPU and bytes per certificate.
docs/simulation.md describes scenarios; sim/examples holds some.

This command runs in real time: every node shares this machine's CPU, so
latencies include waiting for it. For virtual time (latencies of the links
alone, exactly reproducible) run the simulation tier: scripts/sim.sh
SCENARIO --virtual.

--sweep-nodes 10,25,50 runs the scenario at each number of validators;
--sweep-liars 0,0.1,0.2 with liars holding each share of the stake in place
of its adversaries. --plots DIR draws a sweep's figures as PNG.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "validators", Usage: "run with this many validators instead"},
			&cli.StringFlag{Name: "sweep-nodes", Usage: "validator counts to run in turn, e.g. 10,25,50"},
			&cli.StringFlag{Name: "sweep-liars", Usage: "liars' stake shares to run in turn, e.g. 0,0.2,0.4"},
			&cli.StringFlag{Name: "plots", Usage: "write a sweep's PNG plots into this directory"},
			&cli.StringFlag{Name: "replot", Usage: "plot an earlier sweep's --json-out file, not run"},
			&cli.StringFlag{Name: "store-dir", Usage: "the nodes' stores (default /dev/shm if it exists)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the run to this file"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "json-out", Usage: "also write the JSON report to this file"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on stderr"},
		},
		Action: runSim,
	})
}

func runSim(c *cli.Context) error {
	p := sim.Plan{JSON: c.Bool("json"), JSONOut: c.String("json-out"), PlotDir: c.String("plots"), Replot: c.String("replot")}
	if p.Replot != "" {
		if p.PlotDir == "" {
			return exitCode(2, errors.New("--replot needs --plots DIR"))
		}
		_, err := sim.Execute(c.Context, p, nil, c.App.Writer)
		return err
	}
	if err := simPlan(c, &p); err != nil {
		return exitCode(2, err)
	}
	opts := sim.Options{StoreDir: c.String("store-dir")}
	if !c.Bool("quiet") {
		opts.Progress = c.App.ErrWriter
		if opts.Progress == nil {
			opts.Progress = os.Stderr
		}
	}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	reps, err := sim.Execute(c.Context, p, func(ctx context.Context, sc *sim.Scenario) (*sim.Report, error) {
		return sim.Run(ctx, sc, opts)
	}, c.App.Writer)
	if err != nil {
		return err
	}
	notFinal := 0
	for _, r := range reps {
		notFinal += r.NotFinal
	}
	if notFinal > 0 {
		return exitCode(1, fmt.Errorf("%d jobs did not reach a final status", notFinal))
	}
	return nil
}

// simPlan fills in p's scenario, from the file named on the command line
// and --validators, and its sweep, from --sweep-nodes or --sweep-liars.
func simPlan(c *cli.Context, p *sim.Plan) error {
	if c.NArg() != 1 {
		return errors.New("give one scenario file: verity sim SCENARIO.toml")
	}
	sc, err := sim.LoadScenario(c.Args().First())
	if err != nil {
		return err
	}
	if n := c.Int("validators"); n != 0 {
		if sc, err = sc.Variant(sim.SweepNodes, float64(n)); err != nil {
			return fmt.Errorf("--validators: %w", err)
		}
	}
	for _, kind := range []string{sim.SweepNodes, sim.SweepLiars} {
		s := c.String("sweep-" + kind)
		if s == "" {
			continue
		}
		if p.SweepKind != "" {
			return errors.New("one sweep at a time: --sweep-nodes or --sweep-liars")
		}
		if p.Points, err = sim.ParseSweep(s); err != nil {
			return fmt.Errorf("--sweep-%s: %w", kind, err)
		}
		p.SweepKind = kind
	}
	if p.PlotDir != "" && p.SweepKind == "" {
		return errors.New("--plots needs --sweep-nodes, --sweep-liars or --replot")
	}
	p.Scenario = sc
	return nil
}
