package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/store"
)

// Defaults of CheckOptions.
const (
	// DefaultLockTimeout is how long Check waits for a store's file lock.
	DefaultLockTimeout = 500 * time.Millisecond
	// DefaultDeadlineGrace is how long past its deadline a job may still
	// be provisional before Check reports it.
	DefaultDeadlineGrace = 2 * time.Second
)

// StoreFile is the name of a node's store inside its data directory.
const StoreFile = "verity.db"

// ErrStoreLocked means a node's store is locked by the running node: stop
// the testnet before checking it.
var ErrStoreLocked = errors.New("store is locked by a running node")

// StoreRef names one node's store file.
type StoreRef struct {
	Name string
	Path string
}

// CheckOptions configure Check and CheckStores.
type CheckOptions struct {
	// Now is the time deadlines are compared with (default time.Now()).
	Now time.Time
	// DeadlineGrace: default DefaultDeadlineGrace.
	DeadlineGrace time.Duration
	// LockTimeout: default DefaultLockTimeout.
	LockTimeout time.Duration
	// Compare, when set, is a snapshot taken earlier (before a crash): every
	// certificate a node held then must still be in its store.
	Compare *Snapshot
}

// Report is what Check found. OK reports whether every invariant held.
type Report struct {
	CheckedAt time.Time    `json:"checked_at"`
	Nodes     []NodeReport `json:"nodes"`
	// BadCertificates failed consensus.VerifyCertificate against the genesis.
	BadCertificates []BadCertificate `json:"bad_certificates"`
	// BadEvidence failed consensus.Evidence.Verify.
	BadEvidence []BadEvidence `json:"bad_evidence"`
	// Conflicts are claims decided true on one node and false on another.
	Conflicts []Conflict `json:"conflicts"`
	// Splits are jobs whose certificates state different statuses or
	// verdicts on different nodes (true on one, undecided on another
	// included): every node must serve one outcome per job.
	Splits []Split `json:"splits"`
	// Overdue are jobs a node accepted as gateway that are still
	// provisional past their deadline (plus the grace).
	Overdue []JobRef `json:"overdue"`
	// Missing are certificates the compared snapshot lists and the store
	// no longer holds.
	Missing []JobRef `json:"missing"`
	// Pending are gateway jobs still provisional whose deadline has not
	// passed: not a failure, but not checked either.
	Pending []JobRef `json:"pending"`
	// Evidence summarises the equivocation evidence the stores hold.
	Evidence []EvidenceSummary `json:"evidence"`
}

// NodeReport counts one node's store.
type NodeReport struct {
	Name         string                   `json:"name"`
	Store        string                   `json:"store"`
	NoStore      bool                     `json:"no_store,omitempty"`
	Jobs         int                      `json:"jobs"`
	GatewayJobs  int                      `json:"gateway_jobs"`
	Certificates int                      `json:"certificates"`
	Statuses     map[consensus.Status]int `json:"statuses"`
	Evidence     int                      `json:"evidence"`
}

// BadCertificate is a stored certificate that does not verify, or is not
// final.
type BadCertificate struct {
	Node  string      `json:"node"`
	JobID common.Hash `json:"job_id"`
	Error string      `json:"error"`
	// BelowFloor: the certificate is below the genesis policy's security
	// floor.
	BelowFloor bool `json:"below_floor,omitempty"`
	// NotFinal: its signatures hold, but it is not final.
	NotFinal bool `json:"not_final,omitempty"`
}

// Split is a job whose stored certificates differ across nodes: each
// outcome ("rejected: true false true") with the nodes that hold it.
type Split struct {
	JobID    common.Hash         `json:"job_id"`
	Outcomes map[string][]string `json:"outcomes"`
}

// BadEvidence is stored evidence that does not verify.
type BadEvidence struct {
	Node      string         `json:"node"`
	Validator common.Address `json:"validator"`
	JobID     common.Hash    `json:"job_id"`
	Error     string         `json:"error"`
}

// Conflict is a claim of one job decided both ways across nodes.
type Conflict struct {
	JobID common.Hash `json:"job_id"`
	Claim uint32      `json:"claim"`
	Text  string      `json:"text"`
	True  []string    `json:"true_on"`
	False []string    `json:"false_on"`
}

