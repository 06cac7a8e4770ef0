package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/sigs"
)

// Defaults of InitOptions.
const (
	DefaultBasePort  = 26600
	DefaultNetworkID = 1337
	DefaultStake     = 100
	DefaultBackend   = claims.DefaultBackend
)

// apiPortOffset separates the API ports from the p2p ports: node i listens
// for peers on base+2i and serves its API on base+apiPortOffset+i.
const apiPortOffset = 1000

// File names inside a testnet directory and a node home.
const (
	GenesisFile  = "genesis.json"
	NodesFile    = "nodes.json"
	PasswordFile = "password.txt"
	// AdminTokenFile holds the node's admin token, which config.toml names
	// in [api] admin_token_file and `verity testnet perturb` sends.
	AdminTokenFile = "admin.token"
	KeystoreDir    = "keystore"
	LogFile        = "node.log"
	PIDFile        = "node.pid"
)

// Errors of Init and LoadLayout.
var (
	// ErrExists means the testnet directory already holds files; set Force
	// to replace the testnet in it.
	ErrExists = errors.New("testnet directory is not empty")
	// ErrInvalidOptions means InitOptions describe no testnet Init can write.
	ErrInvalidOptions = errors.New("invalid testnet options")
	// ErrInvalidLayout means nodes.json is missing fields or malformed.
	ErrInvalidLayout = errors.New("invalid testnet layout")
)

// InitOptions describe the testnet Init writes.
type InitOptions struct {
	// Dir is the testnet directory.
	Dir string
	// Nodes is the number of validators, at least 1.
	Nodes int
	// BasePort is node0's p2p port (TCP and QUIC); node i uses BasePort+2i
	// for p2p and BasePort+1000+i for its HTTP API. Default 26600.
	BasePort int
	// NetworkID is the genesis network id (default 1337).
	NetworkID uint64
	// Stake is every validator's stake (default 100).
	Stake uint64
	// Password encrypts every node's key and is written to each home as
	// password.txt. Default: a random hex string. Testnet keys are
	// throwaway keys; never reuse them on a real network.
	Password string
	// Backend is the verifier backend of every node (default
	// "kb+arithmetic", judged against the shipped sample knowledge base).
	Backend string
	// Policy is the genesis security policy (default
	// consensus.DefaultPolicy, or the manifest's [policy]).
	Policy *consensus.Policy
	// Force replaces the testnet files of a non-empty directory: genesis.json,
	// nodes.json, schedule.json and every node home (node<i> and those the
	// old nodes.json lists), stores and logs included. Other files are left
	// alone.
	Force bool
	// Manifest, when set, describes the testnet: its network settings fill
	// in the zero fields above (Nodes, when set, must agree with it), its
	// [[node]] tables set each node's name, stake, verifier and behaviour,
	// its quorum, replication and deadline go into every config.toml, and
	// its perturbations into DIR/schedule.json.
	Manifest *Manifest
}

// applyManifest fills in the zero fields of o from its manifest.
func (o *InitOptions) applyManifest() error {
	m := o.Manifest
	if m == nil {
		return nil
	}
	if o.Nodes != 0 && o.Nodes != m.NodeCount() {
		return fmt.Errorf("%w: %d nodes, the manifest describes %d", ErrInvalidOptions, o.Nodes, m.NodeCount())
	}
	o.Nodes = m.NodeCount()
	if o.BasePort == 0 {
		o.BasePort = m.BasePort
	}
	if o.NetworkID == 0 {
		o.NetworkID = m.NetworkID
	}
	if o.Stake == 0 {
		o.Stake = m.Stake
	}
	if o.Policy == nil {
		p, err := m.Policy.ConsensusPolicy()
		if err != nil {
			return fmt.Errorf("%w: policy: %w", ErrInvalidManifest, err)
		}
		o.Policy = p
	}
	if o.Backend == "" {
		o.Backend = m.Backend
	}
	return nil
}

// nodeSpec is what Init writes for one node.
type nodeSpec struct {
	name      string
	stake     uint64
	verifier  node.VerifierConfig
	behaviour node.BehaviourConfig
}

