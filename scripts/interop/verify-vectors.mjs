// Checks Verity's EIP-712 test vectors (testdata/eip712/vectors.json) with an
// implementation that shares no code with the Go one: ethers v6.
//
// For every ballot, job and certificate vector it recomputes, with ethers'
// TypedDataEncoder, the domain separator, the struct hash and the digest;
// recovers the signer with ethers.recoverAddress and ethers.verifyTypedData;
// checks the signature shape
// with ethers' Signature (65 bytes, v in {27, 28}, low-s); and signs the
// digest again with a Wallet made from the vector's private key, which must
// give the same bytes (RFC 6979 deterministic nonces). Every malformed
// signature listed in the file must be refused for the stated reason. The
// file's type strings must be what ethers derives from the types written out
// in eip712.mjs, and the certificate type hash their keccak256.
//
// Usage: node verify-vectors.mjs path/to/vectors.json
// Exits 0 and prints "interop: N vectors ok" when everything matches,
// otherwise prints each mismatch and exits 1.

import { readFileSync } from "node:fs";
import {
  TypedDataEncoder,
  Wallet,
  getAddress,
  keccak256,
  recoverAddress,
  toUtf8Bytes,
  verifyTypedData,
} from "ethers";

import { DOMAIN_NAME, DOMAIN_TYPE, DOMAIN_VERSION, TYPES, domainOf, strictSignatureError } from "./eip712.mjs";

let passed = 0;
let failed = 0;

function fail(where, message) {
  failed++;
  console.error(`interop: FAIL ${where}: ${message}`);
}

function expectEqual(errors, what, got, want) {
  if (String(got).toLowerCase() !== String(want).toLowerCase()) {
    errors.push(`${what}: ethers ${got}, vector ${want}`);
  }
}

function checkSigned(kind, v, message, errors) {
  const types = TYPES[kind];
  const domain = domainOf(v.chainId);

  expectEqual(errors, "domain separator", TypedDataEncoder.hashDomain(domain), v.domainSeparator);
  expectEqual(errors, "struct hash", TypedDataEncoder.hashStruct(kind, types, message), v.structHash);
  const digest = TypedDataEncoder.hash(domain, types, message);
  expectEqual(errors, "digest", digest, v.digest);

  if (keccak256(toUtf8Bytes(v.keySeed)) !== v.privateKey.toLowerCase()) {
    errors.push(`private key is not keccak256("${v.keySeed}")`);
  }
  if (getAddress(v.signer) !== v.signer) {
    errors.push(`signer ${v.signer} is not in checksum form (${getAddress(v.signer)})`);
  }
  const wallet = new Wallet(v.privateKey);
  expectEqual(errors, "signer of private key", wallet.address, v.signer);

  const shape = strictSignatureError(v.signature);
  if (shape !== null) {
    errors.push(`signature is not strict (${shape})`);
  } else {
    expectEqual(errors, "recovered signer", recoverAddress(v.digest, v.signature), v.signer);
    expectEqual(errors, "recovered signer (ethers digest)", recoverAddress(digest, v.signature), v.signer);
    expectEqual(errors, "verifyTypedData signer", verifyTypedData(domain, types, message, v.signature), v.signer);
  }

  const again = wallet.signingKey.sign(v.digest).serialized;
  expectEqual(errors, "signature from Wallet over the digest", again, v.signature);
  return wallet.signTypedData(domain, types, message).then((typed) => {
    expectEqual(errors, "signature from Wallet.signTypedData", typed, v.signature);
  });
}

async function main() {
  const path = process.argv[2];
  if (!path) {
    console.error("usage: node verify-vectors.mjs path/to/vectors.json");
    process.exit(2);
  }
  let file;
  try {
    file = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    console.error(`interop: cannot read ${path}: ${err.message}`);
    process.exit(2);
  }

  // The file's type strings must be what ethers derives from the types above.
  const header = [];
  expectEqual(header, "domain type", file.domain?.type, DOMAIN_TYPE);
  expectEqual(header, "domain name", file.domain?.name, DOMAIN_NAME);
  expectEqual(header, "domain version", file.domain?.version, DOMAIN_VERSION);
  expectEqual(header, "ballot type", TypedDataEncoder.from(TYPES.Ballot).encodeType("Ballot"), file.ballotType);
  expectEqual(header, "job type", TypedDataEncoder.from(TYPES.Job).encodeType("Job"), file.jobType);
  const certType = TypedDataEncoder.from(TYPES.Certificate).encodeType("Certificate");
  expectEqual(header, "certificate type", certType, file.certificateType);
  expectEqual(header, "certificate type hash", keccak256(toUtf8Bytes(certType)), file.certificateTypeHash);
  for (const k of file.keys ?? []) {
    if (keccak256(toUtf8Bytes(k.seed)) !== k.privateKey.toLowerCase()) header.push(`key "${k.seed}" is not keccak256 of its seed`);
    expectEqual(header, `address of key "${k.seed}"`, new Wallet(k.privateKey).address, k.address);
  }
  if (header.length > 0) {
    fail("header", header.join("; "));
  }

  const ballots = file.ballots ?? [];
  const jobs = file.jobs ?? [];
  const certs = file.certificates ?? [];
  const bad = file.badSignatures ?? [];
  if (ballots.length === 0 || jobs.length === 0 || certs.length === 0 || bad.length === 0) {
    fail(
      "file",
      `expected ballots, jobs, certificates and badSignatures, got ${ballots.length}, ${jobs.length}, ${certs.length}, ${bad.length}`,
    );
  }

  for (const v of ballots) {
    const errors = [];
    try {
      await checkSigned("Ballot", v, v.ballot, errors);
    } catch (err) {
      errors.push(`ethers threw: ${err.message}`);
    }
    if (errors.length > 0) fail(`ballot "${v.name}"`, errors.join("; "));
    else passed++;
  }
  for (const v of jobs) {
    const errors = [];
    try {
      const message = { ...v.job, deadline: BigInt(v.job.deadline), resend: BigInt(v.job.resend) };
      await checkSigned("Job", v, message, errors);
    } catch (err) {
      errors.push(`ethers threw: ${err.message}`);
    }
    if (errors.length > 0) fail(`job "${v.name}"`, errors.join("; "));
    else passed++;
  }
  for (const v of certs) {
    const errors = [];
    try {
      const message = { ...v.certificate, issuedAt: BigInt(v.certificate.issuedAt) };
      await checkSigned("Certificate", v, message, errors);
    } catch (err) {
      errors.push(`ethers threw: ${err.message}`);
    }
    if (errors.length > 0) fail(`certificate "${v.name}"`, errors.join("; "));
    else passed++;
  }
  for (const v of bad) {
    let got;
    try {
      got = strictSignatureError(v.signature);
    } catch (err) {
      got = `ethers threw: ${err.message}`;
    }
    if (got !== v.error) fail(`bad signature "${v.name}"`, `rejected as ${got}, vector says ${v.error}`);
    else passed++;
  }

  console.log(`interop: ${passed} passed, ${failed} failed`);
  if (failed > 0) {
    process.exit(1);
  }
  console.log(`interop: ${passed} vectors ok (ethers ${(await import("ethers")).version})`);
}

main().catch((err) => {
  console.error(`interop: ${err.stack ?? err}`);
  process.exit(1);
});
