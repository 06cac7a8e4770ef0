// Package testtier names the two tiers of the project's tests.
//
// The default tier is what `go test -race ./...` runs: every package in a
// few minutes on a two-core machine, with network tests sized so that a
// busy machine slows them down without failing them. The long tier adds the
// scale and soak tests (25 gossip nodes, hundreds of jobs, hundreds of
// random certificates); their names start with TestLong and they run only
// when the environment says so:
//
//	VERITY_TEST_TIER=long go test -race -run '^TestLong' ./...
package testtier

import (
	"os"
	"testing"
)

// Env is the environment variable that selects the tier.
const Env = "VERITY_TEST_TIER"

// IsLong reports whether the long tier is enabled.
func IsLong() bool { return os.Getenv(Env) == "long" }

// Long skips t unless the long tier is enabled, saying what the test is
// (why it is long) and how to run it.
func Long(t testing.TB, what string) {
	t.Helper()
	if !IsLong() {
		t.Skipf("long tier (%s): run with %s=long go test -race -run '^TestLong' ./...", what, Env)
	}
}