// specs lists the nodes o describes, node0 first.
func (o *InitOptions) specs() []nodeSpec {
	out := make([]nodeSpec, o.Nodes)
	for i := range out {
		s := nodeSpec{name: nodeName(i), stake: o.Stake, verifier: node.VerifierConfig{Backend: o.Backend}}
		if o.Manifest != nil && i < len(o.Manifest.Node) {
			n := o.Manifest.Node[i]
			s.name = o.Manifest.NodeName(i)
			if n.Stake != 0 {
				s.stake = n.Stake
			}
			if n.Verifier.Backend != "" {
				s.verifier.Backend = n.Verifier.Backend
			}
			s.verifier.Accuracy, s.verifier.Seed, s.verifier.Inner = n.Verifier.Accuracy, n.Verifier.Seed, n.Verifier.Inner
			s.behaviour = node.BehaviourConfig{Kind: n.Behaviour.Kind, Delay: n.Behaviour.Delay, Jitter: n.Behaviour.Jitter, Seed: n.Behaviour.Seed}
		}
		out[i] = s
	}
	return out
}

func (o *InitOptions) setDefaults() {
	if o.BasePort == 0 {
		o.BasePort = DefaultBasePort
	}
	if o.NetworkID == 0 {
		o.NetworkID = DefaultNetworkID
	}
	if o.Stake == 0 {
		o.Stake = DefaultStake
	}
	if o.Backend == "" {
		o.Backend = DefaultBackend
	}
}

func (o *InitOptions) validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("%w: no directory", ErrInvalidOptions)
	case o.Nodes < 1:
		return fmt.Errorf("%w: %d nodes: need at least 1", ErrInvalidOptions, o.Nodes)
	case o.Nodes > consensus.MaxValidators:
		return fmt.Errorf("%w: %d nodes: at most %d", ErrInvalidOptions, o.Nodes, consensus.MaxValidators)
	case 2*(o.Nodes-1) >= apiPortOffset:
		return fmt.Errorf("%w: %d nodes: p2p ports would run into the API ports; at most %d", ErrInvalidOptions, o.Nodes, apiPortOffset/2)
	case o.BasePort < 1024 || o.BasePort+apiPortOffset+o.Nodes-1 > 65535:
		return fmt.Errorf("%w: base port %d: ports %d to %d must lie in 1024..65535", ErrInvalidOptions,
			o.BasePort, o.BasePort, o.BasePort+apiPortOffset+o.Nodes-1)
	}
	var total uint64
	for _, s := range o.specs() {
		if s.stake > consensus.MaxTotalStake-total {
			return fmt.Errorf("%w: total stake of %d validators exceeds %d", ErrInvalidOptions, o.Nodes, consensus.MaxTotalStake)
		}
		total += s.stake
	}
	return nil
}

// NodeInfo is one entry of nodes.json.
type NodeInfo struct {
	Name    string         `json:"name"`
	Address common.Address `json:"address"`
	PeerID  string         `json:"peer_id"`
	// P2P are the node's listen multiaddrs, each ending in /p2p/<peer id>.
	P2P []string `json:"p2p"`
	// API is the base URL of the node's HTTP API.
	API string `json:"api"`
	// Home is the node's home directory (absolute).
	Home string `json:"home"`
}

// LogPath is where `verity testnet up` appends the node's output.
func (n NodeInfo) LogPath() string { return filepath.Join(n.Home, LogFile) }

// Layout is a testnet directory as Init wrote it.
type Layout struct {
	// Dir is the testnet directory (absolute).
	Dir   string
	Nodes []NodeInfo
}

// GenesisPath is the path of the testnet's genesis.json.
func (l *Layout) GenesisPath() string { return filepath.Join(l.Dir, GenesisFile) }

// NodesPath is the path of the testnet's nodes.json.
func (l *Layout) NodesPath() string { return filepath.Join(l.Dir, NodesFile) }

// nodeDirPattern matches the node homes Init creates.
var nodeDirPattern = regexp.MustCompile(`^node[0-9]+$`)

// Init writes a testnet: genesis.json, a home per node and nodes.json. It
// refuses a directory that holds anything unless opts.Force is set.
func Init(opts InitOptions) (*Layout, error) {
	if err := opts.applyManifest(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("testnet directory: %w", err)
	}
	if err := prepareDir(dir, opts.Force); err != nil {
		return nil, err
	}
	if opts.Password == "" {
		var b [16]byte
		rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		opts.Password = hex.EncodeToString(b[:])
	}
	specs := opts.specs()
	members := make([]member, opts.Nodes)
	for i := range members {
		if members[i], err = createMember(dir, i, specs[i].name, opts); err != nil {
			return nil, err
		}
	}
	if err := writeGenesis(dir, members, specs, opts); err != nil {
		return nil, err
	}
	layout := &Layout{Dir: dir}
	for i, m := range members {
		if err := writeMemberConfig(members, i, specs[i], opts); err != nil {
			return nil, fmt.Errorf("%s config: %w", m.info.Name, err)
		}
		layout.Nodes = append(layout.Nodes, m.info)
	}
	if err := writeJSON(layout.NodesPath(), layout.Nodes); err != nil {
		return nil, err
	}
	if m := opts.Manifest; m != nil && len(m.Perturbation) > 0 {
		s := struct {
			Perturbations []Perturbation `json:"perturbations"`
		}{m.Schedule()}
		if err := writeJSON(filepath.Join(dir, ScheduleFile), s); err != nil {
			return nil, err
		}
	}
	return layout, nil
}

