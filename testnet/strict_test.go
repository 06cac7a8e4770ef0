package testnet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-network/verity/internal/strictjson"
)

// TestFilesStrict: nodes.json, schedule.json and a snapshot with a member
// stated twice, or a case variant of a member, are refused naming the key.
func TestFilesStrict(t *testing.T) {
	layout := func(dir string) error { _, err := LoadLayout(dir); return err }
	schedule := func(dir string) error { _, err := LoadSchedule(dir); return err }
	snapshot := func(dir string) error { _, err := LoadSnapshot(filepath.Join(dir, "snapshot.json")); return err }
	tests := []struct {
		name    string
		file    string
		content string
		load    func(dir string) error
		want    string
	}{
		{"nodes duplicate home", NodesFile, `[{"name":"node0","home":"node0","home":"/"}]`, layout, `duplicate key "home" in /0`},
		{"nodes case-variant home", NodesFile, `[{"name":"node0","Home":"/"}]`, layout, `unknown key "Home" in /0`},
		{"nodes trailing data", NodesFile, `[{"name":"node0","home":"node0"}] []`, layout, "trailing data"},
		{"schedule duplicate action", ScheduleFile, `{"perturbations":[{"at":"1s","node":"node0","action":"kill","action":"restart"}]}`, schedule, `duplicate key "action" in /perturbations/0`},
		{"schedule case-variant perturbations", ScheduleFile, `{"Perturbations":[]}`, schedule, `unknown key "Perturbations"`},
		{"snapshot duplicate certificates", "snapshot.json", `{"taken_at":"2026-01-02T03:04:05Z","certificates":{},"certificates":{}}`, snapshot, `duplicate key "certificates"`},
		{"snapshot duplicate node", "snapshot.json", `{"taken_at":"2026-01-02T03:04:05Z","certificates":{"node0":[],"node0":[]}}`, snapshot, `duplicate key "node0" in /certificates`},
		{"snapshot case-variant taken at", "snapshot.json", `{"Taken_At":"2026-01-02T03:04:05Z"}`, snapshot, `unknown key "Taken_At"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := tt.load(dir)
			if !errors.Is(err, strictjson.ErrInvalid) {
				t.Fatalf("%v: want strictjson.ErrInvalid", err)
			}
			if tt.file != "snapshot.json" && !errors.Is(err, ErrInvalidLayout) {
				t.Fatalf("%v: want ErrInvalidLayout", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v: want %q in it", err, tt.want)
			}
		})
	}
}
