//go:build unix

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verity-network/verity/testnet"
)

// testNodeCommandOverrides runs two nodes with `verity node`, both listening
// on addresses given by --listen instead of their configs: they find each
// other only through node1's --bootstrap, and node0 serves its API at --api.
func testNodeCommandOverrides(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	layout, err := testnet.Init(testnet.InitOptions{Dir: dir, Nodes: 2, BasePort: freeTestnetBase(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1, api0 := freePort(t), freePort(t), freePort(t)
	listen0 := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p0)
	node0 := startVerity(t, bin, "node0", "node", "--home", layout.Nodes[0].Home,
		"--listen", listen0, "--api", fmt.Sprintf("127.0.0.1:%d", api0))
	node1 := startVerity(t, bin, "node1", "node", "--home", layout.Nodes[1].Home,
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p1),
		"--bootstrap", listen0+"/p2p/"+layout.Nodes[0].PeerID)

	line := node0.waitLine(ctx, t, "node0 ready:")
	for _, want := range []string{
		layout.Nodes[0].Address.Hex(), layout.Nodes[0].PeerID,
		listen0 + "/p2p/" + layout.Nodes[0].PeerID,
		fmt.Sprintf("api http://127.0.0.1:%d", api0),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("node0's ready line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, layout.Nodes[0].P2P[0]) {
		t.Errorf("node0 listens on its configured address despite --listen:\n%s", line)
	}
	node1.waitLine(ctx, t, "node1 ready:")
	if !testnet.Healthy(ctx, nil, fmt.Sprintf("http://127.0.0.1:%d", api0)) {
		t.Error("node0 /healthz at the --api address is not 200")
	}
	if !testnet.Healthy(ctx, nil, layout.Nodes[1].API) {
		t.Error("node1 /healthz at its configured address is not 200")
	}
	for _, p := range []*verityProcess{node0, node1} {
		if code := p.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0; stderr:\n%s", p.name, code, p.stderrText())
		}
	}
}
