package consensus

import (
	"bytes"
	"encoding/hex"
	"math"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
)

// A ballot is the message a node encodes and decodes most: one per
// validator per job, written by the validator, stored by it, read and
// stored again by the gateway. Its JSON has no text in it, only numbers
// and hex, so it is written and read here without reflection. The bytes
// are those encoding/json writes for the Ballot (the tests hold them
// equal), which the nodes of a network compare byte for byte: a gossiped
// message has one encoding.

// AppendJSON appends the ballot's JSON to dst: byte for byte what
// encoding/json's Marshal writes for b.
func (b *Ballot) AppendJSON(dst []byte) []byte {
	dst = slices.Grow(dst, b.jsonSize())
	return append(b.appendFields(dst), '}')
}

// The jsonSize methods, and batchJSONSize, are a little over the length
// of what the encoders write when the text needs no escape, so that an
// encoding grows its buffer once and not much beyond it
// (TestJSONSizeHints).

func (b *Ballot) jsonSize() int { return 300 + b.Vote.jsonSize() }

func (v *Vote) jsonSize() int {
	return 110 + 2*len(v.Signature) + 4*len(v.ClaimIndexes) + batchJSONSize(v.Batch)
}

func batchJSONSize(p *BatchProof) int {
	if p == nil {
		return 0
	}
	return 40 + 69*len(p.Siblings)
}

// appendFields is AppendJSON without the closing brace, for a message
// that adds fields after the ballot's.
func (b *Ballot) appendFields(dst []byte) []byte {
	dst = append(dst, `{"network_id":`...)
	dst = strconv.AppendUint(dst, b.NetworkID, 10)
	dst = appendHexField(dst, `,"job_id":`, b.JobID[:])
	dst = appendHexField(dst, `,"output_hash":`, b.OutputHash[:])
	dst = appendHexField(dst, `,"claims_root":`, b.ClaimsRoot[:])
	return b.Vote.appendFields(append(dst, ','))
}

// appendFields appends the vote's fields, from "validator" to "batch",
// without braces.
func (v *Vote) appendFields(dst []byte) []byte {
	dst = appendHexField(dst, `"validator":`, v.Validator[:])
	dst = appendUints(append(dst, `,"claim_indexes":`...), v.ClaimIndexes)
	dst = appendUints(append(dst, `,"verdicts":`...), v.Verdicts)
	dst = appendHexField(dst, `,"signature":`, v.Signature)
	if p := v.Batch; p != nil {
		dst = appendBatch(append(dst, `,"batch":`...), p)
	}
	return dst
}

// appendBatch appends a batch proof's JSON object.
func appendBatch(dst []byte, p *BatchProof) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendUint(dst, uint64(p.Index), 10)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendUint(dst, uint64(p.Count), 10)
	dst = appendList(append(dst, `,"siblings":`...), p.Siblings, func(dst []byte, h *common.Hash) []byte { return appendHex(dst, h[:]) })
	return append(dst, '}')
}

// appendList appends a list as encoding/json writes it, each item with
// item: null for a nil slice.
func appendList[T any](dst []byte, xs []T, item func([]byte, *T) []byte) []byte {
	if xs == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = item(dst, &xs[i])
	}
	return append(dst, ']')
}

// appendUints appends a list of numbers as encoding/json writes it.
func appendUints[T ~uint8 | ~uint32](dst []byte, xs []T) []byte {
	return appendList(dst, xs, func(dst []byte, x *T) []byte { return strconv.AppendUint(dst, uint64(*x), 10) })
}

func appendHexField(dst []byte, name string, b []byte) []byte {
	return appendHex(append(dst, name...), b)
}

// appendHex appends b as hexutil writes it in JSON: a quoted 0x and
// lowercase hex digits ("0x" for no bytes).
func appendHex(dst, b []byte) []byte {
	dst = append(dst, `"0x`...)
	dst = hex.AppendEncode(dst, b)
	return append(dst, '"')
}

