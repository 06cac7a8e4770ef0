package fifo

import (
	"runtime"
	"testing"
)

func TestMapEvictsOldestFirst(t *testing.T) {
	m := New[int, string](3)
	for i := range 5 {
		m.Put(i, "v")
	}
	m.Put(3, "updated") // an update keeps its place
	m.Put(5, "v")       // evicts 2, the oldest left
	for k, want := range map[int]bool{0: false, 1: false, 2: false, 3: true, 4: true, 5: true} {
		if _, ok := m.Get(k); ok != want {
			t.Errorf("key %d present = %v, want %v", k, ok, want)
		}
	}
	if v, _ := m.Get(3); v != "updated" || m.Len() != 3 {
		t.Fatalf("Get(3) = %q, Len = %d", v, m.Len())
	}
}

// A map's memory follows its entries, not its capacity: New allocates
// next to nothing however large the capacity, and a map filled past its
// capacity still holds only that many.
func TestMapGrowsLazily(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := New[[32]byte, [32]byte](1 << 20)
	m.Put([32]byte{1}, [32]byte{2})
	runtime.ReadMemStats(&after)
	// Preallocated, a map of 2^20 such entries takes some 70 MiB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("a map of capacity 2^20 holding one entry allocated %d bytes", grew)
	}
	small := New[int, int](100)
	for i := range 1000 {
		small.Put(i, i)
	}
	if small.Len() != 100 || len(small.order) != 100 {
		t.Fatalf("Len = %d, ring %d, want 100", small.Len(), len(small.order))
	}
	for i := 900; i < 1000; i++ {
		if _, ok := small.Get(i); !ok {
			t.Fatalf("key %d, among the newest 100, is missing", i)
		}
	}
}
