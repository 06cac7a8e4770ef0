package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
)

// Behaviours a validator can be given for fault testing. The zero value,
// like "honest", judges with the node's verifier and signs one ballot.
const (
	BehaviourHonest      = "honest"
	BehaviourLiar        = "liar"        // inverts every true/false verdict
	BehaviourRandom      = "random"      // guesses true or false, seeded per claim
	BehaviourCopycat     = "copycat"     // waits for others' ballots and copies the leading verdict (it sees them only with gossiped ballots)
	BehaviourSilent      = "silent"      // never casts a ballot
	BehaviourEquivocator = "equivocator" // signs two different ballots for each job
	BehaviourSlow        = "slow"        // casts honestly after Delay plus up to Jitter
)

// Behaviour makes a validator misbehave, for fault and adversary tests.
type Behaviour struct {
	Kind string
	// Delay: how long a slow validator waits; how long a copycat waits at
	// most for others' ballots (default 500ms).
	Delay time.Duration
	// Jitter adds a random delay of up to Jitter to a slow validator.
	Jitter time.Duration
	// Seed drives the random guesser and the slow validator's jitter.
	Seed uint64
}

// Validate checks the kind.
func (b Behaviour) Validate() error {
	switch b.Kind {
	case "", BehaviourHonest, BehaviourLiar, BehaviourRandom, BehaviourCopycat, BehaviourSilent, BehaviourEquivocator, BehaviourSlow:
		return nil
	}
	return fmt.Errorf("unknown behaviour %q (want honest, liar, random, copycat, silent, equivocator or slow)", b.Kind)
}

// seeded returns a deterministic 64-bit value for this validator, job and
// claim.
func (n *Node) seeded(job common.Hash, claim uint32) uint64 {
	var buf [8 + 20 + 32 + 4]byte
	binary.BigEndian.PutUint64(buf[:8], n.opts.Behaviour.Seed)
	copy(buf[8:28], n.Address().Bytes())
	copy(buf[28:60], job[:])
	binary.BigEndian.PutUint32(buf[60:], claim)
	return binary.BigEndian.Uint64(crypto.Keccak256(buf[:])[:8])
}

// verdicts returns this validator's verdicts on its assigned claims, as its
// behaviour makes them.
func (n *Node) verdicts(ctx context.Context, m *JobMessage, mine []uint32) []claims.Verdict {
	cs := m.ClaimList()
	verdicts := make([]claims.Verdict, len(mine))
	switch n.opts.Behaviour.Kind {
	case BehaviourRandom:
		for i, c := range mine {
			verdicts[i] = claims.True
			if n.seeded(m.JobID, c)&1 == 1 {
				verdicts[i] = claims.False
			}
		}
		return verdicts
	case BehaviourCopycat:
		return n.copy(ctx, m.JobID, mine)
	}
	for i, c := range mine {
		verdicts[i] = n.opts.Verifier.Verify(ctx, cs[c])
		if n.opts.Behaviour.Kind == BehaviourLiar {
			verdicts[i] = verdicts[i].Invert()
		}
	}
	if n.opts.Behaviour.Kind == BehaviourSlow {
		d := n.opts.Behaviour.Delay
		if j := n.opts.Behaviour.Jitter; j > 0 {
			d += time.Duration(n.seeded(m.JobID, 0) % uint64(j))
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return verdicts
}

// copy waits until other validators' ballots on the job have been seen
// (all of them, or Delay), then copies the verdict with the most stake on
// each claim; abstains where it saw none.
func (n *Node) copy(ctx context.Context, job common.Hash, mine []uint32) []claims.Verdict {
	wait := n.opts.Behaviour.Delay
	if wait == 0 {
		wait = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	want := n.set.Len() - 1
	for {
		seen, ch := n.observed(job)
		if len(seen) >= want {
			break
		}
		select {
		case <-ch:
			continue
		case <-ctx.Done():
		}
		break
	}
	seen, _ := n.observed(job)
	verdicts := make([]claims.Verdict, len(mine))
	for i, c := range mine {
		var stake [3]uint64
		for _, b := range seen {
			_, v, _ := n.set.Lookup(b.Validator)
			for k, bc := range b.ClaimIndexes {
				if bc == c {
					stake[b.Verdicts[k]] += v.Stake
				}
			}
		}
		switch {
		case stake[claims.True] > stake[claims.False]:
			verdicts[i] = claims.True
		case stake[claims.False] > stake[claims.True]:
			verdicts[i] = claims.False
		}
	}
	return verdicts
}
