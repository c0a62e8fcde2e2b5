"""IAM, enforced locally: a function may make only the AWS calls its template policies allow.

On AWS each function runs with a role holding its `Policies` (SAM policy templates and inline
statements); a call they do not allow fails with AccessDenied. The local runtime would otherwise
let every call through, so a missing permission would first show in production. Here:

- `policy_statements(function_id)` expands the function's policies as SAM does (the SAM policy
  templates come from `samtranslator`, the AWS SAM translator's own `policy_templates.json`) and
  resolves their intrinsics to the local stack's names, account and region;
- `authorization_requests(service, operation, params)` says which IAM actions on which resources,
  with which request condition keys, one API call needs (per AWS's service authorization
  reference: e.g. a TransactWriteItems needs PutItem/UpdateItem/DeleteItem/ConditionCheckItem on
  each item's table, a Publish to a phone number needs sns:Publish on "*");
- `evaluate(statements, request)` decides as IAM's policy evaluation logic does for one
  identity-based policy set: an explicit Deny wins, else an Allow whose Action, Resource and
  Condition all match, else an implicit deny;
- `enforce(function_id)` hooks every botocore client the function's process creates
  (`before-parameter-build`) and raises the AccessDenied ClientError AWS would answer.

moto's `moto.iam.access_control` was considered and not used: it ignores a condition whose key is
absent from the request (IAM treats it as not matching, which is how `sns:Protocol` on a Publish
denied every SMS) and turns a non-matching condition into an explicit deny.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from devstack import template as tpl

ACCOUNT = "000000000000"
PARTITION = "aws"


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-north-1"


# ---------------------------------------------------------------- the template's policies
def _local_name(logical_id: str, t: dict) -> str:
    """The physical name a resource has on the local stack (tables and queues: the logical id)."""
    res = t["Resources"][logical_id]
    if res["Type"] == "AWS::SQS::Queue" and res.get("Properties", {}).get("FifoQueue"):
        return f"{logical_id}.fifo"
    return logical_id


def _ref(name: str, t: dict) -> str:
    pseudo = {"AWS::Region": region(), "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
              "AWS::StackName": "homevisits", "AWS::URLSuffix": "amazonaws.com"}
    if name in pseudo:
        return pseudo[name]
    if name in t.get("Parameters", {}):
        return str(t["Parameters"][name].get("Default", ""))
    res = t["Resources"][name]
    kind = res["Type"]
    if kind == "AWS::SQS::Queue":  # Ref of a queue is its URL
        return queue_url(_local_name(name, t))
    if kind == "AWS::SNS::Topic":
        return f"arn:{PARTITION}:sns:{region()}:{ACCOUNT}:{name}"
    return _local_name(name, t)


def _get_att(name: str, attr: str, t: dict) -> str:
    kind = t["Resources"][name]["Type"]
    local = _local_name(name, t)
    if attr == "QueueName":
        return local
    if attr == "Arn":
        service = {"AWS::SQS::Queue": "sqs", "AWS::SNS::Topic": "sns", "AWS::DynamoDB::Table": "dynamodb",
                   "AWS::Events::EventBus": "events", "AWS::KMS::Key": "kms"}.get(kind, "unknown")
        resource = {"dynamodb": f"table/{local}", "events": f"event-bus/{_ref(name, t)}",
                    "kms": f"key/{local}"}.get(service, local)
        return f"arn:{PARTITION}:{service}:{region()}:{ACCOUNT}:{resource}"
    if attr == "StreamArn":
        return f"arn:{PARTITION}:dynamodb:{region()}:{ACCOUNT}:table/{local}/stream/*"
    raise ValueError(f"the local IAM cannot resolve !GetAtt {name}.{attr}")


def _resolve(node, t: dict):
    """Resolve Ref, Fn::GetAtt and Fn::Sub below `node` to local values."""
    if isinstance(node, list):
        return [_resolve(n, t) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return _ref(node["Ref"], t)
    if set(node) == {"Fn::GetAtt"}:
        name, attr = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        return _get_att(name, attr, t)
    if set(node) == {"Fn::Sub"}:
        text, extra = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        values = {k: _resolve(v, t) for k, v in extra.items()}

        def one(m: re.Match) -> str:
            key = m.group(1)
            if key in values:
                return str(values[key])
            if "." in key and not key.startswith("AWS::"):
                return _get_att(*key.split(".", 1), t)
            return _ref(key, t)

        return re.sub(r"\$\{([^}!]+)\}", one, text)
    return {k: _resolve(v, t) for k, v in node.items()}


@lru_cache(maxsize=1)
def _policy_templates():
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor
    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


def policy_statements(function_id: str, template: dict | None = None) -> list[dict]:
    """The function's policy statements as its role would hold them, resolved to local values."""
    t = template or tpl.load()
    props = tpl.functions(t)[function_id]["Properties"]
    statements: list[dict] = []
    for policy in props.get("Policies") or []:
        if isinstance(policy, str) or not isinstance(policy, dict):
            raise ValueError(f"{function_id}: managed policy {policy!r} cannot be evaluated locally")
        if "Statement" in policy:
            doc = policy
        else:
            [(name, params)] = policy.items()
            doc = _policy_templates().convert(name, params or {})
        statements.extend(s if isinstance(s, dict) else {} for s in _listify(doc["Statement"]))
    return _resolve(statements, t)


