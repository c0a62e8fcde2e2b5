"""The dispatcher console: one HTML page (inline CSS and JavaScript) served at GET /console, with
its map library, Leaflet (npm package `leaflet`, copied into this package by `make setup` and
shipped with the function), served at GET /console/assets/{leaflet.js,leaflet.css}.

The page holds no data and no secret: the dispatcher brings a token (pasted, or in the URL fragment
`#token=…&region=…&date=…`, which never reaches a server), and the page calls the same HTTP API as
any client with that Bearer token: `GET /regions/{region}/plans/{date}` and `…/shifts/{date}` to
show the day, `POST …/plans/{date}/optimize` (Re-plan), `POST …/plans/{date}/moves` (move a visit
to a clinician and position, pin, unpin, unassign; each sends the plan version on screen and shows
the answered next version, or the 409's reason), `DELETE …/clinicians/{id}/shifts/{date}`
(sick leave, after a confirm; the unkept visits and the windows their patients were offered) and
`PUT …/clinicians/{id}/shifts/{date}?override=true` (a late start or an early end, after a confirm:
the clinician's shift as `GET …/shifts/{date}` answered it with new start and end times; its unkept
visits are shown as sick leave's are).

It draws the routes and stops on a Leaflet map — on map tiles when a tile URL is configured
(`CONSOLE_TILE_URL`, a template parameter), else on a plain background, so it works offline — a
timeline per clinician with a legend (shift, booked windows, ETAs, pins, urgency, breaks, visit
states), the clinicians on shift, the stops, and the unassigned, unkept and missed visits with their
reasons. Every time is the region's local time (Europe/Stockholm), whatever the dispatcher's
machine's zone. It renders only the fields it knows (no names, personal numbers or clinical notes:
the plan API does not send them anyway) and only as text nodes.
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
button.secondary{background:#5b6b7a}button.danger{background:#c0392b}button:disabled{opacity:.5;cursor:wait}
button.small{padding:2px 8px;font-size:12px;margin:1px 2px}
#tz{font-size:12px;opacity:.8}
main{padding:12px 18px;display:grid;grid-template-columns:minmax(320px,560px) 1fr;gap:14px}
section{background:#fff;border:1px solid #d9e0e6;border-radius:6px;padding:10px 12px}
h2{font-size:14px;margin:0 0 8px}#status{margin-left:auto;font-size:12px}#status.error{color:#ffb4b4}
#notice{margin:10px 18px 0;padding:8px 12px;border-radius:6px;display:flex;gap:10px;align-items:flex-start}
#notice[hidden]{display:none}#notice.error{background:#fdecea;border:1px solid #f5b7b1;color:#7b241c}
#notice.ok{background:#e9f7ef;border:1px solid #a9dfbf;color:#145a32}#notice-text{flex:1;white-space:pre-line}
#notice button{background:transparent;color:inherit;padding:0 4px}
.kpis{display:flex;flex-wrap:wrap;gap:6px 18px}.kpi{min-width:92px}.kpi b{display:block;font-size:19px}
.kpi span{font-size:11px;color:#5b6b7a;text-transform:uppercase;letter-spacing:.03em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eef1f4;font-size:13px;vertical-align:top}
th{color:#5b6b7a;font-weight:600}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
tr.selected td{background:#fff7d6}td.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#5b6b7a}
svg text{font-family:inherit}.grid{stroke:#e5eaef;stroke-width:1}.gl{font-size:9px;fill:#8a97a3}
#map{height:440px;background:#eef2f5;border-radius:4px}
.tl-legend{font-size:11px;color:#5b6b7a;display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px}
.tl-legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
#timeline .visit{cursor:pointer}
.late{color:#d62728;font-weight:600}
.badge{display:inline-block;margin-left:5px;padding:0 5px;border-radius:8px;font-size:11px;font-weight:600}
.badge.urgent{background:#d62728;color:#fff}.badge.pinned{background:#10263b;color:#fff}
.badge.locked{background:#e5eaef;color:#5b6b7a}
.badge.frikort-unverified{background:#fff3cd;color:#7a5200;border:1px solid #e0b100}
.wide{grid-column:1 / -1}.muted{color:#8a97a3}.reason b{font-weight:600}.reason small{color:#8a97a3;margin-left:4px}
#move-panel{border-color:#f0c36d;background:#fffbea}#move-panel[hidden]{display:none}
#move-panel label{margin-right:12px;font-size:13px}#move-panel select{font:inherit;padding:3px 6px}
#shift-panel{border-color:#f0c36d;background:#fffbea}#shift-panel[hidden]{display:none}
#shift-panel label{margin-right:12px;font-size:13px}#shift-panel input{font:inherit;padding:3px 6px}
dialog{border:1px solid #d9e0e6;border-radius:8px;max-width:520px;padding:16px 18px}
dialog::backdrop{background:rgba(16,38,59,.45)}dialog h3{margin:0 0 8px;font-size:16px}
dialog .buttons{display:flex;gap:8px;justify-content:flex-end;margin-top:14px}
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
  <span id="tz">times: Europe/Stockholm</span>
  <span id="status" role="status">not loaded</span>
</header>
<div id="notice" role="alert" hidden><span id="notice-text"></span>
  <button id="notice-close" type="button" aria-label="dismiss">×</button></div>
<main>
  <section id="move-panel" class="wide" hidden aria-label="move a visit"><h2>Move visit <span id="move-what"></span></h2>
    <label>to <select id="move-clinician"></select></label>
    <label>at <select id="move-position"></select></label>
    <label><input id="move-pin" type="checkbox"> pin it there</label>
    <button id="move-go">Move</button> <button id="move-cancel" class="secondary">Cancel</button></section>
  <section id="shift-panel" class="wide" hidden aria-label="change a shift"><h2>Change the shift of <span id="shift-who"></span>
    <span id="shift-was" class="muted"></span></h2>
    <label>starts <input id="shift-start" type="time" step="300" required></label>
    <label>ends <input id="shift-end" type="time" step="300" required></label>
    <span class="muted">local time, Europe/Stockholm</span>
    <button id="shift-go">Change…</button> <button id="shift-cancel" class="secondary">Cancel</button></section>
  <section class="wide"><h2>Plan <span id="plan-version" class="muted">–</span>
    <span id="computed" class="muted"></span></h2><div id="kpis" class="kpis"></div></section>
  <section><h2>Routes</h2><div id="map" role="region" aria-label="map of the routes"></div>
    <div id="legend"></div></section>
  <section><h2>Timeline</h2><svg id="timeline" width="100%" viewBox="0 0 760 60" role="img" aria-label="timeline"></svg>
    <div id="timeline-legend" class="tl-legend"><span>local time, <b id="tl-tz">Europe/Stockholm</b>:</span>
      <span><i style="background:#eef3f7;border:1px solid #cdd8e1"></i>shift</span>
      <span><i style="background:#1f77b4;opacity:.25"></i>booked window</span>
      <span><i style="background:#1f77b4"></i>visit (ETA + service)</span>
      <span><i style="background:#fff;border:2px solid #10263b"></i>pinned</span>
      <span><i style="background:#fff;border-top:3px solid #d62728"></i>urgent</span>
      <span><i style="background:#c9c9c9"></i>break</span>
      <span><i style="background:#7b61ff"></i>video call (doctor on calls)</span>
      <span><i style="background:#ff7f0e"></i>on the way</span>
      <span><i style="background:#9467bd"></i>arrived</span>
      <span><i style="background:#2ca02c"></i>completed</span>
      <span><i style="background:#d62728"></i>no-show</span></div></section>
  <section class="wide"><h2>Clinicians <span id="clinician-count" class="muted">0</span></h2>
    <table id="clinicians"><thead><tr><th>clinician</th><th>role</th><th>shift</th><th>stops</th><th>pinned</th>
    <th>driving</th><th>route</th><th></th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Stops</h2><table id="stops"><thead><tr><th>clinician</th><th>#</th><th>type</th>
    <th>window</th><th>ETA</th><th>address</th><th>status</th><th>booking</th><th>actions</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Unassigned <span id="unassigned-count" class="muted">0</span></h2>
    <table id="unassigned"><thead><tr><th>booking</th><th>type</th><th>window</th><th>reason</th><th>status</th><th></th></tr>
    </thead><tbody></tbody></table></section>
  <section class="wide"><h2>Unkept <span id="unkept-count" class="muted">0</span>
    <span class="muted">· clinician off the day or their shift shortened; the patients were offered other windows by SMS</span></h2>
    <table id="unkept"><thead><tr><th>booking</th><th>type</th><th>window</th><th>reason</th><th>was with</th>
    <th>windows offered</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Missed <span id="missed-count" class="muted">0</span>
    <span class="muted">· nobody arrived in the window; the hold was released and the patient told</span></h2>
    <table id="missed"><thead><tr><th>booking</th><th>type</th><th>window</th><th>reason</th><th>clinician</th>
    <th>status</th></tr></thead><tbody></tbody></table></section>
</main>
<dialog id="sick-dialog" aria-labelledby="sick-title">
  <h3 id="sick-title">Take a clinician off the day</h3>
  <p id="sick-text"></p>
  <p class="muted">Their visits go to the other clinicians where they fit, the most urgent first; the rest are
    listed as unkept and their patients are offered the nearest free windows by SMS.</p>
  <div class="buttons"><button id="sick-cancel" class="secondary" type="button">Cancel</button>
    <button id="sick-confirm" class="danger" type="button">Take off the day</button></div>
</dialog>
<dialog id="shift-dialog" aria-labelledby="shift-title">
  <h3 id="shift-title">Change a clinician's shift</h3>
  <p id="shift-text"></p>
  <p class="muted">Visits outside the new hours go to the other clinicians (or stay with them at another time)
    where they fit, the most urgent first; the rest become unkept: they are listed under Unkept and their
    patients are offered the nearest free windows by SMS.</p>
  <div class="buttons"><button id="shift-dialog-cancel" class="secondary" type="button">Cancel</button>
    <button id="shift-confirm" class="danger" type="button">Change the shift</button></div>
</dialog>
<script>
"use strict";
const COLORS = ["#1f77b4","#d62728","#2ca02c","#9467bd","#ff7f0e","#17becf","#8c564b","#e377c2","#7f7f7f","#bcbd22"];
const STATUS = {completed:"#2ca02c", no_show:"#d62728", en_route:"#ff7f0e", arrived:"#9467bd"};
// Why a visit is not on a route, in the dispatcher's words (the API's code is shown next to it).
const REASONS = {
  no_capacity: "no clinician on shift has room for it in its window",
  no_clinician_with_skill: "no clinician on shift has the skill it needs",
  no_remote_doctor: "no doctor free for the video call",
  clinician_unavailable: "its clinician was taken off the day or their shift shortened, and no one else can keep its window",
  unassigned_by_dispatcher: "taken out of the routes by a dispatcher",
  window_passed: "its window has passed",
  clinician_not_on_shift: "its clinician is not on shift",
  no_location: "the address has no position",
  unknown_visit_type: "unknown visit type",
  no_arrival_in_window: "nobody arrived within the window",
};
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const state = {token: "", plan: null, shifts: null, timer: null, busy: false, tz: "Europe/Stockholm",
               selected: null, unkept: {}, shiftChange: null};

// The API lives where this page is served from (…/console -> …), stage prefix included.
const API = location.pathname.replace(/\/console\/?$/, "");

function readFragment() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (p.get("token")) { state.token = p.get("token"); sessionStorage.setItem("hv-token", state.token); }
  else { state.token = sessionStorage.getItem("hv-token") || ""; }
  if (p.get("region")) $("region").value = p.get("region");
  $("date").value = p.get("date") || localDate(new Date());
  $("token").value = state.token;
  // Keep the token out of the address bar and history once read.
  if (p.get("token")) history.replaceState(null, "", location.pathname + "#region=" +
      encodeURIComponent($("region").value) + "&date=" + encodeURIComponent($("date").value));
}

function setStatus(text, error) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }
// A message for the dispatcher that stays until dismissed or replaced: a refusal's reason, or what an action did.
function notify(text, kind, code) {
  const n = $("notice"); $("notice-text").textContent = text;
  n.className = kind || "ok"; n.dataset.code = code || ""; n.hidden = false;
}
function dismiss() { $("notice").hidden = true; $("notice").dataset.code = ""; }

async function call(method, path, body) {
  const headers = {"Authorization": "Bearer " + state.token, "Accept": "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try { res = await fetch(API + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)}); }
  catch (e) { const err = new Error("the API did not answer (" + e.message + ")"); err.status = 0; err.code = "";
              err.reason = err.message; err.details = {}; throw err; }
  let answer = null;
  try { answer = await res.json(); } catch (e) { answer = null; }
  if (!res.ok) {
    const error = answer && answer.error;
    const msg = error ? error.code + ": " + error.message : (answer && answer.message) || res.statusText;
    const err = new Error(msg); err.status = res.status; err.code = error ? error.code : "";
    err.reason = error ? error.message : msg; err.details = (error && error.details) || {};
    throw err;
  }
  return answer;
}

function el(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function td(text, cls) { const c = document.createElement("td"); c.textContent = text == null ? "" : String(text); if (cls) c.className = cls; return c; }
function badge(cls, text) { const b = document.createElement("span"); b.className = "badge " + cls; b.textContent = text; return b; }
function button(text, cls, onClick, title) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.className = "small " + (cls || "");
  if (title) b.title = title;
  b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); }); return b;
}
// A visit's triage priority as a badge next to its type (urgent visits are served first), and a
// frikort the patient declared that nobody has verified yet (the visit is free on their word).
function frikortUnverified(item) { return !!(item.frikort && item.frikort.declared && !item.frikort.verified); }
function typeCell(item) {
  const c = td(item.visit_type);
  if (item.priority === "urgent") c.appendChild(badge("urgent", "urgent"));
  if (frikortUnverified(item)) {
    const f = badge("frikort-unverified", "frikort unverified");
    f.title = "self-declared frikort, not yet verified: the visit is free on the patient's word"; c.appendChild(f);
  }
  return c;
}
function reasonCell(code) {
  const c = document.createElement("td"); c.className = "reason"; c.dataset.reason = code || "";
  const b = document.createElement("b"); b.textContent = REASONS[code] || code || "–"; c.appendChild(b);
  if (REASONS[code]) { const s = document.createElement("small"); s.textContent = code; c.appendChild(s); }
  return c;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

// Times: every time shown is the region's local time (Europe/Stockholm), whatever the dispatcher's machine says.
function parts(d, opts) {
  const out = {};
  new Intl.DateTimeFormat("en-GB", {timeZone: state.tz, hourCycle: "h23", ...opts}).formatToParts(d)
    .forEach(p => { out[p.type] = p.value; });
  return out;
}
function localDate(d) { const p = parts(d, {year: "numeric", month: "2-digit", day: "2-digit"}); return p.year + "-" + p.month + "-" + p.day; }
function localClock(d, seconds) {
  const p = parts(d, {hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined});
  return p.hour + ":" + p.minute + (seconds ? ":" + p.second : "");
}
function localMinutes(iso) {
  if (!iso) return null;
  if (/^\d\d:\d\d$/.test(iso)) { const [h, m] = iso.split(":").map(Number); return h * 60 + m; }
  const p = parts(new Date(iso), {hour: "2-digit", minute: "2-digit"});
  return Number(p.hour) * 60 + Number(p.minute);
}
function hhmm(min) { if (min == null) return "–"; return String(Math.floor(min / 60)).padStart(2, "0") + ":" + String(Math.round(min % 60)).padStart(2, "0"); }
function etaText(st) { return st.eta_local || hhmm(localMinutes(st.eta)); }
function windowText(v) { return (v.window_start || "") + "–" + (v.window_end || ""); }

function shiftOf(id) { return state.shifts && state.shifts[id]; }
function startOf(route) {
  const sh = shiftOf(route.clinician_id);
  const loc = sh && (sh.start_location || sh.start);
  if (loc && loc.lat != null) return {lat: Number(loc.lat), lon: Number(loc.lon)};
  return route.start_location || null;
}
function coord(stop) { const a = stop.address || {}; return a.lat != null ? {lat: Number(a.lat), lon: Number(a.lon)} : null; }
function clinicianLabel(id) {
  const r = state.plan && state.plan.routes.find(x => x.clinician_id === id), sh = shiftOf(id);
  const name = (r && r.name) || (sh && sh.name);
  return name ? name + " · " + id : id;
}

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
      L.polyline(path, {color, weight: 3, opacity: .85, className: "route"}).bindTooltip(tip(clinicianLabel(r.clinician_id))).addTo(mapState.layer);
    if (m && start)
      L.circleMarker([start.lat, start.lon], {radius: 5, color, fillColor: color, fillOpacity: 1, className: "depot"})
        .bindTooltip(tip(clinicianLabel(r.clinician_id) + " · start")).addTo(mapState.layer);
    r.stops.forEach((st, n) => {
      const c = coord(st); if (!c || !m) return;
      L.circleMarker([c.lat, c.lon], {radius: 8, color: st.pinned ? "#10263b" : color, weight: st.pinned ? 3 : 2,
                                      fillColor: STATUS[st.status] || "#fff", fillOpacity: 1, className: "stop"})
        .bindTooltip(tip(r.clinician_id + " #" + (n + 1) + " · ETA " + etaText(st) +
                         " · window " + windowText(st) + " · " + st.status + (st.pinned ? " · pinned" : "") +
                         (frikortUnverified(st) ? " · frikort unverified" : "")),
                     {permanent: false})
        .on("click", () => openMove(st.booking_id)).addTo(mapState.layer);
    });
    const item = document.createElement("div");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color;
    item.appendChild(sw); item.appendChild(document.createTextNode(clinicianLabel(r.clinician_id) + " (" + (r.role || "") + ") · " +
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
  const key = $("region").value + "|" + $("date").value + "|" + bounds.map(p => p.map(x => x.toFixed(3)).join(",")).sort().join(";");
  if (bounds.length && key !== mapState.fitted) { m.fitBounds(bounds, {padding: [24, 24], maxZoom: 15}); mapState.fitted = key; }
  else if (!bounds.length) m.setView([59.33, 18.06], 10);
}

// Clinicians on shift: those with a route, and (from the day's shifts) those without one; a doctor
// on video calls (plan.video_calls) has no route but a calendar of calls.
function calendarOf(id) {
  return ((state.plan && state.plan.video_calls && state.plan.video_calls.doctors) || []).find(d => d.clinician_id === id) || null;
}
function clinicianRows(plan) {
  const rows = plan.routes.map(r => ({...r, shift: shiftOf(r.clinician_id)}));
  if (state.shifts) Object.entries(state.shifts).forEach(([id, sh]) => {
    if (!rows.some(r => r.clinician_id === id)) rows.push({clinician_id: id, role: sh.role, name: sh.name, stops: [], breaks: [],
      shift_start: sh.start_at || sh.start, shift_end: sh.end_at || sh.end, idle: true, shift: sh});
  });
  ((plan.video_calls && plan.video_calls.doctors) || []).forEach(d => {
    if (!rows.some(r => r.clinician_id === d.clinician_id)) rows.push({clinician_id: d.clinician_id, role: "doctor", name: d.name,
      stops: [], breaks: [], shift_start: d.shift_start, shift_end: d.shift_end, idle: true, shift: shiftOf(d.clinician_id)});
  });
  rows.forEach(r => { r.calls = calendarOf(r.clinician_id); r.onCalls = !!(r.calls || (r.shift && r.shift.video_calls)); });
  return rows;
}

function drawTimeline(plan) {
  const svg = $("timeline"); clear(svg);
  const rows = clinicianRows(plan);
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
    const g = el("g", {class: "clinician-row" + (r.idle && !r.onCalls ? " idle" : ""), "data-clinician": r.clinician_id});
    g.appendChild(el("text", {x: 4, y: y + 17, "font-size": 12}, r.clinician_id + " (" + (r.role || "") + ")" +
                                                              (r.onCalls ? " · video calls" : r.idle ? " · idle" : "")));
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
        const attrs = {x: X(eta), y: y + 4, width: Math.max(2, X(eta + dur) - X(eta)), height: rowH - 10,
                       fill: STATUS[st.status] || color, class: "visit" + (st.pinned ? " pinned" : ""),
                       "data-booking": st.booking_id};
        if (st.pinned) Object.assign(attrs, {stroke: "#10263b", "stroke-width": 2});
        const v = el("rect", attrs);
        v.appendChild(el("title", {}, "#" + (n + 1) + " ETA " + etaText(st) + " · window " + windowText(st) +
                                       (st.pinned ? " · pinned" : "") + (st.priority === "urgent" ? " · urgent" : "")));
        v.addEventListener("click", () => openMove(st.booking_id));
        g.appendChild(v);
        if (st.priority === "urgent")
          g.appendChild(el("rect", {x: X(eta), y: y + 1, width: Math.max(2, X(eta + dur) - X(eta)), height: 3, fill: "#d62728", class: "urgent"}));
      }
    });
    (r.calls ? r.calls.calls || [] : []).forEach(c => {
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
                 ["routes used", k.routes_used], ["pinned", (plan.pins || []).filter(p => p.clinician_id).length],
                 ["missed", (plan.missed || []).length]];
  for (const [name, value] of items) {
    const d = document.createElement("div"); d.className = "kpi"; d.dataset.kpi = name;
    const b = document.createElement("b"); b.textContent = value == null ? "–" : String(value);
    const s = document.createElement("span"); s.textContent = name;
    d.appendChild(b); d.appendChild(s); box.appendChild(d);
  }
}

function drawClinicians(plan) {
  const body = $("clinicians").tBodies[0]; clear(body);
  const rows = clinicianRows(plan);
  rows.forEach((r, i) => {
    const tr = document.createElement("tr"); tr.className = "clinician-item"; tr.dataset.clinician = r.clinician_id;
    const first = r.stops[0], last = r.stops[r.stops.length - 1];
    const calls = r.calls ? (r.calls.calls || []).length : 0;
    const route = r.stops.length ? "ETA " + etaText(first) + " → " + etaText(last) :
                  r.onCalls ? calls + " video call" + (calls === 1 ? "" : "s") : "no visits";
    const role = (r.role || "") + (r.onCalls ? " (video calls)" : "");
    [clinicianLabel(r.clinician_id), role, hhmm(localMinutes(r.shift_start)) + "–" + hhmm(localMinutes(r.shift_end)),
     r.stops.length, r.stops.filter(s => s.pinned).length, r.idle ? "–" : (r.driving_minutes || 0) + " min", route]
      .forEach(v => tr.appendChild(td(v)));
    const actions = document.createElement("td");
    if (shiftOf(r.clinician_id))
      actions.appendChild(button("Change shift…", "secondary shift", () => openShift(r.clinician_id),
                                 "a late start or an early end"));
    actions.appendChild(button("Sick leave…", "danger sick", () => askSick(r.clinician_id),
                               "take this clinician off the day"));
    tr.appendChild(actions);
    tr.firstChild.prepend(Object.assign(document.createElement("span"), {className: "swatch"}));
    tr.firstChild.firstChild.style.background = r.idle ? "#cdd8e1" : COLORS[i % COLORS.length];
    body.appendChild(tr);
  });
  $("clinician-count").textContent = String(rows.length);
}

function drawTables(plan) {
  const body = $("stops").tBodies[0]; clear(body);
  plan.routes.forEach(r => r.stops.forEach((st, n) => {
    const tr = document.createElement("tr"); tr.className = "stop-row" + (st.booking_id === state.selected ? " selected" : "");
    tr.dataset.clinician = r.clinician_id; tr.dataset.booking = st.booking_id;
    tr.dataset.pinned = st.pinned ? "true" : "false";
    const a = st.address || {};
    const eta = localMinutes(st.eta), end = localMinutes(st.window_end);
    const late = st.late || (end != null && eta != null && end - eta <= ((plan.kpis || {}).late_risk_minutes || 15));
    tr.appendChild(td(r.clinician_id)); tr.appendChild(td(n + 1)); tr.appendChild(typeCell(st));
    tr.appendChild(td(windowText(st))); tr.appendChild(td(etaText(st) + (st.late ? " (after window)" : ""), late ? "late" : "eta"));
    tr.appendChild(td([a.street, a.postal_code, a.city].filter(Boolean).join(", ")));
    const status = td(st.status);
    if (st.pinned) status.appendChild(badge("pinned", "pinned"));
    if (st.locked) status.appendChild(badge("locked", "under way"));
    tr.appendChild(status); tr.appendChild(td(st.booking_id, "id"));
    const actions = document.createElement("td"); actions.className = "actions";
    if (st.locked) actions.appendChild(Object.assign(document.createElement("span"), {className: "muted", textContent: "stays (under way or done)"}));
    else {
      actions.appendChild(button("Move…", "move", () => openMove(st.booking_id), "move to another clinician or position"));
      actions.appendChild(st.pinned ? button("Unpin", "secondary unpin", () => pin(st.booking_id, r.clinician_id, false), "let re-plans move it again")
                                    : button("Pin", "secondary pin", () => pin(st.booking_id, r.clinician_id, true), "keep it with this clinician in re-plans"));
      actions.appendChild(button("Unassign", "danger unassign", () => unassign(st.booking_id), "take it out of the routes"));
    }
    tr.appendChild(actions);
    tr.addEventListener("click", () => openMove(st.booking_id));
    body.appendChild(tr);
  }));
  const unassigned = (plan.unassigned || []).filter(u => u.reason !== "clinician_unavailable");
  const ub = $("unassigned").tBodies[0]; clear(ub);
  unassigned.forEach(u => {
    const tr = document.createElement("tr"); tr.className = "unassigned-row"; tr.dataset.booking = u.booking_id;
    tr.appendChild(td(u.booking_id, "id")); tr.appendChild(typeCell(u)); tr.appendChild(td(windowText(u)));
    tr.appendChild(reasonCell(u.reason)); tr.appendChild(td(u.status));
    const actions = document.createElement("td");
    actions.appendChild(button("Move…", "move", () => openMove(u.booking_id), "put it on a route"));
    tr.appendChild(actions); ub.appendChild(tr);
  });
  $("unassigned-count").textContent = String(unassigned.length);
  drawUnkept(plan);
  const mb = $("missed").tBodies[0]; clear(mb);
  (plan.missed || []).forEach(m => {
    const tr = document.createElement("tr"); tr.className = "missed-row"; tr.dataset.booking = m.booking_id;
    tr.appendChild(td(m.booking_id, "id")); tr.appendChild(typeCell(m)); tr.appendChild(td(windowText(m)));
    tr.appendChild(reasonCell(m.reason)); tr.appendChild(td(m.clinician_id || "–")); tr.appendChild(td(m.status));
    mb.appendChild(tr);
  });
  $("missed-count").textContent = String((plan.missed || []).length);
}

// Unkept visits: the plan lists them as `clinician_unavailable`; the shift changes' answers (sick leave,
// a late start, an early end) of this session add who they were with and the windows their patients were offered.
function drawUnkept(plan) {
  const rows = {};
  (plan.unassigned || []).filter(u => u.reason === "clinician_unavailable").forEach(u => { rows[u.booking_id] = {...u}; });
  if (state.shiftChange && state.shiftChange.date === $("date").value && state.shiftChange.region === $("region").value)
    (state.shiftChange.unkept || []).forEach(u => {
      rows[u.booking_id] = {reason: "clinician_unavailable", ...u, ...(rows[u.booking_id] || {}), offered: u.offered,
                            clinician_id: u.clinician_id};
    });
  const body = $("unkept").tBodies[0]; clear(body);
  Object.values(rows).forEach(u => {
    const tr = document.createElement("tr"); tr.className = "unkept-row"; tr.dataset.booking = u.booking_id;
    tr.appendChild(td(u.booking_id, "id")); tr.appendChild(typeCell(u));
    tr.appendChild(td(u.window_end ? windowText(u) : (u.window_start || "")));
    tr.appendChild(reasonCell(u.reason || "clinician_unavailable")); tr.appendChild(td(u.clinician_id || "–"));
    const offered = (u.offered || []).map(w => w.date + " " + w.window_start + "–" + w.window_end).join("; ");
    tr.appendChild(td(u.offered ? offered || "none free" : "(sent by SMS)"));
    body.appendChild(tr);
  });
  $("unkept-count").textContent = String(Object.keys(rows).length);
}

function render(plan) {
  state.plan = plan;
  plan.routes = plan.routes || [];
  state.tz = plan.time_zone || "Europe/Stockholm";
  $("tz").textContent = "times: " + state.tz; $("tl-tz").textContent = state.tz;
  document.body.dataset.planVersion = plan.version == null ? "" : String(plan.version);
  $("plan-version").textContent = "v" + (plan.version == null ? "–" : plan.version);
  $("computed").textContent = plan.computed_at ? " · computed " + localClock(new Date(plan.computed_at)) +
    (plan.trigger ? " (" + plan.trigger + ")" : "") : "";
  drawKpis(plan); drawMap(plan); drawTimeline(plan); drawClinicians(plan); drawTables(plan);
  if (state.selected) openMove(state.selected, true);
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

function dayPath(suffix) {
  return `/regions/${encodeURIComponent($("region").value)}/plans/${encodeURIComponent($("date").value)}` + (suffix || "");
}

async function load() {
  if (state.busy) return;
  state.token = $("token").value.trim(); sessionStorage.setItem("hv-token", state.token);
  if (!state.token) { setStatus("paste a dispatcher token first", true); return; }
  const region = $("region").value, date = $("date").value;
  state.busy = true; setStatus("loading…");
  try {
    await loadShifts(region, date);
    const plan = await call("GET", dayPath());
    render(plan);
    setStatus("loaded " + localClock(new Date(), true));
  } catch (e) {
    setStatus(e.status === 404 ? "no plan for this day yet (press Re-plan)" : "error: " + e.message, e.status !== 404);
  } finally { state.busy = false; }
}

async function replan() {
  if (state.busy) return;
  state.token = $("token").value.trim();
  state.busy = true; $("replan").disabled = true; setStatus("re-planning…");
  try {
    const res = await call("POST", dayPath("/optimize"));
    state.busy = false;
    if (res && Array.isArray(res.routes)) { render(res); setStatus("re-planned " + localClock(new Date(), true)); }
    else { await load(); }
  } catch (e) { setStatus("error: " + e.message, true); }
  finally { state.busy = false; $("replan").disabled = false; }
}

// ---- steering: every action sends the plan version on screen; the answer is the next version.
function findVisit(bid) {
  const plan = state.plan; if (!plan) return null;
  for (const r of plan.routes) {
    const n = r.stops.findIndex(s => s.booking_id === bid);
    if (n >= 0) return {visit: r.stops[n], clinician: r.clinician_id, index: n};
  }
  const u = (plan.unassigned || []).find(x => x.booking_id === bid);
  return u ? {visit: u, clinician: null, index: null} : null;
}

async function steer(body, done) {
  if (state.busy || !state.plan) return;
  state.busy = true; setStatus("sending…");
  document.querySelectorAll("button").forEach(b => { if (b.id !== "notice-close") b.disabled = true; });
  try {
    const plan = await call("POST", dayPath("/moves"), {...body, plan_version: state.plan.version});
    state.busy = false;
    closeMove();
    render(plan);
    notify(done + " · plan v" + plan.version, "ok", "ok");
    setStatus("changed " + localClock(new Date(), true));
  } catch (e) {
    state.busy = false;
    if (e.code === "plan_version_conflict") {
      notify("Not changed: " + e.code + ": " + e.reason + "\nThe plan was changed meanwhile; it has been reloaded: check it and try again.",
             "error", e.code);
      await load();
    } else {
      const which = e.details && e.details.booking_id ? " (visit " + e.details.booking_id + ")" : "";
      notify("Not changed: " + (e.code ? e.code + ": " : "") + e.reason + which, "error", e.code || String(e.status || ""));
      setStatus("refused", true);
    }
  } finally {
    state.busy = false;
    document.querySelectorAll("button").forEach(b => { b.disabled = false; });
  }
}

function pin(bid, clinician, on) {
  return steer({booking_id: bid, clinician_id: clinician, pin: on}, (on ? "Pinned " : "Unpinned ") + bid + " with " + clinician);
}
function unassign(bid) { closeMove(); return steer({booking_id: bid, clinician_id: null}, "Took " + bid + " out of the routes"); }

function openMove(bid, keep) {
  const found = findVisit(bid);
  if (!found || (found.visit.locked && !keep)) { if (keep) closeMove(); return; }
  state.selected = bid;
  document.querySelectorAll("tr.stop-row").forEach(tr => tr.classList.toggle("selected", tr.dataset.booking === bid));
  const v = found.visit;
  $("move-what").textContent = bid + " · " + v.visit_type + " · " + windowText(v) +
    (found.clinician ? " · now with " + found.clinician + " #" + (found.index + 1) : " · unassigned");
  const sel = $("move-clinician"), previous = keep ? sel.value : "";
  clear(sel);
  clinicianRows(state.plan).filter(r => !r.onCalls).forEach(r => {
    const o = document.createElement("option"); o.value = r.clinician_id;
    o.textContent = clinicianLabel(r.clinician_id) + " (" + (r.role || "?") + ", " + r.stops.length + " stops)";
    sel.appendChild(o);
  });
  sel.value = previous && [...sel.options].some(o => o.value === previous) ? previous :
    (clinicianRows(state.plan).find(r => !r.onCalls && r.clinician_id !== found.clinician) || {}).clinician_id || found.clinician || "";
  fillPositions();
  if (!keep) { $("move-pin").checked = !!v.pinned; $("move-panel").hidden = false; $("move-panel").scrollIntoView({block: "nearest"}); }
}
function fillPositions() {
  const sel = $("move-position"), prev = sel.value; clear(sel);
  const route = state.plan.routes.find(r => r.clinician_id === $("move-clinician").value);
  const others = route ? route.stops.filter(s => s.booking_id !== state.selected) : [];
  const best = document.createElement("option"); best.value = ""; best.textContent = "the best place"; sel.appendChild(best);
  for (let i = 0; i <= others.length; i++) {
    const o = document.createElement("option"); o.value = String(i);
    o.textContent = "position " + (i + 1) + (i < others.length ? " · before the " + windowText(others[i]) + " visit" : " · last");
    sel.appendChild(o);
  }
  if ([...sel.options].some(o => o.value === prev)) sel.value = prev;
}
function closeMove() {
  state.selected = null; $("move-panel").hidden = true;
  document.querySelectorAll("tr.stop-row.selected").forEach(tr => tr.classList.remove("selected"));
}
function doMove() {
  const bid = state.selected; if (!bid) return;
  const clinician = $("move-clinician").value, pos = $("move-position").value, pinned = $("move-pin").checked;
  const body = {booking_id: bid, clinician_id: clinician, pin: pinned};
  if (pos !== "") body.position = Number(pos);
  return steer(body, "Moved " + bid + " to " + clinician + (pos !== "" ? " at position " + (Number(pos) + 1) : "") +
                     (pinned ? ", pinned" : ""));
}

// ---- sick leave: confirm first, then DELETE the shift; show the unkept visits, then the re-planned day.
function askSick(clinician) {
  const r = state.plan && state.plan.routes.find(x => x.clinician_id === clinician);
  const n = r ? r.stops.filter(s => !s.locked).length : 0;
  $("sick-text").textContent = "Take " + clinicianLabel(clinician) + " off " + $("date").value + "? " +
    (n ? n + " planned visit" + (n === 1 ? "" : "s") + " will be re-planned." : "No visits are planned for them.");
  $("sick-dialog").dataset.clinician = clinician;
  $("sick-dialog").showModal();
}
async function confirmSick() {
  const clinician = $("sick-dialog").dataset.clinician;
  $("sick-dialog").close();
  return changeShift(clinician, "DELETE", "", undefined, "taking " + clinician + " off the day…",
    (date, n) => clinician + " is off " + date + ": " + n, "sick_leave",
    (p) => !p.routes.some(r => r.clinician_id === clinician), "re-planned without " + clinician);
}

// ---- a late start or an early end: a panel with the shift's times (local, as the shift holds them),
// a confirm, then PUT the clinician's shift as the API answered it, with the new start and end.
const SHIFT_FIELDS = ["role", "start", "end", "start_location", "end_location", "break", "video_calls", "name"];
function openShift(clinician) {
  const sh = shiftOf(clinician); if (!sh) return;
  closeMove();
  $("shift-panel").dataset.clinician = clinician;
  $("shift-who").textContent = clinicianLabel(clinician);
  $("shift-was").textContent = "· now " + sh.start + "–" + sh.end + " on " + $("date").value;
  $("shift-start").value = sh.start; $("shift-end").value = sh.end;
  $("shift-panel").hidden = false; $("shift-panel").scrollIntoView({block: "nearest"});
}
function closeShift() { $("shift-panel").hidden = true; $("shift-panel").dataset.clinician = ""; }
// The visits of the clinician's route whose window the new hours no longer cover (locked ones stay).
function outsideHours(clinician, start, end) {
  const r = state.plan && state.plan.routes.find(x => x.clinician_id === clinician);
  const s0 = localMinutes(start), s1 = localMinutes(end);
  return r ? r.stops.filter(st => !st.locked && (localMinutes(st.window_start) < s0 || localMinutes(st.window_end) > s1)) : [];
}
function askShift() {
  const clinician = $("shift-panel").dataset.clinician, sh = shiftOf(clinician);
  const start = $("shift-start").value, end = $("shift-end").value;
  if (!clinician || !sh) return;  // the API judges the times (a 4xx, e.g. invalid_shift, is shown as it answers)
  const out = outsideHours(clinician, start, end);
  const what = start > sh.start && end < sh.end ? "a late start and an early end" : start > sh.start ? "a late start" :
               end < sh.end ? "an early end" : "a change of hours";
  $("shift-text").textContent = "Change " + clinicianLabel(clinician) + "'s shift on " + $("date").value + " from " +
    sh.start + "–" + sh.end + " to " + start + "–" + end + " (" + what + ")? " +
    (out.length ? out.length + " planned visit" + (out.length === 1 ? "" : "s") + " (" +
                  out.map(windowText).join(", ") + ") are not wholly inside the new hours: they may move to others or become unkept."
                : "Every planned visit of theirs lies inside the new hours; visits may still move or become unkept if the route no longer holds.");
  $("shift-dialog").dataset.clinician = clinician; $("shift-dialog").dataset.start = start; $("shift-dialog").dataset.end = end;
  $("shift-dialog").showModal();
}
function confirmShift() {
  const d = $("shift-dialog").dataset, clinician = d.clinician, start = d.start, end = d.end, sh = shiftOf(clinician);
  $("shift-dialog").close();
  if (!sh) return;
  const body = {};
  SHIFT_FIELDS.forEach(k => { if (sh[k] != null) body[k] = sh[k]; });
  body.start = start; body.end = end;
  closeShift();
  return changeShift(clinician, "PUT", "?override=true", body, "changing " + clinician + "'s shift to " + start + "–" + end + "…",
    (date, n) => clinician + " works " + start + "–" + end + " on " + date + ": " + n, "shift_changed",
    (p) => { const r = p.routes.find(x => x.clinician_id === clinician);
             return !r || !r.shift_start || (hhmm(localMinutes(r.shift_start)) === start && hhmm(localMinutes(r.shift_end)) === end); },
    clinician + "'s day re-planned for " + start + "–" + end);
}

// ---- a shift change (sick leave, a late start, an early end): send it, list its unkept visits at
// once (who they were with, the windows offered), then wait for the re-planned day.
async function changeShift(clinician, method, query, body, doing, said, code, replanned, replannedText) {
  const region = $("region").value, date = $("date").value;
  if (!clinician || state.busy) return;
  state.busy = true; setStatus(doing);
  const before = state.plan ? state.plan.version : 0;
  try {
    const res = await call(method, `/regions/${encodeURIComponent(region)}/clinicians/${encodeURIComponent(clinician)}/shifts/${encodeURIComponent(date)}` + query, body);
    const unkept = (res.unkept || []).map(u => ({...u, clinician_id: clinician}));
    state.shiftChange = {region, date, clinician, unkept: [...((state.shiftChange && state.shiftChange.date === date) ? state.shiftChange.unkept.filter(u => u.clinician_id !== clinician) : []), ...unkept]};
    notify(said(date, unkept.length ? unkept.length + " visit" + (unkept.length === 1 ? "" : "s") +
           " could not be kept (listed under Unkept; their patients were offered other windows)" : "every visit was kept"),
           "ok", code);
    state.busy = false;
    if (state.plan) drawUnkept(state.plan);
    await waitForReplan(before, replanned, replannedText);
  } catch (e) {
    notify("Not changed: " + (e.code ? e.code + ": " : "") + e.reason, "error", e.code || String(e.status || ""));
    setStatus("refused", true);
  } finally { state.busy = false; }
}
// The shift change re-plans the day through the queue: show the new plan as soon as it is stored.
async function waitForReplan(before, replanned, text) {
  for (let i = 0; i < 30; i++) {
    await load();
    const p = state.plan;
    if (p && p.version > before && replanned(p)) { setStatus(text); return; }
    await new Promise(ok => setTimeout(ok, 2000));
  }
  setStatus("the re-plan is still running: press Load in a moment");
}

$("load").addEventListener("click", load);
$("replan").addEventListener("click", replan);
$("region").addEventListener("change", () => { closeMove(); closeShift(); load(); });
$("date").addEventListener("change", () => { closeMove(); closeShift(); load(); });
$("notice-close").addEventListener("click", dismiss);
$("move-clinician").addEventListener("change", fillPositions);
$("move-go").addEventListener("click", doMove);
$("move-cancel").addEventListener("click", closeMove);
$("sick-cancel").addEventListener("click", () => $("sick-dialog").close());
$("sick-confirm").addEventListener("click", confirmSick);
$("shift-go").addEventListener("click", askShift);
$("shift-cancel").addEventListener("click", closeShift);
$("shift-dialog-cancel").addEventListener("click", () => $("shift-dialog").close());
$("shift-confirm").addEventListener("click", confirmShift);
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
