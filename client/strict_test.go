package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/internal/strictjson"
)

var strictJobID = common.HexToHash("0x01")

// answering serves every request with status and body.
func answering(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestResponsesStrict: a node's answer that another client could read
// differently is refused, naming the key; an error answer is still read
// for its code alone.
func TestResponsesStrict(t *testing.T) {
	job := `"job_id":"` + strictJobID.Hex() + `","status":"verified"`
	tests := []struct {
		name   string
		status int
		body   string
		want   string
		sent   error
	}{
		{"duplicate status", 200, `{` + job + `,"status":"rejected"}`, `duplicate key "status"`, strictjson.ErrInvalid},
		{"case-variant status", 200, `{` + job + `,"Status":"rejected"}`, `unknown key "Status"`, strictjson.ErrInvalid},
		{"duplicate verdict in the certificate", 200, `{` + job + `,"certificate":{"claims":[{"verdict":"true","verdict":"false"}]}}`,
			`duplicate key "verdict" in /certificate/claims/0`, strictjson.ErrInvalid},
		{"trailing data", 200, `{` + job + `} {}`, "trailing data", strictjson.ErrInvalid},
		{"too large", 200, `{` + job + `}` + strings.Repeat(" ", 9<<20), "larger than", strictjson.ErrTooLarge},
		{"error answer with an unknown member", 409, `{"error":"not_final","message":"wait","hint":1}`, "not_final", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.New(answering(t, tt.status, tt.body).URL)
			_, err := c.ReadProvisional(context.Background(), strictJobID)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.sent != nil && !errors.Is(err, tt.sent) {
				t.Fatalf("%v: want %v", err, tt.sent)
			}
			var ae *client.APIError
			if tt.sent == nil && (!errors.As(err, &ae) || ae.Code != tt.want) {
				t.Fatalf("%v: want an APIError with code %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: want %q in it", err, tt.want)
			}
		})
	}
}

// TestWatchStrict: an event that another client could read differently
// ends the stream with an error naming the key, without reconnecting to
// read it again.
func TestWatchStrict(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 1\ndata: {\"id\":1,\"type\":\"job.submitted\",\"type\":\"certificate.issued\",\"job_id\":%q,\"time\":\"2026-01-02T03:04:05Z\",\"data\":{}}\n\n", strictJobID.Hex())
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, errc := client.New(srv.URL).Watch(ctx, strictJobID)
	for e := range events {
		t.Errorf("event %+v delivered", e)
	}
	err := <-errc
	if !errors.Is(err, strictjson.ErrInvalid) || !strings.Contains(err.Error(), `duplicate key "type"`) {
		t.Fatalf("%v: want an error naming the duplicate key", err)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests: the stream reconnected to read the bad event again", n)
	}
}