// JobRef names a job on a node.
type JobRef struct {
	Node     string           `json:"node"`
	JobID    common.Hash      `json:"job_id"`
	Status   consensus.Status `json:"status,omitempty"`
	Deadline time.Time        `json:"deadline,omitzero"`
}

// EvidenceSummary is the evidence against one validator.
type EvidenceSummary struct {
	Validator common.Address `json:"validator"`
	Name      string         `json:"name"`
	Jobs      int            `json:"jobs"`
	Nodes     []string       `json:"held_by"`
}

// OK reports whether every invariant held.
func (r *Report) OK() bool {
	return len(r.BadCertificates) == 0 && len(r.BadEvidence) == 0 && len(r.Conflicts) == 0 &&
		len(r.Splits) == 0 && len(r.Overdue) == 0 && len(r.Missing) == 0
}

// Snapshot lists the certificates each node's store held at a time.
type Snapshot struct {
	TakenAt      time.Time                `json:"taken_at"`
	Certificates map[string][]common.Hash `json:"certificates"`
}

// WriteSnapshot writes s as JSON to path.
func WriteSnapshot(path string, s *Snapshot) error { return writeJSON(path, s) }

// LoadSnapshot reads a snapshot WriteSnapshot wrote.
func LoadSnapshot(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var s Snapshot
	// About 70 bytes per certificate per node.
	if err := strictjson.Decode(data, &s, 256<<20); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return &s, nil
}

// Stores lists the store file of every node of the testnet, from each
// node's config.toml.
func (l *Layout) Stores() ([]StoreRef, error) {
	out := make([]StoreRef, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		cfg, err := node.LoadConfig(n.Home)
		if err != nil {
			return nil, err
		}
		out = append(out, StoreRef{Name: n.Name, Path: filepath.Join(cfg.Path(cfg.DataDir), StoreFile)})
	}
	return out, nil
}

// Check reads the store of every node of the testnet in dir and checks it
// against dir/genesis.json; see CheckStores. It also returns the snapshot
// of the certificates the stores hold.
func Check(ctx context.Context, dir string, opts CheckOptions) (*Report, *Snapshot, error) {
	l, err := LoadLayout(dir)
	if err != nil {
		return nil, nil, err
	}
	g, err := consensus.LoadGenesis(l.GenesisPath())
	if err != nil {
		return nil, nil, err
	}
	refs, err := l.Stores()
	if err != nil {
		return nil, nil, err
	}
	return CheckStores(ctx, g, refs, opts)
}

