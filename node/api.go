package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	logging "github.com/ipfs/go-log/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/explorer"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/store"
)

var apiLog = logging.Logger("verity/api")

// httpAPI is the node's HTTP API: its routes and handlers, client tokens
// and rate limits, the admin routes, and the one mapping of the node's
// domain errors to status codes (httpStatus). It serves the node's own
// operations (Submit, Job, WaitFinal, ...) and holds no protocol state.
type httpAPI struct {
	*env
	node    *Node
	limiter *rateLimiter
	// streams counts the event streams served.
	streams *streamGate
	// adminToken is the bearer token of the admin routes.
	adminToken string
}

func newHTTPAPI(n *Node) *httpAPI {
	return &httpAPI{
		env:     n.env,
		node:    n,
		limiter: newRateLimiter(n.opts.RateLimit, n.opts.RateBurst, 10000),
		streams: &streamGate{max: int64(n.opts.APILimits.MaxEventStreams)},
	}
}

// Route is one HTTP API route.
type Route struct {
	Method, Path string
	handler      http.HandlerFunc
}

// Routes lists every route of the API; docs/openapi.json documents each.
func (n *Node) Routes() []Route { return n.api.routes() }

func (h *httpAPI) routes() []Route {
	return []Route{
		{"POST", "/v1/verify", h.handleVerify},
		{"POST", "/v1/generate", h.handleGenerate},
		{"GET", "/v1/jobs/{id}", h.handleJob},
		{"GET", "/v1/jobs/{id}/certificate", h.handleCertificate},
		{"GET", "/v1/jobs/{id}/events", h.handleEvents},
		{"GET", "/v1/jobs/{id}/audit", h.handleAudit},
		{"POST", "/v1/jobs/{id}/actions", h.handleAction},
		{"GET", "/v1/events", h.handleEvents},
		{"GET", "/v1/validators", h.handleValidators},
		{"GET", "/v1/evidence", h.handleEvidence},
		{"GET", "/healthz", h.handleHealth},
		{"POST", "/v1/admin/p2p", h.handleAdminP2P},
		{"GET", "/metrics", promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP},
	}
}

// Handler is the node's HTTP API.
func (n *Node) Handler() http.Handler { return n.api.handler() }

func (h *httpAPI) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range h.routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, rt.handler)
	}
	// The explorer: a page for people, reading the routes above.
	page := explorer.Handler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET "+explorer.Prefix, page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		apiLog.Debugw("write response", "err", err)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Code: code, Message: msg})
}

// decodeBody decodes a JSON request body strictly, answering 415, 413 or
// 400 itself when it cannot.
func (h *httpAPI) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("content type %q: send application/json", ct))
			return false
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	err := strictjson.DecodeReader(r.Body, v, int(h.opts.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig) || errors.Is(err, strictjson.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", h.opts.MaxBodyBytes))
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, "body_timeout", fmt.Sprintf("request body not received within %s", h.opts.APILimits.ReadTimeout))
	default:
		writeError(w, http.StatusBadRequest, "invalid_json", "request body: "+err.Error())
	}
	return false
}

func (h *httpAPI) handleVerify(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r, "submitting") {
		return
	}
	var req api.VerifyRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	answer := h.awaitWork(w) // decomposing may ask a model
	v, err := h.node.Submit(r.Context(), req)
	answer()
	if err != nil {
		h.writeRequestError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

func (h *httpAPI) handleGenerate(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r, "generating") {
		return
	}
	var req api.GenerateRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	answer := h.awaitWork(w) // the model may take longer than the server's timeouts
	v, err := h.node.Generate(r.Context(), req)
	answer()
	if err != nil {
		h.writeRequestError(w, err)
		return
	}
	// The generated answer is new to the client and unproven: in strict
	// mode it is withheld (await the job); otherwise handing it out is a
	// read before proof, recorded like any other.
	if requireFinal(r) {
		withheld := *v
		// claims stays an array, empty, as the Job schema requires.
		withheld.Output, withheld.Claims = "", []claims.Claim{}
		writeJSON(w, http.StatusAccepted, &withheld)
		return
	}
	h.node.recordRead(v.JobID, h.clientIdentity(r), "POST /v1/generate")
	writeJSON(w, http.StatusAccepted, v)
}

// writeRequestError answers a *RequestError with the status of its kind
// (httpStatus), anything else with 500.
func (h *httpAPI) writeRequestError(w http.ResponseWriter, err error) {
	var re *RequestError
	if errors.As(err, &re) {
		writeError(w, httpStatus(re.Kind), re.Code, re.Message)
		return
	}
	apiLog.Errorw("request failed", "err", err)
	writeError(w, http.StatusInternalServerError, "internal", err.Error())
}

