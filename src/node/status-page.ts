/**
 * The status page served at GET / on the metrics port: one self-contained HTML document (inline CSS
 * and JS, no external assets) that polls /status.json every two seconds and draws the members and
 * their states, the ring as a picture (inline SVG), each node's keys, bytes, ops and hints, streaming
 * progress and recent membership events. Readable on a phone: one column, tables scroll sideways.
 * Everything from the cluster is inserted as text (textContent), never as markup.
 */

export const STATUS_REFRESH_MS = 2_000;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal status</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#667085; --line:#e4e7ec;
          --alive:#12b76a; --suspect:#f79009; --dead:#f04438; --left:#98a2b3; --accent:#2e6be6; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--ink); }
  header { background:#101828; color:#fff; padding:14px 18px; display:flex; flex-wrap:wrap; gap:6px 18px; align-items:baseline; }
  header h1 { margin:0; font-size:20px; font-weight:650; letter-spacing:.2px; }
  header .sub { color:#d0d5dd; font-size:13px; }
  #live { margin-left:auto; font-size:13px; color:#d0d5dd; }
  #live.stale { color:#fda29b; }
  main { max-width:1100px; margin:0 auto; padding:14px; display:grid; gap:14px; grid-template-columns: 1fr; }
  @media (min-width: 900px) { main { grid-template-columns: 2fr 1fr; } .wide { grid-column: 1 / -1; } }
  section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; min-width:0; }
  h2 { font-size:14px; text-transform:uppercase; letter-spacing:.6px; color:var(--muted); margin:0 0 10px; }
  .cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap:10px; }
  .card { border:1px solid var(--line); border-radius:8px; padding:8px 10px; }
  .card .v { font-size:22px; font-weight:650; }
  .card .k { font-size:12px; color:var(--muted); }
  .scroll { overflow-x:auto; }
  table { border-collapse:collapse; width:100%; font-size:14px; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { font-size:12px; color:var(--muted); font-weight:600; }
  td.num { text-align:right; font-variant-numeric: tabular-nums; }
  .badge { display:inline-block; padding:1px 8px; border-radius:99px; font-size:12px; font-weight:600; color:#fff; }
  .alive { background:var(--alive); } .suspect { background:var(--suspect); } .dead { background:var(--dead); } .left { background:var(--left); }
  .dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:6px; vertical-align:baseline; }
  .muted { color:var(--muted); }
  #ring { display:flex; gap:14px; align-items:center; flex-wrap:wrap; }
  #ring svg { width:200px; height:200px; flex:none; }
  .legend div { margin:3px 0; font-size:14px; }
  .bar { height:10px; background:var(--line); border-radius:5px; overflow:hidden; margin:4px 0 10px; }
  .bar > div { height:100%; background:var(--accent); }
  ol#events { list-style:none; margin:0; padding:0; font-size:14px; }
  ol#events li { padding:4px 0; border-bottom:1px dashed var(--line); }
  #error { display:none; background:#fef3f2; color:#b42318; border:1px solid #fecdca; padding:8px 12px; border-radius:8px; }
</style>
</head>
<body>
<header>
  <h1 id="title">Shoal</h1>
  <span class="sub" id="subtitle">loading…</span>
  <span id="live">connecting…</span>
</header>
<main>
  <div id="error" class="wide"></div>
  <section class="wide">
    <div class="cards" id="cards"></div>
  </section>
  <section class="wide">
    <h2>Members</h2>
    <div class="scroll"><table id="members">
      <thead><tr><th>ID</th><th>State</th><th>Address</th><th class="num">Keys</th><th class="num">Bytes</th><th class="num">Ops/s</th><th class="num">p99</th><th class="num">Hints</th><th class="num">Owns</th><th>Uptime</th><th>Health</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Ring ownership</h2>
    <div id="ring"></div>
    <div class="muted" id="checksum"></div>
    <div class="muted" style="font-size:12px">outer ring: each owner's share of the keys; inner ring: where its virtual nodes lie</div>
  </section>
  <section>
    <h2>Streaming</h2>
    <div id="streaming" class="muted">no node is streaming</div>
    <h2 style="margin-top:14px">Recent membership events</h2>
    <ol id="events"></ol>
  </section>
</main>
<script>
"use strict";
const REFRESH_MS = ${STATUS_REFRESH_MS};
const PALETTE = ["#2e6be6","#12b76a","#f79009","#7a5af8","#ee46bc","#06aed4","#f04438","#66c61c","#875bf7","#ef6820"];
const el = (tag, attrs, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
};
const fmtBytes = (n) => { if (n == null) return "-"; if (n < 1024) return n + " B"; const u = ["KiB","MiB","GiB","TiB"]; let v = n / 1024, i = 0; while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; } return (v >= 100 ? Math.round(v) : v.toFixed(1)) + " " + u[i]; };
const fmtDur = (ms) => { if (ms == null) return "-"; const s = Math.floor(ms / 1000); if (s < 60) return s + "s"; const m = Math.floor(s / 60); if (m < 60) return m + "m " + (s % 60) + "s"; const h = Math.floor(m / 60); if (h < 24) return h + "h " + (m % 60) + "m"; return Math.floor(h / 24) + "d " + (h % 24) + "h"; };
const fmtNum = (n, d) => n == null ? "-" : Number(n).toLocaleString(undefined, { maximumFractionDigits: d == null ? 0 : d });
const ago = (ms) => { const s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago"; };
let colors = {};
let lastOk = 0;

function health(m) {
  if (m.state === "left") return "left";
  if (!m.reachable) return "unreachable";
  if (m.readOnly) return "read-only";
  if (m.nodeState && m.nodeState !== "serving") return m.nodeState;
  if (m.joining) return "joining";
  if (m.syncing) return "syncing " + Math.round((m.syncRatio || 0) * 100) + "%";
  return "ok";
}

function arcPath(cx, cy, r0, r1, a0, a1) {
  const p = (r, a) => [cx + r * Math.sin(2 * Math.PI * a), cy - r * Math.cos(2 * Math.PI * a)];
  const large = a1 - a0 > 0.5 ? 1 : 0;
  const [x0, y0] = p(r1, a0), [x1, y1] = p(r1, a1), [x2, y2] = p(r0, a1), [x3, y3] = p(r0, a0);
  return "M" + x0 + " " + y0 + "A" + r1 + " " + r1 + " 0 " + large + " 1 " + x1 + " " + y1 + "L" + x2 + " " + y2 + "A" + r0 + " " + r0 + " 0 " + large + " 0 " + x3 + " " + y3 + "Z";
}

function drawRing(s) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 200 200");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "ring ownership");
  const states = Object.fromEntries(s.members.map((m) => [m.id, m.state]));
  const segment = (r0, r1, from, to, owner, kind) => {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", to - from >= 0.999999 ? arcPath(100, 100, r0, r1, 0, 0.4999999) + arcPath(100, 100, r0, r1, 0.4999999, 0.9999998) : arcPath(100, 100, r0, r1, from, to));
    path.setAttribute("fill", colors[owner] || "#999");
    path.setAttribute("data-owner", owner);
    path.setAttribute("data-kind", kind);
    if (states[owner] && states[owner] !== "alive") path.setAttribute("fill-opacity", "0.35");
    svg.append(path);
  };
  // Outer ring: each owner's share of the key space in one piece. Inner ring: where its virtual
  // nodes actually lie on the hash ring (primary ranges).
  let at = 0;
  for (const m of s.members) {
    if (!m.owns) continue;
    segment(72, 94, at, Math.min(1, at + m.owns), m.id, "share");
    at += m.owns;
  }
  for (const arc of s.ring.arcs) {
    if (arc.to - arc.from < 1e-6) continue;
    segment(56, 66, arc.from, arc.to, arc.owner, "tokens");
  }
  const total = document.createElementNS(NS, "text");
  total.setAttribute("x", "100"); total.setAttribute("y", "105"); total.setAttribute("text-anchor", "middle");
  total.setAttribute("font-size", "15"); total.setAttribute("font-weight", "650"); total.setAttribute("fill", "#1d2330");
  total.textContent = s.ring.arcs.length ? new Set(s.ring.arcs.map((a) => a.owner)).size + " owners" : "no ring";
  svg.append(total);
  const legend = el("div", { class: "legend" });
  for (const m of s.members) {
    if (!m.owns) continue;
    legend.append(el("div", {}, el("span", { class: "dot", style: "background:" + colors[m.id] }), m.id + "  ", el("b", {}, (m.owns * 100).toFixed(1) + "%"), el("span", { class: "muted" }, " " + m.state)));
  }
  document.getElementById("ring").replaceChildren(svg, legend);
  document.getElementById("checksum").textContent = "checksum " + s.ring.checksum;
}

