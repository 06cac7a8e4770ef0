package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// TestDeadlineCtx: the context behaves as context.WithDeadline's, and
// makes no timer until it is waited on.
func TestDeadlineCtx(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	far := time.Now().Add(time.Hour)
	c := newDeadlineCtx(parent, far)
	if err := c.Err(); err != nil {
		t.Fatalf("before the deadline: %v", err)
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(far) {
		t.Fatalf("deadline %v %v, want %v", d, ok, far)
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("a value of the parent is lost")
	}
	if c.ctx != nil {
		t.Fatal("a context made before anything waits on it")
	}
	select {
	case <-c.Done():
		t.Fatal("done an hour early")
	default:
	}
	c.stop()
	<-c.Done()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("stopped: %v", c.Err())
	}

	// Stopped before anything waited on it: cancelled, and nothing made.
	early := newDeadlineCtx(parent, far)
	early.stop()
	if !errors.Is(early.Err(), context.Canceled) || early.cancel != nil {
		t.Fatalf("stopped unused: %v (a context made: %v)", early.Err(), early.cancel != nil)
	}
	<-early.Done()

	// A deadline past: Err says so, and Done is closed.
	past := newDeadlineCtx(parent, time.Now().Add(-time.Millisecond))
	if !errors.Is(past.Err(), context.DeadlineExceeded) {
		t.Fatalf("past the deadline: %v", past.Err())
	}
	select {
	case <-past.Done():
	default:
		t.Fatal("past the deadline, Done is open")
	}

	// A deadline that passes while waited on.
	soon := newDeadlineCtx(parent, time.Now().Add(20*time.Millisecond))
	defer soon.stop()
	select {
	case <-soon.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the deadline passed, Done is open")
	}
	if !errors.Is(soon.Err(), context.DeadlineExceeded) {
		t.Fatalf("deadline passed: %v", soon.Err())
	}

	// The parent cancelled, nothing made yet.
	pctx, cancel := context.WithCancel(parent)
	child := newDeadlineCtx(pctx, far)
	cancel()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("parent cancelled: %v", child.Err())
	}
	<-child.Done()

	// An earlier deadline of the parent is the deadline.
	sooner := time.Now().Add(time.Minute)
	pctx, cancel = context.WithDeadline(parent, sooner)
	defer cancel()
	if d, _ := newDeadlineCtx(pctx, far).Deadline(); !d.Equal(sooner) {
		t.Fatalf("deadline %v, want the parent's %v", d, sooner)
	}
}
