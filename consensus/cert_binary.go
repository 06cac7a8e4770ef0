package consensus

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
)

// The binary form of a certificate.
//
// A certificate's JSON spells every hash, address and signature in hex
// and names every field: about 3.4 KB for a 1-claim certificate of four
// validators' batch ballots, where the binary form below takes about 1.4
// KB. Nodes gossip certificates in it (docs/protocol.md) and stores keep
// them in it; JSON stays the form a certificate is handed to a person or
// a verifier in (docs/certificate.md).
//
// The form is a tag byte (CertificateBinaryTag, never the first byte of
// JSON), then every field of Certificate in declaration order: unsigned
// integers as uvarints, hashes and addresses as their bytes, strings and
// byte strings as a uvarint length and the bytes, lists as a uvarint
// count and the items, an optional batch proof as a byte (0 absent, 1
// present) and the proof, and a time as a byte (0 the zero time, 1
// otherwise) then the unix seconds as a varint and the nanoseconds as a
// uvarint. Nothing may follow the last field.
//
// A certificate has one binary form: ParseCertificateBinary takes every
// number only in its shortest encoding and every string only as UTF-8,
// so that what it reads is written back byte for byte. Gossip tells
// messages apart by the hash of their bytes.

// CertificateBinaryTag is the first byte of a certificate's binary form.
const CertificateBinaryTag = 0xc1

// ErrCertificateBinary is data that is not a certificate's binary form
// (an ErrCertificateShape).
var ErrCertificateBinary = fmt.Errorf("%w: not in the binary form", ErrCertificateShape)

// IsCertificateBinary reports whether data is in the binary form (by its
// first byte; JSON starts otherwise).
func IsCertificateBinary(data []byte) bool { return len(data) > 0 && data[0] == CertificateBinaryTag }

// CertificateBinaryJobID returns the job id of a certificate in the
// binary form, read from its place without parsing the rest; ok is false
// for data too short to hold one. It says nothing of the rest's validity.
func CertificateBinaryJobID(data []byte) (id common.Hash, ok bool) {
	if !IsCertificateBinary(data) {
		return id, false
	}
	rest := data[1:]
	for range 2 { // the version and the network id
		_, n := binary.Uvarint(rest)
		if n <= 0 {
			return id, false
		}
		rest = rest[n:]
	}
	if len(rest) < 2*common.HashLength { // the genesis hash, the job id
		return id, false
	}
	copy(id[:], rest[common.HashLength:])
	return id, true
}

// AppendBinary appends c's binary form to dst (encoding.BinaryAppender;
// it never fails).
func (c *Certificate) AppendBinary(dst []byte) ([]byte, error) {
	return AppendCertificateBinary(dst, c), nil
}

// AppendCertificateBinary appends c's binary form to dst.
func AppendCertificateBinary(dst []byte, c *Certificate) []byte {
	dst = append(dst, CertificateBinaryTag)
	dst = binary.AppendUvarint(dst, uint64(c.Version))
	dst = binary.AppendUvarint(dst, c.NetworkID)
	dst = append(dst, c.GenesisHash[:]...)
	dst = append(dst, c.JobID[:]...)
	dst = append(dst, c.JobNonce[:]...)
	dst = append(dst, c.OutputHash[:]...)
	dst = append(dst, c.ClaimsRoot[:]...)
	dst = appendString(dst, c.Quorum.Kind)
	dst = binary.AppendUvarint(dst, c.Quorum.Num)
	dst = binary.AppendUvarint(dst, c.Quorum.Den)
	dst = binary.AppendUvarint(dst, c.Quorum.N)
	dst = binary.AppendUvarint(dst, c.Quorum.M)
	dst = binary.AppendUvarint(dst, uint64(c.Replication))
	dst = append(dst, c.Gateway[:]...)
	dst = binary.AppendUvarint(dst, c.DeadlineMS)
	dst = appendString(dst, string(c.Status))
	dst = binary.AppendUvarint(dst, uint64(len(c.Claims)))
	for i := range c.Claims {
		cl := &c.Claims[i]
		dst = binary.AppendUvarint(dst, uint64(cl.Index))
		dst = appendString(dst, cl.Text)
		dst = append(dst, cl.Hash[:]...)
		dst = appendString(dst, string(cl.Verdict))
		dst = binary.AppendUvarint(dst, cl.StakeFor)
		dst = binary.AppendUvarint(dst, cl.StakeTotal)
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Ballots)))
	for i := range c.Ballots {
		v := &c.Ballots[i]
		dst = append(dst, v.Validator[:]...)
		dst = binary.AppendUvarint(dst, uint64(len(v.ClaimIndexes)))
		for _, x := range v.ClaimIndexes {
			dst = binary.AppendUvarint(dst, uint64(x))
		}
		dst = binary.AppendUvarint(dst, uint64(len(v.Verdicts)))
		for _, x := range v.Verdicts {
			dst = append(dst, byte(x))
		}
		dst = appendString(dst, string(v.Signature))
		dst = appendProof(dst, v.Batch)
	}
	dst = appendTime(dst, c.IssuedAt)
	dst = appendString(dst, string(c.GatewaySignature))
	return appendProof(dst, c.GatewayBatch)
}