func parseJobID(w http.ResponseWriter, r *http.Request) (common.Hash, bool) {
	s := r.PathValue("id")
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		writeError(w, http.StatusBadRequest, "invalid_job_id", fmt.Sprintf("job id %q: want 0x and 64 hex digits", s))
		return common.Hash{}, false
	}
	var h common.Hash
	if err := h.UnmarshalText([]byte(s)); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_job_id", fmt.Sprintf("job id %q: %v", s, err))
		return common.Hash{}, false
	}
	return h, true
}

// requireFinal reports whether the client asked never to see provisional
// data: ?require=final or the header Verity-Require: final.
func requireFinal(r *http.Request) bool {
	return r.URL.Query().Get("require") == "final" || strings.EqualFold(r.Header.Get("Verity-Require"), "final")
}

func (h *httpAPI) writeJobError(w http.ResponseWriter, id common.Hash, err error) {
	if errors.Is(err, ErrUnknownJob) {
		writeError(w, http.StatusNotFound, "unknown_job", "no job "+id.Hex()+" on this node")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal", err.Error())
}

func (h *httpAPI) handleJob(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "invalid_wait", fmt.Sprintf("wait %q: want a duration such as 30s", ws))
			return
		}
		if _, err := h.node.Job(id); err == nil {
			d = min(d, MaxWait)
			h.extendDeadlines(w, d)
			ctx, cancel := context.WithTimeout(r.Context(), d)
			h.node.WaitFinal(ctx, id) // on timeout, answer with the current state
			cancel()
		}
	}
	v, err := h.node.Job(id)
	if err != nil {
		h.writeJobError(w, id, err)
		return
	}
	if !v.Status.Final() {
		if requireFinal(r) {
			writeError(w, http.StatusConflict, "not_final", "job "+id.Hex()+" is still provisional; the answer is withheld until it is final")
			return
		}
		// Each such read is written to the audit trail: it counts against
		// the client's rate like a POST, so reads cannot flood the store.
		if !h.rateLimit(w, r) {
			return
		}
		h.node.recordRead(id, h.clientIdentity(r), "GET /v1/jobs/{id}")
	}
	writeJSON(w, http.StatusOK, v)
}

// MaxWait bounds the ?wait= of a long poll.
const MaxWait = 5 * time.Minute

// awaitWork lifts the server's read and write deadlines off a request
// whose body is read, for work that may outlast them (a model's answer,
// bounded by the model's own timeouts); the function it returns gives the
// answer WriteTimeout from when it is called.
func (h *httpAPI) awaitWork(w http.ResponseWriter) (answer func()) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	return func() { rc.SetWriteDeadline(time.Now().Add(h.opts.APILimits.WriteTimeout)) }
}

// extendDeadlines gives a request that waits on something other than its
// client (a long poll, a model) d more than the server's read and write
// timeouts: its context would otherwise end at the read timeout, and its
// answer could not be written after the write timeout.
func (h *httpAPI) extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	now := time.Now()
	rc.SetReadDeadline(now.Add(d + h.opts.APILimits.ReadTimeout))
	rc.SetWriteDeadline(now.Add(d + h.opts.APILimits.WriteTimeout))
}

