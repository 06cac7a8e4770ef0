package models

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of a ChatClient whose config leaves a field at zero.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConcurrency = 4
	DefaultMaxBackoff     = 30 * time.Second
	DefaultBaseBackoff    = 500 * time.Millisecond
	// MaxResponseBytes bounds the body read from the server.
	MaxResponseBytes = 4 << 20
)

// Errors of the chat client. Returned errors wrap these; test with errors.Is.
// A server's error reply is an *APIError instead (use errors.As).
var (
	// ErrConfig is returned for a client configuration that cannot work.
	ErrConfig = errors.New("models: invalid configuration")
	// ErrNoAPIKey is returned when the configured key variable is unset or empty.
	ErrNoAPIKey = errors.New("models: api key environment variable is not set")
	// ErrMalformedResponse is returned for a reply that is not a chat
	// completion: invalid JSON, no choices, no message content, too large.
	ErrMalformedResponse = errors.New("models: malformed chat completion response")
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// CompleteOptions are the sampling parameters of one request.
type CompleteOptions struct {
	// Temperature is sent as is, zero included.
	Temperature float64
	// MaxTokens bounds the reply; zero leaves it to the server.
	MaxTokens int
}

// ChatConfig configures a ChatClient.
type ChatConfig struct {
	// BaseURL is the API root, for example http://127.0.0.1:8000/v1; the
	// client POSTs to BaseURL + "/chat/completions".
	BaseURL string
	// Model is the model name sent with every request.
	Model string
	// APIKeyEnv names the environment variable holding the API key. Empty
	// means no key (typical of a local server); named but unset is an error.
	APIKeyEnv string
	// Timeout bounds each HTTP attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt, on 429,
	// 5xx and transport errors only; zero means none.
	MaxRetries int
	// MaxConcurrency bounds the requests in flight at once through this
	// client; zero means DefaultMaxConcurrency.
	MaxConcurrency int
}

// ChatClient calls an OpenAI-compatible /chat/completions endpoint. It is
// safe for concurrent use; at most MaxConcurrency requests are in flight at
// once. The API key is held in memory only and never appears in errors.
type ChatClient struct {
	endpoint    string
	model       string
	apiKey      string
	timeout     time.Duration
	maxRetries  int
	sem         chan struct{}
	http        *http.Client
	sleep       func(ctx context.Context, d time.Duration) error
	now         func() time.Time
	baseBackoff time.Duration
	maxBackoff  time.Duration
}

// ClientOption adjusts a ChatClient.
type ClientOption func(*ChatClient)

// WithHTTPClient sets the HTTP client (default: a client with no overall
// timeout; each attempt is bounded by the configured Timeout).
func WithHTTPClient(c *http.Client) ClientOption {
	return func(cc *ChatClient) { cc.http = c }
}

// WithSleep sets the function that waits between attempts. It must return
// early with ctx's error when ctx ends. The default waits on a timer.
func WithSleep(f func(ctx context.Context, d time.Duration) error) ClientOption {
	return func(cc *ChatClient) { cc.sleep = f }
}

// WithClock sets the clock used to turn an HTTP-date Retry-After into a wait.
func WithClock(now func() time.Time) ClientOption {
	return func(cc *ChatClient) { cc.now = now }
}

// WithBackoff sets the first 5xx backoff (doubled on each retry) and the cap
// on any wait between attempts, Retry-After included.
func WithBackoff(base, max time.Duration) ClientOption {
	return func(cc *ChatClient) { cc.baseBackoff, cc.maxBackoff = base, max }
}

// NewChatClient checks cfg, reads the API key from the environment and
// returns a client.
func NewChatClient(cfg ChatConfig, opts ...ClientOption) (*ChatClient, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base url %q must be an http or https url", ErrConfig, cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: base url must not carry credentials, a query or a fragment", ErrConfig)
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, fmt.Errorf("%w: model is empty", ErrConfig)
	}
	if cfg.Timeout < 0 || cfg.MaxRetries < 0 || cfg.MaxConcurrency < 0 {
		return nil, fmt.Errorf("%w: timeout, max retries and max concurrency must not be negative", ErrConfig)
	}
	c := &ChatClient{
		endpoint:    strings.TrimRight(u.String(), "/") + "/chat/completions",
		model:       cfg.Model,
		timeout:     cfg.Timeout,
		maxRetries:  cfg.MaxRetries,
		http:        &http.Client{},
		sleep:       sleepCtx,
		now:         time.Now,
		baseBackoff: DefaultBaseBackoff,
		maxBackoff:  DefaultMaxBackoff,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	n := cfg.MaxConcurrency
	if n == 0 {
		n = DefaultMaxConcurrency
	}
	c.sem = make(chan struct{}, n)
	if cfg.APIKeyEnv != "" {
		c.apiKey = strings.TrimSpace(os.Getenv(cfg.APIKeyEnv))
		if c.apiKey == "" {
			return nil, fmt.Errorf("%w: %s", ErrNoAPIKey, cfg.APIKeyEnv)
		}
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil || c.sleep == nil || c.now == nil || c.baseBackoff <= 0 || c.maxBackoff < c.baseBackoff {
		return nil, fmt.Errorf("%w: bad client option", ErrConfig)
	}
	return c, nil
}

// String describes the client without its API key, so that printing a
// client with any fmt verb cannot leak the key.
func (c *ChatClient) String() string {
	return fmt.Sprintf("ChatClient{endpoint: %s, model: %s, key: %t}", c.endpoint, c.model, c.apiKey != "")
}

// GoString is String, for the %#v verb.
func (c *ChatClient) GoString() string { return c.String() }

// Model is the configured model name.
func (c *ChatClient) Model() string { return c.model }

// Endpoint is the URL requests are sent to.
func (c *ChatClient) Endpoint() string { return c.endpoint }

// APIError is an error reply from the server: its HTTP status and, when the
// body is an OpenAI error object {"error": {"message", "type", "code"}}, its
// fields. Otherwise Message holds the start of the body.
type APIError struct {
	StatusCode int
	Message    string
	Type       string
	Code       string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chat completions: http %d", e.StatusCode)
	if e.Type != "" {
		fmt.Fprintf(&b, " %s", e.Type)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Retryable reports whether the request may succeed if sent again: rate
// limiting (429) and server errors (5xx). Other 4xx replies are final.
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Stream      bool      `json:"stream"`
	Temperature float64   `json:"temperature"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Error *errorObject `json:"error"`
}

type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// code renders the code field, which servers send as a string, a number or null.
func (o *errorObject) code() string {
	var s string
	if json.Unmarshal(o.Code, &s) == nil {
		return s
	}
	if len(o.Code) == 0 || string(o.Code) == "null" {
		return ""
	}
	return string(o.Code)
}

// Complete sends messages and returns the content of the first choice. Each
// attempt is bounded by the client's Timeout and the whole call by ctx. It
// retries up to MaxRetries times: after a 429 it waits for Retry-After
// (seconds or an HTTP date) or else the backoff; after a 5xx or a transport
// error it waits an exponential backoff (base, 2·base, 4·base, ...). Waits
// are capped by the maximum backoff, and a wait that would pass ctx's
// deadline is not started. Any other error reply is returned at once as an
// *APIError; a reply that is not a chat completion wraps ErrMalformedResponse.
func (c *ChatClient) Complete(ctx context.Context, messages []Message, opts CompleteOptions) (string, error) {
	if len(messages) == 0 {
		return "", fmt.Errorf("%w: no messages", ErrConfig)
	}
	body, err := json.Marshal(chatRequest{
		Model:       c.model,
		Messages:    messages,
		Stream:      false,
		Temperature: opts.Temperature,
		MaxTokens:   opts.MaxTokens,
	})
	if err != nil {
		return "", fmt.Errorf("chat completions: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		out, err := c.attempt(ctx, body)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("chat completions: %w", context.Cause(ctx))
		}
		wait, retry := c.retryWait(err, attempt)
		if !retry || attempt >= c.maxRetries {
			return "", err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return "", fmt.Errorf("%w (a retry in %s would pass the deadline)", err, wait)
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return "", fmt.Errorf("chat completions: waiting to retry: %w", serr)
		}
	}
}

// transportError marks a failure to get any reply (connection refused or
// reset, attempt timeout); such an attempt is retried. Its text names the
// URL, which holds no secret: NewChatClient refuses credentials and queries
// in the base URL, and the key travels in a header.
type transportError struct{ err error }

func (e *transportError) Error() string { return "chat completions: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryWait says whether err is worth a retry and how long to wait first.
func (c *ChatClient) retryWait(err error, attempt int) (time.Duration, bool) {
	backoff := c.baseBackoff << min(attempt, 30)
	if backoff <= 0 || backoff > c.maxBackoff {
		backoff = c.maxBackoff
	}
	var te *transportError
	if errors.As(err, &te) {
		return backoff, true
	}
	var ae *APIError
	if !errors.As(err, &ae) || !ae.Retryable() {
		return 0, false
	}
	if ae.RetryAfter > 0 {
		return min(ae.RetryAfter, c.maxBackoff), true
	}
	return backoff, true
}

// attempt sends one request while holding a concurrency slot.
func (c *ChatClient) attempt(ctx context.Context, body []byte) (string, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("chat completions: waiting for a request slot: %w", context.Cause(ctx))
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("chat completions: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", &transportError{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return "", &transportError{err: fmt.Errorf("read response: %w", err)}
	}
	if len(data) > MaxResponseBytes {
		return "", fmt.Errorf("%w: body exceeds %d bytes", ErrMalformedResponse, MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", c.apiError(resp, data)
	}
	return parseCompletion(resp.StatusCode, data)
}

func (c *ChatClient) apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	var body struct {
		Error *errorObject `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != nil {
		e.Message, e.Type, e.Code = body.Error.Message, body.Error.Type, body.Error.code()
		return e
	}
	e.Message = snippet(data)
	return e
}

// parseCompletion reads choices[0].message.content from a 2xx body.
func parseCompletion(status int, data []byte) (string, error) {
	var r chatResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	if r.Error != nil {
		return "", &APIError{StatusCode: status, Message: r.Error.Message, Type: r.Error.Type, Code: r.Error.code()}
	}
	if len(r.Choices) == 0 {
		return "", fmt.Errorf("%w: no choices", ErrMalformedResponse)
	}
	if r.Choices[0].Message.Content == nil {
		return "", fmt.Errorf("%w: first choice has no message content", ErrMalformedResponse)
	}
	return *r.Choices[0].Message.Content, nil
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// It returns zero for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// snippet is the start of a non-JSON error body, on one line.
func snippet(data []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(data), "")), " ")
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "..."
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
