package client_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/client"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/forge"
)

// servingNode answers GET /v1/jobs/{id} with the job final and cert as its
// certificate, as a node that lies (or was fooled) would.
func servingNode(t *testing.T, cert *consensus.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/jobs/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.Job{JobID: cert.JobID, Status: cert.Status, OutputHash: cert.OutputHash,
			ClaimsRoot: cert.ClaimsRoot, Claims: []claims.Claim{}, Quorum: cert.Quorum, Replication: cert.Replication,
			Gateway: cert.Gateway, Certificate: cert})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fiveValidators(t *testing.T) (*consensus.Genesis, []*ecdsa.PrivateKey) {
	t.Helper()
	g := &consensus.Genesis{NetworkID: 5}
	var keys []*ecdsa.PrivateKey
	for i := range 5 {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		g.Validators = append(g.Validators, consensus.Validator{Name: fmt.Sprintf("v%d", i), Address: crypto.PubkeyToAddress(k.PublicKey), Stake: 100})
	}
	return g, keys
}

// TestAwaitRefusesCertificatesThatProveNothing: Await returns no
// certificate a node serves unless it is valid, within the network's floor
// and final: not the one a single validator minted with replication 1, not
// a keyless peer's zero-ballot one.
func TestAwaitRefusesCertificatesThatProveNothing(t *testing.T) {
	g, keys := fiveValidators(t)
	set, err := g.ValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	minted, err := forge.ReplicationOne(g, keys[2], "2 + 2 = 5.", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs := claims.FromTexts([]string{"2 + 2 = 5."})
	p := consensus.JobParams{NetworkID: g.NetworkID, OutputHash: claims.OutputHash([]byte("2 + 2 = 5.")), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: 1, Quorum: consensus.DefaultQuorum, Gateway: g.Validators[0].Address, Deadline: uint64(time.Now().Add(time.Hour).UnixMilli())}
	empty, err := forge.ZeroBallots(set, p, cs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *consensus.Certificate
		want error
	}{
		{"replication 1 minted by one validator", minted, consensus.ErrBelowFloor},
		{"zero ballots from a keyless peer", empty, consensus.ErrNotFinal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl := client.New(servingNode(t, tc.cert).URL)
			c, err := cl.Await(ctx, tc.cert.JobID, set, client.AwaitOptions{})
			if c != nil || !errors.Is(err, client.ErrUnverified) || !errors.Is(err, tc.want) {
				t.Fatalf("Await: %v, %v; want ErrUnverified and %v", c, err, tc.want)
			}
		})
	}
}
