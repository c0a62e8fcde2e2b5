"""The clinician's phone page: one self-contained HTML page (inline CSS and JavaScript, no external
assets) served at GET /clinician.

The page holds no data and no secret: the clinician brings a token (signed in through the app, passed
in the URL fragment `#token=…&date=…`, which never reaches a server, then kept in sessionStorage
only), and the page calls the same HTTP API as any client: `GET /me/route?date=` for the day's stops
in order and `POST /visits/{id}/events` for the buttons. What it shows of a patient is exactly what
the route API answers for that clinician's own stops (first name, phone, address, door code,
symptoms), rendered only as text nodes; every read is audited by the API.

Per stop: the ETA and the booked window in local time, a navigation link (Apple Maps on iOS, a
`geo:` URI elsewhere, which Android hands to the installed navigation app), the door code, a call
button (`tel:`), and the event buttons that are legal in the visit's state (the state machine is the
API's: a refused move shows the API's message). A nurse visit's stop shows its video call: the
doctor's name and the slot (as now expected); a doctor on video calls sees their calendar of calls
(time, patient, nurse, booking) instead of stops.
"""
from __future__ import annotations

from functools import lru_cache

_PAGE = r"""<!doctype html>
<html lang="sv"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="no-referrer">
<meta name="theme-color" content="#10263b">
<link rel="icon" href="data:,">
<title>Home visits · my route</title>
<style>
*{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2733;background:#f4f6f8}
header{position:sticky;top:0;z-index:2;background:#10263b;color:#fff;padding:10px 14px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0;flex:1 1 auto}header input{font:inherit;font-size:15px;padding:4px 6px;border-radius:6px;border:1px solid #8aa}
#status{width:100%;font-size:13px;opacity:.9}#status.error{color:#ffb4b4;opacity:1}
main{padding:10px 12px 40px}
.summary{font-size:14px;color:#5b6b7a;margin:4px 2px 10px}
ol{list-style:none;margin:0;padding:0}
li.stop{background:#fff;border:1px solid #d9e0e6;border-left:6px solid #2f80ed;border-radius:10px;padding:12px;margin:0 0 12px}
li.stop.done{border-left-color:#2ca02c;opacity:.75}li.stop.missed{border-left-color:#d62728}
li.stop.current{box-shadow:0 0 0 3px #2f80ed55}
.top{display:flex;justify-content:space-between;align-items:baseline;gap:8px}
.num{font-weight:700;font-size:20px}.eta{font-size:22px;font-weight:700}.window{color:#5b6b7a;font-size:14px}
.who{font-size:17px;font-weight:600;margin-top:6px}.state{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6b7a}
.addr{margin-top:4px}.door{margin-top:2px;font-size:15px}.door b{font-size:18px;letter-spacing:.08em}
.symptoms{margin-top:8px;padding:8px;background:#fff8e6;border-radius:6px;font-size:15px;white-space:pre-wrap}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin-top:10px}
.actions a,.actions button{flex:1 1 40%;min-height:48px;display:flex;align-items:center;justify-content:center;font:inherit;font-weight:600;
  text-decoration:none;border-radius:8px;border:0;padding:8px;cursor:pointer}
a.nav{background:#e8f0fe;color:#174ea6}a.call{background:#e6f4ea;color:#137333}
button.event{background:#2f80ed;color:#fff}button.event.no_show{background:#fbe9e7;color:#b3261e}
button:disabled{opacity:.5;cursor:wait}.empty{padding:30px 10px;text-align:center;color:#5b6b7a}
.break{background:#eceff1;border-radius:8px;padding:8px 12px;margin:0 0 12px;font-size:14px;color:#455a64}
.late{margin-left:6px;font-size:12px;font-weight:700;color:#fff;background:#d62728;border-radius:4px;padding:1px 5px}
header label{font-size:13px;display:flex;gap:4px;align-items:center}
.vcall{margin-top:6px;padding:6px 8px;background:#eef3fd;border-radius:6px;font-size:15px}.vcall.flag{background:#fbe9e7;color:#b3261e}
#calls h2{font-size:17px;margin:4px 2px 8px}li.callslot{background:#fff;border:1px solid #d9e0e6;border-left:6px solid #7b61ff;border-radius:10px;padding:10px 12px;margin:0 0 10px}
li.callslot .when{font-size:20px;font-weight:700}li.callslot .meta{font-size:13px;color:#5b6b7a}
</style></head>
<body data-rendered="false">
<header>
  <h1>My route</h1>
  <input id="date" type="date" aria-label="date">
  <label><input id="share" type="checkbox"> share my position (live ETAs)</label>
  <span id="status" role="status">not loaded</span>
</header>
<main>
  <div id="summary" class="summary"></div>
  <section id="calls" hidden><h2>Video calls</h2><ol id="calllist"></ol></section>
  <ol id="stops"></ol>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const state = {token: "", route: null, busy: false, tz: "Europe/Stockholm"};
// The API lives where this page is served from (…/clinician -> …), stage prefix included.
const API = location.pathname.replace(/\/clinician\/?$/, "");
const LABELS = {on_the_way: "On my way", arrived: "Arrived", completed: "Completed", no_show: "Patient not there"};
// Which buttons a visit's state offers; the API decides (a refused move shows its message).
const NEXT = {confirmed: ["on_the_way", "arrived"], en_route: ["arrived", "no_show"], arrived: ["completed", "no_show"]};
const STATE_TEXT = {confirmed: "planned", en_route: "on the way", arrived: "arrived", completed: "completed",
                    no_show: "not there", missed: "missed"};

function readFragment() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (p.get("token")) { state.token = p.get("token"); sessionStorage.setItem("hv-clinician-token", state.token); }
  else { state.token = sessionStorage.getItem("hv-clinician-token") || ""; }
  $("date").value = p.get("date") || "";
  if (p.get("token")) history.replaceState(null, "", location.pathname + ($("date").value ? "#date=" + encodeURIComponent($("date").value) : ""));
}
function setStatus(text, error) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }

async function call(method, path, body) {
  const headers = {"Authorization": "Bearer " + state.token, "Accept": "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : (data && data.message) || res.statusText;
    const err = new Error(msg); err.status = res.status; throw err;
  }
  return data;
}

function node(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = String(text); return e; }
function localTime(iso) {
  if (!iso) return "–";
  if (/^\d\d:\d\d$/.test(iso)) return iso;
  return new Intl.DateTimeFormat("sv-SE", {timeZone: state.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).format(new Date(iso));
}
function navHref(a) {
  if (a.lat == null || a.lon == null) return null;
  const ll = Number(a.lat).toFixed(6) + "," + Number(a.lon).toFixed(6);
  const label = encodeURIComponent([a.street, a.city].filter(Boolean).join(", "));
  if (/iPhone|iPad|iPod/.test(navigator.userAgent)) return "https://maps.apple.com/?daddr=" + ll + "&dirflg=d";
  return "geo:" + ll + "?q=" + ll + (label ? "(" + label + ")" : "");
}

function slotText(vc) {
  const start = vc.expected_start || vc.start, end = vc.expected_end || vc.end;
  const moved = vc.expected_start && vc.expected_start !== vc.start;
  return localTime(start) + "–" + localTime(end) + (moved ? " (planned " + localTime(vc.start) + ")" : "");
}
function renderCalls(route) {
  const calls = route.video_calls, box = $("calls"), list = $("calllist");
  while (list.firstChild) list.removeChild(list.firstChild);
  box.hidden = !calls;
  if (!calls) return;
  if (!calls.length) list.appendChild(node("li", "empty", "No video calls planned for this day."));
  calls.forEach(c => {
    const li = node("li", "callslot"); li.dataset.booking = c.booking_id;
    li.appendChild(node("div", "when", slotText(c)));
    const p = c.patient || {};
    li.appendChild(node("div", "who", (p.name || "Patient") + (p.is_child ? " (child)" : "")));
    li.appendChild(node("div", "meta", "with nurse " + (c.nurse_name || c.nurse_id) + " · booking " + c.booking_id));
    list.appendChild(li);
  });
}

function render(route) {
  const list = $("stops"); while (list.firstChild) list.removeChild(list.firstChild);
  renderCalls(route);
  const stops = route.stops || [];
  const open = stops.filter(s => !["completed", "no_show", "missed"].includes(s.status));
  $("summary").textContent = stops.length
    ? stops.length + " visits · " + open.length + " left" + (route.shift_start ? " · shift " + localTime(route.shift_start) + "–" + localTime(route.shift_end) : "")
    : "";
  if (!stops.length && !route.video_calls) { list.appendChild(node("li", "empty", "No visits planned for this day.")); }
  const current = open.length ? open[0].booking_id : null;
  const breaks = (route.breaks || []).slice();
  stops.forEach((s, i) => {
    while (breaks.length && s.eta && breaks[0].start && new Date(breaks[0].start) <= new Date(s.eta)) {
      const b = breaks.shift(); list.appendChild(node("li", "break", "Break " + localTime(b.start) + "–" + localTime(b.end)));
    }
    const li = node("li", "stop" + (["completed"].includes(s.status) ? " done" : "") +
                          (["no_show", "missed"].includes(s.status) ? " missed" : "") + (s.booking_id === current ? " current" : ""));
    li.dataset.booking = s.booking_id; li.dataset.status = s.status;
    const top = node("div", "top");
    top.appendChild(node("span", "num", "#" + (i + 1)));
    const when = node("span"); when.appendChild(node("span", "eta", s.eta_local || localTime(s.eta)));
    if (s.late && !["arrived", "done"].includes(s.eta_state)) when.appendChild(node("span", "late", "after window"));
    when.appendChild(node("span", "window", "  window " + s.window_start + "–" + s.window_end)); top.appendChild(when);
    li.appendChild(top);
    li.appendChild(node("div", "state", (s.visit_type || "") + " · " + (STATE_TEXT[s.status] || s.status)));
    const p = s.patient || {};
    li.appendChild(node("div", "who", (p.first_name || "Patient") + (p.is_child ? " (child)" : "")));
    const a = s.address || {};
    li.appendChild(node("div", "addr", [a.street, [a.postal_code, a.city].filter(Boolean).join(" ")].filter(Boolean).join(", ")));
    if (a.door_code) { const d = node("div", "door", "Door code "); d.appendChild(node("b", "door-code", a.door_code)); li.appendChild(d); }
    if (s.symptoms) li.appendChild(node("div", "symptoms", s.symptoms));
    const vc = s.video_call;
    if (vc) li.appendChild(vc.flag ? node("div", "vcall flag", "Video call " + slotText(vc) + ": no doctor free, call dispatch")
                                   : node("div", "vcall", "Video call " + slotText(vc) + (vc.doctor_name ? " with " + vc.doctor_name : "")));
    const actions = node("div", "actions");
    const href = navHref(a);
    if (href) { const n = node("a", "nav", "Navigate"); n.href = href; n.rel = "noreferrer"; actions.appendChild(n); }
    if (p.phone) { const c = node("a", "call", "Call"); c.href = "tel:" + p.phone; actions.appendChild(c); }
    (NEXT[s.status] || []).forEach(type => {
      const b = node("button", "event " + type, LABELS[type]); b.type = "button"; b.dataset.event = type;
      b.addEventListener("click", () => postEvent(s.booking_id, type, b));
      actions.appendChild(b);
    });
    li.appendChild(actions);
    list.appendChild(li);
  });
  document.body.dataset.rendered = "true";
}

async function load() {
  if (!state.token) { setStatus("sign in through the app to see your route", true); return; }
  setStatus("loading…");
  try {
    const q = $("date").value ? "?date=" + encodeURIComponent($("date").value) : "";
    const route = await call("GET", "/me/route" + q);
    state.route = route;
    if (!$("date").value && route.date) $("date").value = route.date;
    render(route);
    setStatus("updated " + new Date().toLocaleTimeString("sv-SE", {hour: "2-digit", minute: "2-digit"}));
  } catch (e) {
    setStatus(e.status === 401 || e.status === 403 ? "not signed in as a clinician" : "error: " + e.message, true);
    document.body.dataset.rendered = "error";
  }
}

async function postEvent(bookingId, type, button) {
  if (state.busy) return;
  if (type === "no_show" && !confirm("Mark the patient as not there? The no-show fee may be charged.")) return;
  state.busy = true; button.disabled = true; setStatus("sending…");
  try {
    await call("POST", "/visits/" + encodeURIComponent(bookingId) + "/events", {type});
    await load();
  } catch (e) {
    setStatus("error: " + e.message, true);
  } finally { state.busy = false; button.disabled = false; }
}

// Position sharing is the clinician's choice (off until ticked, for this tab only): while on, the
// phone's position goes to POST /me/location at most once a minute and the route's ETAs follow it.
const SHARE_EVERY_MS = 60000;
let watch = null, lastSent = 0;
async function sendPosition(pos) {
  if (Date.now() - lastSent < SHARE_EVERY_MS || state.busy) return;
  lastSent = Date.now();
  try {
    await call("POST", "/me/location", {lat: pos.coords.latitude, lon: pos.coords.longitude,
                                        at: new Date(pos.timestamp || Date.now()).toISOString()});
    await load();
  } catch (e) { setStatus("position not sent: " + e.message, true); }
}
function setSharing(on) {
  sessionStorage.setItem("hv-clinician-share", on ? "1" : "");
  if (watch != null) { navigator.geolocation.clearWatch(watch); watch = null; }
  if (on && navigator.geolocation) {
    lastSent = 0;
    watch = navigator.geolocation.watchPosition(sendPosition, (e) => setStatus("no position: " + e.message, true),
                                                {enableHighAccuracy: true, maximumAge: 30000});
  }
}

readFragment();
$("date").addEventListener("change", load);
$("share").checked = !!sessionStorage.getItem("hv-clinician-share");
$("share").addEventListener("change", () => setSharing($("share").checked));
setSharing($("share").checked);
load();
setInterval(() => { if (!document.hidden && !state.busy) load(); }, 60000);
</script>
</body></html>
"""


@lru_cache(maxsize=1)
def clinician_html() -> str:
    return _PAGE
