package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/internal/strictjson"
)

// maxEventBytes bounds one event of a stream, its data lines together.
const maxEventBytes = 16 << 20

// errBadEvent ends a stream: an event that cannot be read is not a dropped
// connection, and a reconnection would only read it again.
var errBadEvent = errors.New("event stream: unreadable event")

// Watch streams a job's events until its certificate is issued, ctx ends,
// or an error occurs: first those the node still buffers (it asks for
// replay=all, so a job submitted just before is watched from its start),
// then the new ones. It reconnects after a dropped connection, or a replay
// the node sent a page at a time, with Last-Event-ID, so no event is
// missed or repeated. The channel is closed at the end; the error channel
// then holds nil or the reason.
//
// Events show the proof forming (claim hashes, stake per verdict, ballots)
// but never the answer text, so watching is not recorded as a read before
// proof.
func (c *Client) Watch(ctx context.Context, id common.Hash) (<-chan api.Event, <-chan error) {
	return c.stream(ctx, "/v1/jobs/"+id.Hex()+"/events", 0, true)
}

// WatchAll streams every event of the node: those after lastID (as many as
// the node still buffers), or with lastID 0 those from now on.
func (c *Client) WatchAll(ctx context.Context, lastID uint64) (<-chan api.Event, <-chan error) {
	return c.stream(ctx, "/v1/events", lastID, false)
}

// stream reads an event stream, reconnecting with Last-Event-ID; until it
// has an id, replay asks the node for every buffered event of the stream.
func (c *Client) stream(ctx context.Context, path string, lastID uint64, replay bool) (<-chan api.Event, <-chan error) {
	out := make(chan api.Event, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		backoff := 50 * time.Millisecond
		for {
			before := lastID
			done, err := c.streamOnce(ctx, path, &lastID, replay, out)
			if done {
				errc <- nil
				return
			}
			if ctx.Err() != nil {
				errc <- ctx.Err()
				return
			}
			// An API error ends the watch, but a node that serves its
			// maximum of streams (503) is asked again after the pause.
			var ae *APIError
			if (errors.As(err, &ae) && ae.Status != http.StatusServiceUnavailable) || errors.Is(err, errBadEvent) {
				errc <- err
				return
			}
			// Dropped: reconnect with Last-Event-ID after a short pause,
			// short again when the stream made progress (a node ends a
			// long replay after each page).
			if lastID != before {
				backoff = 50 * time.Millisecond
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				errc <- ctx.Err()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
	return out, errc
}

// streamOnce reads one SSE connection. done is true when the server ended
// the stream after a job's final event.
func (c *Client) streamOnce(ctx context.Context, path string, lastID *uint64, replay bool, out chan<- api.Event) (done bool, err error) {
	if replay && *lastID == 0 {
		path += "?replay=all"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(*lastID, 10))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return false, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
		}
		return false, &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	var data strings.Builder
	sawFinal := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var e api.Event
			if err := strictjson.Decode([]byte(data.String()), &e, maxEventBytes); err != nil {
				return false, fmt.Errorf("%w: %w", errBadEvent, err)
			}
			data.Reset()
			if e.ID > 0 {
				*lastID = e.ID
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			if e.Type == api.EventCertificateIssued && strings.HasPrefix(path, "/v1/jobs/") {
				sawFinal = true
			}
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			if data.Len() > maxEventBytes {
				return false, fmt.Errorf("%w: larger than %d bytes", errBadEvent, maxEventBytes)
			}
		}
	}
	if sawFinal {
		return true, nil
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, io.ErrUnexpectedEOF
}

// RecordAction records in the job's audit trail that the client acted on
// its answer (e.g. "published"). The answer says whether that was before
// proof.
func (c *Client) RecordAction(ctx context.Context, id common.Hash, a api.ActionRequest) (*api.AuditEntry, error) {
	var e api.AuditEntry
	if err := c.do(ctx, http.MethodPost, "/v1/jobs/"+id.Hex()+"/actions", a, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Audit returns the job's ordered audit timeline.
func (c *Client) Audit(ctx context.Context, id common.Hash) (*api.Audit, error) {
	var a api.Audit
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id.Hex()+"/audit", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
