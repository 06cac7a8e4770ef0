package sim

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/verity-network/verity/internal/testtier"
)

var (
	scenarioFlag   = flag.String("scenario", "", "scenario file for TestScenario (the simulation tier)")
	reportFlag     = flag.String("report", "", "where TestScenario writes its JSON report")
	sweepNodesFlag = flag.String("sweep-nodes", "", "TestScenario: validator counts to run in turn, e.g. 10,25,50")
	sweepLiarsFlag = flag.String("sweep-liars", "", "TestScenario: liars' stake shares to run in turn, e.g. 0,0.2,0.4")
	plotsFlag      = flag.String("plots", "", "TestScenario: write a sweep's PNG plots into this directory")
	jsonFlag       = flag.Bool("json", false, "TestScenario: print the report as JSON")
	profileFlag    = flag.String("profile", "", "TestScenario: write a CPU profile of each run's measured time to this file, and its live heap as it ends to FILE.heap (a sweep's runs: FILE.1, FILE.1.heap, FILE.2, ...)")
)

// TestScenario is the simulation tier: it runs the scenario named by
// -scenario (or $VERITY_SIM_SCENARIO) in virtual time, or a sweep of it,
// prints the report and writes it to -report. scripts/sim.sh --virtual
// drives it.
func TestScenario(t *testing.T) {
	path := *scenarioFlag
	if path == "" {
		path = os.Getenv("VERITY_SIM_SCENARIO")
	}
	if path == "" {
		t.Skip("simulation tier: go test ./sim -run TestScenario -args -scenario FILE -report OUT.json (or scripts/sim.sh FILE --virtual)")
	}
	sc, err := LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	p := Plan{Scenario: sc, JSON: *jsonFlag, JSONOut: *reportFlag, PlotDir: *plotsFlag}
	for kind, s := range map[string]string{SweepNodes: *sweepNodesFlag, SweepLiars: *sweepLiarsFlag} {
		if s == "" {
			continue
		}
		if p.SweepKind != "" {
			t.Fatal("one sweep at a time: -sweep-nodes or -sweep-liars")
		}
		if p.Points, err = ParseSweep(s); err != nil {
			t.Fatal(err)
		}
		p.SweepKind = kind
	}
	runs := 0
	_, err = Execute(context.Background(), p, func(_ context.Context, sc *Scenario) (*Report, error) {
		runs++
		profile := *profileFlag
		if profile != "" && p.SweepKind != "" {
			profile = fmt.Sprintf("%s.%d", profile, runs)
		}
		return runVirtual(t, sc, profile), nil
	}, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
}

// runVirtual runs sc inside a synctest bubble, writing a CPU profile of
// its measured time to profile unless it is "".
func runVirtual(t *testing.T, sc *Scenario, profile string) *Report {
	t.Helper()
	opts := Options{Virtual: true, Progress: os.Stderr}
	if profile != "" {
		opts.Measuring = cpuProfiler(t, profile)
	}
	var rep *Report
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
		defer cancel()
		var err error
		rep, err = Run(ctx, sc, opts)
		if err != nil {
			t.Fatal(err)
		}
	})
	if rep == nil {
		t.FailNow()
	}
	return rep
}

// cpuProfiler returns an Options.Measuring that profiles the CPU into
// path while the measured time lasts. The profiler's goroutine must not
// belong to the synctest bubble (its timers would run in virtual time), so
// one started here, outside it, starts and stops the profile on request;
// the bubble waits for each answer, with its clock stopped.
func cpuProfiler(t *testing.T, path string) func(begin bool) {
	req := make(chan bool)
	done := make(chan error)
	go func() {
		var f *os.File
		for begin := range req {
			var err error
			if begin {
				if f, err = os.Create(path); err == nil {
					err = pprof.StartCPUProfile(f)
				}
			} else if f != nil {
				pprof.StopCPUProfile()
				err = f.Close()
				f = nil
				// The heap as the measured time ends, beside the CPU
				// profile: what the running nodes hold.
				if err == nil {
					err = writeHeapProfile(path + ".heap")
				}
			}
			done <- err
		}
	}()
	t.Cleanup(func() { close(req) })
	return func(begin bool) {
		req <- begin
		if err := <-done; err != nil {
			t.Errorf("profile %s: %v", path, err)
		}
	}
}

