package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

// batchOf signs, for the validator at pos, one ballot on each of n jobs in
// one batch, and returns the jobs' tallies and the ballots.
func batchOf(t testing.TB, f *fixture, pos, n int) ([]*Tally, []*Ballot) {
	t.Helper()
	tallies := make([]*Tally, n)
	ballots := make([]*Ballot, n)
	for i := range n {
		j := f.newJob([]string{"2 + 2 = 4.", fmt.Sprintf("%d + 1 = %d.", i, i+1)}, DefaultQuorum, 0, byte(i))
		tallies[i] = f.tally(t, j)
		ballots[i] = f.ballot(t, tallies[i], pos, all(claims.True))
	}
	if err := SignBallotBatch(f.signers[f.addr(pos)], ballots); err != nil {
		t.Fatal(err)
	}
	return tallies, ballots
}

func TestBallotBatchVerifies(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	for _, n := range []int{1, 2, 3, 5, 8, 13} {
		tallies, ballots := batchOf(t, f, 1, n)
		for i, b := range ballots {
			if b.Batch == nil || int(b.Batch.Index) != i || int(b.Batch.Count) != n {
				t.Fatalf("n=%d: ballot %d has proof %+v", n, i, b.Batch)
			}
			if i > 0 && string(b.Signature) != string(ballots[0].Signature) {
				t.Fatalf("n=%d: ballot %d has its own signature, want the batch's", n, i)
			}
			if err := VerifyBallotSignature(b); err != nil {
				t.Fatalf("n=%d: ballot %d: %v", n, i, err)
			}
			if _, err := tallies[i].AddBallot(b); err != nil {
				t.Fatalf("n=%d: tally %d: %v", n, i, err)
			}
		}
	}
}

