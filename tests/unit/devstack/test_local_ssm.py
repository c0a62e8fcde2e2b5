"""The local stack's SSM: exactly the template's secret parameters, answered as SSM answers."""
from __future__ import annotations

import json

from devstack import aws_local
from devstack import template as tpl


def _ask(operation: str, body: dict):
    status, raw, _ = aws_local.answer(None, f"{aws_local.PREFIX}/ssm", {"x-amz-target": f"AmazonSSM.{operation}"},
                                      json.dumps(body).encode())
    return status, json.loads(raw)


def test_the_store_holds_the_template_parameters_by_their_names():
    """The SSM names come from template.yaml's Parameters (their defaults), one per local secret."""
    params = tpl.load()["Parameters"]
    assert aws_local.ssm_parameters() == {params["StripeSecretParameter"]["Default"]: "sk_test_local",
                                          params["StripeWebhookSecretParameter"]["Default"]: "whsec_local_stack",
                                          params["IdPepperParameter"]["Default"]: "homevisits-local-dev-pepper"}


def test_a_securestring_is_plain_only_with_decryption():
    """WithDecryption gives the value; without it SSM gives the ciphertext, never the secret."""
    status, body = _ask("GetParameter", {"Name": "/homevisits/stripe/secret-key", "WithDecryption": True})
    assert status == 200 and body["Parameter"]["Value"] == "sk_test_local"
    assert body["Parameter"]["Type"] == "SecureString"
    status, body = _ask("GetParameter", {"Name": "/homevisits/stripe/secret-key"})
    assert status == 200 and "sk_test_local" not in body["Parameter"]["Value"]


def test_a_parameter_the_store_lacks_is_parameter_not_found():
    """A name that was never created answers SSM's ParameterNotFound (400), with no value."""
    status, body = _ask("GetParameter", {"Name": "/homevisits/stripe/secret-kye", "WithDecryption": True})
    assert (status, body["__type"]) == (400, "ParameterNotFound")
    status, body = _ask("GetParameters", {"Names": ["/homevisits/stripe/secret-key", "/nope"], "WithDecryption": True})
    assert [p["Value"] for p in body["Parameters"]] == ["sk_test_local"] and body["InvalidParameters"] == ["/nope"]
