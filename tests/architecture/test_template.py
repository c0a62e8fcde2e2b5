"""template.yaml is the one description of the AWS resources: it lints, its handlers exist, its tables
are protected, its functions get only the tables they need, and each function imports only what it
ships (the dispatch build drops numpy/pandas; see scripts/sam.sh and docs/deployment.md)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


# ---------- loading the template ----------
class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags: `!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": [A, B]}."""


def _tag(loader, suffix, node):
    key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)


def _resources(template: dict, type_: str) -> dict:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_}


def _functions(template: dict) -> dict:
    return _resources(template, "AWS::Serverless::Function")


def _code_dir(fn: dict) -> str:
    """'functions/booking/' -> 'booking' (the function family)."""
    return Path(fn["Properties"]["CodeUri"]).name


def _refs(node) -> set[str]:
    """Every logical id referenced (Ref, GetAtt, ${X} / ${X.Attr} in Sub) anywhere below node."""
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                out.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if not isinstance(v, str):
                    out |= _refs(v[1])
            else:
                out |= _refs(v)
    elif isinstance(node, list):
        for item in node:
            out |= _refs(item)
    return out


def _tables_in_policies(template: dict, fn: dict) -> set[str]:
    tables = set(_resources(template, "AWS::DynamoDB::Table"))
    return _refs(fn["Properties"].get("Policies", [])) & tables


# ---------- lint ----------
def _cfn_lint() -> list[str]:
    exe = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    if exe is None:
        pytest.fail("cfn-lint is not installed (it comes with the dev extra: make setup)")
    return [exe]


def test_cfn_lint_passes():
    proc = subprocess.run([*_cfn_lint(), str(TEMPLATE)], capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert proc.returncode == 0, f"cfn-lint found problems:\n{proc.stdout}{proc.stderr}"


# ---------- handlers resolve, and import only what their function ships ----------
# Modules a function family must not load when its handler module is imported (cold start, and the
# package is not even in that function's artifact). Dispatch handlers load OR-Tools lazily, when they
# optimize -- except the re-plan worker, whose whole job is optimizing.
FORBIDDEN_AT_IMPORT = {
    "booking": {"ortools", "stripe", "numpy", "pandas"},
    "payments": {"ortools", "numpy", "pandas"},
    "dispatch": {"ortools", "stripe", "numpy", "pandas"},
    "docs": {"ortools", "stripe", "numpy", "pandas"},
}
ALLOWED_EXTRA = {"dispatch.worker": {"ortools"}}

_PROBE = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])   # the function's CodeUri first, as /var/task is on Lambda
for blocked in json.loads(sys.argv[4]):
    sys.modules[blocked] = None   # not in this function's artifact: importing it must fail loudly
mod = importlib.import_module(sys.argv[2])
attr = getattr(mod, sys.argv[3], None)
print(json.dumps({"callable": callable(attr), "file": getattr(mod, "__file__", None),
                  "loaded": sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None})}))
"""


def _probe_env(template: dict, fn: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(AWS_DEFAULT_REGION="eu-north-1", AWS_REGION="eu-north-1", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    variables = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    variables.update(fn["Properties"].get("Environment", {}).get("Variables", {}))
    for name, value in variables.items():  # table names etc.: the env var names as in the template
        env[name] = value if isinstance(value, str) else f"test-{name.lower().replace('_', '-')}"
    return env


def _handlers() -> list:
    doc = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    return [pytest.param(lid, id=lid) for lid in sorted(_functions(doc))]


@pytest.mark.parametrize("logical_id", _handlers())
def test_handler_resolves_and_imports_only_what_it_needs(template, logical_id):
    fn = _functions(template)[logical_id]
    props = fn["Properties"]
    code_dir = ROOT / props["CodeUri"]
    module, _, attr = props["Handler"].rpartition(".")
    family = _code_dir(fn)
    forbidden = FORBIDDEN_AT_IMPORT.get(family, {"ortools", "stripe"}) - ALLOWED_EXTRA.get(module, set())
    # numpy/pandas are pruned from the dispatch artifacts: block them so a use shows up as an ImportError.
    blocked = ["numpy", "pandas"] if family == "dispatch" else []
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(code_dir), module, attr, json.dumps(blocked)],
                          capture_output=True, text=True, cwd=ROOT, env=_probe_env(template, fn), timeout=120)
    assert proc.returncode == 0, (
        f"{logical_id}: handler {props['Handler']!r} does not import from {props['CodeUri']} "
        f"(module missing or broken):\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["callable"], f"{logical_id}: {module}.{attr} is missing or not callable"
    assert Path(info["file"]).resolve().is_relative_to(code_dir.resolve()), (
        f"{logical_id}: {module} was imported from {info['file']}, not from its CodeUri {props['CodeUri']}")
    loaded = forbidden & set(info["loaded"])
    assert not loaded, f"{logical_id}: importing {module} loads {sorted(loaded)} (import lazily, or not at all)"


def test_shared_package_does_not_pull_ortools_or_stripe():
    probe = r"""
