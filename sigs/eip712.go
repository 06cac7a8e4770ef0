package sigs

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/internal/keccak"
)

// Type strings of the EIP-712 structs Verity signs. They are part of the
// protocol and never change within a version.
const (
	DomainType = "EIP712Domain(string name,string version,uint256 chainId)"
	BallotType = "Ballot(bytes32 jobId,bytes32 outputHash,bytes32 claimsRoot,uint32[] claimIndexes,uint8[] verdicts)"
	// JobType is what a job's gateway signs when it announces the job and
	// each time it re-announces it: resend is 0 for the first announcement
	// and grows with each re-announcement, so that only the gateway can
	// make a job's announcement new again.
	JobType = "Job(bytes32 jobId,bytes32 outputHash,bytes32 claimsRoot,uint32 claimCount,uint64 deadline,uint64 resend)"
	// CertificateType is what a job's gateway signs when it issues the
	// certificate: the decided status and verdicts, whose ballots decided
	// them, and when.
	CertificateType = "Certificate(bytes32 jobId,bytes32 genesisHash,uint8 status,uint8[] verdicts,address[] voters,uint64 issuedAt)"
	// BatchType is what a signer signs to sign many messages at once: root
	// is the Merkle root (the tree of the claims root) over the messages'
	// EIP-712 struct hashes, count their number. One Batch signature
	// stands for each message as if it had been signed alone; a message
	// shows it is in the batch with its Merkle proof.
	BatchType = "Batch(bytes32 root,uint32 count)"

	DomainName    = "Verity"
	DomainVersion = "1"
)

var (
	domainTypeHash = crypto.Keccak256Hash([]byte(DomainType))
	ballotTypeHash = crypto.Keccak256Hash([]byte(BallotType))
	jobTypeHash    = crypto.Keccak256Hash([]byte(JobType))
	certTypeHash   = crypto.Keccak256Hash([]byte(CertificateType))
	batchTypeHash  = crypto.Keccak256Hash([]byte(BatchType))
	nameHash       = crypto.Keccak256Hash([]byte(DomainName))
	versionHash    = crypto.Keccak256Hash([]byte(DomainVersion))
)

// DomainSeparator is hashStruct(EIP712Domain{name: "Verity", version: "1",
// chainId: networkID}). There is no verifyingContract.
func DomainSeparator(networkID uint64) common.Hash {
	// Every digest a node checks starts with its network's separator:
	// the last one computed is kept.
	if d := lastDomain.Load(); d != nil && d.networkID == networkID {
		return d.separator
	}
	h := domainSeparator(networkID)
	lastDomain.Store(&domain{networkID, h})
	return h
}

type domain struct {
	networkID uint64
	separator common.Hash
}

var lastDomain atomic.Pointer[domain]

func domainSeparator(networkID uint64) common.Hash {
	var buf [4 * 32]byte
	copy(buf[0:], domainTypeHash[:])
	copy(buf[32:], nameHash[:])
	copy(buf[64:], versionHash[:])
	putUint(buf[96:128], networkID)
	return keccak.Sum(buf[:])
}

// BallotData is the signed content of a ballot.
type BallotData struct {
	JobID        common.Hash
	OutputHash   common.Hash
	ClaimsRoot   common.Hash
	ClaimIndexes []uint32
	Verdicts     []uint8
}

// BallotStructHash is hashStruct(Ballot). Each array is encoded as the
// keccak256 of its elements, each left-padded to 32 bytes.
func BallotStructHash(b BallotData) common.Hash {
	var buf [6 * 32]byte
	copy(buf[0:], ballotTypeHash[:])
	copy(buf[32:], b.JobID[:])
	copy(buf[64:], b.OutputHash[:])
	copy(buf[96:], b.ClaimsRoot[:])
	h := arrayHash(b.ClaimIndexes)
	copy(buf[128:], h[:])
	h = arrayHash(b.Verdicts)
	copy(buf[160:], h[:])
	return keccak.Sum(buf[:])
}

// arrayHash is the encoding of a uint array in a struct hash: keccak256
// of its elements, each a big-endian uint256. A one-element array below
// 256 is looked up (oneWordHashes).
func arrayHash[T uint8 | uint32](a []T) common.Hash {
	if len(a) == 1 && uint64(a[0]) < 256 {
		return oneWordHashes()[a[0]]
	}
	words := make([]byte, 32*len(a))
	for i, v := range a {
		putUint(words[32*i:32*i+32], uint64(v))
	}
	return keccak.Sum(words)
}

// oneWordHashes[v] is keccak256 of the uint256 v, for v < 256: the
// encoding of a one-element array in a struct hash. A ballot or
// certificate of one claim has one claim index and one verdict, small
// numbers, so that two of the three hashes of its struct hash are one of
// these.
var oneWordHashes = sync.OnceValue(func() *[256]common.Hash {
	var h [256]common.Hash
	var word [32]byte
	for v := range h {
		word[31] = byte(v)
		h[v] = keccak.Sum(word[:])
	}
	return &h
})

