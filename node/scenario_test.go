package node_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/testtier"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// truth maps each known claim to its truth.
func truth() map[string]bool {
	m := map[string]bool{}
	for _, f := range trueFacts {
		m[f] = true
	}
	for _, f := range falseFacts {
		m[f] = false
	}
	return m
}

// checkDecisions fails on any claim decided against its known truth.
func checkDecisions(t *testing.T, c *consensus.Certificate) (decided int) {
	t.Helper()
	known := truth()
	for _, cl := range c.Claims {
		want, ok := known[cl.Text]
		if !ok || cl.Verdict == consensus.OutcomeUndecided {
			continue
		}
		decided++
		if got := cl.Verdict == consensus.OutcomeTrue; got != want {
			t.Errorf("job %s claim %q decided %s, truth is %v", c.JobID.Hex(), cl.Text, cl.Verdict, want)
		}
	}
	return decided
}

// TestScenarioLiarEquivocatorAndRestart: 7 validators of equal stake, one
// liar and one equivocator, and an honest node stopped and restarted in the
// middle of 60 jobs. Every job must end final, every certificate verify,
// no claim be decided against the truth, every node hold every certificate
// with no two nodes disagreeing, and the equivocator's evidence be
// recorded. TestLongScenarioLiarEquivocatorAndRestart runs 200 jobs.
func TestScenarioLiarEquivocatorAndRestart(t *testing.T) {
	scenarioLiarEquivocatorAndRestart(t, 60, 3*time.Minute)
}

func TestLongScenarioLiarEquivocatorAndRestart(t *testing.T) {
	testtier.Long(t, "7 nodes, 200 jobs, a restart")
	scenarioLiarEquivocatorAndRestart(t, 200, 10*time.Minute)
}

func scenarioLiarEquivocatorAndRestart(t *testing.T, jobs int, limit time.Duration) {
	const (
		validators = 7
		restarted  = 3
	)
	limit = testtier.Limit(t, limit)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	dir := t.TempDir()
	opts := make([]node.Options, validators)
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: validators, Dir: dir,
		Options: func(i int, o *node.Options) {
			o.Deadline = 5 * time.Second
			switch i {
			case 5:
				o.Ballots = ballotPolicy(t, testnet.BehaviourLiar)
			case 6:
				o.Ballots = ballotPolicy(t, testnet.BehaviourEquivocator)
			}
			opts[i] = *o
		}})
	if err != nil {
		t.Fatal(err)
	}
	nodes := net.Nodes()
	defer net.Stop()
	set := nodes[0].ValidatorSet()

	outputs, _ := knownOutputs(jobs)
	ids := make([]common.Hash, jobs)
	gateway := make([]int, jobs)
	var revived *node.Node
	for i, out := range outputs {
		if i == jobs/2 {
			// Stop node3 mid-run (its store stays), then start it again.
			if err := nodes[restarted].Stop(); err != nil {
				t.Fatal(err)
			}
			revived, err = node.New(opts[restarted])
			if err != nil {
				t.Fatal(err)
			}
			if err := revived.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer revived.Stop()
			nodes[restarted] = revived
			if err := waitUntil(ctx, func() bool { return revived.Ready() }); err != nil {
				t.Fatalf("node3 not ready after its restart: %v", err)
			}
		}
		g := i % 5 // gateways: node0..node4, the restarted one among them
		j, err := nodes[g].Submit(ctx, api.VerifyRequest{Output: out})
		if err != nil {
			t.Fatalf("submit %d to node%d: %v", i, g, err)
		}
		ids[i], gateway[i] = j.JobID, g
	}

	decided := 0
	statuses := map[consensus.Status]int{}
	for i, id := range ids {
		c, err := nodes[gateway[i]].WaitFinal(ctx, id)
		if err != nil {
			t.Fatalf("job %d (gateway node%d) not final within %v: %v; %d of %d jobs final before it (%v)", i, gateway[i], limit, err, i, jobs, statuses)
		}
		if err := consensus.VerifyCertificate(c, set, []byte(outputs[i])); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		statuses[c.Status]++
		decided += checkDecisions(t, c)
	}
	// Every node holds every job's certificate, node3 those of the jobs
	// that ended while it was down too (catch-up), and no two nodes
	// disagree on a decided verdict.
	conflicts, held := 0, 0
	for i, id := range ids {
		first, err := nodes[gateway[i]].Certificate(id)
		if err != nil {
			t.Fatalf("job %d: gateway node%d: %v", i, gateway[i], err)
		}
		for _, nd := range nodes {
			c, err := nd.WaitFinal(ctx, id)
			if err != nil {
				t.Fatalf("job %d (gateway node%d): %s held no certificate within %v: %v; %d of %d certificates held by the nodes before it",
					i, gateway[i], nd.Name(), limit, err, held, jobs*len(nodes))
			}
			held++
			for k := range c.Claims {
				a, b := first.Claims[k].Verdict, c.Claims[k].Verdict
				if a != b && a != consensus.OutcomeUndecided && b != consensus.OutcomeUndecided {
					conflicts++
				}
			}
		}
	}
	if conflicts != 0 {
		t.Errorf("%d conflicting decisions between nodes", conflicts)
	}
	// The equivocator's evidence is recorded, and it alone is penalised.
	equivocator := set.At(0).Address
	for i := range set.Len() {
		if set.At(i).Name == "node6" {
			equivocator = set.At(i).Address
		}
	}
	ev, err := nodes[0].Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Penalties) != 1 || ev.Penalties[0].Validator != equivocator || len(ev.Evidence) == 0 {
		t.Fatalf("evidence: %d records, penalties %+v; want the equivocator only", len(ev.Evidence), ev.Penalties)
	}
	// The liar is flagged as no better than chance; honest nodes are not.
	stats, err := nodes[0].ValidatorStats()
	if err != nil {
		t.Fatal(err)
	}
	var flagged []string
	for _, s := range stats {
		if s.Flagged {
			flagged = append(flagged, s.Name)
		}
	}
	slices.Sort(flagged)
	if got := strings.Join(flagged, ","); got != "node5,node6" {
		t.Errorf("flagged validators %q, want node5 (liar) and node6 (equivocator)", got)
	}
	t.Logf("%d jobs: %v; %d claims decided, none against the truth; %d evidence records", jobs, statuses, decided, len(ev.Evidence))
}