// CertificateBinary is c's binary form, in a buffer of its own.
func CertificateBinary(c *Certificate) []byte {
	return AppendCertificateBinary(make([]byte, 0, CertificateBinarySize(c)), c)
}

// CertificateBinarySize is about the length of c's binary form, for a
// buffer.
func CertificateBinarySize(c *Certificate) int {
	n := 256
	for i := range c.Claims {
		n += 64 + len(c.Claims[i].Text)
	}
	for i := range c.Ballots {
		n += 128 + 2*len(c.Ballots[i].Verdicts)
		if b := c.Ballots[i].Batch; b != nil {
			n += len(b.Siblings) * common.HashLength
		}
	}
	if b := c.GatewayBatch; b != nil {
		n += len(b.Siblings) * common.HashLength
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendProof(dst []byte, p *BatchProof) []byte {
	if p == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendUvarint(dst, uint64(p.Index))
	dst = binary.AppendUvarint(dst, uint64(p.Count))
	dst = binary.AppendUvarint(dst, uint64(len(p.Siblings)))
	for _, h := range p.Siblings {
		dst = append(dst, h[:]...)
	}
	return dst
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// ParseCertificateBinary decodes the binary form into c, which shares no
// memory with data. Like ParseCertificate, it checks the form only:
// VerifyCertificate says whether the certificate holds.
func ParseCertificateBinary(data []byte, c *Certificate) error {
	if !IsCertificateBinary(data) {
		return fmt.Errorf("%w: no tag", ErrCertificateBinary)
	}
	r := &binReader{data: data[1:]}
	*c = Certificate{
		Version:   uint32(r.uvarint(math.MaxUint32, "version")),
		NetworkID: r.uvarint(math.MaxUint64, "network id"),
	}
	r.fixed(c.GenesisHash[:], "genesis hash")
	r.fixed(c.JobID[:], "job id")
	r.fixed(c.JobNonce[:], "job nonce")
	r.fixed(c.OutputHash[:], "output hash")
	r.fixed(c.ClaimsRoot[:], "claims root")
	c.Quorum.Kind = r.word("quorum")
	c.Quorum.Num = r.uvarint(math.MaxUint64, "quorum")
	c.Quorum.Den = r.uvarint(math.MaxUint64, "quorum")
	c.Quorum.N = r.uvarint(math.MaxUint64, "quorum")
	c.Quorum.M = r.uvarint(math.MaxUint64, "quorum")
	c.Replication = uint32(r.uvarint(math.MaxUint32, "replication"))
	r.fixed(c.Gateway[:], "gateway")
	c.DeadlineMS = r.uvarint(math.MaxUint64, "deadline")
	c.Status = Status(r.word("status"))
	// A claim takes at least 1+1+32+1+1+1 bytes; a ballot 20+1+1+1+1.
	// Lists read as empty, not nil, as issued certificates hold them
	// (JSON []).
	if n := r.count(37, "claims"); r.err == nil {
		c.Claims = make([]CertClaim, n)
		for i := range c.Claims {
			cl := &c.Claims[i]
			cl.Index = uint32(r.uvarint(math.MaxUint32, "claim"))
			cl.Text = r.text("claim")
			r.fixed(cl.Hash[:], "claim")
			cl.Verdict = Outcome(r.word("claim"))
			cl.StakeFor = r.uvarint(math.MaxUint64, "claim")
			cl.StakeTotal = r.uvarint(math.MaxUint64, "claim")
		}
	}
	if n := r.count(24, "ballots"); r.err == nil {
		c.Ballots = make([]Vote, n)
		r.slabs(n, len(c.Claims))
		for i := range c.Ballots {
			v := &c.Ballots[i]
			r.fixed(v.Validator[:], "ballot")
			if n := r.count(1, "ballot"); r.err == nil {
				v.ClaimIndexes = carve(&r.indexes, n)
				for j := range v.ClaimIndexes {
					v.ClaimIndexes[j] = uint32(r.uvarint(math.MaxUint32, "ballot"))
				}
			}
			if n := r.count(1, "ballot"); r.err == nil {
				v.Verdicts = carve(&r.verdicts, n)
				for j := range v.Verdicts {
					v.Verdicts[j] = claims.Verdict(r.byte("ballot"))
				}
			}
			v.Signature = r.blob("ballot")
			v.Batch = r.proof("ballot")
		}
	}
	c.IssuedAt = r.time("issued at")
	c.GatewaySignature = r.blob("gateway signature")
	c.GatewayBatch = r.proof("gateway batch")
	if r.err == nil && len(r.data) > 0 {
		r.fail("trailing bytes")
	}
	return r.err
}

// binReader reads the binary form; the first error sticks, and every read
// after it returns zero values.
type binReader struct {
	data []byte
	err  error

	// Memory for the small parts of a certificate's ballots (slabs): each
	// part a slice of these capped at its length, so that a certificate is
	// a few allocations rather than five a ballot, and an append to one
	// part never writes into the next.
	blobs    []byte
	hashes   []common.Hash
	proofs   []BatchProof
	indexes  []uint32
	verdicts []claims.Verdict
}

// slabs makes the slabs for n ballots on nClaims claims: room for the
// common case (a signature, a proof of up to 64 leaves and a vote on
// each claim a ballot, and the gateway's signature and proof), bounded
// by what the rest of the data can hold. A part that does not fit gets
// memory of its own.
func (r *binReader) slabs(n, nClaims int) {
	rest := len(r.data)
	r.blobs = make([]byte, 0, min((n+1)*65, rest))
	r.hashes = make([]common.Hash, 0, min((n+1)*6, rest/common.HashLength))
	r.proofs = make([]BatchProof, 0, min(n+1, rest/4))
	votes := min(n*max(nClaims, 1), rest)
	r.indexes = make([]uint32, 0, votes)
	r.verdicts = make([]claims.Verdict, 0, votes)
}

// carve takes n items from the slab, or makes them when it is short.
func carve[T any](slab *[]T, n int) []T {
	s := *slab
	if cap(s)-len(s) < n {
		return make([]T, n)
	}
	*slab = s[:len(s)+n]
	return s[len(s) : len(s)+n : len(s)+n]
}

func (r *binReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at %d bytes from the end", ErrCertificateBinary, what, len(r.data))
		r.data = nil
	}
}

// uvarint reads a uvarint in its shortest encoding, at most max.
func (r *binReader) uvarint(max uint64, what string) uint64 {
	x, n := binary.Uvarint(r.data)
	if n <= 0 || x > max || n != uvarintLen(x) {
		r.fail(what)
		return 0
	}
	r.data = r.data[n:]
	return x
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// count reads a list's length: each item takes at least min bytes, so a
// count the rest of the data cannot hold is refused before anything is
// allocated for it.
func (r *binReader) count(min int, what string) int {
	n := r.uvarint(math.MaxUint64, what)
	if n > uint64(len(r.data)/min) {
		r.fail(what)
		return 0
	}
	return int(n)
}

func (r *binReader) fixed(dst []byte, what string) {
	if len(r.data) < len(dst) {
		r.fail(what)
		return
	}
	r.data = r.data[copy(dst, r.data):]
}

// bytes reads a byte string, which aliases the data read.
func (r *binReader) bytes(what string) []byte {
	n := r.uvarint(math.MaxUint64, what)
	if n > uint64(len(r.data)) {
		r.fail(what)
	}
	if n == 0 || r.err != nil {
		return nil
	}
	b := r.data[:n:n]
	r.data = r.data[n:]
	return b
}

// text reads a string, which must be UTF-8 as in JSON.
func (r *binReader) text(what string) string { return r.utf8(r.bytes(what), what) }

// utf8 is b as a string of its own, if UTF-8.
func (r *binReader) utf8(b []byte, what string) string {
	if !utf8.Valid(b) {
		r.fail(what + " (not UTF-8)")
		return ""
	}
	return string(b)
}

// binaryWords are the texts a certificate holds most: its quorum kind,
// status and outcomes.
var binaryWords = [...]string{QuorumStake, QuorumCount,
	string(StatusVerified), string(StatusRejected), string(StatusUnresolved), string(StatusProvisional),
	string(OutcomeTrue), string(OutcomeFalse), string(OutcomeUndecided), string(OutcomePending)}

// word reads a text, returning one of binaryWords as the constant it is
// rather than a copy.
func (r *binReader) word(what string) string {
	b := r.bytes(what)
	for _, w := range binaryWords {
		if string(b) == w {
			return w
		}
	}
	return r.utf8(b, what)
}

// blob reads a byte string into memory of its own: the data read may be
// reused (a store's pages, valid only within their transaction).
func (r *binReader) blob(what string) []byte {
	if b := r.bytes(what); b != nil {
		c := carve(&r.blobs, len(b))
		copy(c, b)
		return c
	}
	return nil
}

func (r *binReader) byte(what string) byte {
	if len(r.data) == 0 {
		r.fail(what)
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *binReader) proof(what string) *BatchProof {
	switch r.byte(what) {
	case 0:
		return nil
	case 1:
	default:
		r.fail(what)
		return nil
	}
	p := &carve(&r.proofs, 1)[0]
	p.Index = uint32(r.uvarint(math.MaxUint32, what))
	p.Count = uint32(r.uvarint(math.MaxUint32, what))
	if n := r.count(common.HashLength, what); r.err == nil {
		p.Siblings = carve(&r.hashes, n)
		for i := range p.Siblings {
			r.fixed(p.Siblings[i][:], what)
		}
	}
	return p
}

func (r *binReader) time(what string) time.Time {
	switch r.byte(what) {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.fail(what)
		return time.Time{}
	}
	sec, n := binary.Varint(r.data)
	var shortest [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutVarint(shortest[:], sec) {
		r.fail(what)
		return time.Time{}
	}
	r.data = r.data[n:]
	ns := r.uvarint(999_999_999, what)
	t := time.Unix(sec, int64(ns)).UTC()
	if t.IsZero() {
		// The zero time has a form of its own (the byte 0).
		r.fail(what)
	}
	return t
}
