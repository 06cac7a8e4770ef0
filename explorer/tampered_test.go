package explorer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/explorer"
)

// stubNode serves the explorer and just enough of the node API for one
// final job, whose certificate it takes as given: a node that lies.
func stubNode(t *testing.T, genesis *consensus.Genesis, cert map[string]any, output string) *httptest.Server {
	t.Helper()
	id := cert["job_id"].(string)
	issued := cert["issued_at"].(string)
	var total uint64
	for _, v := range genesis.Validators {
		total += v.Stake
	}
	policy := genesis.EffectivePolicy()
	validators := api.Validators{NetworkID: genesis.NetworkID, GenesisHash: genesis.Hash(), Policy: &policy, TotalStake: total, Validators: genesis.Validators}
	event, err := json.Marshal(map[string]any{
		"id": 1, "type": "certificate.issued", "job_id": id, "time": issued,
		"data": map[string]any{"status": cert["status"], "certificate": cert},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	sse := func(w http.ResponseWriter, r *http.Request, end bool) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: 1\nevent: certificate.issued\ndata: %s\n\n", event)
		w.(http.Flusher).Flush()
		if !end {
			// Held open like a node's stream, until the page leaves or
			// the stub stops.
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}
	}
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	page := explorer.Handler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET "+explorer.Prefix, page)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "ready", "name": "stub"})
	})
	mux.HandleFunc("GET /v1/validators", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, validators) })
	mux.HandleFunc("GET /v1/evidence", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"evidence": []any{}, "penalties": []any{}})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) { sse(w, r, false) })
	mux.HandleFunc("GET /v1/jobs/{id}/events", func(w http.ResponseWriter, r *http.Request) { sse(w, r, true) })
	mux.HandleFunc("GET /v1/jobs/{id}/certificate", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, cert) })
	mux.HandleFunc("GET /v1/jobs/{id}/audit", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"job_id": id, "status": cert["status"], "entries": []any{}})
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"job_id": id, "status": cert["status"], "output": output, "gateway": cert["gateway"],
			"quorum": cert["quorum"], "final_at": issued, "certificate": cert,
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(stop)
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// TestExplorerTamperedCertificate serves the page a certificate from the
// test vectors, as is and then tampered in ways a lying node could try, and
// checks that the page's own verification accepts the first and shows each
// tampered one as failing, naming what is wrong, whatever the node says.
func TestExplorerTamperedCertificate(t *testing.T) {
	b := newBrowser(t)
	dir := filepath.Join("..", "testdata", "certs")
	genesis, err := consensus.LoadGenesis(filepath.Join(dir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	output, err := os.ReadFile(filepath.Join(dir, "output.txt"))
	if err != nil {
		t.Fatal(err)
	}
	load := func() map[string]any {
		data, err := os.ReadFile(filepath.Join(dir, "valid.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	ballot := func(c map[string]any, i int) map[string]any { return c["ballots"].([]any)[i].(map[string]any) }
	claim := func(c map[string]any, i int) map[string]any { return c["claims"].([]any)[i].(map[string]any) }

	for _, tc := range []struct {
		name   string
		tamper func(c map[string]any)
		output string
		result string // data-result of the verification panel
		want   string // in the headline
		check  string // the check shown failed
	}{
		{name: "untouched", tamper: func(map[string]any) {}, result: "ok", want: "verified in this browser: REJECTED, final"},
		{
			name:   "a ballot's verdict flipped",
			tamper: func(c map[string]any) { ballot(c, 0)["verdicts"].([]any)[2] = 1 },
			result: "fail", want: "ballot 0: the EIP-712 signature recovers to", check: "ballots",
		},
		{
			name: "a claim's verdict and status restated",
			tamper: func(c map[string]any) {
				claim(c, 2)["verdict"] = "true"
				c["status"] = "verified"
			},
			result: "fail", want: "the gateway signature recovers to", check: "gateway",
		},
		{
			name:   "a claim's text changed",
			tamper: func(c map[string]any) { claim(c, 0)["text"] = "Lyon is the capital of France." },
			result: "fail", want: "claim 0: its text hashes to", check: "claims",
		},
		{
			name:   "another answer under the certificate",
			tamper: func(map[string]any) {},
			output: "Berlin is the capital of France.",
			result: "fail", want: "the output the node shows hashes to", check: "claims",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := load()
			tc.tamper(cert)
			out := string(output)
			if tc.output != "" {
				out = tc.output
			}
			srv := stubNode(t, genesis, cert, out)
			id := strings.ToLower(cert["job_id"].(string))
			b := b.on(t)
			// Leave the stub before it stops (cleanups run last first),
			// so that its event stream ends cleanly.
			t.Cleanup(func() { b.run("leave the page", chromedp.Navigate("about:blank")) })
			b.run("open the job", chromedp.Navigate(fmt.Sprintf("%s/?t=%d#/job/%s", srv.URL, time.Now().UnixNano(), id)))
			b.waitFor("the verification result", fmt.Sprintf(`#verify[data-result="%s"]`, tc.result))
			if got := b.text("#verify-headline"); !strings.Contains(got, tc.want) {
				t.Errorf("headline %q, want it to contain %q", got, tc.want)
			}
			if tc.check != "" {
				if n := b.count(fmt.Sprintf(`#verify li.bad[data-check="%s"]`, tc.check)); n != 1 {
					t.Errorf("the failed check %q is not shown", tc.check)
				}
				if got := b.text(`#verify-headline`); !strings.Contains(got, "FAILED") {
					t.Errorf("headline %q does not say FAILED", got)
				}
			}
		})
	}
	if errs := b.pageErrors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
