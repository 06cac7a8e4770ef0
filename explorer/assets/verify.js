// Checks a Verity certificate in the browser, with ethers v6 (vendored next
// to this file) and nothing the node computed: every figure is recomputed
// from the certificate's own fields and a validator set, following
// docs/certificate.md as `verity cert verify` does.
//
// verifyCertificate(cert, genesis) returns
//   { valid, final, status, checks: [{ id, ok, text }], error }
// where checks lists, in order, what was checked; it stops at the first
// failure, which `error` names. genesis has the shape of genesis.json and
// of GET /v1/validators: network_id, policy (optional), validators.

import {
  Signature,
  TypedDataEncoder,
  concat,
  getAddress,
  getBytes,
  isHexString,
  keccak256,
  recoverAddress,
  toBeHex,
  toUtf8Bytes,
  zeroPadValue,
} from "./vendor/ethers-6.17.0.min.js";

const DOMAIN_NAME = "Verity";
const DOMAIN_VERSION = "1";

const BALLOT_TYPES = {
  Ballot: [
    { name: "jobId", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "claimsRoot", type: "bytes32" },
    { name: "claimIndexes", type: "uint32[]" },
    { name: "verdicts", type: "uint8[]" },
  ],
};

const CERTIFICATE_TYPES = {
  Certificate: [
    { name: "jobId", type: "bytes32" },
    { name: "genesisHash", type: "bytes32" },
    { name: "status", type: "uint8" },
    { name: "verdicts", type: "uint8[]" },
    { name: "voters", type: "address[]" },
    { name: "issuedAt", type: "uint64" },
  ],
};

// Signed to sign many messages at once: root is the Merkle root over the
// messages' EIP-712 struct hashes, count their number.
const BATCH_TYPES = {
  Batch: [
    { name: "root", type: "bytes32" },
    { name: "count", type: "uint32" },
  ],
};

const STATUS_CODES = { verified: 1, rejected: 2, unresolved: 3 };
const VERDICT_CODES = { undecided: 0, true: 1, false: 2 };
const SECP256K1_N = BigInt("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

const DEFAULT_POLICY = {
  byzantine_below: { num: 1, den: 3 },
  quorum_kinds: ["stake", "count"],
  min_stake_quorum: { num: 2, den: 3 },
  min_claim_stake: 0,
};

class CheckFailed extends Error {}

// The fields docs/certificate.md defines; any other key (a key in another
// letter case included) makes the certificate malformed, as in Go.
const FIELDS = {
  certificate: ["version", "network_id", "genesis_hash", "job_id", "job_nonce", "output_hash", "claims_root", "quorum",
    "replication", "gateway", "deadline_ms", "status", "claims", "ballots", "issued_at", "gateway_signature", "gateway_batch"],
  quorum: ["kind", "num", "den", "n", "m"],
  claim: ["index", "text", "hash", "verdict", "stake_for", "stake_total"],
  ballot: ["validator", "claim_indexes", "verdicts", "signature", "batch"],
  batch: ["index", "count", "siblings"],
};

function knownKeys(obj, kind, field) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new CheckFailed(`${field}: not an object`);
  for (const k of Object.keys(obj)) {
    if (!FIELDS[kind].includes(k)) throw new CheckFailed(`${field}: unknown field ${JSON.stringify(k)}`);
  }
}

const enc = new TextEncoder();
const u8 = (x) => zeroPadValue(toBeHex(BigInt(x)), 1);
const u32 = (x) => zeroPadValue(toBeHex(BigInt(x)), 4);
const u64 = (x) => zeroPadValue(toBeHex(BigInt(x)), 8);
const short = (h) => (typeof h === "string" && h.length > 14 ? `${h.slice(0, 8)}…${h.slice(-4)}` : String(h));

function uint(v, field, max = Number.MAX_SAFE_INTEGER) {
  if (!Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new CheckFailed(`${field}: ${JSON.stringify(v)} is not an integer from 0 to ${max}`);
  }
  return v;
}

function hash32(v, field) {
  if (!isHexString(v, 32)) throw new CheckFailed(`${field}: ${JSON.stringify(v)} is not a 32-byte hex hash`);
  return v.toLowerCase();
}

