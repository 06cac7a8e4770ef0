package node

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/jsonw"
)

// Event is api.Event: IDs increase by one per event on a node, so a client
// that reconnects with Last-Event-ID gets exactly what it missed.
type Event = api.Event

// hubEvent is an event as the hub keeps it: what a stream filters on, and
// its Server-Sent Events frame, encoded once for every stream. The frame
// is in pieces written one after the other: its data is not copied into
// it (a certificate's few kilobytes, once per node and job, kept as the
// node received or encoded them).
//
// The events a gateway publishes for every ballot and job (lazyBound)
// are encoded when a stream first reads them, not when published: at
// saturation most are never read, and encoding them all took about 2% of
// a node's CPU. Until then size is a bound on the frame's length.
type hubEvent struct {
	id   uint64
	typ  string
	job  common.Hash
	at   time.Time
	size int // the frame's length in bytes, or a bound on it until encoded

	once  sync.Once
	data  any // what the frame is encoded from, until it is
	frame [][]byte
}

// frames is the event's frame, encoded at the first call.
func (e *hubEvent) frames() [][]byte {
	e.once.Do(func() {
		if e.frame == nil {
			data := dataPieces(e.typ, e.data)
			if data == nil { // did not encode: logged
				data = [][]byte{[]byte("null")}
			}
			e.frame = framePieces(&Event{ID: e.id, Type: e.typ, JobID: e.job, Time: e.at}, data)
			e.data = nil
		}
	})
	return e.frame
}

// frameSize is the length of a frame in pieces.
func frameSize(frame [][]byte) int {
	n := 0
	for _, p := range frame {
		n += len(p)
	}
	return n
}

// encodeFrame is the Server-Sent Events frame of e: an id: line, an event:
// line with its type and a data: line with the event as JSON.
//
// It writes the JSON of e as json.Marshal would, without its cost:
// json.Marshal checks and compacts e.Data, which is already compact JSON
// from json.Marshal (a certificate's few kilobytes, once per node and
// job). TestEncodeFrameMatchesMarshal holds the two equal.
func encodeFrame(e *Event) []byte {
	return bytes.Join(framePieces(e, [][]byte{e.Data}), nil)
}

// framePieces is encodeFrame in pieces: data, the pieces of e's data
// (e.Data is not read), between a head and a tail.
func framePieces(e *Event, data [][]byte) [][]byte {
	head := make([]byte, 0, 2*len(e.Type)+200)
	head = strconv.AppendUint(append(head, "id: "...), e.ID, 10)
	head = append(append(append(head, "\nevent: "...), e.Type...), "\ndata: "...)
	head = strconv.AppendUint(append(head, `{"id":`...), e.ID, 10)
	head = jsonw.AppendStringHTML(append(head, `,"type":`...), e.Type)
	head = append(head, `,"job_id":"0x`...)
	head = hex.AppendEncode(head, e.JobID[:])
	head = append(head, `","time":`...)
	if at, err := e.Time.AppendText(append(head, '"')); err == nil {
		head = append(at, '"')
	} else { // not from a node's own clock, which is always in range
		head = append(head, "null"...)
	}
	head = append(head, `,"data":`...)
	out := make([][]byte, 0, len(data)+2)
	out = append(out, head)
	out = append(out, data...)
	return append(out, frameTail)
}

var frameTail = []byte("}\n\n")

// eventHub keeps the most recent events in a ring for replay and fans new
// ones out to subscribers. A subscriber that falls subscriberQueue events
// behind is dropped; it reconnects with Last-Event-ID and replays from the
// ring.
type eventHub struct {
	mu   sync.Mutex
	next uint64
	ring []*hubEvent // circular; ring[(head+i)%len] is the i-th oldest
	head int
	size int
	// capacity bounds the events held; the ring grows to it as events
	// come, so that a node that publishes few holds a small ring.
	capacity int
	// bytes is the data held in the ring, at most maxBytes: the oldest
	// events go first when either bound is reached.
	bytes, maxBytes int
	subs            map[*eventSub]struct{}
}

// subscriberQueue is how many events a stream may fall behind before it is
// dropped.
const subscriberQueue = 1024

type eventSub struct {
	job    common.Hash // zero: every job
	ch     chan *hubEvent
	closed bool
}

// newEventHub numbers events from the current time in microseconds, so
// that ids keep increasing across restarts: a client that resumes with an
// id from before a restart gets every event since, never an old id reused.
func newEventHub(capacity, maxBytes int, now time.Time) *eventHub {
	return &eventHub{next: uint64(now.UnixMicro()), ring: make([]*hubEvent, min(capacity, 64)), capacity: capacity, maxBytes: maxBytes, subs: make(map[*eventSub]struct{})}
}

