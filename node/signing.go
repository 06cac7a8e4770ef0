package node

import (
	"context"
	"errors"

	"github.com/verity-network/verity/internal/batch"
)

// maxSignBatch bounds the messages one signature covers: each carries a
// proof of at most log2(maxSignBatch) hashes.
const maxSignBatch = 64

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
}

// signRequest is a message waiting for its signature; done gets the
// outcome.
type signRequest[T any] struct {
	msg  T
	done chan error
}

func newBatchSigner[T any](one func(T) error, many func([]T) error) *batchSigner[T] {
	s := &batchSigner[T]{one: one, many: many}
	s.b = batch.New(batch.Config{MaxItems: maxSignBatch}, s.flush)
	return s
}

// sign signs m, alone or with the messages ready at the same moment, and
// waits for it.
func (s *batchSigner[T]) sign(m T) error {
	r := &signRequest[T]{msg: m, done: make(chan error, 1)}
	// Every message is one leaf: a batch is bounded by MaxItems only.
	if !s.b.Add(r, 0) {
		return errSigningStopped
	}
	return <-r.done
}

func (s *batchSigner[T]) flush(reqs []*signRequest[T]) {
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
