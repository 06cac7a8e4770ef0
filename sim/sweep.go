package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/testnet"
)

// Sweep kinds.
const (
	// SweepNodes runs the scenario with each number of validators.
	SweepNodes = "nodes"
	// SweepLiars runs it with liars holding each share of the stake, in
	// place of its [[adversary]] tables.
	SweepLiars = "liars"
)

// ParseSweep reads a comma-separated list of numbers.
func ParseSweep(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("sweep %q: %q is not a number", s, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Variant is the scenario with one sweep point applied, checked.
func (s *Scenario) Variant(kind string, v float64) (*Scenario, error) {
	c := *s
	switch kind {
	case SweepNodes:
		if v != math.Trunc(v) {
			return nil, fmt.Errorf("%w: %g validators", ErrInvalidScenario, v)
		}
		c.Validators = int(v)
	case SweepLiars:
		c.Adversary = nil
		if v > 0 {
			c.Adversary = []AdversarySpec{{Kind: testnet.BehaviourLiar, StakeShare: v}}
		}
	default:
		return nil, fmt.Errorf("unknown sweep %q (want nodes or liars)", kind)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("sweep %s=%g: %w", kind, v, err)
	}
	return &c, nil
}

// RunFunc runs one scenario.
type RunFunc func(ctx context.Context, sc *Scenario) (*Report, error)

// Sweep runs the scenario at each point of a sweep, one after another.
func Sweep(ctx context.Context, sc *Scenario, kind string, points []float64, run RunFunc) ([]*Report, error) {
	var out []*Report
	for _, p := range points {
		v, err := sc.Variant(kind, p)
		if err != nil {
			return out, err
		}
		rep, err := run(ctx, v)
		if err != nil {
			return out, fmt.Errorf("sweep %s=%g: %w", kind, p, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

// Plot file names, in the directory given to WritePlots.
const (
	PlotLatency  = "sim-latency.png"
	PlotCost     = "sim-cost.png"
	PlotAccuracy = "sim-accuracy.png"
)

// WritePlots draws the reports of a sweep into dir and returns the files
// written: for a sweep of nodes, time to certificate (p50, p99, and the
// floor's p50) and costs per node per certificate against the number of
// validators; for a sweep of liars, the certified-wrong rate against the
// liars' stake share beside the committee failure curve.
func WritePlots(reports []*Report, kind, dir string) ([]string, error) {
	if len(reports) == 0 {
		return nil, fmt.Errorf("no reports to plot")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	switch kind {
	case SweepNodes:
		a, err := plotLatency(reports, filepath.Join(dir, PlotLatency))
		if err != nil {
			return nil, err
		}
		b, err := plotCost(reports, filepath.Join(dir, PlotCost))
		if err != nil {
			return nil, err
		}
		return []string{a, b}, nil
	case SweepLiars:
		a, err := plotAccuracy(reports, filepath.Join(dir, PlotAccuracy))
		if err != nil {
			return nil, err
		}
		return []string{a}, nil
	}
	return nil, fmt.Errorf("unknown sweep %q (want nodes or liars)", kind)
}

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	grey   = color.RGBA{R: 120, G: 120, B: 120, A: 255}
)

// subtitle describes the runs a plot comes from: the first run's
// settings, and the range of measured durations where the runs differ in
// it (a long run at the largest size beside shorter ones).
func subtitle(reports []*Report) string {
	r := reports[0]
	lo, hi := r.Duration, r.Duration
	for _, o := range reports[1:] {
		lo, hi = min(lo, o.Duration), max(hi, o.Duration)
	}
	duration := fmt.Sprintf("%gs", lo)
	if lo != hi {
		duration = fmt.Sprintf("%g-%gs", lo, hi)
	}
	committee := "every validator judges every claim"
	if r.Replication > 0 {
		committee = fmt.Sprintf("committees of %d", r.Replication)
	}
	if r.GatewaysKept {
		committee += fmt.Sprintf(", %d gateways", r.Gateways)
	}
	return fmt.Sprintf("%d regions, %g output/s x %d claims, %s; %s; %s time",
		r.Regions, r.Rate, r.Claims, duration, committee, r.Time)
}

// nodesAxis puts validators on a logarithmic axis when the sweep spans
// more than a factor of 20 (10 to 1,000 validators), so that the small
// networks do not crowd into the left edge.
func nodesAxis(p *plot.Plot, reports []*Report) {
	lo, hi := reports[0].Validators, reports[0].Validators
	for _, r := range reports[1:] {
		lo, hi = min(lo, r.Validators), max(hi, r.Validators)
	}
	if lo > 0 && hi >= 20*lo {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Label.Text += " (log scale)"
	}
}

func newPlot(title, sub, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + "\n" + sub
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, c color.Color, dashed bool) error {
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	s.Shape = draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// save leaves room above the data for the legend and writes the plot.
func save(p *plot.Plot, file string) error {
	p.Y.Min = 0
	p.Y.Max *= 1.35
	return p.Save(16*vg.Centimeter, 11*vg.Centimeter, file)
}

func plotLatency(reports []*Report, file string) (string, error) {
	p := newPlot("Time to certificate against validators", subtitle(reports), "validators", "milliseconds")
	nodesAxis(p, reports)
	var p50, p99, floor plotter.XYs
	for _, r := range reports {
		x := float64(r.Validators)
		p50 = append(p50, plotter.XY{X: x, Y: r.LatencyMS.P50})
		p99 = append(p99, plotter.XY{X: x, Y: r.LatencyMS.P99})
		floor = append(floor, plotter.XY{X: x, Y: r.FloorMS.P50})
	}
	if err := addLine(p, "p50", p50, blue, false); err != nil {
		return "", err
	}
	if err := addLine(p, "p99", p99, orange, false); err != nil {
		return "", err
	}
	if err := addLine(p, "network floor p50", floor, grey, true); err != nil {
		return "", err
	}
	return file, save(p, file)
}

func plotCost(reports []*Report, file string) (string, error) {
	p := newPlot("Cost per node per certificate against validators", subtitle(reports), "validators", "CPU ms  /  KiB sent")
	nodesAxis(p, reports)
	var cpu, kib plotter.XYs
	for _, r := range reports {
		x := float64(r.Validators)
		cpu = append(cpu, plotter.XY{X: x, Y: r.CPUPerNodeMS})
		kib = append(kib, plotter.XY{X: x, Y: r.BytesPerNode / 1024})
	}
	if err := addLine(p, "CPU ms per node per certificate", cpu, blue, false); err != nil {
		return "", err
	}
	if err := addLine(p, "KiB sent per node per certificate", kib, green, false); err != nil {
		return "", err
	}
	return file, save(p, file)
}

func plotAccuracy(reports []*Report, file string) (string, error) {
	r0 := reports[0]
	p := newPlot("Certified-wrong claims against liars' stake", subtitle(reports), "liars' share of the stake", "share of certified claims decided wrong")
	var measured plotter.XYs
	var errs plotter.YErrors
	for _, r := range reports {
		share := r.AdversaryStake[testnet.BehaviourLiar]
		measured = append(measured, plotter.XY{X: share, Y: r.WrongRate})
		errs = append(errs, struct{ Low, High float64 }{2 * r.WrongRateSE, 2 * r.WrongRateSE})
	}
	// The theoretical curve, for the committee and quorum of the runs.
	q, err := consensus.ParseQuorum(r0.Quorum)
	if err != nil {
		return "", err
	}
	var theory plotter.XYs
	maxX := 0.0
	for _, m := range measured {
		maxX = max(maxX, m.X)
	}
	for b := 0; b <= r0.Validators; b++ {
		share := float64(b) / float64(r0.Validators)
		if share > maxX+0.05 {
			break
		}
		theory = append(theory, plotter.XY{X: share, Y: CommitteeFailure(r0.Validators, b, r0.Committee, q)})
	}
	if err := addLine(p, fmt.Sprintf("theory: hypergeometric tail, %d of %d", r0.Committee, r0.Validators), theory, grey, true); err != nil {
		return "", err
	}
	if err := addLine(p, "measured (bars: 2 standard errors)", measured, blue, false); err != nil {
		return "", err
	}
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{measured, errs})
	if err != nil {
		return "", err
	}
	eb.Color = blue
	p.Add(eb)
	return file, save(p, file)
}

// SweepTable writes one row per report of a sweep, at most 80 columns.
func SweepTable(reports []*Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5s %6s %8s %8s %8s %9s %9s %8s %7s\n",
		"n", "liars", "p50 ms", "p99 ms", "floor", "cpu/node", "KiB/node", "wrong", "wall s")
	rs := slices.Clone(reports)
	for _, r := range rs {
		floor := "-"
		if r.FloorMS.P50 > 0 {
			floor = fmt.Sprintf("%.1f", r.FloorMS.P50)
		}
		fmt.Fprintf(&b, "%5d %5.1f%% %8.1f %8.1f %8s %9.2f %9.1f %8.4f %7.1f\n",
			r.Validators, 100*r.AdversaryStake[testnet.BehaviourLiar], r.LatencyMS.P50, r.LatencyMS.P99,
			floor, r.CPUPerNodeMS, r.BytesPerNode/1024, r.WrongRate, r.WallSeconds)
	}
	return b.String()
}

// Plan is what a caller asks of the simulator: one run of a scenario, or a
// sweep of it, and where the results go.
type Plan struct {
	Scenario *Scenario
	// SweepKind ("" for one run) and Points describe a sweep.
	SweepKind string
	Points    []float64
	// PlotDir receives the sweep's plots ("" for none).
	PlotDir string
	// JSON prints the report (an array for a sweep) as JSON instead of a
	// table; JSONOut also writes it to a file.
	JSON    bool
	JSONOut string
	// Replot draws PlotDir's plots from an earlier JSONOut file of a sweep
	// instead of running.
	Replot string
}

// Execute carries out a plan with run, printing to out, and returns the
// reports.
func Execute(ctx context.Context, p Plan, run RunFunc, out io.Writer) ([]*Report, error) {
	if p.Replot != "" {
		data, err := os.ReadFile(p.Replot)
		if err != nil {
			return nil, err
		}
		var reps []*Report
		if err := json.Unmarshal(data, &reps); err != nil {
			return nil, fmt.Errorf("%s: not the JSON array of a sweep: %w", p.Replot, err)
		}
		return reps, writePlots(reps, p, out)
	}
	var reps []*Report
	if p.SweepKind == "" {
		rep, err := run(ctx, p.Scenario)
		if err != nil {
			return nil, err
		}
		reps = []*Report{rep}
	} else {
		var err error
		if reps, err = Sweep(ctx, p.Scenario, p.SweepKind, p.Points, run); err != nil {
			return reps, err
		}
	}
	var v any = reps
	if p.SweepKind == "" {
		v = reps[0]
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return reps, err
	}
	data = append(data, '\n')
	if p.JSONOut != "" {
		if err := os.WriteFile(p.JSONOut, data, 0o644); err != nil {
			return reps, err
		}
	}
	switch {
	case p.JSON:
		_, err = out.Write(data)
	case p.SweepKind == "":
		err = reps[0].WriteText(out)
	default:
		_, err = io.WriteString(out, SweepTable(reps))
	}
	if err != nil {
		return reps, err
	}
	if p.SweepKind != "" && p.PlotDir != "" {
		return reps, writePlots(reps, p, out)
	}
	return reps, nil
}

func writePlots(reps []*Report, p Plan, out io.Writer) error {
	kind := p.SweepKind
	if kind == "" {
		kind = SweepNodes
		if len(reps) > 0 && reps[0].Validators == reps[len(reps)-1].Validators {
			kind = SweepLiars
		}
	}
	files, err := WritePlots(reps, kind, p.PlotDir)
	if err != nil {
		return err
	}
	if !p.JSON {
		for _, f := range files {
			fmt.Fprintf(out, "wrote %s\n", f)
		}
	}
	return nil
}
