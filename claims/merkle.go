package claims

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/internal/keccak"
)

// Domain tags of the claims Merkle tree. A leaf can never be confused with an
// inner node because the first byte hashed differs.
const (
	leafTag  = 0x00
	innerTag = 0x01
)

// Leaf is the Merkle leaf of a claim hash: keccak256(0x00 || claimHash).
func Leaf(claimHash common.Hash) common.Hash {
	var buf [33]byte
	buf[0] = leafTag
	copy(buf[1:], claimHash[:])
	return keccak.Sum(buf[:])
}

func inner(left, right common.Hash) common.Hash {
	var buf [65]byte
	buf[0] = innerTag
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return keccak.Sum(buf[:])
}

// Root is the claims Merkle root over claim hashes in order.
//
// Leaves are keccak256(0x00 || hash); an inner node is
// keccak256(0x01 || left || right). Levels are built left to right; when a
// level has an odd number of nodes, the last one is promoted unchanged to the
// next level (it is neither duplicated nor hashed alone). The root of an
// empty list is the zero hash; jobs never have zero claims.
func Root(hashes []common.Hash) common.Hash {
	if len(hashes) == 0 {
		return common.Hash{}
	}
	level := leaves(hashes)
	for len(level) > 1 {
		level = nextLevel(level)
	}
	return level[0]
}

// RootOf is Root over the hashes of cs.
func RootOf(cs []Claim) common.Hash { return Root(Hashes(cs)) }

// Proof shows that one claim hash is at position Index of a list of Count
// claims with a given root. Siblings are listed from the leaf level upwards;
// levels where the node was promoted contribute no sibling.
type Proof struct {
	Index    uint32        `json:"index"`
	Count    uint32        `json:"count"`
	Siblings []common.Hash `json:"siblings"`
}

// ErrProofIndex is returned when a proof is asked for a position outside the list.
var ErrProofIndex = errors.New("claims: proof index out of range")

// Prove builds the inclusion proof of hashes[index].
func Prove(hashes []common.Hash, index int) (Proof, error) {
	if index < 0 || index >= len(hashes) {
		return Proof{}, fmt.Errorf("%w: %d of %d", ErrProofIndex, index, len(hashes))
	}
	p := Proof{Index: uint32(index), Count: uint32(len(hashes))}
	level := leaves(hashes)
	pos := index
	for len(level) > 1 {
		sib := pos ^ 1
		if sib < len(level) {
			p.Siblings = append(p.Siblings, level[sib])
		}
		level = nextLevel(level)
		pos /= 2
	}
	return p, nil
}

// ProveAll is Root and the proof of every hash, from one build of the
// tree: each level hashed once, where a Prove per hash would hash the whole
// tree again for each (a batch of n signed messages would cost n² hashes).
func ProveAll(hashes []common.Hash) (common.Hash, []Proof) {
	if len(hashes) == 0 {
		return common.Hash{}, nil
	}
	levels := [][]common.Hash{leaves(hashes)}
	for top := levels[0]; len(top) > 1; {
		top = nextLevel(top)
		levels = append(levels, top)
	}
	depth := len(levels) - 1
	proofs := make([]Proof, len(hashes))
	// One backing array for every proof's siblings: at most depth each.
	siblings := make([]common.Hash, 0, len(hashes)*depth)
	for i := range hashes {
		start := len(siblings)
		pos := i
		for _, level := range levels[:depth] {
			if sib := pos ^ 1; sib < len(level) {
				siblings = append(siblings, level[sib])
			}
			pos /= 2
		}
		proofs[i] = Proof{Index: uint32(i), Count: uint32(len(hashes)), Siblings: siblings[start:len(siblings):len(siblings)]}
		if len(proofs[i].Siblings) == 0 {
			proofs[i].Siblings = nil
		}
	}
	return levels[depth][0], proofs
}

// VerifyProof reports whether claimHash sits at p.Index in a list of p.Count
// claims whose root is root.
func VerifyProof(root, claimHash common.Hash, p Proof) bool {
	got, ok := ProofRoot(claimHash, p)
	return ok && got == root
}

// ProofRoot folds the proof of hash at p.Index of p.Count up to the root it
// implies. It reports false when the proof's shape does not fit p.Count (an
// index out of range, too few or too many siblings): such a proof shows
// nothing.
func ProofRoot(hash common.Hash, p Proof) (common.Hash, bool) {
	return ProofRootWith(hash, p, nil)
}

// ProofRootWith is ProofRoot taking the inner nodes nodes remembers from
// it, and adding those it hashes.
func ProofRootWith(hash common.Hash, p Proof, nodes *Nodes) (common.Hash, bool) {
	if p.Count == 0 || p.Index >= p.Count {
		return common.Hash{}, false
	}
	node := Leaf(hash)
	pos, width := uint64(p.Index), uint64(p.Count)
	used := 0
	for width > 1 {
		sib := pos ^ 1
		if sib < width {
			if used >= len(p.Siblings) {
				return common.Hash{}, false
			}
			if pos%2 == 0 {
				node = nodes.inner(node, p.Siblings[used])
			} else {
				node = nodes.inner(p.Siblings[used], node)
			}
			used++
		}
		pos /= 2
		width = (width + 1) / 2
	}
	return node, used == len(p.Siblings)
}

func leaves(hashes []common.Hash) []common.Hash {
	level := make([]common.Hash, len(hashes))
	for i, h := range hashes {
		level[i] = Leaf(h)
	}
	return level
}

// nextLevel pairs nodes left to right and promotes an odd last node.
func nextLevel(level []common.Hash) []common.Hash {
	next := make([]common.Hash, 0, (len(level)+1)/2)
	for i := 0; i+1 < len(level); i += 2 {
		next = append(next, inner(level[i], level[i+1]))
	}
	if len(level)%2 == 1 {
		next = append(next, level[len(level)-1])
	}
	return next
}
