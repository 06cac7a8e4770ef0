// Package sigs holds Verity's keys and signatures: secp256k1 keys in the
// go-ethereum keystore format, the Signer interface, EIP-712 typed-data
// digests of ballots and jobs, signing and strict recovery.
//
// What is signed is always an EIP-712 digest whose domain carries the
// network id, never JSON. Signatures are 65 bytes [R || S || V], low-s, with
// V in {27, 28}.
package sigs
