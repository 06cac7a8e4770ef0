// Package testtier names the two tiers of the project's tests.
//
// The default tier is what `go test -race ./...` runs: every package in a
// few minutes on a two-core machine, with network tests sized so that a
// busy machine slows them down without failing them. The long tier adds the
// scale and soak tests (25 gossip nodes, hundreds of jobs, hundreds of
// random certificates); their names start with TestLong and they run only
// when the environment says so:
//
//	VERITY_TEST_TIER=long go test -race -timeout 60m -run '^TestLong' ./...
package testtier

import (
	"os"
	"testing"
	"time"
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
		t.Skipf("long tier (%s): run with %s=long go test -race -timeout 60m -run '^TestLong' ./...", what, Env)
	}
}

// Limit is limit, cut short when go test's -timeout would end t first: a
// minute before that (half the time left when less than two minutes are),
// so that a test that bounds its waits by it reports what it counted
// rather than being killed with nothing said.
func Limit(t testing.TB, limit time.Duration) time.Duration {
	tt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return limit
	}
	if d, ok := tt.Deadline(); ok {
		left := time.Until(d)
		return min(limit, max(left-time.Minute, left/2))
	}
	return limit
}
