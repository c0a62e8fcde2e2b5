"""One lock for the venv, CI and `sam build` (scripts/lock.sh, uv): pyproject.toml holds the ranges,
requirements/dev.txt the exact versions with hashes, functions/*/requirements.txt the same versions for
each function's own packages; `make setup` installs exactly the lock."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", re.M)


def pins(path: Path) -> dict[str, tuple[str, str | None]]:
    """{canonical name: (version, marker or None)} of a compiled requirements file."""
    return {canonicalize_name(m.group(1).split("[")[0]): (m.group(2), m.group(3))
            for m in PIN.finditer(path.read_text())}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith(project["name"] + "[")]
    return reqs


def test_every_declared_range_is_locked_at_a_version_it_allows():
    locked = pins(DEV_LOCK)
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is not in requirements/dev.txt: run scripts/lock.sh"
        assert req.specifier.contains(locked[name][0], prereleases=True), \
            f"{req} excludes the locked {locked[name][0]}: run scripts/lock.sh"


def test_each_function_ships_the_locked_versions_of_declared_packages():
    locked = pins(DEV_LOCK)
    names = {canonicalize_name(r.name) for r in declared()}
    for in_file in sorted(ROOT.glob("functions/*/requirements.in")):
        wanted = [Requirement(line.split("#")[0].strip()) for line in in_file.read_text().splitlines()
                  if line.split("#")[0].strip()]
        compiled = pins(in_file.with_suffix(".txt"))
        for req in wanted:
            assert canonicalize_name(req.name) in names, f"{in_file}: {req.name} has no range in pyproject.toml"
            assert canonicalize_name(req.name) in compiled, f"{in_file}: {req.name} missing: run scripts/lock.sh"
        for name, (version, _) in compiled.items():
            assert locked.get(name, (version,))[0] == version, \
                f"{in_file.with_suffix('.txt')}: {name}=={version}, the lock has {locked[name][0]}"
        assert "--hash=sha256:" in in_file.with_suffix(".txt").read_text()


def test_the_venv_holds_exactly_the_locked_versions():
    """What `make setup` installed is the lock, not a fresh resolution."""
    wrong = []
    for name, (version, marker) in pins(DEV_LOCK).items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing")
            continue
        if Version(installed) != Version(version):
            wrong.append(f"{name} {installed} != {version}")
    assert not wrong, f"run make setup: {wrong}"


def test_the_locks_name_no_package_host():
    for path in [DEV_LOCK, *ROOT.glob("functions/*/requirements.txt")]:
        assert "://" not in path.read_text(), path
