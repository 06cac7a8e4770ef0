package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/verity-network/verity/bench"
)

func init() {
	register(&cli.Command{
		Name:  "bench",
		Usage: "measure time to certificate and throughput of a local network under load",
		Description: `Starts a network of --nodes validators (in this process, or with --subprocess
one 'verity node' process each, from a temporary testnet directory), submits
outputs of --claims true arithmetic claims ("<a> + <b> = <a+b>.", judged by the
arithmetic verifier so that the network, not a verifier, is measured) and
waits for their certificates.

With --rate R the load is an open loop: R outputs per second, each submitted
on schedule whatever happened to the earlier ones. With --rate 0 it is a
closed loop of --concurrency jobs in flight. Submissions rotate over the nodes,
so every node is gateway of some jobs. The first --warmup is not measured;
after --duration the load stops and outstanding jobs are awaited up to their
deadline.

Reports the time from submission to certificate (p50, p90, p99, max),
certificates and claims per second, CPU time per certificate, peak memory per
node, gossip messages per certificate and the jobs that never became final;
in-process also the store commits, page writes and writes by kind per
certificate, the ballots, jobs and certificates each batch signature covered, and
the median of each stage of the critical path from submission to
certificate (the hops, the validator's and the gateway's work). In-process, latency runs from node.Submit to node.WaitFinal on the gateway
(no HTTP); with --subprocess from the HTTP submission to client.Await's
verified certificate.

--repeat N runs the configuration N times, a fresh network each time, and
reports every run and the median. --scaling 5,10,25 runs the same load for
each network size (--repeat times each) and prints one row per size, the
median of its runs; --svg draws p50 and p99 against the number of nodes.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: bench.DefaultNodes, Usage: "validators in the network"},
			&cli.IntFlag{Name: "claims", Value: bench.DefaultClaims, Usage: "claims per output"},
			&cli.Float64Flag{Name: "rate", Usage: "outputs submitted per second (open loop); 0 runs a closed loop"},
			&cli.IntFlag{Name: "concurrency", Value: bench.DefaultConcurrency, Usage: "jobs in flight in a closed loop"},
			&cli.DurationFlag{Name: "duration", Value: bench.DefaultDuration, Usage: "measured time"},
			&cli.DurationFlag{Name: "warmup", Value: bench.DefaultWarmup, Usage: "load before the measured time, not counted"},
			&cli.DurationFlag{Name: "deadline", Value: bench.DefaultDeadline, Usage: "deadline of each job"},
			&cli.StringFlag{Name: "store-dir", Usage: "directory for the nodes' stores (default: the temporary directory); tmpfs shows the cost of fsync"},
			&cli.BoolFlag{Name: "gossip-ballots", Usage: "validators gossip ballots to every node instead of sending them to the gateway (in-process)"},
			&cli.BoolFlag{Name: "subprocess", Usage: "run each node as its own process and submit over HTTP"},
			&cli.StringFlag{Name: "command", Usage: "verity binary for --subprocess (default: this one)"},
			&cli.IntFlag{Name: "base-port", Value: bench.DefaultBasePort, Usage: "node0's p2p port with --subprocess; APIs from base-port+1000"},
			&cli.IntFlag{Name: "repeat", Value: 1, Usage: "runs of the same configuration; the report is their median"},
			&cli.StringFlag{Name: "scaling", Usage: "comma-separated network sizes to run one after another, e.g. 5,10,25,50"},
			&cli.StringFlag{Name: "svg", Usage: "with --scaling or --replot: write the p50/p99 figure to this file"},
			&cli.StringFlag{Name: "replot", Usage: "draw --svg from the --json-out file of an earlier --scaling run instead of running"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the measured time to this file (in-process nodes only)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON (an array with --scaling)"},
			&cli.StringFlag{Name: "json-out", Usage: "also write the JSON report to this file"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on stderr"},
		},
		Action: runBench,
	})
}

func runBench(c *cli.Context) error {
	cfg, repeat, err := benchConfig(c)
	if err != nil {
		return err
	}
	if path := c.String("replot"); path != "" {
		return replot(path, c.String("svg"))
	}
	if c.String("svg") != "" && c.String("scaling") == "" {
		return exitCode(2, errors.New("--svg needs --scaling or --replot"))
	}
	if c.String("scaling") != "" {
		if c.String("cpuprofile") != "" {
			return exitCode(2, errors.New("--cpuprofile profiles one run: not with --scaling"))
		}
		sizes, err := parseSizes(c.String("scaling"))
		if err != nil {
			return exitCode(2, fmt.Errorf("--scaling: %w", err))
		}
		return runScaling(c, cfg, sizes, repeat)
	}
	if repeat > 1 {
		if c.String("cpuprofile") != "" {
			return exitCode(2, errors.New("--cpuprofile profiles one run: not with --repeat"))
		}
		return runRepeat(c, cfg, repeat)
	}
	return runOnce(c, cfg)
}

// benchConfig reads the flags of one run and --repeat, and checks them.
func benchConfig(c *cli.Context) (bench.Config, int, error) {
	cfg := bench.Config{
		Nodes:         c.Int("nodes"),
		Claims:        c.Int("claims"),
		Rate:          c.Float64("rate"),
		Concurrency:   c.Int("concurrency"),
		Duration:      c.Duration("duration"),
		Warmup:        c.Duration("warmup"),
		Deadline:      c.Duration("deadline"),
		StoreDir:      c.String("store-dir"),
		GossipBallots: c.Bool("gossip-ballots"),
		Subprocess:    c.Bool("subprocess"),
		Command:       c.String("command"),
		BasePort:      c.Int("base-port"),
	}
	repeat := c.Int("repeat")
	if cfg.Duration <= 0 || cfg.Deadline <= 0 || cfg.Warmup < 0 || cfg.Nodes < 1 || cfg.Claims < 1 || cfg.Concurrency < 1 || cfg.Rate < 0 || repeat < 1 {
		return cfg, 0, exitCode(2, errors.New("--nodes, --claims, --concurrency, --repeat, --duration and --deadline must be positive, --rate and --warmup not negative"))
	}
	if !c.Bool("quiet") {
		cfg.Progress = c.App.ErrWriter
		if cfg.Progress == nil {
			cfg.Progress = os.Stderr
		}
	}
	return cfg, repeat, nil
}

// runOnce runs the network once (profiled with --cpuprofile) and reports.
func runOnce(c *cli.Context, cfg bench.Config) error {
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	r, err := bench.Run(c.Context, cfg)
	if err != nil {
		return err
	}
	if err := writeJSONOut(c, r); err != nil {
		return err
	}
	if err := writeReport(c.App.Writer, c.Bool("json"), r); err != nil {
		return err
	}
	if r.NotFinal > 0 {
		return exitCode(1, fmt.Errorf("%d jobs did not reach a final status", r.NotFinal))
	}
	return nil
}

// writeJSONOut writes v as JSON to the --json-out file, if any.
func writeJSONOut(c *cli.Context, v any) error {
	path := c.String("json-out")
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json-out: %w", err)
	}
	if err := errors.Join(writeReport(f, true, v), f.Close()); err != nil {
		return fmt.Errorf("--json-out: %w", err)
	}
	return nil
}

func writeReport(w io.Writer, asJSON bool, v any) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return bench.WriteTable(w, v.(*bench.Report))
}

func runRepeat(c *cli.Context, cfg bench.Config, repeat int) error {
	w := c.App.Writer
	runs, median, err := bench.Repeat(c.Context, cfg, repeat, func(r *bench.Report) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: run done: p50 %.2fms p99 %.2fms, %.1f claims/s\n", r.Latency.P50, r.Latency.P99, r.ClaimsPerSecond)
		}
	})
	if err != nil {
		return err
	}
	result := map[string]any{"runs": runs, "median": median}
	if err := writeJSONOut(c, result); err != nil {
		return err
	}
	if c.Bool("json") {
		err = writeReport(w, true, result)
	} else {
		fmt.Fprintf(w, "%d runs:\n", len(runs))
		if err := bench.WriteRows(w, runs); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nmedian:")
		err = bench.WriteTable(w, median)
	}
	if err != nil {
		return err
	}
	if median.NotFinal > 0 {
		return exitCode(1, fmt.Errorf("%d jobs did not reach a final status", median.NotFinal))
	}
	return nil
}

func runScaling(c *cli.Context, cfg bench.Config, sizes []int, repeat int) error {
	w := c.App.Writer
	reports, err := bench.Scaling(c.Context, cfg, sizes, repeat, func(r *bench.Report) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: %d nodes: p50 %.2fms p99 %.2fms\n", r.Nodes, r.Latency.P50, r.Latency.P99)
		}
	})
	if err != nil {
		return err
	}
	if path := c.String("svg"); path != "" {
		if err := writeSVG(path, reports); err != nil {
			return err
		}
	}
	if err := writeJSONOut(c, reports); err != nil {
		return err
	}
	notFinal := 0
	for _, r := range reports {
		notFinal += r.NotFinal
	}
	if c.Bool("json") {
		if err := writeReport(w, true, reports); err != nil {
			return err
		}
	} else if err := bench.WriteRows(w, reports); err != nil {
		return err
	}
	if notFinal > 0 {
		return exitCode(1, fmt.Errorf("%d jobs did not reach a final status", notFinal))
	}
	return nil
}

func writeSVG(path string, reports []*bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--svg: %w", err)
	}
	if err := errors.Join(bench.WriteScalingSVG(f, reports, "Time to certificate by network size"), f.Close()); err != nil {
		return fmt.Errorf("--svg: %w", err)
	}
	return nil
}

// replot draws the figure of the reports of an earlier --scaling run.
func replot(from, svg string) error {
	if svg == "" {
		return exitCode(2, errors.New("--replot needs --svg"))
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("--replot: %w", err)
	}
	var reports []*bench.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return fmt.Errorf("--replot %s: not the JSON of a --scaling run: %w", from, err)
	}
	return writeSVG(svg, reports)
}

// parseSizes parses "5,10,25" into network sizes.
func parseSizes(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number of nodes", part)
		}
		out = append(out, n)
	}
	return out, nil
}
