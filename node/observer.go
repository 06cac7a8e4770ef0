package node

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/fifo"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
)

// ballotBook remembers the first ballot of each validator for recent jobs,
// across every job the node sees gossiped (not only those it aggregates),
// so that every node detects equivocation and copycats can see what others
// voted. It holds at most maxJobs jobs, forgetting the oldest.
type ballotBook struct {
	mu   sync.Mutex
	jobs *fifo.Map[common.Hash, *bookJob]
}

type bookJob struct {
	first   map[common.Address]*consensus.Ballot
	changed chan struct{} // closed and replaced on every new ballot
}

func newBallotBook(maxJobs int) *ballotBook {
	return &ballotBook{jobs: fifo.New[common.Hash, *bookJob](maxJobs)}
}

func (bk *ballotBook) jobLocked(id common.Hash) *bookJob {
	j, ok := bk.jobs.Get(id)
	if !ok {
		j = &bookJob{first: make(map[common.Address]*consensus.Ballot), changed: make(chan struct{})}
		bk.jobs.Put(id, j)
	}
	return j
}

// record notes b and returns the earlier, different ballot of the same
// validator for the same job, if there is one (equivocation).
func (bk *ballotBook) record(b *consensus.Ballot) *consensus.Ballot {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	j := bk.jobLocked(b.JobID)
	prev, ok := j.first[b.Validator]
	if ok {
		if prev.Conflicts(b) {
			return prev
		}
		return nil
	}
	j.first[b.Validator] = b
	close(j.changed)
	j.changed = make(chan struct{})
	return nil
}

// observed returns the ballots seen for a job and a channel closed when
// the next one arrives.
func (bk *ballotBook) observed(id common.Hash) ([]*consensus.Ballot, <-chan struct{}) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	j := bk.jobLocked(id)
	out := make([]*consensus.Ballot, 0, len(j.first))
	for _, b := range j.first {
		out = append(out, b)
	}
	return out, j.changed
}

// checkEquivocation records b in the ballot book and, when it conflicts
// with an earlier ballot of the same validator, stores the evidence and
// gossips it.
func (n *Node) checkEquivocation(b *consensus.Ballot) {
	prev := n.book.record(b)
	if prev == nil {
		return
	}
	n.addEvidence(&consensus.Evidence{Validator: b.Validator, First: *prev, Second: *b}, true)
}

// addEvidence stores verified evidence once and, if asked, gossips it.
func (n *Node) addEvidence(e *consensus.Evidence, gossip bool) {
	added, err := n.store.AddEvidence(&store.Evidence{Evidence: *e, DetectedAt: n.opts.Now()})
	if err != nil {
		log.Errorw("store evidence", "validator", e.Validator.Hex(), "err", err)
		return
	}
	if !added {
		return
	}
	_, v, _ := n.set.Lookup(e.Validator)
	log.Warnw("equivocation evidence", "validator", e.Validator.Hex(), "name", v.Name, "job", e.First.JobID.Hex())
	if gossip {
		n.goTracked(func() { n.publish(p2p.KindEvidence, e) })
	}
}

// Evidence lists the stored equivocation evidence and the penalty record
// it makes against each validator.
func (n *Node) Evidence() (*api.EvidenceList, error) {
	all, err := n.store.AllEvidence()
	if err != nil {
		return nil, err
	}
	out := &api.EvidenceList{Evidence: []api.EvidenceRecord{}, Penalties: []api.Penalty{}}
	byValidator := map[common.Address]*api.Penalty{}
	for _, e := range all {
		out.Evidence = append(out.Evidence, api.EvidenceRecord{
			Validator: e.Validator, JobID: e.First.JobID, First: e.First, Second: e.Second, DetectedAt: e.DetectedAt,
		})
		p, ok := byValidator[e.Validator]
		if !ok {
			_, v, _ := n.set.Lookup(e.Validator)
			out.Penalties = append(out.Penalties, api.Penalty{Validator: e.Validator, Name: v.Name, Stake: v.Stake, Slashed: v.Stake})
			p = &out.Penalties[len(out.Penalties)-1]
			byValidator[e.Validator] = p
		}
		p.Jobs = append(p.Jobs, e.First.JobID)
	}
	return out, nil
}

// agreement counts, per validator, its true/false verdicts on claims that
// certificates decided and how many matched.
type agreement struct {
	decided, agreed uint64
}

// MinFlagSamples is how many decided verdicts a validator needs before it
// can be flagged.
const MinFlagSamples = 20

