"""The dispatcher console: one self-contained HTML page (inline CSS and JavaScript, no external assets,
no map tiles) served at GET /console.

The page holds no data and no secret: the dispatcher brings a token (pasted, or in the URL fragment
`#token=…&region=…&date=…`, which never reaches a server), and the page calls the same HTTP API as
any client, `GET /regions/{region}/plans/{date}` and `POST …/optimize`, with that Bearer token. It
draws the routes on the plane of coordinates (projected lat/lon with a grid), a timeline per
clinician (shift, booked windows, ETAs, breaks), the unassigned visits and the KPIs. It renders only
the fields it knows (never a symptom; the plan API does not send them anyway) and only as text nodes.
"""
from __future__ import annotations

from functools import lru_cache

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Home visits · dispatch console</title>
<style>
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2733;background:#f4f6f8}
header{background:#10263b;color:#fff;padding:10px 18px;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
header h1{font-size:17px;margin:0 12px 0 0}header label{font-size:12px;opacity:.85}
header input,header select{font:inherit;padding:4px 6px;border-radius:4px;border:1px solid #8aa;min-width:0}
#token{width:220px}button{font:inherit;padding:5px 12px;border-radius:4px;border:0;background:#2f80ed;color:#fff;cursor:pointer}
button.secondary{background:#5b6b7a}button:disabled{opacity:.5;cursor:wait}
main{padding:12px 18px;display:grid;grid-template-columns:minmax(320px,560px) 1fr;gap:14px}
section{background:#fff;border:1px solid #d9e0e6;border-radius:6px;padding:10px 12px}
h2{font-size:14px;margin:0 0 8px}#status{margin-left:auto;font-size:12px}#status.error{color:#ffb4b4}
.kpis{display:flex;flex-wrap:wrap;gap:6px 18px}.kpi{min-width:92px}.kpi b{display:block;font-size:19px}
.kpi span{font-size:11px;color:#5b6b7a;text-transform:uppercase;letter-spacing:.03em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eef1f4;font-size:13px}
th{color:#5b6b7a;font-weight:600}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
svg text{font-family:inherit}.grid{stroke:#e5eaef;stroke-width:1}.gl{font-size:9px;fill:#8a97a3}
.route{fill:none;stroke-width:2.5;stroke-opacity:.85}.stop-label{font-size:10px;fill:#223}
.unassigned-mark{stroke:#d62728;stroke-width:2.5}.late{color:#d62728;font-weight:600}
.wide{grid-column:1 / -1}.muted{color:#8a97a3}
</style></head>
<body data-plan-version="">
<header>
  <h1>Dispatch console</h1>
  <label>Token <input id="token" type="password" autocomplete="off" placeholder="paste a dispatcher token"></label>
  <label>Region <select id="region">
    <option value="stockholm">Stockholm</option><option value="skane">Skåne</option>
    <option value="vastra-gotaland">Västra Götaland</option></select></label>
  <label>Date <input id="date" type="date"></label>
  <button id="load" class="secondary">Load</button>
  <button id="replan">Re-plan</button>
  <label><input id="auto" type="checkbox"> auto-refresh</label>
  <span id="status" role="status">not loaded</span>
</header>
<main>
  <section class="wide"><h2>Plan <span id="plan-version" class="muted">–</span>
    <span id="computed" class="muted"></span></h2><div id="kpis" class="kpis"></div></section>
  <section><h2>Routes</h2><svg id="map" width="100%" viewBox="0 0 540 420" role="img" aria-label="routes"></svg>
    <div id="legend"></div></section>
  <section><h2>Timeline</h2><svg id="timeline" width="100%" viewBox="0 0 760 60" role="img" aria-label="timeline"></svg></section>
  <section class="wide"><h2>Stops</h2><table id="stops"><thead><tr><th>clinician</th><th>#</th><th>type</th>
    <th>window</th><th>ETA</th><th>address</th><th>status</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Unassigned <span id="unassigned-count" class="muted">0</span></h2>
    <table id="unassigned"><thead><tr><th>booking</th><th>type</th><th>window</th><th>reason</th><th>status</th></tr>
    </thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const COLORS = ["#1f77b4","#d62728","#2ca02c","#9467bd","#ff7f0e","#17becf","#8c564b","#e377c2","#7f7f7f","#bcbd22"];
const STATUS = {completed:"#2ca02c", no_show:"#d62728", en_route:"#ff7f0e", arrived:"#9467bd"};
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const state = {token: "", plan: null, shifts: null, timer: null, busy: false, tz: "Europe/Stockholm"};

// The API lives where this page is served from (…/console -> …), stage prefix included.
const API = location.pathname.replace(/\/console\/?$/, "");

function readFragment() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (p.get("token")) { state.token = p.get("token"); sessionStorage.setItem("hv-token", state.token); }
  else { state.token = sessionStorage.getItem("hv-token") || ""; }
  if (p.get("region")) $("region").value = p.get("region");
  $("date").value = p.get("date") || new Date().toISOString().slice(0, 10);
  $("token").value = state.token;
  // Keep the token out of the address bar and history once read.
  if (p.get("token")) history.replaceState(null, "", location.pathname + "#region=" +
      encodeURIComponent($("region").value) + "&date=" + encodeURIComponent($("date").value));
}

function setStatus(text, error) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }

async function call(method, path) {
  const res = await fetch(API + path, {method, headers: {"Authorization": "Bearer " + state.token,
                                                        "Accept": "application/json"}});
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error.code + ": " + body.error.message : (body && body.message) || res.statusText;
    const err = new Error(msg); err.status = res.status; throw err;
  }
  return body;
}

function el(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function td(text, cls) { const c = document.createElement("td"); c.textContent = text == null ? "" : String(text); if (cls) c.className = cls; return c; }
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function localMinutes(iso) {
  if (!iso) return null;
  if (/^\d\d:\d\d$/.test(iso)) { const [h, m] = iso.split(":").map(Number); return h * 60 + m; }
  const d = new Date(iso);
  const parts = new Intl.DateTimeFormat("en-GB", {timeZone: state.tz, hour: "2-digit", minute: "2-digit",
                                                  hourCycle: "h23"}).formatToParts(d);
  const h = Number(parts.find(p => p.type === "hour").value), m = Number(parts.find(p => p.type === "minute").value);
  return h * 60 + m;
}
function hhmm(min) { if (min == null) return "–"; return String(Math.floor(min / 60)).padStart(2, "0") + ":" + String(Math.round(min % 60)).padStart(2, "0"); }

function startOf(route) {
  const sh = state.shifts && state.shifts[route.clinician_id];
  const loc = sh && (sh.start_location || sh.start);
  if (loc && loc.lat != null) return {lat: Number(loc.lat), lon: Number(loc.lon)};
  return route.start_location || null;
}
function coord(stop) { const a = stop.address || {}; return a.lat != null ? {lat: Number(a.lat), lon: Number(a.lon)} : null; }

function drawMap(plan) {
  const svg = $("map"); clear(svg);
  const W = 540, H = 420, pad = 24;
  const pts = [];
  plan.routes.forEach(r => { const s = startOf(r); if (s) pts.push(s); r.stops.forEach(st => { const c = coord(st); if (c) pts.push(c); }); });
  (plan.unassigned || []).forEach(u => { const c = coord(u); if (c) pts.push(c); });
  svg.appendChild(el("rect", {width: W, height: H, fill: "#f7f9fb"}));
  if (!pts.length) { svg.appendChild(el("text", {x: 20, y: 30, class: "gl"}, "no visits")); return; }
  const lat0 = pts.reduce((a, p) => a + p.lat, 0) / pts.length, k = Math.cos(lat0 * Math.PI / 180);
  const xs = pts.map(p => p.lon * k), ys = pts.map(p => p.lat);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const span = Math.max(x1 - x0, y1 - y0, 0.01), scale = Math.min((W - 2 * pad) / span, (H - 2 * pad) / span);
  const ox = pad + ((W - 2 * pad) - (x1 - x0) * scale) / 2, oy = pad + ((H - 2 * pad) - (y1 - y0) * scale) / 2;
  const P = (c) => [+(ox + (c.lon * k - x0) * scale).toFixed(1), +(oy + (y1 - c.lat) * scale).toFixed(1)];
  const step = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].find(s => span / s <= 8) || 2;
  for (let la = Math.floor((y0 - 1) / step) * step; la <= y1 + 1; la += step) {
    const y = P({lat: la, lon: x0 / k})[1]; if (y < 0 || y > H) continue;
    svg.appendChild(el("line", {x1: 0, y1: y, x2: W, y2: y, class: "grid"}));
    svg.appendChild(el("text", {x: 2, y: y - 2, class: "gl"}, la.toFixed(2) + "°N"));
  }
  const lonStep = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].find(s => span / k / s <= 8) || 2;
  for (let lo = Math.floor((x0 / k - 1) / lonStep) * lonStep; lo <= x1 / k + 1; lo += lonStep) {
    const x = P({lat: y0, lon: lo})[0]; if (x < 0 || x > W) continue;
    svg.appendChild(el("line", {x1: x, y1: 0, x2: x, y2: H, class: "grid"}));
    svg.appendChild(el("text", {x: x + 2, y: H - 3, class: "gl"}, lo.toFixed(2) + "°E"));
  }
  const legend = $("legend"); clear(legend);
  plan.routes.forEach((r, i) => {
    const color = COLORS[i % COLORS.length], start = startOf(r);
    const path = []; if (start) path.push(P(start));
    r.stops.forEach(st => { const c = coord(st); if (c) path.push(P(c)); });
    if (start && r.stops.length) path.push(P(start));
    if (path.length >= 2) {
      const p = el("path", {d: "M" + path.map(q => q.join(",")).join(" L"), class: "route", stroke: color,
                            "data-clinician": r.clinician_id});
      p.appendChild(el("title", {}, r.clinician_id));
      svg.appendChild(p);
    }
    if (start) { const [x, y] = P(start); svg.appendChild(el("rect", {x: x - 5, y: y - 5, width: 10, height: 10, fill: color})); }
    r.stops.forEach((st, n) => {
      const c = coord(st); if (!c) return;
      const [x, y] = P(c);
      const circle = el("circle", {cx: x, cy: y, r: 6, fill: STATUS[st.status] || "#fff", stroke: color, "stroke-width": 2, class: "stop"});
      circle.appendChild(el("title", {}, r.clinician_id + " #" + (n + 1) + " " + (st.eta_local || hhmm(localMinutes(st.eta)))));
      svg.appendChild(circle);
      svg.appendChild(el("text", {x: x + 7, y: y - 6, class: "stop-label"}, String(n + 1)));
    });
    const item = document.createElement("div");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color;
    item.appendChild(sw); item.appendChild(document.createTextNode(r.clinician_id + " (" + (r.role || "") + ") · " +
      r.stops.length + " stops · " + (r.driving_minutes || 0) + " min driving"));
    item.className = "clinician"; item.dataset.clinician = r.clinician_id;
    legend.appendChild(item);
  });
  (plan.unassigned || []).forEach(u => {
    const c = coord(u); if (!c) return; const [x, y] = P(c);
    svg.appendChild(el("path", {d: `M${x-5},${y-5} L${x+5},${y+5} M${x-5},${y+5} L${x+5},${y-5}`, class: "unassigned-mark"}));
  });
}

function drawTimeline(plan) {
  const svg = $("timeline"); clear(svg);
  // Clinicians on shift without a route get an (idle) row too, from the shifts when they are known.
  const rows = plan.routes.slice();
  if (state.shifts) Object.entries(state.shifts).forEach(([id, sh]) => {
    if (!rows.some(r => r.clinician_id === id)) rows.push({clinician_id: id, role: sh.role, stops: [], breaks: [],
      shift_start: sh.start_at || sh.start, shift_end: sh.end_at || sh.end, idle: true});
  });
  const W = 760, label = 150, rowH = 30, open = 7 * 60, close = 21 * 60;
  const H = 22 + rowH * Math.max(1, rows.length);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const X = (m) => +(label + (m - open) / (close - open) * (W - label - 8)).toFixed(1);
  for (let h = open / 60; h <= close / 60; h++) {
    svg.appendChild(el("line", {x1: X(h * 60), y1: 14, x2: X(h * 60), y2: H, class: "grid"}));
    svg.appendChild(el("text", {x: X(h * 60) - 7, y: 11, class: "gl"}, String(h).padStart(2, "0")));
  }
  rows.forEach((r, i) => {
    const y = 18 + i * rowH, color = COLORS[i % COLORS.length];
    const g = el("g", {class: "clinician-row" + (r.idle ? " idle" : ""), "data-clinician": r.clinician_id});
    g.appendChild(el("text", {x: 4, y: y + 17, "font-size": 12}, r.clinician_id + " (" + (r.role || "") + ")" + (r.idle ? " · idle" : "")));
    const s0 = localMinutes(r.shift_start), s1 = localMinutes(r.shift_end);
    if (s0 != null && s1 != null) g.appendChild(el("rect", {x: X(s0), y: y + 2, width: Math.max(0, X(s1) - X(s0)), height: rowH - 6, fill: "#eef3f7", stroke: "#cdd8e1"}));
    (r.breaks || []).forEach(b => {
      const b0 = localMinutes(b.start), b1 = localMinutes(b.end);
      if (b0 != null) g.appendChild(el("rect", {x: X(b0), y: y + 4, width: Math.max(2, X(b1) - X(b0)), height: rowH - 10, fill: "#c9c9c9", class: "break"}));
    });
    r.stops.forEach((st, n) => {
      const w0 = localMinutes(st.window_start), w1 = localMinutes(st.window_end);
      if (w0 != null && w1 != null) g.appendChild(el("rect", {x: X(w0), y: y + 7, width: Math.max(0, X(w1) - X(w0)), height: rowH - 14, fill: color, "fill-opacity": .15, class: "window"}));
      const eta = localMinutes(st.eta);
      if (eta != null) {
        const dur = st.service_minutes || 0;
        const v = el("rect", {x: X(eta), y: y + 4, width: Math.max(2, X(eta + dur) - X(eta)), height: rowH - 10,
                              fill: STATUS[st.status] || color, class: "visit"});
        v.appendChild(el("title", {}, "#" + (n + 1) + " ETA " + (st.eta_local || hhmm(eta)) + " · window " + st.window_start + "–" + st.window_end));
        g.appendChild(v);
      }
    });
    svg.appendChild(g);
  });
}

function drawKpis(plan) {
  const k = plan.kpis || {}, box = $("kpis"); clear(box);
  const items = [["served", k.visits_served], ["unassigned", k.visits_unassigned], ["on time", k.on_time_share == null ? "–" : Math.round(k.on_time_share * 100) + " %"],
                 ["late risk", k.late_risk], ["driving", k.total_driving_minutes == null ? "–" : Math.round(k.total_driving_minutes) + " min"],
                 ["utilisation", k.utilisation == null ? "–" : Math.round(k.utilisation * 100) + " %"], ["clinicians", k.clinicians_on_shift],
                 ["routes used", k.routes_used]];
  for (const [name, value] of items) {
    const d = document.createElement("div"); d.className = "kpi"; d.dataset.kpi = name;
    const b = document.createElement("b"); b.textContent = value == null ? "–" : String(value);
    const s = document.createElement("span"); s.textContent = name;
    d.appendChild(b); d.appendChild(s); box.appendChild(d);
  }
}

function drawTables(plan) {
  const body = $("stops").tBodies[0]; clear(body);
  plan.routes.forEach(r => r.stops.forEach((st, n) => {
    const tr = document.createElement("tr"); tr.className = "stop-row"; tr.dataset.clinician = r.clinician_id;
    const a = st.address || {};
    const eta = localMinutes(st.eta), end = localMinutes(st.window_end);
    [r.clinician_id, n + 1, st.visit_type, st.window_start + "–" + st.window_end, st.eta_local || hhmm(eta),
     [a.street, a.postal_code, a.city].filter(Boolean).join(", "), st.status].forEach((v, i) =>
      tr.appendChild(td(v, i === 4 && end != null && eta != null && end - eta <= ((plan.kpis || {}).late_risk_minutes || 15) ? "late" : "")));
    body.appendChild(tr);
  }));
  const ub = $("unassigned").tBodies[0]; clear(ub);
  (plan.unassigned || []).forEach(u => {
    const tr = document.createElement("tr");
    [u.booking_id, u.visit_type, (u.window_start || "") + "–" + (u.window_end || ""), u.reason, u.status].forEach(v => tr.appendChild(td(v)));
    ub.appendChild(tr);
  });
  $("unassigned-count").textContent = String((plan.unassigned || []).length);
}

function render(plan) {
  state.plan = plan;
  plan.routes = plan.routes || [];
  state.tz = plan.time_zone || "Europe/Stockholm";
  document.body.dataset.planVersion = plan.version == null ? "" : String(plan.version);
  $("plan-version").textContent = "v" + (plan.version == null ? "–" : plan.version);
  $("computed").textContent = plan.computed_at ? " · computed " + plan.computed_at + (plan.trigger ? " (" + plan.trigger + ")" : "") : "";
  drawKpis(plan); drawMap(plan); drawTimeline(plan); drawTables(plan);
  document.body.dataset.rendered = "true";
}

async function loadShifts(region, date) {
  try {
    const body = await call("GET", `/regions/${encodeURIComponent(region)}/shifts/${encodeURIComponent(date)}`);
    const list = Array.isArray(body) ? body : (body.shifts || []);
    const byId = {};
    if (Array.isArray(list)) list.forEach(s => { byId[s.clinician_id || s.id] = s; });
    else Object.assign(byId, list);
    state.shifts = byId;
  } catch (e) { state.shifts = null; }  // optional: routes are drawn from their first stop without it
}

async function load() {
  if (state.busy) return;
  state.token = $("token").value.trim(); sessionStorage.setItem("hv-token", state.token);
  if (!state.token) { setStatus("paste a dispatcher token first", true); return; }
  const region = $("region").value, date = $("date").value;
  state.busy = true; setStatus("loading…");
  try {
    await loadShifts(region, date);
    const plan = await call("GET", `/regions/${encodeURIComponent(region)}/plans/${encodeURIComponent(date)}`);
    render(plan);
    setStatus("loaded " + new Date().toLocaleTimeString());
  } catch (e) {
    setStatus(e.status === 404 ? "no plan for this day yet (press Re-plan)" : "error: " + e.message, e.status !== 404);
  } finally { state.busy = false; }
}

async function replan() {
  if (state.busy) return;
  state.token = $("token").value.trim();
  const region = $("region").value, date = $("date").value;
  state.busy = true; $("replan").disabled = true; setStatus("re-planning…");
  try {
    const res = await call("POST", `/regions/${encodeURIComponent(region)}/plans/${encodeURIComponent(date)}/optimize`);
    state.busy = false;
    if (res && Array.isArray(res.routes)) { render(res); setStatus("re-planned " + new Date().toLocaleTimeString()); }
    else { await load(); }
  } catch (e) { setStatus("error: " + e.message, true); }
  finally { state.busy = false; $("replan").disabled = false; }
}

$("load").addEventListener("click", load);
$("replan").addEventListener("click", replan);
$("region").addEventListener("change", load);
$("date").addEventListener("change", load);
$("auto").addEventListener("change", () => {
  clearInterval(state.timer);
  if ($("auto").checked) state.timer = setInterval(load, 30000);
});
readFragment();
if (state.token) load();
</script>
</body></html>
"""


@lru_cache(maxsize=1)
def console_html() -> str:
    """The console page (text/html; the same bytes for everyone: no data, no secrets inside)."""
    return _PAGE
