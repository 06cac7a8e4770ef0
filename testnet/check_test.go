package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/store"
)

// arithmeticOutput is output i of a run: true sums, and a false one every
// fourth output.
func arithmeticOutput(i int) string {
	if i%4 == 3 {
		return fmt.Sprintf("%d + %d = %d. Paris is the capital of France.", i, i, 2*i+1)
	}
	return fmt.Sprintf("%d + %d = %d. Paris is the capital of France.", i, i, 2*i)
}

// withStore opens a stopped node's store for the test to write into.
func withStore(t *testing.T, ref StoreRef, f func(*store.Store)) {
	t.Helper()
	st, err := store.Open(ref.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f(st)
}

// TestCheckStores runs a 4-node testnet from Init in this process, checks
// its stores (refused while it runs, clean once stopped), then damages the
// stores the way faults would and checks that each damage is reported.
func TestCheckStores(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	dir := t.TempDir()
	m, err := ParseManifest([]byte("nodes = 4\ndeadline = \"3s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(InitOptions{Dir: dir, Manifest: m, BasePort: freeBasePort(t, 4), Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tn, err := StartInProcess(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	nodes := tn.Nodes()
	const jobs = 8
	ids := make([]string, jobs)
	for i := range jobs {
		ids[i] = submitHTTP(ctx, t, nodes[i%len(nodes)].APIURL(), arithmeticOutput(i))
	}
	for i, id := range ids {
		awaitCertificate(ctx, t, nodes[i%len(nodes)].APIURL(), id)
	}

	// A running node holds its store's lock.
	if _, _, err := Check(ctx, dir, CheckOptions{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("check of a running testnet: %v, want ErrStoreLocked", err)
	} else if !strings.Contains(err.Error(), "stop the testnet") {
		t.Errorf("the lock error does not say what to do: %v", err)
	}
	if err := tn.Stop(); err != nil {
		t.Fatal(err)
	}

	r, snap, err := Check(ctx, dir, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		var b strings.Builder
		r.WriteText(&b)
		t.Fatalf("clean testnet fails the check:\n%s", b.String())
	}
	gateway := 0
	for _, n := range r.Nodes {
		gateway += n.GatewayJobs
		if n.Certificates == 0 {
			t.Errorf("%s holds no certificate", n.Name)
		}
	}
	if gateway != jobs {
		t.Errorf("%d gateway jobs in the stores, want %d", gateway, jobs)
	}
	if len(snap.Certificates) != 4 || len(snap.Certificates["node0"]) == 0 {
		t.Fatalf("snapshot %v: want the certificates of 4 nodes", snap.Certificates)
	}
	snapPath := filepath.Join(t.TempDir(), "snap.json")
	if err := WriteSnapshot(snapPath, snap); err != nil {
		t.Fatal(err)
	}

	l, err := LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := l.Stores()
	if err != nil {
		t.Fatal(err)
	}
	// Two nodes hold a certificate for a job that never was: node1's says
	// claim 0 is false, node2's says it is true. Neither verifies, and they
	// conflict.
	var forged consensus.Certificate
	withStore(t, refs[0], func(st *store.Store) {
		err := st.Certificates(func(c *consensus.Certificate) bool {
			if c.Status == consensus.StatusVerified {
				forged = *c
				return false
			}
			return true
		})
		if err != nil || forged.Claims == nil {
			t.Fatalf("no verified certificate on node0: %v", err)
		}
	})
	forged.JobID = common.HexToHash("0xf00d")
	liar := forged
	liar.Claims = append([]consensus.CertClaim(nil), forged.Claims...)
	liar.Claims[0].Verdict = consensus.OutcomeFalse
	liar.Status = consensus.StatusRejected
	withStore(t, refs[1], func(st *store.Store) {
		if stored, err := st.PutCertificate(&liar, time.Now()); err != nil || !stored {
			t.Fatalf("put forged certificate: %v, %v", stored, err)
		}
	})
	withStore(t, refs[2], func(st *store.Store) {
		if stored, err := st.PutCertificate(&forged, time.Now()); err != nil || !stored {
			t.Fatalf("put forged certificate: %v, %v", stored, err)
		}
		// node2 also accepted a job it never finished, and one whose
		// deadline is still ahead.
		now := time.Now()
		for _, j := range []*store.Job{
			{ID: common.HexToHash("0xdead"), Gateway: true, Status: consensus.StatusProvisional, SubmittedAt: now.Add(-time.Minute), Deadline: now.Add(-50 * time.Second)},
			{ID: common.HexToHash("0xbeef"), Gateway: true, Status: consensus.StatusProvisional, SubmittedAt: now, Deadline: now.Add(time.Hour)},
		} {
			if err := st.PutJob(j); err != nil {
				t.Fatal(err)
			}
		}
	})
	// node3 loses its store.
	if err := os.Remove(refs[3].Path); err != nil {
		t.Fatal(err)
	}

	before, err := LoadSnapshot(snapPath)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err = Check(ctx, dir, CheckOptions{Compare: before})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	r.WriteText(&text)
	if r.OK() {
		t.Fatalf("damaged stores pass the check:\n%s", text.String())
	}
	if len(r.BadCertificates) != 2 {
		t.Errorf("%d bad certificates, want 2 (the forged ones):\n%s", len(r.BadCertificates), text.String())
	}
	for _, b := range r.BadCertificates {
		if b.JobID != forged.JobID || !strings.Contains(b.Error, "job id") {
			t.Errorf("bad certificate %+v: want the forged job, failing on its id", b)
		}
	}
	if len(r.Conflicts) != 1 || r.Conflicts[0].JobID != forged.JobID || r.Conflicts[0].Claim != 0 ||
		strings.Join(r.Conflicts[0].True, ",") != "node2" || strings.Join(r.Conflicts[0].False, ",") != "node1" {
		t.Errorf("conflicts %+v: want claim 0 of the forged job, true on node2, false on node1", r.Conflicts)
	}
	if len(r.Overdue) != 1 || r.Overdue[0].JobID != common.HexToHash("0xdead") || r.Overdue[0].Node != "node2" {
		t.Errorf("overdue %+v: want job 0xdead on node2", r.Overdue)
	}
	if len(r.Pending) != 1 || r.Pending[0].JobID != common.HexToHash("0xbeef") {
		t.Errorf("pending %+v: want job 0xbeef", r.Pending)
	}
	if len(r.Missing) != len(before.Certificates["node3"]) {
		t.Errorf("%d missing certificates, want node3's %d", len(r.Missing), len(before.Certificates["node3"]))
	}
	for _, miss := range r.Missing {
		if miss.Node != "node3" {
			t.Errorf("missing %+v: only node3 lost its store", miss)
		}
	}
	for _, want := range []string{"FAIL certificate", "decided true on node2 and false on node1", "still provisional", "missing now", "node3: no store", "check failed"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestInProcessPerturb kills and restarts a node of an in-process network
// while jobs run, and checks the stores afterwards.
func TestInProcessPerturb(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tn, err := NewEphemeral(ctx, EphemeralOptions{Nodes: 4, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) { o.Deadline = 3 * time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()

	if err := tn.Perturb(ctx, "node9", ActionKill); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("kill node9: %v, want ErrUnknownNode", err)
	}
	if err := tn.Perturb(ctx, "node1", ActionPause); !errors.Is(err, ErrUnsupported) {
		t.Errorf("pause in process: %v, want ErrUnsupported", err)
	}
	if err := tn.Perturb(ctx, "node1", ActionRestart); !errors.Is(err, ErrRunning) {
		t.Errorf("restart of a running node: %v, want ErrRunning", err)
	}
	if err := tn.Perturb(ctx, "node1", Action("explode")); !errors.Is(err, ErrUnknownAction) {
		t.Errorf("unknown action: %v, want ErrUnknownAction", err)
	}

	type sub struct {
		gw int
		id common.Hash
	}
	var subs []sub
	submit := func(gw, i int) {
		j, err := tn.Nodes()[gw].Submit(ctx, api.VerifyRequest{Output: arithmeticOutput(i)})
		if err != nil {
			t.Fatalf("submit to node%d: %v", gw, err)
		}
		subs = append(subs, sub{gw, j.JobID})
	}
	for i := range 4 {
		submit(i, i)
	}
	if err := tn.Perturb(ctx, "node1", ActionKill); err != nil {
		t.Fatal(err)
	}
	if err := tn.Perturb(ctx, "node1", ActionKill); !errors.Is(err, ErrNotRunning) {
		t.Errorf("second kill: %v, want ErrNotRunning", err)
	}
	for i := 4; i < 8; i++ {
		submit([]int{0, 2, 3}[i%3], i)
	}
	if err := tn.Perturb(ctx, "node1", ActionRestart); err != nil {
		t.Fatal(err)
	}
	for i := 8; i < 12; i++ {
		submit(i%4, i)
	}
	for _, s := range subs {
		c, err := tn.Nodes()[s.gw].WaitFinal(ctx, s.id)
		if err != nil {
			t.Fatalf("job %s on node%d: %v", s.id.Hex(), s.gw, err)
		}
		if err := consensus.VerifyCertificate(c, tn.Nodes()[s.gw].ValidatorSet(), nil); err != nil {
			t.Errorf("job %s: %v", s.id.Hex(), err)
		}
	}

	// disconnect cuts the node off its p2p network: the node loses every
	// peer, and connect brings them back.
	if err := tn.Perturb(ctx, "node2", ActionDisconnect); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	cut := tn.Nodes()[2].Network()
	for len(cut.ConnectedPeers()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("node2 still has %d peers after disconnect", len(cut.ConnectedPeers()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tn.Perturb(ctx, "node2", ActionConnect); err != nil {
		t.Fatalf("connect after disconnect: %v", err)
	}
	if err := cut.WaitForPeers(ctx, 1); err != nil {
		t.Fatalf("node2 after connect: %v", err)
	}

	if err := tn.Stop(); err != nil {
		t.Fatal(err)
	}
	r, _, err := CheckStores(ctx, tn.Genesis(), tn.Stores(), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		var b strings.Builder
		r.WriteText(&b)
		t.Fatalf("check after kill and restart:\n%s", b.String())
	}
}
