package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	logging "github.com/ipfs/go-log/v2"
	bolt "go.etcd.io/bbolt"
)

var storeLog = logging.Logger("verity/store")

// Finding a job's deadline by its id.
//
// A job's records are keyed by its deadline, then its id (certKey), so
// that they are written in about key order; a read by id first looks the
// deadline up. The index of deadlines by id (deadlineKey, in bucketLive)
// is keyed by the random id, so a commit that inserted one entry per job
// wrote about one leaf page of the index per job: at saturation, about a
// third of all page writes (docs/performance.md, "Deadlines logged, then
// merged").
//
// So a new deadline is not inserted in the index at once. The write
// transaction appends it to bucketDeadlineLog, keyed by a sequence
// number, which costs a fraction of a page, and the store keeps it in
// memory (recent) until it is merged. Once the log holds mergeAt
// entries, the writer merges them into the index in the order of their
// ids, mergeChunk to a commit between the commits of writes: each chunk
// changes one key range of the index, a leaf page for many entries
// where the index is small next to the merge, and never more than the
// entries themselves. The last chunk drops the merged entries from the
// log. After a crash, Open reads the log back: a merge cut short goes on
// (entries merged twice hold the same deadline).
//
// A lookup (deadlineOf) reads the entries of the write transaction it
// is in, then recent, then the index, and, in a read transaction older
// than the last merge commit, that transaction's log: a merge removes
// entries from recent once they are in the index, which an older
// snapshot does not see, but its log still holds them.
var bucketDeadlineLog = []byte("deadline_log")

const (
	// mergeAt is how many logged deadlines start a merge: about 600 KB
	// of memory, and 4 seconds of a saturated 4-node network's jobs.
	mergeAt = 8192
	// mergeChunk is how many deadlines a merge commit inserts.
	mergeChunk = 1024
)

// logged is a deadline in the log: in unix milliseconds, and the log
// sequence number it is stored under.
type logged struct{ ms, seq uint64 }

// deadlineIndex is a store's state of the deadline index.
type deadlineIndex struct {
	mu sync.RWMutex
	// recent holds the logged deadlines not yet merged into the index,
	// and those of the write transaction being committed. Only the
	// writer (and Open) changes it.
	recent map[common.Hash]logged
	// merged is the id of the last merge transaction committed.
	merged atomic.Uint64

	// The writer's alone:
	tx      *bolt.Tx               // the write transaction running
	pending map[common.Hash]logged // the deadlines it has logged
	queue   []mergeItem            // what the merge under way has left, in id order
	upTo    uint64                 // the last log sequence it covers
	mergeAt int                    // mergeAt, but in tests
	chunk   int                    // mergeChunk, but in tests
	stepped chan int               // in tests: each merge commit's entries
}

type mergeItem struct {
	job common.Hash
	logged
}

// loadDeadlineLog reads the deadlines logged and not merged into recent.
func (s *Store) loadDeadlineLog() error {
	d := &s.dl
	d.recent, d.pending = make(map[common.Hash]logged), make(map[common.Hash]logged)
	d.mergeAt, d.chunk = mergeAt, mergeChunk
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadlineLog).ForEach(func(k, v []byte) error {
			job, ms, ok := logEntry(k, v)
			if !ok {
				return fmt.Errorf("deadline log entry %x: %d bytes", k, len(v))
			}
			if _, ok := d.recent[job]; !ok {
				d.recent[job] = logged{ms: ms, seq: binary.BigEndian.Uint64(k)}
			}
			return nil
		})
	})
}

// logEntry reads a log entry: its key a u64 sequence number, its value
// the job id then the u64 deadline.
func logEntry(k, v []byte) (job common.Hash, ms uint64, ok bool) {
	if len(k) != 8 || len(v) != common.HashLength+8 {
		return job, 0, false
	}
	return common.Hash(v[:common.HashLength]), binary.BigEndian.Uint64(v[common.HashLength:]), true
}

