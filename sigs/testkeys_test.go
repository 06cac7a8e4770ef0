package sigs

import (
	"crypto/ecdsa"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// testKeySeed is the phrase whose keccak256 is test key i. These keys are
// public and for tests only.
func testKeySeed(i int) string { return fmt.Sprintf("verity test key %d", i) }

// testKey is the deterministic test-only key i: keccak256("verity test key i").
func testKey(tb testing.TB, i int) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(testKeySeed(i))))
	if err != nil {
		tb.Fatalf("test key %d: %v", i, err)
	}
	return k
}
