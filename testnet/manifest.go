package testnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/models"
	"github.com/verity-network/verity/node"
)

// ErrInvalidManifest means a manifest cannot be read or describes no
// testnet Init can write.
var ErrInvalidManifest = errors.New("invalid testnet manifest")

// Manifest describes a testnet in TOML: network settings, one table per
// node and a schedule of perturbations. docs/operations.md documents the
// format; testnet/examples/adversarial.toml is an example.
type Manifest struct {
	// NetworkID of the genesis (default 1337).
	NetworkID uint64 `toml:"network_id"`
	// Nodes is the number of validators when no [[node]] tables are given;
	// with tables it may be left out or must equal their number.
	Nodes int `toml:"nodes"`
	// BasePort is node0's p2p port (default 26600).
	BasePort int `toml:"base_port"`
	// Stake is the default stake of every node (default 100).
	Stake uint64 `toml:"stake"`
	// Backend is the default verifier backend (default "kb+arithmetic").
	Backend string `toml:"backend"`
	// Quorum, Replication and Deadline are every node's consensus defaults
	// for the jobs it accepts (node defaults: "2/3", all, 10s).
	Quorum      string        `toml:"quorum"`
	Replication uint32        `toml:"replication"`
	Deadline    node.Duration `toml:"deadline"`
	// Policy is the [policy] table: the network's security policy written
	// into genesis.json (default: consensus.DefaultPolicy).
	Policy *ManifestPolicy `toml:"policy"`

	Node         []ManifestNode `toml:"node"`
	Perturbation []Perturbation `toml:"perturbation"`
}

// ManifestPolicy is the [policy] table; see consensus.Policy. Fractions
// are written "num/den". Fields left out take the default policy's value.
type ManifestPolicy struct {
	ByzantineBelow string   `toml:"byzantine_below"`
	QuorumKinds    []string `toml:"quorum_kinds"`
	MinStakeQuorum string   `toml:"min_stake_quorum"`
	MinClaimStake  uint64   `toml:"min_claim_stake"`
}

// ConsensusPolicy is the policy the table describes.
func (p *ManifestPolicy) ConsensusPolicy() (*consensus.Policy, error) {
	out := consensus.DefaultPolicy()
	if p == nil {
		return &out, nil
	}
	var err error
	if p.ByzantineBelow != "" {
		if out.ByzantineBelow, err = parseFraction(p.ByzantineBelow); err != nil {
			return nil, fmt.Errorf("byzantine_below: %w", err)
		}
	}
	if len(p.QuorumKinds) > 0 {
		out.QuorumKinds = p.QuorumKinds
	}
	if p.MinStakeQuorum != "" {
		if out.MinStakeQuorum, err = parseFraction(p.MinStakeQuorum); err != nil {
			return nil, fmt.Errorf("min_stake_quorum: %w", err)
		}
	}
	out.MinClaimStake = p.MinClaimStake
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return &out, nil
}

// parseFraction reads "num/den".
func parseFraction(s string) (consensus.Fraction, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	num, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	den, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	if !ok || err1 != nil || err2 != nil || den == 0 {
		return consensus.Fraction{}, fmt.Errorf("%q is not num/den", s)
	}
	return consensus.Fraction{Num: num, Den: den}, nil
}

// ManifestNode is one [[node]] table.
type ManifestNode struct {
	// Name of the validator and of its home directory (default node<i>).
	Name string `toml:"name"`
	// Stake of the validator (default: the manifest's stake).
	Stake     uint64            `toml:"stake"`
	Verifier  ManifestVerifier  `toml:"verifier"`
	Behaviour ManifestBehaviour `toml:"behaviour"`
}

// ManifestVerifier is a node's [node.verifier] table; see node.VerifierConfig.
type ManifestVerifier struct {
	Backend  string  `toml:"backend"`
	Accuracy float64 `toml:"accuracy"`
	Seed     uint64  `toml:"seed"`
	Inner    string  `toml:"inner"`
}

// ManifestBehaviour is a node's [node.behaviour] table; see Behaviour.
type ManifestBehaviour struct {
	Kind   string        `toml:"kind"`
	Delay  node.Duration `toml:"delay"`
	Jitter node.Duration `toml:"jitter"`
	Seed   uint64        `toml:"seed"`
}

// Action is a perturbation applied to one node.
type Action string

// The perturbations a testnet can apply.
const (
	// ActionKill ends the node's process with SIGKILL (in-process: Stop).
	ActionKill Action = "kill"
	// ActionRestart starts a killed node again from the same home.
	ActionRestart Action = "restart"
	// ActionPause stops the node's process with SIGSTOP.
	ActionPause Action = "pause"
	// ActionResume continues a paused process with SIGCONT.
	ActionResume Action = "resume"
	// ActionDisconnect drops all the node's peer connections and refuses
	// new ones, through the node's POST /v1/admin/p2p.
	ActionDisconnect Action = "disconnect"
	// ActionConnect undoes ActionDisconnect.
	ActionConnect Action = "connect"
)

