package node

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
)

// TestSettleSyncStopsWhereGossipTookOver: the settle sync reads to the end
// until gossip brings a certificate; then up to the first one gossip
// brought since the node had a peer again, plus certClockSkew.
func TestSettleSyncStopsWhereGossipTookOver(t *testing.T) {
	c := newCatchUp()
	if got := c.settleUntil(); !got.IsZero() {
		t.Fatalf("no gossip yet: until %v, want the end", got)
	}
	first := time.UnixMilli(1_700_000_000_000)
	c.reconnected(first.Add(-time.Second))
	// A certificate issued before the node had a peer again, replayed by
	// any peer (it needs no key), does not show that gossip reaches it.
	c.heard(first, first.Add(-time.Second-certClockSkew-time.Millisecond))
	if got := c.settleUntil(); !got.IsZero() {
		t.Fatalf("an old certificate bounded the settle sync at %v", got)
	}
	c.heard(first, first.Add(-time.Second-certClockSkew))   // within the skew: new
	c.heard(first.Add(time.Minute), first.Add(time.Minute)) // later certificates do not move it
	want := first.Add(certClockSkew)
	if got := c.settleUntil(); !got.Equal(want) {
		t.Fatalf("until %v, want %v", got, want)
	}
	cert := func(at time.Time) *consensus.Certificate { return &consensus.Certificate{IssuedAt: at} }
	for _, tc := range []struct {
		last  *consensus.Certificate
		until time.Time
		past  bool
	}{
		{cert(want.Add(time.Millisecond)), want, true},
		{cert(want), want, false},
		{cert(first), want, false},
		{cert(want.Add(time.Hour)), time.Time{}, false}, // to the end
		{nil, want, false},
	} {
		if got := pastUntil(tc.last, tc.until); got != tc.past {
			t.Errorf("pastUntil(%v, %v) = %v, want %v", tc.last, tc.until, got, tc.past)
		}
	}
	// Having no peer, then one again: the next settle sync reads to the
	// end until gossip brings a certificate again.
	c.reconnected(first.Add(time.Hour))
	if got := c.settleUntil(); !got.IsZero() {
		t.Fatalf("after reconnecting: until %v, want the end", got)
	}
}

// TestAwaitedUntilStored: a job announced is awaited until its
// certificate is stored; an announcement after that (late, or replayed
// by its gateway) does not make it awaited again, so its copies are
// looked up in the store before they are verified.
func TestAwaitedUntilStored(t *testing.T) {
	c := newCatchUp()
	id, other := common.Hash{1}, common.Hash{2}
	deadline := time.UnixMilli(1_700_000_000_000)
	c.want(id, deadline)
	c.want(other, deadline)
	if !c.awaited(id) || !c.awaited(other) {
		t.Fatal("announced jobs not awaited")
	}
	c.got(id)
	if c.awaited(id) || !c.awaited(other) {
		t.Fatal("want only the stored job no longer awaited")
	}
	c.want(id, deadline.Add(time.Second))
	if c.awaited(id) {
		t.Fatal("announced again after its certificate was stored: awaited again")
	}
	if ids := c.overdue(deadline.Add(time.Minute)); len(ids) != 1 || ids[0] != other {
		t.Fatalf("overdue %v, want only %v", ids, other)
	}
}
