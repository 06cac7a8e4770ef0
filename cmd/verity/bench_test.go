package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-network/verity/bench"
)

func runBenchCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"verity", "bench"}, args...))
	return out.String(), err
}

func TestBenchCommandJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	// Throughput counts the certificates issued within the measured window:
	// 4s of it, so that a machine busy enough to take seconds per
	// certificate still issues some there. Jobs get two minutes (bench
	// waits for each only until it is final): under a CPU hog, 2 of 40
	// jobs missed the default 10s deadline and its 5s grace.
	out, err := runBenchCLI(t, "--nodes", "3", "--claims", "2", "--rate", "10", "--duration", "4s", "--warmup", "200ms",
		"--deadline", "2m", "--json", "-q")
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if r.Nodes != 3 || r.ClaimsPerOutput != 2 || r.Load != "open" || r.Rate != 10 {
		t.Errorf("report of the wrong run: %+v", r)
	}
	if r.NotFinal != 0 || r.Certified != 40 || r.Latency.P50 <= 0 {
		t.Errorf("report: %+v", r)
	}
	// The keys scripts rely on.
	keys := []string{"latency_ms", "certificates_per_second", "claims_per_second", "not_final", "cpu_seconds_per_certificate", "peak_memory_per_node_bytes"}
	// The first measured job starts with the measured time; if even the
	// slowest job took less than it, a certificate was issued within it,
	// and the rates and the gossip per certificate are there.
	if r.Latency.Max < 1000*r.DurationSeconds {
		if r.CertificatesPerSecond <= 0 || r.ClaimsPerSecond <= 0 {
			t.Errorf("rates: %v certificates/s, %v claims/s", r.CertificatesPerSecond, r.ClaimsPerSecond)
		}
		keys = append(keys, "gossip")
	} else {
		t.Logf("the slowest job took %.0f ms against %gs measured: no certificate need have been issued within it", r.Latency.Max, r.DurationSeconds)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	lat, _ := raw["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

func TestBenchCommandScalingSVG(t *testing.T) {
	if testing.Short() {
		t.Skip("starts networks")
	}
	dir := t.TempDir()
	svg, jsonOut := filepath.Join(dir, "scaling.svg"), filepath.Join(dir, "scaling.json")
	out, err := runBenchCLI(t, "--scaling", "1,2", "--claims", "1", "--rate", "20", "--duration", "500ms", "--warmup", "0s",
		"--svg", svg, "--json-out", jsonOut, "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "p99 ms") || strings.Count(out, "\n") != 3 {
		t.Errorf("want a header and 2 rows:\n%s", out)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("<svg")) || bytes.Count(data, []byte("<circle")) != 4 {
		t.Errorf("figure is not 2 sizes by 2 series:\n%s", data)
	}
	// Drawing again from the saved reports gives the same figure.
	again := filepath.Join(dir, "again.svg")
	if _, err := runBenchCLI(t, "--replot", jsonOut, "--svg", again); err != nil {
		t.Fatal(err)
	}
	data2, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		t.Errorf("replot differs from the figure of the run")
	}
}

func TestBenchCommandRepeat(t *testing.T) {
	if testing.Short() {
		t.Skip("starts networks")
	}
	jsonOut := filepath.Join(t.TempDir(), "report.json")
	out, err := runBenchCLI(t, "--repeat", "2", "--nodes", "2", "--claims", "1", "--rate", "20", "--duration", "500ms", "--warmup", "0s", "--json-out", jsonOut, "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2 runs:") || !strings.Contains(out, "median:") {
		t.Errorf("table lacks the runs or the median:\n%s", out)
	}
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Runs   []bench.Report `json:"runs"`
		Median bench.Report   `json:"median"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	if len(got.Runs) != 2 || got.Median.Runs != 2 || got.Median.Certified != got.Runs[0].Certified+got.Runs[1].Certified {
		t.Errorf("runs %d, median of %d runs with %d certified", len(got.Runs), got.Median.Runs, got.Median.Certified)
	}
}

func TestBenchCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "0s"},
		{"--rate", "-1"},
		{"--svg", "x.svg"},
		{"--scaling", "5,x"},
		{"--scaling", "5,0"},
		{"--scaling", "5", "--cpuprofile", "cpu.prof"},
		{"--repeat", "0"},
		{"--replot", "scaling.json"},
		{"--repeat", "3", "--cpuprofile", "cpu.prof"},
	} {
		_, err := runBenchCLI(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("verity bench %v: %v, want a usage error", args, err)
		}
	}
}

// TestBenchCommandSubprocess builds the verity binary and benchmarks nodes
// running as their own processes.
func TestBenchCommandSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts node processes")
	}
	bin := buildVerity(t)
	out, err := runBenchCLI(t, "--subprocess", "--command", bin, "--base-port", "37600", "--nodes", "2", "--claims", "2",
		"--rate", "10", "--duration", "1s", "--warmup", "500ms", "--json", "-q")
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if r.Mode != "subprocess" || r.Certified != 10 || r.NotFinal != 0 || r.CPUCores <= 0 || r.PeakMemoryPerNodeBytes == 0 {
		t.Errorf("report: %+v", r)
	}
	// CPU per certificate counts the certificates issued within the
	// measured time: there is one only if even the slowest job took less
	// than it (as in TestBenchCommandJSON). On a machine busy with other
	// tests the jobs took 1.5 s against the 1 s measured.
	if r.Latency.Max < 1000*r.DurationSeconds {
		if r.CPUSecondsPerCertificate <= 0 {
			t.Errorf("CPU per certificate %v with every job within the measured time: %+v", r.CPUSecondsPerCertificate, r)
		}
	} else {
		t.Logf("the slowest job took %.0f ms against %gs measured: no certificate need have been issued within it", r.Latency.Max, r.DurationSeconds)
	}
	if r.Gossip != nil {
		t.Errorf("subprocess report claims gossip statistics: %+v", r.Gossip)
	}
}
