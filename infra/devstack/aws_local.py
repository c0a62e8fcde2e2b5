"""The AWS APIs the local stack answers itself: EventBridge PutEvents, SQS SendMessage, SNS Publish
and SSM GetParameter(s).

The functions call them with boto3 exactly as on AWS; locally the endpoints (set by `environment`:
AWS_ENDPOINT_URL_EVENTBRIDGE, _SQS, _SNS, _SSM, which botocore names by service id) are paths of the
local gateway, which hands events to the template's rules and messages to its queues. So the local
path is the production path: the same client, the same request validation, the same error handling
— and the local IAM (devstack.iam) sees every one of these calls, as AWS would.

SMS are not sent anywhere: Publish answers a message id and keeps a count, never the text or the
number (patient data stays out of the stack's memory and logs).

Secrets reach the functions as on AWS: the template gives each function the *name* of an SSM
SecureString (`STRIPE_SECRET_PARAMETER`, …), and the function reads it with Powertools `parameters`
(ssm:GetParameter, checked by the local IAM). The local Lambda runtime gives the functions none of
the values (`SECRETS`); the SSM store here holds exactly the template's parameters (by their
default names) with local values, answers `ParameterNotFound` for any other name, and gives a
SecureString's plain value only `WithDecryption`, as SSM does."""
from __future__ import annotations

import hashlib
import json
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

from devstack import template as tpl

PREFIX = "/_local/aws"

# env variable a local tool or test may use -> (the template parameter naming its SSM SecureString,
# the local value). The local Lambda runtime removes these variables from the functions' environment.
SECRETS = {
    "STRIPE_API_KEY": ("StripeSecretParameter", "sk_test_local"),
    "STRIPE_WEBHOOK_SECRET": ("StripeWebhookSecretParameter", "whsec_local_stack"),
    "HOMEVISITS_ID_PEPPER": ("IdPepperParameter", "homevisits-local-dev-pepper"),
}
_sms_lock = threading.Lock()
sms_published = 0


def environment(api_port: int, template: dict | None = None) -> dict:
    """Endpoint variables for boto3, and the queue URLs the template's functions are given."""
    from devstack import iam

    base = f"http://127.0.0.1:{api_port}{PREFIX}"
    env = {"AWS_ENDPOINT_URL_EVENTBRIDGE": f"{base}/events", "AWS_ENDPOINT_URL_SQS": f"{base}/sqs",
           "AWS_ENDPOINT_URL_SNS": f"{base}/sns", "AWS_ENDPOINT_URL_SSM": f"{base}/ssm"}
    t = template or tpl.load()
    queues = tpl.resources("AWS::SQS::Queue", t)
    variables = dict(t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    for fn in tpl.functions(t).values():
        variables.update((fn["Properties"].get("Environment") or {}).get("Variables", {}))
    for name, value in variables.items():
        if isinstance(value, dict) and value.get("Ref") in queues:
            env[name] = f"{base}/sqs/{iam.ACCOUNT}/{iam._local_name(value['Ref'], t)}"
    return env


def secret_environment() -> dict:
    """The secrets' local values under their env names (for local tools and tests, never functions)."""
    return {env: value for env, (_, value) in SECRETS.items()}


def ssm_parameters(template: dict | None = None) -> dict[str, str]:
    """The local SSM store: each template parameter SECRETS names, by its default name -> value."""
    params = (template or tpl.load()).get("Parameters", {})
    return {params[pid]["Default"]: value for pid, value in SECRETS.values() if pid in params}


def _ssm_parameter(name: str, value: str, decrypt: bool) -> dict:
    from devstack import iam

    shown = value if decrypt else "AQICAH" + hashlib.sha256(value.encode()).hexdigest()  # ciphertext stand-in
    return {"Name": name, "Type": "SecureString", "Value": shown, "Version": 1, "DataType": "text",
            "LastModifiedDate": 0, "ARN": iam._ssm_arn(name)}


def _ssm(operation: str, req: dict):
    store, decrypt = ssm_parameters(), bool(req.get("WithDecryption"))
    if operation == "GetParameter":
        name = req.get("Name", "")
        if name not in store:
            return _error("ParameterNotFound", f"parameter {name} not found")
        return _json(200, {"Parameter": _ssm_parameter(name, store[name], decrypt)})
    if operation == "GetParameters":
        names = req.get("Names", [])
        return _json(200, {"Parameters": [_ssm_parameter(n, store[n], decrypt) for n in names if n in store],
                           "InvalidParameters": [n for n in names if n not in store]})
    return _error("UnknownOperationException", f"the local stack does not answer SSM {operation}")


def _json(status: int, body: dict, content_type: str = "application/x-amz-json-1.1"):
    return status, json.dumps(body).encode(), {"content-type": content_type}


def _error(code: str, message: str, status: int = 400):
    return _json(status, {"__type": code, "message": message})


def answer(router, path: str, headers, body: bytes):
    """(status, body, headers) for one AWS API request to the local stack."""
    service = path[len(PREFIX):].strip("/").split("/", 1)[0]
    target = headers.get("x-amz-target") or ""
    operation = target.rpartition(".")[2]
    if service == "events" and operation == "PutEvents":
        entries = json.loads(body or b"{}").get("Entries", [])
        router.put_events(entries)
        return _json(200, {"FailedEntryCount": 0, "Entries": [{"EventId": str(uuid.uuid4())} for _ in entries]})
    if service == "sqs" and operation == "SendMessage":
        req = json.loads(body or b"{}")
        name = urlsplit(req["QueueUrl"]).path.rstrip("/").rsplit("/", 1)[-1]
        queue = router.queues.get(name.removesuffix(".fifo"))
        if queue is None:
            return _error("AWS.SimpleQueueService.NonExistentQueue", f"no queue {name}")
        text = req["MessageBody"]
        queue.send(text, req.get("MessageGroupId"), req.get("MessageDeduplicationId"))
        return _json(200, {"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": hashlib.md5(text.encode()).hexdigest()},
                     "application/x-amz-json-1.0")
    if service == "ssm":
        return _ssm(operation, json.loads(body or b"{}"))
    if service == "sns":
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("Action") == "Publish":
            global sms_published
            with _sms_lock:
                sms_published += 1
            xml = ('<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
                   f"<MessageId>{uuid.uuid4()}</MessageId></PublishResult><ResponseMetadata>"
                   f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></PublishResponse>")
            return 200, xml.encode(), {"content-type": "text/xml"}
        return _error("InvalidAction", f"the local stack does not answer SNS {form.get('Action')}")
    return _error("UnknownOperationException", f"the local stack does not answer {service} {operation}")
