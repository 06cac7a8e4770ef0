package node

import (
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/internal/fifo"
)

// answerInterval is the least time between two answers of this validator
// to one job's announcements (judging it, or sending its stored ballot
// again). A gateway re-announces a job at most once a second.
const answerInterval = time.Second

// ballotRepeatInterval is the least time between two copies of one ballot
// this node takes from gossip: a validator answers each job at most once
// per answerInterval, and the slack covers the time a copy takes to come.
const ballotRepeatInterval = answerInterval / 2

// announceBook is what a node remembers of the most recent jobs announced
// to it: the highest resend number of each that it took, when it last
// answered one, whether it is judging it, and when it last took a copy of
// each ballot from gossip. It holds at most its capacity of jobs and of
// ballots, forgetting the oldest: a job forgotten is taken again once, as
// if first seen.
type announceBook struct {
	mu      sync.Mutex
	jobs    *fifo.Map[common.Hash, *announced]
	ballots *fifo.Map[common.Hash, time.Time] // ballot digest -> last taken
}

type announced struct {
	resend   uint64    // highest resend taken
	answered time.Time // last answer; zero before the first
	judging  bool
}

func newAnnounceBook(capacity int) *announceBook {
	return &announceBook{
		jobs:    fifo.New[common.Hash, *announced](capacity),
		ballots: fifo.New[common.Hash, time.Time](capacity),
	}
}

// stale reports whether an announcement of job id with this resend number
// brings nothing new: the job is known with this resend number or a higher
// one. It is checked before the signature.
func (b *announceBook) stale(id common.Hash, resend uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.jobs.Get(id)
	return ok && resend <= a.resend
}

// take records an announcement whose signature holds; it reports false if
// it is stale after all (a copy taken meanwhile).
func (b *announceBook) take(id common.Hash, resend uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.jobs.Get(id)
	if !ok {
		b.jobs.Put(id, &announced{resend: resend})
		return true
	}
	if resend <= a.resend {
		return false
	}
	a.resend = resend
	return true
}

// answer reports whether this validator may answer an announcement of job
// id now (it has not answered one within answerInterval) and if so records
// the answer.
func (b *announceBook) answer(id common.Hash, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.jobs.Get(id)
	if !ok {
		a = &announced{}
		b.jobs.Put(id, a)
	}
	if !a.answered.IsZero() && now.Sub(a.answered) < answerInterval {
		return false
	}
	a.answered = now
	return true
}

// startJudging reports whether this validator may start judging job id
// (it is not judging it already) and if so records that it is.
func (b *announceBook) startJudging(id common.Hash) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.jobs.Get(id)
	if !ok {
		a = &announced{}
		b.jobs.Put(id, a)
	}
	if a.judging {
		return false
	}
	a.judging = true
	return true
}

// doneJudging records the end of a judgment started with startJudging.
func (b *announceBook) doneJudging(id common.Hash) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.jobs.Get(id); ok {
		a.judging = false
	}
}

// takeBallot reports whether a copy of the ballot with this digest and
// signature may be taken from gossip now: the first copy, or one at least
// ballotRepeatInterval after the last taken. Different ballots of one
// validator for one job have different digests, so equivocation is never
// held back.
func (b *announceBook) takeBallot(key common.Hash, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if last, ok := b.ballots.Get(key); ok && now.Sub(last) < ballotRepeatInterval {
		return false
	}
	b.ballots.Put(key, now)
	return true
}
