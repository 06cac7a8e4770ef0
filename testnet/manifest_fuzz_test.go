package testnet

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseManifest: no manifest text makes the parser panic, and what it
// rejects it rejects with ErrInvalidManifest.
func FuzzParseManifest(f *testing.F) {
	if src, err := os.ReadFile(filepath.Join("examples", "adversarial.toml")); err == nil {
		f.Add(src)
	}
	f.Add([]byte("nodes = 3\n"))
	f.Add([]byte("[[node]]\nname = \"a\"\nstake = 0\n"))
	f.Add([]byte("[[perturbation]]\nat = \"1s\"\nnode = \"node9\"\naction = \"explode\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := ParseManifest(src); err != nil && !errors.Is(err, ErrInvalidManifest) {
			t.Fatalf("error %v does not wrap ErrInvalidManifest", err)
		}
	})
}
