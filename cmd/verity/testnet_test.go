//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verity-network/verity/testnet"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeTestnetBase returns a base port at which the p2p ports (TCP and UDP)
// and API ports of n testnet nodes are all free right now. The search
// starts at a place derived from the process id, so that test binaries
// running at the same time start apart.
// Bases lie in 20000..30900, so every port stays below the kernel's
// ephemeral range (32768 and up on Linux), where ports bound to :0 by
// other tests would come and go.
func freeTestnetBase(t *testing.T, n int) int {
	t.Helper()
	for attempt := range 50 {
		base := 20000 + ((os.Getpid()+attempt*7919)%110)*100
		if testnetPortsFree(base, n) {
			return base
		}
	}
	t.Fatal("no free port range for a testnet")
	return 0
}

func testnetPortsFree(base, n int) bool {
	var open []interface{ Close() error }
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range n {
		p2p := "127.0.0.1:" + strconv.Itoa(base+2*i)
		tcp, err := net.Listen("tcp", p2p)
		if err != nil {
			return false
		}
		open = append(open, tcp)
		udp, err := net.ListenPacket("udp", p2p)
		if err != nil {
			return false
		}
		open = append(open, udp)
		api, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+1000+i))
		if err != nil {
			return false
		}
		open = append(open, api)
	}
	return true
}

// verityProcess is a verity command running as a child of the test.
type verityProcess struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string // standard output, line by line
	stderr string      // file holding standard error
	done   chan struct{}
	err    error // exit error, valid once done is closed
}

func startVerity(t *testing.T, bin, name string, args ...string) *verityProcess {
	t.Helper()
	p := &verityProcess{
		name:   name,
		cmd:    exec.Command(bin, args...),
		lines:  make(chan string, 4096),
		stderr: filepath.Join(t.TempDir(), name+".stderr"),
		done:   make(chan struct{}),
	}
	errFile, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = errFile
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads that far; keep draining the pipe
			}
		}
		p.err = p.cmd.Wait()
		errFile.Close()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine returns the first line of standard output that starts with
// prefix. It fails the test if the process ends first or ctx ends.
func (p *verityProcess) waitLine(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("%s exited (%v) before printing %q; stderr:\n%s", p.name, p.err, prefix, p.stderrText())
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("%s printed no line starting with %q: %v; stderr:\n%s", p.name, prefix, ctx.Err(), p.stderrText())
		}
	}
}

// signalAndWait sends sig and waits at most timeout for the process to end;
// it returns the process's exit code.
func (p *verityProcess) signalAndWait(t *testing.T, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running %s after %s; stderr:\n%s", p.name, timeout, sig, p.stderrText())
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("%s: %v", p.name, p.err)
	}
	return ee.ExitCode()
}

func (p *verityProcess) stderrText() string {
	data, err := os.ReadFile(p.stderr)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

// runVerity runs a verity command to its end and returns its exit code and
// combined output.
func runVerity(ctx context.Context, t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("verity %s: %v", strings.Join(args, " "), err)
	}
	return ee.ExitCode(), string(out)
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// TestRealProcesses builds the verity binary once and runs it as real
// processes: testnets with testnet up, and nodes with verity node.
func TestRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds verity and runs real node processes")
	}
	bin := buildVerity(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, string)
	}{
		{"testnet up certifies an output and stops on SIGTERM", testTestnetUpProcesses},
		{"testnet up reports a node that exits early", testTestnetUpReportsEarlyExit},
		{"testnet up refuses a port another process holds", testTestnetUpPortTaken},
		{"testnet up inproc stops on SIGINT", testTestnetUpInProcess},
		{"testnet up inproc runs the schedule", testTestnetUpInProcessSchedule},
		{"node flags override the config", testNodeCommandOverrides},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, bin) })
	}
}

