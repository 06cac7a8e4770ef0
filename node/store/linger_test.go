package store

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
)

// TestLoadedCommitWaits: while the store's user says it is loaded, a
// commit waits up to loadedLinger for more writes to share it, saturated
// up to saturatedLinger; at light load a write commits alone, at once.
// Virtual time, so the waits are exact.
func TestLoadedCommitWaits(t *testing.T) {
	for load, linger := range map[Load]time.Duration{Light: 0, Loaded: loadedLinger, Saturated: saturatedLinger} {
		synctest.Test(t, func(t *testing.T) {
			s, _ := openTemp(t)
			defer s.Close()
			s.SetLoad(func() Load { return load })
			before := s.Stats().Commits
			put := func(id byte) error {
				return s.PutJob(&Job{ID: common.Hash{id}, Status: consensus.StatusProvisional})
			}
			start := time.Now()
			var wg sync.WaitGroup
			var first time.Duration
			var errs [2]error
			wg.Go(func() {
				errs[0] = put(1)
				first = time.Since(start)
			})
			synctest.Wait()
			time.Sleep(max(linger, loadedLinger) - time.Millisecond)
			wg.Go(func() { errs[1] = put(2) })
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("writes: %v", errs)
			}
			commits := s.Stats().Commits - before
			switch {
			case load != Light && (commits != 1 || first != linger):
				t.Fatalf("load %d: %d commits, first write done after %v; want 1 commit after %v", load, commits, first, linger)
			case load == Light && (commits != 2 || first != 0):
				t.Fatalf("light load: %d commits, first write done after %v; want 2 commits, the first at once", commits, first)
			}
		})
	}
}
