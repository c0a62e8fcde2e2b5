"""The plan's key figures for the dispatcher console (pure: routes in, numbers out).

- total_driving_minutes: the sum of every route's driving;
- utilisation: time on visits (service) / time on shift, over the clinicians on shift (0..1);
- visits_served / visits_unassigned;
- late_risk: stops not reached yet whose ETA is within `late_risk_minutes` of their window's end
  (or after it);
- on_time_share: stops on time / all visits of the plan (unassigned ones count as not on time),
  1.0 for an empty day. A stop the clinician reached counts by its actual arrival (the `arrived`
  event's time, shown as its ETA with `eta_state` arrived or done), any other by its live ETA;
- arrivals / arrivals_on_time: the visits reached so far, and those reached inside their window.
"""
from __future__ import annotations

from datetime import datetime

DEFAULT_LATE_RISK_MINUTES = 15


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def timeliness(routes: list[dict], unassigned: list[dict], late_risk_minutes: int = DEFAULT_LATE_RISK_MINUTES) -> dict:
    """The on-time figures of a plan's stops (each with `eta`, `window_start_at`, `window_end_at`
    and, once live, `eta_state`): on_time_share, late_risk, arrivals, arrivals_on_time."""
    served = late = on_time = arrivals = arrivals_on_time = 0
    for r in routes:
        for s in r.get("stops", []):
            served += 1
            eta, start, end = _dt(s["eta"]), _dt(s["window_start_at"]), _dt(s["window_end_at"])
            inside = start <= eta <= end
            on_time += inside
            if s.get("eta_state") in ("arrived", "done"):
                arrivals += 1
                arrivals_on_time += inside
            elif (end - eta).total_seconds() <= late_risk_minutes * 60:
                late += 1
    total = served + len(unassigned)
    return {"late_risk": late, "late_risk_minutes": late_risk_minutes,
            "on_time_share": round(on_time / total, 3) if total else 1.0,
            "arrivals": arrivals, "arrivals_on_time": arrivals_on_time}


def compute_kpis(routes: list[dict], unassigned: list[dict], shift_seconds: int,
                 late_risk_minutes: int = DEFAULT_LATE_RISK_MINUTES, clinicians_on_shift: int = 0) -> dict:
    """KPIs of a plan. Each stop needs `eta`, `window_start_at`, `window_end_at` (UTC ISO) and
    `service_minutes`; each route `driving_minutes`. `shift_seconds`: total shift time of the day."""
    served = sum(len(r.get("stops", [])) for r in routes)
    service_s = sum(int(s.get("service_minutes", 0)) * 60 for r in routes for s in r.get("stops", []))
    driving = sum(float(r.get("driving_minutes", 0)) for r in routes)
    return {
        "total_driving_minutes": round(driving, 1),
        "utilisation": round(service_s / shift_seconds, 3) if shift_seconds > 0 else 0.0,
        "visits_served": served,
        "visits_unassigned": len(unassigned),
        **timeliness(routes, unassigned, late_risk_minutes),
        "clinicians_on_shift": clinicians_on_shift,
        "routes_used": sum(1 for r in routes if r.get("stops")),
    }
