package consensus

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

// BatchProof places a ballot in a batch its validator signed at once: the
// validator signed one EIP-712 Batch{root, count} whose root is the Merkle
// root (the claims tree's) over the EIP-712 struct hashes of count ballots,
// and this is the proof that the ballot's struct hash is leaf Index of them.
// A ballot with a BatchProof carries that one batch signature; it is worth
// exactly what the same ballot signed alone is worth.
type BatchProof = claims.Proof

// MaxBatch bounds the ballots one batch signature may cover, and so the
// siblings of a proof (at most ceil(log2 MaxBatch)).
const MaxBatch = 1 << 16

// ErrBatchProof: a batch proof does not fit its batch. Errors that wrap
// it also wrap ErrBallotShape or ErrCertificateShape (found without
// crypto) or ErrBadSignature (the proof does not fold to a root).
var ErrBatchProof = errors.New("malformed batch proof")

// checkBatchShape checks a batch proof without crypto: a count within
// MaxBatch, an index below it and no more siblings than the tree has levels.
func checkBatchShape(p *BatchProof) error {
	if p == nil {
		return nil
	}
	if p.Count == 0 || p.Count > MaxBatch {
		return fmt.Errorf("%w: count %d outside 1..%d", ErrBatchProof, p.Count, MaxBatch)
	}
	if p.Index >= p.Count {
		return fmt.Errorf("%w: index %d of %d", ErrBatchProof, p.Index, p.Count)
	}
	if len(p.Siblings) > 17 {
		return fmt.Errorf("%w: %d siblings", ErrBatchProof, len(p.Siblings))
	}
	return nil
}

// signedDigest is the digest b's signature must recover over: the ballot's
// own EIP-712 digest, or for a batched ballot the digest of the Batch its
// proof leads to. ok is false when the proof does not fit its count.
func (b *Ballot) signedDigest() (common.Hash, bool) {
	if b.Batch == nil {
		return b.Digest(), true
	}
	return batchDigest(b.NetworkID, sigs.BallotStructHash(b.Data()), b.Batch)
}

// batchDigest is the Batch digest that the proof p of leaf implies, or
// false when p does not fit its count.
func batchDigest(networkID uint64, leaf common.Hash, p *BatchProof) (common.Hash, bool) {
	root, ok := claims.ProofRoot(leaf, *p)
	if !ok {
		return common.Hash{}, false
	}
	return sigs.BatchDigest(networkID, root, p.Count), true
}

// signBatch signs the Batch of leaves and returns the signature and each
// leaf's proof.
func signBatch(s sigs.Signer, networkID uint64, leaves []common.Hash) ([]byte, []*BatchProof, error) {
	if len(leaves) == 0 || len(leaves) > MaxBatch {
		return nil, nil, fmt.Errorf("consensus: a batch of %d (want 1..%d)", len(leaves), MaxBatch)
	}
	sig, err := s.SignDigest(sigs.BatchDigest(networkID, claims.Root(leaves), uint32(len(leaves))))
	if err != nil {
		return nil, nil, err
	}
	proofs := make([]*BatchProof, len(leaves))
	for i := range leaves {
		p, err := claims.Prove(leaves, i)
		if err != nil {
			return nil, nil, err
		}
		if p.Siblings == nil {
			p.Siblings = []common.Hash{} // JSON [], as the schema wants
		}
		proofs[i] = &p
	}
	return sig, proofs, nil
}

// SignBallotBatch signs ballots, all of one network, with one signature:
// each gets the batch signature and its Merkle proof. The ballots may be
// for different jobs; their order is the order of the leaves.
func SignBallotBatch(s sigs.Signer, ballots []*Ballot) error {
	if len(ballots) == 0 {
		return fmt.Errorf("consensus: an empty batch of ballots")
	}
	leaves := make([]common.Hash, len(ballots))
	for i, b := range ballots {
		if b.NetworkID != ballots[0].NetworkID {
			return fmt.Errorf("consensus: batch mixes networks %d and %d", ballots[0].NetworkID, b.NetworkID)
		}
		if b.Validator != s.Address() {
			return fmt.Errorf("consensus: ballot %d is %s's, not the signer's", i, b.Validator.Hex())
		}
		leaves[i] = sigs.BallotStructHash(b.Data())
	}
	sig, proofs, err := signBatch(s, ballots[0].NetworkID, leaves)
	if err != nil {
		return err
	}
	for i, b := range ballots {
		b.Batch, b.Signature = proofs[i], sig
	}
	return nil
}

// SignJobBatch signs, as their gateway, job announcements of one network
// with one signature: each gets the batch signature and its proof in
// Batch. The order of jobs is the order of the leaves.
func SignJobBatch(s sigs.Signer, jobs []*Job) error {
	if len(jobs) == 0 {
		return fmt.Errorf("consensus: an empty batch of jobs")
	}
	leaves := make([]common.Hash, len(jobs))
	for i, j := range jobs {
		if j.NetworkID != jobs[0].NetworkID {
			return fmt.Errorf("consensus: batch mixes networks %d and %d", jobs[0].NetworkID, j.NetworkID)
		}
		if j.Gateway != s.Address() {
			return fmt.Errorf("%w: %s cannot sign for gateway %s", ErrBadSignature, s.Address().Hex(), j.Gateway.Hex())
		}
		leaves[i] = sigs.JobStructHash(j.Data())
	}
	sig, proofs, err := signBatch(s, jobs[0].NetworkID, leaves)
	if err != nil {
		return err
	}
	for i, j := range jobs {
		j.Batch, j.Signature = proofs[i], sig
	}
	return nil
}

// SignCertificateBatch signs, as their gateway, the outcomes of
// certificates of one network with one signature: each gets the batch
// signature as its gateway signature and its proof in GatewayBatch.
func SignCertificateBatch(s sigs.Signer, certs []*Certificate) error {
	if len(certs) == 0 {
		return fmt.Errorf("consensus: an empty batch of certificates")
	}
	leaves := make([]common.Hash, len(certs))
	for i, c := range certs {
		if c.NetworkID != certs[0].NetworkID {
			return fmt.Errorf("consensus: batch mixes networks %d and %d", certs[0].NetworkID, c.NetworkID)
		}
		if c.Gateway != s.Address() {
			return fmt.Errorf("%w: %s cannot sign for gateway %s", ErrBadSignature, s.Address().Hex(), c.Gateway.Hex())
		}
		leaves[i] = sigs.CertificateStructHash(c.GatewayData())
	}
	sig, proofs, err := signBatch(s, certs[0].NetworkID, leaves)
	if err != nil {
		return err
	}
	for i, c := range certs {
		c.GatewayBatch, c.GatewaySignature = proofs[i], sig
	}
	return nil
}

// gatewaySignedDigest is the digest the gateway signature must recover
// over: the certificate's own, or the Batch its GatewayBatch proof leads to.
func (c *Certificate) gatewaySignedDigest() (common.Hash, bool) {
	if c.GatewayBatch == nil {
		return c.GatewayDigest(), true
	}
	return batchDigest(c.NetworkID, sigs.CertificateStructHash(c.GatewayData()), c.GatewayBatch)
}
