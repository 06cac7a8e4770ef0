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

func (n *Node) view(rec *store.Job, m *JobMessage) *api.Job {
	v := &api.Job{
		JobID:       m.JobID,
		Status:      rec.Status,
		OutputHash:  m.OutputHash,
		ClaimsRoot:  m.ClaimsRoot,
		Claims:      m.ClaimList(),
		Output:      rec.Output,
		Prompt:      rec.Prompt,
		Quorum:      m.Quorum,
		Replication: m.Replication,
		Gateway:     m.Gateway,
		SubmittedAt: rec.SubmittedAt,
		Deadline:    rec.Deadline,
	}
	if !rec.FinalAt.IsZero() {
		t := rec.FinalAt
		v.FinalAt = &t
	}
	return v
}

// ErrUnknownJob is returned for a job id this node has never seen.
var ErrUnknownJob = errors.New("unknown job")

// Job returns what this node knows of a job: its status, its progress while
// this node tallies it, and its certificate once final.
func (n *Node) Job(id common.Hash) (*api.Job, error) {
	cert, certErr := n.store.Certificate(id)
	if certErr != nil && !errors.Is(certErr, store.ErrNotFound) {
		return nil, certErr
	}
	rec, err := n.store.Job(id)
	switch {
	case errors.Is(err, store.ErrNotFound) && cert != nil:
		return certView(cert), nil
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrUnknownJob
	case err != nil:
		return nil, err
	}
	var m JobMessage
	if err := strictjson.Decode(rec.Message, &m, maxStoredJobMessageSize); err != nil {
		return nil, fmt.Errorf("stored job %s: %w", id.Hex(), err)
	}
	v := n.view(rec, &m)
	if cert != nil {
		v.Status = cert.Status
		v.Certificate = cert
		return v, nil
	}
	n.mu.Lock()
	if j, ok := n.agg[id]; ok {
		v.Progress = j.tally.Progress()
	}
	n.mu.Unlock()
	return v, nil
}

func certView(c *consensus.Certificate) *api.Job {
	cs := make([]claims.Claim, len(c.Claims))
	for i, cl := range c.Claims {
		cs[i] = claims.Claim{Index: cl.Index, Text: cl.Text, Hash: cl.Hash}
	}
	return &api.Job{
		JobID: c.JobID, Status: c.Status, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot,
		Claims: cs, Quorum: c.Quorum, Replication: c.Replication, Certificate: c,
	}
}

// Certificate returns the stored certificate of a job.
func (n *Node) Certificate(id common.Hash) (*consensus.Certificate, error) {
	return n.store.Certificate(id)
}

// Route is one HTTP API route.
type Route struct {
	Method, Path string
	handler      http.HandlerFunc
}

// Routes lists every route of the API; docs/openapi.json documents each.
func (n *Node) Routes() []Route {
	return []Route{
		{"POST", "/v1/verify", n.handleVerify},
		{"POST", "/v1/generate", n.handleGenerate},
		{"GET", "/v1/jobs/{id}", n.handleJob},
		{"GET", "/v1/jobs/{id}/certificate", n.handleCertificate},
		{"GET", "/v1/jobs/{id}/events", n.handleEvents},
		{"GET", "/v1/jobs/{id}/audit", n.handleAudit},
		{"POST", "/v1/jobs/{id}/actions", n.handleAction},
		{"GET", "/v1/events", n.handleEvents},
		{"GET", "/v1/validators", n.handleValidators},
		{"GET", "/v1/evidence", n.handleEvidence},
		{"GET", "/healthz", n.handleHealth},
		{"POST", "/v1/admin/p2p", n.handleAdminP2P},
		{"GET", "/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP},
	}
}

// Handler is the node's HTTP API.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range n.Routes() {
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
func (n *Node) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("content type %q: send application/json", ct))
			return false
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, n.opts.MaxBodyBytes)
	err := strictjson.DecodeReader(r.Body, v, int(n.opts.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig) || errors.Is(err, strictjson.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", n.opts.MaxBodyBytes))
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, "body_timeout", fmt.Sprintf("request body not received within %s", n.opts.APILimits.ReadTimeout))
	default:
		writeError(w, http.StatusBadRequest, "invalid_json", "request body: "+err.Error())
	}
	return false
}

