package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

var (
	trueFacts = []string{
		"Paris is the capital of France.",
		"Berlin is the capital of Germany.",
		"Water boils at 100 degrees Celsius at sea level.",
		"The Earth orbits the Sun.",
		"Mount Everest is the highest mountain on Earth.",
		"The Pacific is the largest ocean on Earth.",
		"Light travels faster than sound.",
		"Tokyo is the capital of Japan.",
		"The capital of Australia is Canberra.",
		"17 * 3 = 51.",
		"144 / 12 = 12.",
	}
	falseFacts = []string{
		"The Great Wall of China is visible from the Moon with the naked eye.",
		"The capital of Australia is Sydney.",
		"The Sun orbits the Earth.",
		"2 + 2 = 5.",
	}
)

// knownOutputs builds n outputs whose true status is known from the
// knowledge base and arithmetic.
func knownOutputs(n int) (outputs []string, want []consensus.Status) {
	for i := range n {
		var parts []string
		for k := range 1 + i%3 {
			parts = append(parts, trueFacts[(i*3+k)%len(trueFacts)])
		}
		status := consensus.StatusVerified
		if i%4 == 1 {
			parts = append(parts, falseFacts[i%len(falseFacts)])
			status = consensus.StatusRejected
		}
		outputs = append(outputs, strings.Join(parts, " "))
		want = append(want, status)
	}
	return outputs, want
}

func startNetwork(t *testing.T, nodes int) *testnet.Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: nodes, APIs: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start network: %v", err)
	}
	t.Cleanup(func() {
		if err := net.Stop(); err != nil {
			t.Errorf("stop network: %v", err)
		}
	})
	return net
}

func TestFiveNodesCertifyKnownOutputs(t *testing.T) {
	net := startNetwork(t, 5)
	nodes := net.Nodes()
	set := nodes[0].ValidatorSet()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	outputs, want := knownOutputs(20)
	jobs := make([]*api.Job, len(outputs))
	for i, out := range outputs {
		// Spread submissions over every node: each node is gateway of some jobs.
		cl := client.New(nodes[i%len(nodes)].APIURL())
		j, err := cl.Submit(ctx, api.VerifyRequest{Output: out})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		if j.Status != consensus.StatusProvisional {
			t.Fatalf("submit %d: status %q, want provisional", i, j.Status)
		}
		jobs[i] = j
	}
	for i, j := range jobs {
		cl := client.New(nodes[i%len(nodes)].APIURL())
		cert, err := cl.Await(ctx, j.JobID, set, client.AwaitOptions{Output: []byte(outputs[i])})
		if err != nil {
			t.Fatalf("await %d: %v", i, err)
		}
		if cert.Status != want[i] {
			t.Errorf("output %d %q: status %s, want %s", i, outputs[i], cert.Status, want[i])
		}
	}
	// Every node verifies and stores every certificate, with the same decisions.
	for i, j := range jobs {
		var first *consensus.Certificate
		for _, nd := range nodes {
			c, err := nd.WaitFinal(ctx, j.JobID)
			if err != nil {
				t.Fatalf("job %d on %s: %v", i, nd.Name(), err)
			}
			if err := consensus.VerifyCertificate(c, set, []byte(outputs[i])); err != nil {
				t.Fatalf("job %d on %s: %v", i, nd.Name(), err)
			}
			if first == nil {
				first = c
				continue
			}
			if c.Status != first.Status {
				t.Errorf("job %d: %s has %s, another node %s", i, nd.Name(), c.Status, first.Status)
			}
			for k := range c.Claims {
				if c.Claims[k].Verdict != first.Claims[k].Verdict {
					t.Errorf("job %d claim %d: nodes disagree", i, k)
				}
			}
		}
	}
}

func TestAPIErrors(t *testing.T) {
	net := startNetwork(t, 2)
	base := net.Nodes()[0].APIURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"malformed json", "POST", "/v1/verify", "application/json", `{"output": `, 400, "invalid_json"},
		{"wrong type", "POST", "/v1/verify", "application/json", `{"output": 5}`, 400, "invalid_json"},
		{"unknown field", "POST", "/v1/verify", "application/json", `{"output": "a", "x": 1}`, 400, "invalid_json"},
		{"empty output", "POST", "/v1/verify", "application/json", `{"output": "  "}`, 400, "empty_output"},
		{"bad quorum", "POST", "/v1/verify", "application/json", `{"output": "Paris is the capital of France.", "quorum": "1/3"}`, 400, "invalid_quorum"},
		{"unsupported media type", "POST", "/v1/verify", "text/plain", `output`, 415, "unsupported_media_type"},
		{"body too large", "POST", "/v1/verify", "application/json", `{"output": "` + strings.Repeat("a", 2<<20) + `"}`, 413, "body_too_large"},
		{"unknown job", "GET", "/v1/jobs/0x" + strings.Repeat("ab", 32), "", "", 404, "unknown_job"},
		{"unknown job certificate", "GET", "/v1/jobs/0x" + strings.Repeat("ab", 32) + "/certificate", "", "", 404, "unknown_job"},
		{"malformed job id", "GET", "/v1/jobs/xyz", "", "", 400, "invalid_job_id"},
		{"no route", "GET", "/v2/nothing", "", "", 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := doRequest(t, ctx, tc.method, base+tc.path, tc.contentType, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, body)
			}
			if !strings.Contains(body, fmt.Sprintf("%q: %q", "error", tc.code)) {
				t.Fatalf("body %s lacks error code %q", body, tc.code)
			}
		})
	}
}

// TestSubmitLimits: an output full of characters JSON would HTML-escape
// (each < > & into six bytes) still travels as a job and gathers ballots,
// and a huge deadline is refused rather than wrapped into a negative one.
func TestSubmitLimits(t *testing.T) {
	net := startNetwork(t, 2)
	nd := net.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "Claim %d is %s. ", i, strings.Repeat("<&>", 600))
	}
	j, err := nd.Submit(ctx, api.VerifyRequest{Output: b.String()})
	if err != nil {
		t.Fatal(err)
	}
	// node1 stores a job when the job message reaches it.
	for {
		// A job view built from a certificate alone has no submission time.
		if v, err := net.Nodes()[1].Job(j.JobID); err == nil && !v.SubmittedAt.IsZero() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the job message never reached node1")
		case <-time.After(10 * time.Millisecond):
		}
	}
	_, err = nd.Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: 1<<63 - 1})
	var re *node.RequestError
	if !errors.As(err, &re) || re.Code != "invalid_deadline" {
		t.Fatalf("huge deadline: %v", err)
	}
}
