"""The environment, read once: `get()` validates every variable the functions use into one frozen
`Settings` at cold start (each Lambda entry module calls it on import, so a bad value fails the
cold start, not a request) and keeps it for the process. This is the only module that reads
`os.environ` (tests/architecture/test_settings.py).

Table names come from the template: Globals holds one `<NAME>_TABLE: !Ref <Name>Table` variable per
table, so the variable of a table follows from its logical id (`table_env_var`) and no list here
repeats the template; locally the stack sets the same variables. Tests that change the environment
call `reload()` (tests/conftest.py reloads around every test)."""
from __future__ import annotations

import os
import re
from typing import Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# The most a solver run may take (seconds, wall time, model building included). One figure for the
# API (POST .../optimize refuses more with 400) and the worker: the dispatch function answering
# "optimize now" has Timeout 29 s in template.yaml (under the HTTP API's 30 s), which leaves ~9 s to
# read the inputs and store the plan; tests/architecture/test_settings.py checks it against the template.
SOLVER_TIME_LIMIT_MAX_S = 20.0

TravelProvider = Literal["model", "osrm", "amazon-location"]
_TRAVEL_ALIASES = {"amazon_location": "amazon-location", "location": "amazon-location"}


def table_env_var(logical_id: str) -> str:
    """The variable naming a template table's physical name: `BookingsTable` -> `BOOKINGS_TABLE`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", logical_id).upper()


def _table_logical_id(env_var: str) -> str:
    return "".join(part.capitalize() for part in env_var.split("_"))


class Settings(BaseModel):
    """What the functions read from their environment, validated. Names are the variables'."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    aws_region: str = "eu-north-1"
    tables: dict[str, str] = Field(default_factory=dict, description="template logical id -> physical name")
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    replan_queue_url: Optional[str] = Field(None, alias="REPLAN_QUEUE_URL")
    config_path: Optional[str] = Field(None, alias="HOMEVISITS_CONFIG")
    clock_file: Optional[str] = Field(None, alias="HOMEVISITS_CLOCK_FILE")
    local_bus_url: Optional[str] = Field(None, alias="HOMEVISITS_LOCAL_BUS_URL")
    lambda_function_name: Optional[str] = Field(None, alias="AWS_LAMBDA_FUNCTION_NAME")
    id_pepper: Optional[SecretStr] = Field(None, alias="HOMEVISITS_ID_PEPPER")
    id_pepper_parameter: Optional[str] = Field(None, alias="HOMEVISITS_ID_PEPPER_PARAMETER")
    # dispatch
    replan_time_limit_s: float = Field(3.0, gt=0, le=SOLVER_TIME_LIMIT_MAX_S, alias="REPLAN_TIME_LIMIT_S")
    optimize_time_limit_s: float = Field(5.0, gt=0, le=SOLVER_TIME_LIMIT_MAX_S, alias="OPTIMIZE_TIME_LIMIT_S")
    late_risk_minutes: int = Field(15, ge=0, le=24 * 60, alias="LATE_RISK_MINUTES")
    # how far (minutes) a visit's live ETA may move from what its patient last heard before they are texted again
    eta_notify_margin_minutes: int = Field(15, ge=1, le=24 * 60, alias="ETA_NOTIFY_MARGIN_MINUTES")
    travel_provider: TravelProvider = Field("model", alias="TRAVEL_PROVIDER")
    travel_cache_dynamodb: bool = Field(False, alias="TRAVEL_CACHE_DYNAMODB")
    travel_cache_ttl_days: float = Field(7.0, gt=0, alias="TRAVEL_CACHE_TTL_DAYS")
    osrm_url: Optional[str] = Field(None, alias="OSRM_URL")
    amazon_location_travel_mode: str = Field("Car", alias="AMAZON_LOCATION_TRAVEL_MODE")
    amazon_location_api_key: Optional[SecretStr] = Field(None, alias="AMAZON_LOCATION_API_KEY")
    console_tile_url: str = Field("", alias="CONSOLE_TILE_URL")
    console_tile_attribution: str = Field("", alias="CONSOLE_TILE_ATTRIBUTION")
    # payments: a secret itself (local, tests) or the SSM parameter holding it (AWS)
    stripe_api_key: Optional[SecretStr] = Field(None, alias="STRIPE_API_KEY")
    stripe_secret_parameter: Optional[str] = Field(None, alias="STRIPE_SECRET_PARAMETER")
    stripe_webhook_secret: Optional[SecretStr] = Field(None, alias="STRIPE_WEBHOOK_SECRET")
    stripe_webhook_secret_parameter: Optional[str] = Field(None, alias="STRIPE_WEBHOOK_SECRET_PARAMETER")
    stripe_api_base: Optional[str] = Field(None, alias="STRIPE_API_BASE")

    @field_validator("travel_provider", mode="before")
    @classmethod
    def _travel_alias(cls, value):
        value = str(value).strip().lower()
        return _TRAVEL_ALIASES.get(value, value)

    @property
    def is_local(self) -> bool:
        """Running on the local stack (its gateway answers the AWS calls)."""
        return bool(self.local_bus_url)

    @property
    def on_lambda(self) -> bool:
        return bool(self.lambda_function_name)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Settings":
        """Validate an environment; an empty variable counts as unset (the template's empty
        parameters). Raises pydantic's ValidationError naming the variable."""
        env = {k: v for k, v in environ.items() if v != ""}
        tables = {_table_logical_id(k): v for k, v in env.items() if k.endswith("_TABLE")}
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "eu-north-1"
        return cls.model_validate({**env, "aws_region": region, "tables": tables})

    def table_name(self, logical_id: str) -> str:
        """Physical name of a template table (its variable, else the logical id, as the local
        stack names it)."""
        return self.tables.get(logical_id, logical_id)


_current: Settings | None = None


def get() -> Settings:
    """The process's settings, validated from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_environ(os.environ)
    return _current


def reload() -> Settings:
    """Read the environment again (tests, and tools that set it after importing the code)."""
    global _current
    _current = None
    return get()


def eta_notify_margin_minutes() -> int:
    """See `Settings.eta_notify_margin_minutes`."""
    return get().eta_notify_margin_minutes


def table_name(logical_id: str) -> str:
    """Physical table name for a template table (see `Settings.table_name`)."""
    return get().table_name(logical_id)
