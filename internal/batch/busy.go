package batch

import "time"

// Busy tells a step under load from one at light load, so that a step
// that could wait for more items to share it (Config.BusyLinger, a group
// commit, a bundle) waits only when that pays. It is busy while items
// come at BusyCount or more within BusyWindow (100 a second) and the last
// batch already held more than one item: items queue behind the step
// anyway. Light load (tens of items a second, one per batch) is not
// busy, nor is a burst of items that each went alone. The zero value is
// ready to use; it is not safe for concurrent use.
type Busy struct {
	recent [BusyCount]time.Time // a ring of the last items' times, at next
	next   int
	shared bool // the last batch held more than one item
}

// The busy rate: BusyCount items within BusyWindow.
const (
	BusyCount  = 8
	BusyWindow = 80 * time.Millisecond
)

// Note records an item that came at now and reports whether the step is
// busy.
func (b *Busy) Note(now time.Time) bool {
	oldest := b.recent[b.next]
	b.recent[b.next] = now
	b.next = (b.next + 1) % BusyCount
	return b.shared && !oldest.IsZero() && now.Sub(oldest) < BusyWindow
}

// Batch records the size of the batch that went last.
func (b *Busy) Batch(n int) { b.shared = n > 1 }
