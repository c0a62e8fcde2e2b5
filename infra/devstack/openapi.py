"""One OpenAPI document for the whole HTTP API, merged from each function's Powertools resolver.

Each function's routes (with their validation models) are the source; the template says which
routes need a token. `homevisits openapi` prints it; functions/docs/apidocs/openapi.json is the copy the
docs function serves (tests/architecture checks it is current)."""
from __future__ import annotations

import importlib
import json
import os
import re

from devstack import template as tpl

APPS = ("booking.app", "dispatch.app", "dispatch.location", "payments.app")
TITLE = "Home visits API"
DESCRIPTION = ("Book a doctor or nurse home inside a 2-hour window, follow the visit, and let dispatch "
               "plan the routes. Not for emergencies: in a life-threatening situation call 112; "
               "1177 gives medical advice.")


def document() -> dict:
    # Importing an app creates (but never calls) AWS clients: a region is all they need.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-north-1")
    doc = {"openapi": "3.1.0", "info": {"title": TITLE, "version": "1.0.0", "description": DESCRIPTION},
           "paths": {}, "components": {"schemas": {}, "securitySchemes": {
               "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                          "description": "Cognito-issued JWT with claims sub, role and (staff) region"}}}}
    for module in APPS:
        app = importlib.import_module(module).app
        part = json.loads(app.get_openapi_json_schema(title=TITLE))
        for path, ops in part.get("paths", {}).items():
            doc["paths"].setdefault(path, {}).update(ops)
        doc["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    shape = lambda p: re.sub(r"\{[^}]+\}", "{}", p)  # noqa: E731  (parameter names may differ)
    secured = {(r.method.lower(), shape(r.path)) for r in tpl.routes() if r.auth}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if (method, shape(path)) in secured:
                op["security"] = [{"bearer": []}]
    _document_errors(doc)
    return doc


ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}}
GATEWAY_ERROR = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}


def _document_errors(doc: dict) -> None:
    """Every refusal the API gives is a 4xx with {"error": {"code", "message"}} (the one error
    mapping in homevisits.http), or API Gateway's own {"message"} for 401/404 before a handler runs.
    Powertools documents only its 422; this states the real contract on every operation."""
    doc["components"]["schemas"]["Error"] = ERROR_SCHEMA
    doc["components"]["schemas"]["GatewayError"] = GATEWAY_ERROR
    error = {"description": "refused: a machine-readable code and a message; nothing was written",
             "content": {"application/json": {"schema": {"anyOf": [
                 {"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/GatewayError"}]}}}}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # Powertools' validation-error schema; ours is the Error shape
            responses["4XX"] = error
            if path.endswith("/payment") or path.endswith("/fee-waiver"):
                responses["503"] = {"description": "the payment provider did not answer; retry (nothing "
                                                   "is held twice)", "content": error["content"]}


def write(path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document(), f, indent=1, sort_keys=True)
        f.write("\n")
