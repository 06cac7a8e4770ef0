package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/verity-network/verity/consensus"
)

// WriteTable writes a report as a small table for a person.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	load := fmt.Sprintf("closed loop, %d in flight", r.Concurrency)
	if r.Load == "open" {
		load = fmt.Sprintf("open loop, %g outputs/s", r.Rate)
	}
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if r.Runs > 1 {
		row("runs", "%d: latencies, rates and costs are medians over the runs, job and signature counts sums", r.Runs)
	}
	row("network", "%d nodes, %s", r.Nodes, r.Mode)
	if r.StoreDir != "" {
		row("stores", "under %s", r.StoreDir)
	}
	row("load", "%s, %d claims per output, %gs measured after %gs warm-up", load, r.ClaimsPerOutput, r.DurationSeconds, r.WarmupSeconds)
	row("jobs", "%d submitted, %d measured, %d certified (%s)", r.Submitted, r.Measured, r.Certified, statuses(r.Statuses))
	row("not final", "%d", r.NotFinal)
	if r.SubmitErrors > 0 {
		row("submit errors", "%d", r.SubmitErrors)
	}
	l := r.Latency
	row("time to certificate", "p50 %s  p90 %s  p99 %s  max %s  (mean %s)", fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), fmtMS(l.Mean))
	row("", "measured %s", r.LatencyScope)
	if len(r.Stages) > 0 {
		var sum float64
		for _, s := range r.Stages {
			sum += s.P50MS
		}
		row("its critical path", "p50 of each stage, over %d jobs (sum %s):", r.StageJobs, fmtMS(sum))
		for _, s := range r.Stages {
			row("", "%9s  %s", fmtMS(s.P50MS), s.Name)
		}
	}
	row("throughput", "%.1f certificates/s, %.1f claims/s", r.CertificatesPerSecond, r.ClaimsPerSecond)
	row("CPU", "%.2f ms per certificate, %.2f cores busy", r.CPUSecondsPerCertificate*1000, r.CPUCores)
	row("", "%s", r.CPUScope)
	row("peak memory per node", "%.1f MiB", float64(r.PeakMemoryPerNodeBytes)/(1<<20))
	row("", "%s", r.MemoryScope)
	if g := r.Gossip; g != nil {
		row("gossip per certificate", "%.1f messages received (%.1f duplicates), ~%.1f KiB of message data", g.MessagesPerCertificate, g.DuplicatesPerCertificate, g.BytesPerCertificate/1024)
		if g.Dropped > 0 {
			row("gossip dropped", "%d messages (a queue overflowed)", g.Dropped)
		}
		dests := slices.Sorted(maps.Keys(g.Bundles))
		for i, d := range dests {
			b := g.Bundles[d]
			dests[i] = fmt.Sprintf("%s %.2f (max %d)", d, b.Mean, b.Max)
		}
		if len(dests) > 0 {
			row("messages per send", "%s", strings.Join(dests, ", "))
		}
	} else {
		row("gossip per certificate", "not measured (node statistics are not exposed over HTTP)")
	}
	if st := r.Store; st != nil {
		kinds := make([]string, 0, len(st.WritesPerCertificate))
		for k := range st.WritesPerCertificate {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for i, k := range kinds {
			kinds[i] = fmt.Sprintf("%s %.2f", k, st.WritesPerCertificate[k])
		}
		row("store per certificate", "%.2f commits (%.2f writes each), %.1f page writes, all nodes", st.CommitsPerCertificate, st.WritesPerCommit, st.PageWritesPerCertificate)
		row("", "writes: %s", strings.Join(kinds, ", "))
	}
	if sg := r.Signing; sg != nil {
		for _, b := range []struct {
			what string
			b    *Batches
		}{{"ballots", &sg.Ballots}, {"jobs", &sg.Jobs}, {"certificates", &sg.Certificates}} {
			row(b.what+" per signature", "mean %.2f, max %d, %d signatures (%s)", b.b.Mean, b.b.Max, b.b.Signatures, b.b.histogramText())
		}
	}
	row("machine", "%d CPUs, %s, %s, %s", r.Env.CPUs, r.Env.CPUModel, r.Env.OS, r.Env.GoVersion)
	return tw.Flush()
}

func statuses(m map[consensus.Status]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[consensus.Status(k)], k)
	}
	return strings.Join(parts, ", ")
}

// fmtMS formats milliseconds with a precision that suits their size.
func fmtMS(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}

// WriteRows writes one line per report: network size, latencies, rates,
// costs and lost jobs.
func WriteRows(w io.Writer, reports []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tp50 ms\tp90 ms\tp99 ms\tmax ms\tcerts/s\tclaims/s\tCPU ms/cert\tmsgs/cert\tMiB/node\tnot final\t")
	for _, r := range reports {
		msgs := "-"
		if r.Gossip != nil {
			msgs = fmt.Sprintf("%.1f", r.Gossip.MessagesPerCertificate)
		}
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.2f\t%s\t%.1f\t%d\t\n", r.Nodes, r.Latency.P50, r.Latency.P90,
			r.Latency.P99, r.Latency.Max, r.CertificatesPerSecond, r.ClaimsPerSecond, r.CPUSecondsPerCertificate*1000, msgs,
			float64(r.PeakMemoryPerNodeBytes)/(1<<20), r.NotFinal)
	}
	return tw.Flush()
}