// TestScenarioAdversariesAtTolerance: with liars holding half the stake, no
// claim can reach a 2/3 quorum either way: the network refuses to certify
// (unresolved) rather than certify a lie. It says so as soon as every claim
// is hopeless: the jobs' deadline is far beyond the test's own limit, so a
// gateway that waited for it would never answer, and each certificate must
// be settled on its ballots and issued before its deadline.
func TestScenarioAdversariesAtTolerance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 4, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			o.Deadline = 5 * time.Minute
			if i >= 2 {
				o.Ballots = ballotPolicy(t, testnet.BehaviourLiar)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()
	outputs, _ := knownOutputs(12)
	for i, out := range outputs {
		j, err := nodes[0].Submit(ctx, api.VerifyRequest{Output: out})
		if err != nil {
			t.Fatal(err)
		}
		c, err := nodes[0].WaitFinal(ctx, j.JobID)
		if err != nil {
			t.Fatalf("output %d: %v (a gateway that waits for the deadline although every claim is hopeless never answers)", i, err)
		}
		if err := consensus.VerifyCertificate(c, set, []byte(out)); err != nil {
			t.Fatal(err)
		}
		if c.Status != consensus.StatusUnresolved {
			t.Errorf("output %d: status %s, want unresolved", i, c.Status)
		}
		if n := checkDecisions(t, c); n != 0 {
			t.Errorf("output %d: %d claims decided with liars at half the stake", i, n)
		}
		if deadline := time.UnixMilli(int64(c.DeadlineMS)); !c.IssuedAt.Before(deadline) || !consensus.Settled(c, set) {
			t.Errorf("output %d: issued at %s for a deadline of %s, settled %v; want settled before the deadline",
				i, c.IssuedAt.Format(time.RFC3339Nano), deadline.Format(time.RFC3339Nano), consensus.Settled(c, set))
		}
	}
}

// waitUntil polls cond every 10ms until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// ballotPolicy is the ballot policy of a testnet behaviour.
func ballotPolicy(t testing.TB, kind string) node.BallotPolicy {
	t.Helper()
	p, err := testnet.Behaviour{Kind: kind}.Policy()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