// Actions lists every action.
var Actions = []Action{ActionKill, ActionRestart, ActionPause, ActionResume, ActionDisconnect, ActionConnect}

// ErrUnknownAction is returned for an action that is not one of Actions.
var ErrUnknownAction = errors.New("unknown perturbation action")

// ParseAction checks that s names an action.
func ParseAction(s string) (Action, error) {
	a := Action(s)
	if !slices.Contains(Actions, a) {
		return "", fmt.Errorf("%w %q (want kill, restart, pause, resume, disconnect or connect)", ErrUnknownAction, s)
	}
	return a, nil
}

// Perturbation is one [[perturbation]] entry: at a time after the testnet
// is up, apply Action to Node.
type Perturbation struct {
	At     node.Duration `toml:"at" json:"at"`
	Node   string        `toml:"node" json:"node"`
	Action Action        `toml:"action" json:"action"`
}

func (p Perturbation) String() string {
	return fmt.Sprintf("%s %s at +%s", p.Action, p.Node, p.At.Duration)
}

// namePattern is what a node name may look like: it names a directory.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// LoadManifest reads and checks a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	m, err := ParseManifest(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseManifest decodes a manifest strictly (an unknown key is an error
// that names its line) and checks it.
func ParseManifest(src []byte) (*Manifest, error) {
	var m Manifest
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(&m)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrInvalidManifest, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, fmt.Errorf("%w: line %d: unknown key %q", ErrInvalidManifest, keyLine(src, k), k.String())
	}
	if err := m.validate(src); err != nil {
		return nil, err
	}
	return &m, nil
}

// NodeCount is the number of validators the manifest describes.
func (m *Manifest) NodeCount() int {
	if len(m.Node) > 0 {
		return len(m.Node)
	}
	return m.Nodes
}

// NodeName is the name of node i.
func (m *Manifest) NodeName(i int) string {
	if i < len(m.Node) && m.Node[i].Name != "" {
		return m.Node[i].Name
	}
	return nodeName(i)
}

// Schedule returns the perturbations ordered by time (stable for equal
// times).
func (m *Manifest) Schedule() []Perturbation {
	s := slices.Clone(m.Perturbation)
	slices.SortStableFunc(s, func(a, b Perturbation) int { return int(a.At.Duration - b.At.Duration) })
	return s
}

// invalidManifest is an error wrapping ErrInvalidManifest.
func invalidManifest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidManifest}, args...)...)
}

// validate checks the network settings, each [[node]] table and each
// [[perturbation]], then the schedule as a whole. src is the manifest's
// text, for line numbers.
func (m *Manifest) validate(src []byte) error {
	if err := m.validateNetwork(); err != nil {
		return err
	}
	names := make(map[string]bool)
	for i, n := range m.Node {
		name := m.NodeName(i)
		if err := validateNode(n, name, names); err != nil {
			return invalidManifest("line %d: %w", tableLine(src, "node", i), err)
		}
		names[name] = true
	}
	if n := m.NodeCount(); n > consensus.MaxValidators {
		return invalidManifest("%d nodes: at most %d", n, consensus.MaxValidators)
	}
	for i := len(m.Node); i < m.NodeCount(); i++ {
		names[nodeName(i)] = true
	}
	for i, p := range m.Perturbation {
		if err := validatePerturbation(p, names); err != nil {
			return invalidManifest("line %d: %w", tableLine(src, "perturbation", i), err)
		}
	}
	return checkSchedule(m.Schedule())
}

// validateNetwork checks the settings of the network as a whole.
func (m *Manifest) validateNetwork() error {
	if len(m.Node) > 0 && m.Nodes != 0 && m.Nodes != len(m.Node) {
		return invalidManifest("nodes = %d but %d [[node]] tables", m.Nodes, len(m.Node))
	}
	if m.NodeCount() < 1 {
		return invalidManifest("no nodes: set nodes = N or give [[node]] tables")
	}
	if m.Quorum != "" {
		if _, err := consensus.ParseQuorum(m.Quorum); err != nil {
			return invalidManifest("quorum: %w", err)
		}
	}
	if m.Deadline.Duration < 0 {
		return invalidManifest("deadline %s is negative", m.Deadline.Duration)
	}
	if _, err := m.Policy.ConsensusPolicy(); err != nil {
		return invalidManifest("policy: %w", err)
	}
	if m.Backend != "" {
		if err := checkBackend(ManifestVerifier{Backend: m.Backend}); err != nil {
			return invalidManifest("backend: %w", err)
		}
	}
	return nil
}

// validateNode checks one [[node]] table, named name; taken holds the
// names of the tables before it.
func validateNode(n ManifestNode, name string, taken map[string]bool) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("node name %q: use 1 to 32 letters, digits, '-' or '_'", name)
	}
	if taken[name] {
		return fmt.Errorf("duplicate node name %q", name)
	}
	if err := checkBackend(n.Verifier); err != nil {
		return fmt.Errorf("node %s verifier: %w", name, err)
	}
	b := Behaviour{Kind: n.Behaviour.Kind, Delay: n.Behaviour.Delay.Duration, Jitter: n.Behaviour.Jitter.Duration, Seed: n.Behaviour.Seed}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if b.Delay < 0 || b.Jitter < 0 {
		return fmt.Errorf("node %s: negative behaviour delay or jitter", name)
	}
	return nil
}