func (h *httpAPI) handleAudit(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	a, err := h.node.Audit(id)
	if err != nil {
		h.writeJobError(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// MaxActionName bounds the name and detail of a recorded action.
const MaxActionName = 200

func (h *httpAPI) handleAction(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	if !h.admit(w, r, "recording an action") {
		return
	}
	var req api.ActionRequest
	if !h.decodeBody(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > MaxActionName || len(req.Detail) > 4*MaxActionName {
		writeError(w, http.StatusBadRequest, "invalid_action", fmt.Sprintf("an action needs a name of 1 to %d bytes", MaxActionName))
		return
	}
	e, err := h.node.RecordAction(id, h.clientIdentity(r), req)
	if err != nil {
		h.writeJobError(w, id, err)
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

// handleEvents streams events as Server-Sent Events: every event of the
// node (GET /v1/events) or of one job (GET /v1/jobs/{id}/events, which
// ends after the job's certificate). A stream starts at the next event
// unless the client asks for more (parseStreamStart): Last-Event-ID
// resumes after an event, replay=N or replay=all sends buffered events
// first, at most one page of them (APILimits.ReplayEvents and
// ReplayBytes); a stream with more to replay ends after its page, and the
// client resumes with Last-Event-ID. A stream ends on the first failed
// write and as soon as its client leaves. Events show the proof forming
// (claim hashes, stake per verdict, ballots) but never the answer text
// before it is final, so watching is not a read before proof.
func (h *httpAPI) handleEvents(w http.ResponseWriter, r *http.Request) {
	var job common.Hash
	if r.PathValue("id") != "" {
		var ok bool
		if job, ok = parseJobID(w, r); !ok {
			return
		}
		if _, err := h.node.Job(job); err != nil {
			h.writeJobError(w, job, err)
			return
		}
	}
	from, ok := parseStreamStart(w, r)
	if !ok {
		return
	}
	if !h.streams.acquire() {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too_many_streams",
			fmt.Sprintf("this node serves its maximum of %d event streams; retry later or use another node", h.opts.APILimits.MaxEventStreams))
		return
	}
	defer h.streams.release()
	limits := h.opts.APILimits
	s := &eventStream{w: w, rc: http.NewResponseController(w), job: job, writeTimeout: limits.WriteTimeout}
	// A stream outlives the server's read timeout: the server keeps
	// reading the connection only to learn when the client leaves, which
	// ends the request's context. Each write has its own deadline (send).
	s.rc.SetReadDeadline(time.Time{})
	backlog, more, sub := h.events.subscribe(job, from, replayPage{events: limits.ReplayEvents, bytes: limits.ReplayBytes})
	defer h.events.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !s.replay(backlog, more) {
		return
	}
	if job != (common.Hash{}) {
		// Final, and its certificate event not replayed (not asked for,
		// evicted, issued before a restart, or stored but not published
		// yet): send it from the store with id 0, after the events
		// published since the subscription. A gateway publishes a job's
		// other events before it stores the certificate, so none is
		// missing: each is in the backlog or queued.
		if c, err := h.store.Certificate(job); err == nil {
			s.finish(c, backlog, sub)
			return
		}
	}
	s.follow(r.Context(), h.ctx, sub)
}

// finish ends the stream of a job whose certificate c the store holds:
// the events queued on sub since the replay of backlog, then c's event
// from the store unless one of them was it.
func (s *eventStream) finish(c *consensus.Certificate, backlog []*hubEvent, sub *eventSub) {
	replayed := backlog
	var frames [][]byte
	for open := true; open; {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				open = false
				break
			}
			frames = append(frames, e.frames()...)
			if s.last(e) {
				s.send(frames...)
				return
			}
			replayed = append(replayed, e)
		default:
			open = false
		}
	}
	s.send(append(frames, storedCertificateFrame(c, replayed))...)
}

// storedCertificateFrame is the certificate.issued frame of a certificate
// read from the store, after the replayed events. Its time is the
// certificate's issue time, in whole milliseconds, or the last replayed
// event's if that is later: the certificate came after every event of its
// job, and a stream's times never go backwards.
func storedCertificateFrame(c *consensus.Certificate, replayed []*hubEvent) []byte {
	at := c.IssuedAt
	if n := len(replayed); n > 0 && replayed[n-1].at.After(at) {
		at = replayed[n-1].at
	}
	data, _ := json.Marshal(&api.CertificateIssuedData{Status: c.Status, Certificate: c})
	return encodeFrame(&Event{Type: api.EventCertificateIssued, JobID: c.JobID, Time: at, Data: data})
}

// eventStream is one client's stream of events.
type eventStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	job          common.Hash // zero: every job
	writeTimeout time.Duration
}

// send writes frames and flushes them within the write timeout; false ends
// the stream (the client left or stopped reading).
func (s *eventStream) send(frames ...[]byte) bool {
	s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	for _, f := range frames {
		if _, err := s.w.Write(f); err != nil {
			return false
		}
	}
	return s.rc.Flush() == nil
}

// last reports whether e ends the stream: the certificate of its job.
func (s *eventStream) last(e *hubEvent) bool {
	return s.job != (common.Hash{}) && e.typ == api.EventCertificateIssued
}

// replay sends the backlog; it reports whether the stream goes on (it
// does not after a page with more to come, or after the last event).
func (s *eventStream) replay(backlog []*hubEvent, more bool) bool {
	frames := make([][]byte, 0, len(backlog))
	done := more
	for _, e := range backlog {
		frames = append(frames, e.frames()...)
		if s.last(e) {
			done = true
			break
		}
	}
	return s.send(frames...) && !done
}

// follow sends new events as they come, and a keepalive when idle, until
// the last event, the client leaves (reqCtx) or the node stops (nodeCtx).
func (s *eventStream) follow(reqCtx, nodeCtx context.Context, sub *eventSub) {
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				return
			}
			var done bool
			batch, done = s.drain(batch[:0], e, sub)
			if !s.send(batch...) || done {
				return
			}
		case <-keepalive.C:
			if !s.send(keepaliveFrame) {
				return
			}
		case <-reqCtx.Done():
			return
		case <-nodeCtx.Done():
			return
		}
	}
}

