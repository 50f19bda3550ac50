// camelid annotate: plain JS, no dependencies. All server text is rendered with textContent, never
// innerHTML, so a response containing markup shows as text.
"use strict";

const $ = (id) => document.getElementById(id);
const STRENGTH_KEYS = { a: "significantly_better", s: "better", d: "slightly_better", f: "negligibly_better" };
const ROLE_LABEL = { system: "System prompt", user: "User", assistant: "Assistant (earlier turn)" };
let me = null;
let state = null; // {pair, side, strength, leftSafe, rightSafe}
let busy = false;

function setState(s) { document.body.dataset.state = s; }

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body || {});
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    return { ok: false, status: 0, data: { detail: "cannot reach the server; your last label may not be saved" } };
  }
  let data = {};
  try { data = await res.json(); } catch (e) { /* empty body */ }
  if (res.status === 401 && path !== "/api/login") showLogin();
  return { ok: res.ok, status: res.status, data };
}

function show(view) {
  for (const id of ["login-view", "annotate-view", "admin-view"]) $(id).hidden = id !== view;
  const loggedIn = view !== "login-view";
  $("logout").hidden = !loggedIn;
  $("nav-admin").hidden = !(loggedIn && me && me.admin && view !== "admin-view");
  $("nav-annotate").hidden = view !== "admin-view";
  if (!loggedIn) $("progress").textContent = "";
}

function showLogin() {
  me = null;
  $("whoami").textContent = "";
  show("login-view");
  setState("login");
  $("token").focus();
}

function message(text, kind) {
  const m = $("message");
  m.textContent = text || "";
  m.className = "message" + (kind ? " " + kind : "");
}

function setProgress(p) {
  if (!p) return;
  const parts = [`${p.done} done`, `${p.remaining} left`];
  if (p.skipped) parts.push(`${p.skipped} skipped`);
  $("progress").textContent = parts.join(" \u00b7 ");
}

function renderConversation(messages) {
  const box = $("conversation");
  box.replaceChildren();
  for (const m of messages) {
    const div = document.createElement("div");
    div.className = "msg role-" + m.role;
    const who = document.createElement("div");
    who.className = "role";
    who.textContent = ROLE_LABEL[m.role] || m.role;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.content;
    div.append(who, text);
    box.append(div);
  }
}

function renderChoices() {
  if (!state) return;
  for (const side of ["left", "right"]) {
    $(side).classList.toggle("picked", state.side === side);
    const safe = side === "left" ? state.leftSafe : state.rightSafe;
    const badge = $(side + "-safety");
    badge.dataset.safe = String(safe);
    badge.querySelector(".label").textContent = safe ? "safe" : "unsafe";
  }
  for (const b of document.querySelectorAll(".strength")) {
    b.classList.toggle("picked", b.dataset.strength === state.strength);
    b.setAttribute("aria-checked", String(b.dataset.strength === state.strength));
  }
  const side = state.side ? (state.side === "left" ? "Response 1" : "Response 2") : "pick a response (1/2)";
  const strength = state.strength ? state.strength.replace("_", " ") : "pick how much (a/s/d/f)";
  $("summary").textContent = `${side} \u2014 ${strength}`;
}

async function loadNext() {
  setState("busy");
  const r = await api("GET", "/api/next");
  if (!r.ok) { if (r.status !== 401) message(r.data.detail || "could not load the next pair", "error"); return; }
  setProgress(r.data.progress);
  const pair = r.data.pair;
  if (!pair) {
    state = null;
    $("pair").hidden = true;
    $("empty").hidden = false;
    setState("empty");
    return;
  }
  state = { pair, side: null, strength: null, leftSafe: true, rightSafe: true };
  renderConversation(pair.prompt);
  $("left-text").textContent = pair.left;
  $("right-text").textContent = pair.right;
  $("note").value = "";
  $("pair").dataset.pairId = String(pair.id);
  document.body.dataset.served = String(Number(document.body.dataset.served || 0) + 1);
  $("empty").hidden = true;
  $("pair").hidden = false;
  renderChoices();
  window.scrollTo(0, 0);
  setState("ready");
}

// Serialises actions; body[data-busy] lets tests (and CSS) know when the last key has been handled.
async function act(fn) {
  if (busy) return;
  busy = true;
  document.body.dataset.busy = "1";
  try { await fn(); } finally { busy = false; document.body.dataset.busy = "0"; }
}

function submit() {
  return act(async () => {
    if (!state) return;
    if (!state.side || !state.strength) {
      message("Pick the better response (1/2) and how much better (a/s/d/f) first.", "error");
      return;
    }
    const note = $("note").value;
    const r = await api("POST", "/api/submit", {
      pair_id: state.pair.id, preferred: state.side, strength: state.strength,
      left_safe: state.leftSafe, right_safe: state.rightSafe, note,
    });
    if (r.ok) { message("Saved.", "ok"); $("note").blur(); await loadNext(); }
    else if (r.status === 409) { message(r.data.detail, "error"); await loadNext(); }
    else if (r.status !== 401) message(r.data.detail || `error ${r.status}`, "error");
  });
}

function skip() {
  return act(async () => {
    if (!state) return;
    const r = await api("POST", "/api/skip", { pair_id: state.pair.id });
    if (r.ok || r.status === 409) { message(r.ok ? "Skipped." : r.data.detail, r.ok ? "ok" : "error"); await loadNext(); }
    else if (r.status !== 401) message(r.data.detail, "error");
  });
}

