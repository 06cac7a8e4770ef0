package node

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// manualClock is a Clock that moves only when told to.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Time
	f       func()
	stopped bool
}

var _ Clock = (*manualClock)(nil)

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// advance moves the clock by d and fires, each in its own goroutine as
// time.AfterFunc does, the timers that are due.
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t.f)
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// aloneOfThree starts a node that is one of three validators of equal
// stake, alone on the network (so that its jobs cannot reach quorum), on
// clock.
func aloneOfThree(t *testing.T, clock Clock) *Node {
	t.Helper()
	g := &consensus.Genesis{NetworkID: 9}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g.Validators = append(g.Validators, consensus.Validator{Name: "v0", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1})
	for _, name := range []string{"v1", "v2"} {
		other, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		g.Validators = append(g.Validators, consensus.Validator{Name: name, Address: crypto.PubkeyToAddress(other.PublicKey), Stake: 1})
	}
	n, err := New(Options{Key: key, Genesis: g, Verifier: claims.Arithmetic{}, DataDir: t.TempDir(),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n
}

// TestJobNotStoredIsDropped: the gateway starts a job's tally and gossips
// it while storing it; when the store fails, the job is refused, its
// tally dropped and its timers stopped.
func TestJobNotStoredIsDropped(t *testing.T) {
	clock := &manualClock{now: time.Now()}
	n := aloneOfThree(t, clock)
	if err := n.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := n.Submit(t.Context(), api.VerifyRequest{Output: "2 + 2 = 4."})
	if err == nil || !strings.Contains(err.Error(), "store job") {
		t.Fatalf("submit with a failing store: %v, want a store error", err)
	}
	n.gw.mu.Lock()
	pending := len(n.gw.jobs)
	n.gw.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d jobs aggregated after a refused job; want none", pending)
	}
	// The node's own validator may still be judging the job it received
	// (its ballot's store fails too); the gateway's count of it is gone
	// at once, the validator's once it gives up.
	for deadline := time.Now().Add(time.Minute); n.load.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs under way a minute after a refused job; want none", n.load.Load())
		}
	}
	clock.mu.Lock()
	defer clock.mu.Unlock()
	for _, tm := range clock.timers {
		if !tm.stopped {
			t.Fatal("a timer of the refused job still runs")
		}
	}
}

// TestClockDrivesDeadline: a job's deadline is a timer of Options.Clock.
// The node is one of three validators, alone on the network, so its job
// cannot reach quorum; its ten-minute deadline passes when the clock is
// moved, not in real time, and the job ends unresolved.
func TestClockDrivesDeadline(t *testing.T) {
	clock := &manualClock{now: time.Now()}
	n := aloneOfThree(t, clock)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4.", DeadlineMS: (10 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := n.WaitFinal(short, j.JobID); err == nil {
		t.Fatal("the job is final before its deadline, with one of three validators")
	}
	clock.advance(10*time.Minute + time.Second)
	c, err := n.WaitFinal(ctx, j.JobID)
	if err != nil {
		t.Fatalf("no certificate once the clock passed the deadline: %v", err)
	}
	if c.Status != consensus.StatusUnresolved {
		t.Fatalf("status %s, want %s", c.Status, consensus.StatusUnresolved)
	}
	if deadline := time.UnixMilli(int64(c.DeadlineMS)); c.IssuedAt.Before(deadline) {
		t.Fatalf("issued at %s, before the deadline %s", c.IssuedAt, deadline)
	}
}
