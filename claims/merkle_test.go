package claims

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func testHashes(n int) []common.Hash {
	hs := make([]common.Hash, n)
	for i := range hs {
		hs[i] = HashText(fmt.Sprintf("claim %d", i))
	}
	return hs
}

// splitRoot is an independent formulation of the tree: the left subtree
// holds the largest power of two strictly below n leaves (as in RFC 6962).
// Pairing left to right and promoting an odd last node gives the same shape.
func splitRoot(leaves []common.Hash) common.Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1 << (bits.Len(uint(len(leaves)-1)) - 1)
	return inner(splitRoot(leaves[:k]), splitRoot(leaves[k:]))
}

func TestRootMatchesSplitFormulation(t *testing.T) {
	for n := 1; n <= 17; n++ {
		hs := testHashes(n)
		want := splitRoot(leaves(hs))
		if got := Root(hs); got != want {
			t.Errorf("n=%d: Root = %x, want %x", n, got, want)
		}
	}
}

func TestRootSmallTrees(t *testing.T) {
	hs := testHashes(5)
	l := leaves(hs)
	tests := []struct {
		name string
		n    int
		want common.Hash
	}{
		{"one leaf is the leaf", 1, l[0]},
		{"two leaves", 2, inner(l[0], l[1])},
		{"odd third leaf is promoted, not duplicated", 3, inner(inner(l[0], l[1]), l[2])},
		{"four leaves", 4, inner(inner(l[0], l[1]), inner(l[2], l[3]))},
		{"fifth leaf promoted twice", 5, inner(inner(inner(l[0], l[1]), inner(l[2], l[3])), l[4])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Root(hs[:tt.n]); got != tt.want {
				t.Fatalf("Root = %x, want %x", got, tt.want)
			}
		})
	}
	if got := Root(nil); got != (common.Hash{}) {
		t.Fatalf("root of no claims = %x, want zero", got)
	}
	if Root(hs[:3]) == inner(inner(l[0], l[1]), inner(l[2], l[2])) {
		t.Fatal("odd leaf was duplicated")
	}
}

func TestLeafAndInnerAreDomainSeparated(t *testing.T) {
	a, b := HashText("a"), HashText("b")
	if Leaf(a) == a {
		t.Fatal("leaf equals the claim hash")
	}
	// A two-leaf root must not be a valid leaf of anything made of the same bytes.
	if inner(a, b) == Leaf(a) || inner(Leaf(a), Leaf(b)) == Root([]common.Hash{a}) {
		t.Fatal("inner and leaf hashes collide")
	}
}

// TestRootKnownAnswer pins the hashing scheme: a change here breaks every
// certificate ever issued. The expected values were cross-checked with an
// independent Keccak-256 implementation.
func TestRootKnownAnswer(t *testing.T) {
	cs := FromTexts([]string{
		"Paris is the capital of France.",
		"Berlin is the capital of Germany.",
		"2 + 2 = 4.",
		"The Earth orbits the Sun.",
		"The capital of Australia is Sydney.",
	})
	const (
		wantClaim0 = "0xda1214014dfc0916e3de7d80793c8d8404176da556009db997f8b69f52279860"
		wantLeaf0  = "0xfcbdc4ad97542ebdd85550bd38008df5d8d8bf4aae31169769b5f1f65e1370ed"
		wantRoot   = "0x931d7ad8514ad8acbfc48b58b3ce696a7a99af42554bc6d02fad28ee1ce7e3d3"
	)
	if got := cs[0].Hash.Hex(); got != wantClaim0 {
		t.Errorf("claim hash = %s, want %s", got, wantClaim0)
	}
	if got := Leaf(cs[0].Hash).Hex(); got != wantLeaf0 {
		t.Errorf("leaf = %s, want %s", got, wantLeaf0)
	}
	if got := RootOf(cs).Hex(); got != wantRoot {
		t.Errorf("root = %s, want %s", got, wantRoot)
	}
}

// pathShape lists, leaf level upwards, the levels where index has a
// sibling and on which side its node is.
func pathShape(index, count int) []int {
	var shape []int
	for width := count; width > 1; width = (width + 1) / 2 {
		if index^1 < width {
			shape = append(shape, index%2)
		} else {
			shape = append(shape, -1)
		}
		index /= 2
	}
	return shape
}

func TestProofs(t *testing.T) {
	for n := 1; n <= 17; n++ {
		hs := testHashes(n)
		root := Root(hs)
		for i := range n {
			p, err := Prove(hs, i)
			if err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			if !VerifyProof(root, hs[i], p) {
				t.Fatalf("n=%d i=%d: valid proof rejected", n, i)
			}
			t.Run(fmt.Sprintf("n=%d/i=%d", n, i), func(t *testing.T) { checkTampering(t, hs, root, p) })
		}
	}
}

