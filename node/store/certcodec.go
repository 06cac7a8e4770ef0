package store

import (
	"errors"
	"fmt"

	"github.com/verity-network/verity/consensus"
)

// How a certificate is stored.
//
// A certificate's JSON spells every hash, address and signature in hex
// and names every field: about 3.4 KB for a 1-claim certificate of four
// validators' batch ballots. bbolt keeps at least two values in a leaf
// node and rewrites the whole node when one of them changes, so every
// certificate stored under its job's random id rewrote about three pages.
// The store writes certificates in their binary form instead
// (consensus.AppendCertificateBinary, about 1.4 KB for the same
// certificate: two fit in a page), the form nodes gossip them in, and
// reads back either form: certificates stored as JSON before stay
// readable.
const certTag = consensus.CertificateBinaryTag

// isBinaryCert reports whether stored certificate bytes are in the binary
// form (else they are JSON).
func isBinaryCert(data []byte) bool { return consensus.IsCertificateBinary(data) }

// appendCert appends c's binary form to dst.
func appendCert(dst []byte, c *consensus.Certificate) []byte {
	return consensus.AppendCertificateBinary(dst, c)
}

// certSize is about the length of c's binary form, for the buffer.
func certSize(c *consensus.Certificate) int { return consensus.CertificateBinarySize(c) }

// errCertForm is a stored certificate whose binary form does not parse.
var errCertForm = errors.New("malformed stored certificate")

// parseCert decodes the binary form into c, which shares no memory with
// data.
func parseCert(data []byte, c *consensus.Certificate) error {
	if err := consensus.ParseCertificateBinary(data, c); err != nil {
		return fmt.Errorf("%w: %w", errCertForm, err)
	}
	return nil
}
