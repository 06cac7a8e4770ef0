package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/testtier"
)

// streamNode is an HTTP API with what GET /v1/events needs and nothing
// else.
func streamNode(t *testing.T, limits APILimits) *httpAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	limits.setDefaults()
	return &httpAPI{
		env: &env{
			opts:   &Options{APILimits: limits},
			ctx:    ctx,
			events: newEventHub(1<<16, 64<<20, time.Now()),
		},
		streams: &streamGate{max: int64(limits.MaxEventStreams)},
	}
}

var errBrokenPipe = errors.New("broken pipe")

// failingWriter is a ResponseWriter whose writes fail after the first
// okWrites, counting every write tried after that.
type failingWriter struct {
	header      http.Header
	okWrites    int
	writes      int
	afterFailed int
}

func (w *failingWriter) Header() http.Header { return w.header }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Flush()              {}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.okWrites {
		w.afterFailed++
		return 0, errBrokenPipe
	}
	return len(p), nil
}

// publishUntil publishes events every millisecond until done closes or 10s
// pass; false on the timeout.
func publishUntil(n *httpAPI, done <-chan struct{}, data any) bool {
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-done:
			return true
		case <-deadline:
			return false
		case <-time.After(time.Millisecond):
			n.events.publish("test", common.Hash{1}, time.Now(), data)
		}
	}
}

// TestEventStreamStopsOnWriteError: the first failed write ends the
// stream; nothing more is written and its subscription and place go.
func TestEventStreamStopsOnWriteError(t *testing.T) {
	n := streamNode(t, APILimits{})
	w := &failingWriter{header: http.Header{}, okWrites: 3}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.handleEvents(w, httptest.NewRequest(http.MethodGet, "/v1/events", nil))
	}()
	if !publishUntil(n, done, "x") {
		t.Fatal("the stream still runs 10s after its writes began to fail")
	}
	if w.afterFailed != 1 {
		t.Fatalf("%d writes tried after a failed one, want 1 (the failed one)", w.afterFailed)
	}
	if s, a := n.events.subscribers(), n.streams.active.Load(); s != 0 || a != 0 {
		t.Fatalf("%d subscriptions and %d streams left", s, a)
	}
}

// TestEventStreamEndsWhenClientLeaves: a stream whose client's context
// ends stops at once, with no event written after.
func TestEventStreamEndsWhenClientLeaves(t *testing.T) {
	n := streamNode(t, APILimits{})
	w := &failingWriter{header: http.Header{}, okWrites: 1 << 30}
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.handleEvents(w, httptest.NewRequest(http.MethodGet, "/v1/events", nil).WithContext(ctx))
	}()
	for n.events.subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	leave()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream still runs 5s after its client left")
	}
	before := w.writes
	for range 100 {
		n.events.publish("test", common.Hash{1}, time.Now(), "x")
	}
	if w.writes != before || n.events.subscribers() != 0 || n.streams.active.Load() != 0 {
		t.Fatalf("after the client left: %d more writes, %d subscriptions, %d streams", w.writes-before, n.events.subscribers(), n.streams.active.Load())
	}
}

// TestEventStreamDropsStalledReader: a client that stays connected but
// stops reading is dropped once a write has waited WriteTimeout.
func TestEventStreamDropsStalledReader(t *testing.T) {
	n := streamNode(t, APILimits{WriteTimeout: 300 * time.Millisecond})
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		n.handleEvents(w, r)
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /v1/events HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("status line %q, %v", status, err)
	}
	// From here the client reads nothing: 256 KiB events fill the
	// connection's buffers within a few dozen.
	start := time.Now()
	if !publishUntil(n, done, strings.Repeat("x", 256<<10)) {
		t.Fatal("a stalled reader still held its stream after 10s")
	}
	t.Logf("stalled reader dropped after %s", time.Since(start).Round(time.Millisecond))
	if s, a := n.events.subscribers(), n.streams.active.Load(); s != 0 || a != 0 {
		t.Fatalf("%d subscriptions and %d streams left", s, a)
	}
}

// TestReplayCappedPerStream: 20 clients (100 in the long tier) ask a node
// whose buffer holds 16 MiB to replay all of it; each gets at most one page
// (ReplayBytes, 1 MiB here) and the end of its stream, and the node copies
// no event per client.
func TestReplayCappedPerStream(t *testing.T) {
	const page = 1 << 20
	n := streamNode(t, APILimits{ReplayBytes: page})
	big := strings.Repeat("x", 256<<10)
	for range 64 {
		n.events.publish("test", common.Hash{1}, time.Now(), big)
	}
	frame := n.events.ring[n.events.head].size
	srv := httptest.NewServer(http.HandlerFunc(n.handleEvents))
	defer srv.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := 20
	if testtier.IsLong() {
		clients = 100
	}
	got := make([]int64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp, err := http.Get(srv.URL + "/v1/events?replay=all")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got[i], err = io.Copy(io.Discard, resp.Body) // ends after its page
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	var total int64
	for i, b := range got {
		total += b
		if b == 0 || b > int64(page+frame) {
			t.Fatalf("client %d got %d bytes, want one page of at most %d", i, b, page+frame)
		}
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("buffer %d MiB; %d clients asking for all of it got %d MiB in all (%d KiB each at most); heap in use grew %d KiB",
		n.events.bytes>>20, clients, total>>20, slices.Max(got)>>10, grew>>10)
	if grew > 4<<20 {
		t.Fatalf("heap grew %d MiB serving the replays", grew>>20)
	}
	if s, a := n.events.subscribers(), n.streams.active.Load(); s != 0 || a != 0 {
		t.Fatalf("%d subscriptions and %d streams left", s, a)
	}
}

// TestStoredCertificateFrameTime: a certificate read from the store after
// the replayed events is timed no earlier than the last of them, though
// its issue time is cut to whole milliseconds (the demo's timeline went
// backwards by 0.6 ms when the stream read a certificate stored but not
// yet published).
func TestStoredCertificateFrameTime(t *testing.T) {
	issued := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	lastBallot := issued.Add(620 * time.Microsecond)
	c := &consensus.Certificate{JobID: common.Hash{7}, IssuedAt: issued, Status: consensus.StatusVerified}
	for _, tc := range []struct {
		name     string
		replayed []*hubEvent
		want     time.Time
	}{
		{"nothing replayed: the issue time", nil, issued},
		{"a later ballot replayed: its time", []*hubEvent{{at: issued.Add(-time.Millisecond)}, {at: lastBallot}}, lastBallot},
		{"earlier events replayed: the issue time", []*hubEvent{{at: issued.Add(-time.Millisecond)}}, issued},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := string(storedCertificateFrame(c, tc.replayed))
			at, _ := tc.want.MarshalJSON()
			if !strings.Contains(frame, `"id":0,"type":"certificate.issued"`) || !strings.Contains(frame, `"time":`+string(at)) {
				t.Fatalf("frame %q, want id 0 and time %s", frame, at)
			}
		})
	}
}
