package models

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeServer is a local OpenAI-compatible /v1/chat/completions endpoint.
// Each request is answered by the next reply in the script (the last one
// repeats), or by the handler when one is set.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	script   []reply
	handler  func(w http.ResponseWriter, r *http.Request, req recordedRequest)
	requests []recordedRequest
}

// reply is one scripted answer.
type reply struct {
	status  int
	body    string
	headers map[string]string
}

// recordedRequest is what the fake server received.
type recordedRequest struct {
	Method        string
	Path          string
	Authorization string
	ContentType   string
	Body          map[string]any
	Messages      []Message
	Model         string
}

func newFakeServer(t *testing.T, script ...reply) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// url is the base URL a client is configured with.
func (f *fakeServer) url() string { return f.srv.URL + "/v1" }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	rec := recordedRequest{
		Method:        r.Method,
		Path:          r.URL.Path,
		Authorization: r.Header.Get("Authorization"),
		ContentType:   r.Header.Get("Content-Type"),
	}
	_ = json.Unmarshal(data, &rec.Body)
	var typed struct {
		Model    string    `json:"model"`
		Messages []Message `json:"messages"`
	}
	_ = json.Unmarshal(data, &typed)
	rec.Model, rec.Messages = typed.Model, typed.Messages

	f.mu.Lock()
	f.requests = append(f.requests, rec)
	h := f.handler
	var rp reply
	if h == nil && len(f.script) > 0 {
		rp = f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
	}
	f.mu.Unlock()

	if h != nil {
		h(w, r, rec)
		return
	}
	for k, v := range rp.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	_, _ = io.WriteString(w, rp.body)
}

func (f *fakeServer) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

// completion is a real-shaped chat completion body whose first choice says content.
func completion(content string) string {
	b, _ := json.Marshal(map[string]any{
		"id":      "chatcmpl-test",
		"object":  "chat.completion",
		"created": 1700000000,
		"model":   "test-model",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content},
			"finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
	})
	return string(b)
}

func ok(content string) reply { return reply{status: 200, body: completion(content)} }

// apiErrorBody is an OpenAI error object.
func apiErrorBody(msg, typ, code string) string {
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":%q}}`, msg, typ, code)
}

// sleepRecorder replaces the retry wait: it records each wait and returns
// at once (or with ctx's error when ctx has ended).
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// newTestClient is a client of f with a recording sleep.
func newTestClient(t *testing.T, f *fakeServer, cfg ChatConfig, opts ...ClientOption) (*ChatClient, *sleepRecorder) {
	t.Helper()
	cfg.BaseURL = f.url()
	if cfg.Model == "" {
		cfg.Model = "test-model"
	}
	s := &sleepRecorder{}
	c, err := NewChatClient(cfg, append([]ClientOption{WithSleep(s.sleep)}, opts...)...)
	if err != nil {
		t.Fatalf("NewChatClient: %v", err)
	}
	return c, s
}

// testCtx is a context bounded well below the test timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