// countAgreement adds a stored certificate's ballots to the agreement
// counts. Each certificate is counted once (the caller stored it first).
//
// Besides the certificate's ballots, it counts the ballots this node saw
// gossiped for the job but that came after the decision, so that a
// validator whose verdicts never make it into certificates is judged too.
func (n *Node) countAgreement(c *consensus.Certificate) {
	votes := make([]consensus.Vote, 0, len(c.Ballots))
	in := make(map[common.Address]bool, len(c.Ballots))
	for _, b := range c.Ballots {
		votes = append(votes, b)
		in[b.Validator] = true
	}
	seen, _ := n.book.observed(c.JobID)
	for _, b := range seen {
		if !in[b.Validator] && b.OutputHash == c.OutputHash && b.ClaimsRoot == c.ClaimsRoot {
			votes = append(votes, b.Vote)
		}
	}
	n.statsMu.Lock()
	defer n.statsMu.Unlock()
	for _, b := range votes {
		a := n.stats[b.Validator]
		if a == nil {
			a = &agreement{}
			n.stats[b.Validator] = a
		}
		for k, ci := range b.ClaimIndexes {
			if int(ci) >= len(c.Claims) || k >= len(b.Verdicts) || b.Verdicts[k] == claims.Abstain {
				continue
			}
			var decided claims.Verdict
			switch c.Claims[ci].Verdict {
			case consensus.OutcomeTrue:
				decided = claims.True
			case consensus.OutcomeFalse:
				decided = claims.False
			default:
				continue
			}
			a.decided++
			if b.Verdicts[k] == decided {
				a.agreed++
			}
		}
	}
}

// ValidatorStats reports every validator's agreement and equivocations.
// A validator is flagged when, over at least MinFlagSamples decided
// verdicts, its agreement is not above one half by two standard deviations
// of a fair coin (agreed - decided/2 <= sqrt(decided)): no better than
// chance, as a random guesser or a liar.
func (n *Node) ValidatorStats() ([]api.ValidatorStats, error) {
	ev, err := n.store.AllEvidence()
	if err != nil {
		return nil, err
	}
	equiv := map[common.Address]int{}
	for _, e := range ev {
		equiv[e.Validator]++
	}
	n.statsMu.Lock()
	defer n.statsMu.Unlock()
	var out []api.ValidatorStats
	for _, v := range n.set.Validators() {
		s := api.ValidatorStats{Address: v.Address, Name: v.Name, Equivocations: equiv[v.Address]}
		if a := n.stats[v.Address]; a != nil {
			s.Decided, s.Agreed = a.decided, a.agreed
			if a.decided > 0 {
				s.Agreement = float64(a.agreed) / float64(a.decided)
			}
			if a.decided >= MinFlagSamples && float64(a.agreed)-float64(a.decided)/2 <= math.Sqrt(float64(a.decided)) {
				s.Flagged = true
				s.FlagReason = "agreement with decided outcomes is no better than chance"
			}
		}
		if s.Equivocations > 0 {
			s.Flagged = true
			s.FlagReason = "equivocation proven"
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b api.ValidatorStats) int { return a.Address.Cmp(b.Address) })
	return out, nil
}

// MaxEvidenceMessageSize bounds a gossiped evidence message.
const MaxEvidenceMessageSize = 2 * MaxBallotMessageSize

// DecodeEvidence decodes gossiped evidence and verifies it against set.
func DecodeEvidence(data []byte, set *consensus.ValidatorSet) (*consensus.Evidence, error) {
	if len(data) > MaxEvidenceMessageSize {
		return nil, fmt.Errorf("%w: evidence of %d bytes", ErrMessageTooLarge, len(data))
	}
	var e consensus.Evidence
	if err := strictjson.Decode(data, &e, MaxEvidenceMessageSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if err := e.Verify(set); err != nil {
		return nil, err
	}
	return &e, nil
}

// validateEvidence is the evidence topic validator.
func (n *Node) validateEvidence(_ context.Context, from peer.ID, data []byte) (p2p.Verdict, any) {
	e, err := DecodeEvidence(data, n.set)
	if err != nil {
		log.Debugw("evidence rejected", "from", from, "err", err)
		return p2p.Reject, nil
	}
	return p2p.Accept, e
}

// onEvidence stores verified evidence received from the network.
func (n *Node) onEvidence(v any) {
	if e, ok := v.(*consensus.Evidence); ok {
		n.addEvidence(e, false)
	}
}
