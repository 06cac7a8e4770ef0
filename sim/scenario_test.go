package sim

import (
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"gonum.org/v1/plot"

	"github.com/verity-network/verity/consensus"
)

func TestParseScenarioRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown key", "validators = 4\nvalidatorz = 5\n", `unknown key "validatorz"`},
		{"unknown key in a table", "validators = 4\n[load]\nrat = 2\n", `unknown key "load.rat"`},
		{"no validators", "", "validators = 0"},
		{"too many validators", "validators = 5000\n", "need 1 to 1024"},
		{"shares not 1", "validators = 4\n[[region]]\nname = \"us-east\"\nshare = 0.5\n", "add up to 0.5"},
		{"region without a latency", "validators = 4\n[[region]]\nname = \"mars\"\nshare = 0.5\n[[region]]\nname = \"us-east\"\nshare = 0.5\n", "no round-trip time between regions mars and us-east"},
		{"latency of an unknown region", "validators = 4\n[[latency]]\nfrom = \"us-east\"\nto = \"mars\"\nrtt_ms = 5\n", "both must be regions"},
		{"honest adversary", "validators = 4\n[[adversary]]\nkind = \"honest\"\nstake_share = 0.2\n", "must name a misbehaviour"},
		{"unknown adversary", "validators = 4\n[[adversary]]\nkind = \"thief\"\nstake_share = 0.2\n", `unknown behaviour "thief"`},
		{"all stake adversarial", "validators = 4\n[[adversary]]\nkind = \"liar\"\nstake_share = 0.6\n[[adversary]]\nkind = \"silent\"\nstake_share = 0.4\n", "leave some to honest"},
		{"join before leave", "validators = 4\n[[churn]]\nat = \"1s\"\naction = \"join\"\ncount = 1\n", "only 0 have left"},
		{"everyone leaves", "validators = 2\n[[churn]]\nat = \"1s\"\naction = \"leave\"\ncount = 2\n", "at least one must stay"},
		{"bad quorum", "validators = 4\n[consensus]\nquorum = \"1/3\"\n", "consensus.quorum"},
		{"bad policy", "validators = 4\n[policy]\nbyzantine_below = \"1/2\"\n", "policy"},
		{"syntax", "validators = \n", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.src))
			if !errors.Is(err, ErrInvalidScenario) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidScenario saying %q", err, tc.want)
			}
		})
	}
}

