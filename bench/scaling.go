package bench

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/verity-network/verity/consensus"
)

// Scaling runs base repeat times per network size, in the order given, and
// returns the median report of each size. each, when set, is called after
// every run.
func Scaling(ctx context.Context, base Config, sizes []int, repeat int, each func(*Report)) ([]*Report, error) {
	if len(sizes) == 0 {
		return nil, fmt.Errorf("%w: no network sizes", ErrInvalidConfig)
	}
	var out []*Report
	for _, n := range sizes {
		cfg := base
		cfg.Nodes = n
		_, r, err := Repeat(ctx, cfg, repeat, each)
		if err != nil {
			return out, fmt.Errorf("%d nodes: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ErrNoData is returned by WriteScalingSVG without reports to draw.
var ErrNoData = errors.New("no reports to draw")

// Layout of the scaling figure, in SVG user units.
const (
	svgWidth, svgHeight = 640, 400
	plotLeft, plotRight = 70, 610
	plotTop, plotBottom = 50, 330
)

// WriteScalingSVG draws p50 and p99 time to certificate against the
// number of nodes, one point per report, as a standalone SVG document. Both
// axes are logarithmic: a cost that grows with the square of the nodes is a
// straight line of slope 2.
func WriteScalingSVG(w io.Writer, reports []*Report, title string) error {
	if len(reports) == 0 {
		return ErrNoData
	}
	sc := newScalingAxes(reports)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgWidth, svgHeight)
	fmt.Fprintf(&b, `<text x="%d" y="24" text-anchor="middle" font-size="15">%s</text>`+"\n", svgWidth/2, html.EscapeString(title))
	sc.drawGrid(&b)
	sc.drawAxes(&b, reports)
	sc.drawSeries(&b, reports)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", svgWidth/2, svgHeight-10,
		html.EscapeString(scalingCaption(reports[0])))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// scalingAxes maps nodes and milliseconds to the plot's coordinates, both
// on log scales; the y axis spans whole decades, at least one.
type scalingAxes struct {
	lx0, lx1 float64 // log10 of the x axis's ends
	loY, hiY float64
}

func newScalingAxes(reports []*Report) scalingAxes {
	minX, maxX := float64(reports[0].Nodes), float64(reports[0].Nodes)
	minY, maxY := math.Inf(1), 0.0
	for _, r := range reports {
		minX = math.Min(minX, float64(r.Nodes))
		maxX = math.Max(maxX, float64(r.Nodes))
		for _, v := range []float64{r.Latency.P50, r.Latency.P99} {
			if v > 0 {
				minY = math.Min(minY, v)
			}
			maxY = math.Max(maxY, v)
		}
	}
	if maxY <= 0 {
		minY, maxY = 1, 10
	}
	sc := scalingAxes{
		lx0: math.Log10(minX) - 0.1, lx1: math.Log10(maxX) + 0.1,
		loY: math.Pow(10, math.Floor(math.Log10(minY))),
		hiY: math.Pow(10, math.Ceil(math.Log10(maxY))),
	}
	if sc.hiY <= sc.loY {
		sc.hiY = sc.loY * 10
	}
	return sc
}

func (sc scalingAxes) x(n int) float64 {
	return plotLeft + (math.Log10(float64(n))-sc.lx0)/(sc.lx1-sc.lx0)*(plotRight-plotLeft)
}

func (sc scalingAxes) y(v float64) float64 {
	v = math.Max(v, sc.loY)
	return plotBottom - (math.Log10(v)-math.Log10(sc.loY))/(math.Log10(sc.hiY)-math.Log10(sc.loY))*(plotBottom-plotTop)
}

// drawGrid draws a labelled line per decade, light lines at 2 and 5, and
// the y axis's title.
func (sc scalingAxes) drawGrid(b *strings.Builder) {
	for d := sc.loY; d < sc.hiY*1.5; d *= 10 {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbb"/>`+"\n", plotLeft, sc.y(d), plotRight, sc.y(d))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-6, sc.y(d)+4, trimFloat(d))
		for _, m := range []float64{2, 5} {
			if m*d < sc.hiY {
				fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", plotLeft, sc.y(m*d), plotRight, sc.y(m*d))
			}
		}
	}
	fmt.Fprintf(b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">time to certificate (ms, log scale)</text>`+"\n",
		(plotTop+plotBottom)/2, (plotTop+plotBottom)/2)
}

// drawAxes draws the axes, a tick and label per network size, and the x
// axis's title.
func (sc scalingAxes) drawAxes(b *strings.Builder, reports []*Report) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", plotLeft, plotBottom, plotRight, plotBottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", plotLeft, plotTop, plotLeft, plotBottom)
	for _, r := range reports {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", sc.x(r.Nodes), plotBottom, sc.x(r.Nodes), plotBottom+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", sc.x(r.Nodes), plotBottom+20, r.Nodes)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">nodes (log scale)</text>`+"\n", (plotLeft+plotRight)/2, plotBottom+40)
}

// drawSeries draws the p50 and p99 lines with their labelled points and a
// legend.
func (sc scalingAxes) drawSeries(b *strings.Builder, reports []*Report) {
	series := []struct {
		name, color string
		val         func(*Report) float64
		dy          float64 // label offset: p50 below its point, p99 above
	}{
		{"p50", "#1f77b4", func(r *Report) float64 { return r.Latency.P50 }, 16},
		{"p99", "#d62728", func(r *Report) float64 { return r.Latency.P99 }, -8},
	}
	for i, s := range series {
		pts := make([]string, len(reports))
		for j, r := range reports {
			pts[j] = fmt.Sprintf("%.1f,%.1f", sc.x(r.Nodes), sc.y(s.val(r)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		for _, r := range reports {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %d nodes: %s</title></circle>`+"\n",
				sc.x(r.Nodes), sc.y(s.val(r)), s.color, s.name, r.Nodes, fmtMS(s.val(r)))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%s</text>`+"\n",
				sc.x(r.Nodes), sc.y(s.val(r))+s.dy, s.color, trimFloat(roundSig(s.val(r))))
		}
		ly := plotTop + 4 + 18*i
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", plotLeft+12, ly, plotLeft+36, ly, s.color)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", plotLeft+42, ly+4, s.name)
	}
}

// scalingCaption describes the load and the machine of the runs.
func scalingCaption(r0 *Report) string {
	load := fmt.Sprintf("closed loop, %d in flight", r0.Concurrency)
	if r0.Load == "open" {
		load = fmt.Sprintf("%g outputs/s", r0.Rate)
	}
	runs := ""
	if r0.Runs > 1 {
		runs = fmt.Sprintf(", median of %d runs", r0.Runs)
	}
	return fmt.Sprintf("%s, %d claims per output, %s%s; %d CPUs, %s", r0.Mode, r0.ClaimsPerOutput, load, runs, r0.Env.CPUs, r0.Env.GoVersion)
}

// roundSig rounds v to three significant digits at most, one decimal below
// 10.
func roundSig(v float64) float64 {
	if v < 10 {
		return math.Round(v*10) / 10
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-2)
	return math.Max(1, math.Round(v/p)) * p
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// Median combines the reports of repeated runs of one configuration: every
// latency, rate and cost is the median over the runs (the middle run, or
// the mean of the two middle ones); counts of jobs are summed. The first
// report describes the configuration.
func Median(runs []*Report) (*Report, error) {
	if len(runs) == 0 {
		return nil, ErrNoData
	}
	m := *runs[0]
	m.Statuses = map[consensus.Status]int{}
	m.Submitted, m.Measured, m.Certified, m.SubmitErrors, m.NotFinal = 0, 0, 0, 0, 0
	for _, r := range runs {
		m.Submitted += r.Submitted
		m.Measured += r.Measured
		m.Certified += r.Certified
		m.SubmitErrors += r.SubmitErrors
		m.NotFinal += r.NotFinal
		for k, v := range r.Statuses {
			m.Statuses[k] += v
		}
	}
	med := func(f func(*Report) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m.Latency = Latency{
		P50:  med(func(r *Report) float64 { return r.Latency.P50 }),
		P90:  med(func(r *Report) float64 { return r.Latency.P90 }),
		P99:  med(func(r *Report) float64 { return r.Latency.P99 }),
		Max:  med(func(r *Report) float64 { return r.Latency.Max }),
		Mean: med(func(r *Report) float64 { return r.Latency.Mean }),
	}
	m.CertificatesPerSecond = med(func(r *Report) float64 { return r.CertificatesPerSecond })
	m.ClaimsPerSecond = med(func(r *Report) float64 { return r.ClaimsPerSecond })
	m.CPUSecondsPerCertificate = med(func(r *Report) float64 { return r.CPUSecondsPerCertificate })
	m.CPUCores = med(func(r *Report) float64 { return r.CPUCores })
	m.PeakMemoryPerNodeBytes = uint64(med(func(r *Report) float64 { return float64(r.PeakMemoryPerNodeBytes) }))
	if m.Gossip != nil {
		g := *m.Gossip
		ok := true
		for _, r := range runs {
			if r.Gossip == nil {
				ok = false
			}
		}
		if ok {
			g.MessagesPerCertificate = med(func(r *Report) float64 { return r.Gossip.MessagesPerCertificate })
			g.DuplicatesPerCertificate = med(func(r *Report) float64 { return r.Gossip.DuplicatesPerCertificate })
			g.BytesPerCertificate = med(func(r *Report) float64 { return r.Gossip.BytesPerCertificate })
			g.Dropped = 0
			for _, r := range runs {
				g.Dropped += r.Gossip.Dropped
			}
			m.Gossip = &g
		} else {
			m.Gossip = nil
		}
	}
	m.Stages, m.StageJobs = nil, 0
	if !slices.ContainsFunc(runs, func(r *Report) bool { return len(r.Stages) != len(stageNames) }) {
		m.Stages = make([]Stage, len(stageNames))
		for i := range m.Stages {
			m.Stages[i] = Stage{Name: stageNames[i], P50MS: med(func(r *Report) float64 { return r.Stages[i].P50MS })}
		}
		for _, r := range runs {
			m.StageJobs += r.StageJobs
		}
	}
	m.Store, m.Signing = nil, nil
	if !slices.ContainsFunc(runs, func(r *Report) bool { return r.Store == nil }) {
		st := StoreWrites{WritesPerCertificate: map[string]float64{}}
		st.CommitsPerCertificate = med(func(r *Report) float64 { return r.Store.CommitsPerCertificate })
		st.WritesPerCommit = med(func(r *Report) float64 { return r.Store.WritesPerCommit })
		st.PageWritesPerCertificate = med(func(r *Report) float64 { return r.Store.PageWritesPerCertificate })
		for _, r := range runs {
			for k := range r.Store.WritesPerCertificate {
				st.WritesPerCertificate[k] = med(func(r *Report) float64 { return r.Store.WritesPerCertificate[k] })
			}
		}
		m.Store = &st
	}
	if !slices.ContainsFunc(runs, func(r *Report) bool { return r.Signing == nil }) {
		// Signatures are counted over every run.
		sg := Signing{Ballots: Batches{Histogram: map[string]uint64{}}, Jobs: Batches{Histogram: map[string]uint64{}}, Certificates: Batches{Histogram: map[string]uint64{}}}
		for _, r := range runs {
			sg.Ballots.add(&r.Signing.Ballots)
			sg.Jobs.add(&r.Signing.Jobs)
			sg.Certificates.add(&r.Signing.Certificates)
		}
		m.Signing = &sg
	}
	m.Runs = len(runs)
	return &m, nil
}

// Repeat runs cfg n times and returns every report and their median.
// each, when set, is called after every run.
func Repeat(ctx context.Context, cfg Config, n int, each func(*Report)) ([]*Report, *Report, error) {
	if n < 1 {
		return nil, nil, fmt.Errorf("%w: %d runs", ErrInvalidConfig, n)
	}
	var runs []*Report
	for range n {
		r, err := Run(ctx, cfg)
		if err != nil {
			return runs, nil, err
		}
		runs = append(runs, r)
		if each != nil {
			each(r)
		}
	}
	m, err := Median(runs)
	return runs, m, err
}
