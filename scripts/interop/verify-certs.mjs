// Checks the signatures of whole Verity certificates with ethers v6 alone,
// sharing no code with the Go verifier: what a third party holding only a
// certificate and the genesis file can check with any Ethereum library.
//
// For each certificate it recomputes, from the certificate's own fields:
//   - each ballot's EIP-712 digest (Ballot, domain {name "Verity",
//     version "1", chainId network_id}, with jobId = job_id,
//     outputHash = output_hash, claimsRoot = claims_root and the ballot's
//     claim_indexes and verdicts), and recovers it to the ballot's validator;
//   - the gateway's EIP-712 digest (Certificate, same domain, with
//     jobId = job_id, genesisHash = genesis_hash, the status and verdict
//     codes, voters = the ballots' validators in order, and
//     issuedAt = Date.parse(issued_at) in milliseconds), and recovers
//     gateway_signature to gateway (over the Batch its proof leads to when
//     the certificate has "gateway_batch").
// It also checks that network_id is the genesis file's, that the gateway and
// every voter are validators of the genesis file, that ballots are in
// ascending order of address, and that every signature is strict (65 bytes,
// v in {27, 28}, low-s). It does not recompute the tally, the job id or the
// claims root: `verity cert verify` does.
//
// Usage: node verify-certs.mjs genesis.json cert.json [cert.json ...]
// Exits 0 and prints "interop: N certificates ok" when everything matches,
// otherwise prints every mismatch, naming the certificate field, and exits 1.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { TypedDataEncoder, getAddress, isHexString, recoverAddress, verifyTypedData } from "ethers";

import { STATUS_CODES, TYPES, VERDICT_CODES, batchRoot, domainOf, strictSignatureError } from "./eip712.mjs";

// RFC 3339 with at most millisecond precision, as Verity writes issued_at.
const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

function readJSON(path) {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    console.error(`interop: cannot read ${path}: ${err.message}`);
    process.exit(2);
  }
}

// address returns the checksummed form of a, or records why field is not an
// address and returns null.
function address(errors, field, a) {
  try {
    return getAddress(a);
  } catch {
    errors.push(`${field}: ${JSON.stringify(a)} is not an address`);
    return null;
  }
}

function hash32(errors, field, h) {
  if (!isHexString(h, 32)) {
    errors.push(`${field}: ${JSON.stringify(h)} is not a 32-byte hex hash`);
    return false;
  }
  return true;
}

// checkSignature recovers sig over digest (computed by ethers from domain,
// types and value) both ways and records every disagreement with want;
// signed names the certificate fields the digest is made of.
function checkSignature(errors, field, sig, domain, types, value, want, signed) {
  if (typeof sig !== "string" || !isHexString(sig)) {
    errors.push(`${field}: missing or not hex (${JSON.stringify(sig)})`);
    return;
  }
  const shape = strictSignatureError(sig);
  if (shape !== null) {
    errors.push(`${field}: not a strict signature (${shape})`);
    return;
  }
  const digest = TypedDataEncoder.hash(domain, types, value);
  const byDigest = recoverAddress(digest, sig);
  const byTyped = verifyTypedData(domain, types, value, sig);
  if (byDigest !== want) {
    errors.push(`${field}: recovers to ${byDigest} over digest ${digest}, not ${want}: ` +
      `the signature, or one of ${signed.join(", ")}, is not what ${want} signed`);
  }
  if (byTyped !== byDigest) errors.push(`${field}: verifyTypedData gives ${byTyped}, recoverAddress ${byDigest}`);
}

