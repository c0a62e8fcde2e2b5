"""IAM enforced on the local stack: each function's AWS calls are checked against its template
policies (devstack.iam, installed by the local Lambda runtime), so a permission the template
lacks fails here as it would on AWS. These scenarios once failed only in production."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.stack


def _sms_to(sub: str) -> list:
    from homevisits.persistence.ops import outbox_of
    return [m for m in outbox_of(f"patient:{sub}") if m.channel == "sms"]


def test_a_3ds_hold_finished_by_reconciliation_sends_the_confirmation_sms(api, h):
    """The patient completes 3-D Secure, no webhook comes (localstripe sends none), and the
    scheduled reconciliation confirms the booking: it must also put BookingConfirmed on the bus
    (events:PutEvents in ReconcileFunction's role), or the patient never gets the confirmation SMS."""
    d = h.free_day(api, "skane", 2)
    h.put_shift(api, "skane", d, f"doc-iam-{d:%m%d}", area=h.SKANE)
    p = h.new_person("iam3ds")
    bid = h.expect(h.book(api, p, d, "10:00", h.SKANE), 201)["id"]
    body = h.expect(h.pay(api, p, bid, h.CARD_3DS), 200)
    assert body["status"] == "requires_action", body
    from homevisits.persistence.payments import PaymentModel, booking_pk
    pi_id = PaymentModel.get(booking_pk(bid), "PAYMENT", consistent_read=True).payment_intent_id
    h.stripe_post(f"/v1/payment_intents/{pi_id}/_authenticate",
                  {"client_secret": body["client_secret"], "success": "true", "key": "pk_test_local"})
    api.invoke("ReconcileFunction", {})
    h.drain(api)
    from homevisits.persistence.booking import BookingModel
    assert BookingModel.get(bid, consistent_read=True).status == "confirmed"
    assert [m.kind for m in _sms_to(p.sub)] == ["booking_confirmed"], "no confirmation SMS after reconciliation"
    assert _sms_to(p.sub)[0].status == "sent_locally"


_PROBE = r"""
import json, sys
from devstack import iam
iam.enforce(sys.argv[1])
import boto3
from botocore.exceptions import ClientError
ddb = boto3.client("dynamodb")
out = {}
for table in sys.argv[2:]:
    try:
        ddb.get_item(TableName=table, Key={"pk": {"S": "x"}, "sk": {"S": "y"}})
        out[table] = "allowed"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        out[table] = "denied" if code == "AccessDeniedException" else "allowed"  # e.g. a key-schema error
print(json.dumps(out))
"""


def test_a_function_may_touch_only_the_tables_its_policies_name(stack):
    """The notifications function (OpsTable CRUD, BookingsTable read) reading PaymentsTable gets
    AWS's AccessDeniedException before any request leaves the process; its own tables answer."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, "NotificationsFunction", "OpsTable", "PaymentsTable",
                           "PlansTable"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "OpsTable": "allowed", "PaymentsTable": "denied", "PlansTable": "denied"}
    assert "NotificationsFunction denied dynamodb:GetItem on arn:aws:dynamodb:" in proc.stderr
