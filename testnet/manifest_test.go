package testnet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
)

func TestExampleManifest(t *testing.T) {
	m, err := LoadManifest(filepath.Join("examples", "adversarial.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if m.NodeCount() != 7 {
		t.Fatalf("%d nodes, want 7", m.NodeCount())
	}
	kinds := map[string]string{}
	for i, n := range m.Node {
		kinds[m.NodeName(i)] = n.Behaviour.Kind
	}
	if kinds["node5"] != BehaviourLiar || kinds["node6"] != BehaviourEquivocator {
		t.Errorf("behaviours %v: want node5 liar and node6 equivocator", kinds)
	}
	s := m.Schedule()
	if len(s) != 2 || s[0].Action != ActionKill || s[1].Action != ActionRestart || s[0].Node != s[1].Node || kinds[s[0].Node] != "" {
		t.Errorf("schedule %v: want a kill and a restart of one honest node", s)
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown top-level key names its line", "nodes = 3\nbase_prot = 1\n", "line 2: unknown key \"base_prot\""},
		{"unknown key in a node table", "[[node]]\nname = \"a\"\n[[node]]\nname = \"b\"\nstak = 5\n", "line 5: unknown key \"node.stak\""},
		{"unknown key in a behaviour table", "[[node]]\n[node.behaviour]\nkind = \"liar\"\ndelai = \"1s\"\n", "line 4: unknown key \"node.behaviour.delai\""},
		{"syntax error names its line", "nodes = 3\nquorum = \n", "line 2"},
		{"no nodes", "network_id = 5\n", "no nodes"},
		{"count disagrees with tables", "nodes = 3\n[[node]]\n", "nodes = 3 but 1 [[node]] tables"},
		{"unknown behaviour", "[[node]]\n[node.behaviour]\nkind = \"liar2\"\n", "line 1: node node0: unknown behaviour \"liar2\""},
		{"unknown backend", "[[node]]\n[node.verifier]\nbackend = \"oracle\"\n", "unknown verifier backend"},
		{"bad accuracy", "[[node]]\n[node.verifier]\nbackend = \"simulated\"\naccuracy = 1.5\n", "node node0 verifier"},
		{"duplicate names", "[[node]]\nname = \"x\"\n[[node]]\nname = \"x\"\n", "line 3: duplicate node name \"x\""},
		{"name that is no directory name", "[[node]]\nname = \"../etc\"\n", "node name \"../etc\""},
		{"bad quorum", "nodes = 2\nquorum = \"3/2\"\n", "quorum"},
		{"bad duration", "nodes = 2\ndeadline = \"soon\"\n", "soon"},
		{"perturbation of unknown node", "nodes = 2\n[[perturbation]]\nat = \"1s\"\nnode = \"node7\"\naction = \"kill\"\n", "line 2: perturbation of unknown node \"node7\""},
		{"unknown action", "nodes = 2\n[[perturbation]]\nat = \"1s\"\nnode = \"node1\"\naction = \"explode\"\n", "unknown perturbation action \"explode\""},
		{"restart of a running node", "nodes = 2\n[[perturbation]]\nat = \"1s\"\nnode = \"node1\"\naction = \"restart\"\n", "the node was not killed"},
		{"resume before pause", "nodes = 2\n[[perturbation]]\nat = \"2s\"\nnode = \"node1\"\naction = \"pause\"\n[[perturbation]]\nat = \"1s\"\nnode = \"node1\"\naction = \"resume\"\n", "not paused"},
		{"byzantine assumption of a half", "nodes = 3\n[policy]\nbyzantine_below = \"1/2\"\n", "byzantine_below 1/2 must be above 0 and below 1/2"},
		{"fraction that is no fraction", "nodes = 3\n[policy]\nmin_stake_quorum = \"two thirds\"\n", "min_stake_quorum: \"two thirds\" is not num/den"},
		{"quorum honest stake cannot reach", "nodes = 3\n[policy]\nbyzantine_below = \"1/3\"\nmin_stake_quorum = \"3/4\"\n", "cannot be reached by honest stake alone"},
		{"unknown quorum kind", "nodes = 3\n[policy]\nquorum_kinds = [\"vibes\"]\n", "unknown quorum kind \"vibes\""},
		{"unknown key in the policy", "nodes = 3\n[policy]\nbyzantine = \"1/3\"\n", "unknown key \"policy.byzantine\""},
		{"unknown key in a perturbation", "nodes = 2\n[[perturbation]]\nat = \"1s\"\nnode = \"node1\"\naction = \"kill\"\nwhen = 3\n", "line 6: unknown key \"perturbation.when\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.src))
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("err = %v, want ErrInvalidManifest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestInitFromManifest(t *testing.T) {
	src := `
network_id = 77
stake = 50
quorum = "3/4"
deadline = "3s"

[[node]]
name = "alpha"
stake = 300

[[node]]
name = "beta"
[node.verifier]
backend = "simulated"
accuracy = 0.9
seed = 11
inner = "kb"

[[node]]
name = "gamma"
[node.behaviour]
kind = "slow"
delay = "200ms"
jitter = "100ms"
seed = 3

[[perturbation]]
at = "5s"
node = "gamma"
action = "restart"

[[perturbation]]
at = "2s"
node = "gamma"
action = "kill"
`
	m, err := ParseManifest([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := Init(InitOptions{Dir: dir, Manifest: m, BasePort: freeBasePort(t, 3), Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := consensus.LoadGenesis(l.GenesisPath())
	if err != nil {
		t.Fatal(err)
	}
	if g.NetworkID != 77 {
		t.Errorf("network id %d, want 77", g.NetworkID)
	}
	wantStake := map[string]uint64{"alpha": 300, "beta": 50, "gamma": 50}
	for _, v := range g.Validators {
		if v.Stake != wantStake[v.Name] {
			t.Errorf("%s stake %d, want %d", v.Name, v.Stake, wantStake[v.Name])
		}
	}
	for _, n := range l.Nodes {
		if n.Home != filepath.Join(l.Dir, n.Name) {
			t.Errorf("%s home %s, want %s", n.Name, n.Home, filepath.Join(l.Dir, n.Name))
		}
	}
	cfg := func(name string) *node.Config {
		t.Helper()
		c, err := node.LoadConfig(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b, c := cfg("alpha"), cfg("beta"), cfg("gamma")
	if a.Consensus.Quorum != "3/4" || a.Consensus.Deadline.Duration != 3*time.Second || a.Verifier.Backend != DefaultBackend {
		t.Errorf("alpha consensus %+v verifier %+v", a.Consensus, a.Verifier)
	}
	if v := b.Verifier; v.Backend != "simulated" || v.Accuracy != 0.9 || v.Seed != 11 || v.Inner != "kb" {
		t.Errorf("beta verifier %+v", v)
	}
	if bh := c.Behaviour; bh.Kind != "slow" || bh.Delay.Duration != 200*time.Millisecond || bh.Jitter.Duration != 100*time.Millisecond || bh.Seed != 3 {
		t.Errorf("gamma behaviour %+v", bh)
	}
	// Each config builds the node it describes.
	for _, cf := range []*node.Config{a, b, c} {
		if _, err := node.FromConfig(cf); err != nil {
			t.Errorf("%s: %v", cf.Name, err)
		}
	}
	s, err := LoadSchedule(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Action != ActionKill || s[0].At.Duration != 2*time.Second || s[1].Action != ActionRestart {
		t.Errorf("schedule %v: want kill at 2s then restart at 5s", s)
	}

	// Force replaces the testnet, named homes and schedule included.
	m2, err := ParseManifest([]byte("nodes = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(InitOptions{Dir: dir, Manifest: m2, BasePort: freeBasePort(t, 2), Password: "pw", Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"alpha", "beta", "gamma", ScheduleFile} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind by a forced init: %v", gone, err)
		}
	}
	if s, err := LoadSchedule(dir); err != nil || len(s) != 0 {
		t.Errorf("schedule after re-init: %v, %v; want none", s, err)
	}

	// Nodes that contradict the manifest are refused.
	if _, err := Init(InitOptions{Dir: t.TempDir(), Manifest: m2, Nodes: 3}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("3 nodes with a 2-node manifest: %v, want ErrInvalidOptions", err)
	}
}

// TestInitPolicy: a manifest's [policy] goes into genesis.json (and so into
// the genesis hash), and Init refuses default parameters below its floor.
func TestInitPolicy(t *testing.T) {
	t.Run("below the floor", func(t *testing.T) {
		m, err := ParseManifest([]byte("nodes = 5\nreplication = 3\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Init(InitOptions{Dir: t.TempDir(), Manifest: m, Password: "pw"})
		if !errors.Is(err, ErrInvalidManifest) || !errors.Is(err, consensus.ErrBelowFloor) ||
			!strings.Contains(err.Error(), "raise replication, or state the network's assumption in [policy]") {
			t.Fatalf("replication 3 of 5 under the default policy: %v", err)
		}
	})
	t.Run("a weaker assumption allows it", func(t *testing.T) {
		dir := t.TempDir()
		m, err := ParseManifest([]byte("nodes = 5\nreplication = 4\n[policy]\nbyzantine_below = \"1/5\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Init(InitOptions{Dir: dir, Manifest: m, Password: "pw"}); err != nil {
			t.Fatal(err)
		}
		g, err := consensus.LoadGenesis(filepath.Join(dir, GenesisFile))
		if err != nil {
			t.Fatal(err)
		}
		p := g.EffectivePolicy()
		if g.Policy == nil || p.ByzantineBelow != (consensus.Fraction{Num: 1, Den: 5}) || p.MinStakeQuorum != (consensus.Fraction{Num: 2, Den: 3}) {
			t.Fatalf("genesis policy %+v", g.Policy)
		}
		def := *g
		def.Policy = nil
		if def.Hash() == g.Hash() {
			t.Fatal("the genesis hash does not commit to the policy")
		}
	})
}
