"""One botocore configuration for every AWS client the functions make (boto3 clients, PynamoDB,
Powertools idempotency), sized so that a dependency that is down or hangs ends a request well
inside the function's timeout instead of botocore's defaults (60 s connect and read timeouts, 3-5
attempts: a stopped DynamoDB once held POST /bookings for 60 s).

Worst case of one call: MAX_ATTEMPTS x (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) plus the standard
retry mode's back-off between attempts (at most 1 s before the second). A request that meets an
outage makes at most two such calls before it answers (the one that fails, and Powertools'
deletion of its INPROGRESS idempotency record), so 2 x worst_call_s() must fit the shortest
function timeout of template.yaml (15 s); tests/unit/test_aws_config.py checks it against the
template."""
from __future__ import annotations

from functools import lru_cache

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0  # DynamoDB answers in milliseconds; 2 s is a hang, not a slow item
MAX_ATTEMPTS = 2  # the first try included
MAX_BACKOFF_S = 1.0  # standard mode: random(0, 1) x 2^(attempt - 1) before attempt 2


def worst_call_s() -> float:
    """The longest one AWS call can take before it raises, retries included."""
    return MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + (MAX_ATTEMPTS - 1) * MAX_BACKOFF_S


def boto_config():
    from botocore.config import Config
    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                  retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"})


@lru_cache(maxsize=None)
def client(service: str):
    """A boto3 client with the shared configuration, one per service and process (thread-safe)."""
    import boto3
    return boto3.client(service, config=boto_config())


def pynamodb_settings() -> dict:
    """The same budget as PynamoDB Meta / Connection settings."""
    return {"connect_timeout_seconds": CONNECT_TIMEOUT_S, "read_timeout_seconds": READ_TIMEOUT_S,
            "max_retry_attempts": MAX_ATTEMPTS - 1}
