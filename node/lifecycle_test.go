package node_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/models"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// gatedVerifier says true to every claim, but only once its gate opens, so
// a test can hold a job provisional for as long as it needs.
type gatedVerifier struct {
	gate <-chan struct{}
}

func (g gatedVerifier) Verify(ctx context.Context, c claims.Claim) claims.Verdict {
	select {
	case <-g.gate:
		return claims.True
	case <-ctx.Done():
		return claims.Abstain
	}
}

func startGated(t *testing.T, nodes int) (*testnet.Network, func()) {
	t.Helper()
	return startGatedWith(t, nodes, nil)
}

// startGatedWith is startGated with options set on each node.
func startGatedWith(t *testing.T, nodes int, options func(i int, o *node.Options)) (*testnet.Network, func()) {
	t.Helper()
	gate := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: nodes, APIs: true, Dir: t.TempDir(),
		Verifier: func(int) node.Verifier { return gatedVerifier{gate: gate} },
		Options:  options,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Stop() })
	var once sync.Once
	return net, func() { once.Do(func() { close(gate) }) }
}

const answer = "Paris is the capital of France. Berlin is the capital of Germany."

func TestProvisionalUntilProven(t *testing.T) {
	net, release := startGated(t, 3)
	nd := net.Nodes()[0]
	cl := client.New(nd.APIURL(), client.WithToken(""))
	set := nd.ValidatorSet()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	job, err := cl.Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != consensus.StatusProvisional {
		t.Fatalf("status %s, want provisional", job.Status)
	}

	// While provisional: the certificate route answers 409, strict mode
	// withholds the answer, a long poll that ends shows provisional.
	if _, err := cl.Certificate(ctx, job.JobID); !errors.Is(err, client.ErrNotFinal) {
		t.Fatalf("certificate while provisional: %v, want ErrNotFinal", err)
	}
	for _, strict := range []func(*http.Request){
		func(r *http.Request) { q := r.URL.Query(); q.Set("require", "final"); r.URL.RawQuery = q.Encode() },
		func(r *http.Request) { r.Header.Set("Verity-Require", "final") },
	} {
		req, _ := http.NewRequestWithContext(ctx, "GET", nd.APIURL()+"/v1/jobs/"+job.JobID.Hex(), nil)
		strict(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusConflict || strings.Contains(body, "Paris") || !strings.Contains(body, "not_final") {
			t.Fatalf("strict read while provisional: %d %s", resp.StatusCode, body)
		}
	}
	// One provisional read (recorded) and one action before proof.
	v, err := cl.ReadProvisional(ctx, job.JobID)
	if err != nil || v.Status != consensus.StatusProvisional || v.Output != answer {
		t.Fatalf("provisional read: %v %+v", err, v)
	}
	if len(v.Progress) != 2 {
		t.Fatalf("progress of %d claims, want 2", len(v.Progress))
	}
	if e, err := cl.RecordAction(ctx, job.JobID, api.ActionRequest{Name: "published"}); err != nil || !e.BeforeProof {
		t.Fatalf("action before proof: %v %+v", err, e)
	}

	// A long poll in flight returns once the certificate exists.
	polled := make(chan *api.Job, 1)
	go func() {
		j, err := client.New(nd.APIURL()).ReadProvisionalWait(ctx, job.JobID, time.Minute)
		if err != nil {
			t.Error(err)
		}
		polled <- j
	}()
	release()
	cert, err := cl.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(answer)})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Status != consensus.StatusVerified {
		t.Fatalf("status %s", cert.Status)
	}
	select {
	case j := <-polled:
		if j == nil || j.Status != consensus.StatusVerified || j.Certificate == nil {
			t.Fatalf("long poll returned %+v", j)
		}
	case <-ctx.Done():
		t.Fatal("long poll did not return after the certificate")
	}

	// After proof: strict reads succeed; an action is not before proof.
	req, _ := http.NewRequestWithContext(ctx, "GET", nd.APIURL()+"/v1/jobs/"+job.JobID.Hex()+"?require=final", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "Paris") {
		t.Fatalf("strict read after proof: %d %s", resp.StatusCode, body)
	}
	if e, err := cl.RecordAction(ctx, job.JobID, api.ActionRequest{Name: "archived"}); err != nil || e.BeforeProof {
		t.Fatalf("action after proof: %v %+v", err, e)
	}

	// The audit flags exactly the one read and the one action before proof.
	a, err := cl.Audit(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if a.ReadsBeforeProof != 1 || a.ActionsBeforeProof != 1 || a.ActionsOnRejected != 0 {
		t.Fatalf("audit counts: %+v", a)
	}
	var kinds []string
	for _, e := range a.Entries {
		k := e.Kind
		if e.BeforeProof {
			k += "!"
		}
		kinds = append(kinds, k)
	}
	got := strings.Join(kinds, " ")
	if !strings.HasPrefix(got, "submitted read! action! ballot") || !strings.HasSuffix(got, "certificate action") {
		t.Fatalf("timeline %q", got)
	}
	if strings.Count(got, "ballot") != 3 {
		t.Fatalf("timeline %q: want 3 ballots", got)
	}
}