// ParseBallotJSON decodes data as the ballot's canonical JSON, the bytes
// AppendJSON writes, and reports whether it is that: false for anything
// else, valid JSON or not, which the caller then decodes (and refuses)
// the general way; b is then left as it was. rest is what follows the
// ballot's last field: "}" alone for a ballot, more fields for a message
// that adds some. A true result leaves b such that appendFields(b) is
// data without rest.
func ParseBallotJSON(data []byte, b *Ballot) (rest []byte, ok bool) {
	p := jsonParser{data: data}
	var v Ballot
	ok = p.lit(`{"network_id":`) && p.uint(&v.NetworkID, math.MaxUint64) &&
		p.lit(`,"job_id":`) && p.hash(&v.JobID) &&
		p.lit(`,"output_hash":`) && p.hash(&v.OutputHash) &&
		p.lit(`,"claims_root":`) && p.hash(&v.ClaimsRoot) &&
		p.lit(`,`) && p.voteFields(&v.Vote)
	if !ok {
		return nil, false
	}
	*b = v
	return p.data, true
}

// voteFields reads what Vote.appendFields writes.
func (p *jsonParser) voteFields(v *Vote) bool {
	ok := p.lit(`"validator":`) && p.address(&v.Validator) &&
		p.lit(`,"claim_indexes":`) && p.indexes(&v.ClaimIndexes) &&
		p.lit(`,"verdicts":`) && p.verdicts(&v.Verdicts) &&
		p.lit(`,"signature":`) && p.bytes((*[]byte)(&v.Signature))
	if !ok {
		return false
	}
	if p.lit(`,"batch":`) {
		v.Batch = new(BatchProof)
		return p.batch(v.Batch)
	}
	return true
}

// batch reads what appendBatch writes.
func (p *jsonParser) batch(b *BatchProof) bool {
	var index, count uint64
	if !(p.lit(`{"index":`) && p.uint(&index, math.MaxUint32) &&
		p.lit(`,"count":`) && p.uint(&count, math.MaxUint32) &&
		p.lit(`,"siblings":`) && p.hashes(&b.Siblings) && p.lit(`}`)) {
		return false
	}
	b.Index, b.Count = uint32(index), uint32(count)
	return true
}

// jsonParser reads a message's JSON, in the one form its AppendJSON
// writes, from the front of data: a ballot's, a job's, a certificate's.
// Each method consumes what it read and reports whether it found what
// it expects in that form.
type jsonParser struct{ data []byte }

func (p *jsonParser) lit(s string) bool {
	if len(p.data) < len(s) || string(p.data[:len(s)]) != s {
		return false
	}
	p.data = p.data[len(s):]
	return true
}

// uint reads a decimal number of at most max, without a sign, a leading
// zero (but for 0 itself), a fraction or an exponent.
func (p *jsonParser) uint(v *uint64, max uint64) bool {
	n := 0
	for n < len(p.data) && p.data[n] >= '0' && p.data[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && p.data[0] == '0') {
		return false
	}
	var x uint64
	for _, c := range p.data[:n] {
		d := uint64(c - '0')
		if x > (math.MaxUint64-d)/10 {
			return false // over 64 bits
		}
		x = x*10 + d
	}
	if x > max {
		return false
	}
	*v, p.data = x, p.data[n:]
	return true
}

// hexDigits reads a quoted 0x and an even number of hex digits, and
// returns the digits, unchecked: decodeLower checks them as it decodes.
func (p *jsonParser) hexDigits() ([]byte, bool) {
	if !p.lit(`"0x`) {
		return nil, false
	}
	end := bytes.IndexByte(p.data, '"')
	if end < 0 || end%2 != 0 {
		return nil, false
	}
	digits := p.data[:end]
	p.data = p.data[end+1:]
	return digits, true
}

