package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBundleEncoding(t *testing.T) {
	items := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`), bytes.Repeat([]byte("x"), 300)}
	enc := encodeBundle(items)
	if !isBundle(enc) {
		t.Fatal("a bundle is not told from a message")
	}
	got, err := decodeBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(items) {
		t.Fatalf("decoded %d messages, want %d", len(got), len(items))
	}
	for i := range items {
		if !bytes.Equal(got[i], items[i]) {
			t.Fatalf("message %d: %q, want %q", i, got[i], items[i])
		}
	}
	if one := encodeBundle(items[:1]); !bytes.Equal(one, items[0]) {
		t.Fatalf("a message alone is sent as %q, want itself", one)
	}
	if len(enc) != bundleSize(items) {
		t.Fatalf("bundle of %d bytes, bundleSize says %d", len(enc), bundleSize(items))
	}

	bad := map[string][]byte{
		"empty":              {},
		"not a bundle":       []byte(`{"a":1}`),
		"no count":           {bundleTag},
		"one message":        {bundleTag, 1, 1, 'x'},
		"zero messages":      {bundleTag, 0},
		"too many":           append([]byte{bundleTag}, appendUvarint(MaxBundleItems+1)...),
		"long count":         {bundleTag, 0x82, 0x00, 1, 'x', 1, 'y'},
		"long length":        {bundleTag, 2, 0x81, 0x00, 'x', 1, 'y'},
		"empty message":      {bundleTag, 2, 0, 1, 'y'},
		"truncated":          {bundleTag, 2, 1, 'x', 5, 'y'},
		"trailing":           append(encodeBundle([][]byte{[]byte("x"), []byte("y")}), 'z'),
		"bundle in a bundle": encodeBundle([][]byte{[]byte("x"), encodeBundle([][]byte{[]byte("y"), []byte("z")})}),
		"bad varint":         {bundleTag, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, data := range bad {
		if _, err := decodeBundle(data); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: %v, want ErrBadBundle", name, err)
		}
	}
}

func appendUvarint(x uint64) []byte {
	var b []byte
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func FuzzDecodeBundle(f *testing.F) {
	f.Add(encodeBundle([][]byte{[]byte("x"), []byte("yz")}))
	f.Add([]byte{bundleTag, 2, 0x81, 0x00, 'x', 1, 'y'})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := decodeBundle(data)
		if err != nil {
			return
		}
		// Whatever decodes has one encoding: its own bytes.
		if !bytes.Equal(encodeBundle(items), data) {
			t.Fatalf("%x decodes to %d messages that encode as %x", data, len(items), encodeBundle(items))
		}
	})
}

func TestPackBundles(t *testing.T) {
	var items [][]byte
	for i := range 50 {
		items = append(items, []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("p", i*7))))
	}
	for _, max := range []int{64, 500, 4096, 1 << 20} {
		var got [][]byte
		for _, m := range packBundles(items, max) {
			if len(m) > max && isBundle(m) {
				t.Fatalf("max %d: a bundle of %d bytes", max, len(m))
			}
			if !isBundle(m) {
				got = append(got, m)
				continue
			}
			its, err := decodeBundle(m)
			if err != nil {
				t.Fatalf("max %d: %v", max, err)
			}
			got = append(got, its...)
		}
		if len(got) != len(items) {
			t.Fatalf("max %d: %d messages out, want %d", max, len(got), len(items))
		}
		for i := range items {
			if !bytes.Equal(got[i], items[i]) {
				t.Fatalf("max %d: message %d out of order", max, i)
			}
		}
	}
}

// TestBundleGossip: messages published at the same moment travel in
// bundles, each judged on its own and delivered one by one; a bundle with
// one message its receivers reject is rejected whole and costs its sender.
func TestBundleGossip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startPair(t, ctx, func(c *Config) {
		c.Validators = map[string]ValidatorFunc{KindJobs: judgeByPrefix, KindBallots: acceptAll, KindCerts: acceptAll, KindEvidence: acceptAll}
	})
	if err := a.WaitForMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitForMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(KindJobs)
	if err != nil {
		t.Fatal(err)
	}
	const count = 200
	for i := range count {
		if err := a.PublishQueued(KindJobs, []byte(fmt.Sprintf("job %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := collect(ctx, sub, count)
	if err != nil {
		t.Fatal(err)
	}
	for m, n := range got {
		if n != 1 {
			t.Errorf("%q delivered %d times", m, n)
		}
	}
	s := a.Stats().Sent[KindJobs]
	if s.Items != count || s.Sends >= count {
		t.Errorf("published %d messages in %d sends, want %d in fewer", s.Items, s.Sends, count)
	}
	t.Logf("%d messages in %d sends (largest bundle %d)", s.Items, s.Sends, s.Max)

	// A bundle with an ignored message delivers the others.
	if err := a.Publish(ctx, KindJobs, encodeBundle([][]byte{[]byte("dull 1"), []byte("fresh 1")})); err != nil {
		t.Fatal(err)
	}
	if m := <-sub; string(m.Data) != "fresh 1" {
		t.Fatalf("got %q, want the bundle's accepted message", m.Data)
	}
	// A bundle of ignored messages is ignored, one with a bad message is
	// rejected whole: nothing of either is delivered.
	if err := a.Publish(ctx, KindJobs, encodeBundle([][]byte{[]byte("dull 2"), []byte("dull 3")})); !errors.Is(err, ErrIgnored) {
		t.Fatalf("publish ignored bundle: %v", err)
	}
	bad := encodeBundle([][]byte{[]byte("fresh 2"), []byte("bad 1")})
	if err := a.Publish(ctx, KindJobs, bad); !errors.Is(err, ErrRejected) {
		t.Fatalf("publish bad bundle: %v", err)
	}
	// From a peer, past a's own validator, b's topic validator rejects it.
	if res := judgeAsPeer(ctx, b, a.PeerID(), KindJobs, bad); res != pubsub.ValidationReject {
		t.Fatalf("b judges a bundle with a bad message %v, want reject", res)
	}
	if res := judgeAsPeer(ctx, b, a.PeerID(), KindJobs, bad[:len(bad)-1]); res != pubsub.ValidationReject {
		t.Fatalf("b judges a malformed bundle %v, want reject", res)
	}
	// The queued publisher sends the good messages of a bundle its own
	// validator refuses, one by one.
	_ = a.PublishQueued(KindJobs, []byte("bad 2"))
	_ = a.PublishQueued(KindJobs, []byte("fresh 3"))
	if m := <-sub; string(m.Data) != "fresh 3" {
		t.Fatalf("got %q, want fresh 3", m.Data)
	}
	select {
	case m := <-sub:
		t.Fatalf("unexpected delivery %q", m.Data)
	case <-time.After(50 * time.Millisecond):
	}
}

// startPair starts two nodes, b bootstrapped from a, each with testConfig
// adjusted by adjust (if not nil), and waits until b has a peer.
func startPair(t *testing.T, ctx context.Context, adjust func(*Config)) (a, b *Network) {
	t.Helper()
	cfgA, cfgB := testConfig(t), testConfig(t)
	if adjust != nil {
		adjust(&cfgA)
		adjust(&cfgB)
	}
	a = startNode(t, cfgA)
	cfgB.Bootstrap = addrStrings(a)
	b = startNode(t, cfgB)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// judgeByPrefix rejects messages that start with "bad", ignores those that
// start with "dull" and accepts the rest.
func judgeByPrefix(_ context.Context, _ peer.ID, data []byte) Verdict {
	switch {
	case bytes.HasPrefix(data, []byte("bad")):
		return Reject
	case bytes.HasPrefix(data, []byte("dull")):
		return Ignore
	}
	return Accept
}

// judgeAsPeer is b's topic validator's verdict on data of kind from peer p.
func judgeAsPeer(ctx context.Context, b *Network, p peer.ID, kind string, data []byte) pubsub.ValidationResult {
	topic := TopicName(b.cfg.NetworkID, kind)
	return b.topicValidator(kind, b.cfg.dataValidator(kind))(ctx, p, &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic}})
}

// TestSendDirectQueued: ballots sent to one peer at the same moment share
// streams, and each gets its own verdict.
func TestSendDirectQueued(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := startPair(t, ctx, nil)
	var mu sync.Mutex
	got := map[string]int{}
	if err := a.HandleDirect(KindBallots, 32, func(ctx context.Context, from peer.ID, data []byte) Verdict {
		mu.Lock()
		got[string(data)]++
		mu.Unlock()
		return judgeByPrefix(ctx, from, data)
	}); err != nil {
		t.Fatal(err)
	}
	const count = 300
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("ballot %d", i)
			switch i % 10 {
			case 3:
				msg = fmt.Sprintf("dull %d", i)
			}
			errs[i] = b.SendDirectQueued(ctx, a.PeerID(), KindBallots, []byte(msg))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		want := error(nil)
		if i%10 == 3 {
			want = ErrIgnored
		}
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("message %d: %v, want %v", i, err, want)
		}
	}
	mu.Lock()
	if len(got) != count {
		t.Errorf("handler saw %d messages, want %d", len(got), count)
	}
	mu.Unlock()
	s := b.Stats().Sent["direct/"+KindBallots]
	if s.Items != count || s.Sends >= count {
		t.Errorf("sent %d messages in %d streams, want %d in fewer", s.Items, s.Sends, count)
	}
	t.Logf("%d messages in %d streams (largest bundle %d)", s.Items, s.Sends, s.Max)

	// A rejected message gets its own verdict; the bundle's others are
	// judged as usual... unless the bundle is refused whole.
	if err := b.SendDirectQueued(ctx, a.PeerID(), KindBallots, []byte("bad one")); !errors.Is(err, ErrRejected) {
		t.Fatalf("bad message alone: %v", err)
	}
	errsB := b.sendDirect(ctx, a.PeerID(), KindBallots, [][]byte{[]byte("fine 1"), []byte("bad 2")}, nil)
	if errsB[0] != nil || !errors.Is(errsB[1], ErrRejected) {
		t.Fatalf("bundle with a bad message: %v", errsB)
	}
	// A message over the handler's limit refuses the bundle whole.
	errsB = b.sendDirect(ctx, a.PeerID(), KindBallots, [][]byte{[]byte("fine 2"), bytes.Repeat([]byte("x"), 33)}, nil)
	if !errors.Is(errsB[0], ErrRejected) || !errors.Is(errsB[1], ErrRejected) {
		t.Fatalf("bundle with an oversized message: %v", errsB)
	}
}

// TestQueuesForgotten: once maxQueues destinations are remembered, a new
// one forgets those with no send under way.
func TestQueuesForgotten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, testConfig(t))
	send := func(p string) {
		n.enqueue(queueKey{kind: KindBallots, peer: peer.ID(p)}, queuedMsg{data: []byte("x")}, func([]queuedMsg) {})
	}
	for i := range maxQueues {
		send(fmt.Sprintf("peer-%d", i))
	}
	idle := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, q := range n.queues {
			if q.busy {
				return false
			}
		}
		return len(n.queues) == maxQueues
	}
	if err := waitUntil(ctx, "every send done", idle); err != nil {
		t.Fatal(err)
	}
	send("one more")
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queues) != 1 {
		t.Fatalf("%d queues remembered after the prune, want only the new one", len(n.queues))
	}
}
