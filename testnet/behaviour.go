package testnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/node"
)

// Behaviours a validator can be given for fault testing, in a manifest's
// [node.behaviour] or a node's config.toml [behaviour]. The zero value, like
// "honest", is the node's own policy (node.Honest).
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

// BehaviourOf is the behaviour a node's config.toml states.
func BehaviourOf(c node.BehaviourConfig) Behaviour {
	return Behaviour{Kind: c.Kind, Delay: c.Delay.Duration, Jitter: c.Jitter.Duration, Seed: c.Seed}
}

// Validate checks the kind.
func (b Behaviour) Validate() error {
	switch b.Kind {
	case "", BehaviourHonest, BehaviourLiar, BehaviourRandom, BehaviourCopycat, BehaviourSilent, BehaviourEquivocator, BehaviourSlow:
		return nil
	}
	return fmt.Errorf("unknown behaviour %q (want honest, liar, random, copycat, silent, equivocator or slow)", b.Kind)
}

// Policy is the ballot policy of the behaviour: node.Honest for the zero
// value and "honest".
func (b Behaviour) Policy() (node.BallotPolicy, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	switch b.Kind {
	case BehaviourLiar:
		return liar{}, nil
	case BehaviourRandom:
		return random{seed: b.Seed}, nil
	case BehaviourCopycat:
		wait := b.Delay
		if wait == 0 {
			wait = 500 * time.Millisecond
		}
		return copycat{wait: wait}, nil
	case BehaviourSilent:
		return silent{}, nil
	case BehaviourEquivocator:
		return equivocator{}, nil
	case BehaviourSlow:
		return slow{b}, nil
	}
	return node.Honest{}, nil
}

// ApplyBehaviour sets o.Ballots to the policy of cfg's [behaviour]: the way
// a testnet node's config.toml makes it misbehave.
func ApplyBehaviour(cfg *node.Config, o *node.Options) error {
	p, err := BehaviourOf(cfg.Behaviour).Policy()
	if err != nil {
		return fmt.Errorf("config behaviour: %w", err)
	}
	o.Ballots = p
	return nil
}

var (
	_ node.BallotPolicy = liar{}
	_ node.BallotPolicy = random{}
	_ node.BallotPolicy = copycat{}
	_ node.BallotPolicy = silent{}
	_ node.BallotPolicy = equivocator{}
	_ node.BallotPolicy = slow{}
)

// liar inverts every true/false verdict of its verifier.
type liar struct{}

func (liar) Ballots(ctx context.Context, j *node.Judgement) [][]claims.Verdict {
	verdicts := j.Judge(ctx)
	for i, v := range verdicts {
		verdicts[i] = v.Invert()
	}
	return [][]claims.Verdict{verdicts}
}

// random guesses true or false, seeded per validator, job and claim.
type random struct{ seed uint64 }

func (r random) Ballots(_ context.Context, j *node.Judgement) [][]claims.Verdict {
	verdicts := make([]claims.Verdict, len(j.Mine))
	for i, c := range j.Mine {
		verdicts[i] = claims.True
		if seeded(r.seed, j.Validator, j.Job.JobID, c)&1 == 1 {
			verdicts[i] = claims.False
		}
	}
	return [][]claims.Verdict{verdicts}
}

// copycat waits until other validators' ballots on the job have been seen
// (all of them, or wait), then copies the verdict with the most stake on
// each claim; abstains where it saw none.
type copycat struct{ wait time.Duration }

func (cc copycat) Ballots(ctx context.Context, j *node.Judgement) [][]claims.Verdict {
	ctx, cancel := context.WithTimeout(ctx, cc.wait)
	defer cancel()
	want := j.Set.Len() - 1
	for {
		seen, ch := j.Observed()
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
	seen, _ := j.Observed()
	verdicts := make([]claims.Verdict, len(j.Mine))
	for i, c := range j.Mine {
		var stake [3]uint64
		for _, b := range seen {
			_, v, _ := j.Set.Lookup(b.Validator)
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
	return [][]claims.Verdict{verdicts}
}

// silent never casts a ballot.
type silent struct{}

func (silent) Ballots(context.Context, *node.Judgement) [][]claims.Verdict { return nil }

// equivocator signs its verifier's verdicts and a second, different ballot
// for the same job: every verdict inverted, abstentions made true.
type equivocator struct{}

func (equivocator) Ballots(ctx context.Context, j *node.Judgement) [][]claims.Verdict {
	verdicts := j.Judge(ctx)
	inverted := make([]claims.Verdict, len(verdicts))
	for i, v := range verdicts {
		inverted[i] = v.Invert()
		if v == claims.Abstain {
			inverted[i] = claims.True
		}
	}
	return [][]claims.Verdict{verdicts, inverted}
}

// slow casts honestly after Delay plus up to Jitter, seeded per job.
type slow struct{ b Behaviour }

func (s slow) Ballots(ctx context.Context, j *node.Judgement) [][]claims.Verdict {
	verdicts := j.Judge(ctx)
	d := s.b.Delay
	if s.b.Jitter > 0 {
		d += time.Duration(seeded(s.b.Seed, j.Validator, j.Job.JobID, 0) % uint64(s.b.Jitter))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return [][]claims.Verdict{verdicts}
}

// seeded returns a deterministic 64-bit value for this seed, validator, job
// and claim.
func seeded(seed uint64, validator common.Address, job common.Hash, claim uint32) uint64 {
	var buf [8 + 20 + 32 + 4]byte
	binary.BigEndian.PutUint64(buf[:8], seed)
	copy(buf[8:28], validator.Bytes())
	copy(buf[28:60], job[:])
	binary.BigEndian.PutUint32(buf[60:], claim)
	return binary.BigEndian.Uint64(crypto.Keccak256(buf[:])[:8])
}
