"""The payments function is found by use case (issue 12, "Payments by use case"), read from the code
(AST, nothing imported):

- the Stripe port (`payments/gateway.py`) is the only module of functions/ that imports stripe;
- the use cases live in their own modules (hold, capture, cancellation, repair) sharing one small
  context (`payments/context.py`); no module is a catch-all again: none over 350 lines, none with
  a class of more than 15 methods (the old PaymentService had 38);
- the handlers (app, events, webhook, reconcile) call the use-case modules, and nothing imports a
  `payments.service` any more.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
PAYMENTS = FUNCTIONS / "payments" / "payments"
PORT = PAYMENTS / "gateway.py"
USE_CASES = ("hold", "capture", "cancellation", "repair")
MAX_LINES = 350
MAX_METHODS = 15  # the Stripe port has one method per Stripe operation (11); the old service had 38


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_stripe_port_imports_stripe():
    importers = {str(p.relative_to(ROOT)) for p in FUNCTIONS.rglob("*.py")
                 if any(n.split(".")[0] == "stripe" for n in _imported(_tree(p)))}
    assert importers == {str(PORT.relative_to(ROOT))}


def test_each_use_case_has_its_module_and_no_module_is_a_catch_all():
    assert {p.stem for p in PAYMENTS.glob("*.py")} >= {*USE_CASES, "context", "gateway"}
    assert not (PAYMENTS / "service.py").exists()
    too_long = {p.name: n for p in PAYMENTS.glob("*.py")
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert too_long == {}, f"split by use case; over {MAX_LINES} lines: {too_long}"
    big_classes = [f"{p.name}:{node.name} ({n} methods)" for p in PAYMENTS.glob("*.py")
                   for node in ast.walk(_tree(p)) if isinstance(node, ast.ClassDef)
                   if (n := sum(isinstance(b, ast.FunctionDef) for b in node.body)) > MAX_METHODS]
    assert big_classes == []


def test_the_handlers_call_the_use_case_modules():
    wanted = {"app": {"payments.hold", "payments.cancellation"},
              "events": {"payments.capture", "payments.cancellation"},
              "webhook": {"payments.repair"},
              "reconcile": {"payments.repair"}}
    for handler, modules in wanted.items():
        assert modules <= _imported(_tree(PAYMENTS / f"{handler}.py")), handler
    users = [str(p.relative_to(ROOT)) for base in (FUNCTIONS, ROOT / "tests", ROOT / "infra")
             for p in base.rglob("*.py") if ".venv" not in p.parts
             if "payments.service" in _imported(_tree(p))]
    assert users == []
