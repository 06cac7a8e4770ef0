package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	bolt "go.etcd.io/bbolt"

	"github.com/verity-network/verity/consensus"
)

// loggedDeadlines reads the deadline log: job id to deadline.
func loggedDeadlines(t *testing.T, s *Store) map[common.Hash]uint64 {
	t.Helper()
	out := map[common.Hash]uint64{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadlineLog).ForEach(func(k, v []byte) error {
			job, ms, ok := logEntry(k, v)
			if !ok {
				return fmt.Errorf("entry %x: %x", k, v)
			}
			out[job] = ms
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// indexedDeadlines reads the deadline index: job id to deadline.
func indexedDeadlines(t *testing.T, s *Store) map[common.Hash]uint64 {
	t.Helper()
	out := map[common.Hash]uint64{}
	for _, k := range bucketKeys(t, s, bucketLive) {
		if len(k) == 1+common.HashLength {
			job := common.Hash(k[1:])
			if err := s.db.View(func(tx *bolt.Tx) error {
				out[job] = binary.BigEndian.Uint64(tx.Bucket(bucketLive).Get(k))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// mergeTemp opens a store that merges its logged deadlines from mergeAt
// of them, chunk to a commit.
func mergeTemp(t *testing.T, mergeAt, chunk int) (*Store, string) {
	t.Helper()
	s, path := openTemp(t)
	mergeEvery(s, mergeAt, chunk)
	return s, path
}

// mergeEvery sets when s merges, and makes it report each merge commit
// (merged). Call it before a write: the writer receives the write after.
func mergeEvery(s *Store, mergeAt, chunk int) {
	s.dl.mergeAt, s.dl.chunk, s.dl.stepped = mergeAt, chunk, make(chan int, 64)
}

// merged waits for the writer's next merge commit and fails unless it
// merged n deadlines.
func merged(t *testing.T, s *Store, n int) {
	t.Helper()
	select {
	case got := <-s.dl.stepped:
		if got != n {
			t.Fatalf("a merge commit of %d deadlines, want %d", got, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no merge commit in 10s, want one of %d deadlines", n)
	}
}

// noMerge fails if the writer has reported a merge commit.
func noMerge(t *testing.T, s *Store) {
	t.Helper()
	select {
	case got := <-s.dl.stepped:
		t.Fatalf("a merge commit of %d deadlines, want none", got)
	default:
	}
}

func deadlineJob(i int) *Job {
	id := common.Hash{0xd0, byte(i >> 8), byte(i)}
	// Deadlines in the reverse order of ids: the index is not in the
	// records' order.
	d := time.UnixMilli(int64(1_800_000_000_000 - 1000*i)).UTC()
	return &Job{ID: id, Message: []byte(`{}`), Status: consensus.StatusProvisional, Deadline: d}
}

func putJobs(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.PutJob(deadlineJob(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkJobs fails unless jobs from to to are found by id, under their
// deadlines.
func checkJobs(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		want := deadlineJob(i)
		j, err := s.Job(want.ID)
		if err != nil || !j.Deadline.Equal(want.Deadline) {
			t.Fatalf("job %d: %+v, %v", i, j, err)
		}
	}
}

// TestDeadlinesMerged: deadlines are logged, then, once mergeAt are,
// merged into the index a chunk a commit between the writer's commits,
// the last chunk dropping them from the log; jobs are found by id all
// along, and after the store is opened again.
func TestDeadlinesMerged(t *testing.T) {
	s, path := mergeTemp(t, 10, 4)
	putJobs(t, s, 0, 9)
	if n := len(loggedDeadlines(t, s)); n != 9 {
		t.Fatalf("%d deadlines logged, want 9", n)
	}
	if n := len(indexedDeadlines(t, s)); n != 0 {
		t.Fatalf("%d deadlines indexed before the merge, want none", n)
	}
	noMerge(t, s)
	checkJobs(t, s, 0, 9)
	// The 10th deadline starts the merge: 4 of the 10 a commit, after
	// each commit of a write.
	for i, want := range []struct{ merged, indexed, logged int }{{4, 4, 10}, {4, 8, 11}, {2, 10, 2}} {
		putJobs(t, s, 9+i, 10+i)
		merged(t, s, want.merged)
		if n, m := len(indexedDeadlines(t, s)), len(loggedDeadlines(t, s)); n != want.indexed || m != want.logged {
			t.Fatalf("after merge commit %d: %d indexed, %d logged, want %d and %d", i, n, m, want.indexed, want.logged)
		}
		checkJobs(t, s, 0, 10+i)
	}
	idx, log := indexedDeadlines(t, s), loggedDeadlines(t, s)
	for i := range 12 {
		j := deadlineJob(i)
		ms, in := idx[j.ID]
		_, logged := log[j.ID]
		if in == logged || in && ms != uint64(j.Deadline.UnixMilli()) {
			t.Fatalf("job %d: indexed %v (%d), logged %v", i, in, ms, logged)
		}
	}
	s = reopen(t, s, path)
	checkJobs(t, s, 0, 12)
	if n := len(s.dl.recent); n != 2 {
		t.Fatalf("%d deadlines read back from the log, want 2", n)
	}
}

// TestDeadlineMergeCutShort: a store closed in the middle of a merge
// keeps every deadline it had logged; opened again, it finds every job
// and merges them all.
func TestDeadlineMergeCutShort(t *testing.T) {
	s, path := mergeTemp(t, 10, 4)
	putJobs(t, s, 0, 10)
	merged(t, s, 4)
	if n, m := len(indexedDeadlines(t, s)), len(loggedDeadlines(t, s)); n != 4 || m != 10 {
		t.Fatalf("after one chunk: %d indexed, %d logged, want 4 and 10", n, m)
	}
	s = reopen(t, s, path)
	checkJobs(t, s, 0, 10)
	mergeEvery(s, 10, 100)
	putJobs(t, s, 10, 11) // 11 logged: one commit merges them all
	merged(t, s, 11)
	if n, m := len(indexedDeadlines(t, s)), len(loggedDeadlines(t, s)); n != 11 || m != 0 {
		t.Fatalf("after the merge: %d indexed, %d logged, want 11 and none", n, m)
	}
	checkJobs(t, s, 0, 11)
}

// TestDeadlineInOldSnapshot: a read transaction begun before a merge
// finds a job whose deadline the merge took out of memory and put in an
// index its snapshot does not see: in its snapshot's log. It fails if
// deadlineOf does not look there.
func TestDeadlineInOldSnapshot(t *testing.T) {
	s, _ := mergeTemp(t, 2, 100)
	// Room in the file first, so that the writes below need not grow
	// the memory map, which waits for the open read transaction.
	if err := s.AddAudit(common.Hash{1}, &AuditRecord{Detail: strings.Repeat("x", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	putJobs(t, s, 0, 1)
	old, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	putJobs(t, s, 1, 2)
	merged(t, s, 2)
	if n := len(indexedDeadlines(t, s)); n != 2 {
		t.Fatalf("%d deadlines indexed, want 2", n)
	}
	s.dl.mu.RLock()
	_, inMemory := s.dl.recent[deadlineJob(0).ID]
	s.dl.mu.RUnlock()
	if inMemory {
		t.Fatal("a merged deadline is still in memory")
	}
	j := deadlineJob(0)
	if data := s.jobData(old, j.ID); data == nil {
		t.Fatal("job 0 not found in a snapshot from before the merge")
	}
	if data := s.jobData(old, deadlineJob(1).ID); data != nil {
		t.Fatal("job 1, stored after the snapshot, found in it")
	}
}

// TestDeadlineOfRolledBackWrite: a write whose batch is rolled back
// leaves nothing of the deadlines it logged, and the batch's other
// writes, each committed alone after, log theirs once.
func TestDeadlineOfRolledBackWrite(t *testing.T) {
	s, _ := openTemp(t)
	a, b := deadlineJob(1), deadlineJob(2)
	data, err := encodeJob(a)
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("fails")
	batch := []*writeReq{
		{kind: KindJob, fn: func(tx *bolt.Tx) error { return s.putJob(tx, a, data) }, done: make(chan error, 1)},
		{kind: KindJob, fn: func(tx *bolt.Tx) error {
			if err := s.putDeadline(tx, b.ID, 5); err != nil {
				return err
			}
			return failed
		}, done: make(chan error, 1)},
	}
	// The writer is idle: it waits for a write, which the test does not
	// send while it runs the batch.
	s.commit(batch)
	if err := <-batch[0].done; err != nil {
		t.Fatal(err)
	}
	if err := <-batch[1].done; !errors.Is(err, failed) {
		t.Fatalf("second write: %v, want its own error", err)
	}
	if log := loggedDeadlines(t, s); len(log) != 1 || log[a.ID] != uint64(a.Deadline.UnixMilli()) {
		t.Fatalf("deadline log %v, want job a's alone", log)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if key := s.certKey(tx, b.ID); key != nil {
			return fmt.Errorf("the rolled-back job keyed %x", key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkJobs(t, s, 1, 2)
}

// TestDeadlinesConcurrent: writers and readers at once, with merges
// under way, for the race detector; every job is found once written.
func TestDeadlinesConcurrent(t *testing.T) {
	s, _ := mergeTemp(t, 32, 8)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w * 100; i < w*100+100; i++ {
				j := deadlineJob(i)
				if err := s.PutJob(j); err != nil {
					errs <- err
					return
				}
				for _, k := range []int{i, w * 100, (i * 7) % (i + 1)} {
					if k > i || k < w*100 {
						continue
					}
					if _, err := s.Job(deadlineJob(k).ID); err != nil {
						errs <- fmt.Errorf("job %d after %d: %w", k, i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkJobs(t, s, 0, 400)
}
