//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/testtier"
	"github.com/verity-network/verity/testnet"
)

// postVerify submits output to a node's POST /v1/verify, with a deadline
// when deadlineMS is not 0, and returns the job id.
func postVerify(ctx context.Context, api, output string, deadlineMS int64) (common.Hash, error) {
	body, _ := json.Marshal(map[string]any{"output": output, "deadline_ms": deadlineMS})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v1/verify", bytes.NewReader(body))
	if err != nil {
		return common.Hash{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return common.Hash{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted {
		return common.Hash{}, fmt.Errorf("POST %s/v1/verify: %s: %s", api, resp.Status, data)
	}
	var job struct {
		JobID common.Hash `json:"job_id"`
	}
	if err := json.Unmarshal(data, &job); err != nil {
		return common.Hash{}, fmt.Errorf("POST /v1/verify answered %s: %w", data, err)
	}
	return job.JobID, nil
}

// pollCertificate asks a node for a job's certificate every 100ms until it
// answers 200 or ctx ends.
func pollCertificate(ctx context.Context, api string, id common.Hash) (*consensus.Certificate, error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/v1/jobs/"+id.Hex()+"/certificate", nil)
		if err != nil {
			return nil, err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, consensus.MaxCertificateSize+1))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return consensus.ParseCertificate(data)
			}
			last = resp.Status + ": " + strings.TrimSpace(string(data))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no certificate for %s at %s (last answer %s): %w", id.Hex(), api, last, ctx.Err())
		case <-t.C:
		}
	}
}

// shortCtx bounds one look at a node to 300ms.
func shortCtx(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	context.AfterFunc(c, cancel)
	return c
}

// waitFileContains polls a file until it contains want or ctx ends.
func waitFileContains(ctx context.Context, path, want string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never said %q: %w", path, want, ctx.Err())
		case <-t.C:
		}
	}
}

// TestRealProcessFaults runs the adversarial example manifest as real
// processes: 7 validators, a liar and an equivocator, the manifest's
// scheduled kill and restart of node3, and 60 jobs submitted across four
// gateways while one of them (node1) is cut off, SIGKILLed with jobs only
// it has seen, and restarted with verity testnet perturb. Every job must
// become final on its gateway with a certificate that verifies, and after
// the testnet stops, verity testnet check must pass and show the
// equivocator's evidence. TestLongRealProcessFaults runs 200 jobs.
func TestRealProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds verity and runs a 7-node testnet of real processes")
	}
	realProcessFaults(t, 60)
}

func TestLongRealProcessFaults(t *testing.T) {
	testtier.Long(t, "7 real processes, 200 jobs")
	realProcessFaults(t, 200)
}

