package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/testnet"
)

// TestStopLeavesNoGoroutine runs a network through a job (HTTP API, gossip,
// store, timers, event streams) and checks that stopping it ends every
// goroutine it started.
func TestStopLeavesNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	net, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 3, APIs: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	cl := client.New(net.Nodes()[0].APIURL(), client.WithHTTPClient(&http.Client{Transport: tr}))
	job, err := cl.Submit(ctx, api.VerifyRequest{Output: answer})
	if err != nil {
		t.Fatal(err)
	}
	// An event stream left open when the node stops must end too.
	events, errc := cl.WatchAll(ctx, 0)
	if _, err := cl.Await(ctx, job.JobID, net.Nodes()[0].ValidatorSet(), client.AwaitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range events {
	}
	<-errc
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}