// drain batches e with the events queued behind it: events come in bursts
// (a ballot, the claims it decides, the certificate), and what is queued
// goes in one write. done reports the stream's last event, or its end.
func (s *eventStream) drain(batch [][]byte, e *hubEvent, sub *eventSub) (_ [][]byte, done bool) {
	batch, done = append(batch, e.frames()...), s.last(e)
	for open, events := true, 1; open && !done && events < maxBatch; {
		select {
		case e, open = <-sub.ch:
			if open {
				batch, done = append(batch, e.frames()...), s.last(e)
				events++
			} else {
				done = true
			}
		default:
			open = false
		}
	}
	return batch, done
}

// maxBatch bounds the queued events a stream writes at once.
const maxBatch = 64

// keepaliveInterval is how often an idle stream gets a comment line.
const keepaliveInterval = 15 * time.Second

var keepaliveFrame = []byte(": keepalive\n\n")

// parseStreamStart reads where a stream starts: after the id in the
// Last-Event-ID header (else the query parameter last_event_id); else with
// the newest N buffered events of the stream for replay=N, every one for
// replay=all; else at the next event. It answers 400 itself when it cannot.
func parseStreamStart(w http.ResponseWriter, r *http.Request) (streamStart, bool) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last != "" {
		id, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_last_event_id", fmt.Sprintf("Last-Event-ID %q is not an event id", last))
			return streamStart{}, false
		}
		return streamStart{resume: true, afterID: id}, true
	}
	switch rs := r.URL.Query().Get("replay"); rs {
	case "", "0":
		return streamStart{}, true
	case "all":
		return streamStart{replay: replayAll}, true
	default:
		k, err := strconv.Atoi(rs)
		if err != nil || k < 0 {
			writeError(w, http.StatusBadRequest, "invalid_replay", fmt.Sprintf("replay %q: want a number of events or all", rs))
			return streamStart{}, false
		}
		return streamStart{replay: k}, true
	}
}

func (h *httpAPI) handleCertificate(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	c, err := h.store.Certificate(id)
	if err == nil {
		writeJSON(w, http.StatusOK, c)
		return
	}
	if !errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if _, err := h.store.Job(id); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown_job", "no job "+id.Hex()+" on this node")
		return
	}
	writeError(w, http.StatusConflict, "not_final", "job "+id.Hex()+" is still provisional: no certificate yet")
}

func (h *httpAPI) handleValidators(w http.ResponseWriter, r *http.Request) {
	stats, err := h.node.ValidatorStats()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	policy := h.set.Policy()
	writeJSON(w, http.StatusOK, api.Validators{
		NetworkID:   h.set.NetworkID(),
		GenesisHash: h.set.GenesisHash(),
		Policy:      &policy,
		TotalStake:  h.set.TotalStake(),
		Validators:  h.set.Validators(),
		Stats:       stats,
	})
}

func (h *httpAPI) handleEvidence(w http.ResponseWriter, r *http.Request) {
	ev, err := h.node.Evidence()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (h *httpAPI) handleHealth(w http.ResponseWriter, r *http.Request) {
	health := api.Health{
		Status:  "ready",
		Name:    h.opts.Name,
		Address: h.node.Address(),
		PeerID:  h.net.PeerID().String(),
		Peers:   len(h.net.Host().Network().Peers()),
	}
	if !h.node.Ready() {
		health.Status, health.Error, health.Message = "not_ready", "not_ready", "no gossip topic peers yet"
		writeJSON(w, http.StatusServiceUnavailable, health)
		return
	}
	writeJSON(w, http.StatusOK, health)
}

// httpStatus is the status code of a kind of request error: the one place
// the node's domain errors become HTTP.
func httpStatus(kind error) int {
	switch kind {
	case ErrInvalidRequest:
		return http.StatusBadRequest
	case ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrUnprocessable:
		return http.StatusUnprocessableEntity
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	case ErrDisabled:
		return http.StatusNotImplemented
	case ErrUpstream:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}
