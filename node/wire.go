package node

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/jsonw"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
)

// Limits on gossiped messages. A message over a limit is rejected before it
// is decoded.
const (
	MaxJobMessageSize    = 1 << 20
	MaxBallotMessageSize = 64 << 10
	// MaxCertMessageSize is the gossip limit (p2p.DefaultMaxMessageSize).
	// A certificate above it, possible only with many hundreds of
	// validators, is stored by its gateway and served by its API but not
	// gossiped; consensus.MaxCertificateSize bounds certificates read
	// elsewhere.
	MaxCertMessageSize = p2p.DefaultMaxMessageSize
	MaxClaimTextBytes  = consensus.MaxClaimTextBytes
)

// maxStoredJobMessageSize bounds a job message read back from the store.
// The store keeps it as a json.RawMessage, which encoding/json writes out
// again with each of < > & as six bytes (\u003c): a job message within
// MaxJobMessageSize may take up to six times as much there.
const maxStoredJobMessageSize = 6 * MaxJobMessageSize

// Errors of message validation.
var (
	ErrMessageTooLarge = errors.New("message too large")
	ErrDecode          = errors.New("undecodable message")
	ErrBadJobMessage   = errors.New("invalid job message")
	// ErrNotCanonical is a job or ballot message whose bytes are not the
	// encoding this node would write for it (compact JSON, fields in
	// order, no HTML escaping): the same message in other bytes would be
	// new to gossip, so it is refused. It wraps ErrDecode.
	ErrNotCanonical = fmt.Errorf("%w: not in canonical encoding", ErrDecode)
)

// JobMessage announces a job on the jobs topic: a consensus.Job, whose
// rules (Validate, VerifySignature) are the same for gossip, the store and
// certificates.
type JobMessage = consensus.Job

// BallotMessage is a ballot as gossiped. Resend, when set, is the job's
// re-announcement it answers: it makes the message new to gossip while the
// ballot stays the same (a repeat is a no-op in the tally). It is not
// signed: a node takes a repeat of a ballot it already has at most once per
// answerInterval, whatever its resend.
type BallotMessage struct {
	consensus.Ballot
	Resend uint64 `json:"resend,omitempty"`
}

// AppendJSON appends the message's wire encoding to dst: encode's bytes,
// written without reflection (consensus.Ballot.AppendJSON).
func (m *BallotMessage) AppendJSON(dst []byte) []byte {
	dst = m.Ballot.AppendJSON(dst)
	if m.Resend == 0 {
		return dst
	}
	dst = append(dst[:len(dst)-1], `,"resend":`...)
	dst = strconv.AppendUint(dst, m.Resend, 10)
	return append(dst, '}')
}

// parseCanonical decodes data into m if data is m's canonical encoding,
// the bytes AppendJSON writes, and reports whether it was. Anything else,
// which an honest node never sends, is left to decodeCanonical to decode
// or refuse.
func (m *BallotMessage) parseCanonical(data []byte) bool {
	var b consensus.Ballot
	rest, ok := consensus.ParseBallotJSON(data, &b)
	if !ok {
		return false
	}
	if string(rest) == "}" {
		*m = BallotMessage{Ballot: b}
		return true
	}
	// The resend, written only when it is not 0.
	const name = `,"resend":`
	if len(rest) < len(name)+2 || string(rest[:len(name)]) != name || rest[len(rest)-1] != '}' {
		return false
	}
	digits := rest[len(name) : len(rest)-1]
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || n == 0 || digits[0] == '0' {
		return false
	}
	*m = BallotMessage{Ballot: b, Resend: n}
	return true
}

// encode is the wire encoding of a gossiped message: compact JSON without
// HTML escaping (json.Marshal would turn each of < > & into six bytes).
func encode(v any) ([]byte, error) {
	switch m := v.(type) {
	case *BallotMessage:
		return m.AppendJSON(nil), nil
	case *consensus.Certificate:
		return m.AppendJSON(nil)
	case *JobMessage:
		return m.AppendJSON(nil), nil
	}
	return jsonw.Marshal(v)
}

