package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestDirectRejectionsBan: a peer whose direct messages the handler
// rejects loses score with each, as with rejected gossip; past the graylist
// threshold (13 rejections) it is disconnected and banned: it cannot
// connect again, nor be dialled, until the ban ends (BanDuration, and the
// score back above the threshold).
func TestDirectRejectionsBan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.BanDuration = time.Second
	a := startNode(t, cfg)
	cfg = testConfig(t)
	cfg.Bootstrap = addrStrings(a)
	b := startNode(t, cfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.HandleDirect(KindBallots, 64, func(context.Context, peer.ID, []byte) Verdict { return Reject }); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for !a.Banned(b.PeerID()) {
		if sent == 100 {
			t.Fatalf("not banned after %d rejected messages (penalty %.0f)", sent, a.PenaltyScore(b.PeerID()))
		}
		err := b.SendDirect(ctx, a.PeerID(), KindBallots, []byte("forged"))
		if err != nil && !errors.Is(err, ErrRejected) {
			break // the connection was closed under it
		}
		sent++
	}
	if sent < 12 || sent > 13 {
		t.Errorf("banned after %d rejected messages, want 13 (the graylist threshold)", sent)
	}
	if s := a.PenaltyScore(b.PeerID()); s >= GraylistThreshold {
		t.Errorf("penalty score %.0f, want below %.0f", s, GraylistThreshold)
	}
	if err := waitUntil(ctx, "the banned peer disconnected", func() bool {
		return len(a.ConnectedPeers()) == 0 && len(b.ConnectedPeers()) == 0
	}); err != nil {
		t.Fatal(err)
	}
	// The banned peer's dial may complete its own side of the handshake
	// before the node refuses it: what matters is that no connection
	// stays.
	_ = b.Connect(ctx, addrStrings(a)[0])
	if err := a.Connect(ctx, addrStrings(b)[0]); err == nil {
		t.Fatal("a node dialled a peer it banned")
	}
	time.Sleep(200 * time.Millisecond)
	if len(a.ConnectedPeers()) != 0 || len(b.ConnectedPeers()) != 0 {
		t.Fatalf("the banned peer is connected again (%d, %d)", len(a.ConnectedPeers()), len(b.ConnectedPeers()))
	}
	if st := a.Stats(); st.Banned != 1 {
		t.Errorf("Stats.Banned %d, want 1", st.Banned)
	}
	// The ban lasts BanDuration and as long as the score stays below the
	// threshold: the count decays (13 to 12.6 in about 4 s), then the
	// peer may come back.
	banned := time.Now()
	if err := waitUntil(ctx, "the ban ends", func() bool { return !a.Banned(b.PeerID()) }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(banned); d < cfg.BanDuration {
		t.Errorf("ban ended after %v, before BanDuration", d)
	}
	if s := a.PenaltyScore(b.PeerID()); s < GraylistThreshold {
		t.Errorf("ban ended with a penalty score of %.0f", s)
	}
	if err := b.Connect(ctx, addrStrings(a)[0]); err != nil {
		t.Fatalf("after the ban: %v", err)
	}
}

// TestGraylistedPeerBanned: a peer graylisted for rejected gossip is
// disconnected and banned too, not only ignored.
func TestGraylistedPeerBanned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reject := func(context.Context, peer.ID, []byte) Verdict { return Reject }
	cfg := testConfig(t)
	cfg.Validators = map[string]ValidatorFunc{KindJobs: reject, KindBallots: acceptAll, KindCerts: acceptAll, KindEvidence: acceptAll}
	a := startNode(t, cfg)
	cfg = testConfig(t)
	cfg.Bootstrap = addrStrings(a)
	b := startNode(t, cfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := b.Publish(ctx, KindJobs, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitUntil(ctx, "the graylisted peer banned", func() bool { return a.Banned(b.PeerID()) }); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, "the banned peer disconnected", func() bool { return len(a.ConnectedPeers()) == 0 }); err != nil {
		t.Fatal(err)
	}
}

func TestPenaltyDecays(t *testing.T) {
	b := newPenaltyBook()
	p := peer.ID("p")
	now := time.Now()
	var s float64
	for range 13 {
		s = b.add(p, now)
	}
	if s != 13*13*invalidMessageWeight {
		t.Fatalf("13 penalties score %.0f", s)
	}
	// Ten minutes later the count is a hundredth: 0.13, and one more makes
	// 1.13.
	s = b.add(p, now.Add(penaltyDecayTime))
	if want := 1.13 * 1.13 * invalidMessageWeight; s < want-1 || s > want+1 {
		t.Fatalf("after decay: %.2f, want %.2f", s, want)
	}
	for i := range maxPenalised + 10 {
		b.add(peer.ID(rune(i)+1000), now)
	}
	if len(b.peers) > maxPenalised {
		t.Fatalf("%d peers on record, bound %d", len(b.peers), maxPenalised)
	}
}

// TestNoPeerExchangeTaken: no peer can score high enough for a node to
// dial the peers it names when it prunes: the topics' positive score is
// capped below the threshold, and the application-specific score is
// penalties only. A peer of any key, or none, cannot hand a node peers
// to dial.
func TestNoPeerExchangeTaken(t *testing.T) {
	book := newPenaltyBook()
	params := scoreParams(testNetworkID, book.score)
	th := scoreThresholds()
	if params.TopicScoreCap <= 0 || th.AcceptPXThreshold <= params.TopicScoreCap {
		t.Fatalf("AcceptPXThreshold %g is reachable: topic score cap %g", th.AcceptPXThreshold, params.TopicScoreCap)
	}
	p := peer.ID("a peer")
	if s := book.score(p); s > 0 {
		t.Fatalf("application-specific score %g of a peer never penalised is positive", s)
	}
	book.add(p, time.Now())
	if s := book.score(p); s > 0 {
		t.Fatalf("application-specific score %g of a penalised peer is positive", s)
	}
}