// BallotDigest is the EIP-712 digest a validator signs for a ballot:
// keccak256(0x19 0x01 || domainSeparator || hashStruct(ballot)).
func BallotDigest(networkID uint64, b BallotData) common.Hash {
	return TypedDataDigest(DomainSeparator(networkID), BallotStructHash(b))
}

// JobData is the signed content of a job announcement (signed by the
// gateway that accepted it).
type JobData struct {
	JobID      common.Hash
	OutputHash common.Hash
	ClaimsRoot common.Hash
	ClaimCount uint32
	Deadline   uint64 // unix milliseconds
	// Resend numbers the announcement: 0 for the first, then increasing
	// with each re-announcement.
	Resend uint64
}

// JobStructHash is hashStruct(Job).
func JobStructHash(j JobData) common.Hash {
	var buf [7 * 32]byte
	copy(buf[0:], jobTypeHash[:])
	copy(buf[32:], j.JobID[:])
	copy(buf[64:], j.OutputHash[:])
	copy(buf[96:], j.ClaimsRoot[:])
	putUint(buf[128:160], uint64(j.ClaimCount))
	putUint(buf[160:192], j.Deadline)
	putUint(buf[192:224], j.Resend)
	return keccak.Sum(buf[:])
}

// JobDigest is the EIP-712 digest a gateway signs for a job.
func JobDigest(networkID uint64, j JobData) common.Hash {
	return TypedDataDigest(DomainSeparator(networkID), JobStructHash(j))
}

// CertificateData is the signed content of a certificate (signed by the
// job's gateway). Status codes: 1 verified, 2 rejected, 3 unresolved;
// verdict codes: 0 undecided, 1 true, 2 false; voters are the ballots'
// validators in the certificate's order (ascending address).
type CertificateData struct {
	JobID       common.Hash
	GenesisHash common.Hash
	Status      uint8
	Verdicts    []uint8
	Voters      []common.Address
	IssuedAt    uint64 // unix milliseconds
}

// CertificateStructHash is hashStruct(Certificate).
func CertificateStructHash(c CertificateData) common.Hash {
	var buf [7 * 32]byte
	copy(buf[0:], certTypeHash[:])
	copy(buf[32:], c.JobID[:])
	copy(buf[64:], c.GenesisHash[:])
	putUint(buf[96:128], uint64(c.Status))
	h := arrayHash(c.Verdicts)
	copy(buf[128:], h[:])
	voters := make([]byte, 32*len(c.Voters))
	for i, a := range c.Voters {
		copy(voters[32*i+12:32*i+32], a[:])
	}
	h = keccak.Sum(voters)
	copy(buf[160:], h[:])
	putUint(buf[192:224], c.IssuedAt)
	return keccak.Sum(buf[:])
}

// CertificateDigest is the EIP-712 digest a gateway signs for a
// certificate.
func CertificateDigest(networkID uint64, c CertificateData) common.Hash {
	return TypedDataDigest(DomainSeparator(networkID), CertificateStructHash(c))
}

// BatchStructHash is hashStruct(Batch).
func BatchStructHash(root common.Hash, count uint32) common.Hash {
	var buf [3 * 32]byte
	copy(buf[0:], batchTypeHash[:])
	copy(buf[32:], root[:])
	putUint(buf[64:96], uint64(count))
	return keccak.Sum(buf[:])
}

// BatchDigest is the EIP-712 digest a signer signs for a batch of messages.
//
// A node checks one batch's digest for every message of the batch it is
// shown (each job's ballot in its certificate, from up to 64 jobs), so
// the digests of recent batches are kept (batchDigests).
func BatchDigest(networkID uint64, root common.Hash, count uint32) common.Hash {
	slot := &batchDigests[binary.LittleEndian.Uint64(root[:8])%uint64(len(batchDigests))]
	if d := slot.Load(); d != nil && d.root == root && d.count == count && d.networkID == networkID {
		return d.digest
	}
	d := TypedDataDigest(DomainSeparator(networkID), BatchStructHash(root, count))
	slot.Store(&batchDigest{networkID, root, count, d})
	return d
}

// batchDigests keeps BatchDigest's recent answers, one a slot, the slot
// chosen by the root: a few hundred batches are in flight at a time.
var batchDigests [1024]atomic.Pointer[batchDigest]

type batchDigest struct {
	networkID uint64
	root      common.Hash
	count     uint32
	digest    common.Hash
}

// TypedDataDigest is keccak256(0x19 0x01 || domainSeparator || structHash).
func TypedDataDigest(domainSeparator, structHash common.Hash) common.Hash {
	var buf [66]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:34], domainSeparator[:])
	copy(buf[34:], structHash[:])
	return keccak.Sum(buf[:])
}

// putUint writes v as a big-endian uint256 into the 32-byte slot dst.
func putUint(dst []byte, v uint64) {
	clear(dst[:24])
	binary.BigEndian.PutUint64(dst[24:32], v)
}