// grow doubles the full ring, up to its capacity, oldest event first.
func (h *eventHub) grow() {
	ring := make([]*hubEvent, min(2*len(h.ring), h.capacity))
	for i := range h.size {
		ring[i] = h.ring[(h.head+i)%len(h.ring)]
	}
	h.ring, h.head = ring, 0
}

// certificateIssued is the data of a certificate_issued event,
// api.CertificateIssuedData. From a certificate in the binary form (as
// issued and gossiped) it is written when the event is first read
// (lazyBound): at saturation most events are never read. From the
// certificate's JSON as received (catch-up), it is made of those bytes
// rather than by encoding the certificate again: the JSON encoding/json
// writes but for HTML escaping, which it does not need. A line break a
// peer's encoding may hold (never inside a JSON string) is compacted away:
// an event is one line of a stream. Its pieces are written one after the
// other; data is not copied.
func certificateIssued(c *consensus.Certificate, data []byte) any {
	if consensus.IsCertificateBinary(data) {
		return &api.CertificateIssuedData{Certificate: c, Status: c.Status}
	}
	status, _ := json.Marshal(c.Status) // a string: never fails
	if bytes.ContainsAny(data, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err == nil {
			data = buf.Bytes()
		}
	}
	tail := make([]byte, 0, len(status)+len(`,"status":}`))
	tail = append(tail, `,"status":`...)
	tail = append(tail, status...)
	return eventPieces{certificateHead, data, append(tail, '}')}
}

// certificateBound bounds the length of c's JSON (as in an event, with
// its status after it): every number at 20 digits, every string escaped,
// every byte string in hex.
func certificateBound(c *consensus.Certificate) int {
	proof := func(p *consensus.BatchProof) int {
		if p == nil {
			return 0
		}
		return 100 + 70*len(p.Siblings)
	}
	n := 1500 + 6*len(c.Quorum.Kind) + 12*len(c.Status) + 2*len(c.GatewaySignature) + proof(c.GatewayBatch)
	for i := range c.Claims {
		n += 200 + 6*(len(c.Claims[i].Text)+len(c.Claims[i].Verdict))
	}
	for i := range c.Ballots {
		v := &c.Ballots[i]
		n += 200 + 11*len(v.ClaimIndexes) + 20*len(v.Verdicts) + 2*len(v.Signature) + proof(v.Batch)
	}
	return n
}

var certificateHead = []byte(`{"certificate":`)

// eventPieces is an event's data JSON in pieces, written one after the
// other.
type eventPieces [][]byte

// eventBytes is what an event costs the buffer.
func eventBytes(e *hubEvent) int { return e.size + len(e.typ) + 96 }

// jsonAppender is event data that writes its own JSON, byte for byte what
// encoding/json writes for it.
type jsonAppender interface{ AppendJSON([]byte) []byte }

// dataPieces is the JSON of an event's data, in pieces; nil if it does
// not encode (logged).
func dataPieces(typ string, data any) [][]byte {
	switch d := data.(type) {
	case eventPieces: // encoded by the caller, in pieces
		return d
	case jsonAppender: // the data a gateway writes for every ballot
		return [][]byte{d.AppendJSON(nil)}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		log.Errorw("encode event", "type", typ, "err", err)
		return nil
	}
	return [][]byte{raw}
}

// frameHeadBound bounds the length of the frame of an event of type typ
// without its data: framePieces' head (ids of 20 digits, the type escaped,
// the job's id, a time of at most 37 characters quoted) and tail.
func frameHeadBound(typ string) int { return 220 + 7*len(typ) }

// lazyBound bounds the length of the JSON of data that the hub encodes
// when first read, and reports whether data is such: the data of the
// events a gateway publishes for every job and ballot, small and bounded
// by their lists. TestLazyBounds holds each bound above what it bounds.
func lazyBound(data any) (int, bool) {
	switch d := data.(type) {
	case *api.JobAcceptedData:
		return 440 + 6*len(d.Quorum.Kind), true
	case *api.ClaimsExtractedData:
		return 120 + 100*len(d.Claims), true
	case *api.BallotAttachedData:
		n := 200 + 6*len(d.Name) + 11*len(d.ClaimIndexes) + 4*len(d.Verdicts)
		for i := range d.Progress {
			n += progressBound(&d.Progress[i]) + 1
		}
		return n, true
	case *consensus.ClaimProgress:
		return progressBound(d), true
	case *api.JobExpiredData:
		return 60 + 11*len(d.Undecided), true
	case *api.CertificateIssuedData:
		return certificateBound(d.Certificate), true
	}
	return 0, false
}

