package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
)

// everything is a page no replay in these tests fills.
var everything = replayPage{events: 1 << 20, bytes: 1 << 30}

// TestEventBufferBounds: the replay buffer holds at most its count and its
// bytes, drops the oldest first, and ids stay consecutive.
func TestEventBufferBounds(t *testing.T) {
	h := newEventHub(8, 4<<10, time.Unix(0, 5000))
	big := strings.Repeat("x", 1000)
	for i := range 20 {
		h.publish("test", common.Hash{byte(i)}, time.Unix(0, 0), big)
	}
	backlog, _, sub := h.subscribe(common.Hash{}, streamStart{replay: replayAll}, everything)
	h.unsubscribe(sub)
	if h.bytes > h.maxBytes {
		t.Fatalf("buffer holds %d bytes, bound %d", h.bytes, h.maxBytes)
	}
	if len(backlog) == 0 || len(backlog) > 4 {
		t.Fatalf("%d events kept, want 1 to 4 of about 1 KiB under a 4 KiB bound", len(backlog))
	}
	last := backlog[len(backlog)-1]
	if last.job != (common.Hash{19}) || last.id != 5+19 {
		t.Fatalf("newest event kept is %x, want the 20th with id %d", last.job, 5+19)
	}
	for i := 1; i < len(backlog); i++ {
		if backlog[i].id != backlog[i-1].id+1 {
			t.Fatalf("ids %d then %d", backlog[i-1].id, backlog[i].id)
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

func ids(es []*hubEvent) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.id
	}
	return out
}

// TestStreamStart: a stream starts at the next event unless it resumes
// after an id or asks for a replay, and replays at most one page.
func TestStreamStart(t *testing.T) {
	a, b := common.Hash{0xa}, common.Hash{0xb}
	h := newEventHub(64, 1<<20, time.Unix(0, 100_000)) // ids from 100
	for i := range 20 {
		job := a
		if i%2 == 1 {
			job = b
		}
		h.publish("test", job, time.Unix(0, 0), strings.Repeat("x", 100))
	}
	frame := h.ring[0].size
	for _, tc := range []struct {
		name string
		job  common.Hash
		from streamStart
		page replayPage
		want []uint64
		more bool
	}{
		{"no replay asked: the next event", common.Hash{}, streamStart{}, everything, nil, false},
		{"no replay asked on a job stream", a, streamStart{}, everything, nil, false},
		{"resume after an id", common.Hash{}, streamStart{resume: true, afterID: 116}, everything, []uint64{117, 118, 119}, false},
		{"resume after the newest id", common.Hash{}, streamStart{resume: true, afterID: 119}, everything, nil, false},
		{"resume after an id from the future", common.Hash{}, streamStart{resume: true, afterID: 1 << 63}, everything, nil, false},
		{"resume after an evicted id: from the oldest", common.Hash{}, streamStart{resume: true, afterID: 3}, replayPage{events: 2, bytes: 1 << 20}, []uint64{100, 101}, true},
		{"resume on a job stream", b, streamStart{resume: true, afterID: 114}, everything, []uint64{115, 117, 119}, false},
		{"replay the newest 3", common.Hash{}, streamStart{replay: 3}, everything, []uint64{117, 118, 119}, false},
		{"replay the newest 2 of a job", a, streamStart{replay: 2}, everything, []uint64{116, 118}, false},
		{"replay all of a job", b, streamStart{replay: replayAll}, everything, []uint64{101, 103, 105, 107, 109, 111, 113, 115, 117, 119}, false},
		{"replay all, a page of 4 events", common.Hash{}, streamStart{replay: replayAll}, replayPage{events: 4, bytes: 1 << 20}, []uint64{100, 101, 102, 103}, true},
		{"replay all, a page of 3 frames' bytes", a, streamStart{replay: replayAll}, replayPage{events: 100, bytes: 3 * frame}, []uint64{100, 102, 104}, true},
		{"a page smaller than one event still holds one", a, streamStart{replay: replayAll}, replayPage{events: 100, bytes: 1}, []uint64{100}, true},
		{"a page that just holds the rest", b, streamStart{replay: 2}, replayPage{events: 2, bytes: 2 * frame}, []uint64{117, 119}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backlog, more, sub := h.subscribe(tc.job, tc.from, tc.page)
			defer h.unsubscribe(sub)
			if got := ids(backlog); !slices.Equal(got, tc.want) || more != tc.more {
				t.Fatalf("replay %v more %v, want %v more %v", got, more, tc.want, tc.more)
			}
			if more != (sub == nil) {
				t.Fatalf("more %v with subscription %v: a stream with more to replay ends after its page", more, sub != nil)
			}
		})
	}
	if n := h.subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// TestEventBufferGrows: the replay buffer starts small and grows to its
// count bound as events come, keeping them in order, so that a node that
// publishes few events does not hold a ring of the full bound.
func TestEventBufferGrows(t *testing.T) {
	h := newEventHub(1000, 1<<30, time.Unix(0, 0))
	if len(h.ring) > 64 {
		t.Fatalf("empty buffer of bound 1000 holds a ring of %d", len(h.ring))
	}
	for round, n := range []int{300, 2000} {
		for i := range n {
			h.publish("test", common.Hash{byte(i)}, time.Unix(0, 0), i)
		}
		backlog, _, sub := h.subscribe(common.Hash{}, streamStart{replay: replayAll}, everything)
		h.unsubscribe(sub)
		if want := min(300+round*2000, 1000); len(backlog) != want {
			t.Fatalf("round %d: %d events kept, want %d", round, len(backlog), want)
		}
		for i := 1; i < len(backlog); i++ {
			if backlog[i].id != backlog[i-1].id+1 {
				t.Fatalf("round %d: ids %d then %d", round, backlog[i-1].id, backlog[i].id)
			}
		}
		if len(h.ring) > 1000 {
			t.Fatalf("ring of %d beyond the bound", len(h.ring))
		}
	}
}

// TestEncodeFrameMatchesMarshal: encodeFrame writes an event's JSON as
// json.Marshal does.
func TestEncodeFrameMatchesMarshal(t *testing.T) {
	data, err := json.Marshal(map[string]any{"status": "verified", "text": "a <b> & \"c\"", "n": 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Event{
		{ID: 0, Type: api.EventJobAccepted, JobID: common.Hash{1, 2, 3}, Time: time.Unix(1700000000, 123456789).UTC(), Data: data},
		{ID: 1<<63 + 5, Type: api.EventCertificateIssued, Time: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC), Data: []byte(`{}`)},
		{ID: 7, Type: "odd <type> & \"more\"", JobID: common.Hash{0xff}, Time: time.Unix(5, 0).In(time.FixedZone("x", 3600)), Data: []byte(`[1,2]`)},
	} {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		wantFrame := fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, want)
		if got := string(encodeFrame(e)); got != wantFrame {
			t.Errorf("frame\n%s\nwant\n%s", got, wantFrame)
		}
	}
}

// batchedCertificate is the batch-signed certificate of testdata/certs,
// and its wire encoding.
func batchedCertificate(t *testing.T) (*consensus.Certificate, []byte) {
	t.Helper()
	data, err := os.ReadFile("../testdata/certs/batched.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := consensus.ParseCertificate(data)
	if err != nil {
		t.Fatal(err)
	}
	if data, err = encode(c); err != nil {
		t.Fatal(err)
	}
	return c, data
}

// TestCertificateIssuedAsEncoded: a certificate_issued event made of the
// certificate's bytes as gossiped is the event made of the certificate, but
// for HTML escaping, also for bytes a peer spaced out; and it is one line.
func TestCertificateIssuedAsEncoded(t *testing.T) {
	c, _ := batchedCertificate(t)
	for _, reason := range []string{"", " a <b> & c"} {
		c.Status = consensus.Status(string(c.Status) + reason)
		gossiped, err := encode(c)
		if err != nil {
			t.Fatal(err)
		}
		var spaced bytes.Buffer
		json.Indent(&spaced, gossiped, "", "\t")
		want, err := json.Marshal(&api.CertificateIssuedData{Status: c.Status, Certificate: c})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range [][]byte{gossiped, spaced.Bytes()} {
			got := bytes.Join(certificateIssued(c, in).(eventPieces), nil)
			var escaped bytes.Buffer
			json.HTMLEscape(&escaped, got)
			if escaped.String() != string(want) || bytes.ContainsAny(got, "\r\n") {
				t.Fatalf("event data differs:\ngot  %s\nwant %s", got, want)
			}
		}
	}
}

// TestCertificateEventKeepsTheBytes: a certificate_issued event's frame
// holds the certificate's bytes as they were given, not a copy, and is
// the frame encodeFrame writes for the same event.
func TestCertificateEventKeepsTheBytes(t *testing.T) {
	c, data := batchedCertificate(t)
	h := newEventHub(8, 1<<20, time.Unix(0, 0))
	at := time.Unix(1700000000, 5)
	h.publish(api.EventCertificateIssued, c.JobID, at, certificateIssued(c, data))
	e := h.ring[h.head]
	shared := false
	for _, p := range e.frame {
		shared = shared || (len(p) == len(data) && &p[0] == &data[0])
	}
	if !shared {
		t.Error("the frame copied the certificate's bytes")
	}
	want := encodeFrame(&Event{ID: e.id, Type: api.EventCertificateIssued, JobID: c.JobID, Time: at.UTC(),
		Data: bytes.Join(certificateIssued(c, data).(eventPieces), nil)})
	if got := bytes.Join(e.frame, nil); !bytes.Equal(got, want) || e.size != len(want) {
		t.Fatalf("frame of %d bytes (size %d)\n%s\nwant %d bytes\n%s", len(got), e.size, got, len(want), want)
	}
}

// lazyData is data of every kind the hub encodes when first read, at the
// edges of what bounds it: numbers at their widest, text to escape.
func lazyData() []any {
	odd := "<&>\u2028\"\\ é"
	wide := consensus.ClaimProgress{
		Index: math.MaxUint32, Outcome: consensus.Outcome(odd), StakeTrue: math.MaxUint64, StakeFalse: math.MaxUint64,
		StakeAbstain: math.MaxUint64, StakeAssigned: math.MaxUint64, Needed: math.MaxUint64, NeededUnit: odd,
		ValidatorsAssigned: math.MaxUint64, ValidatorsTrue: math.MaxUint64, ValidatorsFalse: math.MaxUint64,
		ValidatorsAbstain: math.MaxUint64, Voters: []common.Address{{1}, {2}, {3}},
	}
	return []any{
		&api.JobAcceptedData{Claims: math.MinInt, Deadline: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -12*3600)),
			Gateway: common.Address{9}, OutputHash: common.Hash{8}, Replication: math.MaxUint32,
			Quorum: consensus.Quorum{Kind: odd, Num: math.MaxUint64, Den: math.MaxUint64, N: math.MaxUint64, M: math.MaxUint64}},
		&api.JobAcceptedData{},
		&api.ClaimsExtractedData{Claims: []api.ClaimRef{{Index: math.MaxUint32}, {Index: 1}}},
		&api.ClaimsExtractedData{},
		&api.BallotAttachedData{ClaimIndexes: []uint32{math.MaxUint32, 0}, Name: odd + odd, Progress: []consensus.ClaimProgress{wide, {}},
			Stake: math.MaxUint64, Validator: common.Address{7}, Verdicts: []claims.Verdict{255, 0}},
		&api.BallotAttachedData{},
		&wide,
		&consensus.ClaimProgress{},
		&api.JobExpiredData{Ballots: math.MinInt, Undecided: []uint32{math.MaxUint32, 1}},
		&api.JobExpiredData{},
		&api.CertificateIssuedData{Certificate: wideCertificate(odd), Status: consensus.Status(odd)},
		&api.CertificateIssuedData{Certificate: &consensus.Certificate{}},
	}
}

