package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/forge"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/node/store"
	"github.com/verity-network/verity/testnet"
)

// heldVerifier judges as inner once its gate opens.
type heldVerifier struct {
	gate  <-chan struct{}
	inner node.Verifier
}

func (h heldVerifier) Verify(ctx context.Context, c claims.Claim) claims.Verdict {
	select {
	case <-h.gate:
		return h.inner.Verify(ctx, c)
	case <-ctx.Done():
		return claims.Abstain
	}
}

// TestCatchUpAfterRestart: node3 is stopped; 100 jobs are certified while
// it is down, and one job it had voted on is certified only after it
// stopped. Within 10 s of its restart it holds all 101 certificates, each
// verifying against its output, fetched from its peers (they are gossiped
// only once); and its record of the job it had voted on says the
// certificate's status, not provisional.
func TestCatchUpAfterRestart(t *testing.T) {
	const (
		down    = "node3"
		jobs    = 100
		inStore = 10 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	dir := t.TempDir()
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 4, APIs: true, Dir: dir,
		Verifier: func(i int) node.Verifier {
			v, err := claims.NewVerifier(claims.VerifierSpec{Backend: testnet.DefaultBackend, Validator: fmt.Sprintf("node%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				return heldVerifier{gate: gate, inner: v}
			}
			return v
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	nodes := tn.Nodes()
	set := nodes[0].ValidatorSet()

	// A job that needs every validator: node3 votes, then stops before
	// node2 (held back) does, so its certificate comes while node3 is down.
	voted, err := nodes[0].Submit(ctx, api.VerifyRequest{Output: answer, Quorum: "99/100", DeadlineMS: time.Minute.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "node1's and node3's ballots at the gateway", func() bool { return counted(t, nodes[0], voted.JobID, nodes[1], nodes[3]) })
	phase := time.Now()
	if err := tn.Perturb(ctx, down, testnet.ActionKill); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s stopped in %v", down, time.Since(phase).Round(time.Millisecond))
	phase = time.Now()
	release()
	outputs, _ := knownOutputs(jobs)
	ids := []common.Hash{voted.JobID}
	out := map[common.Hash]string{voted.JobID: answer}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, jobs)
	for i, o := range outputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			gw := nodes[i%3]
			j, err := gw.Submit(ctx, api.VerifyRequest{Output: o})
			if err == nil {
				_, err = gw.WaitFinal(ctx, j.JobID)
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			ids = append(ids, j.JobID)
			out[j.JobID] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := nodes[0].WaitFinal(ctx, voted.JobID); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d jobs certified while %s was down, in %v", jobs+1, down, time.Since(phase).Round(time.Millisecond))

	start := time.Now()
	if err := tn.Perturb(ctx, down, testnet.ActionRestart); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(start)
	revived := tn.Nodes()[3]
	pending := map[common.Hash]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	deadline := time.After(inStore)
	for len(pending) > 0 {
		for id := range pending {
			c, err := revived.Certificate(id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := consensus.VerifyCertificate(c, set, []byte(out[id])); err != nil {
				t.Fatalf("%s holds a certificate of job %s that does not verify: %v", down, id.Hex(), err)
			}
			delete(pending, id)
		}
		select {
		case <-deadline:
			t.Fatalf("%s holds %d of %d certificates %v after its restart", down, len(ids)-len(pending), len(ids), inStore)
		case <-time.After(10 * time.Millisecond):
		}
	}
	took := time.Since(start)
	t.Logf("%s held all %d certificates, each verified, %v after its restart (ready after %v)",
		down, len(ids), took.Round(time.Millisecond), ready.Round(time.Millisecond))
	// They came by catch-up (gossip sent them once, while node3 was down);
	// the count follows the stores.
	stored := `verity_catchup_certificates_total{result="stored"}`
	countCtx, countCancel := context.WithTimeout(ctx, 5*time.Second)
	defer countCancel()
	eventually(t, countCtx, "catch-up counts what it stored", func() bool { return metric(t, revived, stored) >= float64(len(ids)) })

	// Every job record follows its certificate, on every node.
	if err := tn.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, ref := range tn.Stores() {
		st, err := store.Open(ref.Path)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Jobs(func(j *store.Job) bool {
			if c, cerr := st.Certificate(j.ID); cerr == nil && j.Status != c.Status {
				err = fmt.Errorf("%s: job %s recorded %s, its certificate says %s", ref.Name, j.ID.Hex(), j.Status, c.Status)
				return false
			}
			return true
		})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(dir, down, testnet.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if j, err := st.Job(voted.JobID); err != nil || !j.Status.Final() {
		t.Fatalf("%s's record of the job it voted on: %+v, %v; want final", down, j, err)
	}
}

// TestCatchUpRefusesForgedCertificates: a node whose only peer, at start,
// is a peer without a key that answers catch-up with a certificate it built
// from no ballots checks it as it would from gossip: the certificate is
// not final, the node stores nothing and penalises the peer.
func TestCatchUpRefusesForgedCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, err := ethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	accept := func(context.Context, peer.ID, []byte) p2p.Verdict { return p2p.Accept }
	liar, err := p2p.New(ctx, p2p.Config{
		Key: key, NetworkID: testnet.DefaultNetworkID, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Validators: map[string]p2p.ValidatorFunc{p2p.KindJobs: accept, p2p.KindBallots: accept, p2p.KindCerts: accept, p2p.KindEvidence: accept},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	var (
		mu     sync.Mutex
		forged *consensus.Certificate
		asked  = make(chan struct{}, 16)
	)
	liar.HandleCertSync(p2p.SyncLimits{MaxRequest: 1 << 16, MaxItems: 256, MaxItemSize: node.MaxCertMessageSize, MaxResponse: 8 << 20},
		func(_ context.Context, _ peer.ID, _ []byte, send func([]byte) error) error {
			asked <- struct{}{}
			mu.Lock()
			c := forged
			mu.Unlock()
			data, err := json.Marshal(c)
			if err != nil {
				return err
			}
			return send(data)
		})
	var liarAddrs []string
	for _, a := range liar.Addrs() {
		liarAddrs = append(liarAddrs, a.String())
	}
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{Nodes: 3, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) {
			if i != 2 {
				return
			}
			set, err := o.Genesis.ValidatorSet()
			if err != nil {
				t.Error(err)
				return
			}
			cs := claims.FromTexts([]string{"Paris is the capital of France."})
			p := consensus.JobParams{NetworkID: set.NetworkID(), OutputHash: claims.OutputHash([]byte(answer)), ClaimsRoot: claims.RootOf(cs),
				ClaimCount: 1, Quorum: consensus.DefaultQuorum, Gateway: set.At(0).Address,
				Deadline: uint64(time.Now().Add(time.Hour).UnixMilli()), Nonce: common.Hash{7}}
			c, err := forge.ZeroBallots(set, p, cs, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			forged = c
			mu.Unlock()
			o.Bootstrap = liarAddrs // node2 knows only the liar
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	victim := tn.Nodes()[2]
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("node2 never asked its only peer for certificates")
	}
	eventually(t, ctx, "the liar penalised", func() bool { return victim.Network().PenaltyScore(liar.PeerID()) < 0 })
	mu.Lock()
	id := forged.JobID
	mu.Unlock()
	if _, err := victim.Certificate(id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("node2 stored the forged certificate: %v", err)
	}
	if got := metric(t, victim, `verity_catchup_certificates_total{result="invalid"}`); got < 1 {
		t.Fatalf("invalid certificates from catch-up: %v", got)
	}
}
