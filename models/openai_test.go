package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

const testKeyEnv = "VERITY_MODELS_TEST_KEY"

func TestCompleteSendsOpenAIRequest(t *testing.T) {
	t.Setenv(testKeyEnv, "sk-test-secret-123")
	f := newFakeServer(t, ok("Paris is the capital of France."))
	c, _ := newTestClient(t, f, ChatConfig{Model: "qwen2.5-7b-instruct", APIKeyEnv: testKeyEnv})

	msgs := []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "What is the capital of France?"}}
	got, err := c.Complete(testCtx(t), msgs, CompleteOptions{Temperature: 0, MaxTokens: 64})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if got != "Paris is the capital of France." {
		t.Fatalf("content = %q", got)
	}
	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" {
		t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.Path)
	}
	if r.Authorization != "Bearer sk-test-secret-123" {
		t.Errorf("Authorization = %q", r.Authorization)
	}
	if r.ContentType != "application/json" {
		t.Errorf("Content-Type = %q", r.ContentType)
	}
	if r.Model != "qwen2.5-7b-instruct" {
		t.Errorf("model = %q", r.Model)
	}
	if fmt.Sprint(r.Messages) != fmt.Sprint(msgs) {
		t.Errorf("messages = %v, want %v", r.Messages, msgs)
	}
	if s, present := r.Body["stream"]; !present || s != false {
		t.Errorf("stream = %v (present %v), want false", s, present)
	}
	if tmp, present := r.Body["temperature"]; !present || tmp != 0.0 {
		t.Errorf("temperature = %v (present %v), want 0", tmp, present)
	}
	if mt := r.Body["max_tokens"]; mt != 64.0 {
		t.Errorf("max_tokens = %v, want 64", mt)
	}
}

func TestClientPrintsNoKey(t *testing.T) {
	t.Setenv(testKeyEnv, "sk-do-not-print")
	c, err := NewChatClient(ChatConfig{BaseURL: "http://127.0.0.1:1/v1", Model: "m", APIKeyEnv: testKeyEnv})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, c); strings.Contains(s, "sk-do-not-print") {
			t.Errorf("%s prints the key: %s", verb, s)
		}
	}
	// A refused connection: the error names the endpoint, never the key.
	_, err = c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	if err == nil || strings.Contains(err.Error(), "sk-do-not-print") {
		t.Errorf("err = %v", err)
	}
}

func TestCompleteWithoutKeySendsNoAuthorization(t *testing.T) {
	f := newFakeServer(t, ok("yes"))
	c, _ := newTestClient(t, f, ChatConfig{})
	if _, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "hi"}}, CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := f.recorded()[0]
	if r.Authorization != "" {
		t.Errorf("Authorization = %q, want none", r.Authorization)
	}
	if _, present := r.Body["max_tokens"]; present {
		t.Errorf("max_tokens sent although unset")
	}
}