function address(v, field) {
  if (!isHexString(v, 20)) throw new CheckFailed(`${field}: ${JSON.stringify(v)} is not an address`);
  return v.toLowerCase();
}

// validatorSet checks a genesis (or a /v1/validators answer) and returns the
// set in ascending address order with its recomputed genesis hash.
export function validatorSet(g) {
  uint(g.network_id, "genesis network_id");
  const policy = g.policy ?? DEFAULT_POLICY;
  const list = Array.isArray(g.validators) ? g.validators : [];
  if (list.length === 0) throw new CheckFailed("genesis: no validators");
  const vs = list
    .map((v, i) => ({ name: String(v.name ?? ""), address: address(v.address, `genesis validators[${i}].address`), stake: uint(v.stake, `genesis validators[${i}].stake`) }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  for (let i = 1; i < vs.length; i++) {
    if (vs[i].address === vs[i - 1].address) throw new CheckFailed(`genesis: ${vs[i].address} is listed twice`);
  }
  let mask = 0;
  for (const k of policy.quorum_kinds ?? []) mask |= k === "stake" ? 1 : k === "count" ? 2 : 0;
  const parts = [toUtf8Bytes("verity.genesis.v2"), u64(g.network_id),
    u64(policy.byzantine_below.num), u64(policy.byzantine_below.den), u8(mask),
    u64(policy.min_stake_quorum.num), u64(policy.min_stake_quorum.den), u64(policy.min_claim_stake ?? 0),
    u32(vs.length)];
  for (const v of vs) {
    const name = enc.encode(v.name);
    parts.push(v.address, u64(v.stake), u32(name.length), name);
  }
  const total = vs.reduce((s, v) => s + BigInt(v.stake), 0n);
  const index = new Map(vs.map((v, i) => [v.address, i]));
  return { networkId: g.network_id, policy, validators: vs, index, total, hash: keccak256(concat(parts)) };
}

function claimsRoot(hashes) {
  let level = hashes.map((h) => keccak256(concat(["0x00", h])));
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(keccak256(concat(["0x01", level[i], level[i + 1]])));
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

function jobId(cert) {
  const q = cert.quorum;
  const [kind, a, b] = q.kind === "stake" ? [1, q.num, q.den] : [2, q.n, q.m];
  return keccak256(concat([toUtf8Bytes("verity.job.v2"), u64(cert.network_id), cert.output_hash, cert.claims_root,
    u32(cert.claims.length), u8(kind), u64(a), u64(b), u32(cert.replication), cert.gateway, u64(cert.deadline_ms),
    cert.job_nonce]));
}

// assign returns, for each claim, the positions of its validators in the set
// (stake-weighted rendezvous draw of docs/certificate.md, Assignment).
function assign(set, id, claimCount, replication) {
  const n = set.validators.length;
  const r = replication === 0 || replication >= n ? n : replication;
  const byClaim = [];
  for (let i = 0; i < claimCount; i++) {
    if (r === n) {
      byClaim.push(set.validators.map((_, v) => v));
      continue;
    }
    const seed = keccak256(concat([toUtf8Bytes("verity.assign.v1"), id, u32(i)]));
    const drawn = new Array(n).fill(false);
    let remaining = set.total;
    for (let k = 0; k < r; k++) {
      const x = BigInt(keccak256(concat([seed, u32(k)])).slice(0, 34));
      let point = x % remaining;
      for (let v = 0; v < n; v++) {
        if (drawn[v]) continue;
        const s = BigInt(set.validators[v].stake);
        if (point < s) {
          drawn[v] = true;
          remaining -= s;
          break;
        }
        point -= s;
      }
    }
    byClaim.push(drawn.flatMap((d, v) => (d ? [v] : [])));
  }
  return byClaim;
}

// batchProof checks the shape of a batch proof {index, count, siblings}.
function batchProof(p, field) {
  knownKeys(p, "batch", field);
  uint(p.count, `${field}.count`, 65536);
  if (p.count < 1) throw new CheckFailed(`${field}.count: 0`);
  uint(p.index, `${field}.index`, p.count - 1);
  if (!Array.isArray(p.siblings) || p.siblings.length > 17) throw new CheckFailed(`${field}.siblings: not a list of at most 17 hashes`);
  p.siblings.forEach((h, i) => hash32(h, `${field}.siblings[${i}]`));
}

// batchRoot folds the leaf (a struct hash) up its proof, in the tree of the
// claims root; null when the proof does not fit its count.
function batchRoot(leaf, { index, count, siblings }) {
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

// recoverSigner recovers sig over the EIP-712 digest of value, or, with a
// batch proof, over the Batch whose root the value's struct hash folds to.
function recoverSigner(domain, types, primary, value, sig, proof, field) {
  if (proof === undefined) return recoverAddress(TypedDataEncoder.hash(domain, types, value), sig).toLowerCase();
  const root = batchRoot(TypedDataEncoder.hashStruct(primary, types, value), proof);
  if (root === null) throw new CheckFailed(`${field}: the batch proof does not fit its count`);
  return recoverAddress(TypedDataEncoder.hash(domain, BATCH_TYPES, { root, count: proof.count }), sig).toLowerCase();
}

function reached(q, forStake, forCount, assigned) {
  if (q.kind === "stake") return forStake * BigInt(q.den) > assigned * BigInt(q.num);
  return forCount >= q.n;
}

function strictSignature(sig, field) {
  if (typeof sig !== "string" || !isHexString(sig, 65)) throw new CheckFailed(`${field}: not 65 bytes of hex`);
  const bytes = getBytes(sig);
  if (bytes[64] !== 27 && bytes[64] !== 28) throw new CheckFailed(`${field}: v is ${bytes[64]}, not 27 or 28`);
  const s = Signature.from(sig);
  const r = BigInt(s.r);
  const ss = BigInt(s._s);
  if (r === 0n || r >= SECP256K1_N || ss === 0n || ss > SECP256K1_N / 2n) throw new CheckFailed(`${field}: r or s out of range (high-s)`);
}

// verifyCertificate: see the top of the file.
// With output (the answer's text, when known), it also checks that the
// output hashes to the certificate's output_hash.
export function verifyCertificate(cert, genesis, output) {
  const checks = [];
  const pass = (id, text) => checks.push({ id, ok: true, text });
  let result = { valid: false, final: false, status: null, checks, error: null };
  let step = "shape";
  try {
    const set = validatorSet(genesis);
    step = "shape";
    knownKeys(cert, "certificate", "certificate");
    knownKeys(cert.quorum, "quorum", "quorum");
    (Array.isArray(cert.claims) ? cert.claims : []).forEach((c, i) => knownKeys(c, "claim", `claims[${i}]`));
    (Array.isArray(cert.ballots) ? cert.ballots : []).forEach((b, i) => {
      knownKeys(b, "ballot", `ballots[${i}]`);
      if (b.batch !== undefined) batchProof(b.batch, `ballots[${i}].batch`);
    });
    if (cert.gateway_batch !== undefined) {
      if (cert.gateway_signature === undefined) throw new CheckFailed("gateway_batch without gateway_signature");
      batchProof(cert.gateway_batch, "gateway_batch");
    }
    step = "genesis";
    if (cert.version !== 1) throw new CheckFailed(`version ${JSON.stringify(cert.version)} is not 1`);
    uint(cert.network_id, "network_id");
    if (cert.network_id !== set.networkId) throw new CheckFailed(`certificate is for network ${cert.network_id}, the validator set for ${set.networkId}`);
    if (hash32(cert.genesis_hash, "genesis_hash") !== set.hash) {
      throw new CheckFailed(`certificate names genesis ${short(cert.genesis_hash)}, the validator set hashes to ${short(set.hash)}`);
    }
    if (genesis.genesis_hash !== undefined && String(genesis.genesis_hash).toLowerCase() !== set.hash) {
      throw new CheckFailed(`the node states genesis ${short(genesis.genesis_hash)}, its validator set hashes to ${short(set.hash)}`);
    }
    pass("genesis", `validator set of ${set.validators.length} (total stake ${set.total}) hashes to the certificate's genesis ${short(set.hash)}`);

    step = "shape";
    for (const f of ["job_id", "job_nonce", "output_hash", "claims_root"]) hash32(cert[f], f);
    const gateway = address(cert.gateway, "gateway");
    if (!set.index.has(gateway)) throw new CheckFailed(`gateway ${gateway} is not a validator`);
    if (STATUS_CODES[cert.status] === undefined) throw new CheckFailed(`status ${JSON.stringify(cert.status)} is not final`);
    uint(cert.replication, "replication", 1024);
    uint(cert.deadline_ms, "deadline_ms");
    const q = cert.quorum ?? {};
    if (q.kind === "stake") {
      uint(q.num, "quorum.num");
      uint(q.den, "quorum.den", 2 ** 32);
      if (q.den === 0 || 2 * q.num < q.den || q.num >= q.den) throw new CheckFailed(`quorum ${q.num}/${q.den} is not in [1/2, 1)`);
    } else if (q.kind === "count") {
      uint(q.n, "quorum.n", 1024);
      uint(q.m, "quorum.m", 1024);
      if (!(q.m < 2 * q.n && q.n <= q.m)) throw new CheckFailed(`quorum ${q.n}of${q.m} is not a strict majority`);
    } else {
      throw new CheckFailed(`quorum kind ${JSON.stringify(q.kind)} is neither stake nor count`);
    }
    if (!Array.isArray(cert.claims) || cert.claims.length === 0 || cert.claims.length > 256) throw new CheckFailed("claims: need 1 to 256");
    if (!Array.isArray(cert.ballots) || cert.ballots.length > set.validators.length) throw new CheckFailed("ballots: more than the validators");
    if (typeof cert.issued_at !== "string" || !RFC3339_MS.test(cert.issued_at)) throw new CheckFailed(`issued_at ${JSON.stringify(cert.issued_at)} is not RFC 3339 in whole milliseconds`);
    const issuedAt = Date.parse(cert.issued_at);

    step = "job";
    const id = jobId(cert);
    if (id !== cert.job_id.toLowerCase()) throw new CheckFailed(`job_id stated ${short(cert.job_id)}, its parameters give ${short(id)}`);
    pass("job", "job id recomputed from the network, output hash, claims root, quorum, replication, gateway, deadline and nonce");

    step = "claims";
    const hashes = cert.claims.map((c, i) => {
      if (c.index !== i) throw new CheckFailed(`claim at position ${i} has index ${c.index}`);
      if (typeof c.text !== "string") throw new CheckFailed(`claim ${i} has no text`);
      const h = keccak256(toUtf8Bytes(c.text));
      if (h !== hash32(c.hash, `claims[${i}].hash`)) throw new CheckFailed(`claim ${i}: its text hashes to ${short(h)}, not ${short(c.hash)}`);
      if (VERDICT_CODES[c.verdict] === undefined) throw new CheckFailed(`claim ${i} has verdict ${JSON.stringify(c.verdict)}`);
      return h;
    });
    const root = claimsRoot(hashes);
    if (root !== cert.claims_root.toLowerCase()) throw new CheckFailed(`claims_root stated ${short(cert.claims_root)}, the claims give ${short(root)}`);
    if (typeof output === "string") {
      const oh = keccak256(toUtf8Bytes(output));
      if (oh !== cert.output_hash.toLowerCase()) throw new CheckFailed(`the output the node shows hashes to ${short(oh)}, not to the certificate's output_hash ${short(cert.output_hash)}`);
      pass("output", "the answer shown here hashes to the certificate's output hash");
    }
    pass("claims", `${hashes.length} claim texts hash to their claim hashes and to the claims root`);

    step = "floor";
    const byClaim = assign(set, id, cert.claims.length, cert.replication);
    const assignedStake = byClaim.map((vs) => vs.reduce((s, v) => s + BigInt(set.validators[v].stake), 0n));
    const p = set.policy;
    if (!(p.quorum_kinds ?? []).includes(q.kind)) throw new CheckFailed(`quorum kind ${q.kind} is not allowed by the policy`);
    if (q.kind === "stake" && BigInt(q.num) * BigInt(p.min_stake_quorum.den) < BigInt(p.min_stake_quorum.num) * BigInt(q.den)) {
      throw new CheckFailed(`quorum ${q.num}/${q.den} is below the policy's least ${p.min_stake_quorum.num}/${p.min_stake_quorum.den}`);
    }
    if (q.kind === "count" && byClaim.some((vs) => vs.length !== q.m)) throw new CheckFailed(`count quorum ${q.n}of${q.m}: claims have ${byClaim[0].length} validators`);
    const f = p.byzantine_below;
    const fs = set.total * BigInt(f.num);
    const assumed = fs / BigInt(f.den) + (fs % BigInt(f.den) === 0n ? 0n : 1n) - 1n;
    let least = null;
    byClaim.forEach((vs, i) => {
      let tol;
      if (q.kind === "stake") {
        tol = (BigInt(2 * q.num - q.den) * assignedStake[i]) / BigInt(q.den);
      } else {
        const stakes = vs.map((v) => BigInt(set.validators[v].stake)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const sum = stakes.slice(0, 2 * q.n - q.m).reduce((s, x) => s + x, 0n);
        tol = sum === 0n ? 0n : sum - 1n;
      }
      if (assignedStake[i] < BigInt(p.min_claim_stake ?? 0)) throw new CheckFailed(`claim ${i} has ${assignedStake[i]} stake assigned, the policy needs ${p.min_claim_stake}`);
      if (tol < assumed) throw new CheckFailed(`claim ${i} survives byzantine stake up to ${tol}; the policy assumes up to ${assumed} (below ${f.num}/${f.den} of ${set.total}): below the security floor`);
      if (least === null || tol < least) least = tol;
    });
    pass("floor", `within the network's security floor: every claim survives ${least} byzantine stake; the policy assumes up to ${assumed} (below ${f.num}/${f.den} of the total)`);

    step = "ballots";
    const domain = { name: DOMAIN_NAME, version: DOMAIN_VERSION, chainId: BigInt(cert.network_id) };
    const voters = [];
    const stake = cert.claims.map(() => [0n, 0n, 0n]);
    const count = cert.claims.map(() => [0, 0, 0]);
    const voted = cert.claims.map(() => [0n, 0]);
    let batched = 0;
    cert.ballots.forEach((b, k) => {
      const field = `ballot ${k}`;
      const who = address(b.validator, `${field} validator`);
      const v = set.index.get(who);
      if (v === undefined) throw new CheckFailed(`${field}: ${who} is not a validator`);
      if (voters.length > 0 && voters[voters.length - 1] >= who) throw new CheckFailed(`${field}: ${who} is not after ${voters[voters.length - 1]} (ballots must be sorted, one per validator)`);
      voters.push(who);
      const want = byClaim.flatMap((vs, i) => (vs.includes(v) ? [i] : []));
      if (!Array.isArray(b.claim_indexes) || !Array.isArray(b.verdicts) || b.claim_indexes.length !== b.verdicts.length ||
          b.claim_indexes.join(",") !== want.join(",")) {
        throw new CheckFailed(`${field} (${set.validators[v].name}): covers claims [${b.claim_indexes}], assigned [${want}]`);
      }
      b.verdicts.forEach((x) => uint(x, `${field} verdict`, 2));
      strictSignature(b.signature, `${field} signature`);
      const value = { jobId: cert.job_id, outputHash: cert.output_hash, claimsRoot: cert.claims_root, claimIndexes: b.claim_indexes, verdicts: b.verdicts };
      const signer = recoverSigner(domain, BALLOT_TYPES, "Ballot", value, b.signature, b.batch, `${field} batch`);
      if (b.batch !== undefined) batched++;
      if (signer !== who) {
        throw new CheckFailed(`${field}: the EIP-712 signature${b.batch ? " of its batch" : ""} recovers to ${getAddress(signer)}, not to ${set.validators[v].name} ${getAddress(who)}`);
      }
      const s = BigInt(set.validators[v].stake);
      b.claim_indexes.forEach((c, j) => {
        stake[c][b.verdicts[j]] += s;
        count[c][b.verdicts[j]] += 1;
        voted[c][0] += s;
        voted[c][1] += 1;
      });
    });
    pass("ballots", `${cert.ballots.length} ballot signatures (EIP-712, chainId ${cert.network_id}${batched ? `; ${batched} signed in a batch, through its Merkle proof` : ""}) recover to their validators, each covering exactly the claims assigned to it`);

    step = "gateway";
    let signed = false;
    if (cert.gateway_signature !== undefined) {
      strictSignature(cert.gateway_signature, "gateway signature");
      const value = {
        jobId: cert.job_id, genesisHash: cert.genesis_hash, status: STATUS_CODES[cert.status],
        verdicts: cert.claims.map((c) => VERDICT_CODES[c.verdict]), voters, issuedAt: BigInt(issuedAt),
      };
      const signer = recoverSigner(domain, CERTIFICATE_TYPES, "Certificate", value, cert.gateway_signature, cert.gateway_batch, "gateway_batch");
      if (signer !== gateway) throw new CheckFailed(`the gateway signature recovers to ${getAddress(signer)}, not to the gateway ${getAddress(gateway)}`);
      signed = true;
      pass("gateway", `the gateway ${set.validators[set.index.get(gateway)].name} signed the outcome (status, verdicts, voters, issue time)${cert.gateway_batch ? ", in a batch, through its Merkle proof" : ""}`);
    }

    step = "tally";
    let settled = true;
    const outcomes = cert.claims.map((c, i) => {
      const A = assignedStake[i];
      const m = byClaim[i].length;
      let o;
      if (reached(q, stake[i][1], count[i][1], A)) o = "true";
      else if (reached(q, stake[i][2], count[i][2], A)) o = "false";
      else {
        const missS = A - voted[i][0];
        const missC = m - voted[i][1];
        const open = reached(q, stake[i][1] + missS, count[i][1] + missC, A) || reached(q, stake[i][2] + missS, count[i][2] + missC, A);
        if (open) settled = false;
        o = "undecided";
      }
      if (c.verdict !== o) throw new CheckFailed(`claim ${i} is stated ${c.verdict}; its ballots give ${o}`);
      const forStake = o === "true" ? stake[i][1] : o === "false" ? stake[i][2] : stake[i][1] > stake[i][2] ? stake[i][1] : stake[i][2];
      if (BigInt(c.stake_for) !== forStake) throw new CheckFailed(`claim ${i}: stake_for ${c.stake_for}, its ballots give ${forStake}`);
      if (BigInt(c.stake_total) !== A) throw new CheckFailed(`claim ${i}: stake_total ${c.stake_total}, its assignment gives ${A}`);
      return o;
    });
    const status = outcomes.includes("false") ? "rejected" : outcomes.includes("undecided") ? "unresolved" : "verified";
    if (cert.status !== status) throw new CheckFailed(`status stated ${cert.status}, the verdicts give ${status}`);
    pass("tally", `every verdict, stake figure and the status (${status}) recomputed from the ballots under quorum ${q.kind === "stake" ? `${q.num}/${q.den} of stake` : `${q.n} of ${q.m}`}`);
    result = { ...result, valid: true, status };

    step = "final";
    if (!signed) {
      checks.push({ id: "final", ok: false, text: "not final: the gateway did not sign it" });
      result.error = "valid, but not final: the gateway did not sign it";
    } else if (!settled && issuedAt < cert.deadline_ms) {
      checks.push({ id: "final", ok: false, text: "not final: claims still open, issued before the deadline" });
      result.error = "valid, but not final: claims still open before the deadline";
    } else {
      result.final = true;
      pass("final", settled ? "final: every claim is settled by the ballots alone" : "final: issued at the job's deadline");
    }
  } catch (err) {
    const text = err instanceof CheckFailed ? err.message : `cannot check: ${err.message ?? err}`;
    checks.push({ id: step, ok: false, text });
    result.error = text;
  }
  return result;
}
