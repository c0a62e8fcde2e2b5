"""Environment read once. Table and queue names come from the template (env vars set per function);
locally the stack sets the same variables, so code never guesses a name."""
from __future__ import annotations

import os

# Logical id in template.yaml -> environment variable holding the physical name.
TABLE_ENV = {
    "BookingsTable": "BOOKINGS_TABLE",
    "CapacityTable": "CAPACITY_TABLE",
    "ClinicalTable": "CLINICAL_TABLE",
    "PlansTable": "PLANS_TABLE",
    "PaymentsTable": "PAYMENTS_TABLE",
    "OpsTable": "OPS_TABLE",
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
}


def table_name(logical_id: str) -> str:
    """Physical table name for a template table (env var, else the logical id, as the local stack names it)."""
    return os.environ.get(TABLE_ENV[logical_id], logical_id)


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def is_local() -> bool:
    return bool(os.environ.get("HOMEVISITS_LOCAL_BUS_URL"))


def eta_notify_margin_minutes() -> int:
    """How far (minutes) a visit's live ETA may move from what its patient last heard before they
    are texted again (ETA_NOTIFY_MARGIN_MINUTES, default 15)."""
    try:
        return max(1, int(os.environ.get("ETA_NOTIFY_MARGIN_MINUTES", "15")))
    except ValueError:
        return 15
