package batch

import "time"

// Busy tells a step under load from one at light load by the rate of the
// items that come to it, so that a step that could wait for more items
// to share it (Config.BusyLinger, a group commit, a bundle) waits only
// when that pays: it is busy while Count items came within Window and the
// last batch already held more than one item. The zero value uses
// DefaultBusyCount and DefaultBusyWindow (100 items a second); a step
// that sees several items per job sets a higher rate, so that light load
// is not busy but in a rare burst. Items that come one after another,
// each waiting for the last (a serial writer), never share a batch, so
// they are never busy: waiting would only delay each. Not safe for
// concurrent use.
type Busy struct {
	Count  int
	Window time.Duration

	recent []time.Time // a ring of the last Count items' times, at next
	next   int
	shared bool // the last batch held more than one item
}

// The default busy rate: DefaultBusyCount items within DefaultBusyWindow.
const (
	DefaultBusyCount  = 8
	DefaultBusyWindow = 80 * time.Millisecond
)

// Note records an item that came at now and reports whether the step is
// busy.
func (b *Busy) Note(now time.Time) bool {
	if b.recent == nil {
		if b.Count <= 0 {
			b.Count = DefaultBusyCount
		}
		if b.Window <= 0 {
			b.Window = DefaultBusyWindow
		}
		b.recent = make([]time.Time, b.Count)
	}
	oldest := b.recent[b.next]
	b.recent[b.next] = now
	b.next = (b.next + 1) % len(b.recent)
	return b.shared && !oldest.IsZero() && now.Sub(oldest) < b.Window
}

// Batch records the size of the batch that went last.
func (b *Busy) Batch(n int) { b.shared = n > 1 }
