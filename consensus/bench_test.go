package consensus

import (
	"fmt"
	"testing"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

var benchSizes = []int{4, 16, 64, 128}

// benchCase is a certificate of 10 claims signed by all n validators.
func benchCase(b *testing.B, n int) (job, *fixture, *Certificate) {
	b.Helper()
	f := newFixture(b, 1, equalStakes(n)...)
	texts := make([]string, 10)
	for i := range texts {
		texts[i] = fmt.Sprintf("Benchmark claim number %d is a plain sentence of ordinary length.", i)
	}
	j := f.newJob(texts, DefaultQuorum, 0, 1)
	tl := f.tally(b, j)
	for pos := range n {
		mustAdd(b, tl, f.ballot(b, tl, pos, all(claims.True)))
	}
	return j, f, mustCert(b, tl, j.claims)
}

// BenchmarkVerifyCertificate verifies a certificate of 10 claims with one
// ballot from each of n validators.
func BenchmarkVerifyCertificate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			j, f, c := benchCase(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifyCertificate(c, f.set, j.output); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecoverFloor performs exactly the n+1 signature recoveries a
// certificate with n ballots needs (each ballot's and the gateway's), over
// precomputed digests: the floor of BenchmarkVerifyCertificate at the same
// size.
func BenchmarkRecoverFloor(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			_, _, c := benchCase(b, n)
			digests := make([]Ballot, len(c.Ballots))
			for i, v := range c.Ballots {
				digests[i] = Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: v}
			}
			ds := make([][32]byte, len(digests))
			for i := range digests {
				ds[i] = digests[i].Digest()
			}
			gd := c.GatewayDigest()
			b.ReportAllocs()
			for b.Loop() {
				for i := range ds {
					addr, err := sigs.Recover(ds[i], c.Ballots[i].Signature)
					if err != nil || addr != c.Ballots[i].Validator {
						b.Fatalf("recover: %v %v", addr, err)
					}
				}
				if addr, err := sigs.Recover(gd, c.GatewaySignature); err != nil || addr != c.Gateway {
					b.Fatalf("recover gateway: %v %v", addr, err)
				}
			}
		})
	}
}

// BenchmarkVerifyBatchOfCertificates verifies, with one signature cache,
// the certificates of 64 one-claim jobs whose 4 validators signed each
// ballot alone and whose gateway signed each outcome alone (batch=1), or
// all 64 in one batch each (batch=64): the cost per certificate that
// batches save a checker that sees every certificate, as every node does.
func BenchmarkVerifyBatchOfCertificates(b *testing.B) {
	const jobs, validators = 64, 4
	for _, batch := range []int{1, jobs} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := newFixture(b, 1, equalStakes(validators)...)
			js := make([]job, jobs)
			tallies := make([]*Tally, jobs)
			byValidator := make([][]*Ballot, validators)
			for i := range jobs {
				js[i] = f.newJob([]string{fmt.Sprintf("%d + 1 = %d.", i, i+1)}, DefaultQuorum, 0, byte(i))
				tallies[i] = f.tally(b, js[i])
				for pos := range validators {
					byValidator[pos] = append(byValidator[pos], f.ballot(b, tallies[i], pos, all(claims.True)))
				}
			}
			if batch > 1 {
				for pos, bs := range byValidator {
					if err := SignBallotBatch(f.signers[f.addr(pos)], bs); err != nil {
						b.Fatal(err)
					}
				}
			}
			certs := make([]*Certificate, jobs)
			for i := range jobs {
				for pos := range validators {
					mustAdd(b, tallies[i], byValidator[pos][i])
				}
				certs[i] = mustCert(b, tallies[i], js[i].claims)
			}
			if batch > 1 {
				if err := SignCertificateBatch(f.signers[certs[0].Gateway], certs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				cache := NewSignatureCache(4 * jobs * validators)
				for i, c := range certs {
					if err := VerifyCertificate(c, f.set, js[i].output, WithSignatureCache(cache)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*jobs), "µs/cert")
		})
	}
}
