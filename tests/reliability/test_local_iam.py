"""IAM enforced on the local stack: each function's AWS calls are checked against its template
policies (devstack.iam, installed by the local Lambda runtime), so a permission the template
lacks fails here as it would on AWS. These scenarios once failed only in production."""
from __future__ import annotations

import json
import os
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
    d = api.free_day("skane", 2)
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


_SSM_PROBE = r"""
import copy, json, os, re, sys
from devstack import iam, template as tpl
function_id, drop = sys.argv[1], sys.argv[2:]
t = copy.deepcopy(tpl.load())
def named(x):
    return any(d in json.dumps(x) for d in drop)
for policy in t["Resources"][function_id]["Properties"]["Policies"]:  # the resources naming `drop` go
    if isinstance(policy, dict) and "Statement" in policy:
        for s in policy["Statement"]:
            if isinstance(s["Resource"], list):
                s["Resource"] = [r for r in s["Resource"] if not named(r)]
        policy["Statement"] = [s for s in policy["Statement"] if s["Resource"] and not named(s["Resource"])]
iam.enforce(function_id, t)
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from payments import gateway
out = {}
from homevisits import settings
config = settings.get()
for env_name, value, parameter in (
        ("STRIPE_API_KEY", config.stripe_api_key, config.stripe_secret_parameter),
        ("STRIPE_WEBHOOK_SECRET", config.stripe_webhook_secret, config.stripe_webhook_secret_parameter)):
    try:
        out[env_name] = gateway._secret(value, parameter, env_name)
    except GetParameterError as e:  # Powertools keeps only the message of botocore's ClientError
        code = re.search(r"An error occurred \((\w+)\)", str(e))
        out[env_name] = code.group(1) if code else repr(e)
print(json.dumps(out))
"""


def _read_stripe_secrets(function_id: str, *drop: str, env: dict | None = None) -> dict:
    from devstack.aws_local import SECRETS
    from devstack import template as tpl
    base = {k: v for k, v in os.environ.items() if k not in SECRETS}  # as the local runtime gives them
    base.update(tpl.function_environment(function_id))
    proc = subprocess.run([sys.executable, "-c", _SSM_PROBE, function_id, *drop], capture_output=True, text=True,
                          timeout=60, env={**base, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_payments_function_reads_its_stripe_secrets_from_ssm_as_its_role_allows(stack):
    """No secret value in the function's environment: both come from the SSM SecureStrings the
    template names, through the local gateway's SSM, decrypted, with ssm:GetParameter checked."""
    assert _read_stripe_secrets("PaymentsFunction") == {"STRIPE_API_KEY": "sk_test_local",
                                                        "STRIPE_WEBHOOK_SECRET": "whsec_local_stack"}


def test_a_missing_ssm_permission_denies_the_secret(stack):
    """PaymentsFunction without its ssm:GetParameter statement for the webhook secret: AWS's
    AccessDeniedException for that one; ReconcileFunction's role never names the webhook secret."""
    assert _read_stripe_secrets("PaymentsFunction", "StripeWebhookSecretParameter") == {
        "STRIPE_API_KEY": "sk_test_local", "STRIPE_WEBHOOK_SECRET": "AccessDeniedException"}
    got = _read_stripe_secrets("ReconcileFunction", env={"STRIPE_WEBHOOK_SECRET_PARAMETER": "/homevisits/stripe/webhook-secret"})
    assert got == {"STRIPE_API_KEY": "sk_test_local", "STRIPE_WEBHOOK_SECRET": "AccessDeniedException"}


def test_a_misnamed_parameter_is_denied_like_any_parameter_the_role_does_not_name(stack):
    """STRIPE_SECRET_PARAMETER with a typo: the role names only the template's parameter, so AWS
    refuses before looking the name up (no fallback to a value from anywhere else)."""
    got = _read_stripe_secrets("PaymentsFunction", env={"STRIPE_SECRET_PARAMETER": "/homevisits/stripe/secret-kye"})
    assert got["STRIPE_API_KEY"] == "AccessDeniedException"
