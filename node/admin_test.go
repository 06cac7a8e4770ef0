package node_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node"
	"github.com/verity-network/verity/testnet"
)

const clientToken = "client-token-of-alice"

// TestAdminRouteOutOfBrowsersReach sends POST /v1/admin/p2p as a web page,
// a DNS-rebinding page and a client would, each refused with its JSON
// error, then as an operator on the node's machine, whose bearer scheme
// may be in any case.
func TestAdminRouteOutOfBrowsersReach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn, err := testnet.NewEphemeral(ctx, testnet.EphemeralOptions{
		Nodes: 2, APIs: true, Dir: t.TempDir(),
		Options: func(i int, o *node.Options) { o.Tokens = map[string]string{"alice": clientToken} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()
	nd := tn.Nodes()[0]
	admin := nd.AdminToken()
	if admin == "" || admin == clientToken {
		t.Fatalf("admin token %q", admin)
	}
	_, port, _ := net.SplitHostPort(nd.APIAddr())
	url := nd.APIURL() + "/v1/admin/p2p"
	const connect = `{"action":"connect"}`
	for _, tc := range []struct {
		name     string
		host     string
		header   map[string]string
		status   int
		code     string
		inReason string
	}{
		{"a foreign Host (DNS rebinding)", "attacker.example:" + port, map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Host header"},
		{"a foreign Host without a port", "attacker.example", map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Host header"},
		{"localhost on another port", "localhost:1", map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Host header"},
		{"a foreign Origin", "", map[string]string{"Origin": "http://attacker.example", "Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Origin"},
		{"the node's own Origin", "", map[string]string{"Origin": nd.APIURL(), "Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Origin"},
		{"Origin null", "", map[string]string{"Origin": "null", "Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 403, "forbidden", "Origin"},
		{"the shape of a browser form: foreign Host, Origin, no token, no JSON", "attacker.example", map[string]string{"Origin": "http://attacker.example"}, 403, "forbidden", "Host header"},
		{"a client token", "", map[string]string{"Authorization": "Bearer " + clientToken, "Content-Type": "application/json"}, 401, "unauthorized", "client tokens are not admin tokens"},
		{"no token", "", map[string]string{"Content-Type": "application/json"}, 401, "unauthorized", "admin token"},
		{"a wrong token", "", map[string]string{"Authorization": "Bearer " + admin + "x", "Content-Type": "application/json"}, 401, "unauthorized", "admin token"},
		{"the admin token under another scheme", "", map[string]string{"Authorization": "Basic " + admin, "Content-Type": "application/json"}, 401, "unauthorized", "admin token"},
		{"no Content-Type", "", map[string]string{"Authorization": "Bearer " + admin}, 415, "unsupported_media_type", "application/json"},
		{"text/plain (a form's type)", "", map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"the operator", "", map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 200, "", ""},
		{"bearer in lower case", "", map[string]string{"Authorization": "bearer " + admin, "Content-Type": "application/json; charset=utf-8"}, 200, "", ""},
		{"BEARER in upper case, two spaces", "", map[string]string{"Authorization": "BEARER  " + admin, "Content-Type": "application/json"}, 200, "", ""},
		{"Host localhost", "localhost:" + port, map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 200, "", ""},
		{"Host [::1]", "[::1]:" + port, map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(connect))
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.code == "" {
				return
			}
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tc.code || !strings.Contains(e.Message, tc.inReason) {
				t.Fatalf("error %s, want code %q and a message about %q", body, tc.code, tc.inReason)
			}
		})
	}
	// Client routes take the bearer scheme in any case too.
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, nd.APIURL()+"/v1/verify", strings.NewReader(`{"output":"Paris is the capital of France."}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", scheme+" "+clientToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST /v1/verify with %q scheme: HTTP %d %s", scheme, resp.StatusCode, body)
		}
	}
	// The admin token is not a client token.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, nd.APIURL()+"/v1/verify", strings.NewReader(`{"output":"Paris is the capital of France."}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/verify with the admin token: HTTP %d %s, want 401", resp.StatusCode, body)
	}
	// And the operator's disconnect works through the in-process runner,
	// which sends the node's admin token.
	if err := tn.Perturb(ctx, "node1", testnet.ActionDisconnect); err != nil {
		t.Fatalf("disconnect on a network with client tokens: %v", err)
	}
	if err := tn.Perturb(ctx, "node1", testnet.ActionConnect); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// TestAdminTokenNotAClientToken: a node refuses to start with an admin
// token that is also a client token.
func TestAdminTokenNotAClientToken(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := &consensus.Genesis{NetworkID: 1, Validators: []consensus.Validator{
		{Name: "node0", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1},
	}}
	_, err = node.New(node.Options{Key: key, Genesis: g, Verifier: abstainVerifier{}, DataDir: t.TempDir(),
		Tokens: map[string]string{"alice": "same"}, AdminToken: "same"})
	if err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("New with the admin token as a client token: %v", err)
	}
}