func TestNewChatClientConfig(t *testing.T) {
	t.Setenv(testKeyEnv, "")
	cases := []struct {
		name string
		cfg  ChatConfig
		want error
	}{
		{"key variable unset", ChatConfig{BaseURL: "http://127.0.0.1:8000/v1", Model: "m", APIKeyEnv: testKeyEnv}, ErrNoAPIKey},
		{"no model", ChatConfig{BaseURL: "http://127.0.0.1:8000/v1"}, ErrConfig},
		{"not a url", ChatConfig{BaseURL: "127.0.0.1:8000", Model: "m"}, ErrConfig},
		{"ftp scheme", ChatConfig{BaseURL: "ftp://host/v1", Model: "m"}, ErrConfig},
		{"credentials in url", ChatConfig{BaseURL: "http://user:pw@host/v1", Model: "m"}, ErrConfig},
		{"negative retries", ChatConfig{BaseURL: "http://host/v1", Model: "m", MaxRetries: -1}, ErrConfig},
		{"negative concurrency", ChatConfig{BaseURL: "http://host/v1", Model: "m", MaxConcurrency: -1}, ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewChatClient(tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	c, err := NewChatClient(ChatConfig{BaseURL: "http://127.0.0.1:8000/v1/", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != "http://127.0.0.1:8000/v1/chat/completions" {
		t.Errorf("endpoint = %q", c.Endpoint())
	}
}

func TestCompleteErrorRepliesAreTypedAndNotRetried(t *testing.T) {
	cases := []struct {
		name               string
		status             int
		body               string
		wantMsg, wantType  string
		wantCode           string
		wantErrStringParts []string
	}{
		{"400 invalid request", 400, apiErrorBody("'messages' must not be empty", "invalid_request_error", "invalid_value"),
			"'messages' must not be empty", "invalid_request_error", "invalid_value", []string{"http 400", "invalid_request_error"}},
		{"401 bad key", 401, apiErrorBody("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
			"Incorrect API key provided.", "invalid_request_error", "invalid_api_key", []string{"http 401", "invalid_api_key"}},
		{"404 numeric code", 404, `{"error":{"message":"model not found","type":"NotFoundError","code":404}}`,
			"model not found", "NotFoundError", "404", []string{"http 404"}},
		{"422 plain text", 422, "unprocessable\n entity",
			"unprocessable entity", "", "", []string{"http 422", "unprocessable entity"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(testKeyEnv, "sk-never-shown")
			f := newFakeServer(t, reply{status: tc.status, body: tc.body}, ok("must not be reached"))
			c, sl := newTestClient(t, f, ChatConfig{APIKeyEnv: testKeyEnv, MaxRetries: 3})
			_, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if ae.StatusCode != tc.status || ae.Message != tc.wantMsg || ae.Type != tc.wantType || ae.Code != tc.wantCode {
				t.Errorf("APIError = %+v", *ae)
			}
			if ae.Retryable() {
				t.Errorf("%d reported retryable", tc.status)
			}
			for _, p := range tc.wantErrStringParts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
			if strings.Contains(err.Error(), "sk-never-shown") {
				t.Errorf("error reveals the api key: %q", err)
			}
			if n := len(f.recorded()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
			if w := sl.recorded(); len(w) != 0 {
				t.Errorf("waited %v, want no wait", w)
			}
		})
	}
}

func TestCompleteRetriesRateLimit(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"seconds", "3", 3 * time.Second},
		{"http date", now.Add(4 * time.Second).Format(http.TimeFormat), 4 * time.Second},
		{"absent uses backoff", "", DefaultBaseBackoff},
		{"malformed uses backoff", "soon", DefaultBaseBackoff},
		{"capped by max backoff", "3600", 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.retryAfter != "" {
				h["Retry-After"] = tc.retryAfter
			}
			f := newFakeServer(t,
				reply{status: 429, body: apiErrorBody("Rate limit reached", "requests", "rate_limit_exceeded"), headers: h},
				ok("done"))
			c, sl := newTestClient(t, f, ChatConfig{MaxRetries: 2}, WithClock(func() time.Time { return now }), WithBackoff(DefaultBaseBackoff, 5*time.Second))
			got, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
			if err != nil || got != "done" {
				t.Fatalf("Complete = %q, %v", got, err)
			}
			if w := sl.recorded(); len(w) != 1 || w[0] != tc.want {
				t.Errorf("waits = %v, want [%v]", w, tc.want)
			}
			if n := len(f.recorded()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func TestCompleteRetriesServerErrorsWithBackoff(t *testing.T) {
	f := newFakeServer(t,
		reply{status: 500, body: apiErrorBody("internal", "server_error", "")},
		reply{status: 502, body: "<html>bad gateway</html>"},
		reply{status: 503, body: ""},
		ok("finally"))
	c, sl := newTestClient(t, f, ChatConfig{MaxRetries: 3}, WithBackoff(100*time.Millisecond, time.Second))
	got, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	if err != nil || got != "finally" {
		t.Fatalf("Complete = %q, %v", got, err)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if w := sl.recorded(); fmt.Sprint(w) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", w, want)
	}
}

func TestCompleteGivesUpAfterMaxRetries(t *testing.T) {
	f := newFakeServer(t, reply{status: 500, body: apiErrorBody("overloaded", "server_error", "")})
	c, sl := newTestClient(t, f, ChatConfig{MaxRetries: 2}, WithBackoff(time.Second, 1500*time.Millisecond))
	_, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Message != "overloaded" {
		t.Fatalf("err = %v, want the last 500", err)
	}
	if n := len(f.recorded()); n != 3 {
		t.Errorf("%d requests, want 3 (1 + 2 retries)", n)
	}
	want := []time.Duration{time.Second, 1500 * time.Millisecond} // second wait capped
	if w := sl.recorded(); fmt.Sprint(w) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", w, want)
	}
}

func TestCompleteDoesNotStartAWaitPastTheDeadline(t *testing.T) {
	f := newFakeServer(t,
		reply{status: 429, body: apiErrorBody("slow down", "requests", ""), headers: map[string]string{"Retry-After": "20"}},
		ok("unreached"))
	c, sl := newTestClient(t, f, ChatConfig{MaxRetries: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.RetryAfter != 20*time.Second {
		t.Fatalf("err = %v, want the 429 with its Retry-After", err)
	}
	if w := sl.recorded(); len(w) != 0 {
		t.Errorf("waited %v, want no wait", w)
	}
}

func TestCompleteRejectsMalformedReplies(t *testing.T) {
	cases := []struct {
		name string
		body string
	}{
		{"not json", `{"choices": [`},
		{"html", `<html>hello</html>`},
		{"no choices", `{"id":"x","choices":[]}`},
		{"null content", `{"choices":[{"index":0,"message":{"role":"assistant","content":null}}]}`},
		{"choices not an array", `{"choices":{"message":{"content":"x"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t, reply{status: 200, body: tc.body}, ok("unreached"))
			c, _ := newTestClient(t, f, ChatConfig{MaxRetries: 3})
			_, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("err = %v, want ErrMalformedResponse", err)
			}
			if n := len(f.recorded()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestCompleteErrorObjectWithStatus200(t *testing.T) {
	f := newFakeServer(t, reply{status: 200, body: apiErrorBody("context length exceeded", "invalid_request_error", "context_length_exceeded")})
	c, _ := newTestClient(t, f, ChatConfig{})
	_, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "context_length_exceeded" {
		t.Fatalf("err = %v, want *APIError context_length_exceeded", err)
	}
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// hold answers only when the client gives up or release is closed.
func hold(release <-chan struct{}) func(http.ResponseWriter, *http.Request, recordedRequest) {
	return func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		select {
		case <-r.Context().Done():
		case <-release:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, completion("late"))
		}
	}
}

func TestCompleteAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeServer(t)
	f.handler = hold(release)
	// Attempts are counted as the client sends them: on a busy machine an
	// attempt may time out before its request reaches the server.
	attempts := &countingTransport{rt: f.srv.Client().Transport}
	c, sl := newTestClient(t, f, ChatConfig{Timeout: 50 * time.Millisecond, MaxRetries: 1}, WithHTTPClient(&http.Client{Transport: attempts}))
	_, err := c.Complete(testCtx(t), []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if n := attempts.n.Load(); n != 2 {
		t.Errorf("%d attempts, want 2 (a timed-out attempt is retried once)", n)
	}
	if n := len(f.recorded()); n > 2 {
		t.Errorf("the server received %d requests, more than the 2 attempts", n)
	}
	if w := sl.recorded(); len(w) != 1 {
		t.Errorf("waits = %v, want one", w)
	}
}

func TestCompleteHonoursCallerCancellation(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeServer(t)
	f.handler = hold(release)
	c, sl := newTestClient(t, f, ChatConfig{MaxRetries: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry once the caller is done)", n)
	}
	if w := sl.recorded(); len(w) != 0 {
		t.Errorf("waits = %v, want none", w)
	}
}

// TestConcurrencyLimitAtServer counts requests in flight at the fake server
// while every request is held until the limit is reached.
func TestConcurrencyLimitAtServer(t *testing.T) {
	const limit, calls = 3, 12
	var inflight, peak atomic.Int64
	full := make(chan struct{})
	var fullOnce sync.Once
	release := make(chan struct{})
	f := newFakeServer(t)
	f.handler = func(w http.ResponseWriter, r *http.Request, _ recordedRequest) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n >= limit {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, completion("ok"))
	}
	c, _ := newTestClient(t, f, ChatConfig{MaxConcurrency: limit})
	ctx := testCtx(t)
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, CompleteOptions{})
			errs <- err
		}()
	}
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatal("the limit was never reached")
	}
	close(release)
	for range calls {
		if err := <-errs; err != nil {
			t.Errorf("Complete: %v", err)
		}
	}
	if p := peak.Load(); p != limit {
		t.Errorf("peak in flight = %d, want %d", p, limit)
	}
	if n := len(f.recorded()); n != calls {
		t.Errorf("%d requests, want %d", n, calls)
	}
}

// blockingTransport answers in memory once release is closed, counting the
// round trips in flight.
type blockingTransport struct {
	release  chan struct{}
	inflight atomic.Int64
}

func (b *blockingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	select {
	case <-b.release:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(completion("ok"))),
		Request:    r,
	}, nil
}

// TestConcurrencyLimitExact checks the limit exactly: once every goroutine
// is blocked, exactly the limit is in flight and the rest wait for a slot.
func TestConcurrencyLimitExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, calls = 2, 9
		tr := &blockingTransport{release: make(chan struct{})}
		c, err := NewChatClient(ChatConfig{BaseURL: "http://model.invalid/v1", Model: "m", MaxConcurrency: limit},
			WithHTTPClient(&http.Client{Transport: tr}))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range calls {
			wg.Go(func() {
				if _, err := c.Complete(context.Background(), []Message{{Role: "user", Content: "x"}}, CompleteOptions{}); err != nil {
					failed.Add(1)
				}
			})
		}
		synctest.Wait()
		if n := tr.inflight.Load(); n != limit {
			t.Errorf("in flight = %d, want %d", n, limit)
		}
		close(tr.release)
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Errorf("%d calls failed", n)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"12", 12 * time.Second},
		{" 5 ", 5 * time.Second},
		{"-3", 0},
		{"1.5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"tomorrow", 0},
	}
	for _, tc := range cases {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
