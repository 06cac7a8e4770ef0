package consensus

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/verity-network/verity/internal/jsonw"
)

// A job announcement is encoded by its gateway and read, its encoding
// checked, by every validator (ballot_json.go says why the encoding is
// fixed). Its claims are text; the fast path below reads only text that
// needs no escape and leaves the rest to the strict decoder.

// AppendJSON appends the job's wire encoding to dst: byte for byte what
// an encoding/json Encoder without HTML escaping writes for j (less its
// newline).
func (j *Job) AppendJSON(dst []byte) []byte {
	dst = slices.Grow(dst, j.jsonSize())
	dst = append(dst, `{"network_id":`...)
	dst = strconv.AppendUint(dst, j.NetworkID, 10)
	dst = appendHexField(dst, `,"job_id":`, j.JobID[:])
	dst = appendHexField(dst, `,"nonce":`, j.Nonce[:])
	dst = appendHexField(dst, `,"output_hash":`, j.OutputHash[:])
	dst = appendHexField(dst, `,"claims_root":`, j.ClaimsRoot[:])
	dst = appendList(append(dst, `,"claims":`...), j.Claims, func(dst []byte, s *string) []byte { return jsonw.AppendString(dst, *s) })
	dst = j.Quorum.appendJSON(append(dst, `,"quorum":`...))
	dst = append(dst, `,"replication":`...)
	dst = strconv.AppendUint(dst, uint64(j.Replication), 10)
	dst = append(dst, `,"deadline":`...)
	dst = strconv.AppendUint(dst, j.Deadline, 10)
	dst = appendHexField(dst, `,"gateway":`, j.Gateway[:])
	dst = appendHexField(dst, `,"signature":`, j.Signature)
	if j.Batch != nil {
		dst = appendBatch(append(dst, `,"batch":`...), j.Batch)
	}
	if j.Resend != 0 {
		dst = strconv.AppendUint(append(dst, `,"resend":`...), j.Resend, 10)
	}
	if len(j.GatewayRecord) > 0 {
		dst = appendHexField(dst, `,"gateway_record":`, j.GatewayRecord)
	}
	return append(dst, '}')
}

func (j *Job) jsonSize() int {
	n := 560 + 2*len(j.Signature) + 2*len(j.GatewayRecord) + batchJSONSize(j.Batch)
	for _, c := range j.Claims {
		n += len(c) + 3
	}
	return n
}

// ParseJobJSON decodes data into j if data is exactly j's wire encoding
// (AppendJSON) with claims that need no escape, and reports whether it
// was. For anything else it returns false, leaving j as it was, and the
// caller decodes data the strict way (and refuses it if it is not the
// encoding). A job it takes is one the strict decoder takes, to the same
// value (FuzzParseJobJSON).
func ParseJobJSON(data []byte, j *Job) bool {
	var v Job
	p := jsonParser{data: data}
	var replication uint64
	ok := p.lit(`{"network_id":`) && p.uint(&v.NetworkID, math.MaxUint64) &&
		p.lit(`,"job_id":`) && p.hash(&v.JobID) &&
		p.lit(`,"nonce":`) && p.hash(&v.Nonce) &&
		p.lit(`,"output_hash":`) && p.hash(&v.OutputHash) &&
		p.lit(`,"claims_root":`) && p.hash(&v.ClaimsRoot) &&
		p.lit(`,"claims":`) && readList(&p, &v.Claims, readString) &&
		p.lit(`,"quorum":`) && p.quorum(&v.Quorum) &&
		p.lit(`,"replication":`) && p.uint(&replication, math.MaxUint32) &&
		p.lit(`,"deadline":`) && p.uint(&v.Deadline, math.MaxUint64) &&
		p.lit(`,"gateway":`) && p.address(&v.Gateway) &&
		p.lit(`,"signature":`) && p.bytes((*[]byte)(&v.Signature))
	if !ok {
		return false
	}
	v.Replication = uint32(replication)
	if p.lit(`,"batch":`) {
		v.Batch = new(BatchProof)
		if !p.batch(v.Batch) {
			return false
		}
	}
	if !p.optUint(`,"resend":`, &v.Resend) {
		return false
	}
	if p.lit(`,"gateway_record":`) && (!p.bytes((*[]byte)(&v.GatewayRecord)) || len(v.GatewayRecord) == 0) {
		return false
	}
	if string(p.data) != "}" {
		return false
	}
	// Read field by field in the one order, each in its one form: this
	// is the encoding. Written again, it must be these bytes.
	if !encodesTo(&v, data) {
		return false
	}
	*j = v
	return true
}

func readString(p *jsonParser) (s string, ok bool) {
	ok = p.str(&s)
	return s, ok
}

// checkBuffers holds the buffers encodesTo writes a job into: every
// validator checks every job it takes this way, and the buffer is done
// with once compared.
var checkBuffers = sync.Pool{New: func() any { return new([]byte) }}

// encodesTo reports whether j's encoding is data.
func encodesTo(j *Job, data []byte) bool {
	buf := checkBuffers.Get().(*[]byte)
	enc := j.AppendJSON((*buf)[:0])
	same := bytes.Equal(enc, data)
	if cap(enc) <= 64<<10 { // a buffer grown by a large job is let go
		*buf = enc[:0]
		checkBuffers.Put(buf)
	}
	return same
}
