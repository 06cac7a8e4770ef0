// The Verity explorer: jobs, one job's timeline, in-browser certificate
// verification and the validator set, live over the node's event stream.
// It reads the node's public API only and never reads a provisional answer
// (GET /v1/jobs/{id} is always asked with require=final), so opening a job
// here is never a read before proof. See docs/explorer.md.

import { verifyCertificate } from "./verify.js";

const view = document.getElementById("view");
const state = {
  token: localStorage.getItem("verity.token") || "",
  validators: null, // GET /v1/validators
  genesisFile: null, // a genesis.json the user chose, to trust nothing the node says
  jobs: new Map(), // job id -> summary, from the node's event stream
  cleanup: null, // undoes the current view's streams and timers
};

// ---------- small helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElementNS(tag.startsWith("svg:") ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag.replace(/^svg:/, ""));
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const short = (x) => (typeof x === "string" && x.length > 14 ? `${x.slice(0, 8)}…${x.slice(-4)}` : String(x ?? ""));
const ms = (t) => (typeof t === "string" ? Date.parse(t) : t);

function offset(dt) {
  const a = Math.abs(dt);
  const sign = dt < 0 ? "−" : "+";
  if (a < 1000) return `${sign}${a.toFixed(a < 10 ? 2 : 1)} ms`;
  if (a < 60000) return `${sign}${(a / 1000).toFixed(2)} s`;
  return `${sign}${Math.floor(a / 60000)} min ${Math.round((a % 60000) / 1000)} s`;
}

function clock(t) {
  const d = new Date(ms(t));
  return d.toISOString().slice(11, 23);
}

function validatorName(addr) {
  const a = String(addr ?? "").toLowerCase();
  const v = state.validators?.validators?.find((x) => x.address.toLowerCase() === a);
  return v ? v.name : short(addr);
}

const VERDICT = ["abstain", "true", "false"];

function statusBadge(status) {
  if (status === "provisional") {
    return h("span", { class: "badge provisional", "data-status": status, title: "The answer exists but nothing about it is proven yet" }, "provisional · not proven");
  }
  return h("span", { class: `badge ${status}`, "data-status": status }, status ?? "unknown");
}

async function api(path) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let r;
  try {
    r = await fetch(path, { headers, cache: "no-store" });
  } catch (err) {
    return { status: 0, ok: false, body: { error: "network", message: `cannot reach the node: ${err.message}` } };
  }
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (r.status === 401) showNotice("This node asks for a token: enter a client token under Token.");
  return { status: r.status, ok: r.ok, body };
}

function showNotice(text) {
  let n = document.getElementById("notice");
  if (!n) {
    n = h("div", { id: "notice", class: "notice", role: "status" });
    document.body.prepend(n);
  }
  n.textContent = text;
}

let renderQueued = false;
function rerender(fn) {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    fn();
  });
}

// ---------- the node's event stream: the jobs list ----------

const EVENT_TYPES = ["job.accepted", "claims.extracted", "ballot.attached", "claim.decided", "job.expired", "certificate.issued"];

function jobSummary(id) {
  let j = state.jobs.get(id);
  if (!j) {
    j = { id, status: "provisional", claims: null, ballots: 0, accepted: null, seen: null, finalAt: null, gateway: null };
    state.jobs.set(id, j);
  }
  return j;
}

function onNodeEvent(e) {
  const j = jobSummary(e.job_id);
  const t = ms(e.time);
  j.seen ??= t;
  switch (e.type) {
    case "job.accepted":
      j.accepted = t;
      j.claims = e.data.claims;
      j.gateway = e.data.gateway;
      break;
    case "ballot.attached":
      j.ballots++;
      break;
    case "certificate.issued":
      j.status = e.data.status;
      j.finalAt = t;
      j.claims ??= e.data.certificate?.claims?.length ?? null;
      j.ballots = e.data.certificate?.ballots?.length ?? j.ballots;
      break;
  }
  if (currentRoute().name === "jobs") rerender(renderJobs);
}

function startNodeStream() {
  const live = document.getElementById("live");
  // The newest 1000 events the node buffers, then live; EventSource
  // resumes with Last-Event-ID after a dropped connection.
  const es = new EventSource("/v1/events?replay=1000");
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (m) => {
      try {
        onNodeEvent(JSON.parse(m.data));
      } catch {
        // a malformed event is skipped; the stream goes on
      }
    });
  }
  es.onopen = () => {
    live.dataset.state = "live";
    live.textContent = "live";
  };
  es.onerror = () => {
    live.dataset.state = "reconnecting";
    live.textContent = es.readyState === EventSource.CLOSED ? "stream refused" : "reconnecting";
  };
}

