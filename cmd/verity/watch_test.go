package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/testnet"
)

// TestDescribeMalformedEvent: a node's event is input, not trusted: lengths
// that differ must not crash the CLI.
func TestDescribeMalformedEvent(t *testing.T) {
	e := api.Event{Type: api.EventBallotAttached, Data: []byte(`{"claim_indexes":[0,1],"verdicts":[1],"name":"n"}`)}
	if got := describeEvent(e); !strings.Contains(got, "0=true") || !strings.Contains(got, "malformed") {
		t.Fatalf("describeEvent = %q", got)
	}
	e.Data = []byte(`{"claim_indexes":[0],"verdicts":[7]}`)
	if got := describeEvent(e); !strings.Contains(got, "code 7") {
		t.Fatalf("describeEvent = %q", got)
	}
}

// TestCheckUsageErrorExit2: a mistyped check command line means "cannot
// check" (2), never "an invariant failed" (1).
func TestCheckUsageErrorExit2(t *testing.T) {
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	err := app.Run([]string{"verity", "testnet", "check", "--bogus"})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("check --bogus: %v, want exit code 2", err)
	}
}

// TestWatchNodeDown: a node that does not answer is an error at once,
// naming the URL, not a stream retried until --timeout.
func TestWatchNodeDown(t *testing.T) {
	url := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	start := time.Now()
	err := app.Run([]string{"verity", "watch", "--api", url, "--timeout", "5m", "0x" + strings.Repeat("ab", 32)})
	if err == nil || !strings.Contains(err.Error(), "the node at "+url+" did not answer") {
		t.Fatalf("watch against a node that is down: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("watch took %s to notice the node is down", d)
	}
}

// TestWatchExitCodes: watch exits as submit does: 0 verified, 3 rejected;
// and an unknown job is an error (1), not a wait.
func TestWatchExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 4, APIs: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	url := net.Nodes()[0].APIURL()
	cl := client.New(url)
	run := func(id string) (string, error) {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := app.Run([]string{"verity", "watch", "--api", url, "--timeout", "1m", id})
		return out.String(), err
	}
	for _, tc := range []struct {
		output string
		code   int
	}{
		{"Paris is the capital of France.", 0},
		{"The Sun orbits the Earth.", exitRejected},
	} {
		job, err := cl.Submit(ctx, api.VerifyRequest{Output: tc.output})
		if err != nil {
			t.Fatal(err)
		}
		out, err := run(job.JobID.Hex())
		code := 0
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			t.Fatalf("watch %q: %v\n%s", tc.output, err, out)
		}
		if code != tc.code || !strings.Contains(out, "certificate issued") {
			t.Errorf("watch %q: exit %d, want %d\n%s", tc.output, code, tc.code, out)
		}
	}
	if _, err := run("0x" + strings.Repeat("cd", 32)); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("watch of an unknown job: %v, want an error saying it is unknown", err)
	}
}

// TestSubmitWarnsNodeWithoutPeers: a node whose only peer is gone answers
// /healthz 503; submit says so before it waits, not after its deadline.
func TestSubmitWarnsNodeWithoutPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 2, APIs: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	url := net.Nodes()[0].APIURL()
	run := func() string {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		app.Run([]string{"verity", "submit", "--api", url, "--no-wait", "--text", "Paris is the capital of France."})
		return out.String()
	}
	if out := run(); strings.Contains(out, "warning") {
		t.Fatalf("a ready node warned about:\n%s", out)
	}
	if err := net.Perturb(ctx, "node1", testnet.ActionKill); err != nil {
		t.Fatal(err)
	}
	cl := client.New(url)
	for {
		if _, err := cl.Health(ctx); err != nil {
			break // 503 once node0 has no topic peers
		}
		select {
		case <-ctx.Done():
			t.Fatal("node0 still healthy without its peer")
		case <-time.After(50 * time.Millisecond):
		}
	}
	out := run()
	warn := strings.Index(out, "warning: the node at "+url+" is not ready")
	if warn < 0 || !strings.Contains(out, "cannot reach quorum") {
		t.Fatalf("no warning about a node without peers:\n%s", out)
	}
	if job := strings.Index(out, "job 0x"); job >= 0 && job < warn {
		t.Errorf("the warning comes after the job was sent:\n%s", out)
	}
}
