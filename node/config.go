package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/models"
	"github.com/verity-network/verity/sigs"
)

// Config is a node's config.toml. Relative paths are relative to the node's
// home directory.
type Config struct {
	// Name is the validator's name, for logs and displays.
	Name string `toml:"name"`
	// Genesis is the path of genesis.json.
	Genesis string `toml:"genesis"`
	// KeyFile is the validator's keystore file. The password comes from
	// PasswordFile or, when that is empty, the environment variable
	// PasswordEnv (default VERITY_PASSWORD).
	KeyFile      string `toml:"key_file"`
	PasswordFile string `toml:"password_file"`
	PasswordEnv  string `toml:"password_env"`
	// DataDir holds the node's store (default "data").
	DataDir string `toml:"data_dir"`

	P2P        P2PConfig        `toml:"p2p"`
	API        APIConfig        `toml:"api"`
	Verifier   VerifierConfig   `toml:"verifier"`
	Decomposer DecomposerConfig `toml:"decomposer,omitempty"`
	Generator  GeneratorConfig  `toml:"generator,omitempty"`
	// Behaviour makes the validator misbehave, for fault tests only.
	Behaviour BehaviourConfig `toml:"behaviour,omitempty"`
	Consensus ConsensusConfig `toml:"consensus"`

	home string
}

// P2PConfig holds the libp2p settings.
type P2PConfig struct {
	// Listen multiaddrs, e.g. /ip4/127.0.0.1/tcp/9000 and
	// /ip4/127.0.0.1/udp/9000/quic-v1.
	Listen []string `toml:"listen"`
	// Bootstrap peers as full multiaddrs ending in /p2p/<peer id>.
	Bootstrap []string `toml:"bootstrap"`
	// GossipBallots publishes ballots on the ballots topic instead of
	// sending them straight to each job's gateway (see
	// node.Options.GossipBallots).
	GossipBallots bool `toml:"gossip_ballots,omitempty"`
	// MaxPeers is how many connections the node keeps (0, the default:
	// libp2p's, which trims to 160 above 192). A gateway that the
	// validators list as a bootstrap peer sets it above their number
	// (p2p.Config.MaxPeers).
	MaxPeers int `toml:"max_peers,omitempty,omitzero"`
}

