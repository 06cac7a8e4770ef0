package consensus

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/verity-network/verity/internal/jsonw"
)

// A certificate is encoded once by its gateway and then read by every
// node it reaches, as gossip, in a catch-up page or from the store. Like a
// ballot's (ballot_json.go), its JSON is written and read here without
// reflection; unlike a ballot's it has text in it (the claims), so the
// reading takes only text that needs no escape and leaves the rest to the
// strict decoder.

// AppendJSON appends the certificate's wire encoding to dst: byte for
// byte what an encoding/json Encoder without HTML escaping writes for c
// (less its newline). It fails where encoding/json does: an issue time
// whose year has more than four digits.
func (c *Certificate) AppendJSON(dst []byte) ([]byte, error) {
	dst = slices.Grow(dst, c.jsonSize())
	dst = append(dst, `{"version":`...)
	dst = strconv.AppendUint(dst, uint64(c.Version), 10)
	dst = append(dst, `,"network_id":`...)
	dst = strconv.AppendUint(dst, c.NetworkID, 10)
	dst = appendHexField(dst, `,"genesis_hash":`, c.GenesisHash[:])
	dst = appendHexField(dst, `,"job_id":`, c.JobID[:])
	dst = appendHexField(dst, `,"job_nonce":`, c.JobNonce[:])
	dst = appendHexField(dst, `,"output_hash":`, c.OutputHash[:])
	dst = appendHexField(dst, `,"claims_root":`, c.ClaimsRoot[:])
	dst = c.Quorum.appendJSON(append(dst, `,"quorum":`...))
	dst = append(dst, `,"replication":`...)
	dst = strconv.AppendUint(dst, uint64(c.Replication), 10)
	dst = appendHexField(dst, `,"gateway":`, c.Gateway[:])
	dst = append(dst, `,"deadline_ms":`...)
	dst = strconv.AppendUint(dst, c.DeadlineMS, 10)
	dst = jsonw.AppendString(append(dst, `,"status":`...), string(c.Status))
	dst = appendList(append(dst, `,"claims":`...), c.Claims, appendCertClaim)
	dst = appendList(append(dst, `,"ballots":`...), c.Ballots, func(dst []byte, v *Vote) []byte {
		return append(v.appendFields(append(dst, '{')), '}')
	})
	at, err := c.IssuedAt.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("certificate issued_at: %w", err)
	}
	dst = append(append(dst, `,"issued_at":`...), at...)
	if len(c.GatewaySignature) > 0 {
		dst = appendHexField(dst, `,"gateway_signature":`, c.GatewaySignature)
	}
	if c.GatewayBatch != nil {
		dst = appendBatch(append(dst, `,"gateway_batch":`...), c.GatewayBatch)
	}
	return append(dst, '}'), nil
}

func (c *Certificate) jsonSize() int {
	n := 760 + 2*len(c.GatewaySignature) + batchJSONSize(c.GatewayBatch)
	for i := range c.Claims {
		n += len(c.Claims[i].Text) + 170
	}
	for i := range c.Ballots {
		n += c.Ballots[i].jsonSize()
	}
	return n
}

// appendJSON appends the quorum's JSON object.
func (q *Quorum) appendJSON(dst []byte) []byte {
	dst = jsonw.AppendString(append(dst, `{"kind":`...), q.Kind)
	for _, f := range [...]struct {
		name string
		v    uint64
	}{{`,"num":`, q.Num}, {`,"den":`, q.Den}, {`,"n":`, q.N}, {`,"m":`, q.M}} {
		if f.v != 0 {
			dst = strconv.AppendUint(append(dst, f.name...), f.v, 10)
		}
	}
	return append(dst, '}')
}

// quorum reads what Quorum.appendJSON writes.
func (p *jsonParser) quorum(q *Quorum) bool {
	return p.lit(`{"kind":`) && p.str(&q.Kind) &&
		p.optUint(`,"num":`, &q.Num) && p.optUint(`,"den":`, &q.Den) &&
		p.optUint(`,"n":`, &q.N) && p.optUint(`,"m":`, &q.M) && p.lit(`}`)
}

func appendCertClaim(dst []byte, cl *CertClaim) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendUint(dst, uint64(cl.Index), 10)
	dst = jsonw.AppendString(append(dst, `,"text":`...), cl.Text)
	dst = appendHexField(dst, `,"hash":`, cl.Hash[:])
	dst = jsonw.AppendString(append(dst, `,"verdict":`...), string(cl.Verdict))
	dst = append(dst, `,"stake_for":`...)
	dst = strconv.AppendUint(dst, cl.StakeFor, 10)
	dst = append(dst, `,"stake_total":`...)
	dst = strconv.AppendUint(dst, cl.StakeTotal, 10)
	return append(dst, '}')
}