def queue_url(queue_name: str) -> str:
    """The local stack's URL of a queue (see devstack.aws_local)."""
    base = os.environ.get("AWS_ENDPOINT_URL_SQS") or "https://sqs.local"
    return f"{base.rstrip('/')}/{ACCOUNT}/{queue_name}"


# ---------------------------------------------------------------- what a call needs
@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict = field(default_factory=dict, compare=False, hash=False)


def _arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region()}:{ACCOUNT}:{resource}"


def _table_arn(name: str, index: str | None = None) -> str:
    if name.startswith("arn:"):
        return name
    return _arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))


TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


@lru_cache(maxsize=1)
def _partition_keys() -> dict:
    """Local table name -> its partition key attribute (from the template)."""
    return {d["args"]["TableName"]: next(k["AttributeName"] for k in d["args"]["KeySchema"] if k["KeyType"] == "HASH")
            for d in tpl.table_definitions()}


def _leading_keys(params: dict) -> dict:
    """The `dynamodb:LeadingKeys` condition key of a call on one table's items: the partition key
    value(s) it touches (Key or Item; a Query's key condition on the table). Absent otherwise."""
    table = str(params.get("TableName", "")).rsplit("/", 1)[-1]
    name = _partition_keys().get(table)
    if not name or params.get("IndexName"):
        return {}
    value = (params.get("Key") or params.get("Item") or {}).get(name)
    if value is None and params.get("KeyConditionExpression"):
        refs = [p for p, n in (params.get("ExpressionAttributeNames") or {}).items() if n == name] + [name]
        for ref in refs:
            m = re.search(re.escape(ref) + r"\s*=\s*(:\w+)", params["KeyConditionExpression"])
            if m:
                value = (params.get("ExpressionAttributeValues") or {}).get(m.group(1))
                break
    if not isinstance(value, dict):
        return {}
    return {"dynamodb:LeadingKeys": [str(next(iter(value.values())))]}


def _dynamodb(operation: str, params: dict) -> list[Request]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        out = []
        for item in params.get("TransactItems", []):
            [(kind, body)] = item.items()
            out.append(Request(f"dynamodb:{TRANSACT_ITEM_ACTIONS[kind]}", _table_arn(body["TableName"]),
                               {"dynamodb:EnclosingOperation": operation, **_leading_keys(body)}))
        return out
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{operation}", _table_arn(t)) for t in params.get("RequestItems", {})]
    if "TableName" in params:
        return [Request(f"dynamodb:{operation}", _table_arn(params["TableName"], params.get("IndexName")),
                        _leading_keys(params))]
    if "StreamArn" in params:
        return [Request(f"dynamodb:{operation}", params["StreamArn"])]
    return [Request(f"dynamodb:{operation}", "*")]


def _bus_arn(name: str | None) -> str:
    name = name or "default"
    return name if name.startswith("arn:") else _arn("events", f"event-bus/{name}")


def _queue_arn(url: str) -> str:
    parts = urlsplit(url).path.strip("/").split("/")
    account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (ACCOUNT, parts[-1])
    return f"arn:{PARTITION}:sqs:{region()}:{account}:{name}"


def _ssm_arn(name: str) -> str:
    return name if name.startswith("arn:") else _arn("ssm", f"parameter/{name.lstrip('/')}")


def authorization_requests(service: str, operation: str, params: dict) -> list[Request]:
    """The IAM (action, resource, request context) checks one API call makes; every one must pass."""
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "events" and operation == "PutEvents":
        return [Request("events:PutEvents", _bus_arn(e.get("EventBusName")),
                        {"events:source": e.get("Source"), "events:detail-type": e.get("DetailType")})
                for e in params.get("Entries", [])]
    if service == "sqs" and "QueueUrl" in params:
        return [Request(f"sqs:{operation}", _queue_arn(params["QueueUrl"]))]
    if service == "sns":
        if operation == "Publish":
            # A direct SMS (PhoneNumber) has no resource to name: IAM checks it against "*".
            target = params.get("TopicArn") or params.get("TargetArn") or "*"
            return [Request("sns:Publish", target)]
        if operation == "Subscribe":  # the only action sns:Protocol / sns:Endpoint are set for
            return [Request("sns:Subscribe", params.get("TopicArn", "*"),
                            {"sns:Protocol": params.get("Protocol"), "sns:Endpoint": params.get("Endpoint")})]
        return [Request(f"sns:{operation}", params.get("TopicArn") or "*")]
    if service == "ssm" and operation in ("GetParameter", "GetParameters"):
        names = [params["Name"]] if "Name" in params else params.get("Names", [])
        return [Request(f"ssm:{operation}", _ssm_arn(n)) for n in names]
    return [Request(f"{service}:{operation}", "*")]


