package claims

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestProofRootWithNodes: with inner nodes remembered, every proof of a
// tree folds to the root it folds to without, the upper levels hashed
// once; a proof with a sibling changed still folds elsewhere, however
// many proofs into the tree came before it; a memory smaller than the
// tree still gives the same roots; the proofs of a tree remember its
// inner nodes and nothing else.
func TestProofRootWithNodes(t *testing.T) {
	for _, capacity := range []int{1, 3, 1 << 10} {
		for _, n := range []int{1, 2, 3, 7, 64} {
			hs := testHashes(n)
			root, proofs := ProveAll(hs)
			nodes := NewNodes(capacity)
			for i, p := range proofs {
				got, ok := ProofRootWith(hs[i], p, nodes)
				if !ok || got != root {
					t.Fatalf("capacity %d, n=%d, leaf %d: root %x %v, want %x", capacity, n, i, got, ok, root)
				}
				for s := range p.Siblings {
					forged := p
					forged.Siblings = append([]common.Hash(nil), p.Siblings...)
					forged.Siblings[s][0] ^= 1
					if got, ok := ProofRootWith(hs[i], forged, nodes); ok && got == root {
						t.Fatalf("capacity %d, n=%d, leaf %d: sibling %d changed still folds to the root", capacity, n, i, s)
					}
				}
			}
			// The honest proofs alone hold the tree's n-1 inner nodes and
			// nothing else (where no two share a slot).
			honest := NewNodes(capacity)
			for i, p := range proofs {
				ProofRootWith(hs[i], p, honest)
			}
			held := 0
			for _, s := range honest.slots {
				if s.node != (common.Hash{}) {
					held++
					if inner(s.left, s.right) != s.node {
						t.Fatalf("capacity %d, n=%d: a slot holds a node that is not its children's", capacity, n)
					}
				}
			}
			if held > n-1 || capacity >= 1<<10 && held < (n-1)*3/4 {
				t.Fatalf("capacity %d, n=%d: %d inner nodes held, want about %d", capacity, n, held, n-1)
			}
		}
	}
}

// TestNodesConcurrent: proofs folded from many goroutines at once, with a
// memory smaller than the tree, give the root (run with -race).
func TestNodesConcurrent(t *testing.T) {
	hs := testHashes(64)
	root, proofs := ProveAll(hs)
	nodes := NewNodes(16)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g*31 + k) % len(hs)
				if got, ok := ProofRootWith(hs[i], proofs[i], nodes); !ok || got != root {
					errs <- fmt.Errorf("goroutine %d, leaf %d: %x %v", g, i, got, ok)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The proofs of a whole batch folded one after another, as a node checks
// the certificates of a batch: without a memory, and with one.
func BenchmarkProofRootsOfABatch(b *testing.B) {
	for _, n := range []int{16, 64} {
		hs := testHashes(n)
		_, proofs := ProveAll(hs)
		b.Run(fmt.Sprintf("n=%d/alone", n), func(b *testing.B) {
			for b.Loop() {
				for i, p := range proofs {
					ProofRoot(hs[i], p)
				}
			}
		})
		b.Run(fmt.Sprintf("n=%d/nodes", n), func(b *testing.B) {
			for b.Loop() {
				// A fresh table a batch, as small as holds it: what a
				// node sees of each batch.
				nodes := NewNodes(4 * n)
				for i, p := range proofs {
					ProofRootWith(hs[i], p, nodes)
				}
			}
		})
	}
}

// TestNodesZero: a zero Nodes, like a nil one, remembers nothing and
// folds proofs all the same.
func TestNodesZero(t *testing.T) {
	hs := testHashes(5)
	root, proofs := ProveAll(hs)
	for _, nodes := range []*Nodes{nil, {}} {
		for i, p := range proofs {
			if got, ok := ProofRootWith(hs[i], p, nodes); !ok || got != root {
				t.Fatalf("leaf %d: %x %v, want %x", i, got, ok, root)
			}
		}
	}
}
