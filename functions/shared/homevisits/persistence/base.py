"""What every model shares: the table name from the template, the AWS region, and JSON attributes."""
from __future__ import annotations

import json

from pynamodb.attributes import Attribute
from pynamodb.connection import Connection
from pynamodb.constants import STRING
from pynamodb.transactions import TransactWrite

from homevisits.aws import pynamodb_settings
from homevisits import settings


def meta(logical_id: str):
    """A PynamoDB Meta for a template table; the endpoint comes from AWS_ENDPOINT_URL_DYNAMODB locally."""

    class Meta:
        pass

    Meta.table_name = settings.table_name(logical_id)
    Meta.region = settings.get().aws_region
    for name, value in pynamodb_settings().items():  # one timeout budget for every client
        setattr(Meta, name, value)
    return Meta


class JSONAttribute(Attribute):
    """Any JSON value, stored as a string: for compact nested data read and written whole."""

    attr_type = STRING

    def serialize(self, value):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def deserialize(self, value):
        return json.loads(value)


def condition_failed(err: Exception) -> bool:
    """Did a write fail because its condition (or a transaction item's) did not hold, i.e. another
    writer changed the item first? The one place that reads PynamoDB's and DynamoDB's error shapes."""
    cause = getattr(err, "cause_response_code", None)
    if cause is None:
        cause = (getattr(getattr(err, "cause", None), "response", None) or {}).get("Error", {}).get("Code")
    if cause in ("ConditionalCheckFailedException", "TransactionCanceledException"):
        return True
    reasons = getattr(err, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) == "ConditionalCheckFailed" for r in reasons)


_connection: Connection | None = None


def _transaction_connection() -> Connection:
    global _connection
    if _connection is None:
        c = Connection(region=meta("BookingsTable").region, **pynamodb_settings())
        c.client
        _connection = c
    return _connection


def transaction() -> TransactWrite:
    """A TransactWrite on one connection per process (a botocore client costs ~0.5 s to build and
    is thread-safe once built, so it is built once, before threads share it)."""
    return TransactWrite(connection=_transaction_connection())


def build_clients(*models) -> None:
    """Build now the DynamoDB clients of `models` (PynamoDB makes one per model, each from a new
    botocore session: ~75 ms of CPU apiece, seconds on a loaded machine) and of the shared
    transaction connection, instead of on their first request: called at a function's init,
    which Lambda does not count in an invocation's timeout."""
    for model in models:
        model._get_connection().connection.client
    _transaction_connection()