import importlib, json, pkgutil, sys
import homevisits
for m in pkgutil.walk_packages(homevisits.__path__, "homevisits."):
    importlib.import_module(m.name)
print(json.dumps(sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None})))
"""
    env = dict(os.environ, AWS_DEFAULT_REGION="eu-north-1", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & {"ortools", "stripe", "numpy", "pandas"}, sorted(loaded & {"ortools", "stripe"})


def test_routing_solver_works_without_numpy_and_pandas():
    """scripts/sam.sh drops numpy and pandas from the OR-Tools functions (~150 MB, over the Lambda
    limit otherwise): the optimizer must solve with both unavailable."""
    probe = r"""
import sys
sys.modules["numpy"] = None
sys.modules["pandas"] = None
sys.path.insert(0, sys.argv[1])
import dispatch.optimizer
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
manager = pywrapcp.RoutingIndexManager(4, 1, 0)
routing = pywrapcp.RoutingModel(manager)
cb = routing.RegisterTransitCallback(lambda i, j: abs(manager.IndexToNode(i) - manager.IndexToNode(j)))
routing.SetArcCostEvaluatorOfAllVehicles(cb)
params = pywrapcp.DefaultRoutingSearchParameters()
params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
assert routing.SolveWithParameters(params) is not None
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", probe, str(ROOT / "functions" / "dispatch")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# ---------- tables ----------
NO_PITR = {"IdempotencyTable": "records live 1 h (TTL) and are recreated by a retry: a restore has no use"}


def test_every_table_is_encrypted_on_demand_and_recoverable(template):
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert tables, "no DynamoDB tables in template.yaml?"
    for lid, table in tables.items():
        props = table["Properties"]
        assert props.get("BillingMode") == "PAY_PER_REQUEST", f"{lid}: BillingMode must be PAY_PER_REQUEST"
        assert (props.get("SSESpecification") or {}).get("SSEEnabled") is True, f"{lid}: SSE not enabled"
        pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is True
        assert pitr or lid in NO_PITR, f"{lid}: point-in-time recovery not enabled"


# ---------- least privilege ----------
def test_policies_reference_only_existing_tables(template):
    tables = set(_resources(template, "AWS::DynamoDB::Table"))
    for lid, fn in _functions(template).items():
        for policy in fn["Properties"].get("Policies", []):
            if isinstance(policy, dict) and any(k.startswith("DynamoDB") for k in policy):
                refs = _refs(policy)
                assert refs and refs <= tables, f"{lid}: DynamoDB policy on {refs - tables or 'nothing'}"


DENIED_TABLES = {  # function family -> tables it must never get access to
    "booking": {"PlansTable"},
    "payments": {"PlansTable", "IdempotencyTable"},  # payments keys Stripe by booking, not by Powertools
    "dispatch": {"PaymentsTable"},
    "docs": {"BookingsTable", "CapacityTable", "ClinicalTable", "PlansTable", "PaymentsTable", "OpsTable",
             "IdempotencyTable"},
}


@pytest.mark.parametrize("family", sorted(DENIED_TABLES))
def test_functions_get_no_access_to_tables_they_do_not_need(template, family):
    functions = {lid: fn for lid, fn in _functions(template).items() if _code_dir(fn) == family}
    assert functions or family == "docs", f"no functions with CodeUri functions/{family}/"
    for lid, fn in functions.items():
        granted = _tables_in_policies(template, fn) & DENIED_TABLES[family]
        assert not granted, f"{lid} ({family}) has access to {sorted(granted)}"