// testTestnetUpProcesses runs a three-node testnet as real processes with
// `verity testnet up`, certifies an output through node0, verifies the
// certificate offline, and stops the testnet with SIGTERM.
func testTestnetUpProcesses(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "net")
	base := freeTestnetBase(t, 3)

	code, out := runVerity(ctx, t, bin, "testnet", "init", "--nodes", "3", "--dir", dir, "--base-port", strconv.Itoa(base))
	if code != 0 {
		t.Fatalf("testnet init: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, filepath.Join(dir, "nodes.json")) {
		t.Errorf("testnet init does not say where nodes.json is:\n%s", out)
	}
	code, out = runVerity(ctx, t, bin, "testnet", "init", "--nodes", "3", "--dir", dir)
	if code != 1 || !strings.Contains(out, "--force") {
		t.Errorf("testnet init over an existing testnet: exit %d, want 1 and a hint at --force:\n%s", code, out)
	}
	layout, err := testnet.LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}

	up := startVerity(t, bin, "testnet-up", "testnet", "up", "--dir", dir, "--timeout", "90s")
	up.waitLine(ctx, t, "testnet up: 3 nodes")
	var pids []int
	for _, n := range layout.Nodes {
		data, err := os.ReadFile(filepath.Join(n.Home, testnet.PIDFile))
		if err != nil {
			t.Fatalf("%s pid file: %v", n.Name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatalf("%s pid file: %v", n.Name, err)
		}
		if !processAlive(pid) {
			t.Fatalf("%s (pid %d) is not running", n.Name, pid)
		}
		pids = append(pids, pid)
		if !testnet.Healthy(ctx, nil, n.API) {
			t.Errorf("%s /healthz is not 200 after testnet up", n.Name)
		}
	}

	const output = "Paris is the capital of France and Berlin is the capital of Germany. Water boils at 100 degrees Celsius at sea level."
	certPath := filepath.Join(tmp, "cert.json")
	code, out = runVerity(ctx, t, bin, "submit", "--api", layout.Nodes[0].API, "--text", output,
		"--genesis", layout.GenesisPath(), "--out", certPath, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("submit: exit %d, want 0 (verified)\n%s", code, out)
	}
	outputPath := filepath.Join(tmp, "answer.txt")
	if err := os.WriteFile(outputPath, []byte(output), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runVerity(ctx, t, bin, "cert", "verify", "--genesis", layout.GenesisPath(), "--output", outputPath, certPath)
	if code != 0 {
		t.Fatalf("cert verify: exit %d\n%s", code, out)
	}
	// The certificate must name the output it was issued for.
	if err := os.WriteFile(outputPath, []byte(output+" Not the same output."), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out = runVerity(ctx, t, bin, "cert", "verify", "--genesis", layout.GenesisPath(), "--output", outputPath, certPath); code == 0 {
		t.Fatalf("cert verify accepted the certificate for another output:\n%s", out)
	}

	if code := up.signalAndWait(t, syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("testnet up exited %d after SIGTERM, want 0; stderr:\n%s", code, up.stderrText())
	}
	for i, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still running after testnet up exited", layout.Nodes[i].Name, pid)
		}
	}
	// Every node handled the SIGTERM itself (its handler is in place before
	// its API answers) and said so in its log.
	for _, n := range layout.Nodes {
		log, err := os.ReadFile(n.LogPath())
		if err != nil {
			t.Errorf("%s log: %v", n.Name, err)
			continue
		}
		if !strings.Contains(string(log), n.Name+": stopping") {
			t.Errorf("%s log does not show a clean stop:\n%s", n.Name, log)
		}
	}
}

