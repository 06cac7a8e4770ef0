package node

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestEventBufferBounds: the replay buffer holds at most its count and its
// bytes, drops the oldest first, and ids stay consecutive.
func TestEventBufferBounds(t *testing.T) {
	h := newEventHub(8, 4<<10, time.Unix(0, 5000))
	big := strings.Repeat("x", 1000)
	for i := range 20 {
		h.publish("test", common.Hash{byte(i)}, time.Unix(0, 0), big)
	}
	backlog, sub := h.subscribe(common.Hash{}, 0)
	h.unsubscribe(sub)
	if h.bytes > h.maxBytes {
		t.Fatalf("buffer holds %d bytes, bound %d", h.bytes, h.maxBytes)
	}
	if len(backlog) == 0 || len(backlog) > 4 {
		t.Fatalf("%d events kept, want 1 to 4 of about 1 KiB under a 4 KiB bound", len(backlog))
	}
	last := backlog[len(backlog)-1]
	if last.JobID != (common.Hash{19}) || last.ID != 5+19 {
		t.Fatalf("newest event kept is %+v, want the 20th with id %d", last.JobID, 5+19)
	}
	for i := 1; i < len(backlog); i++ {
		if backlog[i].ID != backlog[i-1].ID+1 {
			t.Fatalf("ids %d then %d", backlog[i-1].ID, backlog[i].ID)
		}
	}
	small := newEventHub(4, 1<<20, time.Unix(0, 0))
	for i := range 10 {
		small.publish("test", common.Hash{byte(i)}, time.Unix(0, 0), i)
	}
	if small.size != 4 {
		t.Fatalf("count bound: %d events kept, want 4", small.size)
	}
}
