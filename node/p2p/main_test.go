package p2p

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests. No
// goroutine needs ignoring: with TCP and QUIC only and metrics off, a closed
// libp2p host and a cancelled gossipsub stop all theirs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
