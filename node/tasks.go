package node

import "sync"

// tasks tracks the goroutines of a node, so that Stop waits for every one.
// Work that starts outside the node's own goroutines (a timer firing,
// libp2p calling a stream handler, a client submitting a job) enters first
// and is refused once the node stops; work started from a tracked
// goroutine is tracked with go.
type tasks struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter counts the calling goroutine among the node's until exit; it
// reports false, counting nothing, once the node stops.
func (t *tasks) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// exit ends what enter began.
func (t *tasks) exit() { t.wg.Done() }

// goTracked runs f in a tracked goroutine. Call it only from a tracked
// goroutine (or one that entered), or while the node starts, so that it
// never adds to a count Stop has finished waiting on.
func (t *tasks) goTracked(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// close refuses every enter from now on.
func (t *tasks) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

// wait waits for every tracked goroutine.
func (t *tasks) wait() { t.wg.Wait() }