// ParseCertificateJSON decodes data into out if data is in the form
// AppendJSON writes, with text that needs no escape, and reports whether
// it was. For anything else it returns false, leaving out as it was, and
// the caller decodes data the strict, general way. A certificate it
// takes is one the strict decoder takes, to the same value
// (FuzzParseCertificateJSON). Unlike a ballot or a job, a certificate is
// not refused for being written another way, so this is only a faster
// path to the same value, not a check of the encoding.
func ParseCertificateJSON(data []byte, out *Certificate) bool {
	var c Certificate
	p := jsonParser{data: data}
	var version, replication uint64
	ok := p.lit(`{"version":`) && p.uint(&version, math.MaxUint32) &&
		p.lit(`,"network_id":`) && p.uint(&c.NetworkID, math.MaxUint64) &&
		p.lit(`,"genesis_hash":`) && p.hash(&c.GenesisHash) &&
		p.lit(`,"job_id":`) && p.hash(&c.JobID) &&
		p.lit(`,"job_nonce":`) && p.hash(&c.JobNonce) &&
		p.lit(`,"output_hash":`) && p.hash(&c.OutputHash) &&
		p.lit(`,"claims_root":`) && p.hash(&c.ClaimsRoot) &&
		p.lit(`,"quorum":`) && p.quorum(&c.Quorum) &&
		p.lit(`,"replication":`) && p.uint(&replication, math.MaxUint32) &&
		p.lit(`,"gateway":`) && p.address(&c.Gateway) &&
		p.lit(`,"deadline_ms":`) && p.uint(&c.DeadlineMS, math.MaxUint64) &&
		p.lit(`,"status":`) && p.str((*string)(&c.Status)) &&
		p.lit(`,"claims":`) && readList(&p, &c.Claims, readCertClaim) &&
		p.lit(`,"ballots":`) && readList(&p, &c.Ballots, readVote) &&
		p.lit(`,"issued_at":`) && p.time(&c.IssuedAt)
	if !ok {
		return false
	}
	c.Version, c.Replication = uint32(version), uint32(replication)
	if p.lit(`,"gateway_signature":`) && !p.bytes((*[]byte)(&c.GatewaySignature)) {
		return false
	}
	if p.lit(`,"gateway_batch":`) {
		c.GatewayBatch = new(BatchProof)
		if !p.batch(c.GatewayBatch) {
			return false
		}
	}
	if string(p.data) != "}" {
		return false
	}
	*out = c
	return true
}

func readCertClaim(p *jsonParser) (cl CertClaim, ok bool) {
	var index uint64
	ok = p.lit(`{"index":`) && p.uint(&index, math.MaxUint32) &&
		p.lit(`,"text":`) && p.str(&cl.Text) &&
		p.lit(`,"hash":`) && p.hash(&cl.Hash) &&
		p.lit(`,"verdict":`) && p.str((*string)(&cl.Verdict)) &&
		p.lit(`,"stake_for":`) && p.uint(&cl.StakeFor, math.MaxUint64) &&
		p.lit(`,"stake_total":`) && p.uint(&cl.StakeTotal, math.MaxUint64) &&
		p.lit(`}`)
	cl.Index = uint32(index)
	return cl, ok
}

func readVote(p *jsonParser) (v Vote, ok bool) {
	ok = p.lit(`{`) && p.voteFields(&v) && p.lit(`}`)
	return v, ok
}

// optUint reads name and a number, if name is next; a number written is
// never 0 (omitempty).
func (p *jsonParser) optUint(name string, v *uint64) bool {
	if !p.lit(name) {
		return true
	}
	return p.uint(v, math.MaxUint64) && *v != 0
}

// str reads a string that needs no escape (jsonw.Plain).
func (p *jsonParser) str(s *string) bool {
	if !p.lit(`"`) {
		return false
	}
	end := bytes.IndexByte(p.data, '"')
	if end < 0 || !jsonw.Plain(p.data[:end]) {
		return false
	}
	*s = string(p.data[:end])
	p.data = p.data[end+1:]
	return true
}

// time reads a time as encoding/json writes it: RFC 3339 in UTC, and
// only in the one form it writes (the fraction without trailing zeros).
func (p *jsonParser) time(t *time.Time) bool {
	quoted := p.data
	if !p.lit(`"`) {
		return false
	}
	end := bytes.IndexByte(p.data, '"')
	if end < 1 || p.data[end-1] != 'Z' {
		return false
	}
	quoted = quoted[:end+2]
	if err := t.UnmarshalJSON(quoted); err != nil {
		return false
	}
	if enc, err := t.MarshalJSON(); err != nil || !bytes.Equal(enc, quoted) {
		return false
	}
	p.data = p.data[end+1:]
	return true
}
