package fifo

import "testing"

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
