package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/sigs"
)

// freeBasePort returns a base port whose p2p ports (TCP and UDP) and API
// ports for n nodes are free right now.
// Bases lie in 20000..30900, so every port stays below the kernel's
// ephemeral range (32768 and up on Linux), where ports bound to :0 by
// other tests would come and go.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for attempt := range 50 {
		base := 20000 + ((os.Getpid()+attempt*7919)%110)*100
		if portsFree(base, n) {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

func portsFree(base, n int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := range n {
		p := strconv.Itoa(base + 2*i)
		l, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			return false
		}
		closers = append(closers, l.Close)
		u, err := net.ListenPacket("udp", "127.0.0.1:"+p)
		if err != nil {
			return false
		}
		closers = append(closers, u.Close)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+apiPortOffset+i))
		if err != nil {
			return false
		}
		closers = append(closers, a.Close)
	}
	return true
}

func TestInitWritesTestnet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	base := 30000
	layout, err := Init(InitOptions{Dir: dir, Nodes: 4, BasePort: base, NetworkID: 77, Stake: 5, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := consensus.LoadGenesis(filepath.Join(dir, GenesisFile))
	if err != nil {
		t.Fatalf("genesis does not validate: %v", err)
	}
	if g.NetworkID != 77 || len(g.Validators) != 4 {
		t.Fatalf("genesis: network %d with %d validators, want 77 with 4", g.NetworkID, len(g.Validators))
	}
	loaded, err := LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Nodes) != 4 {
		t.Fatalf("nodes.json lists %d nodes, want 4", len(loaded.Nodes))
	}
	for i, info := range loaded.Nodes {
		if info.Name != layout.Nodes[i].Name || info.Address != layout.Nodes[i].Address {
			t.Errorf("node %d: nodes.json %s %s, Init returned %s %s", i, info.Name, info.Address, layout.Nodes[i].Name, layout.Nodes[i].Address)
		}
		if want := "node" + strconv.Itoa(i); info.Name != want {
			t.Errorf("node %d is named %q, want %q", i, info.Name, want)
		}
		v := g.Validators[i]
		if v.Name != info.Name || v.Address != info.Address || v.Stake != 5 {
			t.Errorf("genesis validator %d = %+v, nodes.json has %s %s", i, v, info.Name, info.Address)
		}

		pw, err := os.ReadFile(filepath.Join(info.Home, PasswordFile))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(pw)) != "pw" {
			t.Errorf("%s password file holds %q", info.Name, pw)
		}
		if st, err := os.Stat(filepath.Join(info.Home, PasswordFile)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s password file mode: %v %v", info.Name, st.Mode(), err)
		}
		keys, err := sigs.ListKeys(filepath.Join(info.Home, KeystoreDir))
		if err != nil || len(keys) != 1 {
			t.Fatalf("%s keystore: %v, %d keys", info.Name, err, len(keys))
		}
		if keys[0].Address != info.Address {
			t.Errorf("%s keystore holds %s, nodes.json says %s", info.Name, keys[0].Address, info.Address)
		}

		cfg, err := node.LoadConfig(info.Home)
		if err != nil {
			t.Fatalf("%s config: %v", info.Name, err)
		}
		if cfg.Path(cfg.KeyFile) != keys[0].Path {
			t.Errorf("%s config key file %s, keystore file %s", info.Name, cfg.Path(cfg.KeyFile), keys[0].Path)
		}
		key, err := sigs.UnlockKey(cfg.Path(cfg.KeyFile), "pw")
		if err != nil {
			t.Fatalf("%s: unlock with the config's key file: %v", info.Name, err)
		}
		id, err := p2p.PeerIDFromKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if id.String() != info.PeerID {
			t.Errorf("%s peer id %s in nodes.json, key gives %s", info.Name, info.PeerID, id)
		}
		if pwCfg, err := sigs.ReadPassword(cfg.Path(cfg.PasswordFile), cfg.PasswordEnv); err != nil || pwCfg != "pw" {
			t.Errorf("%s config password file: %q, %v", info.Name, pwCfg, err)
		}
		if got, err := consensus.LoadGenesis(cfg.Path(cfg.Genesis)); err != nil || got.Hash() != g.Hash() {
			t.Errorf("%s config genesis: %v", info.Name, err)
		}

		port := strconv.Itoa(base + 2*i)
		wantListen := []string{"/ip4/127.0.0.1/tcp/" + port, "/ip4/127.0.0.1/udp/" + port + "/quic-v1"}
		if strings.Join(cfg.P2P.Listen, " ") != strings.Join(wantListen, " ") {
			t.Errorf("%s listens on %v, want %v", info.Name, cfg.P2P.Listen, wantListen)
		}
		wantP2P := []string{wantListen[0] + "/p2p/" + info.PeerID, wantListen[1] + "/p2p/" + info.PeerID}
		if strings.Join(info.P2P, " ") != strings.Join(wantP2P, " ") {
			t.Errorf("%s nodes.json p2p %v, want %v", info.Name, info.P2P, wantP2P)
		}
		apiPort := strconv.Itoa(base + 1000 + i)
		if cfg.API.Listen != "127.0.0.1:"+apiPort || info.API != "http://127.0.0.1:"+apiPort {
			t.Errorf("%s api %s / %s, want port %s", info.Name, cfg.API.Listen, info.API, apiPort)
		}
		wantBoot := loaded.Nodes[0].P2P[0]
		if i == 0 {
			wantBoot = loaded.Nodes[1].P2P[0]
		}
		if len(cfg.P2P.Bootstrap) != 1 || cfg.P2P.Bootstrap[0] != wantBoot {
			t.Errorf("%s bootstraps to %v, want %s", info.Name, cfg.P2P.Bootstrap, wantBoot)
		}
		if cfg.Verifier.Backend != DefaultBackend || cfg.Verifier.KnowledgeBase != "" {
			t.Errorf("%s verifier %+v, want %s with the sample knowledge base", info.Name, cfg.Verifier, DefaultBackend)
		}
		if cfg.DataDir != "data" || cfg.Name != info.Name {
			t.Errorf("%s config name %q data dir %q", info.Name, cfg.Name, cfg.DataDir)
		}
	}
}