func TestScenarioDefaultsAndDraws(t *testing.T) {
	sc, err := ParseScenario([]byte("validators = 10\n[stake]\ndistribution = \"zipf\"\n[[adversary]]\nkind = \"liar\"\nstake_share = 0.3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Region) != 5 || sc.Load.Rate != DefaultRate || sc.Consensus.Deadline.Duration != DefaultDeadline {
		t.Fatalf("defaults not filled in: %+v", sc)
	}
	m, err := sc.latencyMatrix()
	if err != nil {
		t.Fatal(err)
	}
	// us-east to eu-west: 81 ms round trip, 40.5 ms one way; within a
	// region half a millisecond.
	if m[0][2] != 40500*time.Microsecond || m[2][0] != m[0][2] || m[3][3] != 500*time.Microsecond {
		t.Fatalf("one-way latencies %v", m)
	}
	// The seed fixes stakes, placement and adversaries.
	stakes := sc.stakes()
	if got := sc.stakes(); !equal(got, stakes) {
		t.Fatalf("stakes differ from draw to draw: %v, %v", got, stakes)
	}
	var total, liars uint64
	for i, b := range sc.adversaries(stakes) {
		total += stakes[i]
		if b.Kind == "liar" {
			liars += stakes[i]
		}
	}
	if share := float64(liars) / float64(total); math.Abs(share-0.3) > 0.15 {
		t.Fatalf("liars hold %.2f of the stake, want about 0.3", share)
	}
	counts := map[int]int{}
	for _, r := range sc.regions() {
		counts[r]++
	}
	for r := range 5 {
		if counts[r] != 2 {
			t.Fatalf("regions %v, want 2 validators in each of 5", counts)
		}
	}
	other := *sc
	other.Seed = 2
	if equal(other.stakes(), stakes) {
		t.Fatal("another seed draws the same stakes")
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBelowFloorRefusedBeforeStart(t *testing.T) {
	sc, err := ParseScenario([]byte("validators = 10\n[consensus]\nreplication = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = build(sc, t.TempDir())
	if !errors.Is(err, ErrInvalidScenario) || !errors.Is(err, consensus.ErrBelowFloor) {
		t.Fatalf("replication 3 of 10 under the default policy: %v, want below the floor", err)
	}
	sc.Policy = nil
	sc, err = ParseScenario([]byte("validators = 10\n[consensus]\nreplication = 3\n[policy]\nbyzantine_below = \"1/10\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(sc, t.TempDir()); err != nil {
		t.Fatalf("replication 3 of 10 with byzantine stake below 1/10: %v", err)
	}
}

func TestCommitteeFailure(t *testing.T) {
	q := consensus.StakeQuorum(2, 3)
	for _, tc := range []struct {
		n, b, k int
		want    float64
	}{
		{10, 0, 5, 0},
		{6, 2, 3, 0},        // 3 liars needed, 2 exist
		{6, 3, 3, 1.0 / 20}, // C(3,3)C(3,0)/C(6,3)
		{10, 7, 10, 1},      // everyone judges: 7 of 10 > 2/3
		{10, 6, 10, 0},      // 6 of 10 is not more than 2/3
		// t = 4 of 5: (C(6,4)C(14,1) + C(6,5)C(14,0)) / C(20,5).
		{20, 6, 5, (15.0*14 + 6) / 15504},
	} {
		if got := CommitteeFailure(tc.n, tc.b, tc.k, q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("n=%d b=%d k=%d: %g, want %g", tc.n, tc.b, tc.k, got, tc.want)
		}
	}
}

// TestExamples checks that every example scenario reads and is within the
// policy's floor.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		sc, err := LoadScenario(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := build(sc, t.TempDir()); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// TestDocumentedScenario checks that the scenario docs/simulation.md shows
// reads as it is written.
func TestDocumentedScenario(t *testing.T) {
	doc, err := os.ReadFile("../docs/simulation.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```toml\n")
	src, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/simulation.md has no toml block")
	}
	sc, err := ParseScenario([]byte(src))
	if err != nil {
		t.Fatalf("the documented scenario: %v", err)
	}
	if _, err := build(sc, t.TempDir()); err != nil {
		t.Fatalf("the documented scenario: %v", err)
	}
}

// TestSimConnManager: each simulated host gets a connection manager of its
// own that trims to simPeersLow above simPeersHigh, not libp2p's default,
// which lets a node keep every gateway it ever sent a ballot to.
func TestSimConnManager(t *testing.T) {
	var first libp2p.Config
	for range 2 {
		var cfg libp2p.Config
		if err := simConnManager(simPeersLow, simPeersHigh)(&cfg); err != nil {
			t.Fatal(err)
		}
		cm, ok := cfg.ConnManager.(*connmgr.BasicConnMgr)
		if !ok {
			t.Fatalf("connection manager %T", cfg.ConnManager)
		}
		info := cm.GetInfo()
		if info.LowWater != simPeersLow || info.HighWater != simPeersHigh || info.GracePeriod != simPeersGrace {
			t.Fatalf("watermarks %d/%d, grace %s", info.LowWater, info.HighWater, info.GracePeriod)
		}
		if first.ConnManager == cfg.ConnManager {
			t.Fatal("two hosts share one connection manager")
		}
		first = cfg
		defer cm.Close()
	}
}

// TestScenarioGateways: with load.gateways set, the load's gateways are
// that many validators that never leave, the same for a seed; every other
// validator has each of them among its bootstrap peers, and a gateway's
// connection manager keeps a connection to every validator.
func TestScenarioGateways(t *testing.T) {
	src := []byte(`
validators = 12
[load]
gateways = 3
[[churn]]
at = "1s"
action = "leave"
count = 4
`)
	sc, err := ParseScenario(src)
	if err != nil {
		t.Fatal(err)
	}
	set := sc.gatewaySet()
	if len(set) != 3 || !slices.Equal(set, sc.gatewaySet()) {
		t.Fatalf("gateway set %v, then %v: want 3, the same each time", set, sc.gatewaySet())
	}
	for _, g := range set {
		if slices.Contains(sc.churnPool(), g) {
			t.Fatalf("gateway %d may leave (churn pool %v)", g, sc.churnPool())
		}
	}
	w, err := build(sc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range w.members {
		for _, g := range set {
			if g != i && !slices.Contains(m.opts.Bootstrap, w.members[g].dial) {
				t.Errorf("%s does not bootstrap to gateway %s: %v", m.name, w.members[g].name, m.opts.Bootstrap)
			}
		}
		var cfg libp2p.Config
		for _, o := range m.opts.HostOptions {
			if err := cfg.Apply(o); err != nil {
				t.Fatal(err)
			}
		}
		cm := cfg.ConnManager.(*connmgr.BasicConnMgr)
		defer cm.Close()
		high := cm.GetInfo().HighWater
		if gw := slices.Contains(set, i); gw != (high == len(w.members)+simPeersHigh) {
			t.Errorf("%s: gateway %v, connection high water %d of %d validators", m.name, gw, high, len(w.members))
		}
	}

	for _, bad := range []string{"gateways = -1", "gateways = 13", "gateways = 9\n[[churn]]\nat = \"1s\"\naction = \"leave\"\ncount = 4"} {
		if _, err := ParseScenario([]byte("validators = 12\n[load]\n" + bad)); !errors.Is(err, ErrInvalidScenario) {
			t.Errorf("%q: %v, want ErrInvalidScenario", bad, err)
		}
	}
}

// TestWritePlotsNodes draws a nodes sweep from 10 to 1,000 validators
// whose largest run measured longer than the others into a directory that
// does not exist yet: two PNG images, validators on a log scale, and the
// subtitle gives the range of durations.
func TestWritePlotsNodes(t *testing.T) {
	var reps []*Report
	for i, n := range []int{10, 100, 1000} {
		reps = append(reps, &Report{
			Time: "virtual", Validators: n, Regions: 5, Replication: 5, Rate: 1, Claims: 5,
			Duration:  []float64{20, 20, 60}[i],
			LatencyMS: Latency{P50: 200 + float64(i), P99: 300}, FloorMS: Latency{P50: 150},
			CPUPerNodeMS: 20, BytesPerNode: 50 << 10,
		})
	}
	dir := filepath.Join(t.TempDir(), "scale")
	files, err := WritePlots(reps, SweepNodes, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("wrote %v, want two plots", files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 100 {
			t.Fatalf("%s: %v, too small", f, b)
		}
	}
	if s := subtitle(reps); !strings.Contains(s, " 20-60s;") {
		t.Fatalf("subtitle %q does not give the durations' range", s)
	}
	if s := subtitle(reps[:2]); !strings.Contains(s, " 20s;") || strings.Contains(s, "gateways") {
		t.Fatalf("subtitle %q", s)
	}
	kept := *reps[0]
	kept.Gateways, kept.GatewaysKept = 5, true
	if s := subtitle([]*Report{&kept}); !strings.Contains(s, "committees of 5, 5 gateways;") {
		t.Fatalf("subtitle %q does not name the gateways kept connected", s)
	}
	var text strings.Builder
	if err := kept.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if s := text.String(); !strings.Contains(s, "gateways                       5, every validator connected to each") {
		t.Fatalf("report does not name the gateways kept connected:\n%s", s)
	}
	p := plot.New()
	if nodesAxis(p, reps); !isLogScale(p) {
		t.Fatalf("validators from 10 to 1,000 on a %T axis, want plot.LogScale", p.X.Scale)
	}
	p = plot.New()
	if nodesAxis(p, reps[:2]); isLogScale(p) {
		t.Fatal("validators from 10 to 100 on a log axis")
	}
}

func isLogScale(p *plot.Plot) bool {
	_, ok := p.X.Scale.(plot.LogScale)
	return ok
}
