package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-network/verity/sim"
)

func TestSimRefusesBadScenarios(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("validators = 4\n[load]\nrat = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", []string{"sim"}, "give one scenario file"},
		{"unknown key", []string{"sim", bad}, `unknown key "load.rat"`},
		{"missing file", []string{"sim", filepath.Join(dir, "none.toml")}, "no such file"},
		{"plots without a sweep", []string{"sim", "--plots", dir, "../../sim/examples/small.toml"}, "--plots needs"},
		{"two sweeps", []string{"sim", "--sweep-nodes", "5", "--sweep-liars", "0.1", "../../sim/examples/small.toml"}, "one sweep at a time"},
		{"bad sweep", []string{"sim", "--sweep-nodes", "5,x", "../../sim/examples/small.toml"}, `"x" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runApp(t, tc.args...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want exit code 2 saying %q", err, tc.want)
			}
		})
	}
}

// TestSimSmallScenarioJSON runs the smallest example in real time: every
// job final, every claim right, and the report says real time.
func TestSimSmallScenarioJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulated network")
	}
	out, _, err := runApp(t, "sim", "--json", "-q", "--store-dir", t.TempDir(), "../../sim/examples/small.toml")
	if err != nil {
		t.Fatal(err)
	}
	var r sim.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if r.Time != "real" || r.Validators != 5 || r.Final == 0 || r.Final != r.Measured || r.WrongClaims != 0 {
		t.Fatalf("report %+v", r)
	}
}