// CheckStores reads each store (a consistent copy taken under a read-only
// lock, so the stores are not changed) and reports: certificates that fail
// verification against g, evidence that fails verification, claims decided
// true on one node and false on another, gateway jobs still provisional
// past their deadline, and, with opts.Compare, certificates missing since
// the snapshot. A store locked by a running node is an error wrapping
// ErrStoreLocked; a store file that does not exist is an empty store.
//
// Each store is scanned alone (scanStore: the rules one store must keep);
// what the scans saw is then compared across stores (crossStore).
func CheckStores(ctx context.Context, g *consensus.Genesis, stores []StoreRef, opts CheckOptions) (*Report, *Snapshot, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.DeadlineGrace == 0 {
		opts.DeadlineGrace = DefaultDeadlineGrace
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	set, err := g.ValidatorSet()
	if err != nil {
		return nil, nil, err
	}
	// Empty lists, not nulls, in the JSON report.
	r := &Report{CheckedAt: opts.Now.UTC(), Nodes: []NodeReport{}, BadCertificates: []BadCertificate{}, BadEvidence: []BadEvidence{},
		Conflicts: []Conflict{}, Splits: []Split{}, Overdue: []JobRef{}, Missing: []JobRef{}, Pending: []JobRef{}, Evidence: []EvidenceSummary{}}
	cross := newCrossStore()
	for _, ref := range stores {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		nr, err := scanStore(ref, set, opts, r, cross)
		if err != nil {
			return nil, nil, err
		}
		r.Nodes = append(r.Nodes, nr)
	}
	cross.report(r, set)
	if opts.Compare != nil {
		r.Missing = append(r.Missing, missingSince(opts.Compare, cross.held)...)
	}
	for _, ids := range cross.held {
		slices.SortFunc(ids, func(a, b common.Hash) int { return bytes.Compare(a[:], b[:]) })
	}
	return r, &Snapshot{TakenAt: r.CheckedAt, Certificates: cross.held}, nil
}

// scanStore reads one node's store, adds to r what breaks a rule of that
// store alone (a certificate or evidence that does not verify, a gateway
// job overdue) and hands what other stores must agree with to cross.
func scanStore(ref StoreRef, set *consensus.ValidatorSet, opts CheckOptions, r *Report, cross *crossStore) (NodeReport, error) {
	nr := NodeReport{Name: ref.Name, Store: ref.Path, Statuses: map[consensus.Status]int{}}
	st, cleanup, err := openCopy(ref, opts.LockTimeout)
	if errors.Is(err, os.ErrNotExist) {
		nr.NoStore = true
		cross.held[ref.Name] = nil
		return nr, nil
	}
	if err != nil {
		return nr, err
	}
	defer cleanup()
	ids := []common.Hash{}
	if err := st.Certificates(func(c *consensus.Certificate) bool {
		nr.Certificates++
		ids = append(ids, c.JobID)
		if err := consensus.VerifyCertificate(c, set, nil); err != nil {
			r.BadCertificates = append(r.BadCertificates, BadCertificate{Node: ref.Name, JobID: c.JobID, Error: err.Error(),
				BelowFloor: errors.Is(err, consensus.ErrBelowFloor),
				NotFinal:   errors.Is(err, consensus.ErrNotFinal) && !consensus.IsVerificationError(err)})
		}
		cross.addCertificate(ref.Name, c)
		return true
	}); err != nil {
		return nr, fmt.Errorf("%s: read certificates: %w", ref.Name, err)
	}
	cross.held[ref.Name] = ids
	if err := st.Jobs(func(j *store.Job) bool {
		scanJob(&nr, j, opts, r)
		return true
	}); err != nil {
		return nr, fmt.Errorf("%s: read jobs: %w", ref.Name, err)
	}
	evs, err := st.AllEvidence()
	if err != nil {
		return nr, fmt.Errorf("%s: read evidence: %w", ref.Name, err)
	}
	nr.Evidence = len(evs)
	for _, e := range evs {
		if err := e.Evidence.Verify(set); err != nil {
			r.BadEvidence = append(r.BadEvidence, BadEvidence{Node: ref.Name, Validator: e.Validator, JobID: e.First.JobID, Error: err.Error()})
			continue
		}
		cross.addEvidence(ref.Name, &e.Evidence)
	}
	return nr, nil
}

// scanJob counts one stored job and reports a gateway job still
// provisional: overdue past its deadline and opts.DeadlineGrace, pending
// before.
func scanJob(nr *NodeReport, j *store.Job, opts CheckOptions, r *Report) {
	nr.Jobs++
	nr.Statuses[j.Status]++
	if !j.Gateway {
		return
	}
	nr.GatewayJobs++
	if j.Status.Final() {
		return
	}
	ref := JobRef{Node: nr.Name, JobID: j.ID, Status: j.Status, Deadline: j.Deadline}
	if opts.Now.After(j.Deadline.Add(opts.DeadlineGrace)) {
		r.Overdue = append(r.Overdue, ref)
	} else {
		r.Pending = append(r.Pending, ref)
	}
}

// claimKey is one claim of one job.
type claimKey struct {
	job   common.Hash
	claim uint32
}

// crossStore gathers what the stores hold that they must agree on: the
// decided verdict of each claim, the outcome of each job, and who holds
// evidence against whom.
type crossStore struct {
	held map[string][]common.Hash
	// decisions[claim][verdict] = nodes; texts[claim] its text.
	decisions map[claimKey]map[consensus.Outcome][]string
	texts     map[claimKey]string
	// outcomes[job][outcome] = nodes.
	outcomes map[common.Hash]map[string][]string
	// evidence[validator][job] = nodes holding it.
	evidence map[common.Address]map[common.Hash]map[string]bool
}

func newCrossStore() *crossStore {
	return &crossStore{
		held:      map[string][]common.Hash{},
		decisions: map[claimKey]map[consensus.Outcome][]string{},
		texts:     map[claimKey]string{},
		outcomes:  map[common.Hash]map[string][]string{},
		evidence:  map[common.Address]map[common.Hash]map[string]bool{},
	}
}

func (x *crossStore) addCertificate(node string, c *consensus.Certificate) {
	if x.outcomes[c.JobID] == nil {
		x.outcomes[c.JobID] = map[string][]string{}
	}
	o := outcomeOf(c)
	x.outcomes[c.JobID][o] = append(x.outcomes[c.JobID][o], node)
	for _, cl := range c.Claims {
		if cl.Verdict != consensus.OutcomeTrue && cl.Verdict != consensus.OutcomeFalse {
			continue
		}
		k := claimKey{c.JobID, cl.Index}
		if x.decisions[k] == nil {
			x.decisions[k] = map[consensus.Outcome][]string{}
			x.texts[k] = cl.Text
		}
		x.decisions[k][cl.Verdict] = append(x.decisions[k][cl.Verdict], node)
	}
}

func (x *crossStore) addEvidence(node string, e *consensus.Evidence) {
	if x.evidence[e.Validator] == nil {
		x.evidence[e.Validator] = map[common.Hash]map[string]bool{}
	}
	if x.evidence[e.Validator][e.First.JobID] == nil {
		x.evidence[e.Validator][e.First.JobID] = map[string]bool{}
	}
	x.evidence[e.Validator][e.First.JobID][node] = true
}

// report adds the cross-store findings to r: claims decided both ways
// (conflicts), jobs with different outcomes (splits), and the evidence
// summary, each sorted.
func (x *crossStore) report(r *Report, set *consensus.ValidatorSet) {
	for k, d := range x.decisions {
		if len(d[consensus.OutcomeTrue]) > 0 && len(d[consensus.OutcomeFalse]) > 0 {
			r.Conflicts = append(r.Conflicts, Conflict{JobID: k.job, Claim: k.claim, Text: x.texts[k],
				True: d[consensus.OutcomeTrue], False: d[consensus.OutcomeFalse]})
		}
	}
	sort.Slice(r.Conflicts, func(i, j int) bool {
		a, b := r.Conflicts[i], r.Conflicts[j]
		if c := bytes.Compare(a.JobID[:], b.JobID[:]); c != 0 {
			return c < 0
		}
		return a.Claim < b.Claim
	})
	for id, byOutcome := range x.outcomes {
		if len(byOutcome) > 1 {
			r.Splits = append(r.Splits, Split{JobID: id, Outcomes: byOutcome})
		}
	}
	sort.Slice(r.Splits, func(i, j int) bool { return bytes.Compare(r.Splits[i].JobID[:], r.Splits[j].JobID[:]) < 0 })
	for v, jobs := range x.evidence {
		s := EvidenceSummary{Validator: v, Jobs: len(jobs)}
		if _, val, ok := set.Lookup(v); ok {
			s.Name = val.Name
		}
		nodes := map[string]bool{}
		for _, on := range jobs {
			for n := range on {
				nodes[n] = true
			}
		}
		for n := range nodes {
			s.Nodes = append(s.Nodes, n)
		}
		slices.Sort(s.Nodes)
		r.Evidence = append(r.Evidence, s)
	}
	sort.Slice(r.Evidence, func(i, j int) bool { return r.Evidence[i].Name < r.Evidence[j].Name })
}

// missingSince lists the certificates snap says a node held that it holds
// no more.
func missingSince(snap *Snapshot, held map[string][]common.Hash) []JobRef {
	var out []JobRef
	names := make([]string, 0, len(snap.Certificates))
	for n := range snap.Certificates {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		now := map[common.Hash]bool{}
		for _, id := range held[name] {
			now[id] = true
		}
		for _, id := range snap.Certificates[name] {
			if !now[id] {
				out = append(out, JobRef{Node: name, JobID: id})
			}
		}
	}
	return out
}

// outcomeOf is a certificate's status and verdicts in words.
func outcomeOf(c *consensus.Certificate) string {
	var b strings.Builder
	b.WriteString(string(c.Status))
	b.WriteString(":")
	for _, cl := range c.Claims {
		b.WriteString(" ")
		b.WriteString(string(cl.Verdict))
	}
	return b.String()
}

// openCopy copies the store at ref.Path (store.CopyFile: under a shared
// lock, waiting at most timeout for a running node's exclusive lock) to a
// temporary file and opens the copy. cleanup closes and removes the copy.
func openCopy(ref StoreRef, timeout time.Duration) (st *store.Store, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "verity-check-")
	if err != nil {
		return nil, nil, fmt.Errorf("check: %w", err)
	}
	copyPath := filepath.Join(tmp, StoreFile)
	err = store.CopyFile(ref.Path, copyPath, timeout)
	switch {
	case errors.Is(err, os.ErrNotExist):
		os.RemoveAll(tmp)
		return nil, nil, err
	case errors.Is(err, store.ErrLocked):
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("%w: %s: %s: stop the testnet (or the node) before checking", ErrStoreLocked, ref.Name, ref.Path)
	case err != nil:
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("%s: %w", ref.Name, err)
	}
	st, err = store.Open(copyPath)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("%s: %w", ref.Name, err)
	}
	return st, func() { st.Close(); os.RemoveAll(tmp) }, nil
}

