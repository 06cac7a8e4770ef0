package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/verity-network/verity/api"
)

// TestDescribeMalformedEvent: a node's event is input, not trusted: lengths
// that differ must not crash the CLI.
func TestDescribeMalformedEvent(t *testing.T) {
	e := api.Event{Type: api.EventBallotAttached, Data: []byte(`{"claim_indexes":[0,1],"verdicts":[1],"name":"n"}`)}
	if got := describeEvent(e); !strings.Contains(got, "0=true") || !strings.Contains(got, "malformed") {
		t.Fatalf("describeEvent = %q", got)
	}
	e.Data = []byte(`{"claim_indexes":[0],"verdicts":[7]}`)
	if got := describeEvent(e); !strings.Contains(got, "code 7") {
		t.Fatalf("describeEvent = %q", got)
	}
}

// TestCheckUsageErrorExit2: a mistyped check command line means "cannot
// check" (2), never "an invariant failed" (1).
func TestCheckUsageErrorExit2(t *testing.T) {
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	err := app.Run([]string{"verity", "testnet", "check", "--bogus"})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("check --bogus: %v, want exit code 2", err)
	}
}
