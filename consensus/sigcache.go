package consensus

import (
	"crypto/ecdsa"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/internal/fifo"
	"github.com/verity-network/verity/sigs"
)

// SignatureCache remembers signatures already recovered, keyed by digest
// and signature bytes, so that a node recovers each ballot's signature once
// even though it sees the ballot on the ballots topic and again inside a
// certificate. It holds at most its capacity, forgetting the oldest. Safe
// for concurrent use.
//
// It also remembers the inner nodes of the batch proofs it checked
// (claims.Nodes): the signatures it holds are mostly batch signatures,
// and the next proof into the same batch shares their upper levels.
type SignatureCache struct {
	mu    sync.Mutex
	seen  *fifo.Map[sigKey, signerOf]
	nodes *claims.Nodes
}

// cacheNodes is how many inner nodes of batch proofs a SignatureCache
// holds: about two seconds of a saturated network's batches (each node of
// four, at 1,300 certificates a second, hashes about 7,000 distinct inner
// nodes a second), 1.5 MB.
const cacheNodes = 1 << 14

// signerOf is who a signature recovers to; pub is kept when the check
// needs the key itself (a job's, whose gateway peer id it gives).
type signerOf struct {
	addr common.Address
	pub  *ecdsa.PublicKey
}

type sigKey struct {
	digest common.Hash
	sig    [sigs.SignatureLength]byte
}

// NewSignatureCache returns a cache of the given capacity.
func NewSignatureCache(capacity int) *SignatureCache {
	return &SignatureCache{seen: fifo.New[sigKey, signerOf](capacity), nodes: claims.NewNodes(cacheNodes)}
}

// merkle is the memory of inner nodes of c, nil for a nil cache.
func (c *SignatureCache) merkle() *claims.Nodes {
	if c == nil {
		return nil
	}
	return c.nodes
}

func keyOf(digest common.Hash, sig []byte) (sigKey, bool) {
	var k sigKey
	if len(sig) != sigs.SignatureLength {
		return k, false
	}
	k.digest = digest
	copy(k.sig[:], sig)
	return k, true
}

// verified reports whether sig over digest is known to recover to signer.
func (c *SignatureCache) verified(digest common.Hash, sig []byte, signer common.Address) bool {
	k, ok := keyOf(digest, sig)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	got, ok := c.seen.Get(k)
	return ok && got.addr == signer
}

// publicKey is the public key that sig over digest is known to recover
// to, if it is signer's; nil otherwise, and for a nil cache.
func (c *SignatureCache) publicKey(digest common.Hash, sig []byte, signer common.Address) *ecdsa.PublicKey {
	if c == nil {
		return nil
	}
	k, ok := keyOf(digest, sig)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, ok := c.seen.Get(k); ok && got.addr == signer {
		return got.pub
	}
	return nil
}

// addKey records that sig over digest recovers to pub, signer's key.
func (c *SignatureCache) addKey(digest common.Hash, sig []byte, signer common.Address, pub *ecdsa.PublicKey) {
	if c == nil {
		return
	}
	k, ok := keyOf(digest, sig)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Put(k, signerOf{addr: signer, pub: pub})
}

// Add records that sig over digest recovers to signer. Call it only for
// signatures recovered already or made by signer's own key.
func (c *SignatureCache) Add(digest common.Hash, sig []byte, signer common.Address) {
	k, ok := keyOf(digest, sig)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, ok := c.seen.Get(k); ok && got.addr == signer {
		return // keep a key already held
	}
	c.seen.Put(k, signerOf{addr: signer})
}

// VerifyOption adjusts signature checks.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	cache   *SignatureCache
	settled *bool
}

// ReportSettled sets *p, when VerifyCertificate takes a certificate, to
// whether it is settled (Settled), from the tally the verification built
// anyway.
func ReportSettled(p *bool) VerifyOption {
	return func(o *verifyOptions) { o.settled = p }
}

// WithSignatureCache skips recovering signatures the cache already holds
// and adds those it recovers.
func WithSignatureCache(c *SignatureCache) VerifyOption {
	return func(o *verifyOptions) { o.cache = c }
}

func applyOptions(opts []VerifyOption) verifyOptions {
	var o verifyOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}
