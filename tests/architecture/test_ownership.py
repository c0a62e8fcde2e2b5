"""One owner per state, read from the code itself (AST, nothing imported):

- only `homevisits/persistence/` imports pynamodb (repositories are its only users);
- a booking's status and version are written in one place: only the booking store
  (`persistence/bookings.py`) builds booking update actions or transactions, and only the lifecycle
  module (`homevisits/lifecycle.py`) calls the store's booking writes;
- no module updates an item through a model it built itself (a fresh model has no version, so
  PynamoDB wrote `version = 1` over the stored one: issue 12, defect 1);
- the status words are spelled once (`homevisits/booking_state.py`), not as ad-hoc sets elsewhere.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
SHARED = FUNCTIONS / "shared" / "homevisits"
PERSISTENCE = SHARED / "persistence"
STORE = PERSISTENCE / "bookings.py"
LIFECYCLE = SHARED / "lifecycle.py"
STORE_WRITES = {"insert_booking", "commit_booking_update", "commit_bookings_update", "update_booking",
                "commit_visit_event", "draft_booking"}
STATUS_WORDS = {"held", "confirmed", "en_route", "arrived", "completed", "cancelled", "no_show", "expired",
                "missed"}


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p)))
            for p in sorted(FUNCTIONS.rglob("*.py"))]


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_the_sources_are_found():
    paths = {_rel(p) for p, _ in _sources()}
    assert {_rel(STORE), _rel(LIFECYCLE), "functions/payments/payments/hold.py"} <= paths


def test_only_the_persistence_package_imports_pynamodb():
    offenders = []
    for path, tree in _sources():
        if PERSISTENCE in path.parents:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{_rel(path)}:{node.lineno} {n}" for n in names if n.split(".")[0] == "pynamodb"]
    assert offenders == []


def _attribute_chain(node: ast.AST) -> list[str]:
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        out.append(node.id)
    return list(reversed(out))


def test_only_the_booking_store_builds_booking_writes():
    """`BookingModel.<attr>.set/remove/add(...)` (update actions) appear in the store only, and a
    BookingModel is constructed (a new item, or a model to update) only there."""
    offenders = []
    for path, tree in _sources():
        if path == STORE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                chain = _attribute_chain(node.func)
                if len(chain) == 3 and chain[0] == "BookingModel" and chain[2] in ("set", "remove", "add", "delete"):
                    offenders.append(f"{_rel(path)}:{node.lineno} {'.'.join(chain)}")
                if chain == ["BookingModel"]:
                    offenders.append(f"{_rel(path)}:{node.lineno} BookingModel(...)")
    assert offenders == []


def test_only_the_lifecycle_calls_the_stores_booking_writes():
    offenders = []
    for path, tree in _sources():
        if path in (STORE, LIFECYCLE):
            continue
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and node.attr in STORE_WRITES:
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and node.module == "homevisits.persistence.bookings":
                hit = [a.name for a in node.names if a.name in STORE_WRITES]
                name = ",".join(hit) or None
            if name:
                offenders.append(f"{_rel(path)}:{node.lineno} {name}")
    assert offenders == []


# Lifecycle writes that keep the status (each refuses a `status` in what it writes, or checks the
# first status itself); every other writer must ask the table (`require_move`).
KEEP_STATUS = {"create_booking", "try_reschedule", "set_payment_status", "try_assign", "try_erase", "try_strand"}


def test_the_lifecycle_checks_every_status_it_writes_against_the_table():
    """Each lifecycle function that writes through the store asks `require_move`, unless it is one
    of the few that keep the status, so no move outside the table is ever stored."""
    tree = ast.parse(LIFECYCLE.read_text(encoding="utf-8"))
    unchecked = set()
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        calls = {_attribute_chain(c.func)[-1] for c in ast.walk(fn) if isinstance(c, ast.Call)
                 and _attribute_chain(c.func)}
        if calls & (STORE_WRITES - {"draft_booking"}) and "require_move" not in calls:
            unchecked.add(fn.name)
    assert unchecked == KEEP_STATUS


def _fresh_model_updates(tree: ast.Module) -> list[int]:
    """Lines where `.update(...)` is called on `SomeModel(...)` or on a name bound to one in the same
    function (class names ending in "Model")."""
    lines = []
    for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        fresh: set[str] = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                chain = _attribute_chain(node.value.func)
                if chain and chain[-1].endswith("Model"):
                    fresh |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        # A model written whole first (save, put_once) carries the version it stored: not fresh.
        fresh -= {node.func.value.id for node in ast.walk(fn)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.attr in ("save", "put_once")}
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
                target = node.func.value
                if isinstance(target, ast.Call) and (_attribute_chain(target.func) or [""])[-1].endswith("Model"):
                    lines.append(node.lineno)
                elif isinstance(target, ast.Name) and target.id in fresh:
                    lines.append(node.lineno)
    return lines


def test_no_module_updates_through_a_model_it_built_itself():
    offenders = [f"{_rel(p)}:{line}" for p, tree in _sources() for line in _fresh_model_updates(tree)]
    assert offenders == []


def test_the_fresh_model_check_sees_the_defect_it_guards_against():
    """The check itself: the shape of issue 12's defect 1 is found."""
    bad = ast.parse("def f(bid):\n    BookingModel(bid).update(actions=[])\n"
                    "def g(bid):\n    b = BookingModel(booking_id=bid)\n    b.update(actions=[])\n")
    assert _fresh_model_updates(bad) == [2, 5]


def test_status_sets_are_defined_once():
    """No tuple/set/list of two or more status words outside booking_state (the one table)."""
    offenders = []
    for path, tree in _sources():
        if path == SHARED / "booking_state.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
                words = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if len(words) >= 2 and len(words) == len(node.elts) and set(words) <= STATUS_WORDS:
                    offenders.append(f"{_rel(path)}:{node.lineno} {words}")
    assert offenders == []