// ---------- views ----------

function currentRoute() {
  const hash = location.hash || "#/";
  let m = hash.match(/^#\/job\/(0x[0-9a-fA-F]{64})$/);
  if (m) return { name: "job", id: m[1].toLowerCase() };
  if (hash === "#/validators") return { name: "validators" };
  return { name: "jobs" };
}

function route() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  const r = currentRoute();
  for (const a of document.querySelectorAll("nav a[data-nav]")) a.classList.toggle("active", a.dataset.nav === r.name || (r.name === "job" && a.dataset.nav === "jobs"));
  if (r.name === "job") openJob(r.id);
  else if (r.name === "validators") openValidators();
  else renderJobs();
}

function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) => (b.accepted ?? b.seen) - (a.accepted ?? a.seen));
  const provisional = jobs.filter((j) => j.status === "provisional").length;
  const open = h("form", { class: "open-job", onsubmit: (ev) => {
    ev.preventDefault();
    const v = ev.target.elements.job.value.trim();
    if (/^0x[0-9a-fA-F]{64}$/.test(v)) location.hash = `#/job/${v.toLowerCase()}`;
  } }, h("input", { name: "job", placeholder: "open a job id (0x…)", spellcheck: "false", "aria-label": "job id" }), h("button", { type: "submit" }, "Open"));
  const rows = jobs.map((j) => h("a", { class: `job-row ${j.status}`, href: `#/job/${j.id}`, "data-job": j.id },
    h("span", { class: "cell status" }, statusBadge(j.status)),
    h("span", { class: "cell id mono" }, short(j.id)),
    h("span", { class: "cell claims" }, j.claims === null ? "" : `${j.claims} claim${j.claims === 1 ? "" : "s"}`),
    h("span", { class: "cell ballots" }, `${j.ballots} ballot${j.ballots === 1 ? "" : "s"}`),
    h("span", { class: "cell time" }, j.accepted ? `accepted ${clock(j.accepted)}` : `seen ${clock(j.seen)}`),
    h("span", { class: "cell took" }, j.finalAt && j.accepted ? `proof ${offset(j.finalAt - j.accepted)}` : j.status === "provisional" ? "awaiting proof" : "")));
  view.replaceChildren(
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h1", null, "Jobs"), h("span", { class: "muted" }, `${jobs.length} seen by this node, ${provisional} awaiting proof`)),
      open,
      rows.length ? h("div", { class: "job-list", id: "jobs" }, rows) : h("p", { class: "muted empty" }, "No job yet. Submit one with verity submit or POST /v1/verify; it appears here as it is accepted.")));
}

// ----- one job -----

