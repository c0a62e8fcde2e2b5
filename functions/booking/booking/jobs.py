"""Scheduled job (every minute): expire unpaid holds so their capacity returns."""
from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from booking import service
from homevisits.clock import default_clock
from homevisits.messaging import publish
from homevisits.observability import get_logger
from homevisits.regions import load_config

logger = get_logger("booking-jobs")


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = service.expire_holds(service.Context(config=load_config(), clock=default_clock(), publish=publish))
    logger.info("holds expired", extra={"expired": len(result["expired"]), "skipped": result["skipped"]})
    return {"expired": len(result["expired"]), "skipped": result["skipped"]}
