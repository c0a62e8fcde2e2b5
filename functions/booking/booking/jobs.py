"""Scheduled jobs of the booking context, one Lambda with one schedule per job (the schedule's
input names the job; an event without one is the every-minute hold expiry):

- `expire_holds` (every minute): unpaid holds expire so their capacity returns;
- `close_missed_visits` (every 5 minutes): visits nobody arrived at are closed as missed
  (booking.missed);
- `retention` (daily): personal data of finished bookings past the retention are pseudonymised,
  the day's anonymised statistics kept (booking.retention).
"""
from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from booking import missed, retention, service
from homevisits import settings
from homevisits.clock import default_clock
from homevisits.messaging import publish
from homevisits.observability import get_logger
from homevisits.regions import load_config

logger = get_logger("booking-jobs")
settings.get()  # cold start: a bad environment fails here, never in a request


def _context() -> service.Context:
    return service.Context(config=load_config(), clock=default_clock(), publish=publish)


def expire_holds() -> dict:
    result = service.expire_holds(_context())
    logger.info("holds expired", extra={"expired": len(result["expired"]), "skipped": result["skipped"]})
    return {"expired": len(result["expired"]), "skipped": result["skipped"]}


def close_missed_visits() -> dict:
    result = missed.close_missed_visits(_context())
    logger.info("missed visits closed", extra={"missed": len(result["missed"]), "skipped": result["skipped"]})
    return {"missed": len(result["missed"]), "skipped": result["skipped"]}


def apply_retention() -> dict:
    result = retention.apply_retention(_context())
    logger.info("retention applied", extra=result)
    return result


JOBS = {"expire_holds": expire_holds, "close_missed_visits": close_missed_visits, "retention": apply_retention}


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    job = (event or {}).get("job") or "expire_holds"
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}")
    return JOBS[job]()