function openJob(id) {
  const j = {
    id, status: "provisional", accepted: null, gateway: null, quorum: null, deadline: null,
    claimCount: 0, hashes: [], ballots: [], progress: [], decided: new Map(), expired: null,
    cert: null, certAt: null, job: null, audit: null, verify: null, verifyAgainst: null, missing: false,
  };
  const draw = () => rerender(() => renderJob(j));
  let es = null;
  let closed = false;

  const applyEvent = (e) => {
    const t = ms(e.time);
    switch (e.type) {
      case "job.accepted":
        j.accepted = t;
        j.gateway = e.data.gateway;
        j.quorum = e.data.quorum;
        j.deadline = ms(e.data.deadline);
        j.claimCount = e.data.claims;
        break;
      case "claims.extracted":
        j.hashes = e.data.claims.map((c) => c.hash);
        j.claimCount = j.hashes.length;
        break;
      case "ballot.attached":
        if (!j.ballots.some((b) => b.validator === e.data.validator)) j.ballots.push({ time: t, ...e.data });
        for (const p of e.data.progress ?? []) j.progress[p.index] = p;
        break;
      case "claim.decided":
        j.decided.set(e.data.index, { time: t, ...e.data });
        j.progress[e.data.index] = { ...(j.progress[e.data.index] ?? {}), ...e.data };
        break;
      case "job.expired":
        j.expired = { time: t, ...e.data };
        break;
      case "certificate.issued":
        setFinal(e.data.certificate, t);
        break;
    }
    draw();
  };

  const setFinal = (cert, t) => {
    if (!cert || j.cert) return;
    j.cert = cert;
    j.status = cert.status;
    j.certAt = t ?? ms(cert.issued_at);
    if (es) es.close();
    loadFinalJob();
    loadAudit();
  };

  // The job as final, with its output: a strict read, never a read before proof.
  const loadFinalJob = async () => {
    const r = await api(`/v1/jobs/${id}?require=final`);
    if (closed) return;
    if (r.status === 404) {
      j.missing = true;
    } else if (r.ok && r.body) {
      j.job = r.body;
      j.accepted ??= ms(r.body.submitted_at);
      if (r.body.certificate && !j.cert) setFinal(r.body.certificate, ms(r.body.final_at ?? r.body.certificate.issued_at));
    }
    runVerify();
    draw();
  };

  const loadAudit = async () => {
    const r = await api(`/v1/jobs/${id}/audit`);
    if (closed || !r.ok || !r.body) return;
    const seen = JSON.stringify(r.body);
    if (seen === j.auditSeen) return; // nothing new: keep the page as it is
    j.auditSeen = seen;
    j.audit = r.body;
    j.accepted ??= ms(r.body.submitted_at);
    draw();
  };

  const runVerify = () => {
    if (!j.cert) return;
    const genesis = state.genesisFile?.genesis ?? state.validators;
    if (!genesis) return;
    j.verifyAgainst = state.genesisFile ? `your file ${state.genesisFile.name}` : "the validator set this node serves (GET /v1/validators)";
    const output = typeof j.job?.output === "string" ? j.job.output : undefined;
    try {
      j.verify = verifyCertificate(j.cert, genesis, output);
    } catch (err) {
      j.verify = { valid: false, final: false, checks: [], error: `cannot check: ${err.message}` };
    }
  };
  j.reverify = () => {
    runVerify();
    draw();
  };

  es = new EventSource(`/v1/jobs/${id}/events?replay=all`);
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (m) => {
      try {
        applyEvent(JSON.parse(m.data));
      } catch {
        // skip a malformed event
      }
    });
  }
  es.onerror = () => {
    // A job this node never saw is refused (404): EventSource gives up.
    if (es.readyState === EventSource.CLOSED && !j.cert) loadFinalJob();
  };
  const poll = setInterval(loadAudit, 2000);
  loadFinalJob();
  loadAudit();
  state.cleanup = () => {
    closed = true;
    es.close();
    clearInterval(poll);
  };
  renderJob(j);
}

// timeline gathers everything that happened to the job, in time order.
function timeline(j) {
  const items = [];
  if (j.accepted) items.push({ t: j.accepted, kind: "accepted", text: `job accepted by ${validatorName(j.gateway ?? j.job?.gateway)}: answer exists, nothing proven` });
  for (const b of j.ballots) {
    const verdicts = b.claim_indexes.map((c, k) => `${c}=${VERDICT[b.verdicts[k]]}`).join(" ");
    items.push({ t: b.time, kind: "ballot", text: `ballot from ${b.name || short(b.validator)} (stake ${b.stake}): ${verdicts}` });
  }
  for (const d of j.decided.values()) {
    items.push({ t: d.time, kind: "decided", outcome: d.outcome, text: `claim ${d.index} decided ${d.outcome} (true ${d.stake_true}, false ${d.stake_false}, needed ${d.needed} of ${d.stake_assigned})` });
  }
  if (j.expired) items.push({ t: j.expired.time, kind: "expired", text: `deadline passed; claims without quorum: ${j.expired.undecided?.join(", ") || "none"}` });
  if (j.cert) items.push({ t: j.certAt, kind: "certificate", text: `certificate issued: ${j.cert.status.toUpperCase()} (${j.cert.ballots.length} ballots)` });
  for (const e of j.audit?.entries ?? []) {
    if (e.kind !== "read" && e.kind !== "action") continue;
    const who = e.client ? ` by ${e.client}` : "";
    const text = e.kind === "read"
      ? `answer read${who} (${e.detail ?? "GET"}) while ${e.status}`
      : `action “${e.name}”${who}${e.detail ? `: ${e.detail}` : ""} while ${e.status}`;
    items.push({ t: ms(e.time), kind: e.kind, beforeProof: !!e.before_proof, flags: e.flags ?? [], text });
  }
  items.sort((a, b) => a.t - b.t);
  return items;
}

