"""Publishing domain events (EventBridge) and re-plan requests (SQS FIFO).

On AWS these are boto3 calls; on the local stack (HOMEVISITS_LOCAL_BUS_URL set) the same calls go
to the local gateway, which routes them by the template's rules. Delivery is at least once either
way: consumers de-duplicate."""
from __future__ import annotations

import json
import os
import urllib.request
from functools import lru_cache

SOURCE_BOOKING = "homevisits.booking"
SOURCE_DISPATCH = "homevisits.dispatch"
SOURCE_PAYMENTS = "homevisits.payments"


def _local_post(path: str, payload: dict) -> dict:
    req = urllib.request.Request(os.environ["HOMEVISITS_LOCAL_BUS_URL"] + path, method="POST",
                                 data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


@lru_cache(maxsize=None)
def _client(service: str):
    import boto3
    return boto3.client(service)


def publish(source: str, detail_type: str, detail: dict) -> None:
    """Put one event on the service's bus. Raises if the bus refused it (callers decide to retry)."""
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
             "EventBusName": os.environ.get("EVENT_BUS_NAME", "default")}
    if os.environ.get("HOMEVISITS_LOCAL_BUS_URL"):
        _local_post("/_local/events", {"Entries": [entry]})
        return
    resp = _client("events").put_events(Entries=[entry])
    if resp.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the event: {resp['Entries'][0].get('ErrorCode')}")


def request_replan(region_day: str, dedup_id: str) -> None:
    """Ask for a re-plan of one region-day; FIFO-grouped per region-day so runs never overlap."""
    body = json.dumps({"region_day": region_day})
    if os.environ.get("HOMEVISITS_LOCAL_BUS_URL"):
        _local_post("/_local/queues/ReplanQueue", {"MessageBody": body, "MessageGroupId": region_day,
                                                   "MessageDeduplicationId": dedup_id})
        return
    _client("sqs").send_message(QueueUrl=os.environ["REPLAN_QUEUE_URL"], MessageBody=body,
                                MessageGroupId=region_day, MessageDeduplicationId=dedup_id[:128])
