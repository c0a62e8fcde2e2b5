"""One timeout budget for every AWS client, and the one mapping of dependency outages to 503."""
from __future__ import annotations

import pytest

from homevisits import aws
from homevisits.errors import dependency_outage


def _function_timeouts() -> dict[str, float]:
    from devstack import template as tpl
    t = tpl.load()
    default = t["Globals"]["Function"]["Timeout"]
    return {fid: float(fn["Properties"].get("Timeout", default)) for fid, fn in tpl.functions(t).items()}


def test_a_failing_call_and_its_cleanup_fit_the_shortest_function_timeout():
    """An outage costs a request at most two calls that each run out their retries (the failing
    one, then Powertools deleting its INPROGRESS record): both end before the function times out."""
    shortest = min(_function_timeouts().values())
    assert 2 * aws.worst_call_s() < shortest, (aws.worst_call_s(), shortest)


def test_every_client_kind_gets_the_shared_budget(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    from homevisits.persistence.booking import BookingModel
    meta = BookingModel.Meta
    assert (meta.connect_timeout_seconds, meta.read_timeout_seconds, meta.max_retry_attempts) == (
        aws.CONNECT_TIMEOUT_S, aws.READ_TIMEOUT_S, aws.MAX_ATTEMPTS - 1)
    config = aws.boto_config()
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT_S, aws.READ_TIMEOUT_S)
    assert config.retries == {"total_max_attempts": aws.MAX_ATTEMPTS, "mode": "standard"}
    from booking.app import idempotency_store
    assert idempotency_store.client.meta.config.read_timeout == aws.READ_TIMEOUT_S
    assert idempotency_store.client.meta.config.retries["total_max_attempts"] == aws.MAX_ATTEMPTS


def _client_error(code: str):
    from botocore.exceptions import ClientError
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "PutItem")


def _wrapped(exc: Exception) -> Exception:
    """As the booking path sees it: PynamoDB's error around botocore's, inside Powertools'."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
    from pynamodb.exceptions import PutError
    inner = PutError("Failed to put item", cause=exc)
    try:
        try:
            raise inner
        except PutError as e:
            raise IdempotencyPersistenceLayerError("Failed to save in progress record", e) from e
    except IdempotencyPersistenceLayerError as outer:
        return outer


@pytest.mark.parametrize("make,outage", [
    (lambda: __import__("botocore.exceptions").exceptions.EndpointConnectionError(endpoint_url="http://x"), True),
    (lambda: __import__("botocore.exceptions").exceptions.ReadTimeoutError(endpoint_url="http://x"), True),
    (lambda: __import__("botocore.exceptions").exceptions.ConnectTimeoutError(endpoint_url="http://x"), True),
    (lambda: _client_error("ProvisionedThroughputExceededException"), True),
    (lambda: _client_error("ConditionalCheckFailedException"), False),
    (lambda: _client_error("AccessDeniedException"), False),  # a missing permission is a bug: 500, logged
    (lambda: ValueError("bad"), False),
])
def test_outages_are_recognised_through_the_layers_that_wrap_them(make, outage):
    assert dependency_outage(make()) is outage
    assert dependency_outage(_wrapped(make())) is outage
