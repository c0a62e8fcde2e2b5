"""The dispatcher console: one HTML page (inline CSS and JavaScript) served at GET /console, with
its map library, Leaflet (npm package `leaflet`, copied into this package by `make setup` and
shipped with the function), served at GET /console/assets/{leaflet.js,leaflet.css}.

The page holds no data and no secret: the dispatcher brings a token (pasted, or in the URL fragment
`#token=…&region=…&date=…`, which never reaches a server), and the page calls the same HTTP API as
any client, `GET /regions/{region}/plans/{date}` and `POST …/optimize`, with that Bearer token. It
draws the routes and stops on a Leaflet map — on map tiles when a tile URL is configured
(`CONSOLE_TILE_URL`, a template parameter), else on a plain background, so it works offline — a
timeline per clinician in local time with a legend (shift, booked windows, ETAs, breaks, visit
states), the unassigned visits with their reasons and the KPIs. It renders only the fields it
knows (never a symptom; the plan API does not send them anyway) and only as text nodes.
"""
from __future__ import annotations

from functools import lru_cache
from html import escape
from pathlib import Path

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Home visits · dispatch console</title>
<link rel="stylesheet" href="console/assets/leaflet.css">
<script src="console/assets/leaflet.js"></script>
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
#map{height:440px;background:#eef2f5;border-radius:4px}
.tl-legend{font-size:11px;color:#5b6b7a;display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px}
.tl-legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
.late{color:#d62728;font-weight:600}
.badge{display:inline-block;margin-left:5px;padding:0 5px;border-radius:8px;font-size:11px;font-weight:600}
.badge.urgent{background:#d62728;color:#fff}
.badge.frikort-unverified{background:#fff3cd;color:#7a5200;border:1px solid #e0b100}
.wide{grid-column:1 / -1}.muted{color:#8a97a3}
</style></head>
<body data-plan-version=""__TILES__>
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
  <section><h2>Routes</h2><div id="map" role="region" aria-label="map of the routes"></div>
    <div id="legend"></div></section>
  <section><h2>Timeline</h2><svg id="timeline" width="100%" viewBox="0 0 760 60" role="img" aria-label="timeline"></svg>
    <div id="timeline-legend" class="tl-legend">local time ·
      <span><i style="background:#eef3f7;border:1px solid #cdd8e1"></i>shift</span>
      <span><i style="background:#1f77b4;opacity:.25"></i>booked window</span>
      <span><i style="background:#1f77b4"></i>visit (ETA + service)</span>
      <span><i style="background:#c9c9c9"></i>break</span>
      <span><i style="background:#7b61ff"></i>video call (doctor on calls)</span>
      <span><i style="background:#ff7f0e"></i>on the way</span>
      <span><i style="background:#9467bd"></i>arrived</span>
      <span><i style="background:#2ca02c"></i>completed</span>
      <span><i style="background:#d62728"></i>no-show</span></div></section>
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
// A visit's triage priority as a badge next to its type (urgent visits are served first), and a
// frikort the patient declared that nobody has verified yet (the visit is free on their word).
function frikortUnverified(item) { return !!(item.frikort && item.frikort.declared && !item.frikort.verified); }
function typeCell(item) {
  const c = td(item.visit_type);
  if (item.priority === "urgent") {
    const b = document.createElement("span"); b.className = "badge urgent"; b.textContent = "urgent"; c.appendChild(b);
  }
  if (frikortUnverified(item)) {
    const f = document.createElement("span"); f.className = "badge frikort-unverified"; f.textContent = "frikort unverified";
    f.title = "self-declared frikort, not yet verified: the visit is free on the patient's word"; c.appendChild(f);
  }
  return c;
}
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

// The map: Leaflet (npm package, served by this function at console/assets/). Without a tile URL
// (offline, or none configured) it draws routes and stops on a plain background.
const TILES = document.body.dataset.tiles || "", TILE_ATTRIBUTION = document.body.dataset.tileAttribution || "";
const mapState = {map: null, layer: null, fitted: ""};
function tip(text) { const s = document.createElement("span"); s.textContent = text; return s; }
function ensureMap() {
  if (mapState.map) return mapState.map;
  if (!window.L) { $("map").textContent = "the map library did not load"; return null; }
  const m = L.map("map", {zoomSnap: 0.25, attributionControl: !!TILES});
  if (TILES) L.tileLayer(TILES, {maxZoom: 19, attribution: TILE_ATTRIBUTION}).addTo(m);
  mapState.map = m; mapState.layer = L.layerGroup().addTo(m);
  return m;
}

function drawMap(plan) {
  const legend = $("legend"); clear(legend);
  const m = ensureMap();
  if (m) mapState.layer.clearLayers();
  const bounds = [];
  plan.routes.forEach((r, i) => {
    const color = COLORS[i % COLORS.length], start = startOf(r);
    const path = []; if (start) path.push([start.lat, start.lon]);
    r.stops.forEach(st => { const c = coord(st); if (c) path.push([c.lat, c.lon]); });
    if (start && r.stops.length) path.push([start.lat, start.lon]);
    path.forEach(p => bounds.push(p));
    if (m && path.length >= 2)
      L.polyline(path, {color, weight: 3, opacity: .85, className: "route"}).bindTooltip(tip(r.clinician_id)).addTo(mapState.layer);
    if (m && start)
      L.circleMarker([start.lat, start.lon], {radius: 5, color, fillColor: color, fillOpacity: 1, className: "depot"})
        .bindTooltip(tip(r.clinician_id + " · start")).addTo(mapState.layer);
    r.stops.forEach((st, n) => {
      const c = coord(st); if (!c || !m) return;
      L.circleMarker([c.lat, c.lon], {radius: 8, color, weight: 2, fillColor: STATUS[st.status] || "#fff", fillOpacity: 1,
                                      className: "stop"})
        .bindTooltip(tip(r.clinician_id + " #" + (n + 1) + " · ETA " + (st.eta_local || hhmm(localMinutes(st.eta))) +
                         " · window " + st.window_start + "–" + st.window_end + " · " + st.status +
                         (frikortUnverified(st) ? " · frikort unverified" : "")),
                     {permanent: false}).addTo(mapState.layer);
    });
    const item = document.createElement("div");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color;
    item.appendChild(sw); item.appendChild(document.createTextNode(r.clinician_id + " (" + (r.role || "") + ") · " +
      r.stops.length + " stops · " + (r.driving_minutes || 0) + " min driving"));
    item.className = "clinician"; item.dataset.clinician = r.clinician_id;
    legend.appendChild(item);
  });
  (plan.unassigned || []).forEach(u => {
    const c = coord(u); if (!c) return; bounds.push([c.lat, c.lon]);
    if (m) L.circleMarker([c.lat, c.lon], {radius: 7, color: "#d62728", weight: 3, fillOpacity: 0, dashArray: "3 3",
                                           className: "unassigned-mark"})
      .bindTooltip(tip("unassigned · " + (u.reason || ""))).addTo(mapState.layer);
  });
  if (!m) return;
  // Fit the view when the day or the set of places changes, not on every refresh (the dispatcher may have zoomed).
  const key = $("region").value + "|" + $("date").value + "|" + bounds.length;
  if (bounds.length && key !== mapState.fitted) { m.fitBounds(bounds, {padding: [24, 24], maxZoom: 15}); mapState.fitted = key; }
  else if (!bounds.length) m.setView([59.33, 18.06], 10);
}

function drawTimeline(plan) {
  const svg = $("timeline"); clear(svg);
  // Clinicians on shift without a route get an (idle) row too, from the shifts when they are known.
  const rows = plan.routes.slice();
  if (state.shifts) Object.entries(state.shifts).forEach(([id, sh]) => {
    if (!rows.some(r => r.clinician_id === id)) rows.push({clinician_id: id, role: sh.role, stops: [], breaks: [],
      shift_start: sh.start_at || sh.start, shift_end: sh.end_at || sh.end, idle: true});
  });
  // Doctors on video calls: a row each with their calendar of calls (as now expected).
  const calendars = (plan.video_calls && plan.video_calls.doctors) || [];
  calendars.forEach(d => {
    if (!rows.some(r => r.clinician_id === d.clinician_id)) rows.push({clinician_id: d.clinician_id, role: "doctor", stops: [],
      breaks: [], shift_start: d.shift_start, shift_end: d.shift_end, idle: true});
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
    const doc = calendars.find(d => d.clinician_id === r.clinician_id);
    const g = el("g", {class: "clinician-row" + (r.idle && !doc ? " idle" : ""), "data-clinician": r.clinician_id});
    g.appendChild(el("text", {x: 4, y: y + 17, "font-size": 12}, r.clinician_id + " (" + (r.role || "") + ")" +
                                                              (doc ? " · video calls" : r.idle ? " · idle" : "")));
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
    (doc ? doc.calls : []).forEach(c => {
      const a = localMinutes(c.expected_start || c.start), b = localMinutes(c.expected_end || c.end);
      if (a == null || b == null) return;
      const v = el("rect", {x: X(a), y: y + 4, width: Math.max(2, X(b) - X(a)), height: rowH - 10, fill: "#7b61ff", class: "call"});
      v.appendChild(el("title", {}, "video call " + hhmm(a) + "–" + hhmm(b) + " · nurse " + c.nurse_id + " · " + c.booking_id));
      g.appendChild(v);
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
      tr.appendChild(i === 2 ? typeCell(st) :
                     td(v, i === 4 && end != null && eta != null && end - eta <= ((plan.kpis || {}).late_risk_minutes || 15) ? "late" : "")));
    body.appendChild(tr);
  }));
  const ub = $("unassigned").tBodies[0]; clear(ub);
  (plan.unassigned || []).forEach(u => {
    const tr = document.createElement("tr");
    [u.booking_id, u.visit_type, (u.window_start || "") + "–" + (u.window_end || ""), u.reason, u.status].forEach((v, i) =>
      tr.appendChild(i === 1 ? typeCell(u) : td(v)));
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


ASSETS_DIR = Path(__file__).resolve().parent / "static" / "leaflet"
ASSETS = {"leaflet.js": "text/javascript; charset=utf-8", "leaflet.css": "text/css; charset=utf-8"}


@lru_cache(maxsize=4)
def console_html(tile_url: str = "", tile_attribution: str = "") -> str:
    """The console page (text/html; the same bytes for everyone: no data, no secrets inside). With a
    tile URL (`{z}/{x}/{y}` template, configuration) the map draws tiles under the routes."""
    attrs = ""
    if tile_url:
        attrs = f' data-tiles="{escape(tile_url)}" data-tile-attribution="{escape(tile_attribution)}"'
    return _PAGE.replace("__TILES__", attrs)


def console_asset(name: str) -> tuple[bytes, str] | None:
    """One of the map library's files (installed from npm by `make setup`, shipped in this package),
    with its content type; None for any other name or when the file is missing."""
    if name not in ASSETS:
        return None
    path = ASSETS_DIR / name
    return (path.read_bytes(), ASSETS[name]) if path.is_file() else None
