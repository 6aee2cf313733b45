// The status board's script (served as /board.js: the page runs no inline script, so the
// Content-Security-Policy forbids any). Text from the server (labels, annotations, comments)
// only ever becomes text nodes or attribute values, never markup. Every number shown with a
// unit comes formatted from the server (vigilo::units), so this file formats none itself.
"use strict";
const COLOURS = {};
const SVG = "http://www.w3.org/2000/svg";
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const svg = (tag, attrs) => { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v)); return e; };
const time = ms => new Date(ms).toLocaleString();
const clock = ms => new Date(ms).toLocaleTimeString();
const num = v => (v === null || v === undefined) ? "" : (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(4));
const item = (rule, labels) => rule + "{" + Object.entries(labels || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ") + "}";
const key = (rule, labels) => rule + "\u0000" + JSON.stringify(labels || {});
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("vigilo-token") || "";
const token = () => tokenInput.value.trim();
// Off loopback the endpoint may want the token for reads too: sent with every request once typed.
const auth = () => token() ? { "Authorization": "Bearer " + token() } : {};
tokenInput.addEventListener("input", () => { sessionStorage.setItem("vigilo-token", token()); render(last); refresh(); reconnect(); });
function say(text) { document.getElementById("message").textContent = text; }

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, auth()), body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  say(r.ok ? "done" : (r.status + ": " + (answer.error || r.statusText)));
  refresh();
}
function ack(id) { post("/api/incidents/" + id + "/ack", { by: "board", comment: "acknowledged from the status board" }); }
function silence(rule) { post("/api/silences", { created_by: "board", comment: "silenced from the status board", duration: "1h", rules: [rule] }); }

// ---- charts: inline SVG ------------------------------------------------------------------

// Where a chart's x axis starts and ends: its values, at least six of its steps.
function span(c) {
  const end = Math.max(c.end, c.start + c.step * c.values.length);
  return [Math.min(c.start, end - 6 * c.step), end];
}

// Draws chart `c` into a new <svg> of w×h; `big` adds axis labels, threshold and change labels.
function drawChart(c, w, h, big) {
  const pad = big ? { l: 72, r: 120, t: 12, b: 22 } : { l: 1, r: 1, t: 3, b: 3 };
  const s = svg("svg", { viewBox: "0 0 " + w + " " + h, class: big ? "chart" : "spark", role: "img", "data-id": c.id, "data-unit": c.unit });
  s.append(svg("title"));
  s.firstChild.textContent = item(c.rule, c.labels) + ": " + c.value_text;
  const [t0, t1] = span(c);
  const x = t => pad.l + (w - pad.l - pad.r) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => pad.t + (h - pad.t - pad.b) * (1 - (v - c.low) / Math.max(Number.MIN_VALUE, c.high - c.low));
  if (big) {
    for (const tick of c.ticks) {
      s.append(svg("line", { class: "grid", x1: pad.l, x2: w - pad.r, y1: y(tick.value), y2: y(tick.value) }));
      const label = svg("text", { class: "tick", x: pad.l - 6, y: y(tick.value) + 4, "text-anchor": "end" });
      label.textContent = tick.label; s.append(label);
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (t1 - t0) * i / 4;
      const label = svg("text", { class: "time", x: x(t), y: h - 6, "text-anchor": i === 0 ? "start" : (i === 4 ? "end" : "middle") });
      label.textContent = clock(t); s.append(label);
    }
  }
  for (const th of c.thresholds) {
    const line = svg("line", { class: "threshold", x1: pad.l, x2: w - pad.r, y1: y(th.value), y2: y(th.value), stroke: th.colour, "data-severity": th.severity, "data-value": th.value, "data-label": th.label });
    line.append(svg("title")); line.firstChild.textContent = th.severity + " " + th.label;
    s.append(line);
    if (big) {
      const label = svg("text", { class: "threshold-label", x: w - pad.r + 6, y: y(th.value) + 4, fill: th.colour });
      label.textContent = th.severity + " " + th.label; s.append(label);
    }
  }
  // The values, one path; a gap (no value) lifts the pen; a value alone is a dot.
  let d = "", n = 0;
  c.values.forEach((v, i) => {
    if (v === null) return;
    const px = x(c.start + c.step * (i + 0.5)).toFixed(1), py = y(v).toFixed(1);
    const joined = i > 0 && c.values[i - 1] !== null, alone = !joined && (i + 1 >= c.values.length || c.values[i + 1] === null);
    d += (joined ? "L" : "M") + px + " " + py + (alone ? " l0.1 0 " : " "); n++;
  });
  const path = svg("path", { class: "values", d: d.trim(), "data-points": n });
  s.append(path);
  for (const ch of c.changes) {
    if (ch.at < t0 || ch.at > t1) continue;
    const line = svg("line", { class: "change", x1: x(ch.at), x2: x(ch.at), y1: pad.t, y2: h - pad.b, stroke: ch.colour, "data-to": ch.to, "data-from": ch.from || "", "data-at": ch.at });
    line.append(svg("title")); line.firstChild.textContent = ch.label + " at " + time(ch.at);
    s.append(line);
    if (big) {
      const label = svg("text", { class: "change-label", x: x(ch.at) + 3, y: pad.t + 10, fill: ch.colour });
      label.textContent = ch.label; s.append(label);
    }
  }
  return s;
}

