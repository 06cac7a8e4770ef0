package node

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"time"

	"github.com/verity-network/verity/internal/batch"
)

// maxSignBatch bounds the messages one signature covers: each carries a
// proof of at most log2(maxSignBatch) hashes.
const maxSignBatch = 64

// signLinger is how long a signature waits for more messages to cover
// while they come at a busy rate (200 a second: a validator signs one
// ballot per job, a gateway one certificate per job it issued) or the
// node is loaded; at light load none waits. Measured with verity bench,
// 4 nodes, 1-claim outputs, saturated, interleaved, with the bundle
// linger at 10 ms: 8 ms took the ballots per signature from about 4 to
// 9-11 and the certificates a second up 1-15% in each of 6 pairs, at 64
// and at 256 jobs in flight (docs/performance.md, "Proofs of a batch").
const signLinger = 8 * time.Millisecond

// errSigningStopped: the node stopped before the message was signed.
var errSigningStopped = errors.New("node: signing stopped")

// batchSigner signs messages the way a group commit writes: a message that
// finds it idle is signed alone at once, as without batching, and the
// messages that come while it signs are signed next, all with one batch
// signature (each gets its Merkle proof and verifies alone). Under light
// load nothing waits; under load one signature serves many messages, and
// a checker that holds it recovers it once.
type batchSigner[T any] struct {
	b *batch.Batcher[*signRequest[T]]
	// one signs a message alone; many signs several with one signature.
	one  func(T) error
	many func([]T) error

	mu    sync.Mutex
	stats BatchStats
}

// BatchStats counts the signatures a node made of one kind of message and
// how many messages each covered: cumulative, so that a caller subtracts
// two snapshots.
type BatchStats struct {
	Signatures uint64 `json:"signatures"`
	Messages   uint64 `json:"messages"`
	// Max is the most messages one signature covered.
	Max int `json:"max"`
	// Sizes counts signatures by the messages they covered: Sizes[0] one,
	// Sizes[1] two or three, Sizes[i] 2^i to 2^(i+1)-1.
	Sizes [SizeBuckets]uint64 `json:"sizes"`
}

// SizeBuckets is the length of BatchStats.Sizes: up to maxSignBatch (64).
const SizeBuckets = 7

func (s *BatchStats) add(n int) {
	s.Signatures++
	s.Messages += uint64(n)
	s.Max = max(s.Max, n)
	s.Sizes[min(bits.Len(uint(n))-1, SizeBuckets-1)]++
}

// Sub is s minus an earlier snapshot; Max stays s's (the largest so far).
func (s BatchStats) Sub(earlier BatchStats) BatchStats {
	s.Signatures -= earlier.Signatures
	s.Messages -= earlier.Messages
	for i := range s.Sizes {
		s.Sizes[i] -= earlier.Sizes[i]
	}
	return s
}

// Add adds o to s (Max the larger of the two).
func (s *BatchStats) Add(o BatchStats) {
	s.Signatures += o.Signatures
	s.Messages += o.Messages
	s.Max = max(s.Max, o.Max)
	for i := range s.Sizes {
		s.Sizes[i] += o.Sizes[i]
	}
}

// signRequest is a message waiting for its signature; done gets the
// outcome.
type signRequest[T any] struct {
	msg  T
	done chan error
}

// newBatchSigner signs with one or many; loaded reports whether the node
// is under load (signatures then wait signLinger for more messages).
func newBatchSigner[T any](loaded func() bool, one func(T) error, many func([]T) error) *batchSigner[T] {
	s := &batchSigner[T]{one: one, many: many}
	// Under load, signatures wait up to signLinger for more messages to
	// cover (one recovery each for every node that checks them).
	s.b = batch.New(batch.Config{MaxItems: maxSignBatch, BusyLinger: signLinger,
		Busy: batch.Busy{Count: 8, Window: 40 * time.Millisecond}, Loaded: loaded}, s.flush)
	return s
}

// sign signs m, alone or with the messages ready at the same moment, and
// waits for it.
func (s *batchSigner[T]) sign(m T) error {
	if s == nil { // a node never started
		return errSigningStopped
	}
	r := &signRequest[T]{msg: m, done: make(chan error, 1)}
	// Every message is one leaf: a batch is bounded by MaxItems only.
	if !s.b.Add(r, 0) {
		return errSigningStopped
	}
	return <-r.done
}

func (s *batchSigner[T]) flush(reqs []*signRequest[T]) {
	s.mu.Lock()
	s.stats.add(len(reqs))
	s.mu.Unlock()
	var err error
	if len(reqs) == 1 {
		err = s.one(reqs[0].msg)
	} else {
		msgs := make([]T, len(reqs))
		for i, r := range reqs {
			msgs[i] = r.msg
		}
		err = s.many(msgs)
	}
	for _, r := range reqs {
		r.done <- err
	}
}

// batchStats is what this signer has signed so far; zero for a nil
// signer.
func (s *batchSigner[T]) batchStats() BatchStats {
	if s == nil {
		return BatchStats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// queued is the number of messages waiting for a batch.
func (s *batchSigner[T]) queued() int { return s.b.Queued() }

// close signs what is queued and stops; call it once nothing signs any
// more. A nil signer (a node never started) has nothing to stop.
func (s *batchSigner[T]) close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.b.Close(ctx)
}
