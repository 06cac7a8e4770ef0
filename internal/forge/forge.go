// Package forge builds the certificates an attacker can build, so that tests
// of every reader (consensus, nodes, the client, the CLI) try the same
// attacks. Nothing outside tests uses it.
package forge

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/sigs"
)

// ReplicationOne is the certificate one validator's key can mint for a job
// it never submitted, if jobs could ask for replication 1: it picks a nonce
// that assigns every claim to itself, names itself gateway, signs a ballot
// judging every claim of output true, and signs the certificate. It is built
// under a policy that lets one validator decide, then stated for g, whose
// policy should refuse it. The output is split into one claim per sentence.
func ReplicationOne(g *consensus.Genesis, liar *ecdsa.PrivateKey, output string, deadline time.Time) (*consensus.Certificate, error) {
	signer := sigs.NewKeySigner(liar)
	lax := *g
	lax.Policy = &consensus.Policy{
		ByzantineBelow: consensus.Fraction{Num: 1, Den: consensus.MaxTotalStake},
		QuorumKinds:    []string{consensus.QuorumStake},
		MinStakeQuorum: consensus.Fraction{Num: 1, Den: 2},
	}
	set, err := lax.ValidatorSet()
	if err != nil {
		return nil, err
	}
	pos, _, ok := set.Lookup(signer.Address())
	if !ok {
		return nil, fmt.Errorf("forge: %s is not a validator", signer.Address().Hex())
	}
	var texts []string
	for _, s := range strings.SplitAfter(strings.TrimSpace(output), ". ") {
		texts = append(texts, strings.TrimSpace(s))
	}
	cs := claims.FromTexts(texts)
	p := consensus.JobParams{
		NetworkID: g.NetworkID, OutputHash: claims.OutputHash([]byte(output)), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: uint32(len(cs)), Quorum: consensus.DefaultQuorum, Replication: 1,
		Gateway: signer.Address(), Deadline: uint64(deadline.UnixMilli()),
	}
	for n := uint64(0); n < 1<<20; n++ {
		binary.BigEndian.PutUint64(p.Nonce[24:], n)
		tl, err := consensus.NewTally(set, p)
		if err != nil {
			return nil, err
		}
		if len(tl.Assignment().ByValidator[pos]) != len(cs) {
			continue
		}
		verdicts := make([]claims.Verdict, len(cs))
		for i := range verdicts {
			verdicts[i] = claims.True
		}
		b, err := consensus.SignBallot(signer, p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot, tl.Assignment().ByValidator[pos], verdicts)
		if err != nil {
			return nil, err
		}
		if _, err := tl.AddBallot(b); err != nil {
			return nil, err
		}
		c, err := tl.Certificate(cs, deadline)
		if err != nil {
			return nil, err
		}
		c.GenesisHash = g.Hash()
		if err := c.Sign(signer); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, fmt.Errorf("forge: no nonce assigns every claim to %s", signer.Address().Hex())
}

// ZeroBallots is what a peer without any key can build for a job it saw
// announced: every claim undecided, no ballots, no gateway signature.
func ZeroBallots(set *consensus.ValidatorSet, p consensus.JobParams, cs []claims.Claim, at time.Time) (*consensus.Certificate, error) {
	tl, err := consensus.NewTally(set, p)
	if err != nil {
		return nil, err
	}
	return tl.Certificate(cs, at)
}
