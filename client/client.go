// Package client talks to a Verity node's HTTP API.
//
// Waiting for proof is the default: Await returns only a final certificate
// that it has verified against the validator set. Provisional data is only
// available through the explicitly named ReadProvisional.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
)

// Client is safe for concurrent use.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with no overall
// timeout; waits are bounded by contexts).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithToken sends a bearer token with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a client of the node API at baseURL, e.g. http://127.0.0.1:27600.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// APIError is a non-2xx answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the node's Retry-After (429 rate_limited), if any.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("api: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("api: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// maxResponseBytes bounds a node's answer: a job view holds a certificate
// (at most consensus.MaxCertificateSize) besides its output and claims.
const maxResponseBytes = consensus.MaxCertificateSize + 1<<20

// ErrNotFinal is returned by Certificate while the job is provisional.
var ErrNotFinal = errors.New("job is still provisional")

// ErrUnverified is wrapped by Await when the node's certificate fails
// verification against the validator set.
var ErrUnverified = errors.New("certificate failed verification")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		// Best effort, for the code and message only: the answer is an
		// error whatever the body says.
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			ae.Code, ae.Message = e.Code, e.Message
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
			ae.RetryAfter = time.Duration(secs) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	// What the node answers is decoded strictly, as everything from a
	// peer: a duplicated or case-variant member is refused, not guessed.
	if err := strictjson.Decode(data, out, maxResponseBytes); err != nil {
		return fmt.Errorf("api: decode %s %s: %w", method, path, err)
	}
	return nil
}

// Submit sends an output for verification. The answer is provisional: its
// Status is "provisional" and it carries no proof. Call Await for the proof.
func (c *Client) Submit(ctx context.Context, req api.VerifyRequest) (*api.Job, error) {
	var j api.Job
	if err := c.do(ctx, http.MethodPost, "/v1/verify", req, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Generate asks the node to answer a prompt with its generator and submits
// the answer for verification. The answer (Output) is provisional; call
// Await for its proof.
func (c *Client) Generate(ctx context.Context, req api.GenerateRequest) (*api.Job, error) {
	var j api.Job
	if err := c.do(ctx, http.MethodPost, "/v1/generate", req, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// ReadProvisional returns the job as the node holds it now, which may be
// provisional: nothing in it is proven unless Status is final AND its
// certificate verifies. Prefer Await.
func (c *Client) ReadProvisional(ctx context.Context, id common.Hash) (*api.Job, error) {
	return c.job(ctx, id, 0, false)
}

// ReadProvisionalWait is ReadProvisional after waiting up to wait for the
// job to become final (a long poll). The answer may still be provisional.
func (c *Client) ReadProvisionalWait(ctx context.Context, id common.Hash, wait time.Duration) (*api.Job, error) {
	return c.job(ctx, id, wait, false)
}

// job reads a job; strict asks the node to withhold provisional data
// (409 not_final) so that waiting never counts as a read before proof.
func (c *Client) job(ctx context.Context, id common.Hash, wait time.Duration, strict bool) (*api.Job, error) {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	if strict {
		q.Set("require", "final")
	}
	path := "/v1/jobs/" + id.Hex()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var j api.Job
	if err := c.do(ctx, http.MethodGet, path, nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Certificate returns the job's certificate, unverified, or ErrNotFinal.
func (c *Client) Certificate(ctx context.Context, id common.Hash) (*consensus.Certificate, error) {
	var cert consensus.Certificate
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+id.Hex()+"/certificate", nil, &cert)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "not_final" {
		return nil, ErrNotFinal
	}
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// Validators returns the node's validator set, checked against its stated
// genesis hash. To trust nothing the node says, load genesis.json instead.
func (c *Client) Validators(ctx context.Context) (*consensus.ValidatorSet, error) {
	var v api.Validators
	if err := c.do(ctx, http.MethodGet, "/v1/validators", nil, &v); err != nil {
		return nil, err
	}
	return v.ValidatorSet()
}

// Evidence returns the equivocation evidence the node holds and the
// penalty records it makes. Each record can be checked offline with
// consensus.Evidence.Verify.
func (c *Client) Evidence(ctx context.Context) (*api.EvidenceList, error) {
	var e api.EvidenceList
	if err := c.do(ctx, http.MethodGet, "/v1/evidence", nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Health returns the node's readiness.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var h api.Health
	err := c.do(ctx, http.MethodGet, "/healthz", nil, &h)
	return &h, err
}

// AwaitOptions tune Await.
type AwaitOptions struct {
	// Poll is how long each long-poll request holds (default 30s).
	Poll time.Duration
	// Output, when set, must hash to the certificate's output hash.
	Output []byte
}

// Await waits until the job is final and returns its certificate only after
// verifying it against set (and the output, when given). It never returns
// provisional or unverified data as final: on a certificate that fails
// verification it returns an error wrapping ErrUnverified. It waits with
// strict long polls, so the node never hands it provisional data and its
// waiting is not recorded as a read before proof. ctx bounds the wait; use
// Watch alongside to show progress.
func (c *Client) Await(ctx context.Context, id common.Hash, set *consensus.ValidatorSet, o AwaitOptions) (*consensus.Certificate, error) {
	if o.Poll <= 0 {
		o.Poll = 30 * time.Second
	}
	for {
		wait := o.Poll
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = max(left, time.Millisecond)
			}
		}
		j, err := c.job(ctx, id, wait, true)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Code == "not_final":
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if !j.Status.Final() || j.Certificate == nil {
			return nil, fmt.Errorf("%w: node answered status %q without a certificate", ErrUnverified, j.Status)
		}
		if j.Certificate.JobID != id {
			return nil, fmt.Errorf("%w: certificate is for job %s", ErrUnverified, j.Certificate.JobID.Hex())
		}
		if err := consensus.VerifyCertificate(j.Certificate, set, o.Output); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnverified, err)
		}
		return j.Certificate, nil
	}
}