func (n *Node) handleVerify(w http.ResponseWriter, r *http.Request) {
	if !n.admit(w, r, "submitting") {
		return
	}
	var req api.VerifyRequest
	if !n.decodeBody(w, r, &req) {
		return
	}
	answer := n.awaitWork(w) // decomposing may ask a model
	v, err := n.Submit(r.Context(), req)
	answer()
	if err != nil {
		n.writeRequestError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}

// writeRequestError answers a *RequestError with the status of its kind
// (httpStatus), anything else with 500.
func (n *Node) writeRequestError(w http.ResponseWriter, err error) {
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

func (n *Node) writeJobError(w http.ResponseWriter, id common.Hash, err error) {
	if errors.Is(err, ErrUnknownJob) {
		writeError(w, http.StatusNotFound, "unknown_job", "no job "+id.Hex()+" on this node")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal", err.Error())
}

func (n *Node) handleJob(w http.ResponseWriter, r *http.Request) {
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
		if _, err := n.Job(id); err == nil {
			d = min(d, MaxWait)
			n.extendDeadlines(w, d)
			ctx, cancel := context.WithTimeout(r.Context(), d)
			n.WaitFinal(ctx, id) // on timeout, answer with the current state
			cancel()
		}
	}
	v, err := n.Job(id)
	if err != nil {
		n.writeJobError(w, id, err)
		return
	}
	if !v.Status.Final() {
		if requireFinal(r) {
			writeError(w, http.StatusConflict, "not_final", "job "+id.Hex()+" is still provisional; the answer is withheld until it is final")
			return
		}
		// Each such read is written to the audit trail: it counts against
		// the client's rate like a POST, so reads cannot flood the store.
		if !n.rateLimit(w, r) {
			return
		}
		n.recordRead(id, n.clientIdentity(r), "GET /v1/jobs/{id}")
	}
	writeJSON(w, http.StatusOK, v)
}

// MaxWait bounds the ?wait= of a long poll.
const MaxWait = 5 * time.Minute

// awaitWork lifts the server's read and write deadlines off a request
// whose body is read, for work that may outlast them (a model's answer,
// bounded by the model's own timeouts); the function it returns gives the
// answer WriteTimeout from when it is called.
func (n *Node) awaitWork(w http.ResponseWriter) (answer func()) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	return func() { rc.SetWriteDeadline(time.Now().Add(n.opts.APILimits.WriteTimeout)) }
}

// extendDeadlines gives a request that waits on something other than its
// client (a long poll, a model) d more than the server's read and write
// timeouts: its context would otherwise end at the read timeout, and its
// answer could not be written after the write timeout.
func (n *Node) extendDeadlines(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	now := time.Now()
	rc.SetReadDeadline(now.Add(d + n.opts.APILimits.ReadTimeout))
	rc.SetWriteDeadline(now.Add(d + n.opts.APILimits.WriteTimeout))
}

func (n *Node) handleAudit(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	a, err := n.Audit(id)
	if err != nil {
		n.writeJobError(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// MaxActionName bounds the name and detail of a recorded action.
const MaxActionName = 200

func (n *Node) handleAction(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	if !n.admit(w, r, "recording an action") {
		return
	}
	var req api.ActionRequest
	if !n.decodeBody(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > MaxActionName || len(req.Detail) > 4*MaxActionName {
		writeError(w, http.StatusBadRequest, "invalid_action", fmt.Sprintf("an action needs a name of 1 to %d bytes", MaxActionName))
		return
	}
	e, err := n.RecordAction(id, n.clientIdentity(r), req)
	if err != nil {
		n.writeJobError(w, id, err)
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
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	var job common.Hash
	if r.PathValue("id") != "" {
		var ok bool
		if job, ok = parseJobID(w, r); !ok {
			return
		}
		if _, err := n.Job(job); err != nil {
			n.writeJobError(w, job, err)
			return
		}
	}
	from, ok := parseStreamStart(w, r)
	if !ok {
		return
	}
	if !n.streams.acquire() {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too_many_streams",
			fmt.Sprintf("this node serves its maximum of %d event streams; retry later or use another node", n.opts.APILimits.MaxEventStreams))
		return
	}
	defer n.streams.release()
	limits := n.opts.APILimits
	rc := http.NewResponseController(w)
	// A stream outlives the server's read timeout: the server keeps
	// reading the connection only to learn when the client leaves, which
	// ends the request's context. Each write has its own deadline below.
	rc.SetReadDeadline(time.Time{})
	backlog, more, sub := n.events.subscribe(job, from, replayPage{events: limits.ReplayEvents, bytes: limits.ReplayBytes})
	defer n.events.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// send writes frames and flushes them within WriteTimeout; false ends
	// the stream (the client left or stopped reading).
	send := func(frames ...[]byte) bool {
		rc.SetWriteDeadline(time.Now().Add(limits.WriteTimeout))
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	last := func(e *hubEvent) bool { return job != (common.Hash{}) && e.typ == api.EventCertificateIssued }
	frames := make([][]byte, 0, len(backlog))
	done := more
	for _, e := range backlog {
		frames = append(frames, e.frame)
		if last(e) {
			done = true
			break
		}
	}
	if !send(frames...) || done {
		return
	}
	if job != (common.Hash{}) {
		// Final, and its certificate event not replayed (not asked for,
		// evicted, or issued before a restart): send it from the store
		// with id 0.
		if c, err := n.store.Certificate(job); err == nil {
			data, _ := json.Marshal(&api.CertificateIssuedData{Status: c.Status, Certificate: c})
			send(encodeFrame(&Event{Type: api.EventCertificateIssued, JobID: job, Time: c.IssuedAt, Data: data}))
			return
		}
	}
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				return
			}
			// Events come in bursts (a ballot, the claims it decides,
			// the certificate): what is queued goes in one write.
			batch, done = append(batch[:0], e.frame), last(e)
			for open := true; open && !done && len(batch) < maxBatch; {
				select {
				case e, open = <-sub.ch:
					if open {
						batch, done = append(batch, e.frame), last(e)
					} else {
						done = true
					}
				default:
					open = false
				}
			}
			if !send(batch...) || done {
				return
			}
		case <-keepalive.C:
			if !send(keepaliveFrame) {
				return
			}
		case <-r.Context().Done():
			return
		case <-n.ctx.Done():
			return
		}
	}
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

func (n *Node) handleCertificate(w http.ResponseWriter, r *http.Request) {
	id, ok := parseJobID(w, r)
	if !ok {
		return
	}
	c, err := n.store.Certificate(id)
	if err == nil {
		writeJSON(w, http.StatusOK, c)
		return
	}
	if !errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	if _, err := n.store.Job(id); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown_job", "no job "+id.Hex()+" on this node")
		return
	}
	writeError(w, http.StatusConflict, "not_final", "job "+id.Hex()+" is still provisional: no certificate yet")
}

func (n *Node) handleValidators(w http.ResponseWriter, r *http.Request) {
	stats, err := n.ValidatorStats()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	policy := n.set.Policy()
	writeJSON(w, http.StatusOK, api.Validators{
		NetworkID:   n.set.NetworkID(),
		GenesisHash: n.set.GenesisHash(),
		Policy:      &policy,
		TotalStake:  n.set.TotalStake(),
		Validators:  n.set.Validators(),
		Stats:       stats,
	})
}

func (n *Node) handleEvidence(w http.ResponseWriter, r *http.Request) {
	ev, err := n.Evidence()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	h := api.Health{
		Status:  "ready",
		Name:    n.opts.Name,
		Address: n.Address(),
		PeerID:  n.net.PeerID().String(),
		Peers:   len(n.net.Host().Network().Peers()),
	}
	if !n.Ready() {
		h.Status, h.Error, h.Message = "not_ready", "not_ready", "no gossip topic peers yet"
		writeJSON(w, http.StatusServiceUnavailable, h)
		return
	}
	writeJSON(w, http.StatusOK, h)
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