// TestBallotBatchTampers: a batched ballot is worth nothing once its proof,
// its position, its count or its content is changed, or when it carries
// the proof of another ballot of the batch.
func TestBallotBatchTampers(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	_, ballots := batchOf(t, f, 2, 6)
	cases := []struct {
		name   string
		mutate func(b *Ballot)
	}{
		{"sibling changed", func(b *Ballot) { b.Batch.Siblings[1][5] ^= 0x80 }},
		{"sibling dropped", func(b *Ballot) { b.Batch.Siblings = b.Batch.Siblings[:len(b.Batch.Siblings)-1] }},
		{"sibling added", func(b *Ballot) { b.Batch.Siblings = append(b.Batch.Siblings, b.Batch.Siblings[0]) }},
		{"position moved", func(b *Ballot) { b.Batch.Index ^= 1 }},
		{"count changed", func(b *Ballot) { b.Batch.Count-- }},
		{"proof of another ballot", func(b *Ballot) { p := *ballots[4].Batch; b.Batch = &p }},
		{"verdict changed", func(b *Ballot) { b.Verdicts = []claims.Verdict{claims.False, claims.True} }},
		{"job changed", func(b *Ballot) { b.JobID = ballots[4].JobID }},
		{"batch dropped", func(b *Ballot) { b.Batch = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := cloneBallot(t, ballots[3])
			tc.mutate(b)
			if err := VerifyBallotSignature(b); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("got %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestBallotBatchShape(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	tallies, ballots := batchOf(t, f, 0, 3)
	for _, p := range []BatchProof{{Index: 3, Count: 3}, {Index: 0, Count: 0}, {Index: 0, Count: MaxBatch + 1}} {
		b := cloneBallot(t, ballots[0])
		b.Batch = &p
		if err := tallies[0].CheckShape(b); !errors.Is(err, ErrBallotShape) || !errors.Is(err, ErrBatchProof) {
			t.Errorf("proof %+v: got %v, want ErrBallotShape and ErrBatchProof", p, err)
		}
	}
	s := f.signers[f.addr(0)]
	other := cloneBallot(t, ballots[1])
	other.NetworkID++
	if err := SignBallotBatch(s, []*Ballot{cloneBallot(t, ballots[0]), other}); err == nil {
		t.Error("a batch over two networks was signed")
	}
	if err := SignBallotBatch(f.signers[f.addr(1)], []*Ballot{cloneBallot(t, ballots[0])}); err == nil {
		t.Error("a validator signed another's ballot in its batch")
	}
	if err := SignBallotBatch(s, nil); err == nil {
		t.Error("an empty batch was signed")
	}
}

// TestBallotBatchOneRecovery: with a signature cache, the ballots of one
// batch cost one public-key recovery in all, which is what batches save
// the nodes that check certificates.
func TestBallotBatchOneRecovery(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	_, ballots := batchOf(t, f, 3, 16)
	cache := NewSignatureCache(64)
	if err := VerifyBallotSignature(ballots[0], WithSignatureCache(cache)); err != nil {
		t.Fatal(err)
	}
	for i, b := range ballots[1:] {
		d, ok := b.SignedDigest()
		if !ok || !cache.verified(d, b.Signature, b.Validator) {
			t.Fatalf("ballot %d of the batch is not in the cache after the first was verified", i+1)
		}
	}
	if d, _ := ballots[0].SignedDigest(); d != sigs.BatchDigest(7, mustRoot(t, ballots[0]), 16) {
		t.Fatal("the batch digest is not the EIP-712 Batch digest of the root")
	}
}

func mustRoot(t testing.TB, b *Ballot) [32]byte {
	t.Helper()
	root, ok := claims.ProofRoot(sigs.BallotStructHash(b.Data()), *b.Batch)
	if !ok {
		t.Fatal("proof does not fold")
	}
	return root
}

func cloneBallot(t testing.TB, b *Ballot) *Ballot {
	t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var c Ballot
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestCertificateBatch: a gateway signs the outcomes of many certificates
// at once; each verifies alone, and a moved or stripped proof fails.
func TestCertificateBatch(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	T := claims.True
	var certs []*Certificate
	var outputs [][]byte
	for i := range 5 {
		j, c := buildCert(t, f, []string{fmt.Sprintf("%d is a number.", i)}, DefaultQuorum, 0,
			map[int][]claims.Verdict{0: {T}, 1: {T}, 2: {T}, 3: {T}})
		certs, outputs = append(certs, c), append(outputs, j.output)
	}
	if err := SignCertificateBatch(f.signers[f.addr(1)], certs); err == nil {
		t.Fatal("a validator that is not the gateway signed the batch")
	}
	if err := SignCertificateBatch(f.signers[certs[0].Gateway], certs); err != nil {
		t.Fatal(err)
	}
	cache := NewSignatureCache(64)
	for i, c := range certs {
		if c.GatewayBatch == nil || int(c.GatewayBatch.Index) != i {
			t.Fatalf("certificate %d has gateway proof %+v", i, c.GatewayBatch)
		}
		if err := VerifyCertificate(c, f.set, outputs[i], WithSignatureCache(cache)); err != nil {
			t.Fatalf("certificate %d: %v", i, err)
		}
	}
	// 4 ballots each, all signed alone, and one gateway signature.
	if want := 5*4 + 1; cache.seen.Len() != want {
		t.Fatalf("cache holds %d signatures, want %d", cache.seen.Len(), want)
	}

	moved := cloneCert(t, certs[2])
	moved.GatewayBatch.Index = 3
	if err := VerifyCertificate(moved, f.set, outputs[2]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("proof moved to another leaf: got %v, want ErrBadSignature", err)
	}
	stripped := cloneCert(t, certs[2])
	stripped.GatewayBatch = nil
	if err := VerifyCertificate(stripped, f.set, outputs[2]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("proof stripped: got %v, want ErrBadSignature", err)
	}
	unsigned := cloneCert(t, certs[2])
	unsigned.GatewaySignature = nil
	if err := VerifyCertificate(unsigned, f.set, outputs[2]); !errors.Is(err, ErrCertificateShape) {
		t.Fatalf("proof without a signature: got %v, want ErrCertificateShape", err)
	}
	// Signing alone again drops the batch proof.
	if err := certs[2].Sign(f.signers[certs[2].Gateway]); err != nil || certs[2].GatewayBatch != nil {
		t.Fatalf("Sign after a batch: err %v, proof %+v", err, certs[2].GatewayBatch)
	}
	if err := VerifyCertificate(certs[2], f.set, outputs[2]); err != nil {
		t.Fatal(err)
	}
}

// jobBatchOf signs n jobs of f's gateway (f.addr(0)) with one batch
// signature.
func jobBatchOf(t *testing.T, f *fixture, n int) []*Job {
	t.Helper()
	jobs := make([]*Job, n)
	for i := range jobs {
		jobs[i] = signedJob(t, f, fmt.Sprintf("%d + 1 = %d.", i, i+1))
	}
	if err := SignJobBatch(f.signers[f.addr(0)], jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

// TestJobBatch: a gateway signs several job announcements at once; each
// verifies alone and gives the gateway's key, the batch costs one
// recovery with a cache, and signing alone again drops the proof.
func TestJobBatch(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	for _, n := range []int{1, 2, 5, 8} {
		jobs := jobBatchOf(t, f, n)
		cache := NewSignatureCache(64)
		for i, j := range jobs {
			if j.Batch == nil || int(j.Batch.Index) != i || int(j.Batch.Count) != n {
				t.Fatalf("n=%d: job %d has proof %+v", n, i, j.Batch)
			}
			if err := j.ValidateBasic(); err != nil {
				t.Fatalf("n=%d: job %d: %v", n, i, err)
			}
			pub, err := j.VerifySignature(WithSignatureCache(cache))
			if err != nil {
				t.Fatalf("n=%d: job %d: %v", n, i, err)
			}
			if crypto.PubkeyToAddress(*pub) != f.addr(0) {
				t.Fatalf("n=%d: job %d gives the key of %s", n, i, crypto.PubkeyToAddress(*pub).Hex())
			}
			d, _ := j.SignedDigest()
			if i == 0 && n > 1 {
				// The rest of the batch is known once the first is verified.
				for _, o := range jobs[1:] {
					od, _ := o.SignedDigest()
					if od != d || cache.publicKey(od, o.Signature, o.Gateway) == nil {
						t.Fatalf("n=%d: job %d of the batch is not in the cache after the first", n, o.Batch.Index)
					}
				}
			}
		}
	}
	j := jobBatchOf(t, f, 3)[1]
	if err := j.Sign(f.signers[f.addr(0)]); err != nil || j.Batch != nil {
		t.Fatalf("signed alone: %v, proof %+v kept", err, j.Batch)
	}
	if _, err := j.VerifySignature(); err != nil {
		t.Fatalf("signed alone after a batch: %v", err)
	}
	if err := SignJobBatch(f.signers[f.addr(1)], jobBatchOf(t, f, 2)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a validator signed another gateway's jobs: %v", err)
	}
	if err := SignJobBatch(f.signers[f.addr(0)], nil); err == nil {
		t.Fatal("an empty batch was signed")
	}
}

// TestJobBatchTampers: a batched job announcement is worth nothing once
// its proof, its position, its count, its resend or its job is changed,
// or when it carries the proof of another job of the batch; a cache that
// holds the batch's signature does not change that.
func TestJobBatchTampers(t *testing.T) {
	f := newFixture(t, 7, equalStakes(4)...)
	jobs := jobBatchOf(t, f, 6)
	cache := NewSignatureCache(64)
	for _, j := range jobs {
		if _, err := j.VerifySignature(WithSignatureCache(cache)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		mutate func(j *Job)
	}{
		{"sibling changed", func(j *Job) { j.Batch.Siblings[1][5] ^= 0x80 }},
		{"sibling dropped", func(j *Job) { j.Batch.Siblings = j.Batch.Siblings[:len(j.Batch.Siblings)-1] }},
		{"position moved", func(j *Job) { j.Batch.Index ^= 1 }},
		{"count changed", func(j *Job) { j.Batch.Count-- }},
		{"proof of another job", func(j *Job) { p := *jobs[4].Batch; j.Batch = &p }},
		{"resend changed", func(j *Job) { j.Resend = 9 }},
		{"another job's id", func(j *Job) { j.JobID = jobs[4].JobID }},
		{"batch dropped", func(j *Job) { j.Batch = nil }},
		{"another gateway", func(j *Job) { j.Gateway = f.addr(1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := *jobs[3]
			p := *jobs[3].Batch
			p.Siblings = slices.Clone(p.Siblings)
			j.Batch = &p
			tc.mutate(&j)
			for _, opts := range [][]VerifyOption{nil, {WithSignatureCache(cache)}} {
				if _, err := j.VerifySignature(opts...); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("got %v, want ErrBadSignature", err)
				}
			}
		})
	}
	for _, p := range []BatchProof{{Index: 3, Count: 3}, {Index: 0, Count: 0}, {Index: 0, Count: MaxBatch + 1}} {
		j := *jobs[0]
		j.Batch = &p
		if err := j.ValidateBasic(); !errors.Is(err, ErrBadJob) || !errors.Is(err, ErrBatchProof) {
			t.Errorf("proof %+v: got %v, want ErrBadJob and ErrBatchProof", p, err)
		}
	}
}
