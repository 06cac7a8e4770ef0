// Package claims turns an AI output into ordered atomic claims, hashes them,
// commits to them with a Merkle root that supports inclusion proofs, and
// holds the verifier backends that judge a single claim.
//
// The package is pure: no networking, no global state.
package claims
