"""The OpenAPI document served at /openapi.json describes every route of the template, and the copy
shipped with the docs function is the one the code generates (run `make openapi` after a change)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from devstack import template as tpl
from devstack.openapi import document

SHIPPED = Path(__file__).resolve().parents[2] / "functions" / "docs" / "apidocs" / "openapi.json"
DOCS_ROUTES = {("get", "/openapi.json"), ("get", "/docs"), ("get", "/console"), ("get", "/clinician"), ("get", "/console/assets/{}")}


def _shape(path: str) -> str:
    """A path with its parameter names blanked: /bookings/{id} and /bookings/{booking_id} match."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_template_route_is_documented():
    doc = document()
    documented = {(m, _shape(p)) for p, ops in doc["paths"].items() for m in ops}
    for route in tpl.routes():
        key = (route.method.lower(), _shape(route.path))
        if key in DOCS_ROUTES:
            continue
        assert key in documented, f"{route.route_key} is not in the OpenAPI document"


def test_routes_behind_the_authorizer_declare_the_bearer_scheme():
    doc = document()
    by_shape = {_shape(p): ops for p, ops in doc["paths"].items()}
    for route in tpl.routes():
        op = by_shape.get(_shape(route.path), {}).get(route.method.lower())
        if op is None:
            continue
        assert ("security" in op) == route.auth, route.route_key


def test_the_shipped_document_is_current():
    assert json.loads(SHIPPED.read_text(encoding="utf-8")) == json.loads(json.dumps(document())), \
        "functions/docs/apidocs/openapi.json is stale: run `make openapi`"
