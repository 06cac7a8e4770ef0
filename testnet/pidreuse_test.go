//go:build linux

package testnet

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPerturbRefusesReusedPID: a pid file left behind by a runner that
// died may name an unrelated process that reused the pid; perturb must not
// signal it.
func TestPerturbRefusesReusedPID(t *testing.T) {
	home := t.TempDir()
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Skipf("no sleep command: %v", err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	if err := os.WriteFile(filepath.Join(home, PIDFile), []byte(strconv.Itoa(other.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &Layout{Dir: filepath.Dir(home), Nodes: []NodeInfo{{Name: "node0", Home: home}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, a := range []Action{ActionKill, ActionPause} {
		if err := Perturb(ctx, l, "node0", a, PerturbOptions{}); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("%s of a reused pid: %v, want ErrNotRunning", a, err)
		}
	}
	if !alive(other.Process.Pid) {
		t.Fatal("the unrelated process was signalled")
	}
	if Perturbed(home) {
		t.Fatal("a perturbed marker was left for a node that was not killed")
	}
}
