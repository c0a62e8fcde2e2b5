"""Publishing domain events (EventBridge) and re-plan requests (SQS FIFO).

boto3 calls, on AWS and on the local stack alike (there the endpoints are the local gateway's, which
routes them by the template's rules: devstack.aws_local). Delivery is at least once either way:
consumers de-duplicate."""
from __future__ import annotations

import json

from homevisits import settings
from homevisits.aws import client

SOURCE_BOOKING = "homevisits.booking"
SOURCE_DISPATCH = "homevisits.dispatch"
SOURCE_PAYMENTS = "homevisits.payments"


def publish(source: str, detail_type: str, detail: dict) -> None:
    """Put one event on the service's bus. Raises if the bus refused it (callers decide to retry)."""
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
             "EventBusName": settings.get().event_bus_name}
    resp = client("events").put_events(Entries=[entry])
    if resp.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the event: {resp['Entries'][0].get('ErrorCode')}")


def request_replan(region_day: str, dedup_id: str) -> None:
    """Ask for a re-plan of one region-day; FIFO-grouped per region-day so runs never overlap."""
    body = json.dumps({"region_day": region_day})
    queue_url = settings.get().replan_queue_url
    if not queue_url:
        raise RuntimeError("REPLAN_QUEUE_URL is not set")
    client("sqs").send_message(QueueUrl=queue_url, MessageBody=body,
                                MessageGroupId=region_day, MessageDeduplicationId=dedup_id[:128])
