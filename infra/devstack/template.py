"""Reads template.yaml (with CloudFormation's short-form tags) and derives what the local stack needs:
tables to create, HTTP routes, function environments, event rules and queue consumers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from devstack.paths import TEMPLATE


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@lru_cache(maxsize=2)
def load(path: str = str(TEMPLATE)) -> dict:
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CfnLoader)


def resources(kind: str, template: dict | None = None) -> dict:
    t = template or load()
    return {k: v for k, v in t["Resources"].items() if v["Type"] == kind}


def table_definitions(template: dict | None = None) -> list[dict]:
    """CreateTable arguments for every AWS::DynamoDB::Table, named by logical id."""
    out = []
    for logical_id, res in resources("AWS::DynamoDB::Table", template).items():
        p = res["Properties"]
        args = {
            "TableName": logical_id,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
        if p.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        out.append({"args": args, "ttl": (p.get("TimeToLiveSpecification") or {}).get("AttributeName")})
    return out


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    handler: str
    auth: bool

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property  # matched against every request the gateway serves
    def pattern(self) -> re.Pattern:
        rx = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", rx)
        return re.compile(f"^{rx}$")


def functions(template: dict | None = None) -> dict:
    return resources("AWS::Serverless::Function", template)


def handler_of(logical_id: str, template: dict | None = None) -> str:
    return functions(template)[logical_id]["Properties"]["Handler"]


def match(routes_: list[Route], method: str, path: str) -> tuple[Route, dict] | None:
    """The route serving `method path` and its path parameters (URL-decoded), or None."""
    from urllib.parse import unquote
    method = method.upper()
    for r in routes_:
        m = r.pattern.match(path)
        if m and r.method == method:
            return r, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


def routes(template: dict | None = None) -> list[Route]:
    t = template or load()
    default_auth = bool(
        (resources("AWS::Serverless::HttpApi", t).get("HttpApi", {}).get("Properties", {})
         .get("Auth", {}).get("DefaultAuthorizer")))
    out = []
    for fid, fn in functions(t).items():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] != "HttpApi":
                continue
            p = ev["Properties"]
            auth = default_auth and (p.get("Auth") or {}).get("Authorizer") != "NONE"
            out.append(Route(p["Method"].upper(), p["Path"], fid, fn["Properties"]["Handler"], auth))
    return out


def function_environment(logical_id: str, template: dict | None = None) -> dict:
    """Globals + the function's own variables, with !Ref to a table or queue resolved to its local name."""
    t = template or load()
    env = dict(t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    env.update((functions(t)[logical_id]["Properties"].get("Environment") or {}).get("Variables", {}))
    resolved = {}
    for k, v in env.items():
        if isinstance(v, dict) and "Ref" in v:
            ref = v["Ref"]
            param = t.get("Parameters", {}).get(ref)
            resolved[k] = str(param.get("Default", "")) if param else ref
        elif isinstance(v, (str, int, float)):
            resolved[k] = str(v)
    return resolved


def queue_consumers(template: dict | None = None) -> dict[str, str]:
    """Queue logical id -> the function consuming it (SQS event source)."""
    out = {}
    for fid, fn in functions(template).items():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] == "SQS":
                out[ev["Properties"]["Queue"]["Fn::GetAtt"][0]] = fid
    return out


def stream_consumers(template: dict | None = None) -> dict[str, list[str]]:
    """Table logical id -> functions consuming its stream."""
    out: dict[str, list[str]] = {}
    for fid, fn in functions(template).items():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] == "DynamoDB":
                out.setdefault(ev["Properties"]["Stream"]["Fn::GetAtt"][0], []).append(fid)
    return out


def scheduled_functions(template: dict | None = None) -> dict[str, str]:
    """Function logical id -> schedule expression."""
    out = {}
    for fid, fn in functions(template).items():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] in ("Schedule", "ScheduleV2"):
                out[fid] = ev["Properties"]["ScheduleExpression"]
    return out


def event_rules(template: dict | None = None) -> list[tuple[dict, str]]:
    """(EventPattern, target queue logical id) for every rule on the bus."""
    out = []
    for res in resources("AWS::Events::Rule", template).values():
        p = res["Properties"]
        for target in p.get("Targets", []):
            arn = target["Arn"]
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                out.append((p["EventPattern"], arn["Fn::GetAtt"][0]))
    return out


def matches(pattern: dict, event: dict) -> bool:
    """EventBridge pattern matching for the subset the template uses (lists of exact values)."""
    for key, allowed in pattern.items():
        if isinstance(allowed, dict):
            if not isinstance(event.get(key), dict) or not matches(allowed, event[key]):
                return False
        elif event.get(key) not in allowed:
            return False
    return True
