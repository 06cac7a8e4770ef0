package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/sigs"
)

// gatedSigner is a KeySigner whose signatures, while gate is set, each
// wait for a value on it: the test holds the signing worker busy.
type gatedSigner struct {
	*sigs.KeySigner
	gate chan struct{}
}

func (s *gatedSigner) SignDigest(d common.Hash) ([]byte, error) {
	if s.gate != nil {
		<-s.gate
	}
	return s.KeySigner.SignDigest(d)
}

func newSigningValidator(t *testing.T, gate chan struct{}) *validator {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v := &validator{env: &env{
		signer:   &gatedSigner{KeySigner: sigs.NewKeySigner(key), gate: gate},
		sigCache: consensus.NewSignatureCache(64),
		ctx:      context.Background(),
	}}
	v.startSigning()
	return v
}

func unsignedBallot(v *validator, job byte) *consensus.Ballot {
	return &consensus.Ballot{
		NetworkID:  7,
		JobID:      common.Hash{job},
		OutputHash: common.Hash{0xaa, job},
		ClaimsRoot: common.Hash{0xbb, job},
		Vote: consensus.Vote{
			Validator:    v.signer.Address(),
			ClaimIndexes: []uint32{0, 1},
			Verdicts:     []claims.Verdict{claims.True, claims.False},
		},
	}
}

// signTogether signs n messages (sign(i) signs message i) the way a busy
// signer meets them: message 0 first, held at the gate while the other
// n-1 queue, then those n-1 with one signature. It fails t unless all are
// signed, and reports how many were queued behind message 0. Call it
// inside a synctest bubble.
func signTogether(t *testing.T, gate chan struct{}, n int, sign func(i int) error, queued func() int) int {
	t.Helper()
	errs := make([]error, n)
	done := make(chan struct{})
	go func() { errs[0] = sign(0); done <- struct{}{} }()
	synctest.Wait() // the worker signs message 0, held at the gate
	for i := 1; i < n; i++ {
		go func() { errs[i] = sign(i); done <- struct{}{} }()
	}
	synctest.Wait()
	q := queued()
	gate <- struct{}{} // message 0
	gate <- struct{}{} // the batch of the others: one signature
	for range n {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return q
}

// A lone ballot is signed alone, at once: no batch proof, and sign returns
// without any other ballot or any time passing.
func TestLoneBallotSignedAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newSigningValidator(t, nil)
		defer v.signing.close(context.Background())
		b := unsignedBallot(v, 1)
		start := time.Now()
		if err := v.sign(b); err != nil {
			t.Fatal(err)
		}
		if b.Batch != nil {
			t.Fatalf("a lone ballot carries a batch proof %+v", b.Batch)
		}
		if elapsed := time.Now().Sub(start); elapsed != 0 {
			t.Fatalf("a lone ballot waited %v", elapsed)
		}
		if err := consensus.VerifyBallotSignature(b); err != nil {
			t.Fatal(err)
		}
	})
}

// Ballots ready while the validator signs another share one signature, each
// with its proof, and each verifies alone; a proof or signature moved to
// another ballot (another job) does not verify.
func TestBallotsReadyTogetherShareOneSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		v := newSigningValidator(t, gate)
		defer v.signing.close(context.Background())
		const n = 6
		ballots := make([]*consensus.Ballot, n)
		for i := range ballots {
			ballots[i] = unsignedBallot(v, byte(i+1))
		}
		if q := signTogether(t, gate, n, func(i int) error { return v.sign(ballots[i]) }, v.signing.queued); q != n-1 {
			t.Fatalf("%d ballots queued, want %d", q, n-1)
		}
		if ballots[0].Batch != nil {
			t.Fatal("the first ballot, alone, carries a batch proof")
		}
		// Two signatures: one of ballot 0 alone, one of the 5 others.
		want := BatchStats{Signatures: 2, Messages: n, Max: n - 1}
		want.Sizes[0], want.Sizes[2] = 1, 1
		if got := v.signing.batchStats(); got != want {
			t.Fatalf("batch stats %+v, want %+v", got, want)
		}
		leaves := make(map[uint32]bool)
		for i, b := range ballots[1:] {
			if b.Batch == nil || b.Batch.Count != n-1 || leaves[b.Batch.Index] {
				t.Fatalf("ballot %d: proof %+v, want a leaf of its own of %d", i+1, b.Batch, n-1)
			}
			leaves[b.Batch.Index] = true
			if !bytes.Equal(b.Signature, ballots[1].Signature) {
				t.Fatalf("ballot %d has a signature of its own", i+1)
			}
			if err := consensus.VerifyBallotSignature(b); err != nil {
				t.Fatalf("ballot %d does not verify alone: %v", i+1, err)
			}
			// The node's own signature cache knows the batch signature.
			if err := consensus.VerifyBallotSignature(b, consensus.WithSignatureCache(v.sigCache)); err != nil {
				t.Fatal(err)
			}
		}
		// Ballot 1's signature and proof on ballot 2's content, or ballot 1
		// given job 2's id: neither verifies.
		moved := *ballots[2]
		moved.Batch = ballots[1].Batch
		if err := consensus.VerifyBallotSignature(&moved); !errors.Is(err, consensus.ErrBadSignature) {
			t.Fatalf("a proof moved to another ballot: %v", err)
		}
		replayed := *ballots[1]
		replayed.JobID = ballots[2].JobID
		if err := consensus.VerifyBallotSignature(&replayed); !errors.Is(err, consensus.ErrBadSignature) {
			t.Fatalf("a batched ballot replayed for another job: %v", err)
		}
	})
}