// wideCertificate is a certificate with every number at its widest and
// every string odd to escape.
func wideCertificate(odd string) *consensus.Certificate {
	proof := &consensus.BatchProof{Index: math.MaxUint32, Count: math.MaxUint32, Siblings: make([]common.Hash, 16)}
	c := &consensus.Certificate{
		Version: math.MaxUint32, NetworkID: math.MaxUint64,
		Quorum:      consensus.Quorum{Kind: odd, Num: math.MaxUint64, Den: math.MaxUint64, N: math.MaxUint64, M: math.MaxUint64},
		Replication: math.MaxUint32, DeadlineMS: math.MaxUint64, Status: consensus.Status(odd),
		Claims: []consensus.CertClaim{{Index: math.MaxUint32, Text: odd + odd, Verdict: consensus.Outcome(odd),
			StakeFor: math.MaxUint64, StakeTotal: math.MaxUint64}, {}},
		IssuedAt:         time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -12*3600)),
		GatewaySignature: make([]byte, 65), GatewayBatch: proof,
	}
	for i := range 3 {
		c.Ballots = append(c.Ballots, consensus.Vote{Validator: common.Address{byte(i)},
			ClaimIndexes: []uint32{math.MaxUint32, 0}, Verdicts: []claims.Verdict{255, 0},
			Signature: make([]byte, 65), Batch: proof})
	}
	c.Ballots = append(c.Ballots, consensus.Vote{})
	return c
}

