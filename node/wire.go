package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/strictjson"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/sigs"
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
	MaxClaimTextBytes  = 4 << 10
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

// JobMessage announces a job on the jobs topic. The gateway signs its EIP-712
// digest (sigs.JobDigest); the job id commits to the quorum rule, the
// replication, the gateway, the deadline and the nonce, and the claims root
// to the claim texts.
type JobMessage struct {
	NetworkID   uint64           `json:"network_id"`
	JobID       common.Hash      `json:"job_id"`
	Nonce       common.Hash      `json:"nonce"`
	OutputHash  common.Hash      `json:"output_hash"`
	ClaimsRoot  common.Hash      `json:"claims_root"`
	Claims      []string         `json:"claims"`
	Quorum      consensus.Quorum `json:"quorum"`
	Replication uint32           `json:"replication"`
	Deadline    uint64           `json:"deadline"` // unix milliseconds
	Gateway     common.Address   `json:"gateway"`
	Signature   hexutil.Bytes    `json:"signature"`
	gatewayPeer peer.ID          // from the signature; not encoded

	// Resend numbers a re-announcement of the job by its gateway: 0 for
	// the first announcement, then increasing (the gateway's clock in unix
	// milliseconds, or more). The gateway signs it with the job; it is not
	// part of the job id. A new resend makes the message new to gossip, so
	// that validators that missed the job, or whose ballot the gateway
	// missed, answer again; only the gateway can make one.
	Resend uint64 `json:"resend,omitempty"`
}

// BallotMessage is a ballot as gossiped. Resend, when set, is the job's
// re-announcement it answers: it makes the message new to gossip while the
// ballot stays the same (a repeat is a no-op in the tally). It is not
// signed: a node takes a repeat of a ballot it already has at most once per
// answerInterval, whatever its resend.
type BallotMessage struct {
	consensus.Ballot
	Resend uint64 `json:"resend,omitempty"`
}

// Params are the consensus parameters of the job.
func (m *JobMessage) Params() consensus.JobParams {
	return consensus.JobParams{
		NetworkID:   m.NetworkID,
		OutputHash:  m.OutputHash,
		ClaimsRoot:  m.ClaimsRoot,
		ClaimCount:  uint32(len(m.Claims)),
		Quorum:      m.Quorum,
		Replication: m.Replication,
		Gateway:     m.Gateway,
		Deadline:    m.Deadline,
		Nonce:       m.Nonce,
	}
}

// ClaimList returns the claims with indexes and hashes.
func (m *JobMessage) ClaimList() []claims.Claim { return claims.FromTexts(m.Claims) }

// Digest is what the gateway signs: the job and the resend number.
func (m *JobMessage) Digest() common.Hash {
	return sigs.JobDigest(m.NetworkID, sigs.JobData{
		JobID:      m.JobID,
		OutputHash: m.OutputHash,
		ClaimsRoot: m.ClaimsRoot,
		ClaimCount: uint32(len(m.Claims)),
		Deadline:   m.Deadline,
		Resend:     m.Resend,
	})
}

// Sign sets the signature of the job message with its resend number; s
// must be the job's gateway.
func (m *JobMessage) Sign(s sigs.Signer) error {
	if s.Address() != m.Gateway {
		return fmt.Errorf("%w: %s cannot sign for gateway %s", consensus.ErrBadSignature, s.Address().Hex(), m.Gateway.Hex())
	}
	sig, err := s.SignDigest(m.Digest())
	if err != nil {
		return err
	}
	m.Signature = sig
	return nil
}