let charts = new Map();   // key(rule, labels) → small chart
let openId = null;        // the item whose large chart is open

function openDetail(id) {
  openId = id;
  document.getElementById("detail").hidden = false;
  renderDetail();
  for (const tr of document.querySelectorAll("#items tbody tr")) tr.classList.toggle("open", tr.dataset.chart === id);
}
document.getElementById("detail-close").addEventListener("click", () => { openId = null; document.getElementById("detail").hidden = true; render(last); });

async function renderDetail() {
  if (!openId) return;
  const id = openId;
  const r = await fetch("/api/charts/" + encodeURIComponent(id), { headers: auth() });
  if (id !== openId) return;
  const box = document.getElementById("detail-chart");
  if (!r.ok) { box.replaceChildren(el("div", "no chart for this item now (" + r.status + ")", "muted")); return; }
  const c = await r.json();
  document.getElementById("detail-title").textContent = item(c.rule, c.labels) + " · " + c.severity + " · " + c.value_text;
  box.replaceChildren(drawChart(c, 1100, 300, true));
  const body = document.querySelector("#detail-events tbody"); body.replaceChildren();
  for (const e of c.events || []) {
    const tr = el("tr"); tr.dataset.kind = e.kind;
    tr.append(el("td", time(e.at), "muted"), el("td", e.kind), el("td", e.incident === undefined ? "" : "#" + e.incident), el("td", e.severity || ""), el("td", e.detail || ""));
    body.append(tr);
  }
  if (!(c.events || []).length) { const tr = el("tr"); tr.append(el("td", "no transitions or incidents in the history", "muted")); body.append(tr); }
}

// ---- the board -----------------------------------------------------------------------------

let last = null;
function render(data) {
  if (!data) return;
  last = data;
  const writable = token() !== "";
  document.getElementById("mode").textContent = writable ? "ack and silence enabled" : "read-only";
  const s = data.status;
  for (const it of s.items) COLOURS[it.severity] = it.colour;
  const counts = document.getElementById("counts"); counts.replaceChildren();
  for (const [sev, n] of Object.entries(s.counts).reverse()) {
    if (!n) continue;
    const c = el("span", sev + " " + n); c.style.background = COLOURS[sev] || "#999"; counts.append(c);
  }
  const items = document.querySelector("#items tbody"); items.replaceChildren();
  for (const it of s.items) {
    const tr = el("tr"); tr.dataset.severity = it.severity; tr.dataset.item = item(it.rule, it.labels);
    const sev = el("td", it.severity, "sev"); sev.style.background = it.colour; tr.append(sev);
    const chart = charts.get(key(it.rule, it.labels));
    const trend = el("td", undefined, "trend");
    if (chart) { tr.dataset.chart = chart.id; trend.append(drawChart(chart, 160, 36, false)); tr.onclick = () => openDetail(chart.id); }
    if (chart && chart.id === openId) tr.classList.add("open");
    tr.append(el("td", it.rule), el("td", item("", it.labels)), el("td", it.value_text, "num"), el("td", it.threshold_text || "", "num"), trend, el("td", time(it.since), "muted"));
    const flags = el("td", undefined, "flags");
    if (it.no_data) flags.append(el("span", "no data"));
    if (it.flapping) flags.append(el("span", "flapping"));
    if (!it.in_schedule) flags.append(el("span", "off schedule"));
    tr.append(flags, el("td", it.summary || "", "muted"));
    items.append(tr);
  }
  const incidents = document.querySelector("#incidents tbody"); incidents.replaceChildren();
  for (const inc of data.incidents) {
    const tr = el("tr"); tr.dataset.incident = inc.id;
    const sev = el("td", inc.severity, "sev"); sev.style.background = COLOURS[inc.severity] || "#999";
    const state = inc.ack ? "acknowledged by " + inc.ack.by : (inc.held_back || "open");
    const st = el("td", state);
    const skipped = (inc.routes || []).flatMap(r => r.skipped || []);
    if (skipped.length) st.append(el("div", "left out: " + skipped.join("; "), "muted"));
    tr.append(el("td", "#" + inc.id), sev, el("td", item(inc.item.rule, inc.item.labels)), el("td", time(inc.opened_at), "muted"), st);
    const actions = el("td");
    const a = el("button", "ack"); a.disabled = !writable || !!inc.ack; a.onclick = () => ack(inc.id);
    const m = el("button", "silence 1h"); m.disabled = !writable; m.onclick = () => silence(inc.item.rule);
    actions.append(a, " ", m); tr.append(actions);
    incidents.append(tr);
  }
  if (!data.incidents.length) { const tr = el("tr"); tr.append(el("td", "none", "muted")); incidents.append(tr); }
  const slos = document.querySelector("#slos tbody"); slos.replaceChildren();
  for (const o of data.slos || []) {
    const tr = el("tr"); tr.dataset.slo = o.name;
    const sev = el("td", o.severity, "sev"); sev.style.background = COLOURS[o.severity] || "#999";
    const burns = (o.burn_rates || []).map(b => b.window + " " + num(b.rate) + "×").join(", ");
    tr.append(el("td", o.name), el("td", (o.objective * 100).toPrecision(4) + " %", "num"), el("td", o.window), el("td", (o.error_budget_remaining * 100).toFixed(1) + " %", "num"), el("td", burns, "muted"), sev);
    slos.append(tr);
  }
  if (!(data.slos || []).length) { const tr = el("tr"); tr.append(el("td", "no SLOs", "muted")); slos.append(tr); }
  const canaries = document.querySelector("#canaries tbody"); canaries.replaceChildren();
  for (const c of data.canaries || []) {
    const tr = el("tr"); tr.dataset.canary = c.canary;
    const verdict = el("td", c.verdict || "running", "sev");
    verdict.style.background = { pass: COLOURS.normal || "#2e7d32", marginal: COLOURS.warning || "#f9a825", fail: COLOURS.critical || "#c62828" }[c.verdict] || "#999";
    tr.append(el("td", c.canary), el("td", c.score === null || c.score === undefined ? "" : c.score.toFixed(1), "num"), verdict);
    canaries.append(tr);
  }
  if (!(data.canaries || []).length) { const tr = el("tr"); tr.append(el("td", "no canary runs", "muted")); canaries.append(tr); }
  const cov = document.getElementById("coverage"); cov.replaceChildren();
  const c = data.coverage, lists = [["unregistered items (expected, missing)", (c.missing || []).map(m => item(m.metric, m.labels) + ": " + m.reason)], ["series no rule watches", (c.unwatched || []).map(u => item(u.metric, u.labels))], ["rules that never reported", c.silent_rules], ["rules no route reaches", c.unrouted_rules]];
  let any = false;
  for (const [title, list] of lists) {
    if (!list || !list.length) continue;
    any = true; cov.append(el("div", title + ":"));
    const ul = el("ul"); for (const x of list) ul.append(el("li", typeof x === "string" ? x : JSON.stringify(x))); cov.append(ul);
  }
  if (!any) cov.textContent = "every expected item has a rule, every rule reported and is routed";
}

