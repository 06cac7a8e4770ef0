//go:build unix

package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/node"
)

// fakeNodeEnv makes the test binary act as a node process: it serves
// GET /healthz at the API address of the home it is given and exits 0 on
// SIGTERM. Process tests run it instead of building verity.
const fakeNodeEnv = "VERITY_TESTNET_FAKE_NODE"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeNodeEnv) {
	case "1":
		os.Exit(fakeNode(os.Args[1:]))
	case "stopfail":
		// A node that runs, then fails as it stops: it says why and exits 1.
		if code := fakeNode(os.Args[1:]); code != 0 {
			os.Exit(code)
		}
		os.Stderr.WriteString("stop node: close store: disk full\n")
		os.Exit(1)
	case "fail":
		// A node that cannot start: it says why and exits 1.
		os.Stderr.WriteString("listen: bind: address already in use\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func fakeNode(args []string) int {
	if len(args) != 3 || args[0] != "node" || args[1] != "--home" {
		os.Stderr.WriteString("fake node: want node --home DIR\n")
		return 2
	}
	cfg, err := node.LoadConfig(args[2])
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	// It answers as the node of its home, as a real node does.
	l, err := LoadLayout(filepath.Dir(args[2]))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	var health api.Health
	for _, n := range l.Nodes {
		if filepath.Clean(n.Home) == filepath.Clean(args[2]) {
			health = api.Health{Status: "ready", Name: n.Name, Address: n.Address, PeerID: n.PeerID}
		}
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	srv := &http.Server{Addr: cfg.API.Listen, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(health)
	})}
	go srv.ListenAndServe()
	<-term
	srv.Close()
	return 0
}

// procState is the state letter of pid in /proc (R, S, T, Z, ...), or ""
// where there is no /proc.
func procState(pid int) string {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return ""
	}
	return string(data[i+2])
}

// waitProcState polls pid's state until it is one of want or ctx ends,
// and returns the last state seen. Signals arrive asynchronously.
func waitProcState(ctx context.Context, pid int, want ...string) string {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s := procState(pid)
		if s == "" || slices.Contains(want, s) {
			return s
		}
		select {
		case <-ctx.Done():
			return s
		case <-t.C:
		}
	}
}

// startFakeNodes starts n fake node processes (this test binary, in the
// mode fakeNodeEnv sets) of a new testnet in a temporary directory, and
// returns them with the testnet's layout and the command they run.
func startFakeNodes(t *testing.T, n int) (*Processes, *Layout, string) {
	t.Helper()
	l, err := Init(InitOptions{Dir: t.TempDir(), Nodes: n, BasePort: freeBasePort(t, n), Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	procs, err := StartProcesses(l, ProcessOptions{Command: exe, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return procs, l, exe
}

// TestProcessPerturbations runs three fake node processes and perturbs
// them: a killed node is no failure for Watch, its restart is adopted, an
// adopted process that dies on its own is a failure, a paused node still
// stops cleanly, and Stop stops restarted processes too.
func TestProcessPerturbations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	t.Setenv(fakeNodeEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	procs, l, exe := startFakeNodes(t, 3)
	defer procs.Stop()
	if err := procs.WaitHealthy(ctx, nil); err != nil {
		t.Fatal(err)
	}

	notes := make(chan string, 64)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- procs.Watch(watchCtx, func(s string) { notes <- s })
	}()
	// waitNote waits for a note of Watch that contains want.
	waitNote := func(want string) {
		t.Helper()
		for {
			select {
			case s := <-notes:
				if strings.Contains(s, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("watch never noted %q", want)
			}
		}
	}
	popts := PerturbOptions{Command: exe}
	node1 := l.Nodes[1]
	oldPID, err := ReadPID(node1.Home)
	if err != nil {
		t.Fatal(err)
	}
	if err := Perturb(ctx, l, "node1", ActionRestart, popts); !errors.Is(err, ErrRunning) {
		t.Errorf("restart of a running node: %v, want ErrRunning", err)
	}
	if err := Perturb(ctx, l, "node1", ActionKill, popts); err != nil {
		t.Fatal(err)
	}
	if alive(oldPID) || !Perturbed(node1.Home) {
		t.Fatalf("after kill: process alive %v, marker %v; want dead and marked", alive(oldPID), Perturbed(node1.Home))
	}
	waitNote("node1 (pid " + strconv.Itoa(oldPID) + ") ended by a perturbation")
	if err := Perturb(ctx, l, "node1", ActionKill, popts); !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill of a killed node: %v, want ErrNotRunning", err)
	}
	if err := Perturb(ctx, l, "node1", ActionRestart, popts); err != nil {
		t.Fatal(err)
	}
	newPID, err := ReadPID(node1.Home)
	if err != nil || newPID == oldPID || !alive(newPID) || Perturbed(node1.Home) {
		t.Fatalf("after restart: pid %d (was %d), %v, marker %v", newPID, oldPID, err, Perturbed(node1.Home))
	}
	if !Healthy(ctx, nil, node1.API) {
		t.Error("node1 not healthy after restart")
	}
	waitNote("node1 restarted as pid " + strconv.Itoa(newPID))

	node2 := l.Nodes[2]
	pid2, _ := ReadPID(node2.Home)
	if err := Perturb(ctx, l, "node2", ActionPause, popts); err != nil {
		t.Fatal(err)
	}
	if s := waitProcState(ctx, pid2, "T"); s != "" && s != "T" {
		t.Errorf("paused node2 in state %q, want T (stopped)", s)
	}
	if err := Perturb(ctx, l, "node2", ActionResume, popts); err != nil {
		t.Fatal(err)
	}
	if s := waitProcState(ctx, pid2, "S", "R"); s == "T" {
		t.Error("node2 still stopped after resume")
	}

	// The restarted process ends without a perturbation: a failure.
	if err := syscall.Kill(newPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-watched:
		var ne *NodeExitError
		if !errors.As(err, &ne) || !errors.Is(err, ErrExited) || ne.Node.Name != "node1" || !ne.Restarted {
			t.Fatalf("watch: %v, want a NodeExitError for node1's restarted process", err)
		}
	case <-ctx.Done():
		t.Fatal("watch did not report the restarted process's death")
	}
	stopWatch()

	// Restart node1 again and pause node2: Stop ends both cleanly.
	removePIDFile(node1.Home, newPID)
	if err := Perturb(ctx, l, "node1", ActionRestart, popts); err != nil {
		t.Fatal(err)
	}
	adopted, _ := ReadPID(node1.Home)
	if err := Perturb(ctx, l, "node2", ActionPause, popts); err != nil {
		t.Fatal(err)
	}
	if err := procs.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, pid := range []int{adopted, pid2} {
		if alive(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
	for _, n := range l.Nodes {
		if _, err := os.Stat(filepath.Join(n.Home, PIDFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s pid file left after Stop: %v", n.Name, err)
		}
	}
}