// writeHeapProfile writes the live heap, just collected, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// deterministicScenario is small enough for the default tier: five
// validators in three regions, one of which leaves and joins again.
const deterministicScenario = `
seed = 11
validators = 5

# Links fast enough that putting packets on them takes nanoseconds: what
# is left is the links' latencies, which the seed fixes.
[network]
bandwidth_mbps = 100000

[[region]]
name = "us-east"
share = 0.4
[[region]]
name = "eu-west"
share = 0.4
[[region]]
name = "ap-northeast"
share = 0.2

[load]
rate = 4
claims = 3
warmup = "1s"
duration = "2s"

[[churn]]
at = "1200ms"
action = "leave"
count = 1

[[churn]]
at = "2200ms"
action = "join"
count = 1
`

// reproducible is the part of a report that virtual time fixes: what the
// machine's speed, memory and goroutine scheduling change (CPU, bytes,
// memory, wall time, the calibration's serialisation delays) is cleared.
func reproducible(r Report) Report {
	r.CPUPerCertificateMS, r.CPUPerNodeMS, r.CPUCores = 0, 0, 0
	r.BytesPerNode, r.MessagesPerCertificate = 0, 0
	r.PeakRSSBytes, r.Goroutines = 0, 0
	r.PeersPerNode, r.MaxPeersPerNode = 0, 0
	r.SetupWallSeconds, r.WallSeconds = 0, 0
	r.ProcessingMS, r.FloorMS, r.LatencyOverFloor = 0, Latency{}, 0
	return r
}

// TestVirtualTimeFloor runs a small scenario in virtual time: every job
// is final, every claim right, and every certificate takes the links'
// round trips and no more (processing takes no virtual time).
func TestVirtualTimeFloor(t *testing.T) {
	sc, err := ParseScenario([]byte(deterministicScenario))
	if err != nil {
		t.Fatal(err)
	}
	checkVirtual(t, runVirtual(t, sc, ""))
}

// TestLongVirtualTimeIsReproducible runs the same scenario twice in
// virtual time: the same seed gives the same report.
func TestLongVirtualTimeIsReproducible(t *testing.T) {
	testtier.Long(t, "two simulations of five validators")
	sc, err := ParseScenario([]byte(deterministicScenario))
	if err != nil {
		t.Fatal(err)
	}
	first := runVirtual(t, sc, "")
	second := runVirtual(t, sc, "")
	checkVirtual(t, first)
	a, b := reproducible(*first), reproducible(*second)
	ja, _ := json.MarshalIndent(a, "", " ")
	jb, _ := json.MarshalIndent(b, "", " ")
	if string(ja) != string(jb) {
		t.Fatalf("same seed, different reports:\n%s\n%s", ja, jb)
	}
}

// checkVirtual checks a report of deterministicScenario.
func checkVirtual(t *testing.T, first *Report) {
	t.Helper()
	var text strings.Builder
	if err := first.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("first run:\n%s", text.String())
	if first.Time != "virtual" {
		t.Fatalf("report says %q time, want virtual", first.Time)
	}
	if first.Final == 0 || first.Final != first.Measured {
		t.Fatalf("%d of %d measured jobs final, want all", first.Final, first.Measured)
	}
	if first.WrongClaims != 0 || first.CorrectClaims != first.ClaimsCertified {
		t.Fatalf("%d wrong and %d right of %d claims without adversaries", first.WrongClaims, first.CorrectClaims, first.ClaimsCertified)
	}
	if len(first.Churn) != 2 {
		t.Fatalf("churn applied: %q, want a leave and a join", first.Churn)
	}
	// Each certificate waits for the quorum's round trips; beyond them
	// only the time to put packets on 100 Mbit/s links.
	floor := first.FloorMS.P50 - first.ProcessingMS
	if got := first.LatencyMS.P50; got < floor-0.5 || got > floor+3 {
		t.Fatalf("p50 time to certificate %.2fms, want the links' floor %.2fms (+ at most 3ms)", got, floor)
	}
}