// member is a node Init has created a home and a key for.
type member struct {
	info    NodeInfo
	keyFile string
}

// createMember creates the home of node i, named name, in dir: its password
// file, admin token and a new key.
func createMember(dir string, i int, name string, opts InitOptions) (member, error) {
	home := filepath.Join(dir, name)
	// A new directory: a node named like a directory already there (one
	// init does not own) must not adopt it, since a later init --force
	// removes the homes it lists.
	if err := os.Mkdir(home, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return member{}, fmt.Errorf("%w: node home %s is a directory this testnet does not own; rename the node or move the directory", ErrExists, home)
		}
		return member{}, fmt.Errorf("node home: %w", err)
	}
	if err := os.WriteFile(filepath.Join(home, PasswordFile), []byte(opts.Password+"\n"), 0o600); err != nil {
		return member{}, fmt.Errorf("password file: %w", err)
	}
	var tok [32]byte
	rand.Read(tok[:]) // never fails (crypto/rand, Go 1.24+)
	if err := os.WriteFile(filepath.Join(home, AdminTokenFile), []byte(hex.EncodeToString(tok[:])+"\n"), 0o600); err != nil {
		return member{}, fmt.Errorf("admin token file: %w", err)
	}
	addr, keyFile, err := sigs.NewKey(filepath.Join(home, KeystoreDir), opts.Password, true)
	if err != nil {
		return member{}, fmt.Errorf("%s key: %w", name, err)
	}
	key, err := sigs.UnlockKey(keyFile, opts.Password)
	if err != nil {
		return member{}, fmt.Errorf("%s key: %w", name, err)
	}
	id, err := p2p.PeerIDFromKey(key)
	if err != nil {
		return member{}, fmt.Errorf("%s peer id: %w", name, err)
	}
	suffix := "/p2p/" + id.String()
	tcp, quic := listenAddrs(opts.BasePort + 2*i)
	return member{
		info: NodeInfo{
			Name:    name,
			Address: addr,
			PeerID:  id.String(),
			P2P:     []string{tcp + suffix, quic + suffix},
			API:     "http://" + apiAddr(opts.BasePort, i),
			Home:    home,
		},
		keyFile: keyFile,
	}, nil
}

// writeGenesis writes dir/genesis.json with the members as validators,
// once it is valid and the manifest's consensus settings clear its
// security floor.
func writeGenesis(dir string, members []member, specs []nodeSpec, opts InitOptions) error {
	policy := consensus.DefaultPolicy()
	if opts.Policy != nil {
		policy = *opts.Policy
	}
	g := &consensus.Genesis{NetworkID: opts.NetworkID, Policy: &policy}
	for i, m := range members {
		g.Validators = append(g.Validators, consensus.Validator{Name: m.info.Name, Address: m.info.Address, Stake: specs[i].stake})
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if err := checkDefaultsAgainstFloor(g, opts.Manifest); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, GenesisFile), g)
}

// writeMemberConfig writes the config.toml of member i: node0 bootstraps
// to node1, every other node to node0.
func writeMemberConfig(members []member, i int, spec nodeSpec, opts InitOptions) error {
	m := members[i]
	var bootstrap []string
	switch {
	case i > 0:
		bootstrap = []string{members[0].info.P2P[0]}
	case len(members) > 1:
		bootstrap = []string{members[1].info.P2P[0]}
	}
	rel, err := filepath.Rel(m.info.Home, m.keyFile)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	tcp, quic := listenAddrs(opts.BasePort + 2*i)
	cfg := &node.Config{
		Name:         m.info.Name,
		Genesis:      filepath.Join("..", GenesisFile),
		KeyFile:      rel,
		PasswordFile: PasswordFile,
		DataDir:      "data",
		P2P:          node.P2PConfig{Listen: []string{tcp, quic}, Bootstrap: bootstrap},
		API:          node.APIConfig{Listen: apiAddr(opts.BasePort, i), AdminTokenFile: AdminTokenFile},
		Verifier:     spec.verifier,
		Behaviour:    spec.behaviour,
	}
	if mf := opts.Manifest; mf != nil {
		cfg.Consensus = node.ConsensusConfig{Quorum: mf.Quorum, Replication: mf.Replication, Deadline: mf.Deadline}
	}
	return writeConfig(m.info.Home, cfg)
}

