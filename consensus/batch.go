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

// ErrBatchProof: a ballot's batch proof does not fit its batch. Errors
// that wrap it also wrap ErrBallotShape (found without crypto) or
// ErrBadSignature (the proof does not fold to a root).
var ErrBatchProof = errors.New("malformed batch proof")

// checkBatchShape checks a batch proof without crypto: a count within
// MaxBatch, an index below it and no more siblings than the tree has levels.
func checkBatchShape(p *BatchProof) error {
	if p == nil {
		return nil
	}
	if p.Count == 0 || p.Count > MaxBatch {
		return fmt.Errorf("%w: %w: count %d outside 1..%d", ErrBallotShape, ErrBatchProof, p.Count, MaxBatch)
	}
	if p.Index >= p.Count {
		return fmt.Errorf("%w: %w: index %d of %d", ErrBallotShape, ErrBatchProof, p.Index, p.Count)
	}
	if len(p.Siblings) > 17 {
		return fmt.Errorf("%w: %w: %d siblings", ErrBallotShape, ErrBatchProof, len(p.Siblings))
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
	root, ok := claims.ProofRoot(sigs.BallotStructHash(b.Data()), *b.Batch)
	if !ok {
		return common.Hash{}, false
	}
	return sigs.BatchDigest(b.NetworkID, root, b.Batch.Count), true
}

// SignBallotBatch signs ballots, all of one network, with one signature:
// each gets the batch signature and its Merkle proof. The ballots may be
// for different jobs; their order is the order of the leaves.
func SignBallotBatch(s sigs.Signer, ballots []*Ballot) error {
	if len(ballots) == 0 || len(ballots) > MaxBatch {
		return fmt.Errorf("consensus: a batch of %d ballots (want 1..%d)", len(ballots), MaxBatch)
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
	root := claims.Root(leaves)
	sig, err := s.SignDigest(sigs.BatchDigest(ballots[0].NetworkID, root, uint32(len(ballots))))
	if err != nil {
		return err
	}
	for i, b := range ballots {
		p, err := claims.Prove(leaves, i)
		if err != nil {
			return err
		}
		if p.Siblings == nil {
			p.Siblings = []common.Hash{} // JSON [], as the schema wants
		}
		b.Batch = &p
		b.Signature = sig
	}
	return nil
}
