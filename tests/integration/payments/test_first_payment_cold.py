"""A new payments instance's first payment does no set-up work inside its 15 s: Stripe's SDK and the
AWS clients the payment uses are built at the function's init (payments.deps.warm), which Lambda does
not count in the invocation's timeout. On a loaded machine that set-up (~1 s of CPU, six botocore
sessions and `import stripe`) took seconds of the first payment and made it time out
(docs/benchmarks-booking.md). Checked in a fresh interpreter against the real local stack."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.stack

PROBE = r"""
import json, sys
import payments.app as app
import botocore.session
stripe_at_init = "stripe" in sys.modules
made = []
orig = botocore.session.Session.create_client
def spy(self, name, *a, **k):
    made.append(name)
    return orig(self, name, *a, **k)
botocore.session.Session.create_client = spy
from devstack.lambda_runtime import LambdaContext
result = app.lambda_handler(json.loads(sys.stdin.read()), LambdaContext("PaymentsFunction", 15))
print(json.dumps({"status": result["statusCode"], "body": json.loads(result["body"]),
                  "stripe_at_init": stripe_at_init, "clients_made_by_the_payment": made}))
"""


def test_a_first_payment_builds_no_client_and_imports_no_stripe(stack, book, card):
    from devstack.gateway import api_event

    booking_id, token, _ = book()
    event = api_event("POST", f"/bookings/{booking_id}/payment", token=token,
                      json_body={"payment_method": card()})[1]
    proc = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(event), capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == 200 and out["body"] == {"status": "authorized"}, out
    assert out["stripe_at_init"], "Stripe's SDK is imported by the first payment, not at init"
    assert out["clients_made_by_the_payment"] == [], out["clients_made_by_the_payment"]