// encode is the wire encoding of a gossiped message: compact JSON without
// HTML escaping (json.Marshal would turn each of < > & into six bytes).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeJob decodes and fully checks a job message against the validator set:
// shape (sizes, canonical encoding, network, claims, root, job id, quorum),
// then the gateway's signature of the job and its resend number. Nothing
// here touches node state.
func DecodeJob(data []byte, set *consensus.ValidatorSet) (*JobMessage, error) {
	m, err := decodeJobShape(data, set)
	if err != nil {
		return nil, err
	}
	if err := m.verifySignature(); err != nil {
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
	if err := strictjson.Decode(data, &m, MaxJobMessageSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if err := checkCanonical(&m, data); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	if m.NetworkID != set.NetworkID() {
		return nil, fmt.Errorf("%w: job for network %d", consensus.ErrWrongNetwork, m.NetworkID)
	}
	if _, _, ok := set.Lookup(m.Gateway); !ok {
		return nil, fmt.Errorf("%w: gateway %s", consensus.ErrUnknownValidator, m.Gateway.Hex())
	}
	if err := m.Params().Validate(set); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJobMessage, err)
	}
	hashes := make([]common.Hash, len(m.Claims))
	for i, t := range m.Claims {
		if t == "" || len(t) > MaxClaimTextBytes || !utf8.ValidString(t) {
			return nil, fmt.Errorf("%w: claim %d is empty, too long or not UTF-8", ErrBadJobMessage, i)
		}
		hashes[i] = claims.HashText(t)
	}
	if claims.Root(hashes) != m.ClaimsRoot {
		return nil, fmt.Errorf("%w: %w", ErrBadJobMessage, consensus.ErrClaimsRoot)
	}
	if m.Params().ID() != m.JobID {
		return nil, fmt.Errorf("%w: %w", ErrBadJobMessage, consensus.ErrJobID)
	}
	return &m, nil
}

// verifySignature checks that the job's gateway signed the job with its
// resend number, and keeps the gateway's peer id.
func (m *JobMessage) verifySignature() error {
	pub, err := sigs.RecoverPublicKey(m.Digest(), m.Signature)
	if err != nil {
		return fmt.Errorf("%w: job: %w", consensus.ErrBadSignature, err)
	}
	if signer := crypto.PubkeyToAddress(*pub); signer != m.Gateway {
		return fmt.Errorf("%w: job signed by %s, gateway is %s", consensus.ErrBadSignature, signer.Hex(), m.Gateway.Hex())
	}
	// The gateway's key is also its libp2p identity: its peer id, for
	// sending it ballots directly.
	if id, err := p2p.PeerIDFromPublicKey(pub); err == nil {
		m.gatewayPeer = id
	}
	return nil
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

// GatewayPeer is the libp2p peer id of the job's gateway, recovered from
// the job's signature ("" if it cannot be).
func (m *JobMessage) GatewayPeer() peer.ID {
	if m.gatewayPeer == "" {
		if pub, err := sigs.RecoverPublicKey(m.Digest(), m.Signature); err == nil {
			m.gatewayPeer, _ = p2p.PeerIDFromPublicKey(pub)
		}
	}
	return m.gatewayPeer
}

// DecodeBallot decodes a ballot and checks what can be checked without the
// job: size, network, known validator, verdict codes, and the signature.
// The job-specific shape (assignment) is checked by the tally.
func DecodeBallot(data []byte, set *consensus.ValidatorSet, opts ...consensus.VerifyOption) (*consensus.Ballot, error) {
	if len(data) > MaxBallotMessageSize {
		return nil, fmt.Errorf("%w: ballot of %d bytes", ErrMessageTooLarge, len(data))
	}
	var msg BallotMessage
	if err := strictjson.Decode(data, &msg, MaxBallotMessageSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if err := checkCanonical(&msg, data); err != nil {
		return nil, fmt.Errorf("ballot: %w", err)
	}
	b := msg.Ballot
	if b.NetworkID != set.NetworkID() {
		return nil, fmt.Errorf("%w: ballot for network %d", consensus.ErrWrongNetwork, b.NetworkID)
	}
	if _, _, ok := set.Lookup(b.Validator); !ok {
		return nil, fmt.Errorf("%w %s", consensus.ErrUnknownValidator, b.Validator.Hex())
	}
	if len(b.ClaimIndexes) != len(b.Verdicts) || len(b.ClaimIndexes) > consensus.MaxClaims {
		return nil, fmt.Errorf("%w: %d indexes, %d verdicts", consensus.ErrBallotShape, len(b.ClaimIndexes), len(b.Verdicts))
	}
	if err := consensus.VerifyBallotSignature(&b, opts...); err != nil {
		return nil, err
	}
	return &b, nil
}

// DecodeCertificate decodes a gossiped certificate and verifies it against
// the validator set: it must be valid and final (consensus.VerifyCertificate).
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
// limit and the strict parse.
func parseCertificate(data []byte) (*consensus.Certificate, error) {
	if len(data) > MaxCertMessageSize {
		return nil, fmt.Errorf("%w: certificate of %d bytes", ErrMessageTooLarge, len(data))
	}
	return consensus.ParseCertificate(data)
}
