"""Scheduled reconciliation: renew holds before they lapse, finish or release 3-D Secure holds,
retry captures, resolve hold attempts whose answer was lost, and report what cannot be repaired
(log with ids only, a metric, and an OpsTable item RECON#{date}). Queries gsi1 only, no Scan."""
from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from homevisits import settings
from homevisits.observability import get_logger
from payments import deps
from payments.context import PaymentContext
from payments.repair import reconcile

logger = get_logger("reconcile")
settings.get()  # cold start: a bad environment fails here, never in a request
metrics = Metrics(namespace="HomeVisits", service="reconcile")


def run(ctx: PaymentContext | None = None) -> dict:
    findings: list[str] = []
    ctx = ctx or deps.context(on_finding=lambda booking_id, kind, details: findings.append(kind))
    outcomes = reconcile(ctx)
    for kind in findings:
        metrics.add_metric(name="PaymentReconFinding", unit=MetricUnit.Count, value=1)
    for outcome, n in outcomes.items():
        logger.info("reconciliation outcome", extra={"outcome": outcome, "count": n})
    return {"outcomes": outcomes, "findings": len(findings)}


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return run()
