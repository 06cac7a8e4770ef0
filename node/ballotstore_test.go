package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/testnet"
)

// auditBallots counts the ballot entries of a job's audit on nd.
func auditBallots(t *testing.T, a *api.Audit) int {
	t.Helper()
	n := 0
	for _, e := range a.Entries {
		if e.Kind == api.AuditBallot {
			n++
		}
	}
	return n
}

// TestGatewayStoresBallotsWithCertificate: a gateway keeps the ballots it
// counts with the job and stores them in the certificate's commit, not one
// write each; its audit shows them while the job is pending and after.
func TestGatewayStoresBallotsWithCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, _, release := heldBack(t, ctx, 3)
	nodes := tn.Nodes()
	gw := nodes[0]
	// A deadline of 8 minutes puts the job's first re-announcement (which
	// stores the ballots counted so far) 2 minutes out, past this test's
	// context: however slow the machine, no ballot is stored before the
	// certificate.
	job, err := gw.Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: (8 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "two ballots at the gateway", func() bool { return counted(t, gw, job.JobID, nodes[0], nodes[1]) })
	a, err := gw.Audit(job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := auditBallots(t, a); got != 2 {
		t.Fatalf("audit of the pending job shows %d ballots, want 2: %+v", got, a.Entries)
	}
	release()
	if _, err := gw.WaitFinal(ctx, job.JobID); err != nil {
		t.Fatal(err)
	}
	if a, err = gw.Audit(job.JobID); err != nil {
		t.Fatal(err)
	}
	if got := auditBallots(t, a); got != 3 {
		t.Fatalf("audit of the certified job shows %d ballots, want 3: %+v", got, a.Entries)
	}
	if w := gw.StoreStats().Writes[store.KindBallot]; w != 0 {
		t.Errorf("the gateway made %d ballot writes, want none (ballots go with the certificate)", w)
	}
}

// TestGatewayStopStoresPendingBallots: a gateway that stops with a job
// pending stores the ballots it counted, so that it resumes with them.
func TestGatewayStopStoresPendingBallots(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, _, _ := heldBack(t, ctx, 3)
	nodes := tn.Nodes()
	gw := nodes[0]
	job, err := gw.Submit(ctx, api.VerifyRequest{Output: answer, DeadlineMS: (2 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "two ballots at the gateway", func() bool { return counted(t, gw, job.JobID, nodes[0], nodes[1]) })
	if err := tn.Perturb(ctx, gw.Name(), testnet.ActionKill); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(tn.Stores()[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bs, err := st.Ballots(job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 {
		t.Fatalf("the stopped gateway stored %d ballots of its pending job, want 2", len(bs))
	}
}
