package node_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/bench"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/sigs"
	"github.com/verity-network/verity/testnet"
)

// BenchmarkCertificate runs a closed loop of jobs through an in-process
// network of 5 nodes, each job an output of 5 true arithmetic claims
// submitted to the nodes in turn: ns/op is the time per certificate at the
// network's throughput with that many jobs in flight. It also reports the
// p50 and p99 time from node.Submit to node.WaitFinal.
func BenchmarkCertificate(b *testing.B) {
	for _, inflight := range []int{1, 64} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			benchCertificates(b, 5, 5, inflight)
		})
	}
}

// BenchmarkCertificateOneClaim is the closed loop of verity bench's
// saturated runs (4 nodes, 1-claim outputs, 64 jobs in flight), with the
// bytes and allocations per certificate of the whole network: steadier
// from run to run than its rate on a shared machine.
func BenchmarkCertificateOneClaim(b *testing.B) {
	b.ReportAllocs()
	benchCertificates(b, 4, 1, 64)
}

func benchCertificates(b *testing.B, nodes, nclaims, inflight int) {
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes:    nodes,
		Verifier: func(int) node.Verifier { return claims.Arithmetic{} },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { net.Stop() })
	ns := net.Nodes()

	var (
		next  atomic.Int64
		mu    sync.Mutex
		lat   []time.Duration
		wg    sync.WaitGroup
		fails atomic.Int64
	)
	job := func(k int) error {
		gw := ns[k%len(ns)]
		start := time.Now()
		j, err := gw.Submit(ctx, api.VerifyRequest{Output: bench.Output(k, nclaims)})
		if err != nil {
			return err
		}
		c, err := gw.WaitFinal(ctx, j.JobID)
		if err != nil {
			return fmt.Errorf("job %d: %w", k, err)
		}
		if c.Status != consensus.StatusVerified {
			return fmt.Errorf("job %d: status %s", k, c.Status)
		}
		mu.Lock()
		lat = append(lat, time.Since(start))
		mu.Unlock()
		return nil
	}
	b.ResetTimer()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= b.N {
					return
				}
				if err := job(k); err != nil {
					fails.Add(1)
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if fails.Load() > 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99+99)/100-1])/1e6, "p99-ms")
	b.ReportMetric(float64(b.N*nclaims)/b.Elapsed().Seconds(), "claims/s")
}

// BenchmarkTally counts the ballots of one job of 5 claims from n
// validators, their signatures already verified as the gateway's gossip
// validator does, and builds the certificate: the aggregator's work per
// job once the ballots are in.
func BenchmarkTally(b *testing.B) {
	for _, n := range []int{5, 25, 100} {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			set, params, cs, ballots := tallyFixture(b, n)
			b.ReportAllocs()
			for b.Loop() {
				t, err := consensus.NewTally(set, params)
				if err != nil {
					b.Fatal(err)
				}
				for _, bl := range ballots {
					if _, err := t.AddVerifiedBallot(bl); err != nil {
						b.Fatal(err)
					}
				}
				if !t.Done() {
					b.Fatal("tally not done")
				}
				if _, err := t.Certificate(cs, time.Unix(1, 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func tallyFixture(b *testing.B, n int) (*consensus.ValidatorSet, consensus.JobParams, []claims.Claim, []*consensus.Ballot) {
	b.Helper()
	g := &consensus.Genesis{NetworkID: 1337}
	var signers []*sigs.KeySigner
	for i := range n {
		k, err := crypto.ToECDSA(crypto.Keccak256(fmt.Appendf(nil, "tally bench key %d", i)))
		if err != nil {
			b.Fatal(err)
		}
		s := sigs.NewKeySigner(k)
		signers = append(signers, s)
		g.Validators = append(g.Validators, consensus.Validator{Name: fmt.Sprintf("v%d", i), Address: s.Address(), Stake: 100})
	}
	set, err := g.ValidatorSet()
	if err != nil {
		b.Fatal(err)
	}
	output := bench.Output(0, 5)
	cs, err := claims.RuleDecomposer{}.Decompose(b.Context(), output)
	if err != nil {
		b.Fatal(err)
	}
	params := consensus.JobParams{
		NetworkID: 1337, OutputHash: claims.OutputHash([]byte(output)), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: uint32(len(cs)), Quorum: consensus.DefaultQuorum, Nonce: common.Hash{7},
		Gateway: signers[0].Address(), Deadline: uint64(time.Now().Add(time.Minute).UnixMilli()),
	}
	t, err := consensus.NewTally(set, params)
	if err != nil {
		b.Fatal(err)
	}
	var ballots []*consensus.Ballot
	for _, s := range signers {
		pos, _, _ := set.Lookup(s.Address())
		mine := t.Assignment().ByValidator[pos]
		verdicts := slices.Repeat([]claims.Verdict{claims.True}, len(mine))
		bl, err := consensus.SignBallot(s, 1337, t.JobID(), params.OutputHash, params.ClaimsRoot, mine, verdicts)
		if err != nil {
			b.Fatal(err)
		}
		ballots = append(ballots, bl)
	}
	return set, params, cs, ballots
}
