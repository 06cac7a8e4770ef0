// Runs the explorer's in-browser certificate check (explorer/assets/verify.js,
// which the node serves with ethers v6 vendored beside it) on the
// certificate test vectors: the valid ones must verify as final, every
// invalid one must fail or be reported not final. The one vector it cannot
// see is a key given twice (JSON.parse keeps the last); Go's strict parser
// refuses it, and the explorer's page says so.
//
// Usage: node verify-explorer.mjs testdata/certs
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { verifyCertificate } from "../../explorer/assets/verify.js";

const dir = process.argv[2];
const genesis = JSON.parse(readFileSync(join(dir, "genesis.json"), "utf8"));
const read = (p) => JSON.parse(readFileSync(p, "utf8"));
let failed = 0;
const valid = ["valid.json", "verified.json", "batched.json"];
for (const name of valid) {
  const r = verifyCertificate(read(join(dir, name)), genesis);
  if (!r.final) {
    failed++;
    console.error(`explorer: FAIL ${name}: should verify, got: ${r.error}`);
  }
}
let invalid = 0;
for (const name of readdirSync(join(dir, "invalid")).sort()) {
  if (!name.endsWith(".json") || name === "cases.json" || name === "duplicate-key.json") continue;
  invalid++;
  const r = verifyCertificate(read(join(dir, "invalid", name)), genesis);
  if (r.final) {
    failed++;
    console.error(`explorer: FAIL invalid/${name}: verified as final`);
  }
}
if (failed > 0) {
  console.error(`explorer: ${failed} vectors misjudged by the in-browser check`);
  process.exit(1);
}
console.log(`explorer: in-browser check: ${valid.length} valid certificates final, ${invalid} invalid ones refused`);
