package main

import (
	"os"
	"testing"
)

// TestDevNullIsNoTerminal: output sent to /dev/null is a pipe's kind of
// output, not a terminal's (it is a character device all the same).
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatal("/dev/null taken for a terminal")
	}
}
