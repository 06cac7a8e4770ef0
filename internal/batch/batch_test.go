package batch

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder collects the batches flushed, with the virtual time of each.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	at      []time.Duration
	start   time.Time
	gate    chan struct{} // when set, each flush waits for a value
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) flush(items []int) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, items)
	r.at = append(r.at, time.Since(r.start))
}

func (r *recorder) got() ([][]int, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), slices.Clone(r.at)
}

func closeBatcher[T any](t *testing.T, b *Batcher[T]) {
	t.Helper()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A lone item goes at once, alone: batching adds no latency at light load.
func TestLoneItemGoesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		b := New(Config{}, r.flush)
		defer closeBatcher(t, b)
		b.Add(1, 10)
		synctest.Wait()
		batches, at := r.got()
		if !slices.EqualFunc(batches, [][]int{{1}}, slices.Equal) || at[0] != 0 {
			t.Fatalf("got %v at %v, want [[1]] at once", batches, at)
		}
	})
}

// While a batch is being flushed, the items that arrive queue up and go
// together next, in order, within MaxItems.
func TestItemsQueueDuringAFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.gate = make(chan struct{})
		b := New(Config{MaxItems: 4}, r.flush)
		b.Add(0, 1)
		synctest.Wait() // the worker is flushing [0], held at the gate
		for i := 1; i <= 6; i++ {
			b.Add(i, 1)
		}
		for range 3 {
			r.gate <- struct{}{}
		}
		synctest.Wait()
		batches, _ := r.got()
		want := [][]int{{0}, {1, 2, 3, 4}, {5, 6}}
		if !slices.EqualFunc(batches, want, slices.Equal) {
			t.Fatalf("got %v, want %v", batches, want)
		}
		r.gate = nil
		closeBatcher(t, b)
	})
}

// MaxBytes bounds a batch; an item larger than it goes alone.
func TestMaxBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.gate = make(chan struct{})
		b := New(Config{MaxBytes: 100}, r.flush)
		b.Add(0, 1)
		synctest.Wait()
		b.Add(1, 60)
		b.Add(2, 50) // 110 > 100: next batch
		b.Add(3, 500)
		b.Add(4, 10)
		for range 5 {
			r.gate <- struct{}{}
		}
		synctest.Wait()
		batches, _ := r.got()
		want := [][]int{{0}, {1}, {2}, {3}, {4}}
		if !slices.EqualFunc(batches, want, slices.Equal) {
			t.Fatalf("got %v, want %v", batches, want)
		}
		r.gate = nil
		closeBatcher(t, b)
	})
}

// With Linger, a batch waits that long for company, and no longer; it goes
// early when it fills.
func TestLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		b := New(Config{MaxItems: 3, Linger: 5 * time.Millisecond}, r.flush)
		defer closeBatcher(t, b)
		b.Add(1, 1)
		time.Sleep(2 * time.Millisecond)
		b.Add(2, 1)
		time.Sleep(10 * time.Millisecond)
		b.Add(3, 1)
		b.Add(4, 1)
		b.Add(5, 1) // fills the batch: it goes at once
		synctest.Wait()
		batches, at := r.got()
		want := [][]int{{1, 2}, {3, 4, 5}}
		if !slices.EqualFunc(batches, want, slices.Equal) {
			t.Fatalf("got %v, want %v", batches, want)
		}
		if at[0] != 5*time.Millisecond || at[1] != 12*time.Millisecond {
			t.Fatalf("flushed at %v, want 5ms (linger) and 12ms (full at once)", at)
		}
	})
}

// Close flushes what is queued; Add after Close refuses.
func TestCloseFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.gate = make(chan struct{}, 10)
		b := New(Config{}, r.flush)
		b.Add(1, 1)
		synctest.Wait()
		b.Add(2, 1)
		b.Add(3, 1)
		for range 2 {
			r.gate <- struct{}{}
		}
		closeBatcher(t, b)
		if b.Add(4, 1) {
			t.Fatal("Add after Close took the item")
		}
		batches, _ := r.got()
		if want := [][]int{{1}, {2, 3}}; !slices.EqualFunc(batches, want, slices.Equal) {
			t.Fatalf("got %v, want %v", batches, want)
		}
	})
}

// Add blocks while MaxQueued items wait, and goes on when the worker takes
// them.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		r.gate = make(chan struct{})
		b := New(Config{MaxItems: 2, MaxQueued: 2}, r.flush)
		b.Add(0, 1)
		synctest.Wait() // flushing [0]
		b.Add(1, 1)
		b.Add(2, 1)
		added := make(chan struct{})
		go func() {
			b.Add(3, 1)
			close(added)
		}()
		synctest.Wait()
		select {
		case <-added:
			t.Fatal("Add did not block on a full queue")
		default:
		}
		r.gate <- struct{}{} // [0] done; the worker takes [1 2]
		synctest.Wait()
		select {
		case <-added:
		default:
			t.Fatal("Add still blocked after the queue emptied")
		}
		r.gate <- struct{}{}
		r.gate <- struct{}{}
		synctest.Wait()
		r.gate = nil
		closeBatcher(t, b)
		batches, _ := r.got()
		if want := [][]int{{0}, {1, 2}, {3}}; !slices.EqualFunc(batches, want, slices.Equal) {
			t.Fatalf("got %v, want %v", batches, want)
		}
	})
}
