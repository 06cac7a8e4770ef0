package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// rawStream is an event stream read over a connection of its own, so that
// a test can hang up (close it) or stop reading as a client would.
type rawStream struct {
	conn net.Conn
	resp *http.Response
	sc   *bufio.Scanner
}

// openRawStream GETs path on its own connection to addr and reads the
// response header.
func openRawStream(addr, path string, header map[string]string) (*rawStream, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), 16<<20)
	return &rawStream{conn: c, resp: resp, sc: sc}, nil
}

// next reads the next event; io.EOF when the node ended the stream.
func (s *rawStream) next() (api.Event, error) {
	var data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			var e api.Event
			err := json.Unmarshal([]byte(data), &e)
			return e, err
		}
	}
	if err := s.sc.Err(); err != nil {
		return api.Event{}, err
	}
	return api.Event{}, io.EOF
}

func (s *rawStream) Close() { s.conn.Close() }

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// startOne starts a one-node network with an API, its options adjusted.
func startOne(t *testing.T, adjust func(o *node.Options)) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 1, APIs: true, Dir: t.TempDir(),
		Options: func(_ int, o *node.Options) {
			if adjust != nil {
				adjust(o)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	return tn.Nodes()[0]
}

// certify submits output and waits until the node has published its
// certificate.issued event (which follows the stored certificate).
func certify(t *testing.T, ctx context.Context, nd *node.Node, output string) *api.Job {
	t.Helper()
	streams := nd.EventStreams()
	s, err := openRawStream(nd.APIAddr(), "/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitFor(t, 10*time.Second, "the stream subscribed", func() bool { return nd.EventStreams() > streams })
	job, err := client.New(nd.APIURL()).Submit(ctx, api.VerifyRequest{Output: output})
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if e.JobID == job.JobID && e.Type == api.EventCertificateIssued {
			return job
		}
	}
}

// TestEventStreamsStartAtNewest: a stream sends only what comes after it
// opened, unless the client asks to replay (replay=N, replay=all) or to
// resume (Last-Event-ID); Watch asks for the job's buffered events.
func TestEventStreamsStartAtNewest(t *testing.T) {
	nd := startOne(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := certify(t, ctx, nd, answer)

	waitFor(t, 10*time.Second, "certify's stream gone", func() bool { return nd.EventStreams() == 0 })
	live, err := openRawStream(nd.APIAddr(), "/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	waitFor(t, 10*time.Second, "the stream subscribed", func() bool { return nd.EventStreams() == 1 })
	b := certify(t, ctx, nd, "Berlin is the capital of Germany.")
	var bIDs []uint64
	for {
		e, err := live.next()
		if err != nil {
			t.Fatal(err)
		}
		if e.JobID != b.JobID {
			t.Fatalf("a new stream sent %s of job %s, buffered before it opened", e.Type, e.JobID.Hex())
		}
		bIDs = append(bIDs, e.ID)
		if e.Type == api.EventCertificateIssued {
			break
		}
	}

	t.Run("replay=2 sends the newest two first", func(t *testing.T) {
		s, err := openRawStream(nd.APIAddr(), "/v1/events?replay=2", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, want := range bIDs[len(bIDs)-2:] {
			e, err := s.next()
			if err != nil || e.ID != want {
				t.Fatalf("event %d (%v), want id %d", e.ID, err, want)
			}
		}
	})
	t.Run("a final job's stream without replay: its certificate from the store", func(t *testing.T) {
		s, err := openRawStream(nd.APIAddr(), "/v1/jobs/"+a.JobID.Hex()+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e, err := s.next()
		if err != nil || e.Type != api.EventCertificateIssued || e.ID != 0 {
			t.Fatalf("first event %s id %d (%v), want certificate.issued with id 0", e.Type, e.ID, err)
		}
		if _, err := s.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the certificate: %v, want the end of the stream", err)
		}
	})
	t.Run("Last-Event-ID resumes, and wins over replay", func(t *testing.T) {
		s, err := openRawStream(nd.APIAddr(), "/v1/events?replay=all", map[string]string{"Last-Event-ID": fmt.Sprint(bIDs[len(bIDs)-2])})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if e, err := s.next(); err != nil || e.ID != bIDs[len(bIDs)-1] {
			t.Fatalf("event %d (%v), want id %d", e.ID, err, bIDs[len(bIDs)-1])
		}
	})
	t.Run("Watch replays the job's events", func(t *testing.T) {
		events, errc := client.New(nd.APIURL()).Watch(ctx, a.JobID)
		var got []api.Event
		for e := range events {
			got = append(got, e)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if len(got) < 4 || got[0].Type != api.EventJobAccepted || got[len(got)-1].Type != api.EventCertificateIssued || got[len(got)-1].ID == 0 {
			t.Fatalf("Watch of a final job saw %d events, want job.accepted first and the buffered certificate.issued last", len(got))
		}
	})
	t.Run("replay that is not a number", func(t *testing.T) {
		code, body := doRequest(t, ctx, http.MethodGet, nd.APIURL()+"/v1/events?replay=lots", "", "")
		if code != http.StatusBadRequest || !strings.Contains(body, "invalid_replay") {
			t.Fatalf("HTTP %d %s, want 400 invalid_replay", code, body)
		}
	})
}

// TestEventReplayPaged: a stream replays at most ReplayEvents events and
// ends; Watch resumes after each page with Last-Event-ID and sees every
// event of the job once, in order.
func TestEventReplayPaged(t *testing.T) {
	nd := startOne(t, func(o *node.Options) { o.APILimits.ReplayEvents = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job := certify(t, ctx, nd, answer)

	s, err := openRawStream(nd.APIAddr(), "/v1/jobs/"+job.JobID.Hex()+"/events?replay=all", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 2 {
		if _, err := s.next(); err != nil {
			t.Fatalf("event %d of the page: %v", i, err)
		}
	}
	if e, err := s.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after a page of 2: %s, %v; want the end of the stream", e.Type, err)
	}

	events, errc := client.New(nd.APIURL()).Watch(ctx, job.JobID)
	var ids []uint64
	var last string
	for e := range events {
		ids = append(ids, e.ID)
		last = e.Type
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// job.accepted, claims.extracted, 1 ballot, 2 claim decisions, certificate.
	if len(ids) != 6 || last != api.EventCertificateIssued {
		t.Fatalf("Watch over pages of 2: ids %v ending with %s, want 6 ending with the certificate", ids, last)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids %v: a gap or a repeat across pages", ids)
		}
	}
}

// TestEventStreamCap: past MaxEventStreams a stream is refused with 503
// too_many_streams; a closed stream frees its place at once.
func TestEventStreamCap(t *testing.T) {
	nd := startOne(t, func(o *node.Options) { o.APILimits.MaxEventStreams = 2 })
	var open []*rawStream
	defer func() {
		for _, s := range open {
			s.Close()
		}
	}()
	for range 2 {
		s, err := openRawStream(nd.APIAddr(), "/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	s, err := openRawStream(nd.APIAddr(), "/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(s.resp.Body)
	s.Close()
	var e api.Error
	if s.resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Code != "too_many_streams" || s.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: HTTP %d %s, want 503 too_many_streams with Retry-After", s.resp.StatusCode, body)
	}
	open[0].Close()
	waitFor(t, 5*time.Second, "a hung-up stream released", func() bool { return nd.EventStreams() == 1 })
	s, err = openRawStream(nd.APIAddr(), "/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	open = append(open, s)
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("stream after one hung up: HTTP %d", s.resp.StatusCode)
	}
}
