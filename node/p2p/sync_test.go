package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestCertSync: a request is answered item by item within the limits; a
// responder that sends more than the requester's limits is cut off and
// penalised; a second request from a peer already being served is refused.
func TestCertSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startPair(t, ctx, nil)
	lim := SyncLimits{MaxRequest: 16, MaxItems: 5, MaxItemSize: 8, MaxResponse: 30}
	hold := make(chan struct{})
	a.HandleCertSync(lim, func(ctx context.Context, from peer.ID, req []byte, send func([]byte) error) error {
		if string(req) == "hold" {
			<-hold
		}
		for i := range 100 {
			if err := send(fmt.Appendf(nil, "%s-%d", req, i)); err != nil {
				return err // full: the responder stops at its limits
			}
		}
		return nil
	})
	var got [][]byte
	collect := func(item []byte) error { got = append(got, item); return nil }
	if err := b.RequestCertSync(ctx, a.PeerID(), []byte("x"), lim, collect); err != nil {
		t.Fatal(err)
	}
	if len(got) != lim.MaxItems || !bytes.Equal(got[4], []byte("x-4")) {
		t.Fatalf("answer %q, want x-0 to x-4 (five items)", got)
	}
	got = nil
	if err := b.RequestCertSync(ctx, a.PeerID(), []byte("longer"), lim, collect); err != nil {
		t.Fatal(err)
	}
	// "longer-0" is 8 bytes: three of them reach 24, a fourth would pass 30.
	if len(got) != 3 {
		t.Fatalf("answer %q, want three items within 30 bytes", got)
	}
	if err := b.RequestCertSync(ctx, a.PeerID(), make([]byte, 17), lim, collect); err == nil {
		t.Fatal("an oversized request was sent")
	}

	// A requester with tighter limits than the responder's answer.
	tight := lim
	tight.MaxItems = 2
	if err := b.RequestCertSync(ctx, a.PeerID(), []byte("x"), tight, func([]byte) error { return nil }); !errors.Is(err, ErrSyncResponse) {
		t.Fatalf("an answer over the limits: %v, want ErrSyncResponse", err)
	}
	if s := b.PenaltyScore(a.PeerID()); s >= 0 {
		t.Fatalf("the responder that went over the limits has penalty score %.0f", s)
	}

	// One request per peer at a time.
	first := make(chan error, 1)
	go func() {
		first <- b.RequestCertSync(ctx, a.PeerID(), []byte("hold"), lim, func([]byte) error { return nil })
	}()
	time.Sleep(200 * time.Millisecond)
	if err := b.RequestCertSync(ctx, a.PeerID(), []byte("x"), lim, func([]byte) error { return nil }); !errors.Is(err, ErrSyncBusy) {
		t.Fatalf("a second request while the first is served: %v, want ErrSyncBusy", err)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatalf("the first request: %v", err)
	}
}