// testTestnetUpPortTaken: a port of the testnet that another process holds
// (another testnet's node, say) stops testnet up before any node starts,
// naming the port and its holder; nothing is counted healthy and nothing
// is said to have failed to stop.
func testTestnetUpPortTaken(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	layout, err := testnet.Init(testnet.InitOptions{Dir: dir, Nodes: 2, BasePort: freeTestnetBase(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := strings.TrimPrefix(layout.Nodes[1].API, "http://")
	ln, err := net.Listen("tcp", apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(apiAddr)
	for _, args := range [][]string{{"testnet", "up", "--dir", dir}, {"testnet", "up", "--inproc", "--dir", dir}} {
		code, out := runVerity(ctx, t, bin, args...)
		if code != 1 {
			t.Fatalf("%s with a port taken: exit %d, want 1\n%s", strings.Join(args, " "), code, out)
		}
		want := "node1's API port tcp/" + port + " is already in use by pid " + strconv.Itoa(os.Getpid())
		if !strings.Contains(out, want) {
			t.Errorf("%s does not say %q:\n%s", strings.Join(args, " "), want, out)
		}
		for _, bad := range []string{"healthy", "did not stop cleanly", "started"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s says %q although nothing started:\n%s", strings.Join(args, " "), bad, out)
			}
		}
	}
	for _, n := range layout.Nodes {
		if _, err := os.Stat(n.LogPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was started (its log exists: %v)", n.Name, err)
		}
	}
}

// testTestnetUpReportsEarlyExit checks that testnet up fails with exit 1 and
// the node's log when a node cannot start.
func testTestnetUpReportsEarlyExit(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	layout, err := testnet.Init(testnet.InitOptions{Dir: dir, Nodes: 2, BasePort: freeTestnetBase(t, 2)})
	if err != nil {
		t.Fatal(err)
	}
	// node1 cannot unlock its key.
	if err := os.WriteFile(filepath.Join(layout.Nodes[1].Home, testnet.PasswordFile), []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runVerity(ctx, t, bin, "testnet", "up", "--dir", dir, "--timeout", "60s")
	if code != 1 {
		t.Fatalf("testnet up with a broken node: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "node1") || !strings.Contains(out, layout.Nodes[1].LogPath()) {
		t.Errorf("testnet up does not name the failed node and its log:\n%s", out)
	}
	if !strings.Contains(out, "password") {
		t.Errorf("testnet up does not show the node's error from its log:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(layout.Nodes[0].Home, testnet.PIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node0 pid file left behind (node0 not stopped?): %v", err)
	}
}

// testTestnetUpInProcess runs testnet up --inproc and stops it with SIGINT.
func testTestnetUpInProcess(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	layout, err := testnet.Init(testnet.InitOptions{Dir: dir, Nodes: 3, BasePort: freeTestnetBase(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	up := startVerity(t, bin, "testnet-up-inproc", "testnet", "up", "--inproc", "--dir", dir)
	up.waitLine(ctx, t, "testnet up: 3 nodes")
	for _, n := range layout.Nodes {
		if !testnet.Healthy(ctx, nil, n.API) {
			t.Errorf("%s /healthz is not 200", n.Name)
		}
	}
	if code := up.signalAndWait(t, os.Interrupt, 30*time.Second); code != 0 {
		t.Fatalf("testnet up --inproc exited %d after SIGINT, want 0; stderr:\n%s", code, up.stderrText())
	}
}

// testTestnetUpInProcessSchedule runs a manifest's kill and restart with
// testnet up --inproc, and a pause, which one process cannot do, with a
// second run that must fail.
func testTestnetUpInProcessSchedule(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	manifest := filepath.Join(tmp, "net.toml")
	src := "nodes = 3\n" +
		"[[perturbation]]\nat = \"500ms\"\nnode = \"node1\"\naction = \"kill\"\n" +
		"[[perturbation]]\nat = \"1s\"\nnode = \"node1\"\naction = \"restart\"\n"
	if err := os.WriteFile(manifest, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "net")
	base := strconv.Itoa(freeTestnetBase(t, 3))
	if code, out := runVerity(ctx, t, bin, "testnet", "init", "--manifest", manifest, "--dir", dir, "--base-port", base); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	up := startVerity(t, bin, "testnet-up-inproc-schedule", "testnet", "up", "--inproc", "--dir", dir)
	up.waitLine(ctx, t, "testnet up: 3 nodes")
	if err := waitFileContains(ctx, up.stderr, "schedule done"); err != nil {
		t.Fatal(err)
	}
	layout, err := testnet.LoadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !testnet.Healthy(ctx, nil, layout.Nodes[1].API) {
		t.Error("node1 not healthy after its scheduled restart")
	}
	if code := up.signalAndWait(t, os.Interrupt, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0; stderr:\n%s", code, up.stderrText())
	}
	if s := up.stderrText(); !strings.Contains(s, "perturbation +500ms: kill node1 done") || !strings.Contains(s, "perturbation +1s: restart node1 done") {
		t.Errorf("stderr does not log the schedule:\n%s", s)
	}

	src = "nodes = 3\n[[perturbation]]\nat = \"100ms\"\nnode = \"node2\"\naction = \"pause\"\n"
	if err := os.WriteFile(manifest, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runVerity(ctx, t, bin, "testnet", "init", "--manifest", manifest, "--dir", dir, "--base-port", base, "--force"); code != 0 {
		t.Fatalf("init --force: exit %d\n%s", code, out)
	}
	code, out := runVerity(ctx, t, bin, "testnet", "up", "--inproc", "--dir", dir)
	if code != 1 || !strings.Contains(out, "not supported") {
		t.Errorf("a pause in one process: exit %d, want 1 and a clear error:\n%s", code, out)
	}
}
