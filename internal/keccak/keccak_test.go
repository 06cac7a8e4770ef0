package keccak

import (
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// TestSumIsKeccak256: Sum equals go-ethereum's keccak256 on inputs of
// every length up to past the pool's buffer, and on one larger than the
// buffers the pool keeps.
func TestSumIsKeccak256(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 600 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		if got, want := Sum(data), crypto.Keccak256Hash(data); got != want {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
	}
	big := make([]byte, 10000)
	if got, want := Sum(big), crypto.Keccak256Hash(big); got != want {
		t.Fatalf("10000 zero bytes: %x, want %x", got, want)
	}
	if got, want := Sum(nil), crypto.Keccak256Hash(nil); got != want {
		t.Fatalf("nil: %x, want %x", got, want)
	}
}

func BenchmarkSum65(b *testing.B) {
	var buf [65]byte
	b.ReportAllocs()
	for b.Loop() {
		buf[0]++
		_ = Sum(buf[:])
	}
}

func BenchmarkKeccak256Hash65(b *testing.B) {
	var buf [65]byte
	b.ReportAllocs()
	for b.Loop() {
		buf[0]++
		_ = crypto.Keccak256Hash(buf[:])
	}
}
