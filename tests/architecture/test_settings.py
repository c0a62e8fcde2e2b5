"""The environment is read in one place (`homevisits/settings.py`), validated once at cold start,
and its figures agree with template.yaml (read from the code and the template, nothing deployed)."""
from __future__ import annotations

import ast
from pathlib import Path

import pydantic
import pytest

from devstack import template as tpl
from homevisits import settings

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
SETTINGS = FUNCTIONS / "shared" / "homevisits" / "settings.py"
# The only modules of functions/ allowed to read the process environment: none but the settings.
ALLOWED = {SETTINGS}
ENV_READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(tree: ast.Module) -> list[int]:
    """Lines touching the process environment: `os.environ…`, `os.getenv(…)`, `from os import environ`
    and the like (also under another name for `os`)."""
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENV_READERS \
                and isinstance(node.value, ast.Name) and node.value.id in os_names:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ENV_READERS for a in node.names):
            lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment():
    offenders = []
    for path in sorted(FUNCTIONS.rglob("*.py")):
        if path in ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(ROOT)}:{line}" for line in environment_reads(tree)]
    assert offenders == []


def test_the_environment_check_sees_every_way_of_reading_it():
    code = ("import os\nimport os as o\nfrom os import getenv, path\n"
            "a = os.environ['X']\nb = o.getenv('Y')\nc = os.environ.get('Z')\nd = os.path.join('p')\n")
    assert environment_reads(ast.parse(code)) == [3, 4, 5, 6]


def _handler_modules() -> dict[str, Path]:
    out = {}
    for fid, fn in tpl.functions().items():
        module = fn["Properties"]["Handler"].rpartition(".")[0]
        code_uri = ROOT / fn["Properties"]["CodeUri"]
        out[fid] = code_uri / (module.replace(".", "/") + ".py")
    return out


def test_every_lambda_entry_validates_its_settings_at_cold_start():
    """Each handler module that uses the shared package calls `settings.get()` at module level, so a
    bad environment fails the cold start instead of some later request."""
    missing = []
    for fid, path in _handler_modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses_shared = any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("homevisits")
                          for n in ast.walk(tree))
        at_import = any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                        and ast.unparse(n.value.func) == "settings.get" for n in tree.body)
        if uses_shared and not at_import:
            missing.append(fid)
    assert missing == []


def test_every_table_has_its_variable_by_the_one_naming_rule():
    """Globals holds `<NAME>_TABLE: !Ref <Name>Table` for each table, so the code derives a table's
    variable from its logical id (`settings.table_env_var`) instead of repeating a list."""
    template = tpl.load()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    tables = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) >= 6
    for logical_id in tables:
        assert variables.get(settings.table_env_var(logical_id)) == {"Ref": logical_id}, logical_id
    table_vars = {k: v for k, v in variables.items() if k.endswith("_TABLE")}
    assert {v["Ref"] for v in table_vars.values()} == set(tables)


def test_table_names_follow_the_environment_of_the_template():
    env = {"BOOKINGS_TABLE": "homevisits-prod-BookingsTable-1X", "IDEMPOTENCY_TABLE": "idem", "OTHER": "x"}
    s = settings.Settings.from_environ(env)
    assert s.table_name("BookingsTable") == "homevisits-prod-BookingsTable-1X"
    assert s.table_name("IdempotencyTable") == "idem"
    assert s.table_name("PlansTable") == "PlansTable"  # the local stack names tables by logical id


def _timeouts() -> dict[str, float]:
    template = tpl.load()
    default = template["Globals"]["Function"].get("Timeout", 3)
    return {fid: float(fn["Properties"].get("Timeout", default)) for fid, fn in tpl.functions(template).items()}


def test_the_one_solver_maximum_fits_every_function_that_solves():
    """The API refuses a budget above SOLVER_TIME_LIMIT_MAX_S and the worker honours any budget up to
    it: the functions that run the solver (the dispatcher's optimize, the re-plan worker) keep at
    least 5 s beyond it to read the day and store the plan, and the HTTP API's 30 s holds the former."""
    timeouts = _timeouts()
    for fid in ("DispatchFunction", "ReplanWorkerFunction"):
        assert settings.SOLVER_TIME_LIMIT_MAX_S + 5 <= timeouts[fid], (fid, timeouts[fid])
    assert timeouts["DispatchFunction"] < 30


def test_the_api_document_states_the_same_maximum():
    import json
    spec = json.loads((FUNCTIONS / "docs" / "apidocs" / "openapi.json").read_text(encoding="utf-8"))
    maxima = set()

    def walk(node):
        if isinstance(node, dict):
            if "time_limit_s" in (node.get("properties") or {}):
                maxima.add(node["properties"]["time_limit_s"].get("anyOf", [{}])[0].get("maximum"))
            if node.get("name") == "time_limit_s":
                maxima.add(node["schema"].get("anyOf", [{}])[0].get("maximum"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(spec)
    assert maxima == {settings.SOLVER_TIME_LIMIT_MAX_S}


@pytest.mark.parametrize("env", [{"LATE_RISK_MINUTES": "soon"}, {"TRAVEL_CACHE_TTL_DAYS": "-1"},
                                 {"OPTIMIZE_TIME_LIMIT_S": "60"}, {"TRAVEL_CACHE_DYNAMODB": "perhaps"}])
def test_a_bad_value_is_refused_naming_its_variable(env):
    with pytest.raises(pydantic.ValidationError, match=next(iter(env))):
        settings.Settings.from_environ(env)


def test_an_empty_variable_counts_as_unset_and_secrets_do_not_print():
    s = settings.Settings.from_environ({"CONSOLE_TILE_URL": "", "AMAZON_LOCATION_API_KEY": "",
                                        "STRIPE_API_KEY": "sk_test_secret", "LATE_RISK_MINUTES": ""})
    assert s.console_tile_url == "" and s.amazon_location_api_key is None and s.late_risk_minutes == 15
    assert "sk_test_secret" not in repr(s) and s.stripe_api_key.get_secret_value() == "sk_test_secret"