// writeConfig writes cfg, reads it back through node.LoadConfig (which
// checks it and fills in the node's defaults) and writes the result, so that
// every setting a node runs with is spelled out in its config.toml.
func writeConfig(home string, cfg *node.Config) error {
	if err := node.WriteConfig(home, cfg); err != nil {
		return err
	}
	full, err := node.LoadConfig(home)
	if err != nil {
		return err
	}
	return node.WriteConfig(home, full)
}

func listenAddrs(port int) (tcp, quic string) {
	p := strconv.Itoa(port)
	return "/ip4/127.0.0.1/tcp/" + p, "/ip4/127.0.0.1/udp/" + p + "/quic-v1"
}

func apiAddr(base, i int) string {
	return "127.0.0.1:" + strconv.Itoa(base+apiPortOffset+i)
}

// prepareDir creates dir, or checks that it is empty, or with force removes
// the testnet files a previous Init wrote in it.
func prepareDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("testnet directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("testnet directory: %w", err)
	case len(entries) == 0:
		return nil
	case !force:
		return fmt.Errorf("%w: %s", ErrExists, dir)
	}
	// Homes the old nodes.json lists, when they lie directly in dir.
	homes := map[string]bool{}
	if old, err := LoadLayout(dir); err == nil {
		for _, n := range old.Nodes {
			if filepath.Dir(n.Home) == dir {
				homes[filepath.Base(n.Home)] = true
			}
		}
	}
	for _, e := range entries {
		name := e.Name()
		if name == GenesisFile || name == NodesFile || name == ScheduleFile ||
			(e.IsDir() && (nodeDirPattern.MatchString(name) || homes[name])) {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("replace testnet: %w", err)
			}
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// LoadLayout reads dir/nodes.json. Relative homes are resolved against dir.
func LoadLayout(dir string) (*Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testnet directory: %w", err)
	}
	l := &Layout{Dir: abs}
	data, err := os.ReadFile(l.NodesPath())
	if err != nil {
		return nil, fmt.Errorf("testnet layout: %w", err)
	}
	// A line of a few hundred bytes per node.
	if err := strictjson.Decode(data, &l.Nodes, 1<<20); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidLayout, l.NodesPath(), err)
	}
	if len(l.Nodes) == 0 {
		return nil, fmt.Errorf("%w: %s lists no nodes", ErrInvalidLayout, l.NodesPath())
	}
	seen := make(map[string]bool, len(l.Nodes))
	for i := range l.Nodes {
		n := &l.Nodes[i]
		if n.Name == "" || n.Home == "" {
			return nil, fmt.Errorf("%w: %s: entry %d has no name or home", ErrInvalidLayout, l.NodesPath(), i)
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("%w: %s: duplicate node name %q", ErrInvalidLayout, l.NodesPath(), n.Name)
		}
		seen[n.Name] = true
		if !filepath.IsAbs(n.Home) {
			n.Home = filepath.Join(abs, n.Home)
		}
	}
	return l, nil
}

// checkDefaultsAgainstFloor refuses a manifest whose quorum and
// replication, every node's defaults, would put a job below the genesis
// policy's security floor: every job submitted without parameters would be
// refused.
func checkDefaultsAgainstFloor(g *consensus.Genesis, m *Manifest) error {
	if m == nil || (m.Quorum == "" && m.Replication == 0) {
		return nil
	}
	set, err := g.ValidatorSet()
	if err != nil {
		return err
	}
	q := consensus.DefaultQuorum
	if m.Quorum != "" {
		if q, err = consensus.ParseQuorum(m.Quorum); err != nil {
			return fmt.Errorf("%w: quorum: %w", ErrInvalidManifest, err)
		}
	}
	p := consensus.JobParams{NetworkID: g.NetworkID, ClaimCount: 1, Quorum: q, Replication: m.Replication,
		Gateway: set.At(0).Address, Deadline: 1}
	if err := p.Validate(set); err != nil {
		return fmt.Errorf("%w: quorum %s with replication %d: %w (raise replication, or state the network's assumption in [policy])",
			ErrInvalidManifest, q, m.Replication, err)
	}
	return nil
}