function render(s) {
  s.members.forEach((m, i) => { colors[m.id] = PALETTE[i % PALETTE.length]; });
  document.title = "Shoal " + s.cluster + " status";
  document.getElementById("title").textContent = "Shoal · " + s.cluster;
  document.getElementById("subtitle").textContent = "as seen by " + s.node + " · version " + s.version;
  const counts = {};
  for (const m of s.members) counts[m.state] = (counts[m.state] || 0) + 1;
  const up = s.members.filter((m) => m.reachable);
  const sum = (f) => up.reduce((a, m) => a + (m[f] || 0), 0);
  const cards = [
    ["Members", s.members.length + "", Object.entries(counts).map(([k, v]) => v + " " + k).join(", ")],
    ["Keys (all copies)", fmtNum(sum("keys")), fmtBytes(sum("valueBytes"))],
    ["Requests", fmtNum(sum("opsPerSec"), 1) + "/s", "last 10 s"],
    ["Hints pending", fmtNum(sum("hintsPending")), "for members that were down"],
  ];
  document.getElementById("cards").replaceChildren(...cards.map(([k, v, sub]) => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v), el("div", { class: "k" }, sub))));
  const rows = s.members.map((m) => el("tr", { "data-member": m.id, "data-state": m.state, "data-health": health(m) },
    el("td", {}, el("span", { class: "dot", style: "background:" + colors[m.id] }), m.id + (m.self ? " ★" : "")),
    el("td", {}, el("span", { class: "badge " + m.state }, m.state)),
    el("td", {}, m.rpc),
    el("td", { class: "num" }, fmtNum(m.keys)),
    el("td", { class: "num" }, fmtBytes(m.valueBytes)),
    el("td", { class: "num" }, fmtNum(m.opsPerSec, 1)),
    el("td", { class: "num" }, m.p99Ms == null ? "-" : fmtNum(m.p99Ms, m.p99Ms < 10 ? 2 : 0) + " ms"),
    el("td", { class: "num" }, fmtNum(m.hintsPending)),
    el("td", { class: "num" }, (m.owns * 100).toFixed(1) + "%"),
    el("td", {}, fmtDur(m.uptimeMs)),
    el("td", {}, health(m))));
  document.querySelector("#members tbody").replaceChildren(...rows);
  drawRing(s);
  const syncing = s.members.filter((m) => m.syncing);
  const stream = document.getElementById("streaming");
  if (syncing.length === 0) { stream.className = "muted"; stream.replaceChildren("no node is streaming"); }
  else {
    stream.className = "";
    stream.replaceChildren(...syncing.flatMap((m) => [
      el("div", {}, el("b", {}, m.id), " pulling newly owned ranges: " + Math.round((m.syncRatio || 0) * 100) + "% (" + fmtNum(m.syncKeys) + " of " + fmtNum(m.syncKeysTotal) + " keys, " + fmtBytes(m.syncBytes) + ")"),
      el("div", { class: "bar" }, el("div", { style: "width:" + Math.round((m.syncRatio || 0) * 100) + "%" })),
    ]));
  }
  const events = s.events.map((e) => el("li", {}, el("span", { class: "badge " + ({ joined: "alive", alive: "alive", suspect: "suspect", dead: "dead", left: "left", reaped: "left" }[e.type] || "left") }, e.type), " " + e.member + (e.from ? " (was " + e.from + ")" : "") + " ", el("span", { class: "muted" }, ago(e.atMs))));
  document.getElementById("events").replaceChildren(...(events.length ? events : [el("li", { class: "muted" }, "none yet")]));
}

async function refresh() {
  try {
    const res = await fetch("status.json", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const s = await res.json();
    render(s);
    lastOk = Date.now();
    document.getElementById("error").style.display = "none";
    const live = document.getElementById("live");
    live.className = ""; live.textContent = "live · updated " + new Date(s.generatedAtMs).toLocaleTimeString();
  } catch (err) {
    const box = document.getElementById("error");
    box.style.display = "block";
    box.textContent = "Cannot reach this node (" + err.message + "); retrying every " + REFRESH_MS / 1000 + " s." + (lastOk ? " Last update " + ago(lastOk) + "." : "");
    const live = document.getElementById("live");
    live.className = "stale"; live.textContent = "stale";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
</script>
</body>
</html>
`;
