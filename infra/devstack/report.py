"""The simulated day's HTML report: one self-contained page (inline CSS and SVG, no external assets).

`render_report(summary) -> str` takes the plain summary the demo collects (see `devstack.demo`):
per region its KPIs, money, the clinicians' routes (stops with coordinates, windows, ETAs and what
happened) and unassigned visits; the dispatchers' actions of the morning (`dispatcher_actions`: a
sick leave, a move, a pin; per action what was done, its checks, the affected clinicians' routes
before and after, the SMS it caused, the unkept visits); plus the SMS outbox and the checks. Routes are drawn
on the plane of coordinates (longitude scaled by cos(latitude), so distances look right), and each
clinician gets a timeline of the opening hours with the booked windows and the ETAs.
"""
from __future__ import annotations

import math
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
STATUS_COLORS = {"completed": "#2ca02c", "no_show": "#d62728", "cancelled": "#999999", "confirmed": "#1f77b4",
                 "en_route": "#ff7f0e", "arrived": "#9467bd"}


def sek(minor: int | float | None, currency: str = "SEK") -> str:
    """Minor units as '1 234 kr' (SEK/NOK) or '12.50 EUR'."""
    value = (minor or 0) / 100
    whole = f"{value:,.0f}".replace(",", "\u202f") if value == int(value) else f"{value:,.2f}".replace(",", "\u202f")
    return f"{whole} kr" if currency in ("SEK", "NOK") else f"{whole} {currency}"


def _hours(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _local_minutes(iso: str | None, tz: ZoneInfo) -> float | None:
    """Minutes after local midnight of a UTC ISO instant, or of an 'HH:MM' local time."""
    if not iso:
        return None
    if len(iso) <= 5 and ":" in iso:
        h, m = iso.split(":")
        return int(h) * 60 + int(m)
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(tz)
    except ValueError:
        return None
    return t.hour * 60 + t.minute + t.second / 60


def _hhmm(iso: str | None, tz: ZoneInfo) -> str:
    m = _local_minutes(iso, tz)
    return "–" if m is None else f"{int(m) // 60:02d}:{int(m) % 60:02d}"


class Projection:
    """lat/lon -> SVG x/y inside a box, same scale on both axes (equirectangular at the mean latitude)."""

    def __init__(self, points: list[tuple[float, float]], width: int, height: int, pad: int = 24):
        pts = points or [(59.33, 18.06)]
        lat0 = sum(p[0] for p in pts) / len(pts)
        self.k = math.cos(math.radians(lat0))
        xs = [p[1] * self.k for p in pts]
        ys = [p[0] for p in pts]
        self.x0, self.x1 = min(xs), max(xs)
        self.y0, self.y1 = min(ys), max(ys)
        span = max(self.x1 - self.x0, self.y1 - self.y0, 0.01)
        self.scale = min((width - 2 * pad) / span, (height - 2 * pad) / span)
        self.ox = pad + ((width - 2 * pad) - (self.x1 - self.x0) * self.scale) / 2
        self.oy = pad + ((height - 2 * pad) - (self.y1 - self.y0) * self.scale) / 2
        self.width, self.height = width, height

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        x = self.ox + (lon * self.k - self.x0) * self.scale
        y = self.oy + (self.y1 - lat) * self.scale
        return round(x, 1), round(y, 1)

    def grid(self, step_deg: float = 0.05, lon_step_deg: float | None = None) -> str:
        """Grid lines every `step_deg` of latitude and `lon_step_deg` of longitude, labelled."""
        out = []
        lon_step = lon_step_deg or step_deg
        lat_lo, lat_hi = self.y0 - 1, self.y1 + 1
        lon_lo, lon_hi = self.x0 / self.k - 1, self.x1 / self.k + 1
        lat = math.floor(lat_lo / step_deg) * step_deg
        while lat <= lat_hi:
            _, y = self(lat, lon_lo)
            if 0 <= y <= self.height:
                out.append(f'<line x1="0" y1="{y}" x2="{self.width}" y2="{y}" class="grid"/>'
                           f'<text x="2" y="{y - 2}" class="gl">{lat:.2f}°N</text>')
            lat += step_deg
        lon = math.floor(lon_lo / lon_step) * lon_step
        while lon <= lon_hi:
            x, _ = self(lat_lo, lon)
            if 0 <= x <= self.width:
                out.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{self.height}" class="grid"/>'
                           f'<text x="{x + 2}" y="{self.height - 3}" class="gl">{lon:.2f}°E</text>')
            lon += lon_step
        return "".join(out)


