"""Serves the API's OpenAPI document and a Swagger UI page (assets inlined: no CDN needed)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

app = APIGatewayHttpResolver()
SPEC = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def _spec() -> str:
    return SPEC.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _swagger_page() -> str:
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import html as ui

    assets = Path(ui.__file__).parent
    return ui.generate_swagger_html(
        spec=json.dumps(json.loads(_spec())),
        swagger_js=(assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        swagger_css=(assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        swagger_base_url="", oauth2_config=None, persist_authorization=False)


@app.get("/openapi.json")
def openapi():
    return Response(status_code=200, content_type="application/json", body=_spec())


@app.get("/docs")
def docs():
    return Response(status_code=200, content_type="text/html", body=_swagger_page())


def lambda_handler(event, context):
    return app.resolve(event, context)
