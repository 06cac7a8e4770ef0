// Package batch groups items for one costly step that serves many at once
// (a signature, a message, a store commit) the way a group commit does:
// one worker takes everything queued, runs the step on it, and meanwhile
// the next items queue up. Under light load an item goes alone, at once,
// so batching adds no latency; under load batches grow by themselves to
// what the step's speed needs, up to the bounds of Config.
//
// Linger, when set, makes the worker wait that long after the first item
// of a batch for more to join it: it trades a bounded delay for fuller
// batches.
package batch

import (
	"context"
	"sync"
	"time"
)

// Config bounds a batch.
type Config struct {
	// MaxItems and MaxBytes bound one batch (defaults 256 items, 1 MiB);
	// an item larger than MaxBytes goes alone.
	MaxItems int
	MaxBytes int
	// Linger is how long the worker waits after a batch's first item for
	// more (default 0: it takes what is queued and goes).
	Linger time.Duration
	// BusyLinger is Linger only while items come at a busy rate (Busy):
	// under light load an item goes at once, under load batches fill
	// for up to BusyLinger.
	BusyLinger time.Duration
	// Busy sets the busy rate for BusyLinger (default: Busy's).
	Busy Busy
	// Loaded, if set, also makes a batch wait BusyLinger while it reports
	// true: the caller knows it is under load (work queued) whatever the
	// rate of this batcher's items.
	Loaded func() bool
	// MaxQueued bounds the items waiting (default 16 × MaxItems); Add
	// blocks while the queue is full.
	MaxQueued int
}

func (c *Config) defaults() {
	if c.MaxItems <= 0 {
		c.MaxItems = 256
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 16 * c.MaxItems
	}
}

type entry[T any] struct {
	item T
	size int
}

// Batcher runs flush on batches of the items added to it, one batch at a
// time, in the order they were added.
type Batcher[T any] struct {
	cfg   Config
	flush func([]T)

	mu      sync.Mutex
	queue   []entry[T]
	bytes   int
	ready   chan struct{} // signalled when the queue gains an item
	space   *sync.Cond    // broadcast when the queue shrinks
	closed  bool
	busy    bool // the last item came at a busy rate
	rate    Busy
	stopped chan struct{}
	sizes   func(n int) // observer of batch sizes, may be nil
}

// New starts a batcher whose worker calls flush with each batch. flush
// owns the slice it is given.
func New[T any](cfg Config, flush func([]T)) *Batcher[T] {
	cfg.defaults()
	b := &Batcher[T]{cfg: cfg, flush: flush, ready: make(chan struct{}, 1), stopped: make(chan struct{}), rate: cfg.Busy}
	b.space = sync.NewCond(&b.mu)
	go b.run()
	return b
}

// OnBatch sets a function called with the size of each batch before it is
// flushed (for metrics). Call it before the first Add.
func (b *Batcher[T]) OnBatch(f func(n int)) { b.sizes = f }

// Add queues an item of the given size in bytes. It blocks while
// MaxQueued items wait, and reports false once the batcher is closed.
func (b *Batcher[T]) Add(item T, size int) bool {
	b.mu.Lock()
	for len(b.queue) >= b.cfg.MaxQueued && !b.closed {
		b.space.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.queue = append(b.queue, entry[T]{item, size})
	b.bytes += size
	if b.cfg.BusyLinger > 0 {
		b.busy = b.rate.Note(time.Now())
	}
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return true
}

// Queued is the number of items waiting for a batch (not those being
// flushed).
func (b *Batcher[T]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Close flushes what is queued, stops the worker and waits for it, or for
// ctx.
func (b *Batcher[T]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.space.Broadcast()
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batcher[T]) run() {
	defer close(b.stopped)
	for {
		<-b.ready
		if d := b.lingerFor(); d > 0 && !b.isClosed() && !b.full() {
			b.linger(d)
		}
		for {
			items, closed := b.take()
			if len(items) == 0 {
				if closed {
					return
				}
				break
			}
			if b.sizes != nil {
				b.sizes(len(items))
			}
			b.mu.Lock()
			b.rate.Batch(len(items))
			b.mu.Unlock()
			b.flush(items)
		}
	}
}

// lingerFor is how long the next batch waits to fill: Linger, or
// BusyLinger while busy.
func (b *Batcher[T]) lingerFor() time.Duration {
	if b.cfg.Linger > 0 {
		return b.cfg.Linger
	}
	b.mu.Lock()
	busy := b.busy
	b.mu.Unlock()
	if busy || (b.cfg.Loaded != nil && b.cfg.BusyLinger > 0 && b.cfg.Loaded()) {
		return b.cfg.BusyLinger
	}
	return 0
}

// linger waits up to d for the batch to fill.
func (b *Batcher[T]) linger(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-b.ready:
			if b.isClosed() || b.full() {
				return
			}
		}
	}
}

func (b *Batcher[T]) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Batcher[T]) full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) >= b.cfg.MaxItems || b.bytes >= b.cfg.MaxBytes
}

// take removes the next batch from the queue: items in order while within
// MaxItems and MaxBytes, at least one.
func (b *Batcher[T]) take() ([]T, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, size := 0, 0
	for n < len(b.queue) && n < b.cfg.MaxItems {
		if n > 0 && size+b.queue[n].size > b.cfg.MaxBytes {
			break
		}
		size += b.queue[n].size
		n++
	}
	items := make([]T, n)
	for i := range n {
		items[i] = b.queue[i].item
	}
	clear(b.queue[:n])
	b.queue = b.queue[n:]
	b.bytes -= size
	if n > 0 {
		b.space.Broadcast()
	}
	return items, b.closed
}
