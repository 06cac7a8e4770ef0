package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// burstPolicy judges honestly, then holds each verdict until k judgments
// wait, and lets them go together: k ballots become ready at one moment,
// as several jobs arriving together do under load.
type burstPolicy struct {
	k       int
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (p *burstPolicy) Ballots(ctx context.Context, j *node.Judgement) [][]claims.Verdict {
	verdicts := j.Judge(ctx)
	p.mu.Lock()
	if p.release == nil {
		p.release = make(chan struct{})
	}
	ch := p.release
	if p.waiting++; p.waiting == p.k {
		close(ch)
		p.release, p.waiting = nil, 0
	}
	p.mu.Unlock()
	select {
	case <-ch:
		return [][]claims.Verdict{verdicts}
	case <-ctx.Done():
		return nil
	}
}

// TestReadyTogetherBatched: ballots a validator has ready at one moment
// are signed with one batch signature, each with its proof, and so are
// certificates a gateway issues at one moment; every certificate verifies
// offline, vote by vote, with no cache.
func TestReadyTogetherBatched(t *testing.T) {
	const nodes, burst = 4, 8
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: nodes, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			o.Replication = 0 // every validator judges every job of a burst
			o.Ballots = &burstPolicy{k: burst}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	set := net.Nodes()[0].ValidatorSet()
	outputs, want := knownOutputs(burst)
	// The first ballot of a burst may find the signer idle and go alone;
	// the ones ready while it is signed share a signature. Which ones do
	// is the scheduler's choice: bursts run until one certificate holds a
	// batched vote and one has a batched gateway signature. Every job has
	// one gateway, so that its certificates end together.
	gw := net.Nodes()[0]
	votes, certs := 0, 0
	for round := 0; ; round++ {
		if ctx.Err() != nil {
			t.Fatalf("after %d bursts of %d jobs: %d batched votes, %d batched certificates", round, burst, votes, certs)
		}
		var jobs []*api.Job
		for _, out := range outputs {
			// A new prompt makes each round's jobs new ones.
			j, err := gw.Submit(ctx, api.VerifyRequest{Output: out, Prompt: fmt.Sprintf("round %d", round)})
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, j)
		}
		for i, j := range jobs {
			c, err := gw.WaitFinal(ctx, j.JobID)
			if err != nil {
				t.Fatal(err)
			}
			if err := consensus.VerifyCertificate(c, set, []byte(outputs[i])); err != nil {
				t.Fatalf("round %d job %d: %v", round, i, err)
			}
			if c.Status != want[i] {
				t.Errorf("round %d job %d: %s, want %s", round, i, c.Status, want[i])
			}
			if c.GatewayBatch != nil {
				certs++
			}
			for _, v := range c.Ballots {
				if v.Batch != nil {
					votes++
				}
			}
		}
		if votes > 0 && certs > 0 {
			t.Logf("after %d bursts of %d jobs: %d batched votes, %d batched certificates", round+1, burst, votes, certs)
			return
		}
	}
}