// validatePerturbation checks one [[perturbation]] against the node names.
func validatePerturbation(p Perturbation, names map[string]bool) error {
	if !names[p.Node] {
		return fmt.Errorf("perturbation of unknown node %q", p.Node)
	}
	if _, err := ParseAction(string(p.Action)); err != nil {
		return err
	}
	if p.At.Duration < 0 {
		return fmt.Errorf("perturbation at %s: negative time", p.At.Duration)
	}
	return nil
}

// nodeState is what checkSchedule knows of a node at a point of the
// schedule.
type nodeState struct{ down, paused, disconnected bool }

// checkSchedule replays the schedule per node and refuses actions that
// cannot apply: a restart of a node that runs, a resume of one not paused.
func checkSchedule(s []Perturbation) error {
	nodes := map[string]*nodeState{}
	for _, p := range s {
		st := nodes[p.Node]
		if st == nil {
			st = &nodeState{}
			nodes[p.Node] = st
		}
		if why := st.apply(p.Action); why != "" {
			return invalidManifest("perturbation %s: %s", p, why)
		}
	}
	return nil
}

// apply moves the state on by a; it says why a cannot apply, "" when it
// can.
func (st *nodeState) apply(a Action) (why string) {
	switch a {
	case ActionKill:
		if st.down {
			why = "the node is already down"
		}
		st.down, st.paused, st.disconnected = true, false, false
	case ActionRestart:
		if !st.down {
			why = "the node was not killed"
		}
		st.down = false
	case ActionPause:
		if st.down || st.paused {
			why = "the node is down or paused"
		}
		st.paused = true
	case ActionResume:
		if !st.paused {
			why = "the node is not paused"
		}
		st.paused = false
	case ActionDisconnect:
		if st.down || st.paused || st.disconnected {
			why = "the node is down, paused or already disconnected"
		}
		st.disconnected = true
	case ActionConnect:
		if st.down || st.paused || !st.disconnected {
			why = "the node is down, paused or not disconnected"
		}
		st.disconnected = false
	}
	return why
}

// checkBackend builds the verifier a node would build, to catch a wrong
// backend name or accuracy at init rather than at node start. Model
// backends need an endpoint the manifest does not describe.
func checkBackend(v ManifestVerifier) error {
	if v.Backend == models.KindModel {
		return errors.New("the model backend needs an endpoint: configure it in the node's config.toml")
	}
	if v.Backend == "" && v.Accuracy == 0 && v.Inner == "" {
		return nil
	}
	_, err := claims.NewVerifier(claims.VerifierSpec{Backend: v.Backend, Accuracy: v.Accuracy, Seed: v.Seed, Inner: v.Inner, Validator: "check"})
	return err
}

// keyLine finds the line where key is set in src: the line of the key
// inside its table, or the table's header. 0 when not found.
func keyLine(src []byte, key toml.Key) int {
	want := strings.Join(key, ".")
	var table string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '[' {
			table = strings.Trim(strings.SplitN(s, "#", 2)[0], "[] \t")
			table = strings.Join(strings.Fields(strings.ReplaceAll(table, ".", " ")), ".")
			if table == want {
				return line
			}
			continue
		}
		k, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		k = strings.Join(strings.Fields(strings.ReplaceAll(strings.Trim(strings.TrimSpace(k), `"`), ".", " ")), ".")
		full := k
		if table != "" {
			full = table + "." + k
		}
		if full == want {
			return line
		}
	}
	return 0
}

// tableLine is the line of the i-th [[name]] header in src; 0 when not
// found.
func tableLine(src []byte, name string, i int) int {
	sc := bufio.NewScanner(bytes.NewReader(src))
	seen := 0
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(strings.SplitN(sc.Text(), "#", 2)[0])
		if strings.HasPrefix(s, "[[") && strings.TrimSpace(strings.Trim(s, "[]")) == name {
			if seen == i {
				return line
			}
			seen++
		}
	}
	return 0
}

// ScheduleFile is the file in a testnet directory that holds the
// manifest's perturbation schedule, which `verity testnet up` runs. Init
// writes it when the manifest has perturbations.
const ScheduleFile = "schedule.json"

// LoadSchedule reads dir/schedule.json; a directory without one has an
// empty schedule.
func LoadSchedule(dir string) ([]Perturbation, error) {
	data, err := os.ReadFile(filepath.Join(dir, ScheduleFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	var s struct {
		Perturbations []Perturbation `json:"perturbations"`
	}
	if err := strictjson.Decode(data, &s, 1<<20); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidLayout, ScheduleFile, err)
	}
	for _, p := range s.Perturbations {
		if _, err := ParseAction(string(p.Action)); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidLayout, ScheduleFile, err)
		}
	}
	if err := checkSchedule(s.Perturbations); err != nil {
		return nil, err
	}
	return s.Perturbations, nil
}
