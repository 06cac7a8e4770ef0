package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHelpSaysEachDefaultOnce: no flag's help line states two defaults
// ("(default: the node's) (default: -1)").
func TestHelpSaysEachDefaultOnce(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue // urfave/cli's own, nested under itself
			}
			p := append(append([]string{}, path...), c.Name)
			if len(c.Subcommands) > 0 {
				walk(p, c.Subcommands)
				continue
			}
			app := newApp()
			var out bytes.Buffer
			app.Writer, app.ErrWriter = &out, &out
			if err := app.Run(append(append([]string{"verity"}, p...), "--help")); err != nil {
				t.Fatalf("%s --help: %v", strings.Join(p, " "), err)
			}
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Count(l, "default") > 1 {
					t.Errorf("verity %s --help: %q", strings.Join(p, " "), l)
				}
			}
		}
	}
	walk(nil, newApp().Commands)
}

// TestTestnetInitExistsSaysForceOnce: the refusal to overwrite a testnet
// says once how to replace it.
func TestTestnetInitExistsSaysForceOnce(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runApp(t, "testnet", "init", "--nodes", "1", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	_, _, err := runApp(t, "testnet", "init", "--nodes", "1", "--dir", dir)
	if err == nil || strings.Count(err.Error(), "force") != 1 {
		t.Fatalf("second init: %v, want one mention of --force", err)
	}
}
