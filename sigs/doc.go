// Package sigs holds Verity's keys and signatures: secp256k1 keys in the
// go-ethereum keystore format, the Signer interface, EIP-712 typed-data
// digests of ballots and jobs, signing and strict recovery.
//
// What is signed is always an EIP-712 digest whose domain carries the
// network id, never JSON. Signatures are 65 bytes [R || S || V], low-s, with
// V in {27, 28}. CheckSignature refuses any other shape without curve
// arithmetic; Recover applies it before recovering.
//
// Keys live in a keystore directory as go-ethereum version 3 key files
// (scrypt and aes-128-ctr, mode 0600, named UTC--<time>--<address>), so geth,
// clef and ethers read them too. NewKey and ImportKey write them, ListKeys
// reads their addresses without decrypting, UnlockKey returns the raw key
// (a node also derives its libp2p identity from it) and LoadSigner returns a
// Signer that never gives the key out. ReadPassword takes the password from
// a file or an environment variable, never from a command-line value.
//
// testdata/eip712/vectors.json holds test vectors for the digests and
// signatures; TestVectors recomputes them from this package and
// scripts/interop checks them with ethers.
package sigs
