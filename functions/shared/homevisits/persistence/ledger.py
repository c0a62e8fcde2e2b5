"""The capacity ledger's shards in CapacityTable (region_day + shard), read and written as a DayLedger.

One Query reads a region-day (or only the shards of one skill: the booking path); writes put only
the shards whose content changed, each conditioned on the version it was read at (optimistic
locking per route, see homevisits.ledger)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import json
import zlib

from pynamodb.attributes import Attribute, UnicodeAttribute, VersionAttribute
from pynamodb.constants import BINARY
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model

from homevisits.ledger import DayLedger, Shard, pooled_skills
from homevisits.persistence.base import condition_failed, meta, transaction


class CompressedJSONAttribute(Attribute):
    """A JSON value stored zlib-compressed as binary. The ledger's maps repeat the same keys and
    ISO timestamps visit after visit: compressed they take about a fifth of the bytes, and DynamoDB
    bills reads, writes and the 1 MB Query page by stored bytes (docs/benchmarks-scale.md)."""

    attr_type = BINARY

    def serialize(self, value):
        return zlib.compress(json.dumps(value, separators=(",", ":"), sort_keys=True).encode(), 6)

    def deserialize(self, value):
        return json.loads(zlib.decompress(value))


class LedgerShardModel(Model):
    """One shard of a region-day's capacity ledger: shifts, visits and routes of one clinician (or of
    a pooled skill's clinicians); see homevisits.ledger."""

    Meta = meta("CapacityTable")

    region_day = UnicodeAttribute(hash_key=True)
    shard = UnicodeAttribute(range_key=True)  # "doctor#route#{clinician_id}" | "nurse#pool"
    shifts = CompressedJSONAttribute(default=dict)  # clinician_id -> {role, start, end, start_location, end_location, break}
    visits = CompressedJSONAttribute(default=dict)  # booking_id -> the routing view (homevisits.lifecycle.ledger_visit)
    routes = CompressedJSONAttribute(default=dict)  # clinician_id -> booking ids in route order: the proof they fit
    version = VersionAttribute()


def _pooled() -> frozenset[str]:
    from homevisits.regions import load_config
    return pooled_skills(load_config())


def read_day(region_day: str, skill: str | None = None, consistent: bool = True) -> DayLedger:
    """The region-day's ledger (all shards, or those of `skill`): one Query, empty if none stored."""
    cond = LedgerShardModel.shard.startswith(f"{skill}#") if skill else None
    conn = LedgerShardModel._get_connection()
    shards, start = [], None
    while True:  # raw pages: a model per shard cost ~40 % of the read's Python time (docs/benchmarks-scale.md)
        page = conn.query(region_day, range_key_condition=cond, consistent_read=consistent,
                          exclusive_start_key=start)
        shards += [_shard(raw) for raw in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            return DayLedger(region_day, shards, _pooled())


_CODEC = CompressedJSONAttribute()


def _shard(raw: dict) -> Shard:
    """A stored shard item (DynamoDB's wire form) as a Shard."""
    def part(name: str) -> dict:
        value = raw.get(name)
        return dict(_CODEC.deserialize(value["B"])) if value else {}
    return Shard(raw["shard"]["S"], part("shifts"), part("visits"), part("routes"), int(raw["version"]["N"]))


def get_day(region_day: str, consistent: bool = True) -> DayLedger | None:
    """The stored region-day, or None when nothing is stored for it."""
    day = read_day(region_day, consistent=consistent)
    return day if day.shifts or day.visits else None


def days(region_days: list[str], consistent: bool = True) -> list[DayLedger]:
    """Many region-days (one Query each, in parallel): the hold-expiry job."""
    if not region_days:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(region_days))) as pool:
        out = list(pool.map(lambda rd: read_day(rd, consistent=consistent), region_days))
    return [d for d in out if d.shifts or d.visits]


def shard_models(ledger: DayLedger) -> list[LedgerShardModel]:
    """The changed shards as items to put (in the caller's transaction), version-checked."""
    out = []
    for s in ledger.changed():
        m = LedgerShardModel(ledger.region_day, s.key, shifts=s.shifts, visits=s.visits, routes=s.routes)
        if s.version is not None:  # else: a new shard, written only if it does not exist yet
            m.version = s.version
        out.append(m)
    return out


# DynamoDB's limit of items in one transaction.
TRANSACTION_ITEMS = 100


def save_day(ledger: DayLedger) -> bool:
    """Write the changed shards, each conditioned on its version; False when another writer changed
    one of them. One transaction for up to 100 shards (a request changes at most
    NEIGHBOUR_ROUTES + 1); a larger change (loading a whole day at once) is written 100 at a time."""
    models = shard_models(ledger)
    for i in range(0, len(models), TRANSACTION_ITEMS):
        try:
            with transaction() as tw:
                for m in models[i:i + TRANSACTION_ITEMS]:
                    tw.save(m)
        except TransactWriteError as err:
            if condition_failed(err):
                return False
            raise
    return True