function checkCertificate(genesis, cert) {
  const errors = [];
  const validators = new Set();
  for (const [i, v] of (genesis.validators ?? []).entries()) {
    const a = address(errors, `genesis validators[${i}].address`, v.address);
    if (a !== null) validators.add(a);
  }

  if (!Number.isSafeInteger(cert.network_id) || cert.network_id <= 0) {
    errors.push(`network_id: ${JSON.stringify(cert.network_id)} is not a positive integer below 2^53`);
    return errors;
  }
  if (cert.network_id !== genesis.network_id) {
    errors.push(`network_id: ${cert.network_id}, genesis has ${genesis.network_id}`);
  }
  const domain = domainOf(cert.network_id);
  for (const f of ["job_id", "output_hash", "claims_root", "genesis_hash"]) {
    if (!hash32(errors, f, cert[f])) return errors;
  }

  // Ballots: one Ballot digest each, recovered to the ballot's validator.
  const ballots = Array.isArray(cert.ballots) ? cert.ballots : [];
  if (!Array.isArray(cert.ballots)) errors.push(`ballots: ${JSON.stringify(cert.ballots)} is not an array`);
  const voters = [];
  for (const [i, b] of ballots.entries()) {
    const field = `ballots[${i}]`;
    const validator = address(errors, `${field}.validator`, b.validator);
    if (validator === null) continue;
    if (!validators.has(validator)) errors.push(`${field}.validator: ${validator} is not a validator of the genesis`);
    if (voters.length > 0 && BigInt(voters[voters.length - 1]) >= BigInt(validator)) {
      errors.push(`${field}.validator: ${validator} is not after ${voters[voters.length - 1]} (ballots must be in ascending order)`);
    }
    voters.push(validator);
    const value = {
      jobId: cert.job_id,
      outputHash: cert.output_hash,
      claimsRoot: cert.claims_root,
      claimIndexes: b.claim_indexes,
      verdicts: b.verdicts,
    };
    const signed = ["network_id", "job_id", "output_hash", "claims_root", `${field}.claim_indexes`, `${field}.verdicts`];
    try {
      if (b.batch === undefined) {
        checkSignature(errors, `${field}.signature`, b.signature, domain, TYPES.Ballot, value, validator, signed);
      } else {
        // Signed in a batch: the ballot's struct hash, folded up its proof,
        // is the root of the Batch the signature signs.
        const leaf = TypedDataEncoder.hashStruct("Ballot", TYPES.Ballot, value);
        const root = batchRoot(leaf, b.batch);
        if (root === null) {
          errors.push(`${field}.batch: the proof does not fit its count (${JSON.stringify(b.batch)})`);
        } else {
          checkSignature(errors, `${field}.signature`, b.signature, domain, TYPES.Batch, { root, count: b.batch.count },
            validator, [...signed, `${field}.batch`]);
        }
      }
    } catch (err) {
      errors.push(`${field}: ethers threw: ${err.message}`);
    }
  }

  // Gateway: the Certificate digest of the outcome, recovered to gateway.
  const gateway = address(errors, "gateway", cert.gateway);
  if (gateway !== null && !validators.has(gateway)) errors.push(`gateway: ${gateway} is not a validator of the genesis`);
  const status = STATUS_CODES[cert.status];
  if (status === undefined) errors.push(`status: ${JSON.stringify(cert.status)} is not verified, rejected or unresolved`);
  const claims = Array.isArray(cert.claims) ? cert.claims : [];
  if (!Array.isArray(cert.claims)) errors.push(`claims: ${JSON.stringify(cert.claims)} is not an array`);
  const verdicts = claims.map((c, i) => {
    const code = Object.hasOwn(VERDICT_CODES, c.verdict) ? VERDICT_CODES[c.verdict] : undefined;
    if (code === undefined) errors.push(`claims[${i}].verdict: ${JSON.stringify(c.verdict)} is not true, false or undecided`);
    return code;
  });
  let issuedAt = NaN;
  if (typeof cert.issued_at !== "string" || !RFC3339_MS.test(cert.issued_at)) {
    errors.push(`issued_at: ${JSON.stringify(cert.issued_at)} is not an RFC 3339 time in whole milliseconds`);
  } else {
    issuedAt = Date.parse(cert.issued_at);
    if (!Number.isSafeInteger(issuedAt) || issuedAt < 0) errors.push(`issued_at: ${cert.issued_at} parses to ${issuedAt}`);
  }
  if (cert.gateway_signature === undefined) {
    errors.push("gateway_signature: missing (the certificate is not signed by its gateway)");
  } else if (gateway !== null && status !== undefined && !verdicts.includes(undefined) && Number.isSafeInteger(issuedAt)) {
    const value = {
      jobId: cert.job_id,
      genesisHash: cert.genesis_hash,
      status,
      verdicts,
      voters,
      issuedAt: BigInt(issuedAt),
    };
    const signed = ["network_id", "job_id", "genesis_hash", "status", "claims[].verdict", "ballots[].validator", "issued_at"];
    try {
      if (cert.gateway_batch === undefined) {
        checkSignature(errors, "gateway_signature", cert.gateway_signature, domain, TYPES.Certificate, value, gateway, signed);
      } else {
        // Signed in a batch of certificates, as batched ballots are.
        const leaf = TypedDataEncoder.hashStruct("Certificate", TYPES.Certificate, value);
        const root = batchRoot(leaf, cert.gateway_batch);
        if (root === null) {
          errors.push(`gateway_batch: the proof does not fit its count (${JSON.stringify(cert.gateway_batch)})`);
        } else {
          checkSignature(errors, "gateway_signature", cert.gateway_signature, domain, TYPES.Batch,
            { root, count: cert.gateway_batch.count }, gateway, [...signed, "gateway_batch"]);
        }
      }
    } catch (err) {
      errors.push(`gateway_signature: ethers threw: ${err.message}`);
    }
  }
  return errors;
}

function main() {
  const [genesisPath, ...certPaths] = process.argv.slice(2);
  if (!genesisPath || certPaths.length === 0) {
    console.error("usage: node verify-certs.mjs genesis.json cert.json [cert.json ...]");
    process.exit(2);
  }
  const genesis = readJSON(genesisPath);
  if (!Number.isSafeInteger(genesis.network_id) || genesis.network_id <= 0) {
    console.error(`interop: FAIL ${genesisPath}: network_id ${JSON.stringify(genesis.network_id)} is not a positive integer below 2^53`);
    process.exit(1);
  }
  let failed = 0;
  for (const path of certPaths) {
    const cert = readJSON(path);
    let errors;
    try {
      errors = checkCertificate(genesis, cert);
    } catch (err) {
      errors = [`ethers threw: ${err.stack ?? err}`];
    }
    if (errors.length > 0) {
      failed++;
      for (const e of errors) console.error(`interop: FAIL ${basename(path)}: ${e}`);
    } else {
      const n = Array.isArray(cert.ballots) ? cert.ballots.length : 0;
      console.log(`interop: ${basename(path)}: ${n} ballot signatures and the gateway signature recover to their signers`);
    }
  }
  if (failed > 0) {
    console.error(`interop: ${failed} of ${certPaths.length} certificates failed`);
    process.exit(1);
  }
  console.log(`interop: ${certPaths.length} certificates ok`);
}

main();