function axis(j, items) {
  const W = 1000;
  const X0 = 118; // the lane labels sit left of the plot
  const X1 = W - 16;
  const t0 = j.accepted ?? (items[0]?.t ?? Date.now());
  const tProof = j.certAt;
  let t1 = Math.max(t0 + 1, ...items.map((i) => i.t), tProof ?? 0);
  if (!tProof) t1 = Math.max(t1, Date.now());
  const x = (t) => X0 + ((t - t0) / (t1 - t0)) * (X1 - X0);
  const lanes = { ballot: 50, decided: 84, read: 112, action: 128 };
  // Markers closer than a marker's width stack up and down their lane.
  const last = {};
  const place = (lane, cx) => {
    const l = (last[lane] ??= { x: -100, n: 0 });
    l.n = cx - l.x < 12 ? l.n + 1 : 0;
    if (l.n === 0) l.x = cx;
    const k = l.n;
    return lanes[lane] + (k === 0 ? 0 : (k % 2 ? -1 : 1) * 7 * Math.ceil(k / 2));
  };
  const pend = tProof ? x(tProof) : X1;
  const svg = h("svg:svg", { viewBox: `0 0 ${W} 166`, class: "axis", role: "img", "aria-label": "time axis from acceptance to certificate" },
    h("svg:defs", null, h("svg:pattern", { id: "hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      h("svg:rect", { width: 8, height: 8, fill: "#fff4dc" }), h("svg:line", { x1: 0, y1: 0, x2: 0, y2: 8, stroke: "#f5d08a", "stroke-width": 3 }))),
    h("svg:rect", { x: X0, y: 26, width: Math.max(0, pend - X0), height: 116, fill: "url(#hatch)", rx: 4 }),
    tProof ? h("svg:rect", { x: pend, y: 26, width: Math.max(0, X1 - pend), height: 116, fill: "#e3f6ea", rx: 4 }) : null,
    h("svg:text", { x: X0 + 6, y: 18, class: "band-label prov" }, "provisional: not proven"),
    tProof ? h("svg:text", { x: Math.min(pend, X1), y: 18, "text-anchor": "end", class: "band-label proven" }, "proof ▸") : null,
    h("svg:text", { x: X1, y: 161, "text-anchor": "end", class: "tick" }, offset(t1 - t0)),
    h("svg:text", { x: X0, y: 161, class: "tick" }, "accepted"),
    ...Object.entries({ ballots: lanes.ballot, decisions: lanes.decided, reads: lanes.read, actions: lanes.action }).map(([name, y]) =>
      h("svg:text", { x: X0 - 10, y: y + 4, "text-anchor": "end", class: "lane" }, name)),
    ...Object.values(lanes).map((y) => h("svg:line", { x1: X0, y1: y, x2: X1, y2: y, class: "lane-line" })),
    tProof ? h("svg:line", { x1: pend, y1: 22, x2: pend, y2: 146, class: "cert-line" }) : null,
    ...items.map((it) => {
      const cx = x(it.t);
      const tip = h("svg:title", null, `${offset(it.t - t0)}  ${it.text}`);
      if (it.kind === "ballot") return h("svg:circle", { cx, cy: place("ballot", cx), r: 7, class: "m-ballot" }, tip);
      if (it.kind === "decided") {
        const y = place("decided", cx);
        return h("svg:rect", { x: cx - 6, y: y - 6, width: 12, height: 12, class: `m-decided ${it.outcome}`, transform: `rotate(45 ${cx} ${y})` }, tip);
      }
      if (it.kind === "read" || it.kind === "action") {
        const y = place(it.kind, cx);
        const cls = `m-${it.kind} ${it.beforeProof ? "before" : "after"}`;
        return it.kind === "read"
          ? h("svg:polygon", { points: `${cx},${y - 9} ${cx + 8},${y + 6} ${cx - 8},${y + 6}`, class: cls }, tip)
          : h("svg:rect", { x: cx - 7, y: y - 7, width: 14, height: 14, rx: 2, class: cls }, tip);
      }
      return null;
    }));
  return svg;
}

function claimRows(j) {
  const n = j.cert?.claims.length ?? j.claimCount;
  const rows = [];
  for (let i = 0; i < n; i++) {
    const c = j.cert?.claims[i];
    const p = j.progress[i];
    const assigned = p?.stake_assigned ?? c?.stake_total ?? 0;
    const st = p ? p.stake_true : c?.verdict === "true" ? c.stake_for : 0;
    const sf = p ? p.stake_false : c?.verdict === "false" ? c.stake_for : 0;
    const sa = p?.stake_abstain ?? 0;
    const outcome = c?.verdict ?? (p?.outcome && p.outcome !== "pending" ? p.outcome : "pending");
    const pct = (v) => (assigned ? `${(100 * v) / assigned}%` : "0%");
    const needed = p?.needed_unit === "validators" ? null : p?.needed;
    rows.push(h("div", { class: `claim ${outcome}`, "data-claim": i },
      h("div", { class: "claim-head" },
        h("span", { class: "claim-idx" }, `#${i}`),
        c ? h("span", { class: "claim-text" }, c.text)
          : h("span", { class: "claim-text withheld", title: "The claim text is part of the answer; the explorer shows it once proven" }, `text withheld until proven · ${short(j.hashes[i] ?? "")}`),
        h("span", { class: `verdict ${outcome}` }, outcome)),
      h("div", { class: "stakebar", title: `true ${st}, false ${sf}, abstain ${sa} of ${assigned} assigned` },
        h("span", { class: "seg true", "data-w": pct(st) }),
        h("span", { class: "seg false", "data-w": pct(sf) }),
        h("span", { class: "seg abstain", "data-w": pct(sa) }),
        needed ? h("span", { class: "quorum-line", "data-left": pct(needed) }) : null),
      h("div", { class: "claim-foot muted" },
        `true ${st} · false ${sf}${sa ? ` · abstain ${sa}` : ""} of ${assigned} stake`,
        needed ? ` · quorum line at ${needed}` : p?.needed ? ` · needs ${p.needed} validators` : "")));
  }
  return rows;
}

// sizeBars applies widths from data attributes: the page's policy forbids
// inline style attributes, but allows setting styles from script.
function sizeBars(root) {
  for (const el of root.querySelectorAll("[data-w]")) el.style.width = el.dataset.w;
  for (const el of root.querySelectorAll("[data-left]")) el.style.left = el.dataset.left;
}

function verifyPanel(j) {
  if (!j.cert) {
    return h("section", { class: "panel verify pending", id: "verify", "data-result": "pending" },
      h("h2", null, "Verification in this browser"),
      h("p", null, "No certificate yet: nothing about this answer is proven. When the certificate arrives this page checks it itself."));
  }
  const v = j.verify;
  const result = !v ? "pending" : v.final ? "ok" : v.valid ? "not-final" : "fail";
  const headline = !v ? "checking…"
    : v.final ? `✓ Certificate verified in this browser: ${v.status.toUpperCase()}, final`
      : v.valid ? `⚠ Valid but not final: ${v.error}`
        : `✗ Verification FAILED in this browser: ${v.error}`;
  const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": "genesis.json", onchange: async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    try {
      state.genesisFile = { name: f.name, genesis: JSON.parse(await f.text()) };
    } catch (err) {
      state.genesisFile = null;
      showNotice(`${f.name}: not JSON (${err.message})`);
    }
    j.reverify();
  } });
  return h("section", { class: `panel verify ${result}`, id: "verify", "data-result": result },
    h("h2", null, "Verification in this browser"),
    h("p", { class: "headline", id: "verify-headline" }, headline),
    h("ul", { class: "checks" }, (v?.checks ?? []).map((c) => h("li", { class: c.ok ? "ok" : "bad", "data-check": c.id }, h("span", { class: "mark" }, c.ok ? "✓" : "✗"), c.text))),
    h("p", { class: "muted small" },
      `Checked with ethers v6 (served by this node, no other connection) against ${j.verifyAgainst ?? "…"}. `,
      "Recomputed here: the genesis hash, the job id, every claim hash and the claims root, the assignment and the security floor, every ballot's EIP-712 signature, the gateway's signature, every verdict and stake figure, the status and finality. ",
      "Not checked here: a key given twice in the certificate's JSON (the browser keeps the last; verity cert verify refuses it). ",
      "To trust nothing this node says, check against your own genesis.json: "),
    h("label", { class: "small" }, "your genesis.json ", file),
    h("p", null, h("a", { class: "button", href: `/v1/jobs/${j.id}/certificate`, download: `certificate-${j.id.slice(0, 10)}.json`, id: "download" }, "Download certificate"),
      h("span", { class: "muted small" }, ` then: verity cert verify --genesis genesis.json certificate-${j.id.slice(0, 10)}.json`)));
}