// deadlineOf is the deadline stored for a job, in unix milliseconds; ok
// is false if none is.
func (s *Store) deadlineOf(tx *bolt.Tx, job common.Hash) (ms uint64, ok bool) {
	d := &s.dl
	// d.tx is the writer's: a read transaction, in any goroutine, does
	// not look.
	if tx.Writable() && tx == d.tx {
		if l, ok := d.pending[job]; ok {
			return l.ms, true
		}
	}
	d.mu.RLock()
	l, ok := d.recent[job]
	d.mu.RUnlock()
	if ok {
		return l.ms, true
	}
	if v := tx.Bucket(bucketLive).Get(deadlineKey(job)); len(v) == 8 {
		return binary.BigEndian.Uint64(v), true
	}
	if uint64(tx.ID()) < d.merged.Load() {
		// A snapshot from before a merge that took entries out of recent:
		// its log still holds them.
		c := tx.Bucket(bucketDeadlineLog).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if j, ms, ok := logEntry(k, v); ok && j == job {
				return ms, true
			}
		}
	}
	return 0, false
}

// putDeadline stores the deadline under which a job's records and
// certificate are stored: in a write of the writer, in the log; in one
// of Open's moves, which write in bulk, in the index.
func (s *Store) putDeadline(tx *bolt.Tx, job common.Hash, ms uint64) error {
	d := &s.dl
	if tx != d.tx {
		return putIndexed(tx, job, ms)
	}
	log := appended(tx, bucketDeadlineLog)
	seq, err := log.NextSequence()
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(append(make([]byte, 0, common.HashLength+8), job[:]...), ms)
	if err := log.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
		return err
	}
	d.pending[job] = logged{ms: ms, seq: seq}
	return nil
}

// putIndexed stores a job's deadline in the index.
func putIndexed(tx *bolt.Tx, job common.Hash, ms uint64) error {
	return tx.Bucket(bucketLive).Put(deadlineKey(job), binary.BigEndian.AppendUint64(nil, ms))
}

// runWrite runs fn in a write transaction and commits it. The deadlines
// fn logs are in recent from just before the commit (a lookup that finds
// one before the commit finds no record under it, as if it looked
// earlier) and are taken out again if the commit fails.
func (s *Store) runWrite(fn func(*bolt.Tx) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	d := &s.dl
	d.tx = tx
	clear(d.pending)
	committed := false
	defer func() {
		d.tx = nil
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	d.mu.Lock()
	for job, l := range d.pending {
		d.recent[job] = l
	}
	d.mu.Unlock()
	if err := tx.Commit(); err != nil {
		d.mu.Lock()
		for job := range d.pending {
			delete(d.recent, job)
		}
		d.mu.Unlock()
		return err
	}
	committed = true
	return nil
}

// mergeStep runs one commit of the merge of logged deadlines into the
// index, if one is under way or due. The writer calls it between the
// commits of writes.
func (s *Store) mergeStep() error {
	d := &s.dl
	if len(d.queue) == 0 {
		if len(d.recent) < d.mergeAt {
			return nil
		}
		d.queue, d.upTo = make([]mergeItem, 0, len(d.recent)), 0
		for job, l := range d.recent {
			d.queue = append(d.queue, mergeItem{job, l})
			d.upTo = max(d.upTo, l.seq)
		}
		slices.SortFunc(d.queue, func(a, b mergeItem) int { return bytes.Compare(a.job[:], b.job[:]) })
	}
	chunk := d.queue[:min(d.chunk, len(d.queue))]
	last := len(chunk) == len(d.queue)
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, it := range chunk {
			if err := putIndexed(tx, it.job, it.ms); err != nil {
				return err
			}
		}
		if last {
			// Everything logged up to upTo is merged now (what was logged
			// since is after it).
			c := tx.Bucket(bucketDeadlineLog).Cursor()
			for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= d.upTo; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		id = uint64(tx.ID())
		return nil
	})
	if err != nil {
		d.queue = nil // started again at the next step
		return fmt.Errorf("merge deadlines: %w", err)
	}
	s.commits.Add(1)
	d.merged.Store(id)
	d.mu.Lock()
	for _, it := range chunk {
		if l, ok := d.recent[it.job]; ok && l.seq == it.seq {
			delete(d.recent, it.job)
		}
	}
	d.mu.Unlock()
	d.queue = d.queue[len(chunk):]
	if d.stepped != nil {
		d.stepped <- len(chunk)
	}
	return nil
}