// TestLazyBounds: the bound the hub counts for data it encodes when first
// read is never below the length of that data's JSON, nor of its frame.
func TestLazyBounds(t *testing.T) {
	for i, data := range lazyData() {
		bound, lazy := lazyBound(data)
		if !lazy {
			t.Fatalf("data %d (%T) is not encoded lazily", i, data)
		}
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > bound {
			t.Errorf("data %d (%T): %d bytes of JSON, bound %d\n%s", i, data, len(raw), bound, raw)
		}
		typ := "odd <type> & \"more\""
		e := &Event{ID: math.MaxUint64, Type: typ, JobID: common.Hash{0xff}, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -12*3600)), Data: raw}
		if n := len(encodeFrame(e)); n > frameHeadBound(typ)+bound {
			t.Errorf("data %d (%T): a frame of %d bytes, bound %d", i, data, n, frameHeadBound(typ)+bound)
		}
	}
	if _, lazy := lazyBound(eventPieces{[]byte(`{}`)}); lazy {
		t.Error("a certificate's pieces are encoded lazily")
	}
}

// TestLazyFrames: an event encoded when first read has the frame it
// would have had encoded at once, the same for every reader, and the hub
// counts its bound until then.
func TestLazyFrames(t *testing.T) {
	h := newEventHub(100, 1<<20, time.Unix(0, 0))
	at := time.Unix(1700000000, 5).In(time.FixedZone("x", 3600))
	for i, data := range lazyData() {
		h.publish(api.EventBallotAttached, common.Hash{byte(i)}, at, data)
	}
	backlog, _, sub := h.subscribe(common.Hash{}, streamStart{replay: replayAll}, everything)
	h.unsubscribe(sub)
	for i, data := range lazyData() {
		e := backlog[i]
		bound, _ := lazyBound(data)
		if e.size != frameHeadBound(e.typ)+bound {
			t.Fatalf("event %d counted as %d bytes, want its bound %d", i, e.size, frameHeadBound(e.typ)+bound)
		}
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		want := encodeFrame(&Event{ID: e.id, Type: e.typ, JobID: e.job, Time: at.UTC(), Data: raw})
		var wg sync.WaitGroup
		got := make([][]byte, 4)
		for r := range got {
			wg.Go(func() { got[r] = bytes.Join(e.frames(), nil) })
		}
		wg.Wait()
		for r := range got {
			if !bytes.Equal(got[r], want) {
				t.Fatalf("event %d, reader %d: frame\n%s\nwant\n%s", i, r, got[r], want)
			}
		}
		if e.data != nil {
			t.Fatalf("event %d keeps its data once encoded", i)
		}
	}
}

