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

// SignedDigest is the digest b's signature must recover over: the ballot's
// own EIP-712 digest, or for a batched ballot the digest of the Batch its
// proof leads to. ok is false when the proof does not fit its count.
func (b *Ballot) SignedDigest() (common.Hash, bool) { return b.signedDigest(nil) }

// signedDigest is SignedDigest taking inner nodes of the proof from nodes.
func (b *Ballot) signedDigest(nodes *claims.Nodes) (common.Hash, bool) {
	if b.Batch == nil {
		return b.Digest(), true
	}
	return batchDigest(b.NetworkID, sigs.BallotStructHash(b.Data()), b.Batch, nodes)
}

// batchDigest is the Batch digest that the proof p of leaf implies, or
// false when p does not fit its count; inner nodes of the proof come from
// nodes where it holds them.
func batchDigest(networkID uint64, leaf common.Hash, p *BatchProof, nodes *claims.Nodes) (common.Hash, bool) {
	root, ok := claims.ProofRootWith(leaf, *p, nodes)
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
	root, all := claims.ProveAll(leaves)
	sig, err := s.SignDigest(sigs.BatchDigest(networkID, root, uint32(len(leaves))))
	if err != nil {
		return nil, nil, err
	}
	proofs := make([]*BatchProof, len(leaves))
	for i := range all {
		if all[i].Siblings == nil {
			all[i].Siblings = []common.Hash{} // JSON [], as the schema wants
		}
		proofs[i] = &all[i]
	}
	return sig, proofs, nil
}

// batchItem is what signItems needs of one message of a batch: its
// network, who must sign it and its leaf (its EIP-712 struct hash).
type batchItem struct {
	network uint64
	signer  common.Address
	leaf    common.Hash
}

// signItems signs n messages (what names them in errors), all of one
// network and all for s to sign, with one batch signature; item describes
// message i, and set gives it the signature and its proof. The order of
// the messages is the order of the leaves.
func signItems(s sigs.Signer, what string, n int, item func(i int) batchItem, set func(i int, sig []byte, p *BatchProof)) error {
	if n == 0 {
		return fmt.Errorf("consensus: an empty batch of %s", what)
	}
	leaves := make([]common.Hash, n)
	first := item(0)
	for i := range n {
		it := item(i)
		if it.network != first.network {
			return fmt.Errorf("consensus: batch mixes networks %d and %d", first.network, it.network)
		}
		if it.signer != s.Address() {
			return fmt.Errorf("%w: %s cannot sign %s %d, %s's", ErrBadSignature, s.Address().Hex(), what, i, it.signer.Hex())
		}
		leaves[i] = it.leaf
	}
	sig, proofs, err := signBatch(s, first.network, leaves)
	if err != nil {
		return err
	}
	for i := range n {
		set(i, sig, proofs[i])
	}
	return nil
}

// SignBallotBatch signs ballots, all of one network, with one signature:
// each gets the batch signature and its Merkle proof. The ballots may be
// for different jobs; their order is the order of the leaves.
func SignBallotBatch(s sigs.Signer, ballots []*Ballot) error {
	return signItems(s, "ballots", len(ballots),
		func(i int) batchItem {
			b := ballots[i]
			return batchItem{b.NetworkID, b.Validator, sigs.BallotStructHash(b.Data())}
		},
		func(i int, sig []byte, p *BatchProof) { ballots[i].Batch, ballots[i].Signature = p, sig })
}

// SignJobBatch signs, as their gateway, job announcements of one network
// with one signature: each gets the batch signature and its proof in
// Batch. The order of jobs is the order of the leaves.
func SignJobBatch(s sigs.Signer, jobs []*Job) error {
	return signItems(s, "jobs", len(jobs),
		func(i int) batchItem {
			j := jobs[i]
			return batchItem{j.NetworkID, j.Gateway, sigs.JobStructHash(j.Data())}
		},
		func(i int, sig []byte, p *BatchProof) { jobs[i].Batch, jobs[i].Signature = p, sig })
}

// SignCertificateBatch signs, as their gateway, the outcomes of
// certificates of one network with one signature: each gets the batch
// signature as its gateway signature and its proof in GatewayBatch.
func SignCertificateBatch(s sigs.Signer, certs []*Certificate) error {
	return signItems(s, "certificates", len(certs),
		func(i int) batchItem {
			c := certs[i]
			return batchItem{c.NetworkID, c.Gateway, sigs.CertificateStructHash(c.GatewayData())}
		},
		func(i int, sig []byte, p *BatchProof) { certs[i].GatewayBatch, certs[i].GatewaySignature = p, sig })
}

// GatewaySignedDigest is the digest the gateway signature must recover
// over: the certificate's own, or the Batch its GatewayBatch proof leads to.
func (c *Certificate) GatewaySignedDigest() (common.Hash, bool) { return c.gatewaySignedDigest(nil) }

// gatewaySignedDigest is GatewaySignedDigest taking inner nodes of the
// proof from nodes.
func (c *Certificate) gatewaySignedDigest(nodes *claims.Nodes) (common.Hash, bool) {
	if c.GatewayBatch == nil {
		return c.GatewayDigest(), true
	}
	return batchDigest(c.NetworkID, sigs.CertificateStructHash(c.GatewayData()), c.GatewayBatch, nodes)
}