# ---------------------------------------------------------------- evaluation
def _listify(v) -> list:
    return v if isinstance(v, list) else [v]


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: * any run of characters, ? one character (nothing else is special)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _matches_any(patterns, value: str, ignore_case: bool = False) -> bool:
    return any(_wild(str(p), value, ignore_case) for p in _listify(patterns))


def _compare(op: str, expected: list, actual: str) -> bool:
    """One positive condition operator on one request value."""
    if op in ("StringEquals", "ArnEquals"):
        return actual in [str(e) for e in expected]
    if op == "StringEqualsIgnoreCase":
        return actual.lower() in [str(e).lower() for e in expected]
    if op in ("StringLike", "ArnLike"):
        return any(_wild(str(e), actual) for e in expected)
    if op == "Bool":
        return actual.lower() in [str(e).lower() for e in expected]
    raise NotImplementedError(op)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _condition_holds(operator: str, key: str, expected, context: dict) -> bool:
    """One operator/key pair of a Condition block, with IAM's rules for a key the request lacks:
    a positive operator does not match, a negated one does, `...IfExists` does, and `Null` tests
    exactly that."""
    expected = _listify(expected)
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    actual = context.get(key)
    present = actual is not None and actual != []
    if op == "Null":
        return str(expected[0]).lower() == ("false" if present else "true")
    if not present:
        if qualifier == "ForAllValues":
            return True
        return if_exists or op in NEGATED
    values = [str(v) for v in _listify(actual)]
    positive = NEGATED.get(op, op)
    try:
        results = [_compare(positive, expected, v) for v in values]
    except NotImplementedError:
        raise NotImplementedError(f"condition operator {operator} is not evaluated locally") from None
    if op in NEGATED:
        results = [not r for r in results]
    return all(results) if qualifier == "ForAllValues" else any(results)


def _statement_applies(s: dict, req: Request) -> bool:
    if "Action" in s and not _matches_any(s["Action"], req.action, ignore_case=True):
        return False
    if "NotAction" in s and _matches_any(s["NotAction"], req.action, ignore_case=True):
        return False
    if "Resource" in s and not _matches_any(s["Resource"], req.resource):
        return False
    if "NotResource" in s and _matches_any(s["NotResource"], req.resource):
        return False
    for operator, pairs in (s.get("Condition") or {}).items():
        for key, expected in pairs.items():
            if not _condition_holds(operator, key, expected, req.context):
                return False
    return True


def evaluate(statements: list[dict], req: Request) -> str:
    """"allow", "explicit_deny" or "implicit_deny" for one request against identity policies."""
    allowed = False
    for s in statements:
        if _statement_applies(s, req):
            if s.get("Effect") == "Deny":
                return "explicit_deny"
            allowed = allowed or s.get("Effect") == "Allow"
    return "allow" if allowed else "implicit_deny"


# ---------------------------------------------------------------- the hook
ACCESS_DENIED_CODES = {"sns": "AuthorizationError", "sqs": "AccessDenied"}


def access_denied(function_id: str, service: str, operation: str, req: Request, decision: str):
    from botocore.exceptions import ClientError
    why = ("with an explicit deny in an identity-based policy" if decision == "explicit_deny"
           else f"because no identity-based policy allows the {req.action} action")
    message = (f"User: arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{function_id}Role/{function_id} is not "
               f"authorized to perform: {req.action} on resource: {req.resource} {why}")
    return ClientError({"Error": {"Code": ACCESS_DENIED_CODES.get(service, "AccessDeniedException"),
                                  "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 403 if service == "sns" else 400}}, operation)


def checker(function_id: str, statements: list[dict]):
    """A botocore `before-parameter-build` handler refusing what `statements` do not allow."""

    def check(params, model, **_kwargs):
        service = model.service_model.metadata.get("signingName") or model.service_model.endpoint_prefix
        for req in authorization_requests(service, model.name, params or {}):
            decision = evaluate(statements, req)
            if decision != "allow":
                print(f"local IAM: {function_id} denied {req.action} on {req.resource}", file=sys.stderr,
                      flush=True)
                raise access_denied(function_id, service, model.name, req, decision)

    return check


_installed: dict[str, object] = {}


def enforce(function_id: str, template: dict | None = None) -> None:
    """From now on, every botocore client this process creates checks each call against the
    function's template policies (the local Lambda runtime calls this before importing a handler)."""
    import botocore.session

    statements = policy_statements(function_id, template)
    check = checker(function_id, statements)
    _installed["check"] = check
    if "original" in _installed:
        return
    original = botocore.session.Session.create_client
    _installed["original"] = original

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", lambda **kw: _installed["check"](**kw))
        return client

    botocore.session.Session.create_client = create_client


def explain(function_id: str) -> str:
    """The resolved statements of a function (for a person debugging a denial)."""
    return json.dumps(policy_statements(function_id), indent=2)

