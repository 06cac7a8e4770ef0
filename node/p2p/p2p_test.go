package p2p

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/verity-network/verity/internal/testtier"
)

const testNetworkID = 7

func testKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ethcrypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func acceptAll(context.Context, peer.ID, []byte) Verdict { return Accept }

func acceptAllValidators() map[string]ValidatorFunc {
	return map[string]ValidatorFunc{KindJobs: acceptAll, KindBallots: acceptAll, KindCerts: acceptAll, KindEvidence: acceptAll}
}

// testConfig is a loopback TCP node config with accept-all validators.
func testConfig(tb testing.TB) Config {
	return Config{
		Key:                testKey(tb),
		ListenAddrs:        []string{"/ip4/127.0.0.1/tcp/0"},
		NetworkID:          testNetworkID,
		Validators:         acceptAllValidators(),
		ScoreInspectPeriod: 50 * time.Millisecond,
	}
}

func startNode(tb testing.TB, cfg Config) *Network {
	tb.Helper()
	n, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("new network: %v", err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return n
}

func addrStrings(n *Network) []string {
	var out []string
	for _, a := range n.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// startLine starts count nodes where node i bootstraps from node i-1, and
// waits until every node has its line neighbours in each topic's mesh.
func startLine(tb testing.TB, ctx context.Context, count int) []*Network {
	tb.Helper()
	nodes := make([]*Network, count)
	for i := range nodes {
		cfg := testConfig(tb)
		// One connection is enough: no discovery beyond the line.
		cfg.TargetPeers = 1
		if i > 0 {
			cfg.Bootstrap = addrStrings(nodes[i-1])
		}
		nodes[i] = startNode(tb, cfg)
	}
	for i, n := range nodes {
		degree := 2
		if i == 0 || i == count-1 {
			degree = 1
		}
		if err := n.WaitForPeers(ctx, degree); err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		if err := n.WaitForMesh(ctx, degree); err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
	}
	return nodes
}

// collect reads ch until want distinct messages arrived or ctx ends, and
// returns how many times each data was received.
func collect(ctx context.Context, ch <-chan Message, want int) (map[string]int, error) {
	got := map[string]int{}
	for len(got) < want {
		select {
		case m, ok := <-ch:
			if !ok {
				return got, errors.New("subscription closed")
			}
			got[string(m.Data)]++
		case <-ctx.Done():
			return got, fmt.Errorf("received %d of %d messages: %w", len(got), want, ctx.Err())
		}
	}
	return got, nil
}

func TestTopicName(t *testing.T) {
	if got, want := TopicName(7, KindJobs), "/verity/7/jobs/4"; got != want {
		t.Errorf("TopicName = %q, want %q", got, want)
	}
	if got, want := TopicName(1<<40, KindCerts), "/verity/1099511627776/certs/4"; got != want {
		t.Errorf("TopicName = %q, want %q", got, want)
	}
	for _, k := range Kinds {
		if !ValidKind(k) {
			t.Errorf("ValidKind(%q) = false", k)
		}
	}
	if ValidKind("votes") {
		t.Error("ValidKind(votes) = true")
	}
}

func TestPeerIDFromKey(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)

	id, err := PeerIDFromKey(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	if n.PeerID() != id {
		t.Fatalf("host peer id %s, PeerIDFromKey %s", n.PeerID(), id)
	}
	if n.Host().ID() != id {
		t.Fatalf("Host().ID() %s, want %s", n.Host().ID(), id)
	}
	fromPub, err := PeerIDFromPublicKey(&cfg.Key.PublicKey)
	if err != nil || fromPub != id {
		t.Fatalf("PeerIDFromPublicKey = %s, %v; want %s", fromPub, err, id)
	}
	addr, err := AddressFromPeerID(n.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if want := ethcrypto.PubkeyToAddress(cfg.Key.PublicKey); addr != want {
		t.Fatalf("AddressFromPeerID = %s, want %s", addr, want)
	}
	for _, a := range n.Addrs() {
		if !strings.HasSuffix(a.String(), "/p2p/"+id.String()) {
			t.Errorf("addr %s does not end in /p2p/%s", a, id)
		}
	}
}

func TestKeyErrors(t *testing.T) {
	if _, err := PeerIDFromKey(nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("PeerIDFromKey(nil) error = %v, want ErrNoKey", err)
	}
	if _, err := PeerIDFromPublicKey(nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("PeerIDFromPublicKey(nil) error = %v, want ErrNoKey", err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PeerIDFromKey(p256); !errors.Is(err, ErrKeyCurve) {
		t.Errorf("PeerIDFromKey(P-256 key) error = %v, want ErrKeyCurve", err)
	}
	// The peer ids of keys already converted are remembered by their
	// coordinates; the same coordinates on another curve, or off the
	// curve, are still refused.
	k, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	first, err := PeerIDFromPublicKey(&k.PublicKey)
	if again, err2 := PeerIDFromPublicKey(&k.PublicKey); err != nil || err2 != nil || again != first {
		t.Errorf("PeerIDFromPublicKey twice = %s, %s (%v, %v)", first, again, err, err2)
	}
	other := ecdsa.PublicKey{Curve: elliptic.P256(), X: k.X, Y: k.Y}
	if _, err := PeerIDFromPublicKey(&other); !errors.Is(err, ErrKeyCurve) {
		t.Errorf("PeerIDFromPublicKey(secp256k1 point on P-256) error = %v, want ErrKeyCurve", err)
	}
	off := ecdsa.PublicKey{Curve: ethcrypto.S256(), X: k.X, Y: new(big.Int).Add(k.Y, big.NewInt(1))}
	if _, err := PeerIDFromPublicKey(&off); !errors.Is(err, ErrKeyCurve) {
		t.Errorf("PeerIDFromPublicKey(point off the curve) error = %v, want ErrKeyCurve", err)
	}
	_, edPub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edID, err := peer.IDFromPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddressFromPeerID(edID); !errors.Is(err, ErrPeerIDType) {
		t.Errorf("AddressFromPeerID(ed25519 id) error = %v, want ErrPeerIDType", err)
	}
	// An RSA peer id is a sha256 multihash: no key can be extracted.
	if _, err := AddressFromPeerID(peer.ID("not a peer id")); !errors.Is(err, ErrPeerIDType) {
		t.Errorf("AddressFromPeerID(garbage) error = %v, want ErrPeerIDType", err)
	}
}

func mustIdentity(tb testing.TB, key *ecdsa.PrivateKey) crypto.PrivKey {
	tb.Helper()
	id, err := Identity(key)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// TestIdentity: a network started with Identity(key) instead of the key
// has the peer id of the key.
func TestIdentity(t *testing.T) {
	key := testKey(t)
	cfg := testConfig(t)
	cfg.Key, cfg.Identity = nil, mustIdentity(t, key)
	n := startNode(t, cfg)
	want, err := PeerIDFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if n.PeerID() != want {
		t.Fatalf("peer id %s, want %s", n.PeerID(), want)
	}
	if _, err := Identity(nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("Identity(nil) error = %v, want ErrNoKey", err)
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no key", func(c *Config) { c.Key = nil }},
		{"key and identity", func(c *Config) { c.Identity = mustIdentity(t, testKey(t)) }},
		{"ed25519 identity", func(c *Config) {
			ed, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c.Key, c.Identity = nil, ed
		}},
		{"no validator for certs", func(c *Config) { delete(c.Validators, KindCerts) }},
		{"nil validator for jobs", func(c *Config) { c.Validators[KindJobs] = nil }},
		{"validator for unknown kind", func(c *Config) { c.Validators["votes"] = acceptAll }},
		{"two validators for ballots", func(c *Config) {
			c.DataValidators = map[string]DataValidatorFunc{
				KindBallots: func(context.Context, peer.ID, []byte) (Verdict, any) { return Accept, nil },
			}
		}},
		{"bootstrap without peer id", func(c *Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }},
		{"bootstrap not a multiaddr", func(c *Config) { c.Bootstrap = []string{"127.0.0.1:9000"} }},
		{"negative max message size", func(c *Config) { c.MaxMessageSize = -1 }},
		{"negative max peers", func(c *Config) { c.MaxPeers = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.mutate(&cfg)
			n, err := New(ctx, cfg)
			if err == nil {
				_ = n.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v is not ErrInvalidConfig", err)
			}
		})
	}
}

// TestGossipLine publishes from one end of a line of five nodes and checks
// that every node, the publisher included, receives each message exactly
// once, then that a burst of 2,000 messages arrives complete everywhere.
func TestGossipLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nodes := startLine(t, ctx, 5)

	subs := make([]<-chan Message, len(nodes))
	for i, n := range nodes {
		ch, err := n.Subscribe(KindBallots)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = ch
	}
	// A second subscription on the same node gets its own copy.
	extra, err := nodes[2].Subscribe(KindBallots)
	if err != nil {
		t.Fatal(err)
	}

	sender := nodes[0]
	if err := sender.Publish(ctx, KindBallots, []byte("first ballot")); err != nil {
		t.Fatal(err)
	}
	for i, ch := range append(subs, extra) {
		select {
		case m := <-ch:
			if string(m.Data) != "first ballot" || m.Kind != KindBallots {
				t.Fatalf("sub %d: got %q on %s", i, m.Data, m.Kind)
			}
			if m.Local != (i == 0) {
				t.Errorf("sub %d: Local = %v", i, m.Local)
			}
			if i == 0 && m.From != sender.PeerID() {
				t.Errorf("own message From = %s, want own id", m.From)
			}
			if i == 1 && m.From != sender.PeerID() {
				t.Errorf("node 1 got message from %s, want its neighbour %s", m.From, sender.PeerID())
			}
		case <-ctx.Done():
			t.Fatalf("sub %d: first message not received: %v", i, ctx.Err())
		}
	}

	// Publishing the same bytes again is one message: nothing new arrives,
	// which the burst below would reveal as an extra count.
	if err := sender.Publish(ctx, KindBallots, []byte("first ballot")); err != nil {
		t.Fatal(err)
	}

	const burst = 2000
	payload := bytes.Repeat([]byte{'x'}, 200)
	var wg sync.WaitGroup
	results := make([]map[string]int, len(nodes))
	errs := make([]error, len(nodes))
	for i, ch := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = collect(ctx, ch, burst)
		}()
	}
	for i := range burst {
		data := fmt.Appendf(nil, "ballot %05d %s", i, payload)
		if err := sender.Publish(ctx, KindBallots, data); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node %d: %v (stats %+v)", i, errs[i], nodes[i].Stats())
			continue
		}
		for data, c := range results[i] {
			if c != 1 || !strings.HasPrefix(data, "ballot ") {
				t.Errorf("node %d: %.12q received %d times", i, data, c)
			}
		}
		s := nodes[i].Stats()
		if s.ValidationDropped != 0 || s.OutboundDropped != 0 || s.SubscriberDropped != 0 {
			t.Errorf("node %d dropped messages: %+v", i, s)
		}
	}
	// extra was not read during the burst: its buffer (QueueSize) holds all
	// of it.
	got, err := collect(ctx, extra, burst)
	if err != nil {
		t.Fatalf("second subscription: %v", err)
	}
	if len(got) != burst {
		t.Fatalf("second subscription got %d messages", len(got))
	}
}

// recordingValidator rejects data starting with "bad" and counts its calls.
type recordingValidator struct {
	rejected atomic.Int64
}

func (v *recordingValidator) validate(_ context.Context, _ peer.ID, data []byte) Verdict {
	if bytes.HasPrefix(data, []byte("bad")) {
		v.rejected.Add(1)
		return Reject
	}
	return Accept
}

func waitUntil(ctx context.Context, what string, cond func() bool) error {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
	return nil
}

// TestValidatorRejects has a node A that accepts anything send messages its
// only peer B rejects. B must deliver and forward none of them (C, behind B,
// would deliver anything it got), and B's score of A must fall, below the
// graylist threshold once A keeps going.
func TestValidatorRejects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// TargetPeers 1: C must not find A through B and connect to it.
	acfg := testConfig(t)
	acfg.TargetPeers = 1
	a := startNode(t, acfg)
	var bv recordingValidator
	bcfg := testConfig(t)
	bcfg.TargetPeers = 1
	bcfg.Validators = map[string]ValidatorFunc{KindJobs: bv.validate, KindBallots: bv.validate, KindCerts: bv.validate, KindEvidence: bv.validate}
	bcfg.Bootstrap = addrStrings(a)
	b := startNode(t, bcfg)
	ccfg := testConfig(t)
	ccfg.TargetPeers = 1
	ccfg.Bootstrap = addrStrings(b)
	c := startNode(t, ccfg)
	for _, n := range []*Network{a, c} {
		if err := n.WaitForMesh(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.WaitForMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
	bsub, err := b.Subscribe(KindJobs)
	if err != nil {
		t.Fatal(err)
	}
	csub, err := c.Subscribe(KindJobs)
	if err != nil {
		t.Fatal(err)
	}

	// A few rejected messages: a penalty, not yet a graylisting.
	for i := range 3 {
		if err := a.Publish(ctx, KindJobs, fmt.Appendf(nil, "bad job %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitUntil(ctx, "B rejects 3 messages", func() bool { return bv.rejected.Load() == 3 }); err != nil {
		t.Fatal(err)
	}
	// Published after B rejected the bad ones, so it is the first message B
	// and C can deliver.
	if err := a.Publish(ctx, KindJobs, []byte("good job")); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]<-chan Message{"B": bsub, "C": csub} {
		select {
		case m := <-sub:
			if string(m.Data) != "good job" {
				t.Fatalf("%s delivered %q", name, m.Data)
			}
		case <-ctx.Done():
			t.Fatalf("%s: good job not delivered: %v", name, ctx.Err())
		}
	}
	if err := waitUntil(ctx, "B's score of A turns negative", func() bool {
		s, ok := b.PeerScore(a.PeerID())
		return ok && s < 0
	}); err != nil {
		t.Fatal(err)
	}
	if s, _ := b.PeerScore(a.PeerID()); s < GossipThreshold {
		t.Fatalf("3 rejected messages already cost %f, below the gossip threshold", s)
	}
	if s := b.Stats(); s.Rejected != 3 {
		t.Errorf("B stats: %+v, want 3 rejected", s)
	}

	// A keeps sending garbage: B graylists it.
	for i := 3; i < 13; i++ {
		if err := a.Publish(ctx, KindJobs, fmt.Appendf(nil, "bad job %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitUntil(ctx, "B graylists A", func() bool {
		s, ok := b.PeerScore(a.PeerID())
		return ok && s < GraylistThreshold
	}); err != nil {
		s, _ := b.PeerScore(a.PeerID())
		t.Fatalf("%v (score %f, rejected %d)", err, s, bv.rejected.Load())
	}
	// B never forwarded anything bad: C holds nothing against B.
	if s, ok := c.PeerScore(b.PeerID()); !ok || s < 0 {
		t.Errorf("C's score of B = %f, %v; want >= 0", s, ok)
	}
	if s := c.Stats(); s.Rejected != 0 || s.Delivered != 1 {
		t.Errorf("C stats %+v, want 1 delivered, 0 rejected", s)
	}
}

func TestPublishErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.MaxMessageSize = 1000
	cfg.Validators[KindCerts] = func(_ context.Context, _ peer.ID, data []byte) Verdict {
		switch string(data) {
		case "reject":
			return Reject
		case "ignore":
			return Ignore
		default:
			return Accept
		}
	}
	n := startNode(t, cfg)
	sub, err := n.Subscribe(KindCerts)
	if err != nil {
		t.Fatal(err)
	}

	if err := n.Publish(ctx, "votes", []byte("x")); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := n.Subscribe("votes"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("subscribe unknown kind: %v", err)
	}
	if err := n.Publish(ctx, KindCerts, make([]byte, 1001)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("1001 bytes: %v", err)
	}
	if err := n.Publish(ctx, KindCerts, []byte("reject")); !errors.Is(err, ErrRejected) {
		t.Errorf("rejected: %v", err)
	}
	if err := n.Publish(ctx, KindCerts, []byte("ignore")); !errors.Is(err, ErrIgnored) {
		t.Errorf("ignored: %v", err)
	}
	// A message of exactly the limit, published with no peers, is still
	// delivered locally, and is the first thing the subscription sees.
	full := bytes.Repeat([]byte{'c'}, 1000)
	if err := n.Publish(ctx, KindCerts, full); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub:
		if !bytes.Equal(m.Data, full) || !m.Local {
			t.Fatalf("got %.10q local=%v", m.Data, m.Local)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func TestDataValidator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type decoded struct{ n int }
	cfg := testConfig(t)
	delete(cfg.Validators, KindJobs)
	cfg.DataValidators = map[string]DataValidatorFunc{
		KindJobs: func(_ context.Context, _ peer.ID, data []byte) (Verdict, any) {
			return Accept, decoded{len(data)}
		},
	}
	a := startNode(t, cfg)
	bcfg := cfg
	bcfg.Key = testKey(t)
	bcfg.Bootstrap = addrStrings(a)
	b := startNode(t, bcfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(KindJobs)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, KindJobs, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub:
		if d, ok := m.ValidatorData.(decoded); !ok || d.n != 5 {
			t.Fatalf("ValidatorData = %#v", m.ValidatorData)
		}
		if m.From != a.PeerID() || m.Local {
			t.Fatalf("From %s Local %v", m.From, m.Local)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

// TestBootstrapRetry starts a node whose bootstrap peer is down, then brings
// the peer up on the same address: the node must connect on its own.
func TestBootstrapRetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bcfg := testConfig(t)
	first, err := New(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	bootAddrs := addrStrings(first)
	var listen []string
	for _, a := range first.Host().Addrs() {
		listen = append(listen, a.String())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	acfg := testConfig(t)
	acfg.Bootstrap = bootAddrs
	a := startNode(t, acfg)
	if got := len(a.ConnectedPeers()); got != 0 {
		t.Fatalf("connected to %d peers while the bootstrap peer is down", got)
	}

	bcfg.ListenAddrs = listen
	b := startNode(t, bcfg)
	if err := a.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startNode(t, testConfig(t))
	b := startNode(t, testConfig(t))
	if err := a.Connect(ctx, a.Addrs()[0].String()); !errors.Is(err, ErrBadAddr) {
		t.Errorf("connect to self: %v", err)
	}
	if err := a.Connect(ctx, "/ip4/127.0.0.1/tcp/1"); !errors.Is(err, ErrBadAddr) {
		t.Errorf("connect without peer id: %v", err)
	}
	if err := a.Connect(ctx, b.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitForMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// TestQUIC connects two nodes that listen on QUIC only.
func TestQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acfg := testConfig(t)
	acfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	a := startNode(t, acfg)
	bcfg := testConfig(t)
	bcfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	bcfg.Bootstrap = addrStrings(a)
	b := startNode(t, bcfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Addrs()[0].String(), "/quic-v1/") {
		t.Fatalf("addr %s is not QUIC", a.Addrs()[0])
	}
}

// TestClose checks that Close stops every goroutine New and Subscribe
// started, closes subscriptions and makes later calls fail with ErrClosed.
func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := New(ctx, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	bcfg := testConfig(t)
	bcfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	bcfg.Bootstrap = addrStrings(a)
	b, err := New(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(KindCerts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitForMesh(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, KindCerts, []byte("cert")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := <-sub; ok {
		t.Fatal("subscription still open after Close")
	}
	if err := b.Publish(ctx, KindCerts, []byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after close: %v", err)
	}
	if _, err := b.Subscribe(KindCerts); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
	if err := b.WaitForPeers(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("wait after close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPublish measures messages per second delivered across a line of
// five nodes: one node publishes 256-byte messages, the other four receive
// them. Publishing runs at most a window ahead of the slowest receiver so
// that no queue overflows.
func BenchmarkPublish(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	nodes := startLine(b, wctx, 5)
	wcancel()

	received := make([]atomic.Int64, len(nodes)-1)
	var wg sync.WaitGroup
	for i, n := range nodes[1:] {
		ch, err := n.Subscribe(KindBallots)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ch {
				received[i].Add(1)
			}
		}()
	}
	defer wg.Wait()
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	slowest := func() int64 {
		m := received[0].Load()
		for i := range received {
			m = min(m, received[i].Load())
		}
		return m
	}
	waitReceived := func(target int64) {
		tctx, tcancel := context.WithTimeout(ctx, time.Minute)
		defer tcancel()
		if err := waitUntil(tctx, "receivers catch up", func() bool { return slowest() >= target }); err != nil {
			b.Fatalf("%v: slowest at %d of %d", err, slowest(), target)
		}
	}

	const window = 1024
	payload := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if int64(i)-slowest() >= window {
			waitReceived(int64(i) - window/2)
		}
		copy(payload, fmt.Sprintf("%d-%d", b.N, i))
		if err := nodes[0].Publish(ctx, KindBallots, bytes.Clone(payload)); err != nil {
			b.Fatal(err)
		}
	}
	waitReceived(int64(b.N))
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*(len(nodes)-1))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// TestGossipHub bootstraps 10 nodes from one hub: peer exchange spreads
// them into a mesh, and bursts from three nodes at once reach every node
// complete. TestLongGossip25 is the same at 25 nodes and 2000 messages.
func TestGossipHub(t *testing.T) {
	if testing.Short() {
		t.Skip("10 nodes")
	}
	gossipHub(t, 10, 3, 100, 5*time.Minute)
}

// TestLongGossip25 bootstraps 25 nodes from one hub; five of them publish
// 400 messages each at once.
func TestLongGossip25(t *testing.T) {
	testtier.Long(t, "25 nodes, 2000 messages to each")
	gossipHub(t, 25, 5, 400, testtier.Limit(t, 30*time.Minute))
}

// gossipHub bootstraps count nodes from one hub. Peer exchange must spread
// them into a mesh in which each node has several mesh peers, and bursts
// published by senders nodes at once, perSender messages each, must reach
// every node complete, each message once. limit bounds the whole test: it is
// generous, and the waits inside it end as soon as their condition holds.
func gossipHub(t *testing.T, count, senders, perSender int, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	nodes := make([]*Network, count)
	nodes[0] = startNode(t, testConfig(t))
	hub := addrStrings(nodes[0])
	for i := 1; i < count; i++ {
		cfg := testConfig(t)
		cfg.Bootstrap = hub
		nodes[i] = startNode(t, cfg)
	}
	start := time.Now()
	for i, n := range nodes {
		// Dlo: a mesh may settle anywhere between Dlo (3) and Dhi.
		if err := n.WaitForMesh(ctx, 3); err != nil {
			t.Fatalf("node %d (%d connections) after %v: %v", i, len(n.ConnectedPeers()), time.Since(start), err)
		}
	}
	t.Logf("mesh of %d formed in %v", count, time.Since(start))

	subs := make([]<-chan Message, count)
	for i, n := range nodes {
		ch, err := n.Subscribe(KindBallots)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = ch
	}
	total := senders * perSender
	var wg sync.WaitGroup
	errs := make([]error, count)
	results := make([]map[string]int, count)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = collect(ctx, subs[i], total)
		}()
	}
	published := make([]int, senders)
	pubErrs := make([]error, senders)
	var pwg sync.WaitGroup
	for s := range senders {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			sender := nodes[s*count/senders]
			for i := range perSender {
				if err := sender.Publish(ctx, KindBallots, fmt.Appendf(nil, "node %d ballot %d", s, i)); err != nil {
					pubErrs[s] = err
					return
				}
				published[s]++
			}
		}()
	}
	pwg.Wait()
	wg.Wait()
	for s, err := range pubErrs {
		if err != nil {
			t.Errorf("sender %d (node %d): published %d of %d: %v", s, s*count/senders, published[s], perSender, err)
		}
	}
	complete, fewest := 0, total
	for i := range nodes {
		st := nodes[i].Stats()
		fewest = min(fewest, len(results[i]))
		if errs[i] != nil {
			t.Errorf("node %d: %v (stats %+v)", i, errs[i], st)
			continue
		}
		complete++
		for data, c := range results[i] {
			if c != 1 {
				t.Errorf("node %d: %q received %d times", i, data, c)
			}
		}
		if st.ValidationDropped != 0 || st.OutboundDropped != 0 || st.SubscriberDropped != 0 {
			t.Errorf("node %d dropped messages: %+v", i, st)
		}
	}
	if t.Failed() {
		t.Logf("after %v: %d of %d nodes received all %d messages, the fewest any node received was %d",
			time.Since(start), complete, count, total, fewest)
		return
	}
	t.Logf("delivered %d messages to each of %d nodes in %v", total, count, time.Since(start))
}

// TestDiscovery has two nodes bootstrap from a hub: each learns of the other
// from the hub and connects to it directly.
func TestDiscovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub := startNode(t, testConfig(t))
	var leaves []*Network
	for range 2 {
		cfg := testConfig(t)
		cfg.Bootstrap = addrStrings(hub)
		cfg.TargetPeers = 2
		leaves = append(leaves, startNode(t, cfg))
	}
	a, b := leaves[0], leaves[1]
	if err := waitUntil(ctx, "leaves connect to each other", func() bool {
		return a.Host().Network().Connectedness(b.PeerID()) == network.Connected
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitForMesh(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

// TestAskPeersResponses checks the client side of discovery against
// malformed and oversized responses.
func TestAskPeersResponses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := startNode(t, testConfig(t))
	client := startNode(t, testConfig(t))
	if err := client.Connect(ctx, addrStrings(server)[0]); err != nil {
		t.Fatal(err)
	}
	other := startNode(t, testConfig(t))
	valid := addrStrings(other)[0]
	proto := peersProtocol(testNetworkID)

	respond := func(body string) {
		server.Host().SetStreamHandler(proto, func(s network.Stream) {
			defer s.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(s, int64(len(peersRequest))))
			_, _ = io.WriteString(s, body)
		})
	}

	respond("garbage\n/ip4/1.2.3.4/tcp/1\n" + valid + "\n\n/p2p/\n")
	got, err := client.askPeers(ctx, server.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != other.PeerID() {
		t.Fatalf("askPeers = %v, want only %s", got, other.PeerID())
	}

	respond(strings.Repeat(valid+"\n", maxPeersResponse/len(valid)+1))
	if _, err := client.askPeers(ctx, server.PeerID()); !errors.Is(err, errPeersResponse) {
		t.Fatalf("oversized response: %v", err)
	}

	// The real handler names the other topic peers, not the requester.
	server.Host().SetStreamHandler(proto, server.handlePeers)
	if err := other.Connect(ctx, addrStrings(server)[0]); err != nil {
		t.Fatal(err)
	}
	if err := server.WaitForPeers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got, err = client.askPeers(ctx, server.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != other.PeerID() || len(got[0].Addrs) == 0 {
		t.Fatalf("askPeers = %v, want %s with addresses", got, other.PeerID())
	}
}

func TestTopicValidator(t *testing.T) {
	n := &Network{cfg: Config{MaxMessageSize: 8}}
	from := peer.ID("peer")
	tests := []struct {
		name   string
		data   string
		v      DataValidatorFunc
		want   pubsub.ValidationResult
		called bool
		vdata  any
	}{
		{"accept with data", "ok", func(context.Context, peer.ID, []byte) (Verdict, any) { return Accept, 42 },
			pubsub.ValidationAccept, true, 42},
		{"reject", "no", func(context.Context, peer.ID, []byte) (Verdict, any) { return Reject, 42 },
			pubsub.ValidationReject, true, nil},
		{"ignore", "old", func(context.Context, peer.ID, []byte) (Verdict, any) { return Ignore, nil },
			pubsub.ValidationIgnore, true, nil},
		{"zero verdict is ignore", "x", func(context.Context, peer.ID, []byte) (Verdict, any) { return 0, nil },
			pubsub.ValidationIgnore, true, nil},
		{"panic is ignore", "x", func(context.Context, peer.ID, []byte) (Verdict, any) { panic("bug") },
			pubsub.ValidationIgnore, true, nil},
		{"oversized rejected unseen", "123456789", nil, pubsub.ValidationReject, false, nil},
	}
	logs := captureLogs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := logs.FilterMessage("topic validator panicked; message ignored").Len()
			called := false
			v := func(ctx context.Context, p peer.ID, data []byte) (Verdict, any) {
				called = true
				if p != from || string(data) != tt.data {
					t.Errorf("validator got %s %q", p, data)
				}
				return tt.v(ctx, p, data)
			}
			m := &pubsub.Message{Message: &pb.Message{Data: []byte(tt.data)}}
			if got := n.topicValidator(KindJobs, v)(context.Background(), from, m); got != tt.want {
				t.Errorf("result %v, want %v", got, tt.want)
			}
			if called != tt.called {
				t.Errorf("validator called = %v", called)
			}
			if m.ValidatorData != tt.vdata {
				t.Errorf("ValidatorData = %v, want %v", m.ValidatorData, tt.vdata)
			}
			wantLogged := 0
			if tt.name == "panic is ignore" {
				wantLogged = 1
			}
			if n := logs.FilterMessage("topic validator panicked; message ignored").Len() - before; n != wantLogged {
				t.Errorf("%d panics logged, want %d", n, wantLogged)
			}
		})
	}
}

// captureLogs sends every go-log record to the returned observer, and to
// t.Log (shown with -v or on failure) instead of stderr, until t ends.
func captureLogs(t *testing.T) *observer.ObservedLogs {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	logging.SetPrimaryCore(core)
	t.Cleanup(func() {
		logging.SetupLogging(logging.GetConfig())
		for _, e := range logs.All() {
			t.Logf("log %s %s: %s %v", e.Level.CapitalString(), e.LoggerName, e.Message, e.ContextMap())
		}
	})
	return logs
}

func TestPrometheusRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t)
	cfg.PrometheusRegisterer = reg
	startNode(t, cfg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "libp2p_") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no libp2p metrics among %d families", len(families))
	}
}

func TestSetOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = addrStrings(a)
	b := startNode(t, cfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a.SetOffline(true)
	if err := waitUntil(ctx, "no connections", func() bool {
		return len(a.ConnectedPeers()) == 0 && len(b.ConnectedPeers()) == 0
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(ctx, addrStrings(b)[0]); err == nil {
		t.Fatal("an offline node dialled out")
	}
	a.SetOffline(false)
	if err := a.WaitForPeers(ctx, 1); err != nil {
		t.Fatalf("back online: %v", err)
	}
}

func TestSendDirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = addrStrings(a)
	b := startNode(t, cfg)
	if err := b.WaitForPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	if err := a.HandleDirect(KindBallots, 16, func(_ context.Context, from peer.ID, data []byte) Verdict {
		if from != b.PeerID() {
			return Reject
		}
		got <- string(data)
		if string(data) == "bad" {
			return Reject
		}
		return Accept
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.SendDirect(ctx, a.PeerID(), KindBallots, []byte("hello")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if s := <-got; s != "hello" {
		t.Fatalf("handler got %q", s)
	}
	if err := b.SendDirect(ctx, a.PeerID(), KindBallots, []byte("bad")); !errors.Is(err, ErrRejected) {
		t.Fatalf("rejected message: %v", err)
	}
	<-got
	if err := b.SendDirect(ctx, a.PeerID(), KindBallots, make([]byte, 17)); err == nil {
		t.Fatal("an oversized message was accepted")
	}
	if err := b.SendDirect(ctx, a.PeerID(), "nonsense", []byte("x")); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
}

// BenchmarkJobRoundTrip is the network's share of the floor of a job's
// time to certificate: a gateway publishes a job on the jobs topic, the
// validator that receives it answers straight to the gateway (SendDirect,
// as a ballot goes), and the gateway's handler takes the answer. One job
// at a time, with no signatures and no store: the two hops a job's
// latency cannot do without, over open connections. Each job follows the
// last at once, so the nodes' goroutines never fall idle.
func BenchmarkJobRoundTrip(b *testing.B) { benchJobRoundTrip(b, 0) }

// BenchmarkJobRoundTripIdle is BenchmarkJobRoundTrip with the network idle
// for 50 ms before each job (not timed), as between the jobs of a light
// load of 20 a second: each hop then pays for waking the threads and
// goroutines that carry it.
func BenchmarkJobRoundTripIdle(b *testing.B) { benchJobRoundTrip(b, 50*time.Millisecond) }

// BenchmarkJobQuorumRoundTripIdle is the round trip a gateway of four
// nodes waits for, the network idle for 50 ms before each job as in
// BenchmarkJobRoundTripIdle: four nodes, each connected to every other
// (verity bench's network), the job published by the gateway to the
// three others, each answering straight to it; an op lasts until the
// second answer, the quorum of four with the gateway's own ballot. The
// hops then share two cores with the other validators' (the fan-out,
// their forwarding of the job to each other), as in a local network.
func BenchmarkJobQuorumRoundTripIdle(b *testing.B) {
	const nodesN, answers = 4, 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	nodes := startMesh(b, wctx, nodesN)
	wcancel()
	gw := nodes[0]
	answered := make(chan string, 3*nodesN)
	if err := gw.HandleDirect(KindBallots, 1024, func(_ context.Context, _ peer.ID, data []byte) Verdict {
		answered <- string(data)
		return Accept
	}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, val := range nodes[1:] {
		jobs, err := val.Subscribe(KindJobs)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for m := range jobs {
				if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, m.Data); err != nil && ctx.Err() == nil {
					b.Error(err)
				}
			}
		})
	}
	defer wg.Wait()
	defer func() {
		cancel()
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	// wait reads answers to job until n came.
	wait := func(job string, n int) {
		for n > 0 {
			select {
			case got := <-answered:
				if got == job {
					n--
				}
			case <-time.After(time.Minute):
				b.Fatalf("no answer to %.12q within a minute", job)
			}
		}
	}
	payload := make([]byte, 400) // about a one-claim job message
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		time.Sleep(50 * time.Millisecond)
		copy(payload, fmt.Sprintf("%d-%d", b.N, i))
		job := string(payload)
		b.StartTimer()
		if err := gw.Publish(ctx, KindJobs, bytes.Clone(payload)); err != nil {
			b.Fatal(err)
		}
		wait(job, answers)
		b.StopTimer()
		wait(job, nodesN-1-answers) // the last, off the clock
		b.StartTimer()
	}
}

// startMesh starts count nodes, each connected to every other and in
// every other's mesh on every topic.
func startMesh(tb testing.TB, ctx context.Context, count int) []*Network {
	tb.Helper()
	nodes := make([]*Network, count)
	for i := range nodes {
		cfg := testConfig(tb)
		cfg.TargetPeers = count - 1
		for _, prev := range nodes[:i] {
			cfg.Bootstrap = append(cfg.Bootstrap, addrStrings(prev)...)
		}
		nodes[i] = startNode(tb, cfg)
	}
	for i, n := range nodes {
		if err := n.WaitForPeers(ctx, count-1); err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
		if err := n.WaitForMesh(ctx, count-1); err != nil {
			tb.Fatalf("node %d: %v", i, err)
		}
	}
	return nodes
}

func benchJobRoundTrip(b *testing.B, idle time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	nodes := startLine(b, wctx, 2)
	wcancel()
	gw, val := nodes[0], nodes[1]
	answered := make(chan struct{}, 1)
	if err := gw.HandleDirect(KindBallots, 1024, func(context.Context, peer.ID, []byte) Verdict {
		answered <- struct{}{}
		return Accept
	}); err != nil {
		b.Fatal(err)
	}
	jobs, err := val.Subscribe(KindJobs)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range jobs {
			if err := val.SendDirect(ctx, gw.PeerID(), KindBallots, m.Data); err != nil && ctx.Err() == nil {
				b.Error(err)
			}
		}
	}()
	defer wg.Wait()
	defer func() {
		cancel()
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	// 400 bytes: about a one-claim job message.
	payload := make([]byte, 400)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if idle > 0 {
			b.StopTimer()
			time.Sleep(idle)
			b.StartTimer()
		}
		copy(payload, fmt.Sprintf("%d-%d", b.N, i))
		if err := gw.Publish(ctx, KindJobs, bytes.Clone(payload)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-answered:
		case <-time.After(time.Minute):
			b.Fatalf("job %d: no answer within a minute", i)
		}
	}
}
