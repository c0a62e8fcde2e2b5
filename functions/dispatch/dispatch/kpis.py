"""The plan's key figures for the dispatcher console (pure: routes in, numbers out).

- total_driving_minutes: the sum of every route's driving;
- utilisation: time on visits (service) / time on shift, over the clinicians on shift (0..1);
- visits_served / visits_unassigned;
- late_risk: stops whose ETA is within `late_risk_minutes` of their window's end (or after it);
- on_time_share: stops with an ETA inside their window / all visits of the plan (unassigned ones
  count as not on time), 1.0 for an empty day.
"""
from __future__ import annotations

from datetime import datetime

DEFAULT_LATE_RISK_MINUTES = 15


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def compute_kpis(routes: list[dict], unassigned: list[dict], shift_seconds: int,
                 late_risk_minutes: int = DEFAULT_LATE_RISK_MINUTES, clinicians_on_shift: int = 0) -> dict:
    """KPIs of a plan. Each stop needs `eta`, `window_start_at`, `window_end_at` (UTC ISO) and
    `service_minutes`; each route `driving_minutes`. `shift_seconds`: total shift time of the day."""
    served = late = on_time = 0
    service_s = 0
    driving = 0.0
    for r in routes:
        driving += float(r.get("driving_minutes", 0))
        for s in r.get("stops", []):
            served += 1
            service_s += int(s.get("service_minutes", 0)) * 60
            eta, start, end = _dt(s["eta"]), _dt(s["window_start_at"]), _dt(s["window_end_at"])
            if start <= eta <= end:
                on_time += 1
            if (end - eta).total_seconds() <= late_risk_minutes * 60:
                late += 1
    total = served + len(unassigned)
    return {
        "total_driving_minutes": round(driving, 1),
        "utilisation": round(service_s / shift_seconds, 3) if shift_seconds > 0 else 0.0,
        "visits_served": served,
        "visits_unassigned": len(unassigned),
        "late_risk": late,
        "late_risk_minutes": late_risk_minutes,
        "on_time_share": round(on_time / total, 3) if total else 1.0,
        "clinicians_on_shift": clinicians_on_shift,
        "routes_used": sum(1 for r in routes if r.get("stops")),
    }
