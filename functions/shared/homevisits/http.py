"""The one place where errors become HTTP responses, and the resolver every function starts from."""
from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (RequestUnsupportedContentType,
                                                                   RequestValidationError)

from homevisits.auth import Caller, caller_from_event
from homevisits.errors import RETRY_AFTER_S, DomainError, ServiceUnavailable, dependency_outage
from homevisits.observability import get_logger

JSON = "application/json"


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=headers or {})


def make_resolver(service: str) -> APIGatewayHttpResolver:
    """An HTTP API resolver with request validation and the shared error mapping installed."""
    app = APIGatewayHttpResolver(enable_validation=True)
    logger = get_logger(service)

    @app.exception_handler(DomainError)
    def _domain(err: DomainError):
        retry = {"Retry-After": str(RETRY_AFTER_S)} if err.status == 503 else None
        return error_response(err.status, err.code, err.message, err.details or None, retry)

    @app.exception_handler(RequestValidationError)
    def _validation(err: RequestValidationError):
        # Field locations and messages only: never echo the input (it may be personal data).
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")}
                    for e in err.errors()]
        return error_response(400, "invalid_request", "the request does not match the schema",
                              {"problems": problems})

    @app.exception_handler(json.JSONDecodeError)
    def _bad_json(_err):
        return error_response(400, "invalid_json", "the body is not valid JSON")

    @app.exception_handler(UnicodeDecodeError)
    def _not_utf8(_err):  # Powertools' decoded_body/json_body decode the (base64) body as UTF-8
        return error_response(400, "invalid_json", "the body is not UTF-8 JSON")

    @app.exception_handler(RequestUnsupportedContentType)
    def _media_type(_err):
        return error_response(415, "unsupported_media_type", "send the body as application/json")

    try:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError, IdempotencyValidationError)

        @app.exception_handler(IdempotencyAlreadyInProgressError)
        def _in_progress(_err):
            return error_response(409, "request_in_progress",
                                  "the same request is still being processed; retry shortly",
                                  headers={"Retry-After": "1"})

        @app.exception_handler(IdempotencyValidationError)
        def _key_reused(_err):
            return error_response(422, "idempotency_key_reused",
                                  "this Idempotency-Key was used with a different request body")
    except ImportError:  # pragma: no cover - idempotency ships with powertools
        pass

    @app.exception_handler(NotFoundError)
    def _no_route(_err):  # must come before the catch-all below, which would make it a 500
        return error_response(404, "not_found", "no such resource")

    @app.exception_handler(Exception)
    def _unexpected(err: Exception):
        if dependency_outage(err):  # DynamoDB or the bus down, timing out or throttling: retryable
            logger.warning("dependency unavailable", extra={"error_type": type(err).__name__})
            unavailable = ServiceUnavailable("a service we depend on is not answering; retry shortly")
            return _domain(unavailable)
        logger.exception("unhandled error", extra={"error_type": type(err).__name__})
        return error_response(500, "internal_error", "something went wrong on our side")

    return app


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    return caller_from_event(app.current_event.raw_event)


def json_response(status: int, body) -> Response:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body, default=str))