func TestWatchResumesWithLastEventID(t *testing.T) {
	net, release := startGated(t, 3)
	nd := net.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client.New(nd.APIURL())
	job, err := cl.Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	// Read the first events, then drop the connection.
	wctx, wcancel := context.WithCancel(ctx)
	events, _ := cl.Watch(wctx, job.JobID)
	var seen []api.Event
	for e := range events {
		seen = append(seen, e)
		if e.Type == api.EventClaimsExtracted {
			break
		}
	}
	wcancel()
	for range events {
	}
	release()
	if _, err := cl.Await(ctx, job.JobID, nd.ValidatorSet(), client.AwaitOptions{}); err != nil {
		t.Fatal(err)
	}
	// Reconnect with the last id seen: exactly the rest, nothing twice.
	rest, errc := cl.WatchAll(ctx, seen[len(seen)-1].ID)
	var ids []uint64
	for _, e := range seen {
		ids = append(ids, e.ID)
	}
	for e := range rest {
		if e.JobID != job.JobID {
			continue
		}
		ids = append(ids, e.ID)
		if e.Type == api.EventCertificateIssued {
			break
		}
	}
	cancel()
	<-errc
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("event ids %v: gap or repeat", ids)
		}
	}
	// job.accepted, claims.extracted, 3 ballots, 2 claim decisions, certificate.
	if len(ids) != 8 {
		t.Fatalf("%d events %v, want 8", len(ids), ids)
	}
}

func TestAwaitRefusesUnverifiedCertificate(t *testing.T) {
	net := startNetwork(t, 3)
	nd := net.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client.New(nd.APIURL())
	job, err := cl.Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Await(ctx, job.JobID, nd.ValidatorSet(), client.AwaitOptions{}); err != nil {
		t.Fatal(err)
	}
	// A proxy that flips one verdict in every answer.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, nd.APIURL()+r.URL.RequestURI(), r.Body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		body := strings.Replace(readAll(t, resp), `"verdict": "true"`, `"verdict": "false"`, 1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write([]byte(body))
	}))
	defer proxy.Close()
	_, err = client.New(proxy.URL).Await(ctx, job.JobID, nd.ValidatorSet(), client.AwaitOptions{})
	if !errors.Is(err, client.ErrUnverified) {
		t.Fatalf("Await through a lying proxy: %v, want ErrUnverified", err)
	}
	// And a certificate for another output is refused too.
	_, err = cl.Await(ctx, job.JobID, nd.ValidatorSet(), client.AwaitOptions{Output: []byte("something else")})
	if !errors.Is(err, client.ErrUnverified) || !errors.Is(err, consensus.ErrOutputHash) {
		t.Fatalf("Await with the wrong output: %v", err)
	}
}

func TestGenerateThenProve(t *testing.T) {
	gen, err := models.NewGenerator(models.Spec{Kind: models.KindSimulated, HallucinationRate: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 3, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			if i == 0 {
				o.Generator = gen
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	nodes := net.Nodes()
	job, err := client.New(nodes[0].APIURL()).Generate(ctx, api.GenerateRequest{Prompt: "Tell me about the Sun and the Earth."})
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != consensus.StatusProvisional || job.Output == "" || len(job.Claims) != 3 {
		t.Fatalf("generate answered %+v", job)
	}
	cert, err := client.New(nodes[0].APIURL()).Await(ctx, job.JobID, nodes[0].ValidatorSet(), client.AwaitOptions{Output: []byte(job.Output)})
	if err != nil {
		t.Fatal(err)
	}
	// The simulated model's hallucination ("The Sun orbits the Earth.") is
	// rejected; the true sentences are verified.
	if cert.Status != consensus.StatusRejected || cert.Claims[0].Verdict != consensus.OutcomeFalse ||
		cert.Claims[1].Verdict != consensus.OutcomeTrue || cert.Claims[2].Verdict != consensus.OutcomeTrue {
		t.Fatalf("certificate %s: %+v", cert.Status, cert.Claims)
	}
	// Handing out the generated answer is a read before proof, recorded.
	a, err := client.New(nodes[0].APIURL()).Audit(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if a.ReadsBeforeProof != 1 {
		t.Fatalf("audit of a generated answer: %d reads before proof, want 1", a.ReadsBeforeProof)
	}
	// In strict mode the answer is withheld from the 202.
	status, body := doRequest(t, ctx, "POST", nodes[0].APIURL()+"/v1/generate?require=final", "application/json",
		`{"prompt": "Tell me about the Sun and the Earth."}`)
	if status != http.StatusAccepted || strings.Contains(body, "orbits") || !strings.Contains(body, `"status": "provisional"`) {
		t.Fatalf("strict generate: %d %s", status, body)
	}
	checkSchema(t, "#/components/schemas/Job", body)
	// A node without a generator says so.
	_, err = client.New(nodes[1].APIURL()).Generate(ctx, api.GenerateRequest{Prompt: "Anything?"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotImplemented || ae.Code != "generate_disabled" {
		t.Fatalf("generate on a node without generator: %v", err)
	}
}

// TestProvisionalReadsRateLimited: every read of a provisional answer is
// written to the audit trail, so reads count against the client's rate and
// cannot flood the store. The bucket refills at one request a second, so
// that however slowly this machine makes the 300 reads, the burst runs out.
func TestProvisionalReadsRateLimited(t *testing.T) {
	const rate, burst, reads = 1, 100, 300
	net, release := startGatedWith(t, 2, func(_ int, o *node.Options) { o.RateLimit, o.RateBurst = rate, burst })
	defer release()
	nd := net.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	job, err := client.New(nd.APIURL()).Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for range reads {
		status, _ := doRequest(t, ctx, "GET", nd.APIURL()+"/v1/jobs/"+job.JobID.Hex(), "", "")
		if status == http.StatusTooManyRequests {
			limited++
		}
	}
	elapsed := time.Since(began)
	a, err := client.New(nd.APIURL()).Audit(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	// At most the burst, less the submission, plus what the bucket refilled
	// while the reads ran.
	allowed := burst - 1 + int(rate*elapsed.Seconds()) + 1
	if limited == 0 || a.ReadsBeforeProof+limited != reads || a.ReadsBeforeProof > allowed {
		t.Fatalf("in %v: %d reads recorded (at most %d allowed), %d refused with 429", elapsed, a.ReadsBeforeProof, allowed, limited)
	}
}
