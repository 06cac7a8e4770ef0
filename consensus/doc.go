// Package consensus holds Verity's protocol rules: the validator set from
// genesis, the quorum rule, the deterministic claim assignment, the per-job
// ballot tally with equivocation evidence, and the consensus certificate with
// VerifyCertificate, which anyone can run offline.
//
// Checks are layered as everywhere in Verity: shape first (sizes, ranges,
// order; no crypto, no state), then signatures, then state.
package consensus