function renderJob(j) {
  if (currentRoute().name !== "job" || currentRoute().id !== j.id) return;
  if (j.missing && !j.cert && !j.accepted) {
    view.replaceChildren(h("section", { class: "panel" }, h("h1", null, "Unknown job"), h("p", null, `This node has never seen job ${j.id}.`), h("a", { href: "#/" }, "← all jobs")));
    return;
  }
  const items = timeline(j);
  const t0 = j.accepted ?? items[0]?.t;
  const before = items.filter((i) => i.beforeProof);
  const q = j.cert?.quorum ?? j.quorum ?? j.job?.quorum;
  const quorum = !q ? "" : q.kind === "stake" ? `more than ${q.num}/${q.den} of assigned stake` : `${q.n} of ${q.m} validators`;
  const summary = h("section", { class: "panel job-head" },
    h("div", { class: "panel-head" },
      h("h1", null, "Job ", h("span", { class: "mono", title: j.id }, short(j.id))),
      h("span", { id: "job-status" }, statusBadge(j.status))),
    j.status === "provisional"
      ? h("p", { class: "warn" }, "Provisional: the answer exists, it is not proven. Acting on it now is acting before the proof.")
      : null,
    h("dl", { class: "facts" },
      h("dt", null, "gateway"), h("dd", null, validatorName(j.gateway ?? j.cert?.gateway ?? j.job?.gateway)),
      h("dt", null, "quorum"), h("dd", null, quorum),
      h("dt", null, "ballots"), h("dd", { id: "ballot-count" }, String(j.cert?.ballots.length ?? j.ballots.length)),
      h("dt", null, "time to proof"), h("dd", null, j.certAt && t0 ? offset(j.certAt - t0) : "not yet"),
      h("dt", null, "reads and actions before proof"), h("dd", { id: "before-count", class: before.length ? "bad" : "" }, String(before.length))),
    j.job?.output ? h("details", { class: "output" }, h("summary", null, "The answer (shown once final)"), h("pre", null, j.job.output)) : null);

  const seq = h("ol", { class: "sequence", id: "timeline" }, items.map((it) => h("li", {
    class: `ev ${it.kind}${it.beforeProof ? " before-proof" : ""}${it.kind === "decided" ? ` ${it.outcome}` : ""}`,
    "data-kind": it.kind,
  },
  h("span", { class: "when mono" }, t0 ? offset(it.t - t0) : clock(it.t)),
  h("span", { class: "what" }, it.text),
  it.beforeProof ? h("span", { class: "flag before", title: "This happened while the job was provisional" }, "BEFORE PROOF") : null,
  it.flags?.filter((f) => f !== "before proof").map((f) => h("span", { class: "flag other" }, f)))));

  const legend = h("div", { class: "legend small" },
    h("span", { class: "lg ballot" }, "ballot"), h("span", { class: "lg decided" }, "claim decided"),
    h("span", { class: "lg read" }, "read of the answer"), h("span", { class: "lg action" }, "recorded action"),
    h("span", { class: "lg before" }, "before proof"), h("span", { class: "lg cert" }, "certificate"));

  const claimsPanel = h("section", { class: "panel", id: "claims" }, h("h2", null, "Claims: stake toward the quorum line"), claimRows(j));
  const content = h("div", { class: "job" },
    h("a", { href: "#/", class: "back" }, "← all jobs"),
    summary,
    h("section", { class: "panel" }, h("h2", null, "Timeline"), h("div", { class: "axis-wrap" }, axis(j, items)), legend, seq),
    h("div", { class: "two" }, claimsPanel, verifyPanel(j)));
  sizeBars(content);
  view.replaceChildren(content);
}

