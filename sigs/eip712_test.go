package sigs

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/keccak"
)

// arrayOfWords is the encoding of a uint array in a struct hash, the slow
// way: keccak256 of its elements, each a big-endian uint256.
func arrayOfWords[T uint8 | uint32](a []T) common.Hash {
	buf := make([]byte, 32*len(a))
	for i, v := range a {
		w := common.BigToHash(new(big.Int).SetUint64(uint64(v)))
		copy(buf[32*i:], w[:])
	}
	h := keccak.NewLegacyKeccak256()
	h.Write(buf)
	return common.BytesToHash(h.Sum(nil))
}

// TestStructHashesOfSmallArrays: the one-element arrays whose hashes are
// kept (oneWordHashes) hash as any array does, at the edges of what is
// kept and past them.
func TestStructHashesOfSmallArrays(t *testing.T) {
	for _, idx := range [][]uint32{nil, {0}, {1}, {255}, {256}, {300}, {0, 1}, {7, 1 << 20}} {
		for _, ver := range [][]uint8{nil, {0}, {1}, {2}, {255}, {1, 2}} {
			b := BallotData{JobID: common.Hash{1}, OutputHash: common.Hash{2}, ClaimsRoot: common.Hash{3}, ClaimIndexes: idx, Verdicts: ver}
			var buf []byte
			for _, w := range []common.Hash{ballotTypeHash, b.JobID, b.OutputHash, b.ClaimsRoot, arrayOfWords(idx), arrayOfWords(ver)} {
				buf = append(buf, w[:]...)
			}
			if got, want := BallotStructHash(b), crypto.Keccak256Hash(buf); got != want {
				t.Fatalf("ballot with indexes %v, verdicts %v: struct hash %x, want %x", idx, ver, got, want)
			}
			c := CertificateData{JobID: common.Hash{1}, Status: 1, Verdicts: ver, IssuedAt: 9}
			buf = nil
			for _, w := range []common.Hash{certTypeHash, c.JobID, c.GenesisHash, common.BigToHash(big.NewInt(1)), arrayOfWords(ver), arrayOfWords[uint8](nil), common.BigToHash(big.NewInt(9))} {
				buf = append(buf, w[:]...)
			}
			if got, want := CertificateStructHash(c), crypto.Keccak256Hash(buf); got != want {
				t.Fatalf("certificate with verdicts %v: struct hash %x, want %x", ver, got, want)
			}
		}
	}
}

// TestBatchDigestsKept: a batch digest kept for a root is given only for
// the same network, root and count; batches whose roots share a slot each
// get their own.
func TestBatchDigestsKept(t *testing.T) {
	want := func(network uint64, root common.Hash, count uint32) common.Hash {
		return TypedDataDigest(domainSeparator(network), BatchStructHash(root, count))
	}
	root := common.Hash{0: 5, 31: 1}
	same := common.Hash{0: 5, 31: 2} // the same slot: the first 8 bytes agree
	for round := range 2 {
		for _, c := range []struct {
			network uint64
			root    common.Hash
			count   uint32
		}{{1, root, 4}, {1, root, 5}, {2, root, 4}, {1, same, 4}, {1, root, 4}} {
			if got := BatchDigest(c.network, c.root, c.count); got != want(c.network, c.root, c.count) {
				t.Fatalf("round %d: batch digest of network %d, root %x, count %d: %x, want %x", round, c.network, c.root, c.count, got, want(c.network, c.root, c.count))
			}
		}
	}
}
