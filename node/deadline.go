package node

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is context.WithDeadline(parent, deadline) made only when it
// is waited on. A validator gives every job it judges a context with the
// job's deadline, and context.WithDeadline arms a timer and registers
// with its parent for each, about 1.5% of the CPU at saturation, though
// judges that answer at once never wait on it. Deadline, Value and Err
// need no timer; Done makes the context at its first call. stop releases
// what it made, as the cancel of context.WithDeadline does.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	ctx    context.Context // made by Done, or by Err once it is done
	cancel context.CancelFunc
}

func newDeadlineCtx(parent context.Context, deadline time.Time) *deadlineCtx {
	return &deadlineCtx{parent: parent, deadline: deadline}
}

// made is the context with the deadline, made at the first call.
func (c *deadlineCtx) made() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.ctx
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.made().Done() }

func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

// Err is nil until the parent is done or the deadline passed; then it is
// the made context's error, whose Done is closed by then.
func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx != nil {
		return ctx.Err()
	}
	if c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return nil
	}
	return c.made().Err()
}

// stop releases the context's timer, if one was made, and cancels it:
// Done and Err after stop make nothing (a goroutine the judge left
// behind that waits on it later arms no timer).
func (c *deadlineCtx) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		return
	}
	c.ctx = stoppedCtx
}

// stoppedCtx is a context cancelled from the start.
var stoppedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
