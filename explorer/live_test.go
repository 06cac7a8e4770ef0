package explorer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

// gatedVerifier judges claims like the default backend, but only once the
// test opens its gate: the job stays provisional exactly as long as the
// test needs to look at it.
type gatedVerifier struct {
	inner claims.Verifier
	gate  <-chan struct{}
}

func (g gatedVerifier) Verify(ctx context.Context, c claims.Claim) claims.Verdict {
	select {
	case <-g.gate:
		return g.inner.Verify(ctx, c)
	case <-ctx.Done():
		return claims.Abstain
	}
}

// TestExplorerLiveJob opens the explorer of node0 of a live four-node
// network, submits an output, reads its answer and records an action while
// it is provisional, then lets the validators vote, and checks what the
// page shows at each stage: the provisional mark, the job going final, the
// ballots, the reads before proof marked on the timeline, and the
// certificate verified by the page itself. It saves screenshots of the
// timeline at desktop and phone width.
func TestExplorerLiveJob(t *testing.T) {
	b := newBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	gate := make(chan struct{})
	opened := false
	defer func() {
		if !opened {
			close(gate)
		}
	}()
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 4,
		APIs:  true,
		Verifier: func(i int) node.Verifier {
			v, err := claims.NewVerifier(claims.VerifierSpec{Backend: testnet.DefaultBackend, Validator: fmt.Sprintf("node%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			return gatedVerifier{inner: v, gate: gate}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tn.Stop(); err != nil {
			t.Error(err)
		}
	}()
	gw := tn.Nodes()[0]
	base := gw.APIURL()
	c := client.New(base)

	b.run("open the explorer", chromedp.Navigate(base+"/"))
	b.waitFor("the event stream connects", `#live[data-state="live"]`)
	b.waitFor("the empty job list", `.empty`)

	// One claim is false: the answer a client used before proof is the one
	// the network then rejects.
	const output = "Paris is the capital of France. The Sun orbits the Earth. 17 * 3 = 51."
	job, err := c.Submit(ctx, api.VerifyRequest{Output: output, DeadlineMS: 90_000})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(job.JobID.Hex())
	row := fmt.Sprintf(`[data-job="%s"]`, id)
	b.waitFor("the job listed as provisional", row+` [data-status="provisional"]`)
	if got := b.text(row + " .status"); !strings.Contains(got, "not proven") {
		t.Errorf("job row status %q does not say it is not proven", got)
	}

	b.run("open the job", chromedp.Click(chromedp.CSS(row)))
	b.waitFor("the job page, provisional", `#job-status [data-status="provisional"]`)
	b.waitFor("the claims, text withheld", `[data-claim="2"] .claim-text.withheld`)
	if got := b.text("#verify-headline, #verify p"); !strings.Contains(got, "nothing about this answer is proven") {
		t.Errorf("verification panel before proof: %q", got)
	}

	// A client reads the unproven answer and acts on it: both before proof.
	if j, err := c.ReadProvisional(ctx, job.JobID); err != nil || j.Status != "provisional" {
		t.Fatalf("read while provisional: %v, %v", j, err)
	}
	if _, err := c.RecordAction(ctx, job.JobID, api.ActionRequest{Name: "sent-to-user"}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the read before proof on the timeline", `#timeline li.read.before-proof .flag.before`)
	b.waitFor("the action before proof on the timeline", `#timeline li.action.before-proof`)

	// The validators vote; the proof forms.
	close(gate)
	opened = true
	set, err := tn.Genesis().ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Await(ctx, job.JobID, set, client.AwaitOptions{Output: []byte(output)})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Status != "rejected" {
		t.Fatalf("the network says %s, want rejected", cert.Status)
	}

	b.waitFor("the job page, rejected", `#job-status [data-status="rejected"]`)
	b.waitFor("the certificate on the timeline", `#timeline li.certificate`)
	b.waitFor("the in-browser verification", `#verify[data-result="ok"]`)
	if got := b.text("#verify-headline"); !strings.Contains(got, "verified in this browser: REJECTED, final") {
		t.Errorf("verification headline %q", got)
	}
	for _, check := range []string{"genesis", "job", "output", "claims", "floor", "ballots", "gateway", "tally", "final"} {
		if n := b.count(fmt.Sprintf(`#verify li.ok[data-check="%s"]`, check)); n != 1 {
			t.Errorf("verification check %q shown %d times as passed", check, n)
		}
	}
	if got := b.text(`#verify li[data-check="ballots"]`); !strings.Contains(got, strconv.Itoa(len(cert.Ballots))+" ballot signatures") {
		t.Errorf("ballots check %q, want %d ballot signatures", got, len(cert.Ballots))
	}
	if got, want := b.text("#ballot-count"), strconv.Itoa(len(cert.Ballots)); got != want {
		t.Errorf("ballot count %s, the certificate has %s", got, want)
	}
	if n := b.count("#timeline li.ballot"); n < len(cert.Ballots) {
		t.Errorf("%d ballots on the timeline, the certificate has %d", n, len(cert.Ballots))
	}
	if n, m := b.count("#timeline li.decided.true"), b.count("#timeline li.decided.false"); n != 2 || m != 1 {
		t.Errorf("%d claims decided true and %d false on the timeline, want 2 and 1", n, m)
	}
	if got := b.text(`[data-claim="1"] .verdict`); !strings.EqualFold(got, "false") {
		t.Errorf("claim 1 verdict %q, want false", got)
	}
	if got := b.text(`#timeline li.action .flag.other`); got != "acted on rejected output" {
		t.Errorf("the action's flag %q, want acted on rejected output", got)
	}
	// Proven now: the claim texts are shown, the read before proof stays marked.
	if got := b.text(`[data-claim="0"] .claim-text`); got != "Paris is the capital of France." {
		t.Errorf("claim 0 text %q", got)
	}
	b.waitFor("the read before proof, still marked", `#timeline li.read.before-proof .flag.before`)
	if got := b.text("#before-count"); got != "2" {
		t.Errorf("reads and actions before proof: page says %s, want 2", got)
	}
	// Reads after proof are not before proof.
	order := value(b, "timeline order", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#timeline li")].map(li => li.dataset.kind)`))
	if i, j := indexOf(order, "read"), indexOf(order, "certificate"); i < 0 || j < 0 || i > j {
		t.Errorf("timeline order %v: the read should come before the certificate", order)
	}

	// The page itself left no read before proof: it reads answers strictly.
	audit, err := c.Audit(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if audit.ReadsBeforeProof != 1 || audit.ActionsBeforeProof != 1 {
		t.Errorf("audit: %d reads and %d actions before proof, want 1 and 1 (the test's own): the explorer must not read a provisional answer",
			audit.ReadsBeforeProof, audit.ActionsBeforeProof)
	}

	dir := artifactDir(t)
	shot := b.screenshot(dir, "explorer-timeline.png")
	if *updateScreenshot {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "explorer-timeline.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Phone width: nothing wider than the screen.
	b.run("phone width", chromedp.EmulateViewport(375, 812))
	b.waitFor("the job page at phone width", `#job-status [data-status="rejected"]`)
	if w := value(b, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 375 {
		t.Errorf("at 375 px the page is %d px wide", w)
	}
	b.screenshot(dir, "explorer-timeline-phone.png")

	// The job list, final now; then the validators.
	b.run("back to the jobs", chromedp.Navigate(base+"/#/"))
	b.waitFor("the job listed as rejected", row+` [data-status="rejected"]`)
	b.run("the validators", chromedp.Navigate(base+"/#/validators"))
	b.waitFor("the validator table", `#validators tbody tr`)
	if n := b.count("#validators tbody tr"); n != 4 {
		t.Errorf("%d validators shown, want 4", n)
	}
	if got := b.text("main"); !strings.Contains(got, "byzantine stake below 1/3 of 400: at most 133") {
		t.Errorf("the security policy is not shown: %q", got)
	}
	if w := value(b, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 375 {
		t.Errorf("validators at 375 px: the page is %d px wide", w)
	}
	b.screenshot(dir, "explorer-validators-phone.png")

	// The node's event stream stayed connected throughout.
	if got := b.text("#live"); got != "live" {
		t.Errorf("the stream indicator says %q, want live", got)
	}

	// The browser logs every strict read answered 409 while the job was
	// provisional; that is the page declining to read an unproven answer.
	if errs := b.pageErrors("status of 409 (Conflict)"); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
