package batch

import (
	"testing"
	"time"
)

func TestBusy(t *testing.T) {
	var b Busy
	b.Batch(2)
	t0 := time.Unix(1000, 0)
	// Light load: 20 a second is never busy.
	for i := range 100 {
		if b.Note(t0.Add(time.Duration(i) * 50 * time.Millisecond)) {
			t.Fatalf("item %d at 20/s counted busy", i)
		}
	}
	// 200 a second: busy once DefaultBusyCount items came within the window.
	t1 := t0.Add(time.Hour)
	for i := range 20 {
		busy := b.Note(t1.Add(time.Duration(i) * 5 * time.Millisecond))
		if want := i >= DefaultBusyCount; busy != want {
			t.Fatalf("item %d at 200/s: busy %v, want %v", i, busy, want)
		}
	}
	// Items that each went alone are not busy, whatever their rate.
	b.Batch(1)
	if b.Note(t1.Add(100 * time.Millisecond)) {
		t.Fatal("busy after a batch of one")
	}
	// A pause ends it.
	b.Batch(3)
	if b.Note(t1.Add(time.Second)) {
		t.Fatal("busy after a pause of a second")
	}
}

// TestBusyLinger: under light load a batcher with BusyLinger sends each
// item at once; once items come at a busy rate, a batch waits to fill.
func TestBusyLinger(t *testing.T) {
	sizes := make(chan int, 100)
	light := New(Config{BusyLinger: time.Hour}, func(items []int) { sizes <- len(items) })
	defer light.Close(t.Context())
	light.Add(1, 0)
	if n := <-sizes; n != 1 {
		t.Fatalf("a lone item went in a batch of %d", n)
	}
	// A batcher whose stream is busy before its first item, as after
	// DefaultBusyCount quick items in shared batches (its worker is idle:
	// items added while it flushes would go in the next batch at once).
	busy := New(Config{BusyLinger: time.Hour}, func(items []int) { sizes <- len(items) })
	busy.mu.Lock()
	now := time.Now()
	busy.rate.Batch(2)
	for range DefaultBusyCount {
		busy.rate.Note(now)
	}
	busy.mu.Unlock()
	busy.Add(2, 0) // busy: waits up to an hour, or until Close
	busy.Add(3, 0)
	select {
	case n := <-sizes:
		t.Fatalf("a batch of %d went while busy, before its linger", n)
	case <-time.After(20 * time.Millisecond):
	}
	if err := busy.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := <-sizes; n != 2 {
		t.Fatalf("close flushed a batch of %d, want 2", n)
	}
}