// Once signing stops, a ballot is refused rather than left waiting.
func TestSigningStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newSigningValidator(t, nil)
		if err := v.signing.close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := v.sign(unsignedBallot(v, 1)); !errors.Is(err, errSigningStopped) {
			t.Fatalf("sign after stop: %v", err)
		}
	})
}

// newSigningGateway is a gateway with its signers started, on the
// signing validator's env (newSigningValidator); they stop when t ends.
// Call it inside a synctest bubble.
func newSigningGateway(t *testing.T, gate chan struct{}) (*validator, *gateway) {
	t.Helper()
	v := newSigningValidator(t, gate)
	g := &gateway{env: v.env}
	g.startSigning()
	t.Cleanup(func() {
		for _, s := range []interface{ close(context.Context) error }{v.signing, g.signing, g.jobSigning} {
			s.close(context.Background())
		}
	})
	return v, g
}

// Certificates a gateway issues while it signs another share one gateway
// signature, each with its proof; a lone one is signed alone.
func TestCertificatesIssuedTogetherShareOneSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		v, g := newSigningGateway(t, gate)
		const n = 4
		certs := make([]*consensus.Certificate, n)
		for i := range certs {
			certs[i] = &consensus.Certificate{NetworkID: 7, JobID: common.Hash{byte(i + 1)}, Gateway: v.signer.Address(), Status: consensus.StatusVerified}
		}
		if q := signTogether(t, gate, n, func(i int) error { return g.signing.sign(certs[i]) }, g.signing.queued); q != n-1 {
			t.Fatalf("%d certificates queued, want %d", q, n-1)
		}
		signer := func(c *consensus.Certificate) common.Address {
			digest := c.GatewayDigest()
			if c.GatewayBatch != nil {
				root, ok := claims.ProofRoot(sigs.CertificateStructHash(c.GatewayData()), *c.GatewayBatch)
				if !ok {
					return common.Address{}
				}
				digest = sigs.BatchDigest(c.NetworkID, root, c.GatewayBatch.Count)
			}
			a, err := sigs.Recover(digest, c.GatewaySignature)
			if err != nil {
				return common.Address{}
			}
			return a
		}
		if certs[0].GatewayBatch != nil || signer(certs[0]) != v.signer.Address() {
			t.Fatal("the lone certificate is not signed alone")
		}
		for i, c := range certs[1:] {
			if c.GatewayBatch == nil || c.GatewayBatch.Count != n-1 || !bytes.Equal(c.GatewaySignature, certs[1].GatewaySignature) {
				t.Fatalf("certificate %d: proof %+v, not in the batch of the others", i+1, c.GatewayBatch)
			}
			if signer(c) != v.signer.Address() {
				t.Fatalf("certificate %d does not verify alone", i+1)
			}
		}
		// Another outcome under certificate 1's signature and proof does not
		// verify.
		forged := *certs[1]
		forged.Status = consensus.StatusRejected
		if signer(&forged) == v.signer.Address() {
			t.Fatal("a batch signature holds for another outcome")
		}
	})
}

// Jobs a gateway accepts while it signs another share one signature, each
// with its proof, and each verifies alone; a lone one is signed alone.
func TestJobsAcceptedTogetherShareOneSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		v, g := newSigningGateway(t, gate)
		const n = 5
		jobs := make([]*consensus.Job, n)
		for i := range jobs {
			jobs[i] = &consensus.Job{NetworkID: 7, JobID: common.Hash{byte(i + 1)}, Claims: []string{"1 + 1 = 2."}, Deadline: 1 << 41, Gateway: v.signer.Address()}
		}
		if q := signTogether(t, gate, n, func(i int) error { return g.jobSigning.sign(jobs[i]) }, g.jobSigning.queued); q != n-1 {
			t.Fatalf("%d jobs queued, want %d", q, n-1)
		}
		if jobs[0].Batch != nil {
			t.Fatal("the lone job carries a batch proof")
		}
		want := BatchStats{Signatures: 2, Messages: n, Max: n - 1}
		want.Sizes[0], want.Sizes[2] = 1, 1
		if got := g.jobSigning.batchStats(); got != want {
			t.Fatalf("batch stats %+v, want %+v", got, want)
		}
		cache := consensus.NewSignatureCache(8)
		for i, j := range jobs {
			if i > 0 && (j.Batch == nil || j.Batch.Count != n-1 || !bytes.Equal(j.Signature, jobs[1].Signature)) {
				t.Fatalf("job %d: proof %+v, want one of the batch of %d", i, j.Batch, n-1)
			}
			for _, opts := range [][]consensus.VerifyOption{nil, {consensus.WithSignatureCache(cache)}} {
				pub, err := j.VerifySignature(opts...)
				if err != nil || crypto.PubkeyToAddress(*pub) != v.signer.Address() {
					t.Fatalf("job %d does not verify alone: %v", i, err)
				}
			}
		}
		moved := *jobs[2]
		moved.Batch = jobs[1].Batch
		if _, err := moved.VerifySignature(consensus.WithSignatureCache(cache)); !errors.Is(err, consensus.ErrBadSignature) {
			t.Fatalf("a proof moved to another job: %v", err)
		}
	})
}

// A job submitted once the node has stopped signing is refused as the
// node being unavailable (503 stopping), not as an internal error.
func TestSubmitAfterStopIsUnavailable(t *testing.T) {
	n := soloNode(t)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := n.Submit(context.Background(), api.VerifyRequest{Output: "2 + 2 = 4."})
	var re *RequestError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &re) || re.Code != "stopping" {
		t.Fatalf("submit after stop: %v, want ErrUnavailable with code stopping", err)
	}
	var never *batchSigner[*consensus.Job] // a node never started
	if err := never.sign(&consensus.Job{}); !errors.Is(err, errSigningStopped) {
		t.Fatalf("sign on a signer never started: %v", err)
	}
}