function renderHistory(events) {
  const body = document.querySelector("#history tbody"); body.replaceChildren();
  for (const e of events.filter(e => e.kind === "transition").sort((a, b) => b.seq - a.seq).slice(0, 30)) {
    const tr = el("tr"); tr.dataset.severity = e.severity || "";
    tr.append(el("td", time(e.at), "muted"), el("td", e.item || ""), el("td", (e.severity || "") + (e.detail ? ": " + e.detail : "")));
    body.append(tr);
  }
}

async function read(path) {
  const r = await fetch(path, { headers: auth() });
  if (r.status === 401) throw new Error("this board is not on loopback: type the operator token to read it");
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

let pending = null, unread = false;
async function refresh() {
  try {
    const [status, history, sparks] = await Promise.all([read("/api/status"), read("/api/history?limit=200"), read("/api/charts")]);
    charts = new Map(sparks.items.map(c => [key(c.rule, c.labels), c]));
    render(status); renderHistory(history); renderDetail();
    if (unread) { unread = false; say(""); }
    document.body.dataset.updated = String(Date.now());
  } catch (e) { unread = true; say("cannot read the status: " + e.message); }
}
function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 100); }

// The event stream, read with fetch (which, unlike EventSource, can send the token).
const live = document.getElementById("live");
let stream = null;
async function follow(controller) {
  const r = await fetch("/api/events", { headers: auth(), signal: controller.signal, cache: "no-store" });
  if (!r.ok || !r.body) throw new Error("event stream: " + r.status);
  live.className = "on"; live.textContent = "live"; refresh();
  const reader = r.body.getReader(), text = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += text.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const message = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      if (/^event: pipeline$/m.test(message)) soon();
    }
  }
}
function connect() {
  const controller = new AbortController();
  stream = controller;
  follow(controller).catch(() => {}).finally(() => {
    if (stream !== controller) return;
    live.className = "off"; live.textContent = "reconnecting";
    setTimeout(() => { if (stream === controller) connect(); }, 1000);
  });
}
function reconnect() { if (stream) stream.abort(); connect(); }
connect();
// A fallback for a lost event stream (kept in a global so a test can switch it off).
window.vigiloPoller = setInterval(refresh, 5000);
refresh();