// WriteText writes the report for people: a line per node, then every
// violation, then a verdict line.
func (r *Report) WriteText(w io.Writer) {
	for _, n := range r.Nodes {
		if n.NoStore {
			fmt.Fprintf(w, "%s: no store at %s\n", n.Name, n.Store)
			continue
		}
		var st []string
		for _, s := range []consensus.Status{consensus.StatusVerified, consensus.StatusRejected, consensus.StatusUnresolved, consensus.StatusProvisional} {
			if c := n.Statuses[s]; c > 0 {
				st = append(st, fmt.Sprintf("%d %s", c, s))
			}
		}
		fmt.Fprintf(w, "%s: %d jobs (%d as gateway; %s), %d certificates, %d evidence\n",
			n.Name, n.Jobs, n.GatewayJobs, strings.Join(st, ", "), n.Certificates, n.Evidence)
	}
	for _, e := range r.Evidence {
		fmt.Fprintf(w, "evidence: %s (%s) equivocated on %d jobs; held by %s\n", e.Name, e.Validator.Hex(), e.Jobs, strings.Join(e.Nodes, ", "))
	}
	if len(r.Pending) > 0 {
		fmt.Fprintf(w, "note: %d gateway jobs still provisional before their deadline (not checked)\n", len(r.Pending))
	}
	for _, b := range r.BadCertificates {
		switch {
		case b.BelowFloor:
			fmt.Fprintf(w, "FAIL certificate %s on %s is below the network's security floor: %s\n", b.JobID.Hex(), b.Node, b.Error)
		case b.NotFinal:
			fmt.Fprintf(w, "FAIL certificate %s on %s is not final: %s\n", b.JobID.Hex(), b.Node, b.Error)
		default:
			fmt.Fprintf(w, "FAIL certificate %s on %s does not verify: %s\n", b.JobID.Hex(), b.Node, b.Error)
		}
	}
	for _, b := range r.BadEvidence {
		fmt.Fprintf(w, "FAIL evidence against %s for job %s on %s does not verify: %s\n", b.Validator.Hex(), b.JobID.Hex(), b.Node, b.Error)
	}
	for _, c := range r.Conflicts {
		fmt.Fprintf(w, "FAIL job %s claim %d %q decided true on %s and false on %s\n",
			c.JobID.Hex(), c.Claim, c.Text, strings.Join(c.True, ", "), strings.Join(c.False, ", "))
	}
	for _, sp := range r.Splits {
		keys := make([]string, 0, len(sp.Outcomes))
		for o := range sp.Outcomes {
			keys = append(keys, o)
		}
		slices.Sort(keys)
		var parts []string
		for _, o := range keys {
			parts = append(parts, fmt.Sprintf("%s on %s", o, strings.Join(sp.Outcomes[o], ", ")))
		}
		fmt.Fprintf(w, "FAIL job %s has different certificates: %s\n", sp.JobID.Hex(), strings.Join(parts, "; "))
	}
	for _, j := range r.Overdue {
		fmt.Fprintf(w, "FAIL job %s accepted by %s is still %s, deadline was %s\n", j.JobID.Hex(), j.Node, j.Status, j.Deadline.UTC().Format(time.RFC3339))
	}
	for _, j := range r.Missing {
		fmt.Fprintf(w, "FAIL certificate %s was on %s at the snapshot and is missing now\n", j.JobID.Hex(), j.Node)
	}
	if r.OK() {
		fmt.Fprintln(w, "ok: every certificate verifies and is final, one outcome per job, no overdue jobs, no lost certificates")
		return
	}
	fmt.Fprintf(w, "check failed: %d bad certificates, %d bad evidence, %d conflicting claims, %d split jobs, %d overdue jobs, %d lost certificates\n",
		len(r.BadCertificates), len(r.BadEvidence), len(r.Conflicts), len(r.Splits), len(r.Overdue), len(r.Missing))
}
