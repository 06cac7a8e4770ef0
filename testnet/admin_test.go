package testnet

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-network/verity/node"
)

// TestPerturbDisconnectWithTokens: on a testnet whose nodes have client
// tokens, Perturb (what `verity testnet perturb` runs) disconnects and
// reconnects a node with the admin token Init wrote into its home, while a
// client token is refused by the admin route.
func TestPerturbDisconnectWithTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), startupBound)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	layout, err := Init(InitOptions{Dir: dir, Nodes: 3, BasePort: freeBasePort(t, 3), Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range layout.Nodes {
		st, err := os.Stat(filepath.Join(info.Home, AdminTokenFile))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s admin token file: %v, mode %v; want mode 0600", info.Name, err, st.Mode().Perm())
		}
		cfg, err := node.LoadConfig(info.Home)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.API.AdminTokenFile != AdminTokenFile {
			t.Fatalf("%s config admin_token_file %q, want %q", info.Name, cfg.API.AdminTokenFile, AdminTokenFile)
		}
		cfg.API.Tokens = map[string]string{"alice": "alice-token"}
		if err := node.WriteConfig(info.Home, cfg); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := StartInProcess(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Stop()

	info := layout.Nodes[1]
	if err := AdminP2P(ctx, nil, info.Name, info.API, "alice-token", ActionDisconnect); !errors.Is(err, ErrAdmin) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("disconnect with a client token: %v, want a 401 refusal", err)
	}
	if err := Perturb(ctx, layout, info.Name, ActionDisconnect, PerturbOptions{Client: &http.Client{Timeout: 5 * time.Second}}); err != nil {
		t.Fatalf("perturb disconnect on a testnet with tokens: %v", err)
	}
	cut := tn.Nodes()[1].Network()
	for len(cut.ConnectedPeers()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%s still has %d peers after disconnect", info.Name, len(cut.ConnectedPeers()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := Perturb(ctx, layout, info.Name, ActionConnect, PerturbOptions{}); err != nil {
		t.Fatalf("perturb connect: %v", err)
	}
	if err := cut.WaitForPeers(ctx, 1); err != nil {
		t.Fatalf("%s after connect: %v", info.Name, err)
	}
	// A home without the token file (and a node never started on it)
	// says where it looked.
	if err := os.Remove(filepath.Join(info.Home, AdminTokenFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := NodeAdminToken(info); !errors.Is(err, node.ErrNoAdminToken) && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin token of a home without one: %v", err)
	}
}
