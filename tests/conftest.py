"""Session fixtures: one real local stack (DynamoDB Local, localstripe, gateway) on free ports for
the whole run, an HTTP client for it, and tokens. Tests that touch AWS-facing code in-process get
the same environment the gateway's handlers see."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from devstack.stack import Stack

# The session's stack gets its ports now, before any test module is imported: modules that build
# AWS clients at import (Powertools idempotency does) must already see the local endpoints and
# credentials, never the real AWS defaults of the machine.
_STATE = tempfile.mkdtemp(prefix="homevisits-test-stack-")
_STACK = Stack.ephemeral(Path(_STATE))
os.environ.update(_STACK.env)


def _session_config() -> str:
    """The packaged configuration with a 45-day booking horizon: every test module can then take
    region-days nobody else in the session has touched (the stack is shared). Unit tests of the
    configuration itself load the packaged file directly."""
    import json

    import homevisits.regions as regions
    raw = json.loads((Path(regions.__file__).parent / "config" / "service.json").read_text(encoding="utf-8"))
    for region in raw["regions"].values():
        region["booking_horizon_days"] = 45
    path = Path(_STATE) / "service.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return str(path)


os.environ["HOMEVISITS_CONFIG"] = _session_config()


def _reload_settings() -> None:
    from homevisits import settings
    settings.reload()


_reload_settings()


@pytest.fixture(autouse=True)
def _settings_read_at_test_start():
    """The functions read their environment once per process (homevisits.settings): each test
    starts from the environment as it is; a test that changes it calls `settings.reload()`."""
    _reload_settings()


@pytest.fixture(scope="session")
def stack():
    _STACK.start()
    os.environ.update(_STACK.env)  # in-process repositories talk to the same DynamoDB Local / localstripe
    _reload_settings()
    try:
        yield _STACK
    finally:
        _STACK.stop()
        denied = _iam_denials(Path(_STATE) / "gateway.log")
        shutil.rmtree(_STATE, ignore_errors=True)
    # A call a function's policies refuse fails on AWS: in a queue consumer it would only be retried
    # and logged here, so every denial the local IAM logged during the session fails the run.
    assert not denied, "the local IAM denied calls the template does not allow:\n" + "\n".join(denied)


def _iam_denials(log: Path) -> list[str]:
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return sorted({line.strip() for line in lines if line.startswith("local IAM: ")})


class Api:
    """A client of the local gateway, as the apps would call it."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def token(self, role: str, sub: str | None = None, region: str | None = None, ttl_s: int = 3600) -> str:
        from devstack.tokens import issue
        return issue(role, sub or f"{role}-{uuid.uuid4().hex[:8]}", region, ttl_s)

    def call(self, method: str, path: str, token: str | None = None, json=None, headers=None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, json=json, headers=h, timeout=60, **kw)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, json=None, **kw):
        return self.call("POST", path, token, json=json, **kw)

    def put(self, path, token=None, json=None, **kw):
        return self.call("PUT", path, token, json=json, **kw)

    def delete(self, path, token=None, **kw):
        return self.call("DELETE", path, token, **kw)

    def drain(self, timeout_s: float = 120) -> dict:
        r = self.http.post(self.base + "/_local/drain", json={"timeout_s": timeout_s}, timeout=timeout_s + 10)
        assert r.status_code == 200, r.text
        return r.json()

    def today(self) -> date:
        """Today in Sweden by the stack's (possibly simulated) clock."""
        now = self.http.post(self.base + "/_local/clock", json={}, timeout=10).json()["now"]
        return datetime.fromisoformat(now.replace("Z", "+00:00")).astimezone(ZoneInfo("Europe/Stockholm")).date()

    def free_day(self, region: str, first: int, last: int = 44) -> date:
        """The first region-day `first`..`last` days ahead that nobody has touched (no shift, ledger
        version 0). The stack is shared by the whole session: another module's clinicians on a fixed
        day would take visits over, so a test that needs the region's day to itself asks for one."""
        tok = self.token("dispatcher", f"disp-{region}", region)
        today = self.today()
        for k in range(first, last + 1):
            day = today + timedelta(days=k)
            r = self.get(f"/regions/{region}/shifts/{day}", tok)
            assert r.status_code == 200, r.text
            if not r.json()["shifts"] and r.json().get("version", 0) == 0:
                return day
        raise AssertionError(f"no untouched {region} day between +{first} and +{last}")

    def invoke(self, function_id: str, event: dict | None = None) -> dict:
        r = self.http.post(f"{self.base}/_local/invoke/{function_id}", json=event or {}, timeout=300)
        assert r.status_code == 200, r.text
        return r.json()["result"]


@pytest.fixture(scope="session")
def api(stack) -> Api:
    return Api(stack.urls["api"])


@pytest.fixture
def moved_clock(api, stack):
    """Set the stack's simulated time (`move(datetime)`); the clock file as it was is put back afterwards."""
    clock_file = stack.state / "clock.json"
    saved = clock_file.read_text() if clock_file.exists() else None

    def move(to) -> None:
        r = api.http.post(api.base + "/_local/clock", json={"now": to.isoformat()}, timeout=10)
        assert r.status_code == 200, r.text
    yield move
    if saved is None:
        clock_file.unlink(missing_ok=True)
    else:
        clock_file.write_text(saved)
