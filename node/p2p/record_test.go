package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLearnPeerRecord: a node that never met a peer reaches it directly
// once it takes that peer's signed record, and takes no other peer's
// record, nor garbage, in its place.
func TestLearnPeerRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := startNode(t, testConfig(t))
	val := startNode(t, testConfig(t))
	other := startNode(t, testConfig(t))
	got := make(chan []byte, 1)
	if err := gw.HandleDirect(KindBallots, 64, func(_ context.Context, _ peer.ID, data []byte) Verdict {
		got <- data
		return Accept
	}); err != nil {
		t.Fatal(err)
	}
	var rec, otherRec []byte
	if err := waitUntil(ctx, "signed peer records", func() bool {
		rec, otherRec = gw.PeerRecord(), other.PeerRecord()
		return rec != nil && otherRec != nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, []byte("before")); err == nil {
		t.Fatal("sent to a peer whose addresses this node never had")
	}
	for name, data := range map[string][]byte{"another peer's record": otherRec, "garbage": []byte("not a record")} {
		if err := val.LearnPeerRecord(gw.PeerID(), data, time.Minute); !errors.Is(err, ErrPeerRecord) {
			t.Errorf("%s taken as the gateway's: %v", name, err)
		}
	}
	if n := len(val.host.Peerstore().Addrs(gw.PeerID())); n != 0 {
		t.Fatalf("%d addresses of the gateway after refused records", n)
	}
	if err := val.LearnPeerRecord(gw.PeerID(), rec, time.Minute); err != nil {
		t.Fatalf("the gateway's own record: %v", err)
	}
	if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, []byte("after")); err != nil {
		t.Fatalf("send after taking the record: %v", err)
	}
	if data := <-got; string(data) != "after" {
		t.Fatalf("gateway got %q", data)
	}
}

// TestDialFromPeerRecord: Dial connects to a peer from the addresses of
// its signed record, which a node that never met it has no other way to
// know, and is a no-op once connected.
func TestDialFromPeerRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := startNode(t, testConfig(t))
	val := startNode(t, testConfig(t))
	var rec []byte
	if err := waitUntil(ctx, "a signed peer record", func() bool { rec = gw.PeerRecord(); return rec != nil }); err != nil {
		t.Fatal(err)
	}
	if err := val.Dial(ctx, gw.PeerID()); err == nil || val.Connected(gw.PeerID()) {
		t.Fatal("dialled a peer whose addresses this node never had")
	}
	if err := val.LearnPeerRecord(gw.PeerID(), rec, time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time connected already
		if err := val.Dial(ctx, gw.PeerID()); err != nil {
			t.Fatalf("dial from the record: %v", err)
		}
		if !val.Connected(gw.PeerID()) {
			t.Fatal("not connected after Dial")
		}
	}
}
