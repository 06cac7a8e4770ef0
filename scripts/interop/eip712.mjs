// Verity's EIP-712 types and signature rules, written out for ethers v6.
// Shared by verify-vectors.mjs and verify-certs.mjs. Nothing here is read
// from the Go code or the files under test, so that a change on the Go side
// cannot silently change what is checked.

import { Signature, concat, getBytes, keccak256 } from "ethers";

export const DOMAIN_NAME = "Verity";
export const DOMAIN_VERSION = "1";
export const DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)";

export const TYPES = {
  Ballot: {
    Ballot: [
      { name: "jobId", type: "bytes32" },
      { name: "outputHash", type: "bytes32" },
      { name: "claimsRoot", type: "bytes32" },
      { name: "claimIndexes", type: "uint32[]" },
      { name: "verdicts", type: "uint8[]" },
    ],
  },
  Job: {
    Job: [
      { name: "jobId", type: "bytes32" },
      { name: "outputHash", type: "bytes32" },
      { name: "claimsRoot", type: "bytes32" },
      { name: "claimCount", type: "uint32" },
      { name: "deadline", type: "uint64" },
      // 0 for the first announcement, then increasing with each
      // re-announcement by the gateway.
      { name: "resend", type: "uint64" },
    ],
  },
  // Signed by a job's gateway when it issues the certificate.
  Certificate: {
    Certificate: [
      { name: "jobId", type: "bytes32" },
      { name: "genesisHash", type: "bytes32" },
      { name: "status", type: "uint8" },
      { name: "verdicts", type: "uint8[]" },
      { name: "voters", type: "address[]" },
      { name: "issuedAt", type: "uint64" },
    ],
  },
  // Signed to sign many messages at once: root is the Merkle root over the
  // messages' EIP-712 struct hashes (see batchRoot), count their number.
  Batch: {
    Batch: [
      { name: "root", type: "bytes32" },
      { name: "count", type: "uint32" },
    ],
  },
};

// batchRoot folds a Merkle proof {index, count, siblings} of the struct
// hash leaf up to the root it implies, or returns null when the proof does
// not fit its count. The tree is the claims root's: a leaf is
// keccak256(0x00 || hash), an inner node keccak256(0x01 || left || right),
// and an odd last node of a level is promoted unchanged.
export function batchRoot(leaf, proof) {
  const { index, count, siblings } = proof;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index < 0 || index >= count) return null;
  if (!Array.isArray(siblings)) return null;
  let node = keccak256(concat(["0x00", leaf]));
  let pos = index;
  let width = count;
  let used = 0;
  while (width > 1) {
    if ((pos ^ 1) < width) {
      if (used >= siblings.length) return null;
      const sib = siblings[used++];
      node = keccak256(pos % 2 === 0 ? concat(["0x01", node, sib]) : concat(["0x01", sib, node]));
    }
    pos = Math.floor(pos / 2);
    width = Math.ceil(width / 2);
  }
  return used === siblings.length ? node : null;
}

// Codes of a certificate's status and claim verdicts in the gateway's
// signature.
export const STATUS_CODES = { verified: 1, rejected: 2, unresolved: 3 };
export const VERDICT_CODES = { undecided: 0, true: 1, false: 2 };

export function domainOf(chainId) {
  return { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId: BigInt(chainId) };
}

const SECP256K1_N = BigInt("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");

// strictSignatureError returns why sig (hex) is not a Verity signature, or
// null: exactly 65 bytes, v in {27, 28}, r and s in [1, n-1], s <= n/2.
export function strictSignatureError(sigHex) {
  const bytes = getBytes(sigHex);
  if (bytes.length !== 65) return "length";
  if (bytes[64] !== 27 && bytes[64] !== 28) return "v";
  const sig = Signature.from(sigHex);
  const r = BigInt(sig.r);
  const s = BigInt(sig._s);
  if (r === 0n || r >= SECP256K1_N || s === 0n || s >= SECP256K1_N) return "values";
  if (!sig.isValid()) return "high-s";
  return null;
}