// realProcessFaults submits jobs in four rounds: 40% across gateways
// node0, node1, node2 and node4; three to node1 alone while it is cut off;
// 25% to node0, node2 and node4 while node1 is down; the rest across all
// four after its restart.
func realProcessFaults(t *testing.T, total int) {
	began := time.Now()
	bin := buildVerity(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	manifest := filepath.Join("..", "..", "testnet", "examples", "adversarial.toml")
	code, out := runVerity(ctx, t, bin, "testnet", "init", "--manifest", manifest, "--dir", dir,
		"--base-port", strconv.Itoa(freeTestnetBase(t, 7)))
	if code != 0 {
		t.Fatalf("testnet init --manifest: exit %d\n%s", code, out)
	}
	for _, want := range []string{"liar", "equivocator", "2 perturbations"} {
		if !strings.Contains(out, want) {
			t.Errorf("testnet init output lacks %q:\n%s", want, out)
		}
	}
	layout, err := testnet.LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := consensus.LoadGenesis(layout.GenesisPath())
	if err != nil {
		t.Fatal(err)
	}
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}

	up := startVerity(t, bin, "testnet-up", "testnet", "up", "--dir", dir, "--timeout", "60s")
	up.waitLine(ctx, t, "testnet up: 7 nodes")
	upAt := time.Now()

	type job struct {
		gateway int
		id      common.Hash
		output  string
	}
	var jobs []job
	submit := func(gateways []int, n int, deadlineMS int64) {
		t.Helper()
		for range n {
			i := len(jobs)
			gw := gateways[i%len(gateways)]
			output := fmt.Sprintf("%d + %d = %d. Paris is the capital of France.", i, i, 2*i+i%5/4)
			id, err := postVerify(ctx, layout.Nodes[gw].API, output, deadlineMS)
			if err != nil {
				t.Fatalf("job %d: %v", i, err)
			}
			jobs = append(jobs, job{gw, id, output})
		}
	}
	perturb := func(node, action string) {
		t.Helper()
		code, out := runVerity(ctx, t, bin, "testnet", "perturb", "--dir", dir, node, action)
		if code != 0 {
			t.Fatalf("testnet perturb %s %s: exit %d\n%s", node, action, code, out)
		}
		t.Logf("+%s: %s", time.Since(upAt).Round(time.Millisecond), strings.TrimSpace(out))
	}
	first, down := total*2/5, total/4
	submit([]int{0, 1, 2, 4}, first, 0)
	// node1 is cut off from its peers, takes three jobs that no other node
	// can see, and is killed at once: those jobs are pending at the kill
	// whatever the machine's speed, and only node1's store can finish them
	// after its restart. Their 30s deadline outlasts the restart.
	perturb("node1", "disconnect")
	submit([]int{1}, 3, 30_000)
	heldBack := jobs[len(jobs)-3:]
	perturb("node1", "kill")
	pendingAtKill := 0
	for _, j := range jobs {
		if j.gateway != 1 {
			continue
		}
		withCert := false
		for _, n := range layout.Nodes {
			if n.Name == "node1" {
				continue
			}
			if c, err := pollCertificate(shortCtx(ctx), n.API, j.id); err == nil && c != nil {
				withCert = true
				if slices.ContainsFunc(heldBack, func(h job) bool { return h.id == j.id }) {
					t.Errorf("%s has a certificate of job %s, which only the cut-off node1 saw", n.Name, j.id.Hex())
				}
				break
			}
		}
		if !withCert {
			pendingAtKill++
		}
	}
	if pendingAtKill < len(heldBack) {
		t.Fatalf("%d of node1's jobs had no certificate on any other node after the kill, want at least %d", pendingAtKill, len(heldBack))
	}
	t.Logf("%d of node1's jobs had no certificate on any other node after the kill", pendingAtKill)
	submit([]int{0, 2, 4}, down, 0)
	perturb("node1", "restart")
	submit([]int{0, 1, 2, 4}, total-len(jobs), 0)
	if len(jobs) != total {
		t.Fatalf("%d jobs submitted, want %d", len(jobs), total)
	}

	statuses := map[consensus.Status]int{}
	for i, j := range jobs {
		c, err := pollCertificate(ctx, layout.Nodes[j.gateway].API, j.id)
		if err != nil {
			t.Fatalf("job %d (gateway node%d): %v", i, j.gateway, err)
		}
		if err := consensus.VerifyCertificate(c, set, []byte(j.output)); err != nil {
			t.Errorf("job %d: certificate does not verify: %v", i, err)
		}
		// Job i's sum is wrong exactly when i%5 == 4; no claim may be
		// decided against that (undecided is allowed).
		if wrong := i%5 == 4; (wrong && c.Status == consensus.StatusVerified) || (!wrong && c.Status == consensus.StatusRejected) {
			t.Errorf("job %d %q: certified %s against the truth", i, j.output, c.Status)
		}
		statuses[c.Status]++
	}
	t.Logf("+%s: %d jobs final on their gateways: %v", time.Since(upAt).Round(time.Millisecond), len(jobs), statuses)

	// The manifest's schedule kills node3 at +8s and restarts it at +14s.
	if err := waitFileContains(ctx, up.stderr, "restart node3 done"); err != nil {
		t.Fatal(err)
	}
	// A running testnet cannot be checked: its stores are locked.
	if code, out := runVerity(ctx, t, bin, "testnet", "check", "--dir", dir); code != 2 || !strings.Contains(out, "stop the testnet") {
		t.Errorf("check of a running testnet: exit %d, want 2 and a hint to stop it:\n%s", code, out)
	}
	if code := up.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("testnet up exited %d after SIGTERM, want 0; stderr:\n%s", code, up.stderrText())
	}
	stderr := up.stderrText()
	for _, want := range []string{"node1 (pid", "ended by a perturbation", "node1 restarted as pid", "perturbation +8s: kill node3", "schedule done"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("testnet up stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, n := range layout.Nodes {
		if _, err := os.Stat(filepath.Join(n.Home, testnet.PIDFile)); err == nil {
			t.Errorf("%s still has a pid file after testnet up stopped", n.Name)
		}
	}

	code, out = runVerity(ctx, t, bin, "testnet", "check", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("testnet check: exit %d\n%s", code, out)
	}
	var report testnet.Report
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("testnet check --json: %v\n%s", err, out)
	}
	gatewayJobs := 0
	for _, n := range report.Nodes {
		gatewayJobs += n.GatewayJobs
	}
	if gatewayJobs != len(jobs) {
		t.Errorf("stores hold %d gateway jobs, want %d", gatewayJobs, len(jobs))
	}
	var equivocator bool
	for _, e := range report.Evidence {
		if e.Name == "node6" && e.Jobs > 0 {
			equivocator = true
		} else {
			t.Errorf("evidence against %s (%s): only node6 equivocates", e.Name, e.Validator.Hex())
		}
	}
	if !equivocator {
		t.Errorf("no evidence against the equivocator node6 in any store: %+v", report.Evidence)
	}
	t.Logf("check: %d evidence summaries; whole test took %s", len(report.Evidence), time.Since(began).Round(time.Second))
}