func checkTampering(t *testing.T, hs []common.Hash, root common.Hash, p Proof) {
	i, n := int(p.Index), int(p.Count)
	for k := range p.Siblings {
		for _, bit := range []int{0, 7, 255} {
			q := cloneProof(p)
			q.Siblings[k][bit/8] ^= 1 << (bit % 8)
			if VerifyProof(root, hs[i], q) {
				t.Fatalf("tampered sibling %d bit %d accepted", k, bit)
			}
		}
	}
	for j := range n + 2 {
		if j == i {
			continue
		}
		q := cloneProof(p)
		q.Index = uint32(j)
		if VerifyProof(root, hs[i], q) {
			t.Fatalf("proof accepted at index %d", j)
		}
	}
	// The root does not commit to the count (jobs commit to it separately),
	// so a proof with another count is accepted exactly when that count gives
	// index i the same path shape.
	for m := 0; m <= 40; m++ {
		if m == n {
			continue
		}
		q := cloneProof(p)
		q.Count = uint32(m)
		same := m > i && slices.Equal(shapeSides(pathShape(i, m)), shapeSides(pathShape(i, n)))
		if got := VerifyProof(root, hs[i], q); got != same {
			t.Fatalf("count %d: VerifyProof = %v, want %v", m, got, same)
		}
	}
	for j := range hs {
		if j != i && VerifyProof(root, hs[j], p) {
			t.Fatalf("proof of %d accepted for claim %d", i, j)
		}
	}
	if VerifyProof(root, HashText("not a claim"), p) {
		t.Fatal("proof accepted for a foreign claim")
	}
	q := cloneProof(p)
	q.Siblings = append(q.Siblings, root)
	if VerifyProof(root, hs[i], q) {
		t.Fatal("proof with an extra sibling accepted")
	}
	if len(p.Siblings) > 0 {
		q := cloneProof(p)
		q.Siblings = q.Siblings[:len(q.Siblings)-1]
		if VerifyProof(root, hs[i], q) {
			t.Fatal("proof with a missing sibling accepted")
		}
	}
	if VerifyProof(HashText("other root"), hs[i], p) {
		t.Fatal("proof accepted against another root")
	}
}

// shapeSides drops the levels without a sibling: they do not change the node.
func shapeSides(shape []int) []int {
	return slices.DeleteFunc(slices.Clone(shape), func(s int) bool { return s < 0 })
}

func cloneProof(p Proof) Proof {
	p.Siblings = slices.Clone(p.Siblings)
	return p
}

func TestProveOutOfRange(t *testing.T) {
	hs := testHashes(3)
	for _, i := range []int{-1, 3, 100} {
		if _, err := Prove(hs, i); !errors.Is(err, ErrProofIndex) {
			t.Fatalf("Prove(%d) err = %v, want ErrProofIndex", i, err)
		}
	}
	if _, err := Prove(nil, 0); !errors.Is(err, ErrProofIndex) {
		t.Fatalf("Prove on empty list err = %v, want ErrProofIndex", err)
	}
	if VerifyProof(common.Hash{}, common.Hash{}, Proof{}) {
		t.Fatal("empty proof accepted")
	}
}

func TestProofJSONRoundTrip(t *testing.T) {
	hs := testHashes(11)
	p, err := Prove(hs, 6)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Proof
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !VerifyProof(Root(hs), hs[6], q) {
		t.Fatalf("proof decoded from %s rejected", b)
	}
}

func FuzzProof(f *testing.F) {
	f.Add(uint8(1), uint8(0), uint16(0))
	f.Add(uint8(17), uint8(16), uint16(300))
	f.Add(uint8(255), uint8(128), uint16(65535))
	f.Fuzz(func(t *testing.T, n, idx uint8, flip uint16) {
		count := int(n)%MaxClaims + 1
		i := int(idx) % count
		hs := testHashes(count)
		root := Root(hs)
		p, err := Prove(hs, i)
		if err != nil {
			t.Fatal(err)
		}
		if !VerifyProof(root, hs[i], p) {
			t.Fatalf("count=%d i=%d: valid proof rejected", count, i)
		}
		if len(p.Siblings) == 0 {
			return
		}
		q := cloneProof(p)
		k := int(flip) % len(q.Siblings)
		bit := int(flip>>8) % 256
		q.Siblings[k][bit/8] ^= 1 << (bit % 8)
		if VerifyProof(root, hs[i], q) {
			t.Fatalf("count=%d i=%d: tampered sibling %d bit %d accepted", count, i, k, bit)
		}
	})
}

// ProveAll gives Root and, for every hash, the proof Prove gives, whatever
// the shape of the tree (odd levels promote their last node).
func TestProveAllMatchesProve(t *testing.T) {
	if root, proofs := ProveAll(nil); root != (common.Hash{}) || proofs != nil {
		t.Fatalf("empty list: %s %v", root.Hex(), proofs)
	}
	for n := 1; n <= 70; n++ {
		hs := testHashes(n)
		root, proofs := ProveAll(hs)
		if root != Root(hs) {
			t.Fatalf("n=%d: root %s, Root gives %s", n, root.Hex(), Root(hs).Hex())
		}
		if len(proofs) != n {
			t.Fatalf("n=%d: %d proofs", n, len(proofs))
		}
		for i := range n {
			want, err := Prove(hs, i)
			if err != nil {
				t.Fatal(err)
			}
			got := proofs[i]
			if got.Index != want.Index || got.Count != want.Count || !slices.Equal(got.Siblings, want.Siblings) ||
				(got.Siblings == nil) != (want.Siblings == nil) {
				t.Fatalf("n=%d i=%d: ProveAll %+v, Prove %+v", n, i, got, want)
			}
		}
		// Each proof owns its siblings: growing one leaves the next alone.
		if n > 2 {
			next := slices.Clone(proofs[1].Siblings)
			proofs[0].Siblings = append(proofs[0].Siblings, common.Hash{0xff})
			if !slices.Equal(proofs[1].Siblings, next) {
				t.Fatalf("n=%d: proofs share their siblings", n)
			}
		}
	}
}

// Proofs of a whole batch, as a batch signer makes them: one ProveAll
// against a Prove per leaf.
func BenchmarkProofsOfABatch(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		hs := testHashes(n)
		b.Run(fmt.Sprintf("n=%d/ProveAll", n), func(b *testing.B) {
			for b.Loop() {
				ProveAll(hs)
			}
		})
		b.Run(fmt.Sprintf("n=%d/Prove-each", n), func(b *testing.B) {
			for b.Loop() {
				Root(hs)
				for i := range hs {
					Prove(hs, i)
				}
			}
		})
	}
}
