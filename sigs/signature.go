package sigs

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// SignatureLength is the size of a Verity signature: R (32) || S (32) || V (1).
const SignatureLength = 65

// Errors returned by Recover. They are wrapped with detail; test with errors.Is.
var (
	ErrSignatureLength = errors.New("signature must be 65 bytes")
	ErrSignatureV      = errors.New("signature v must be 27 or 28")
	ErrSignatureHighS  = errors.New("signature s is not in the lower half of the curve order")
	ErrSignatureValues = errors.New("signature r or s out of range")
	ErrRecover         = errors.New("signature does not recover to a public key")
)

// The curve order n and floor(n/2) as 32-byte big-endian numbers, so that
// the shape check compares bytes and allocates nothing.
var (
	curveOrder     = crypto.S256().Params().N.FillBytes(make([]byte, 32))
	curveOrderHalf = new(big.Int).Rsh(crypto.S256().Params().N, 1).FillBytes(make([]byte, 32))
)

// Signer signs 32-byte digests with one secp256k1 key that it keeps to itself.
type Signer interface {
	// Address is the Ethereum-style address of the signing key.
	Address() common.Address
	// SignDigest returns a 65-byte low-s signature with v in {27, 28}.
	SignDigest(digest common.Hash) ([]byte, error)
}

// KeySigner is a Signer over an in-memory private key.
type KeySigner struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

var _ Signer = (*KeySigner)(nil)

// NewKeySigner wraps key. The key is not copied out again by any method.
func NewKeySigner(key *ecdsa.PrivateKey) *KeySigner {
	return &KeySigner{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// Address implements Signer.
func (s *KeySigner) Address() common.Address { return s.addr }

// SignDigest implements Signer.
func (s *KeySigner) SignDigest(digest common.Hash) ([]byte, error) {
	return SignDigest(s.key, digest)
}

// SignDigest signs digest with key and returns [R || S || V] with V in {27, 28}.
// go-ethereum's signer always produces low-s signatures.
func SignDigest(key *ecdsa.PrivateKey, digest common.Hash) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		return nil, fmt.Errorf("sign digest: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// CheckSignature checks the shape of sig without any curve arithmetic: the
// length, v in {27, 28}, r and s in [1, n-1] and s in the lower half.
func CheckSignature(sig []byte) error {
	if len(sig) != SignatureLength {
		return fmt.Errorf("%w, got %d", ErrSignatureLength, len(sig))
	}
	if v := sig[64]; v != 27 && v != 28 {
		return fmt.Errorf("%w, got %d", ErrSignatureV, v)
	}
	r, s := sig[:32], sig[32:64]
	if !inScalarRange(r) || !inScalarRange(s) {
		return ErrSignatureValues
	}
	if bytes.Compare(s, curveOrderHalf) > 0 {
		return ErrSignatureHighS
	}
	return nil
}

// inScalarRange reports whether the 32-byte big-endian x is in [1, n-1].
func inScalarRange(x []byte) bool {
	return bytes.Compare(x, curveOrder) < 0 && !bytes.Equal(x, zero32[:])
}

var zero32 [32]byte

// RecoverPublicKey returns the public key that signed digest, with the
// checks of Recover.
func RecoverPublicKey(digest common.Hash, sig []byte) (*ecdsa.PublicKey, error) {
	if err := CheckSignature(sig); err != nil {
		return nil, err
	}
	var raw [SignatureLength]byte
	copy(raw[:], sig)
	raw[64] -= 27
	pub, err := crypto.SigToPub(digest[:], raw[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecover, err)
	}
	return pub, nil
}

// Recover returns the address that signed digest. It rejects malformed and
// high-s signatures with an error before any curve arithmetic.
func Recover(digest common.Hash, sig []byte) (common.Address, error) {
	if err := CheckSignature(sig); err != nil {
		return common.Address{}, err
	}
	var raw [SignatureLength]byte
	copy(raw[:], sig)
	raw[64] -= 27
	pub, err := crypto.Ecrecover(digest[:], raw[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrRecover, err)
	}
	if len(pub) != 65 || pub[0] != 4 {
		return common.Address{}, fmt.Errorf("%w: public key of %d bytes", ErrRecover, len(pub))
	}
	return common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]), nil
}