// BenchmarkEventPublish publishes the events a gateway publishes for a
// one-claim job (accepted, claims extracted, four ballots attached, one
// claim decided) into a hub without subscribers, as at saturation.
func BenchmarkEventPublish(b *testing.B) {
	h := newEventHub(4096, 16<<20, time.Unix(1, 0))
	now := time.Now()
	progress := []consensus.ClaimProgress{{Index: 0, Outcome: consensus.OutcomeTrue, StakeTrue: 3, StakeAssigned: 4, Needed: 3}}
	b.ReportAllocs()
	for b.Loop() {
		job := common.Hash{1}
		h.publish(api.EventJobAccepted, job, now, &api.JobAcceptedData{Claims: 1, Deadline: now, Quorum: consensus.DefaultQuorum, Replication: 0})
		h.publish(api.EventClaimsExtracted, job, now, &api.ClaimsExtractedData{Claims: []api.ClaimRef{{Index: 0}}})
		for range 4 {
			h.publish(api.EventBallotAttached, job, now, &api.BallotAttachedData{Name: "validator-1", ClaimIndexes: []uint32{0}, Verdicts: []claims.Verdict{claims.True}, Progress: progress, Stake: 1})
		}
		h.publish(api.EventClaimDecided, job, now, &progress[0])
	}
}
