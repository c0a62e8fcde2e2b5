"""Helpers for the booking tests on the real local stack: valid identities, request bodies, seeded
shifts on region-days of their own, and direct reads of what DynamoDB holds."""
from __future__ import annotations

import json
import random
import uuid
import zlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devstack.demo_data import synthetic_personnummer

STOCKHOLM = {"postal_code": "11122", "lat": 59.3326, "lon": 18.0649, "city": "Stockholm"}
MALMO = {"postal_code": "21120", "lat": 55.6050, "lon": 13.0038, "city": "Malmö"}


def personnummer(born: date, rnd: random.Random | None = None) -> str:
    return synthetic_personnummer(born, (rnd or random).randrange(100, 999))


class Helpers:
    STOCKHOLM, MALMO = STOCKHOLM, MALMO

    def __init__(self, api, stack):
        self.api, self.stack = api, stack

    def now(self) -> datetime:
        r = self.api.http.post(self.api.base + "/_local/clock", json={}, timeout=10)
        return datetime.fromisoformat(r.json()["now"])

    def local_day(self, days_ahead: int, tz: str = "Europe/Stockholm") -> date:
        return self.now().astimezone(ZoneInfo(tz)).date() + timedelta(days=days_ahead)

    def dispatcher(self, region: str) -> str:
        return self.api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", region)

    def patient(self) -> tuple[str, str]:
        sub = f"patient-{uuid.uuid4().hex[:10]}"
        return sub, self.api.token("patient", sub)

    def put_shift(self, region: str, day: date, clinician: str, role: str = "doctor", start: str = "08:00",
                  end: str = "20:00", where: dict = STOCKHOLM, expect: int = 200, **extra):
        body = {"role": role, "start": start, "end": end,
                "start_location": {"lat": where["lat"], "lon": where["lon"]}, **extra}
        r = self.api.put(f"/regions/{region}/clinicians/{clinician}/shifts/{day}", self.dispatcher(region), body)
        assert r.status_code == expect, r.text
        return r

    def body(self, day: date, window: str = "10:00", where: dict = STOCKHOLM, visit_type: str = "doctor",
             born: date | None = None, jitter: float = 0.0, rnd: random.Random | None = None, **over):
        rnd = rnd or random.Random()
        # A random adult by default: one person has one open booking a day, so test patients must
        # not collide (899 serials of one birth date did, now and then).
        born = born or date(1950, 1, 1) + timedelta(days=rnd.randrange(40 * 365))
        b = {"visit_type": visit_type, "date": day.isoformat(), "window_start": window,
             "postal_code": where["postal_code"],
             "address": {"street": "Testgatan 1", "city": where["city"], "door_code": "1234",
                         "lat": where["lat"] + rnd.uniform(-jitter, jitter),
                         "lon": where["lon"] + rnd.uniform(-jitter, jitter)},
             "patient": {"personal_number": personnummer(born, rnd), "name": "Test Patient",
                         "phone": "+46701234567"},
             "symptoms": "Hosta sedan fyra dagar"}
        b.update(over)
        return b

    def child_body(self, day: date, window: str, age_years: int = 5, **over):
        """A booking for a child (free of charge: confirmed at once, no card needed)."""
        import random

        from stdnum import luhn
        # a different child each time (one open booking per person and day): birth date and serial drawn
        born = self.local_day(-365 * age_years - random.randrange(0, 300))
        serial = f"{random.randrange(100, 1000)}"
        digits = f"{born:%y%m%d}{serial}"
        number = f"{born:%Y%m%d}-{serial}{luhn.calc_check_digit(digits)}"
        return self.body(day, window, for_child={"personal_number": number, "name": "Barn"}, **over)

    def book(self, token: str, body: dict, key: str | None = None):
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.api.post("/bookings", token, body, headers=headers)

    def book_from_thread(self, token: str, body: dict, key: str):
        """POST /bookings on a connection of its own; a connection the local gateway's small listen
        backlog reset is sent again with the same Idempotency-Key (safe by design)."""
        import time

        import requests
        headers = {"Idempotency-Key": key, "Authorization": f"Bearer {token}"}
        for attempt in range(8):
            try:
                return requests.post(self.api.base + "/bookings", json=body, headers=headers, timeout=120)
            except requests.ConnectionError:
                time.sleep(0.05 * 2 ** attempt)
        raise AssertionError("the gateway kept refusing connections")

    # direct reads (the same DynamoDB Local the gateway uses)
    def ledger(self, region: str, day: date) -> dict:
        """The region-day's ledger as DynamoDB holds it: every shard (one Query), merged."""
        items = self.stack.boto_client("dynamodb").query(
            TableName="CapacityTable", KeyConditionExpression="region_day = :d",
            ExpressionAttributeValues={":d": {"S": f"{region}#{day}"}}, ConsistentRead=True)["Items"]
        out = {"shifts": {}, "visits": {}, "routes": {}, "version": 0, "shards": len(items)}
        for item in items:
            for part in ("shifts", "visits", "routes"):
                if part in item:  # zlib-compressed JSON (homevisits.persistence.ledger)
                    out[part].update(json.loads(zlib.decompress(item[part]["B"])))
            out["version"] += int(item["version"]["N"])
        return out

    def bookings_of_day(self, region: str, day: date) -> list[dict]:
        ddb = self.stack.boto_client("dynamodb")
        items, kw = [], {}
        while True:
            r = ddb.query(TableName="BookingsTable", IndexName="by-region-day",
                          KeyConditionExpression="region_day = :d",
                          ExpressionAttributeValues={":d": {"S": f"{region}#{day}"}}, **kw)
            items += r["Items"]
            if "LastEvaluatedKey" not in r:
                return items
            kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}

    def booking_item(self, booking_id: str) -> dict | None:
        return self.stack.boto_client("dynamodb").get_item(
            TableName="BookingsTable", Key={"booking_id": {"S": booking_id}}, ConsistentRead=True).get("Item")

    def note_item(self, booking_id: str) -> dict | None:
        return self.stack.boto_client("dynamodb").get_item(
            TableName="ClinicalTable", Key={"booking_id": {"S": booking_id}}, ConsistentRead=True).get("Item")

    def table_counts(self) -> dict:
        ddb = self.stack.boto_client("dynamodb")
        return {t: ddb.scan(TableName=t, Select="COUNT")["Count"]
                for t in ("BookingsTable", "CapacityTable", "ClinicalTable", "IdempotencyTable")}


@pytest.fixture(scope="session")
def hv(api, stack) -> Helpers:
    return Helpers(api, stack)
