package main

import (
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
