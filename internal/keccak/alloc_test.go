//go:build !race

package keccak

import "testing"

// TestSumDoesNotAllocate: a caller's stack buffer stays on the stack, and
// the pool serves the state. (Without the race detector, which drops
// pooled items on purpose.)
func TestSumDoesNotAllocate(t *testing.T) {
	var buf [66]byte
	if n := testing.AllocsPerRun(1000, func() { buf[0]++; _ = Sum(buf[:]) }); n != 0 {
		t.Fatalf("Sum of a stack array: %v allocations a call, want 0", n)
	}
}
