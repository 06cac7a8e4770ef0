// Package keccak hashes small fixed buffers with keccak256 without
// allocating. crypto.Keccak256Hash hands its input to the hash state
// through an interface, so the compiler moves a caller's stack buffer (a
// Merkle node's 65 bytes, an EIP-712 struct's few words) to the heap on
// every call: hundreds of small allocations per certificate across a
// network's nodes. Sum copies the input into a pooled buffer instead.
package keccak

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

type hasher struct {
	state crypto.KeccakState
	buf   []byte
	sum   common.Hash // read into here, not into the caller's result, for the same reason
}

var pool = sync.Pool{New: func() any { return &hasher{state: crypto.NewKeccakState(), buf: make([]byte, 0, 256)} }}

// Sum is keccak256(data), as crypto.Keccak256Hash(data) is. data does
// not escape: a caller's array stays on its stack.
func Sum(data []byte) common.Hash {
	h := pool.Get().(*hasher)
	h.buf = append(h.buf[:0], data...)
	h.state.Reset()
	h.state.Write(h.buf)
	h.state.Read(h.sum[:])
	out := h.sum
	if cap(h.buf) <= 4096 {
		pool.Put(h)
	}
	return out
}
