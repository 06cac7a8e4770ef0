package node_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// initOneNode writes a one-node testnet (testnet init) and returns the
// node's home and the config.toml written there.
func initOneNode(t *testing.T, basePort int) (home string, config []byte) {
	t.Helper()
	layout, err := testnet.Init(testnet.InitOptions{Dir: filepath.Join(t.TempDir(), "net"), Nodes: 1, BasePort: basePort})
	if err != nil {
		t.Fatal(err)
	}
	home = layout.Nodes[0].Home
	config, err = os.ReadFile(filepath.Join(home, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return home, config
}

// TestConfigBackends: a config.toml written by testnet init, extended with
// generator, model verifier, model decomposer and behaviour sections, loads
// into working node options; bad values are errors that name the section.
func TestConfigBackends(t *testing.T) {
	home, base := initOneNode(t, 23900)
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(home, "config.toml"), append(append([]byte{}, base...), extra...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sections := `
[generator]
backend = "simulated"
hallucination_rate = 0.25
seed = 9

[decomposer]
backend = "model"
base_url = "http://127.0.0.1:1/v1"
model = "m"

[behaviour]
kind = "slow"
delay = "150ms"
`
	// [api] appears twice: TOML rejects that, and the error says where.
	write(sections + "\n[api]\nlisten = \"127.0.0.1:0\"\n")
	if _, err := node.LoadConfig(home); err == nil || !strings.Contains(err.Error(), "api") {
		t.Fatalf("duplicate [api] table: %v", err)
	}
	write(sections)
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := node.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Generator == nil || !strings.Contains(opts.Generator.Name(), "simulated") {
		t.Fatalf("generator %v", opts.Generator)
	}
	if opts.Decomposer == nil {
		t.Fatal("model decomposer not configured")
	}
	if b := testnet.BehaviourOf(cfg.Behaviour); b.Kind != testnet.BehaviourSlow || b.Delay.Milliseconds() != 150 {
		t.Fatalf("behaviour %+v", b)
	}
	if err := testnet.ApplyBehaviour(cfg, &opts); err != nil {
		t.Fatal(err)
	}
	if _, honest := opts.Ballots.(node.Honest); opts.Ballots == nil || honest {
		t.Fatalf("[behaviour] slow gave ballot policy %T", opts.Ballots)
	}

	for _, tc := range []struct{ extra, want string }{
		{"\n[decomposer]\nbackend = \"magic\"\n", "decomposer"},
		{"\n[generator]\nbackend = \"oracle\"\n", "generator"},
		{"\n[verifier2]\nbackend = \"kb\"\n", "unknown key"},
	} {
		write(tc.extra)
		cfg, err := node.LoadConfig(home)
		if err == nil {
			_, err = node.FromConfig(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config with %q: error %v, want one naming %q", tc.extra, err, tc.want)
		}
	}
}

// TestVerifierConfigErrorSaysVerifierOnce: a bad [verifier] section is
// named once in the error ("verifier: models: ..."), not once per layer.
func TestVerifierConfigErrorSaysVerifierOnce(t *testing.T) {
	layout, err := testnet.Init(testnet.InitOptions{Dir: filepath.Join(t.TempDir(), "net"), Nodes: 1, BasePort: 23900})
	if err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"model", "nonsense"} {
		cfg, err := node.LoadConfig(layout.Nodes[0].Home)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Verifier.Backend = backend
		_, err = node.FromConfig(cfg)
		if err == nil {
			t.Fatalf("backend %q: no error", backend)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "verifier: ") || strings.Count(msg, "verifier:") != 1 {
			t.Errorf("backend %q: %q, want one \"verifier:\" prefix", backend, msg)
		}
	}
}

// TestConfigMaxPeers: [p2p] max_peers reaches the node's options, and a
// negative one is refused with its name.
func TestConfigMaxPeers(t *testing.T) {
	home, base := initOneNode(t, 23950)
	if !bytes.Contains(base, []byte("[p2p]\n")) {
		t.Fatalf("config.toml has no [p2p] table:\n%s", base)
	}
	for _, tc := range []struct {
		line    string
		want    int
		wantErr string
	}{
		{"", 0, ""},
		{"max_peers = 1200\n", 1200, ""},
		{"max_peers = -1\n", 0, "p2p.max_peers"},
	} {
		src := bytes.Replace(base, []byte("[p2p]\n"), []byte("[p2p]\n"+tc.line), 1)
		if err := os.WriteFile(filepath.Join(home, "config.toml"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.LoadConfig(home)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one naming %s", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		opts, err := node.FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if opts.MaxPeers != tc.want {
			t.Errorf("%q: MaxPeers %d, want %d", tc.line, opts.MaxPeers, tc.want)
		}
	}
}