// ----- validators -----

async function openValidators() {
  view.replaceChildren(h("p", { class: "muted" }, "Loading validators…"));
  const [vr, er] = await Promise.all([api("/v1/validators"), api("/v1/evidence")]);
  if (currentRoute().name !== "validators") return;
  if (!vr.ok) {
    view.replaceChildren(h("p", { class: "bad" }, `GET /v1/validators: ${vr.body?.message ?? vr.status}`));
    return;
  }
  state.validators = vr.body;
  const v = vr.body;
  const stats = new Map((v.stats ?? []).map((s) => [s.address.toLowerCase(), s]));
  const pen = new Map((er.body?.penalties ?? []).map((p) => [p.validator.toLowerCase(), p]));
  const evid = er.body?.evidence ?? [];
  const p = v.policy;
  const total = BigInt(v.total_stake);
  const fs = p ? total * BigInt(p.byzantine_below.num) : 0n;
  const assumed = p ? fs / BigInt(p.byzantine_below.den) + (fs % BigInt(p.byzantine_below.den) ? 1n : 0n) - 1n : null;
  const policy = h("section", { class: "panel" },
    h("h2", null, "Security policy (from genesis)"),
    p ? h("dl", { class: "facts" },
      h("dt", null, "fault assumption"), h("dd", null, `byzantine stake below ${p.byzantine_below.num}/${p.byzantine_below.den} of ${v.total_stake}: at most ${assumed}`),
      h("dt", null, "quorum kinds"), h("dd", null, p.quorum_kinds.join(", ")),
      h("dt", null, "least stake quorum"), h("dd", null, `${p.min_stake_quorum.num}/${p.min_stake_quorum.den}`),
      h("dt", null, "least stake per claim"), h("dd", null, String(p.min_claim_stake)),
      h("dt", null, "network"), h("dd", null, String(v.network_id)),
      h("dt", null, "genesis hash"), h("dd", { class: "mono wrap" }, v.genesis_hash)) : h("p", null, "The node states no policy."),
    h("p", { class: "muted small" }, "The genesis hash commits to this policy and to every validator below. Agreement, flags and evidence are what this node observed; they are not signed."));
  const rows = v.validators.map((x) => {
    const s = stats.get(x.address.toLowerCase());
    const pe = pen.get(x.address.toLowerCase());
    const share = total ? Number((BigInt(x.stake) * 10000n) / total) / 100 : 0;
    return h("tr", { class: s?.flagged ? "flagged" : "", "data-validator": x.address.toLowerCase() },
      h("td", { "data-label": "name" }, x.name),
      h("td", { "data-label": "address", class: "mono" }, x.address),
      h("td", { "data-label": "stake" }, `${x.stake} (${share}%)`),
      h("td", { "data-label": "agreement" }, s && s.decided ? `${(100 * s.agreement).toFixed(1)}% of ${s.decided}` : "no decided claims yet"),
      h("td", { "data-label": "flags" }, s?.flagged ? h("span", { class: "flag other" }, s.flag_reason || "flagged") : "—"),
      h("td", { "data-label": "evidence" }, s?.equivocations ? `${s.equivocations} equivocation${s.equivocations === 1 ? "" : "s"}` : "—"),
      h("td", { "data-label": "penalty" }, pe ? `${pe.slashed} slashed` : "—"));
  });
  view.replaceChildren(
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h1", null, "Validators"), h("span", { class: "muted" }, `${v.validators.length} validators, total stake ${v.total_stake}`)),
      h("table", { class: "validators", id: "validators" },
        h("thead", null, h("tr", null, ["name", "address", "stake", "agreement", "flags", "evidence", "penalty"].map((c) => h("th", null, c)))),
        h("tbody", null, rows))),
    policy,
    h("section", { class: "panel" }, h("h2", null, "Evidence"),
      evid.length === 0 ? h("p", { class: "muted" }, "No equivocation proven on this node.")
        : h("ul", { class: "evidence" }, evid.map((e) => h("li", null, `${validatorName(e.validator)} signed two different ballots for job `, h("a", { href: `#/job/${e.job_id}`, class: "mono" }, short(e.job_id)), ` (detected ${clock(e.detected_at)})`)))));
}

// ---------- start ----------

async function start() {
  const tokenInput = document.getElementById("token");
  tokenInput.value = state.token;
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = tokenInput.value.trim();
    localStorage.setItem("verity.token", state.token);
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    state.token = "";
    tokenInput.value = "";
    localStorage.removeItem("verity.token");
    route();
  });
  const [health, vals] = await Promise.all([api("/healthz"), api("/v1/validators")]);
  const node = document.getElementById("node");
  if (health.body?.name) node.textContent = `${health.body.name} · network ${vals.body?.network_id ?? "?"}`;
  else node.textContent = "node unreachable";
  if (vals.ok) state.validators = vals.body;
  window.addEventListener("hashchange", route);
  startNodeStream();
  route();
}

start();