function undo() {
  return act(async () => {
    const r = await api("POST", "/api/undo");
    if (r.ok) {
      message(r.data.undone.kind === "skip" ? "Skip undone." : "Last label undone: label this pair again.", "ok");
      await loadNext();
    } else if (r.status !== 401) message(r.data.detail, "error");
  });
}

function onKey(e) {
  if (!me || $("annotate-view").hidden) return;
  const inField = e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement;
  if (inField) {
    if (e.key === "Escape") { e.target.blur(); e.preventDefault(); }
    else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (k === "u") { e.preventDefault(); undo(); return; }
  if (!state || busy) return;
  if (k === "1" || k === "ArrowLeft") state.side = "left";
  else if (k === "2" || k === "ArrowRight") state.side = "right";
  else if (k in STRENGTH_KEYS) state.strength = STRENGTH_KEYS[k];
  else if (k === "q") state.leftSafe = !state.leftSafe;
  else if (k === "w") state.rightSafe = !state.rightSafe;
  else if (k === "n") { e.preventDefault(); $("note").focus(); return; }
  else if (k === "Enter") { e.preventDefault(); submit(); return; }
  else if (k === "k") { e.preventDefault(); skip(); return; }
  else return;
  e.preventDefault();
  message("");
  renderChoices();
}

function td(text, cls) {
  const c = document.createElement("td");
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}

function fillTable(id, headers, rows, empty) {
  const t = $(id);
  const hr = document.createElement("tr");
  for (const h of headers) { const th = document.createElement("th"); th.textContent = h; hr.append(th); }
  t.tHead.replaceChildren(hr);
  t.tBodies[0].replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells.map((c, i) => td(c, i ? "num" : "")));
    return tr;
  }));
  if (!rows.length) {
    const tr = document.createElement("tr");
    const c = td(empty || "no labels yet", "muted");
    c.colSpan = headers.length;
    tr.append(c);
    t.tBodies[0].append(tr);
  }
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(digits));
const pct = (x) => (x === null || x === undefined ? "n/a" : `${Math.round(x * 100)}%`);

async function loadAdmin() {
  setState("busy");
  const r = await api("GET", "/api/admin/stats");
  if (!r.ok) { $("admin-error").textContent = r.data.detail || `error ${r.status}`; return; }
  const s = r.data;
  const c = s.counts;
  $("admin-counts").textContent =
    `${c.pairs} pairs \u00b7 ${c.complete_pairs} complete \u00b7 ${c.labels} labels \u00b7 ${c.skips} skips \u00b7 ${c.annotators} users`;
  const days = [];
  for (let i = 6; i >= 0; i--) days.push(new Date(Date.now() - i * 86400000).toISOString().slice(0, 10));
  const names = Object.keys(s.throughput).sort();
  fillTable("throughput", ["annotator", "total", "last hour", "last 24 h", ...days.map((d) => d.slice(5)), "median s / label"],
    names.map((n) => {
      const t = s.throughput[n];
      return [n, String(t.total), String(t.last_hour), String(t.last_24h),
        ...days.map((d) => String(t.per_day[d] || 0)), t.median_seconds === null ? "n/a" : String(t.median_seconds)];
    }));
  const a = s.agreement;
  $("fleiss").textContent = `Fleiss' kappa over ${a.n_pairs_multi} pairs with 2+ labels: ${fmt(a.fleiss_kappa)}`;
  fillTable("with-majority", ["annotator", "agrees with the others' majority", "pairs"],
    Object.keys(a.with_majority).sort().map((n) => [n, pct(a.with_majority[n].agreement), String(a.with_majority[n].n)]));
  fillTable("cohen", ["annotators", "Cohen's kappa", "raw agreement", "shared pairs"],
    a.cohen_kappa.map((p) => [`${p.a} \u2013 ${p.b}`, fmt(p.kappa), pct(p.raw_agreement), String(p.n)]),
    "no two annotators share a pair yet");
  setState("admin");
}

async function start() {
  const r = await api("GET", "/api/me");
  if (!r.ok) {
    if (r.status !== 401) { showLogin(); $("login-error").textContent = r.data.detail || `error ${r.status}`; }
    return;
  }
  me = r.data;
  $("whoami").textContent = me.name + (me.admin ? " (admin)" : "");
  if (location.pathname === "/admin") {
    show("admin-view");
    if (me.admin) await loadAdmin();
    else $("admin-error").textContent = "The admin page is for admins only.";
  } else {
    show("annotate-view");
    await loadNext();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/login", { token: $("token").value });
    if (r.ok) { $("token").value = ""; $("login-error").textContent = ""; await start(); }
    else $("login-error").textContent = r.data.detail || "login failed";
  });
  $("logout").addEventListener("click", async () => { await api("POST", "/api/logout"); showLogin(); });
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("left").addEventListener("click", () => { if (state) { state.side = "left"; renderChoices(); } });
  $("right").addEventListener("click", () => { if (state) { state.side = "right"; renderChoices(); } });
  for (const side of ["left", "right"]) {
    $(side + "-safety").addEventListener("click", (e) => {
      e.stopPropagation();
      if (!state) return;
      if (side === "left") state.leftSafe = !state.leftSafe; else state.rightSafe = !state.rightSafe;
      renderChoices();
    });
  }
  for (const b of document.querySelectorAll(".strength")) {
    b.addEventListener("click", () => { if (state) { state.strength = b.dataset.strength; renderChoices(); } });
  }
  document.addEventListener("keydown", onKey);
  start();
});