// DecodeJob decodes and fully checks a job message against the validator set:
// shape (sizes, canonical encoding, then consensus.Job.Validate), then the
// gateway's signature of the job and its resend number. Nothing here
// touches node state.
func DecodeJob(data []byte, set *consensus.ValidatorSet) (*JobMessage, error) {
	m, err := decodeJobShape(data, set)
	if err != nil {
		return nil, err
	}
	if _, err := m.VerifySignature(); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeJobShape is DecodeJob without the signature: everything that can be
// refused before any curve arithmetic.
func decodeJobShape(data []byte, set *consensus.ValidatorSet) (*JobMessage, error) {
	if len(data) > MaxJobMessageSize {
		return nil, fmt.Errorf("%w: job of %d bytes", ErrMessageTooLarge, len(data))
	}
	var m JobMessage
	if !consensus.ParseJobJSON(data, &m) {
		if err := decodeCanonical(data, &m, MaxJobMessageSize); err != nil {
			return nil, fmt.Errorf("job: %w", err)
		}
	}
	if err := m.Validate(set); err != nil {
		if errors.Is(err, consensus.ErrBadJob) {
			return nil, fmt.Errorf("%w: %w", ErrBadJobMessage, err)
		}
		return nil, err
	}
	return &m, nil
}

// decodeCanonical decodes a gossiped message strictly into v and refuses it
// unless its bytes are the message's canonical encoding (checkCanonical).
func decodeCanonical(data []byte, v any, maxBytes int) error {
	if err := strictjson.Decode(data, v, maxBytes); err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return checkCanonical(v, data)
}

// checkCanonical refuses data that is not exactly encode(v): a message has
// one encoding, so that gossip, which tells messages apart by the hash of
// their bytes, cannot be handed the same message as new in other bytes.
// Every node writes messages with encode, so an honest peer never forwards
// anything else.
func checkCanonical(v any, data []byte) error {
	enc, err := encode(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if !bytes.Equal(enc, data) {
		return ErrNotCanonical
	}
	return nil
}

// gatewayPeer is the libp2p peer id of the job's gateway: the gateway's key
// is also its libp2p identity. pub is the key its signature recovered to,
// or nil to recover it here. It is "" if it cannot be found.
func gatewayPeer(m *JobMessage, pub *ecdsa.PublicKey) peer.ID {
	if pub == nil {
		var err error
		if pub, err = m.VerifySignature(); err != nil {
			return ""
		}
	}
	id, err := p2p.PeerIDFromPublicKey(pub)
	if err != nil {
		return ""
	}
	return id
}

// DecodeBallot decodes a ballot and checks what can be checked without the
// job: size, canonical encoding, consensus.Ballot.Validate (network, known
// validator, shape), and the signature.
// The job-specific shape (assignment) is checked by the tally.
func DecodeBallot(data []byte, set *consensus.ValidatorSet, opts ...consensus.VerifyOption) (*consensus.Ballot, error) {
	if len(data) > MaxBallotMessageSize {
		return nil, fmt.Errorf("%w: ballot of %d bytes", ErrMessageTooLarge, len(data))
	}
	var msg BallotMessage
	if !msg.parseCanonical(data) {
		if err := decodeCanonical(data, &msg, MaxBallotMessageSize); err != nil {
			return nil, fmt.Errorf("ballot: %w", err)
		}
	}
	b := msg.Ballot
	if err := b.Validate(set); err != nil {
		return nil, err
	}
	if err := consensus.VerifyBallotSignature(&b, opts...); err != nil {
		return nil, err
	}
	return &b, nil
}

// DecodeCertificate decodes a certificate, in its binary form (as
// gossiped) or JSON, and verifies it against the validator set: it must be
// valid and final (consensus.VerifyCertificate).
func DecodeCertificate(data []byte, set *consensus.ValidatorSet, opts ...consensus.VerifyOption) (*consensus.Certificate, error) {
	c, err := parseCertificate(data)
	if err != nil {
		return nil, err
	}
	if err := consensus.VerifyCertificate(c, set, nil, opts...); err != nil {
		return nil, err
	}
	return c, nil
}

// parseCertificate is DecodeCertificate without the verification: the size
// limit and the strict parse of either form.
func parseCertificate(data []byte) (*consensus.Certificate, error) {
	if len(data) > MaxCertMessageSize {
		return nil, fmt.Errorf("%w: certificate of %d bytes", ErrMessageTooLarge, len(data))
	}
	if consensus.IsCertificateBinary(data) {
		c := new(consensus.Certificate)
		if err := consensus.ParseCertificateBinary(data, c); err != nil {
			return nil, err
		}
		return c, nil
	}
	return consensus.ParseCertificate(data)
}