// progressBound bounds the length of a claim's progress in JSON: every
// number at 20 digits, every string escaped.
func progressBound(p *consensus.ClaimProgress) int {
	return 440 + 6*(len(p.Outcome)+len(p.NeededUnit)) + 45*len(p.Voters)
}

// publish adds an event to the ring and sends it to the subscriptions of
// its job. Data published lazily (lazyBound) must not change afterwards:
// it is encoded when first read.
func (h *eventHub) publish(typ string, job common.Hash, at time.Time, data any) {
	bound, lazy := lazyBound(data)
	var pieces [][]byte
	if !lazy {
		if pieces = dataPieces(typ, data); pieces == nil {
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e := Event{ID: h.next, Type: typ, JobID: job, Time: at.UTC()}
	h.next++
	he := &hubEvent{id: e.ID, typ: typ, job: job, at: e.Time}
	if lazy {
		he.data, he.size = data, frameHeadBound(typ)+bound
	} else {
		he.frame = framePieces(&e, pieces)
		he.size = frameSize(he.frame)
	}
	if h.size == len(h.ring) && len(h.ring) < h.capacity {
		h.grow()
	}
	for h.size > 0 && (h.size == len(h.ring) || h.bytes+eventBytes(he) > h.maxBytes) {
		h.bytes -= eventBytes(h.ring[h.head])
		h.ring[h.head] = nil
		h.head = (h.head + 1) % len(h.ring)
		h.size--
	}
	h.ring[(h.head+h.size)%len(h.ring)] = he
	h.size++
	h.bytes += eventBytes(he)
	for s := range h.subs {
		if s.job != (common.Hash{}) && s.job != job {
			continue
		}
		select {
		case s.ch <- he:
		default:
			h.dropLocked(s)
		}
	}
}

func (h *eventHub) dropLocked(s *eventSub) {
	if !s.closed {
		s.closed = true
		close(s.ch)
		delete(h.subs, s)
	}
}

// streamStart is where a stream begins: after an event id (resume), with
// the newest buffered events (replay), or at the next event.
type streamStart struct {
	// resume: the events after afterID.
	resume  bool
	afterID uint64
	// Without resume, replay is how many of the newest buffered events to
	// send first: 0 none, replayAll all of them.
	replay int
}

// replayAll asks for every buffered event of a stream.
const replayAll = -1

// replayPage bounds what one stream replays: at most events events and
// bytes bytes of frames, but always one event when there is one.
type replayPage struct {
	events, bytes int
}

// subscribe returns what a stream of job (every job when zero) replays
// from the buffer, at most one page of it, oldest first, and whether more
// remained after the page. When nothing remained it also returns a
// subscription for the events to come, taken atomically with the replay so
// that nothing falls between; with more to replay there is none: the
// stream ends after its page and the client resumes after the last id it
// got.
func (h *eventHub) subscribe(job common.Hash, from streamStart, page replayPage) (backlog []*hubEvent, more bool, sub *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at := func(i int) *hubEvent { return h.ring[(h.head+i)%len(h.ring)] }
	match := func(e *hubEvent) bool { return job == (common.Hash{}) || e.job == job }
	start := h.size // the ring offset replay starts at
	switch {
	case from.resume && h.size > 0:
		// Ids are consecutive in the ring: the offset follows from the id.
		first := at(0).id
		switch {
		case from.afterID < first:
			start = 0
		case from.afterID-first < uint64(h.size-1):
			start = int(from.afterID-first) + 1
		}
	case !from.resume && from.replay != 0:
		found := 0
		for i := h.size - 1; i >= 0 && (from.replay == replayAll || found < from.replay); i-- {
			if match(at(i)) {
				start = i
				found++
			}
		}
	}
	bytes := 0
	for i := start; i < h.size; i++ {
		e := at(i)
		if !match(e) {
			continue
		}
		if len(backlog) >= page.events || (len(backlog) > 0 && bytes+e.size > page.bytes) {
			return backlog, true, nil
		}
		backlog = append(backlog, e)
		bytes += e.size
	}
	sub = &eventSub{job: job, ch: make(chan *hubEvent, subscriberQueue)}
	h.subs[sub] = struct{}{}
	return backlog, false, sub
}

// unsubscribe ends a subscription; nil is none.
func (h *eventHub) unsubscribe(s *eventSub) {
	if s == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

// subscribers is the number of live subscriptions.
func (h *eventHub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// closeAll ends every subscription (node stopping).
func (h *eventHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.dropLocked(s)
	}
}
