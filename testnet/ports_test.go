package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/api"
)

// TestCheckPortsNamesTakenPort: a port another process holds is found
// before anything starts, named with its node, its use and its holder.
func TestCheckPortsNamesTakenPort(t *testing.T) {
	l, err := Init(InitOptions{Dir: t.TempDir(), Nodes: 2, BasePort: freeBasePort(t, 2), Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPorts(l); err != nil {
		t.Fatalf("free ports reported taken: %v", err)
	}
	host, port, _ := urlPort(l.Nodes[1].API)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = CheckPorts(l)
	var pe *PortInUseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPortInUse) {
		t.Fatalf("CheckPorts = %v, want a PortInUseError", err)
	}
	if pe.Node != "node1" || pe.Port != port || pe.What != "API" {
		t.Fatalf("PortInUseError = %+v, want node1's API port %d", pe, port)
	}
	// This process holds the port, and /proc says so.
	if _, err := os.Stat("/proc/net/tcp"); err == nil && !strings.Contains(pe.Holder, "pid "+itoa(os.Getpid())) {
		t.Errorf("holder %q, want this test's pid %d", pe.Holder, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, "node1's API port tcp/"+itoa(port)+" is already in use") {
		t.Errorf("message %q", msg)
	}
}

// TestHealthyNodeIsThatNode: a healthy node that is another node (another
// testnet's, on the same port) is not this node.
func TestHealthyNodeIsThatNode(t *testing.T) {
	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Health{Status: "ready", Name: "node0", Address: other})
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info := NodeInfo{Name: "node0", API: "http://" + ln.Addr().String(), Address: common.HexToAddress("0x00000000000000000000000000000000000000bb")}
	if HealthyNode(ctx, nil, info) {
		t.Fatal("another node's /healthz counted as this node's")
	}
	info.Address = other
	if !HealthyNode(ctx, nil, info) {
		t.Fatal("the node itself not counted healthy")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestStopQuietForNodesThatEnded: nodes that ended before Stop (they could
// not start) were reported when they ended; Stop does not say they "did
// not stop cleanly".
func TestStopQuietForNodesThatEnded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Setenv(fakeNodeEnv, "fail")
	procs, _, _ := startFakeNodes(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := procs.WaitHealthy(ctx, nil); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitHealthy = %v, want ErrExited", err)
	}
	for _, p := range procs.List() {
		<-p.Done()
	}
	if err := procs.Stop(); err != nil {
		t.Fatalf("Stop after the nodes ended on their own = %v, want nil", err)
	}
}

// TestStopQuotesTheLogOfANodeThatFailed: a node that exits 1 on SIGTERM
// did not stop cleanly, and the error quotes the end of its log, which a
// caller that removes the testnet's directory cannot read afterwards.
func TestStopQuotesTheLogOfANodeThatFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Setenv(fakeNodeEnv, "stopfail")
	procs, _, _ := startFakeNodes(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := procs.WaitHealthy(ctx, nil); err != nil {
		procs.Stop()
		t.Fatal(err)
	}
	err := procs.Stop()
	if !errors.Is(err, ErrStop) || !strings.Contains(err.Error(), "exit status 1") ||
		!strings.Contains(err.Error(), "\n    stop node: close store: disk full") {
		t.Fatalf("Stop = %v, want ErrStop quoting the node's last log line", err)
	}
}
