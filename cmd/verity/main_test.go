package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

// verityBinary is the verity binary the tests of this package build once
// and share; TestMain removes its directory.
var verityBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildVerity builds the verity binary, once per test run, and returns
// its path.
func buildVerity(t *testing.T) string {
	t.Helper()
	b := &verityBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "verity-test-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "verity")
		if out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if verityBinary.dir != "" {
		os.RemoveAll(verityBinary.dir)
	}
	os.Exit(code)
}

// TestOneMoreProc: verity takes one processor more than the runtime's
// default, and exactly what GOMAXPROCS says when it is set.
func TestOneMoreProc(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	oneMoreProc()
	if got := runtime.GOMAXPROCS(0); got != before+1 {
		t.Errorf("GOMAXPROCS unset: %d processors, want %d", got, before+1)
	}
	runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "1")
	oneMoreProc()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS set: oneMoreProc changed %d processors to %d", before, got)
	}
}

// TestCollectLess: verity sets the collector's target to defaultGOGC, and
// leaves it to GOGC when that is set.
func TestCollectLess(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	collectLess()
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Errorf("GOGC unset: target %d, want %d", got, defaultGOGC)
	}
	t.Setenv("GOGC", "100")
	collectLess()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: collectLess changed the target to %d", got)
	}
}