def test_only_payments_functions_can_read_stripe_secrets(template):
    """Outside payments, the one SSM parameter a function may read is the personal-number pepper."""
    for lid, fn in _functions(template).items():
        if _code_dir(fn) == "payments":
            continue
        text = json.dumps(fn["Properties"].get("Policies", []))
        assert "Stripe" not in text, f"{lid} can read a Stripe secret"
        for resource in re.findall(r'parameter\$\{(\w+)\}', text):
            assert resource == "IdPepperParameter", f"{lid} can read SSM parameter {resource}"


# ---------- requirements per function ----------
def _pyproject_ranges() -> dict[str, str]:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in ("dispatch", "payments"):
        reqs += project["optional-dependencies"].get(extra, [])
    return {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in reqs}


@pytest.mark.parametrize("family", ["shared", "booking", "dispatch", "payments"])
def test_function_requirements_match_pyproject(family):
    """Each CodeUri's requirements.txt (compiled by scripts/lock.sh: exact versions with hashes) pins
    versions inside pyproject.toml's ranges, and only dispatch ships OR-Tools, only payments Stripe."""
    from packaging.specifiers import SpecifierSet

    path = ROOT / "functions" / family / "requirements.txt"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing (sam build needs it per CodeUri)"
    ranges = _pyproject_ranges()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", path.read_text(encoding="utf-8"), re.M))
    names = {name.lower() for name in pins}
    assert pins or not path.with_suffix(".in").exists(), f"{path.relative_to(ROOT)}: nothing pinned"
    for name, version in pins.items():
        if name.lower() in ranges:
            assert SpecifierSet(ranges[name.lower()]).contains(version, prereleases=True), (
                f"{path.relative_to(ROOT)}: {name}=={version} is outside pyproject.toml's {ranges[name.lower()]}")
    shipped_elsewhere = {"shared": {"ortools", "stripe"}, "booking": {"ortools", "stripe"},
                         "payments": {"ortools"}, "dispatch": {"stripe"}}[family]
    assert not names & shipped_elsewhere, f"{family} must not ship {sorted(names & shipped_elsewhere)}"


# ---------- identity and data retention ----------
def test_users_cannot_write_their_own_role_or_region(template):
    for lid, client in _resources(template, "AWS::Cognito::UserPoolClient").items():
        writable = client["Properties"].get("WriteAttributes")
        assert writable is not None, f"{lid}: without WriteAttributes users may set custom:role themselves"
        assert not {"custom:role", "custom:region"} & set(writable), f"{lid}: users may write {writable}"


def test_the_personal_number_the_federation_maps_is_writable_by_the_app_client(template):
    """Cognito writes IdP-mapped attributes through the app client: without write access to
    custom:personal_number every BankID sign-in fails (UserPoolClient WriteAttributes docs)."""
    for lid, client in _resources(template, "AWS::Cognito::UserPoolClient").items():
        assert "custom:personal_number" in client["Properties"].get("WriteAttributes", []), lid


def test_alarm_topics_use_a_key_cloudwatch_may_use(template):
    """CloudWatch publishes alarms to an encrypted topic only with kms:GenerateDataKey* and
    kms:Decrypt on its key; the AWS-managed alias/aws/sns key's policy cannot grant that."""
    topics = _resources(template, "AWS::SNS::Topic")
    alarm_targets = {ref for alarm in _resources(template, "AWS::CloudWatch::Alarm").values()
                     for ref in _refs(alarm["Properties"].get("AlarmActions", []))}
    assert alarm_targets and alarm_targets <= set(topics)
    for lid in alarm_targets:
        key = topics[lid]["Properties"].get("KmsMasterKeyId")
        if key is None:
            continue  # unencrypted: CloudWatch needs nothing more
        assert isinstance(key, dict) and "Ref" in key, f"{lid}: {key!r} is not a key of this template"
        policy = template["Resources"][key["Ref"]]["Properties"]["KeyPolicy"]
        granted = [s for s in policy["Statement"] if s["Effect"] == "Allow"
                   and (s.get("Principal") or {}).get("Service") == "cloudwatch.amazonaws.com"]
        actions = {a for s in granted for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions, f"{lid}: CloudWatch may not use {key['Ref']}"


def test_stateful_resources_survive_stack_deletion(template):
    for lid, res in {**_resources(template, "AWS::DynamoDB::Table"),
                     **_resources(template, "AWS::Cognito::UserPool")}.items():
        if lid in NO_PITR:
            continue
        assert res.get("DeletionPolicy") == "Retain" and res.get("UpdateReplacePolicy") == "Retain", (
            f"{lid}: patient/payment data must be retained on stack deletion or replacement")