// lowerHex maps a lowercase hex digit to its value and every other byte,
// upper-case digits too, to 0xff.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeLower decodes len(dst) bytes of lowercase hex digits into dst:
// false at any other byte.
func decodeLower(dst, digits []byte) bool {
	for i := range dst {
		hi, lo := lowerHex[digits[2*i]], lowerHex[digits[2*i+1]]
		if hi|lo == 0xff {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// fixed reads hex of exactly len(dst) bytes into dst.
func (p *jsonParser) fixed(dst []byte) bool {
	digits, ok := p.hexDigits()
	return ok && len(digits) == 2*len(dst) && decodeLower(dst, digits)
}

func (p *jsonParser) hash(h *common.Hash) bool       { return p.fixed(h[:]) }
func (p *jsonParser) address(a *common.Address) bool { return p.fixed(a[:]) }

func (p *jsonParser) bytes(b *[]byte) bool {
	digits, ok := p.hexDigits()
	if !ok {
		return false
	}
	*b = make([]byte, len(digits)/2)
	return decodeLower(*b, digits)
}

// open reads the start of a list: null (false, true) or [ (true, true).
// next reads what follows an item: ] (false, true) or , (true, true).
func (p *jsonParser) open() (list, ok bool) {
	if p.lit("null") {
		return false, true
	}
	return true, p.lit("[")
}

func (p *jsonParser) next() (more, ok bool) {
	if p.lit("]") {
		return false, true
	}
	return true, p.lit(",")
}

// readList reads null (leaving *v nil) or a list of items, each read by
// item.
func readList[T any](p *jsonParser, v *[]T, item func(*jsonParser) (T, bool)) bool {
	return readListOf(p, v, item, func([]byte) int { return 4 })
}

// readFlatList is readList for items that hold no ']' or ',' (numbers,
// hashes): once the list has opened, its length is counted before it is
// read, so that it is allocated once. The count looks no further than
// flatScan bytes and is bounded (the list grows past it), so that
// neither a long message nor commas with no items between them cost
// more than the list itself.
func readFlatList[T any](p *jsonParser, v *[]T, item func(*jsonParser) (T, bool)) bool {
	return readListOf(p, v, item, flatHint)
}

// flatHint counts the items of a flat list whose items start data: one
// more than its commas before the first ']', at most maxListHint, looking
// at flatScan bytes at most.
func flatHint(data []byte) int {
	data = data[:min(len(data), flatScan)]
	if end := bytes.IndexByte(data, ']'); end >= 0 {
		data = data[:end]
	}
	return min(1+bytes.Count(data, []byte{','}), maxListHint)
}

// maxListHint bounds the room readFlatList allocates before reading: a
// batch proof's siblings fit in it, and most ballots' claims. flatScan
// is how far it looks for them: maxListHint quoted hashes and their
// commas.
const (
	maxListHint = 64
	flatScan    = maxListHint * (2 + 2 + 64 + 1)
)

// readListOf is readList allocating room for hint(rest) items first,
// rest being what follows the list's '['.
func readListOf[T any](p *jsonParser, v *[]T, item func(*jsonParser) (T, bool), hint func([]byte) int) bool {
	list, ok := p.open()
	if !ok || !list {
		return ok
	}
	if p.lit("]") {
		*v = []T{}
		return true
	}
	*v = make([]T, 0, hint(p.data))
	for {
		x, ok := item(p)
		if !ok {
			return false
		}
		*v = append(*v, x)
		// Neither ] nor , after an item: not a list (the items must not
		// run on into the next one).
		more, ok := p.next()
		if !ok || !more {
			return ok
		}
	}
}

func (p *jsonParser) indexes(v *[]uint32) bool { return readFlatList(p, v, readIndex) }

func (p *jsonParser) verdicts(v *[]claims.Verdict) bool { return readFlatList(p, v, readVerdict) }

func (p *jsonParser) hashes(v *[]common.Hash) bool { return readFlatList(p, v, readHash) }

func readIndex(p *jsonParser) (uint32, bool) {
	var n uint64
	ok := p.uint(&n, math.MaxUint32)
	return uint32(n), ok
}

func readVerdict(p *jsonParser) (claims.Verdict, bool) {
	var n uint64
	ok := p.uint(&n, math.MaxUint8) && claims.Verdict(n).Valid()
	return claims.Verdict(n), ok
}

func readHash(p *jsonParser) (h common.Hash, ok bool) {
	ok = p.hash(&h)
	return h, ok
}