func TestInitRandomPasswordAndSingleNode(t *testing.T) {
	dir := t.TempDir()
	layout, err := Init(InitOptions{Dir: dir, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(layout.Nodes[0].Home)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.P2P.Bootstrap) != 0 {
		t.Errorf("a single node bootstraps to %v", cfg.P2P.Bootstrap)
	}
	if !strings.HasSuffix(cfg.API.Listen, ":"+strconv.Itoa(DefaultBasePort+1000)) {
		t.Errorf("api %s: want the default base port", cfg.API.Listen)
	}
	opts, err := node.FromConfig(cfg)
	if err != nil {
		t.Fatalf("options from config: %v", err)
	}
	if opts.Genesis.NetworkID != DefaultNetworkID || opts.Genesis.Validators[0].Stake != DefaultStake {
		t.Errorf("genesis %+v: want the default network id and stake", opts.Genesis)
	}
	pw, err := os.ReadFile(filepath.Join(layout.Nodes[0].Home, PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.TrimSpace(string(pw))) != 32 {
		t.Errorf("random password %q: want 32 hex digits", pw)
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	first, err := Init(InitOptions{Dir: dir, Nodes: 3, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(InitOptions{Dir: dir, Nodes: 2, Password: "pw"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if l, err := LoadLayout(dir); err != nil || l.Nodes[0].Address != first.Nodes[0].Address {
		t.Fatalf("refused Init changed the testnet: %v", err)
	}

	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := Init(InitOptions{Dir: dir, Nodes: 2, Password: "pw", Force: true})
	if err != nil {
		t.Fatalf("forced Init: %v", err)
	}
	if second.Nodes[0].Address == first.Nodes[0].Address {
		t.Error("forced Init kept node0's key")
	}
	if _, err := os.Stat(filepath.Join(dir, "node2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("forced Init left the old node2 home: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("forced Init removed a file it did not write: %v", err)
	}
}

func TestInitRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts InitOptions
	}{
		{"no directory", InitOptions{Nodes: 3}},
		{"zero nodes", InitOptions{Dir: "x", Nodes: 0}},
		{"more nodes than validators allowed", InitOptions{Dir: "x", Nodes: consensus.MaxValidators + 1}},
		{"p2p ports reach the api ports", InitOptions{Dir: "x", Nodes: 501}},
		{"ports past 65535", InitOptions{Dir: "x", Nodes: 3, BasePort: 65000}},
		{"privileged ports", InitOptions{Dir: "x", Nodes: 3, BasePort: 80}},
		{"total stake overflows", InitOptions{Dir: "x", Nodes: 8, Stake: consensus.MaxTotalStake / 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Dir = filepath.Join(t.TempDir(), tc.opts.Dir)
			if tc.name == "no directory" {
				tc.opts.Dir = ""
			}
			if _, err := Init(tc.opts); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Init: %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestLoadLayoutErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadLayout(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing nodes.json: %v, want not exist", err)
	}
	for name, content := range map[string]string{
		"not json":      "{",
		"empty list":    "[]",
		"unknown field": `[{"name":"node0","home":"node0","color":"red"}]`,
		"no home":       `[{"name":"node0"}]`,
		"duplicate":     `[{"name":"node0","home":"a"},{"name":"node0","home":"b"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, NodesFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadLayout(dir); !errors.Is(err, ErrInvalidLayout) {
				t.Errorf("LoadLayout: %v, want ErrInvalidLayout", err)
			}
		})
	}
	if err := os.WriteFile(filepath.Join(dir, NodesFile), []byte(`[{"name":"node0","home":"node0"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Nodes[0].Home != filepath.Join(l.Dir, "node0") {
		t.Errorf("relative home resolved to %s", l.Nodes[0].Home)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for lines, want := range map[int]string{0: "", 1: "d\n", 2: "c\nd\n", 4: "a\nb\nc\nd\n", 10: "a\nb\nc\nd\n"} {
		if got, err := Tail(path, lines); err != nil || got != want {
			t.Errorf("Tail(%d) = %q, %v; want %q", lines, got, err, want)
		}
	}
}

func TestInProcessFromInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	dir := t.TempDir()
	if _, err := Init(InitOptions{Dir: dir, Nodes: 3, BasePort: freeBasePort(t, 3), Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupBound)
	tn, err := StartInProcess(ctx, dir)
	// The start-up context bounds start-up only: the network keeps running.
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	nodes := tn.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("%d nodes running, want 3", len(nodes))
	}
	layout, err := LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if !n.Ready() {
			t.Errorf("%s not ready after StartInProcess", n.Name())
		}
		if n.PeerID().String() != layout.Nodes[i].PeerID || n.Address() != layout.Nodes[i].Address {
			t.Errorf("%s runs as %s %s, nodes.json says %s %s", n.Name(), n.Address(), n.PeerID(), layout.Nodes[i].Address, layout.Nodes[i].PeerID)
		}
		if n.APIURL() != layout.Nodes[i].API {
			t.Errorf("%s api %s, nodes.json says %s", n.Name(), n.APIURL(), layout.Nodes[i].API)
		}
	}

	// A job submitted to node0 is certified, and node2 stores a certificate
	// that verifies against the testnet's genesis.
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const output = "Paris is the capital of France. 2 + 2 = 4."
	id := submitHTTP(ctx, t, nodes[0].APIURL(), output)
	raw := awaitCertificate(ctx, t, nodes[2].APIURL(), id)
	cert, err := consensus.ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Status.Final() {
		t.Errorf("certificate status %s is not final", cert.Status)
	}
	if err := consensus.VerifyCertificate(cert, nodes[2].ValidatorSet(), []byte(output)); err != nil {
		t.Errorf("certificate does not verify: %v", err)
	}

	if err := tn.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// Every port is free again once the network stopped.
	for _, info := range layout.Nodes {
		ln, err := net.Listen("tcp", strings.TrimPrefix(info.API, "http://"))
		if err != nil {
			t.Errorf("%s api port still taken after Stop: %v", info.Name, err)
			continue
		}
		ln.Close()
	}
}

func TestEphemeral(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupBound)
	defer cancel()
	tn, err := NewEphemeral(ctx, EphemeralOptions{Nodes: 3, NetworkID: 9, APIs: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	if tn.Genesis().NetworkID != 9 {
		t.Errorf("network id %d, want 9", tn.Genesis().NetworkID)
	}
	for i, n := range tn.Nodes() {
		if !n.Ready() {
			t.Errorf("%s not ready", n.Name())
		}
		if n.Address() != tn.Genesis().Validators[i].Address {
			t.Errorf("%s address %s, genesis says %s", n.Name(), n.Address(), tn.Genesis().Validators[i].Address)
		}
		if n.APIURL() == "" {
			t.Errorf("%s has no API", n.Name())
		} else if !Healthy(ctx, nil, n.APIURL()) {
			t.Errorf("%s /healthz is not 200", n.Name())
		}
	}
	if err := tn.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestEphemeralTempDirRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupBound)
	defer cancel()
	tn, err := NewEphemeral(ctx, EphemeralOptions{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	tmp := tn.tempDir
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("store directory: %v", err)
	}
	if err := tn.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary store directory left behind: %v", err)
	}
}

// submitHTTP posts output to api's /v1/verify and returns the job id.
func submitHTTP(ctx context.Context, t *testing.T, api, output string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"output": output})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v1/verify", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/verify: %s: %s", resp.Status, data)
	}
	var job struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(data, &job); err != nil || job.JobID == "" {
		t.Fatalf("POST /v1/verify answered %s (%v)", data, err)
	}
	return job.JobID
}

// awaitCertificate polls api's certificate route for job id until it
// answers 200 or ctx ends.
func awaitCertificate(ctx context.Context, t *testing.T, api, id string) []byte {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/v1/jobs/"+id+"/certificate", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			data, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return data
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no certificate for job %s at %s: %v", id, api, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestInitKeepsForeignDirectories: a node named like a directory the
// testnet does not own is refused, so that a later init --force can never
// remove that directory.
func TestInitKeepsForeignDirectories(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "backup"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "backup", "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest([]byte("[[node]]\nname = \"backup\"\n[[node]]\nname = \"other\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Init(InitOptions{Dir: dir, Manifest: m, Force: true, BasePort: 23700})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("init over a foreign directory: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup", "precious.txt")); err != nil {
		t.Fatalf("the foreign directory was touched: %v", err)
	}
}

// startupBound bounds a test network's start (keys decrypted with scrypt,
// hosts, meshes): a bound, not an expectation, generous enough for a
// 2-core machine whose every core another process keeps busy, where 30s
// and 90s ran out.
const startupBound = 5 * time.Minute
