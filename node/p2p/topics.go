package p2p

import (
	"errors"
	"fmt"
	"strconv"
)

// Kinds of gossip topic. Every node joins all four.
const (
	KindJobs     = "jobs"
	KindBallots  = "ballots"
	KindCerts    = "certs"
	KindEvidence = "evidence" // proofs of equivocation
)

// Kinds lists the topic kinds in a fixed order.
var Kinds = [...]string{KindJobs, KindBallots, KindCerts, KindEvidence}

// topicVersion is the wire version of the message encodings on a topic
// and the direct and sync protocols: 2 since bundles (bundle.go), 3 since
// a job announcement may carry a batch proof (consensus.Job.Batch), 4
// since certificates are gossiped in their binary form
// (consensus.AppendCertificateBinary).
const topicVersion = "4"

// ErrUnknownKind is returned for a topic kind not in Kinds.
var ErrUnknownKind = errors.New("unknown topic kind")

// TopicName returns the gossipsub topic of a kind on a network:
// /verity/<network>/<kind>/3. The kind is not checked; see ValidKind.
func TopicName(networkID uint64, kind string) string {
	return "/verity/" + strconv.FormatUint(networkID, 10) + "/" + kind + "/" + topicVersion
}

// ValidKind reports whether kind is one of Kinds.
func ValidKind(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

func checkKind(kind string) error {
	if !ValidKind(kind) {
		return fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	return nil
}
