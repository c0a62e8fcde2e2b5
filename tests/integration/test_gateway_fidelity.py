"""The local gateway behaves as API Gateway's HTTP API (payload 2.0) where the handlers can tell:
base64 for non-text content types, cookies, the stage prefix in rawPath, the 30 s integration
timeout, the 10 MB payload limit, and CORS exactly as template.yaml declares it."""
from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import pytest
import requests

from devstack import gateway
from devstack import template as tpl


@pytest.mark.parametrize("content_type,text", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("text/plain", True),
    ("application/xml", True), ("application/javascript", True), (None, False), ("", False),
    ("application/x-www-form-urlencoded", False), ("application/octet-stream", False),
    ("multipart/form-data; boundary=x", False), ("image/png", False), ("application/json; charset=latin-1", False),
])
def test_which_bodies_arrive_as_text(content_type, text):
    assert gateway.is_text(content_type) is text


def _event(headers: dict, body: bytes = b"", stage: str = "$default") -> dict:
    route, params = tpl.match(tpl.routes(), "POST", "/bookings/b-1/cancel")
    return gateway.http_event(route, "POST", "/bookings/b-1/cancel", "", headers, body, params, None,
                              "127.0.0.1", stage)


def test_a_body_without_a_text_content_type_is_base64():
    import base64
    e = _event({"host": "x"}, b'{"reason": "x"}')
    assert e["isBase64Encoded"] is True and base64.b64decode(e["body"]) == b'{"reason": "x"}'
    e = _event({"host": "x", "content-type": "application/json"}, b'{"reason": "x"}')
    assert e["isBase64Encoded"] is False and e["body"] == '{"reason": "x"}'


def test_cookies_are_a_list_and_not_a_header():
    e = _event({"host": "x", "cookie": "a=1; b=2"})
    assert e["cookies"] == ["a=1", "b=2"] and "cookie" not in e["headers"]


def test_a_named_stage_is_in_raw_path_and_the_handlers_strip_it():
    e = _event({"host": "x"}, stage="prod")
    assert e["rawPath"] == e["requestContext"]["http"]["path"] == "/prod/bookings/b-1/cancel"
    assert e["requestContext"]["stage"] == "prod"
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
    assert APIGatewayProxyEventV2(e).path == "/bookings/b-1/cancel"


def test_the_stage_comes_from_the_template():
    t = copy.deepcopy(tpl.load())
    assert gateway.http_api_stage(t) == t["Parameters"]["Stage"]["Default"]
    t["Resources"]["HttpApi"]["Properties"].pop("StageName")
    assert gateway.http_api_stage(t) == "$default"


def test_cors_is_derived_from_the_template():
    assert gateway.Cors.from_template() is None  # template.yaml declares none (see its comment)
    t = copy.deepcopy(tpl.load())
    t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"] = {
        "AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["authorization", "content-type"], "MaxAge": 600}
    cors = gateway.Cors.from_template(t)
    ok = cors.preflight("https://app.example", "POST", "Authorization, Content-Type")
    assert ok["access-control-allow-origin"] == "https://app.example"
    assert ok["access-control-max-age"] == "600"
    assert cors.preflight("https://evil.example", "POST", None) is None
    assert cors.preflight("https://app.example", "DELETE", None) is None
    assert cors.preflight("https://app.example", "POST", "x-other") is None
    assert cors.response_headers("https://evil.example") == {}


# ---------------------------------------------------------------- through the running gateway
def test_the_api_answers_under_the_templates_stage(api):
    stage = gateway.http_api_stage()
    r = api.get(f"/{stage}/service-areas/111%2022")
    assert r.status_code == 200, r.text
    assert r.json()["region"] == "stockholm"
    assert api.get(f"/{stage}/console").status_code == 200


def test_a_json_body_sent_without_a_content_type_reaches_the_handler(api):
    """No content type: the gateway base64-encodes the body, as AWS does; the handler decodes it
    (the cancel of an unknown booking is a 404, not a 400 about the body)."""
    tok = api.token("patient")
    r = api.http.post(f"{api.base}/bookings/{uuid.uuid4()}/cancel", data=b'{"reason": "better"}',
                      headers={"Authorization": f"Bearer {tok}"}, timeout=30)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


def test_no_cors_for_an_origin_the_template_does_not_allow(api):
    r = api.http.options(f"{api.base}/bookings", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"}, timeout=10)
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    r = api.get("/service-areas/11122", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_a_body_over_10_mb_is_refused_by_the_gateway(api):
    r = api.http.post(f"{api.base}/payments/webhook", data=b"x" * (10 * 1024 * 1024 + 1),
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json() == {"message": "Request Entity Too Large"}


def test_an_integration_slower_than_the_timeout_is_a_503(monkeypatch):
    """API Gateway stops waiting after its integration timeout (30 s; shortened here) and answers
    503 {"message": "Service Unavailable"}; a function error is its 500."""
    def slow(function_id, event):
        if event["rawPath"].endswith("/boom"):
            raise RuntimeError("function error")
        time.sleep(2)
        return {"statusCode": 200, "body": "{}"}

    monkeypatch.setattr(gateway, "invoke", slow)
    server = gateway.Gateway(("127.0.0.1", 0), gateway.Router(streams=False))
    server.integration_timeout_s = 0.3
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        r = requests.get(base + "/service-areas/11122", timeout=10)
        assert r.status_code == 503 and r.json() == {"message": "Service Unavailable"}
        r = requests.get(base + "/service-areas/boom", timeout=10)
        assert r.status_code == 500 and r.json() == {"message": "Internal Server Error"}
    finally:
        server.shutdown()
        server.server_close()