// APIConfig holds the HTTP API settings.
type APIConfig struct {
	// Listen address, default 127.0.0.1:8080. Empty disables nothing: use
	// "off" to run without an API.
	Listen string `toml:"listen"`
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// Tokens maps client names to bearer tokens; when set, POST routes
	// need one. Keep config.toml private when you use them.
	Tokens map[string]string `toml:"tokens,omitempty"`
	// RateLimit is POST requests per second per client (default 50;
	// negative: no limit), with bursts of RateBurst (default 100).
	RateLimit float64 `toml:"rate_limit,omitempty,omitzero"`
	RateBurst int     `toml:"rate_burst,omitempty,omitzero"`
	// AdminTokenFile holds the bearer token of the admin routes (its first
	// line; keep the file mode 600). Empty: the node draws a token at each
	// start and writes it to data_dir/admin.token. No client token may
	// equal it.
	AdminTokenFile string `toml:"admin_token_file,omitempty"`
	// ReadHeaderTimeout, ReadTimeout (header and body), WriteTimeout (a
	// response; each write of an event stream) and IdleTimeout (a
	// keep-alive connection between requests) bound the time a client
	// holds a connection (defaults 10s, 30s, 30s, 60s).
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	WriteTimeout      Duration `toml:"write_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	// MaxConnections bounds the open connections (default 2048, at most
	// 3/4 of the file descriptor limit); MaxEventStreams the event
	// streams (default 512).
	MaxConnections  int `toml:"max_connections"`
	MaxEventStreams int `toml:"max_event_streams"`
	// ReplayEvents and ReplayBytes bound what one event stream replays
	// (default 1024 events, 4 MiB).
	ReplayEvents int `toml:"replay_events"`
	ReplayBytes  int `toml:"replay_bytes"`
}

// limits are the APILimits the config sets.
func (a *APIConfig) limits() APILimits {
	return APILimits{
		ReadHeaderTimeout: a.ReadHeaderTimeout.Duration, ReadTimeout: a.ReadTimeout.Duration,
		WriteTimeout: a.WriteTimeout.Duration, IdleTimeout: a.IdleTimeout.Duration,
		MaxConnections: a.MaxConnections, MaxEventStreams: a.MaxEventStreams,
		ReplayEvents: a.ReplayEvents, ReplayBytes: a.ReplayBytes,
	}
}

// ModelEndpoint is an OpenAI-compatible chat-completions endpoint
// (docs/models.md). The API key is read from the environment variable
// named by APIKeyEnv, never from the config.
type ModelEndpoint struct {
	BaseURL        string   `toml:"base_url,omitempty"`
	Model          string   `toml:"model,omitempty"`
	APIKeyEnv      string   `toml:"api_key_env,omitempty"`
	Timeout        Duration `toml:"timeout,omitempty"`
	MaxRetries     int      `toml:"max_retries,omitempty,omitzero"`
	MaxConcurrency int      `toml:"max_concurrency,omitempty,omitzero"`
}

func (m ModelEndpoint) spec(kind string) models.Spec {
	return models.Spec{
		Kind: kind, BaseURL: m.BaseURL, Model: m.Model, APIKeyEnv: m.APIKeyEnv,
		Timeout: m.Timeout.Duration, MaxRetries: m.MaxRetries, MaxConcurrency: m.MaxConcurrency,
	}
}

// GeneratorConfig chooses the backend of POST /v1/generate: "" (none),
// "simulated" (answers from a knowledge base, hallucinating at a set rate)
// or "openai" (a model endpoint).
type GeneratorConfig struct {
	Backend string `toml:"backend,omitempty"`
	ModelEndpoint
	HallucinationRate float64 `toml:"hallucination_rate,omitempty,omitzero"`
	Seed              uint64  `toml:"seed,omitempty,omitzero"`
	KnowledgeBase     string  `toml:"knowledge_base,omitempty"`
}

// DecomposerConfig chooses how outputs become claims: "rule" (default) or
// "model" (a model endpoint, falling back to the rules on any failure).
type DecomposerConfig struct {
	Backend string `toml:"backend,omitempty"`
	ModelEndpoint
}

// VerifierConfig chooses the verifier backend that judges claims.
type VerifierConfig struct {
	// Backend: "kb+arithmetic" (default), "kb", "arithmetic", "simulated"
	// or "model" (a model endpoint judging one claim at a time).
	Backend string `toml:"backend"`
	ModelEndpoint
	// KnowledgeBase is a knowledge base file; empty means the shipped sample.
	KnowledgeBase string `toml:"knowledge_base,omitempty"`
	// Accuracy and Seed configure the simulated backend, which wraps Inner
	// (default "kb+arithmetic").
	Accuracy float64 `toml:"accuracy,omitempty,omitzero"`
	Seed     uint64  `toml:"seed,omitempty,omitzero"`
	Inner    string  `toml:"inner,omitempty"`
}

// ConsensusConfig holds the defaults for jobs this node accepts.
type ConsensusConfig struct {
	// Quorum is "num/den" (more than that fraction of assigned stake) or
	// "NofM" (at least N of the M assigned validators). Default "2/3".
	Quorum string `toml:"quorum"`
	// Replication is the number of validators per claim; 0 means all.
	Replication uint32 `toml:"replication"`
	// Deadline is the default time a job may take (default 10s).
	Deadline Duration `toml:"deadline"`
	// MaxDeadline bounds a client's deadline_ms (default 10m).
	MaxDeadline Duration `toml:"max_deadline"`
	// MaxOutputBytes bounds an output's size (default 256 KiB).
	MaxOutputBytes int `toml:"max_output_bytes"`
	// MaxPendingJobs bounds the jobs this node aggregates at once
	// (default 10000); beyond it submissions get 503.
	MaxPendingJobs int `toml:"max_pending_jobs,omitempty,omitzero"`
}

// BehaviourConfig is Behaviour in config.toml: kind is honest (default),
// liar, random, copycat, silent, equivocator or slow.
type BehaviourConfig struct {
	Kind   string   `toml:"kind,omitempty"`
	Delay  Duration `toml:"delay,omitempty"`
	Jitter Duration `toml:"jitter,omitempty"`
	Seed   uint64   `toml:"seed,omitempty,omitzero"`
}

// Duration is a time.Duration written as a string ("10s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// LoadConfig reads home/config.toml and fills in defaults. Unknown keys are
// errors.
func LoadConfig(home string) (*Config, error) {
	path := filepath.Join(home, "config.toml")
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("config %s: unknown key %q", path, und[0].String())
	}
	c.home = home
	c.setDefaults()
	return &c, c.validate()
}

// WriteConfig writes c to home/config.toml.
func WriteConfig(home string, c *Config) error {
	f, err := os.OpenFile(filepath.Join(home, "config.toml"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := toml.NewEncoder(f).Encode(c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Home is the node's home directory.
func (c *Config) Home() string { return c.home }

// SetHome sets the directory relative paths are resolved against.
func (c *Config) SetHome(home string) { c.home = home }

// Path resolves p against the home directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.home, p)
}

func (c *Config) setDefaults() {
	if c.Genesis == "" {
		c.Genesis = "genesis.json"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.PasswordEnv == "" {
		c.PasswordEnv = "VERITY_PASSWORD"
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:8080"
	}
	var def Options // the defaults of Options: their one source
	def.setDefaults()
	orDefault(&c.API.MaxBodyBytes, def.MaxBodyBytes)
	l := c.API.limits()
	l.setDefaults()
	c.API.ReadHeaderTimeout.Duration, c.API.ReadTimeout.Duration = l.ReadHeaderTimeout, l.ReadTimeout
	c.API.WriteTimeout.Duration, c.API.IdleTimeout.Duration = l.WriteTimeout, l.IdleTimeout
	c.API.MaxConnections, c.API.MaxEventStreams = l.MaxConnections, l.MaxEventStreams
	c.API.ReplayEvents, c.API.ReplayBytes = l.ReplayEvents, l.ReplayBytes
	if c.Verifier.Backend == "" {
		c.Verifier.Backend = claims.DefaultBackend
	}
	if c.Consensus.Quorum == "" {
		c.Consensus.Quorum = def.Quorum.String()
	}
	orDefault(&c.Consensus.Deadline.Duration, def.Deadline)
	orDefault(&c.Consensus.MaxDeadline.Duration, def.MaxDeadline)
	orDefault(&c.Consensus.MaxOutputBytes, def.MaxOutputBytes)
}

func (c *Config) validate() error {
	if c.KeyFile == "" {
		return errors.New("config: key_file is required")
	}
	if len(c.P2P.Listen) == 0 {
		return errors.New("config: p2p.listen needs at least one multiaddr")
	}
	if c.P2P.MaxPeers < 0 {
		return fmt.Errorf("config: p2p.max_peers %d must not be negative", c.P2P.MaxPeers)
	}
	if c.Consensus.Deadline.Duration <= 0 || c.Consensus.Deadline.Duration > c.Consensus.MaxDeadline.Duration {
		return fmt.Errorf("config: consensus.deadline %s must be positive and at most max_deadline %s", c.Consensus.Deadline, c.Consensus.MaxDeadline)
	}
	l := c.API.limits()
	if err := l.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// FromConfig loads the key, genesis and verifier a config names. The
// keystore password comes from the config's password file or environment
// variable.
func FromConfig(cfg *Config) (Options, error) {
	g, err := consensus.LoadGenesis(cfg.Path(cfg.Genesis))
	if err != nil {
		return Options{}, err
	}
	pw, err := sigs.ReadPassword(cfg.Path(cfg.PasswordFile), cfg.PasswordEnv)
	if err != nil {
		return Options{}, fmt.Errorf("keystore password: %w", err)
	}
	key, err := sigs.UnlockKey(cfg.Path(cfg.KeyFile), pw)
	if err != nil {
		return Options{}, err
	}
	o := Options{
		Name:           cfg.Name,
		Key:            key,
		Genesis:        g,
		DataDir:        cfg.Path(cfg.DataDir),
		ListenAddrs:    cfg.P2P.Listen,
		Bootstrap:      cfg.P2P.Bootstrap,
		MaxPeers:       cfg.P2P.MaxPeers,
		APIListen:      cfg.API.Listen,
		MaxBodyBytes:   cfg.API.MaxBodyBytes,
		Tokens:         cfg.API.Tokens,
		RateLimit:      cfg.API.RateLimit,
		RateBurst:      cfg.API.RateBurst,
		APILimits:      cfg.API.limits(),
		MaxPendingJobs: cfg.Consensus.MaxPendingJobs,
		GossipBallots:  cfg.P2P.GossipBallots,
		Replication:    cfg.Consensus.Replication,
		Deadline:       cfg.Consensus.Deadline.Duration,
		MaxDeadline:    cfg.Consensus.MaxDeadline.Duration,
		MaxOutputBytes: cfg.Consensus.MaxOutputBytes,
	}
	if o.APIListen == "off" {
		o.APIListen = ""
	}
	if err := cfg.loadBackends(&o); err != nil {
		return Options{}, err
	}
	if o.Quorum, err = consensus.ParseQuorum(cfg.Consensus.Quorum); err != nil {
		return Options{}, fmt.Errorf("config consensus.quorum: %w", err)
	}
	if f := cfg.API.AdminTokenFile; f != "" {
		if o.AdminToken, err = readTokenFile(cfg.Path(f)); err != nil {
			return Options{}, fmt.Errorf("config api.admin_token_file: %w", err)
		}
	}
	return o, nil
}

// loadBackends sets the verifier, decomposer and generator the config
// names.
func (c *Config) loadBackends(o *Options) (err error) {
	if o.Verifier, err = c.verifier(); err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	switch c.Decomposer.Backend {
	case "", "rule":
	case models.KindModel, models.KindOpenAI:
		if o.Decomposer, err = models.NewModelDecomposer(c.Decomposer.spec(models.KindModel)); err != nil {
			return fmt.Errorf("decomposer: %w", err)
		}
	default:
		return fmt.Errorf("decomposer: unknown backend %q (want rule or model)", c.Decomposer.Backend)
	}
	if g := c.Generator; g.Backend != "" {
		spec := g.spec(g.Backend)
		spec.HallucinationRate, spec.Seed, spec.KnowledgeBase = g.HallucinationRate, g.Seed, c.Path(g.KnowledgeBase)
		if o.Generator, err = models.NewGenerator(spec); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
	}
	return nil
}

// verifier is the verifier backend the config names.
func (c *Config) verifier() (Verifier, error) {
	if b := c.Verifier.Backend; b == models.KindModel || b == models.KindOpenAI {
		return models.NewModelVerifier(c.Verifier.spec(models.KindModel))
	}
	return claims.NewVerifier(claims.VerifierSpec{
		Backend:       c.Verifier.Backend,
		KnowledgeBase: c.Path(c.Verifier.KnowledgeBase),
		Accuracy:      c.Verifier.Accuracy,
		Seed:          c.Verifier.Seed,
		Inner:         c.Verifier.Inner,
		Validator:     c.Name,
	})
}
