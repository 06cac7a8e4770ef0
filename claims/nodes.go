package claims

import (
	"encoding/binary"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// Nodes remembers inner nodes of Merkle trees that were hashed already, so
// that proofs into one tree, checked one after another, hash the levels
// they share once. A node checks a proof into the same batch for every job
// of the batch (each certificate carries one per ballot): a batch of 64
// costs its 64 proofs 384 inner hashes alone, 63 with the nodes
// remembered.
//
// It is a table of slots, each holding one inner node with its two
// children, the slot chosen by bits of the children: a lookup reads one
// slot, and a new node overwrites whatever its slot held. Hashes are
// uniform, so the slots fill evenly; children chosen to collide only
// evict each other. A node is returned only for the very children it was
// hashed from: the table changes the cost of a proof, never its outcome.
// Safe for concurrent use; a nil or zero *Nodes remembers nothing.
type Nodes struct {
	mu    sync.Mutex
	slots []nodeSlot
}

type nodeSlot struct {
	left, right, node common.Hash
}

// NewNodes returns a table of slots inner nodes, rounded up to a power of
// two (at most 2^30).
func NewNodes(slots int) *Nodes {
	n := 1
	for n < min(slots, 1<<30) {
		n *= 2
	}
	return &Nodes{slots: make([]nodeSlot, n)}
}

// inner is the inner node over left and right.
func (n *Nodes) inner(left, right common.Hash) common.Hash {
	if n == nil || len(n.slots) == 0 {
		return inner(left, right)
	}
	i := (binary.LittleEndian.Uint64(left[:8]) ^ binary.LittleEndian.Uint64(right[8:16])) & uint64(len(n.slots)-1)
	n.mu.Lock()
	s := &n.slots[i]
	if s.left == left && s.right == right && s.node != (common.Hash{}) {
		h := s.node
		n.mu.Unlock()
		return h
	}
	n.mu.Unlock()
	h := inner(left, right)
	n.mu.Lock()
	n.slots[i] = nodeSlot{left: left, right: right, node: h}
	n.mu.Unlock()
	return h
}
