package main

import (
	"slices"
	"strings"
	"testing"
)

// TestFlagsAfterArguments: flags after a command's positional argument are
// read as flags, for every command that takes arguments, not as arguments.
func TestFlagsAfterArguments(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{"verity audit 0xabc --api http://x:1", "verity audit --api http://x:1 0xabc"},
		{"verity audit 0xabc --api=http://x:1 --json", "verity audit --api=http://x:1 --json 0xabc"},
		{"verity --log-level debug watch 0xabc --api http://x:1", "verity --log-level debug watch --api http://x:1 0xabc"},
		{"verity cert verify c.json --genesis g.json --output o.txt", "verity cert verify --genesis g.json --output o.txt c.json"},
		{"verity testnet perturb node1 kill --dir ./net", "verity testnet perturb --dir ./net node1 kill"},
		{"verity submit - --api http://x:1", "verity submit --api http://x:1 -"},
		{"verity audit 0xabc --nope", "verity audit --nope 0xabc"},
		{"verity audit -- 0xabc --api", "verity audit -- 0xabc --api"},
		{"verity demo", "verity demo"},
	} {
		if got := strings.Join(flagsFirst(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	// An undefined flag after the argument is an error, not an argument.
	out, code := runCertCLI(t, "cert", "verify", vec("valid.json"), "--genesis", vec("genesis.json"), "--nope")
	if code == 0 || !strings.Contains(out, "flag provided but not defined: -nope") {
		t.Fatalf("exit %d: %s", code, out)
	}
	// Every command that takes arguments is covered by the same path.
	var withArgs []string
	for _, c := range app.Commands {
		for _, s := range append(slices.Clone(c.Subcommands), c) {
			if s.ArgsUsage != "" {
				withArgs = append(withArgs, s.FullName())
			}
		}
	}
	if len(withArgs) < 5 {
		t.Fatalf("commands with arguments: %v", withArgs)
	}
}
