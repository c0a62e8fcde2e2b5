"""The dispatch function's HTTP layer in-process: roles, parameters, error shapes (domain stubbed)."""
from __future__ import annotations

import json
import sys

import pytest

from dispatch import app as app_module
from dispatch import repository, worker
from dispatch.plans import Plan


class Ctx:
    function_name = "DispatchFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-north-1:0:function:DispatchFunction"
    aws_request_id = "req-1"


def call(method, path, claims=None, body=None, query=None):
    event = {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
             "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
             "headers": {"content-type": "application/json"},
             "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                "stage": "$default", "requestId": "r", "routeKey": f"{method} {path}",
                                "accountId": "0", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                                "time": "t", "timeEpoch": 0},
             "isBase64Encoded": False}
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = json.dumps(body)
    if claims:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    out = app_module.lambda_handler(event, Ctx())
    return out["statusCode"], json.loads(out["body"]) if out["body"] and out["body"].startswith("{") else out["body"]


DISPATCHER = {"sub": "d1", "role": "dispatcher", "region": "stockholm"}
PLAN = Plan(region="stockholm", date="2026-12-01", routes=[], unassigned=[], kpis={}, computed_at="2026-11-25T12:00:00Z",
            input_version="0000000001||00000000", input_hash="h", version=3)


@pytest.fixture
def replans(monkeypatch):
    calls = []

    def fake_replan(region, day, *, time_limit_s, trigger, force):
        calls.append({"region": region, "day": day.isoformat(), "time_limit_s": time_limit_s, "trigger": trigger,
                      "force": force})
        return worker.ReplanResult(PLAN, stored=True, changed=[])

    monkeypatch.setattr(worker, "replan", fake_replan)
    return calls


def test_importing_the_app_does_not_load_ortools():
    assert "dispatch.app" in sys.modules
    import subprocess
    code = "import sys, dispatch.app; print('ortools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_optimize_without_a_body_uses_the_environments_budget(replans, monkeypatch):
    monkeypatch.setenv("OPTIMIZE_TIME_LIMIT_S", "2.5")
    from homevisits import settings
    settings.reload()
    status, body = call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER)
    assert status == 200 and body["version"] == 3 and body["stored"] is True
    assert replans == [{"region": "stockholm", "day": "2026-12-01", "time_limit_s": 2.5, "trigger": "optimize",
                        "force": True}]


def test_optimize_budget_from_body_or_query_is_honoured_up_to_the_one_maximum(replans):
    """What the API accepts the worker spends in full; above the maximum it answers 400, nothing runs."""
    from homevisits.settings import SOLVER_TIME_LIMIT_MAX_S
    call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER, body={"time_limit_s": 1})
    call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER, query={"time_limit_s": "0.5"})
    call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER,
         body={"time_limit_s": SOLVER_TIME_LIMIT_MAX_S})
    assert [c["time_limit_s"] for c in replans] == [1.0, 0.5, SOLVER_TIME_LIMIT_MAX_S]
    for over in ({"body": {"time_limit_s": SOLVER_TIME_LIMIT_MAX_S + 0.5}}, {"query": {"time_limit_s": "59"}}):
        status, body = call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER, **over)
        assert status == 400 and body["error"]["code"] == "invalid_request", body
    assert len(replans) == 3


def test_a_lost_race_is_a_conflict(monkeypatch):
    def losing(*a, **kw):
        raise repository.StalePlan("x")
    monkeypatch.setattr(worker, "replan", losing)
    status, body = call("POST", "/regions/stockholm/plans/2026-12-01/optimize", DISPATCHER)
    assert status == 409 and body["error"]["code"] == "plan_conflict"


@pytest.mark.parametrize("claims, status", [
    ({"sub": "d2", "role": "dispatcher", "region": "skane"}, 403),
    ({"sub": "c1", "role": "clinician", "region": "stockholm"}, 403),
    ({"sub": "p1", "role": "patient"}, 403),
    (None, 401)])
def test_only_the_regions_dispatcher_reads_or_optimizes_its_plans(replans, claims, status):
    assert call("GET", "/regions/stockholm/plans/2026-12-01", claims)[0] == status
    assert call("POST", "/regions/stockholm/plans/2026-12-01/optimize", claims)[0] == status
    assert replans == []


def test_no_plan_yet_is_404_no_plan(monkeypatch):
    monkeypatch.setattr(repository, "get_plan", lambda region, day: None)
    status, body = call("GET", "/regions/stockholm/plans/2026-12-01", DISPATCHER)
    assert status == 404 and body["error"]["code"] == "no_plan"


def test_bad_dates_and_unknown_regions_are_client_errors():
    assert call("GET", "/regions/stockholm/plans/2026-13-45", DISPATCHER)[0] == 400
    assert call("GET", "/regions/narnia/plans/2026-12-01", {**DISPATCHER, "region": "narnia"})[0] == 404


def test_an_unknown_event_type_is_refused_before_any_lookup(monkeypatch):
    monkeypatch.setattr(repository, "get_booking", lambda _id: pytest.fail("no lookup for a bad body"))
    status, body = call("POST", "/visits/bk-1/events", {"sub": "c1", "role": "clinician", "region": "stockholm"},
                        body={"type": "teleported"})
    assert status == 400 and body["error"]["code"] == "invalid_request"


def test_the_console_is_a_public_html_page():
    status, body = call("GET", "/console")
    assert status == 200 and body.lstrip().lower().startswith("<!doctype html")