def routes_svg(region: dict, width: int = 560, height: int = 420) -> str:
    """The region's routes as polylines from each clinician's start through the stops, on a grid."""
    clinicians = region.get("clinicians") or []
    points = []
    for c in clinicians:
        if c.get("start"):
            points.append((c["start"]["lat"], c["start"]["lon"]))
        points += [(s["lat"], s["lon"]) for s in c.get("stops", []) if s.get("lat") is not None]
    points += [(u["lat"], u["lon"]) for u in region.get("unassigned", []) if u.get("lat") is not None]
    proj = Projection(points, width, height)
    span = max(proj.x1 - proj.x0, proj.y1 - proj.y0)
    nice = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    step = next((s for s in nice if span / s <= 8), 2.0)
    lon_step = next((s for s in nice if span / proj.k / s <= 8), 2.0)  # a degree of longitude is shorter
    parts = [f'<svg class="map" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="routes of {escape(region.get("name", ""))}">',
             f'<rect width="{width}" height="{height}" class="bg"/>', proj.grid(step, lon_step)]
    for i, c in enumerate(clinicians):
        color = COLORS[i % len(COLORS)]
        path = []
        if c.get("start"):
            path.append(proj(c["start"]["lat"], c["start"]["lon"]))
        path += [proj(s["lat"], s["lon"]) for s in c.get("stops", []) if s.get("lat") is not None]
        if c.get("start") and c.get("stops"):
            path.append(proj((c.get("end") or c["start"])["lat"], (c.get("end") or c["start"])["lon"]))
        if len(path) >= 2:
            d = "M" + " L".join(f"{x},{y}" for x, y in path)
            parts.append(f'<path d="{d}" class="route" stroke="{color}"><title>{escape(c["id"])}</title></path>')
        if c.get("start"):
            x, y = proj(c["start"]["lat"], c["start"]["lon"])
            parts.append(f'<rect x="{x - 5}" y="{y - 5}" width="10" height="10" fill="{color}" class="depot">'
                         f'<title>{escape(c["id"])} start</title></rect>')
        for n, s in enumerate(c.get("stops", []), 1):
            if s.get("lat") is None:
                continue
            x, y = proj(s["lat"], s["lon"])
            fill = STATUS_COLORS.get(s.get("status", ""), color)
            parts.append(f'<circle cx="{x}" cy="{y}" r="6" fill="{fill}" stroke="{color}" stroke-width="2">'
                         f'<title>{escape(c["id"])} #{n} {escape(s.get("status", ""))}</title></circle>'
                         f'<text x="{x + 7}" y="{y - 6}" class="sl">{n}</text>')
    for u in region.get("unassigned", []):
        if u.get("lat") is None:
            continue
        x, y = proj(u["lat"], u["lon"])
        parts.append(f'<path d="M{x - 5},{y - 5} L{x + 5},{y + 5} M{x - 5},{y + 5} L{x + 5},{y - 5}" '
                     f'class="unassigned"><title>unassigned</title></path>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(region: dict, width: int = 900) -> str:
    """One row per clinician over the opening hours: shift, booked windows (light), ETAs (ticks)."""
    tz = ZoneInfo(region.get("time_zone", "Europe/Stockholm"))
    open_m, close_m = 7 * 60, 21 * 60
    label_w, row_h = 130, 34
    clinicians = region.get("clinicians") or []
    height = 22 + row_h * max(1, len(clinicians))

    def x(minutes: float) -> float:
        return round(label_w + (minutes - open_m) / (close_m - open_m) * (width - label_w - 10), 1)

    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for h in range(open_m // 60, close_m // 60 + 1):
        parts.append(f'<line x1="{x(h * 60)}" y1="14" x2="{x(h * 60)}" y2="{height}" class="grid"/>'
                     f'<text x="{x(h * 60) - 8}" y="11" class="gl">{h:02d}</text>')
    for i, c in enumerate(clinicians):
        y = 18 + i * row_h
        color = COLORS[i % len(COLORS)]
        parts.append(f'<text x="4" y="{y + 18}" class="cl">{escape(c["id"])} ({escape(c.get("role", ""))})</text>')
        s0, s1 = _local_minutes(c.get("shift_start"), tz), _local_minutes(c.get("shift_end"), tz)
        if s0 is not None and s1 is not None:
            parts.append(f'<rect x="{x(s0)}" y="{y + 2}" width="{max(0, x(s1) - x(s0))}" height="{row_h - 6}" '
                         f'class="shift"/>')
        for n, s in enumerate(c.get("stops", []), 1):
            w0, w1 = _local_minutes(s.get("window_start"), tz), _local_minutes(s.get("window_end"), tz)
            if w0 is not None and w1 is not None:
                parts.append(f'<rect x="{x(w0)}" y="{y + 6}" width="{max(0, x(w1) - x(w0))}" height="{row_h - 14}" '
                             f'fill="{color}" class="window"/>')
            eta = _local_minutes(s.get("eta"), tz)
            if eta is not None:
                dur = (s.get("service_s") or 0) / 60
                fill = STATUS_COLORS.get(s.get("status", ""), color)
                parts.append(f'<rect x="{x(eta)}" y="{y + 4}" width="{max(2, x(eta + dur) - x(eta))}" '
                             f'height="{row_h - 10}" fill="{fill}" class="visit">'
                             f'<title>#{n} ETA {_hhmm(s.get("eta"), tz)} window {_hhmm(s.get("window_start"), tz)}'
                             f'–{_hhmm(s.get("window_end"), tz)} {escape(s.get("status", ""))}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#123;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
main{padding:12px 24px}section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:14px 0;padding:12px 16px}
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.flex{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
.bg{fill:#f7f9fb}.grid{stroke:#e1e6ea;stroke-width:1}.gl{font-size:9px;fill:#8a97a3}.sl{font-size:10px;fill:#333}
.route{fill:none;stroke-width:2.5;stroke-opacity:.85}.unassigned{stroke:#d62728;stroke-width:2.5}
.cl{font-size:12px}.shift{fill:#eef3f7;stroke:#cdd8e1}.window{fill-opacity:.18}.visit{fill-opacity:.95}
.ok{color:#2ca02c;font-weight:600}.bad{color:#d62728;font-weight:600}
.kpi{display:inline-block;margin:4px 18px 4px 0}.kpi b{display:block;font-size:18px}
.before{fill:none;stroke-width:2;stroke-dasharray:5 4}.after{fill:none;stroke-width:2.5}
.hot{fill:none;stroke:#d62728;stroke-width:2.5}li.hot{font-weight:600;color:#b31b1b}
.legend{font-size:12px;color:#666}table.routes ol{margin:0;padding-left:20px}
"""


def _region_section(r: dict) -> str:
    cur = r.get("currency", "SEK")
    m = r.get("money", {})
    kpis = [("bookings", r.get("bookings", 0)), ("served", r.get("served", 0)),
            ("no-show", r.get("no_show", 0)), ("cancelled", r.get("cancelled", 0)),
            ("unassigned", len(r.get("unassigned", []))), ("driving", _hours(r.get("driving_s"))),
            ("on time", f"{round(100 * (r.get('on_time_share') or 0))} %"),
            ("held", sek(m.get("held"), cur)), ("captured", sek(m.get("captured"), cur)),
            ("released", sek(m.get("released"), cur)), ("fees", sek(m.get("fees"), cur))]
    kpi_html = "".join(f'<span class="kpi">{escape(k)}<b>{escape(str(v))}</b></span>' for k, v in kpis)
    tz = ZoneInfo(r.get("time_zone", "Europe/Stockholm"))
    rows = []
    for c in r.get("clinicians", []):
        for n, s in enumerate(c.get("stops", []), 1):
            rows.append(f"<tr><td>{escape(c['id'])}</td><td class=n>{n}</td><td>{escape(s.get('visit_type', ''))}</td>"
                        f"<td>{_hhmm(s.get('window_start'), tz)}–{_hhmm(s.get('window_end'), tz)}</td>"
                        f"<td>{_hhmm(s.get('eta'), tz)}</td><td>{escape(s.get('status', ''))}</td></tr>")
    table = ("<table><tr><th>clinician</th><th>#</th><th>type</th><th>window</th><th>ETA</th><th>outcome</th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>No routes.</p>"
    return (f'<section class="region" id="{escape(r.get("id", ""))}"><h2>{escape(r.get("name", r.get("id", "")))}</h2>'
            f"<div>{kpi_html}</div><div class=flex><div>{routes_svg(r)}</div>"
            f"<div><h3>Timeline</h3>{timeline_svg(r, 620)}</div></div>"
            f"<details><summary>Stops</summary>{table}</details></section>")


def _live_section(live: dict | None) -> str:
    """The clinician who started late: per visit the morning plan's ETA, the live ETA the patient
    was shown when they set off and after a position on the way, and the actual arrival."""
    if not live or not live.get("stops"):
        return ""
    tz = ZoneInfo("Europe/Stockholm")
    rows = "".join(
        f"<tr><td>{_hhmm(s.get('window_start'), tz)}–{_hhmm(s.get('window_end'), tz)}</td>"
        f"<td>{_hhmm(s.get('morning_eta'), tz)}</td><td>{_hhmm(s.get('set_off'), tz)}</td>"
        f"<td>{_hhmm(s.get('eta_at_set_off'), tz)}</td><td>{_hhmm(s.get('eta_after_position'), tz)}</td>"
        f"<td>{_hhmm(s.get('arrived'), tz)}</td></tr>" for s in live["stops"])
    err = live.get("mean_error_minutes") or {}
    return (f"<section><h2>Live ETAs: {escape(str(live.get('clinician')))} set off "
            f"{escape(str(live.get('late_minutes')))} minutes late</h2>"
            f"<p>Mean distance to the actual arrival: live ETA at set-off {escape(str(err.get('live')))} min, "
            f"morning plan {escape(str(err.get('morning_plan')))} min.</p>"
            "<table><tr><th>window</th><th>morning plan ETA</th><th>set off</th><th>live ETA shown</th>"
            f"<th>after a position</th><th>arrived</th></tr>{rows}</table></section>")


def before_after_svg(action: dict, width: int = 420, height: int = 300) -> str:
    """The affected clinicians' routes before (dashed, grey) and after (solid, in their colour) the
    action, from each clinician's start; the visits the action is about are ringed."""
    routes = action.get("routes") or []
    points = [(r["start"]["lat"], r["start"]["lon"]) for r in routes if r.get("start")]
    points += [(s["lat"], s["lon"]) for r in routes for k in ("before", "after") for s in r.get(k, [])
               if s.get("lat") is not None]
    if not points:
        return ""
    proj = Projection(points, width, height)
    hot = set(action.get("highlight") or [])
    parts = [f'<svg class="map" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="routes before and after">', f'<rect width="{width}" height="{height}" class="bg"/>']
    for i, r in enumerate(routes):
        color = COLORS[i % len(COLORS)]
        start = [proj(r["start"]["lat"], r["start"]["lon"])] if r.get("start") else []
        for k, cls in (("before", "before"), ("after", "after")):
            pts = start + [proj(s["lat"], s["lon"]) for s in r.get(k, []) if s.get("lat") is not None]
            if len(pts) >= 2:
                d = "M" + " L".join(f"{x},{y}" for x, y in pts + start[:1])
                parts.append(f'<path d="{d}" class="{cls}" stroke="{color if k == "after" else "#888"}">'
                             f'<title>{escape(r["clinician_id"])} {k}</title></path>')
        if start:
            x, y = start[0]
            parts.append(f'<rect x="{x - 5}" y="{y - 5}" width="10" height="10" fill="{color}">'
                         f'<title>{escape(r["clinician_id"])} start</title></rect>')
        for n, s in enumerate(r.get("after", []), 1):
            if s.get("lat") is None:
                continue
            x, y = proj(s["lat"], s["lon"])
            parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{color}"><title>{escape(r["clinician_id"])} '
                         f'#{n}</title></circle><text x="{x + 6}" y="{y - 5}" class="sl">{n}</text>')
    for r in routes:
        for s in r.get("before", []) + r.get("after", []):
            if s["booking_id"] in hot and s.get("lat") is not None:
                x, y = proj(s["lat"], s["lon"])
                parts.append(f'<circle cx="{x}" cy="{y}" r="9" class="hot"/>')
    parts.append("</svg>")
    return "".join(parts)


def _stop_list(stops: list[dict], hot: set) -> str:
    if not stops:
        return "<i>no stops</i>"
    items = "".join(
        f"<li{' class=hot' if s['booking_id'] in hot else ''}>{escape(str(s.get('window_start') or ''))}–"
        f"{escape(str(s.get('window_end') or ''))} {escape(str(s.get('visit_type') or ''))} "
        f"ETA {escape(str(s.get('eta_local') or '–'))}{' <b>pinned</b>' if s.get('pinned') else ''}"
        f"{' <b>urgent</b>' if s.get('priority') == 'urgent' else ''}{' (after window)' if s.get('late') else ''}"
        f" <small>…{escape(s['booking_id'][-6:])}</small></li>" for s in stops)
    return f"<ol>{items}</ol>"


def _offered(offered: list[dict]) -> str:
    return ", ".join(f"{o.get('date')} {o.get('window_start')}–{o.get('window_end')}" for o in offered)


def _action_section(a: dict) -> str:
    """One dispatcher action: what was done, its checks, the affected routes before and after, the
    SMS it caused, the visits it could not keep and the plan's unassigned visits."""
    hot = set(a.get("highlight") or [])
    done = "".join(f"<li>{escape(str(x))}</li>" for x in a.get("done", []))
    checks = "".join(f"<li class={'ok' if c.get('ok') else 'bad'}>{'✔' if c.get('ok') else '✘'} "
                     f"{escape(c.get('name', ''))}{'' if c.get('ok') else ': ' + escape(str(c.get('detail', '')))}</li>"
                     for c in a.get("checks", []))
    routes = "".join(f"<tr><td>{escape(r['clinician_id'])} ({escape(str(r.get('role') or ''))})</td>"
                     f"<td>{_stop_list(r.get('before', []), hot)}</td><td>{_stop_list(r.get('after', []), hot)}</td></tr>"
                     for r in a.get("routes", []))
    keys = " ".join(f'<span style="color:{COLORS[i % len(COLORS)]}">■</span> {escape(r["clinician_id"])}'
                    for i, r in enumerate(a.get("routes", [])))
    tz = ZoneInfo("Europe/Stockholm")
    sms = "".join(f"<tr><td>{_hhmm(m.get('at'), tz)}</td><td>{escape(m.get('recipient', ''))}</td>"
                  f"<td>{escape(m.get('kind', ''))}</td><td>{escape(m.get('text', ''))}</td></tr>"
                  for m in a.get("sms", []))
    unkept = "".join(
        f"<tr><td>…{escape(u['booking_id'][-6:])}</td><td>{escape(str(u.get('visit_type') or ''))}</td>"
        f"<td>{escape(str(u.get('window_start') or ''))}</td><td>{escape(str(u.get('priority') or ''))}</td>"
        f"<td>{escape(str(u.get('reason') or ''))}</td>"
        f"<td>{escape(_offered(u.get('offered', [])))}</td>"
        f"<td>{escape(str(u.get('rescheduled_to') or '–'))}</td><td>{escape(str(u.get('final_status') or ''))}</td></tr>"
        for u in a.get("unkept", []))
    unassigned = "".join(f"<tr><td>…{escape(u['booking_id'][-6:])}</td><td>{escape(str(u.get('visit_type') or ''))}</td>"
                         f"<td>{escape(str(u.get('window_start') or ''))}–{escape(str(u.get('window_end') or ''))}</td>"
                         f"<td>{escape(str(u.get('reason') or ''))}</td></tr>" for u in a.get("unassigned", []))
    return (f'<section class="action" id="action-{escape(a.get("id", ""))}">'
            f'<h2>{escape(a.get("region_name") or a.get("region", ""))}, {_hhmm(a.get("at"), tz)}: '
            f'{escape(a.get("title", ""))}</h2><h3>What was done</h3><ol class="done">{done}</ol>'
            f'<ul class="checks">{checks}</ul>'
            f'<div class=flex><div>{before_after_svg(a)}<div class="legend">{keys}<br>dashed grey: before · '
            f'solid: after · ringed: the visits the action is about</div></div>'
            f'<div><h3>Routes of the affected clinicians</h3><table class="routes"><tr><th>clinician</th><th>before</th>'
            f'<th>after</th></tr>{routes}</table></div></div>'
            + (f'<h3>Unkept visits</h3><table class="unkept"><tr><th>visit</th><th>type</th><th>window</th><th>priority</th>'
               f'<th>reason</th><th>offered windows</th><th>taken</th><th>at the end of the day</th></tr>{unkept}</table>'
               if unkept else "")
            + (f'<h3>Unassigned in the plan after</h3><table class="unassigned"><tr><th>visit</th><th>type</th>'
               f'<th>window</th><th>reason</th></tr>{unassigned}</table>' if unassigned else "")
            + f'<h3>SMS it caused ({len(a.get("sms", []))})</h3>'
            + (f'<table class="sms"><tr><th>at</th><th>to</th><th>kind</th><th>text</th></tr>{sms}</table>'
               if sms else "<p>none</p>")
            + "</section>")


def render_report(summary: dict) -> str:
    """The whole report as one HTML string (no external assets, no scripts)."""
    regions = summary.get("regions", [])
    checks = summary.get("checks", [])
    totals = "".join(
        f"<tr><td>{escape(r.get('name', r.get('id', '')))}</td><td class=n>{r.get('bookings', 0)}</td>"
        f"<td class=n>{r.get('served', 0)}</td><td class=n>{_hours(r.get('driving_s'))}</td>"
        f"<td class=n>{round(100 * (r.get('on_time_share') or 0))} %</td>"
        f"<td class=n>{sek(r.get('money', {}).get('held'), r.get('currency', 'SEK'))}</td>"
        f"<td class=n>{sek(r.get('money', {}).get('captured'), r.get('currency', 'SEK'))}</td>"
        f"<td class=n>{sek(r.get('money', {}).get('released'), r.get('currency', 'SEK'))}</td>"
        f"<td class=n>{sek(r.get('money', {}).get('fees'), r.get('currency', 'SEK'))}</td></tr>" for r in regions)
    check_rows = "".join(
        f"<tr><td class={'ok' if c.get('ok') else 'bad'}>{'✔' if c.get('ok') else '✘'}</td>"
        f"<td>{escape(c.get('name', ''))}</td><td>{escape(str(c.get('detail', '')))}</td></tr>" for c in checks)
    sms_rows = "".join(
        f"<tr><td>{escape(s.get('recipient', ''))}</td><td>{escape(s.get('kind', ''))}</td>"
        f"<td>{escape(s.get('status', ''))}</td><td>{escape(s.get('text', ''))}</td></tr>"
        for s in summary.get("sms", []))
    ok = all(c.get("ok") for c in checks) if checks else False
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Home visits: simulated day {escape(summary.get('date', ''))}</title>
<style>{CSS}</style></head><body>
<header><h1>Home visits — simulated day {escape(summary.get('date', ''))}</h1>
<div>generated {escape(summary.get('generated_at', ''))} · ran {escape(str(summary.get('duration_s', '')))} s ·
<span class="{'ok' if ok else 'bad'}">{'the day worked' if ok else 'some checks failed'}</span></div></header>
<main>
<section><h2>Summary</h2><table><tr><th>region</th><th>bookings</th><th>served</th><th>driving</th><th>on time</th>
<th>held</th><th>captured</th><th>released</th><th>fees</th></tr>{totals}</table>
<h3>Checks</h3><table>{check_rows}</table></section>
{''.join(_region_section(r) for r in regions)}
{''.join(_action_section(a) for a in summary.get("dispatcher_actions") or [])}
{_live_section(summary.get("live_etas"))}
<section><h2>SMS outbox ({len(summary.get('sms', []))})</h2>
<table><tr><th>to</th><th>kind</th><th>status</th><th>text</th></tr>{sms_rows}</table></section>
</main></body></html>"""
