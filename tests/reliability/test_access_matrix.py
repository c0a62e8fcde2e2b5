"""Who may call what: every route of the HTTP API × every kind of caller, against the real gateway and
a seeded, planned region-day (`world`), as one table.

Outcomes: `ok` 2xx; `allowed` the caller passes access control (the domain may still answer
400/409/422, never 401/403/404/5xx); `deny` 403 or 404 (404 hides that someone else's booking
exists); `401` the gateway's authorizer refuses ({"message": ...}); `any` not 5xx and not 401
(the API contract leaves it open). The table is docs/security.md's access matrix."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

PURPOSES = ("main", "cancel", "event", "expiry", "waiver", "resched")  # the world's bookings (conftest)

ROLES = ("owner", "other_patient", "clinician_of_visit", "other_clinician", "dispatcher_of_region",
         "dispatcher_other_region", "no_token", "expired_token", "forged_token")
UNAUTH = ("no_token", "expired_token", "forged_token")
PATIENTS = ("owner", "other_patient")
STAFF = ("clinician_of_visit", "other_clinician", "dispatcher_of_region", "dispatcher_other_region")


def row(default: str, **cells) -> dict:
    """An expectation per role: `default` for every authenticated role not named, 401 for bad tokens."""
    out = {r: default for r in ROLES}
    out.update({r: "401" for r in UNAUTH})
    out.update(cells)
    return out


def public(outcome: str = "ok") -> dict:
    return {r: outcome for r in ROLES}


# (method, path template, body builder name or None) -> expectations
MATRIX = {
    ("GET", "/service-areas/11122"): public("ok"),
    ("GET", "/availability?postal_code=11122&date={day}&visit_type=doctor"):
        row("any", owner="ok", other_patient="ok"),
    ("POST", "/bookings"): row("deny", owner="allowed", other_patient="allowed"),
    ("GET", "/bookings"): row("deny", owner="ok", other_patient="ok"),
    ("GET", "/bookings/{main}"): row("deny", owner="ok", dispatcher_of_region="any"),
    ("POST", "/bookings/{cancel}/cancel"): row("deny", owner="ok"),
    ("POST", "/bookings/{resched}/reschedule"): row("deny", owner="allowed"),
    ("POST", "/bookings/{main}/payment"): row("deny", owner="allowed"),
    ("POST", "/bookings/{waiver}/fee-waiver"): row("deny", dispatcher_of_region="allowed"),
    ("PUT", "/regions/stockholm/clinicians/doc-matrix-2/shifts/{day}"): row("deny", dispatcher_of_region="ok"),
    # nobody has that shift: the region's dispatcher gets 404 no_shift, everyone else a denial
    ("DELETE", "/regions/stockholm/clinicians/doc-matrix-none/shifts/{day}"): row("deny", dispatcher_of_region="any"),
    ("GET", "/regions/stockholm/shifts/{day}"): row("deny", dispatcher_of_region="ok"),
    ("GET", "/regions/stockholm/plans/{day}"): row("deny", dispatcher_of_region="ok"),
    ("POST", "/regions/stockholm/plans/{day}/optimize"): row("deny", dispatcher_of_region="ok"),
    # the world's day may have no plan (404 no_plan) or another version (409): either is not a denial
    ("POST", "/regions/stockholm/plans/{day}/moves"): row("deny", dispatcher_of_region="any"),
    ("GET", "/me/route?date={day}"): row("deny", clinician_of_visit="ok", other_clinician="ok"),
    # a clinician reports their own position only (the token's sub): any clinician may
    ("POST", "/me/location"): row("deny", clinician_of_visit="ok", other_clinician="ok"),
    # dispatch lets a dispatcher of the visit's region post visit events (no-shows reported by phone)
    ("POST", "/visits/{event}/events"): row("deny", clinician_of_visit="ok", dispatcher_of_region="allowed"),
    ("GET", "/me/access-log"): row("deny", owner="ok", other_patient="ok"),
    ("POST", "/me/erasure"): row("deny", owner="ok", other_patient="ok"),
    ("POST", "/payments/webhook"): {r: 400 for r in ROLES},  # unsigned: refused whoever calls
    ("GET", "/console"): public("ok"),
    ("GET", "/clinician"): public("ok"),
    ("GET", "/console/assets/leaflet.js"): public("ok"),
    ("GET", "/openapi.json"): public("ok"),
    ("GET", "/docs"): public("ok"),
}


def _cells():
    for (method, path), expectations in MATRIX.items():
        for role in ROLES:
            yield pytest.param(method, path, role, expectations[role], id=f"{method} {path.split('?')[0]} | {role}")


def test_every_route_is_in_the_matrix():
    """The matrix covers every HTTP route of template.yaml (a new route needs a row here)."""
    from devstack import template as tpl
    concrete = [(m, p.split("?")[0].format(day="2026-12-01", **{k: "bk-1" for k in PURPOSES})) for m, p in MATRIX]
    missing = [r.route_key for r in tpl.routes()
               if not any(m == r.method and r.pattern.match(p) for m, p in concrete)]
    assert not missing, f"routes without a row in the access matrix: {missing}"


def _token(api, world, role: str) -> str | None:
    import time
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from devstack.tokens import AUDIENCE, ISSUER
    if role == "owner":
        return api.token("patient", world.owner.sub)
    if role == "other_patient":
        return api.token("patient", world.other.sub)
    if role == "clinician_of_visit":
        return api.token("clinician", world.clinician, "stockholm")
    if role == "other_clinician":
        return api.token("clinician", "doc-someone-else", "stockholm")
    if role == "dispatcher_of_region":
        return api.token("dispatcher", "disp-stockholm", "stockholm")
    if role == "dispatcher_other_region":
        return api.token("dispatcher", "disp-skane", "skane")
    if role == "expired_token":
        return api.token("patient", world.owner.sub, ttl_s=-60)
    if role == "forged_token":  # the owner's claims, signed by a key that is not the issuer's
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        return jwt.encode({"sub": world.owner.sub, "role": "patient", "iss": ISSUER, "aud": AUDIENCE,
                           "iat": now, "exp": now + 600}, key, algorithm="RS256", headers={"kid": "local-1"})
    return None


def _body(h, method: str, path: str, world) -> dict | None:
    if path == "/bookings":
        return h.booking_body(h.new_person("matrix"), world.day + timedelta(days=1), "12:00")
    if path.endswith("/cancel"):
        return {"reason": "feeling better"}
    if path.endswith("/reschedule"):
        return {"date": (world.day + timedelta(days=1)).isoformat(), "window_start": "10:00"}
    if path.endswith("/payment"):
        return {"payment_method": h.payment_method()}
    if path.endswith("/fee-waiver"):
        return {"reason": "sudden illness"}
    if "/shifts/" in path and method == "PUT":
        return h.shift_body("nurse", "10:00", "14:00")
    if path.endswith("/events"):
        return {"type": "on_the_way"}
    if path == "/me/location":
        return {"lat": 59.3326, "lon": 18.0649}
    if path.endswith("/moves"):
        return {"booking_id": "bk-matrix", "clinician_id": None, "plan_version": 1}
    if path == "/payments/webhook":
        return {"id": "evt_unsigned", "type": "payment_intent.succeeded"}
    return None


def _verdict(outcome, r) -> bool:
    s = r.status_code
    if isinstance(outcome, int):
        return s == outcome
    return {"ok": 200 <= s < 300,
            "allowed": s < 500 and s not in (401, 403, 404),
            "deny": s in (403, 404),
            "401": s == 401,
            "any": s < 500 and s != 401}[outcome]


PUBLIC = ("/service-areas/11122", "/console", "/clinician", "/console/assets/leaflet.js", "/openapi.json", "/docs", "/payments/webhook")


@pytest.mark.parametrize("method,path,role,outcome", list(_cells()))
def test_access_matrix(api, world, h, method, path, role, outcome):
    """Each caller gets exactly the access the matrix gives them on each route."""
    if role not in UNAUTH and path not in PUBLIC:
        world.need()
    ids = world.bookings if not world.error else {}
    filled = path.format(day=world.day, **{k: ids.get(k, f"bk-{uuid.uuid4().hex[:8]}") for k in PURPOSES})
    headers = {"Idempotency-Key": uuid.uuid4().hex} if path == "/bookings" else {}
    r = api.call(method, filled, _token(api, world, role), json=_body(h, method, path, world), headers=headers)
    assert _verdict(outcome, r), f"{role}: {method} {filled} -> {r.status_code} (expected {outcome}): {r.text[:300]}"
    if r.status_code == 401 and role in UNAUTH:
        assert r.json() == {"message": "Unauthorized"}
    elif 400 <= r.status_code < 500:
        err = r.json().get("error")
        assert isinstance(err, dict) and {"code", "message"} <= set(err), f"error shape: {r.text[:300]}"


def test_a_patient_lists_only_their_own_bookings(api, world):
    """GET /bookings of another patient never shows the owner's bookings."""
    world.need()
    mine = {b["id"] for b in api.get("/bookings", api.token("patient", world.owner.sub)).json()["bookings"]}
    theirs = {b["id"] for b in api.get("/bookings", api.token("patient", world.other.sub)).json()["bookings"]}
    assert world.bookings["main"] in mine and not (mine & theirs)


def test_another_clinicians_route_shows_none_of_the_visits(api, world, h):
    """A clinician not on the visit sees no stop of it, no address and no symptoms."""
    world.need()
    r = api.get(f"/me/route?date={world.day}", api.token("clinician", "doc-someone-else", "stockholm"))
    assert r.status_code == 200, r.text
    text = h.text_of(r)
    assert world.bookings["main"] not in text and world.owner.street not in text
    assert world.owner.symptoms not in text


def test_a_dispatcher_sees_no_symptoms_or_personal_numbers(api, world, h):
    """The plan view carries what routing needs, not symptoms, names or personal numbers."""
    world.need()
    r = api.get(f"/regions/stockholm/plans/{world.day}", api.token("dispatcher", "disp-stockholm", "stockholm"))
    assert r.status_code == 200, r.text
    text = h.text_of(r)
    for secret in (world.owner.symptoms, world.owner.personal_number, world.owner.personal_number.replace("-", ""),
                   world.owner.name):
        assert secret not in text
