package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
)

// A gateway publishes the events of a job's deciding ballot (its
// ballot.attached and the claim.decided it brings) before the tally
// closes, so before the certificate is signed and stored: a stream that
// finds the certificate stored has them. The README's submit transcript
// once lost the last ballot and every claim.decided line when its stream
// connected between the store and those events.
func TestJobEventsPublishedBeforeQuorum(t *testing.T) {
	var (
		mu     sync.Mutex
		hub    *eventHub
		counts = map[common.Hash]map[string]int{}
	)
	// The trace runs on the gateway's goroutine at the quorum; the hub
	// is set once the node exists, before any job.
	trace := func(e TraceEvent) {
		mu.Lock()
		defer mu.Unlock()
		if e.Step != TraceQuorum || hub == nil {
			return
		}
		backlog, _, sub := hub.subscribe(e.Job, streamStart{replay: replayAll}, replayPage{events: 1 << 10, bytes: 1 << 30})
		hub.unsubscribe(sub)
		c := map[string]int{}
		for _, ev := range backlog {
			c[ev.typ]++
		}
		counts[e.Job] = c
	}
	n := soloNodeTraced(t, trace)
	mu.Lock()
	hub = n.events
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4. 3 * 3 = 9. 1 + 1 = 3."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.obs.waitFinal(ctx, job.JobID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	c, ok := counts[job.JobID]
	if !ok {
		t.Fatal("no quorum traced")
	}
	if c[api.EventBallotAttached] != 1 || c[api.EventClaimDecided] != 3 || c[api.EventCertificateIssued] != 0 {
		t.Fatalf("at the quorum the buffer holds %v, want the ballot and its 3 decided claims, no certificate", c)
	}
}

// A job stream that finds the certificate stored sends the events queued
// since its replay first, then the stored certificate (id 0), unless the
// certificate's own event was among them.
func TestStreamFinishSendsQueuedEvents(t *testing.T) {
	job := common.Hash{5}
	cert := &consensus.Certificate{JobID: job, IssuedAt: time.Now(), Status: consensus.StatusVerified}
	for _, tc := range []struct {
		name   string
		queued []string
		want   []string // event types, in order; "stored" is the stored frame
	}{
		{"nothing queued", nil, []string{"stored"}},
		{"the last ballot queued", []string{api.EventBallotAttached, api.EventClaimDecided}, []string{api.EventBallotAttached, api.EventClaimDecided, "stored"}},
		{"the certificate's event queued", []string{api.EventBallotAttached, api.EventCertificateIssued}, []string{api.EventBallotAttached, api.EventCertificateIssued}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := streamNode(t, APILimits{})
			backlog, _, sub := h.events.subscribe(job, streamStart{replay: replayAll}, replayPage{events: 10, bytes: 1 << 20})
			defer h.events.unsubscribe(sub)
			for _, typ := range tc.queued {
				h.events.publish(typ, job, time.Now(), map[string]int{"x": 1})
			}
			rec := httptest.NewRecorder()
			s := &eventStream{w: rec, rc: http.NewResponseController(rec), job: job, writeTimeout: time.Second}
			s.finish(cert, backlog, sub)
			var got []string
			for _, frame := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n\n") {
				typ := strings.TrimPrefix(strings.Split(frame, "\n")[1], "event: ")
				if strings.HasPrefix(frame, "id: 0\n") {
					typ = "stored"
				}
				got = append(got, typ)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("stream sent %v, want %v", got, tc.want)
			}
		})
	}
}
