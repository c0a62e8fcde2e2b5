"""Prints the [[tool.mypy.overrides]] entries that silence, by module and error code, the type errors
functions/ has today (run from the repo root: `.venv/bin/python scripts/mypy_overrides.py`).

For taking stock only: paste the result over the generated block in pyproject.toml when code that
predates the type checker moves (a module renamed or split); fix new code instead of silencing it."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "# -- silenced errors: begin (scripts/mypy_overrides.py) --", "# -- silenced errors: end --"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value) + '"'


def unsilenced_errors(cache_dir: Path) -> set[tuple[str, str]]:
    """(module, error code) of every error mypy finds in functions/ without the silencing overrides."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[tool.mypy]"] + [f"{k} = {_toml(v)}" for k, v in config.items() if k != "overrides"]
    for o in config.get("overrides", []):
        if "disable_error_code" not in o:
            lines += ["[[tool.mypy.overrides]]"] + [f"{k} = {_toml(v)}" for k, v in o.items()]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pyproject.toml"
        raw.write_text("\n".join(lines) + "\n")
        run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(raw), "--cache-dir",
                              str(cache_dir)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return {(m.group(1).replace("/", "."), m.group(2)) for m in
            re.finditer(r"^functions/[a-z]+/([\w/]+)\.py:\d+: error: .*\[([a-z-]+)\]$", run.stdout, re.M)}


def silenced() -> set[tuple[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return {(o["module"], code) for o in config.get("overrides", []) if "disable_error_code" in o
            for code in o["disable_error_code"]}


def main() -> None:
    by_module: dict[str, list[str]] = {}
    for module, code in sorted(unsilenced_errors(ROOT / ".mypy_cache" / "unsilenced")):
        by_module.setdefault(module, []).append(code)
    print(BEGIN)
    for module, codes in by_module.items():
        print(f'[[tool.mypy.overrides]]\nmodule = "{module}"\ndisable_error_code = {_toml(codes)}\n')
    print(END)


if __name__ == "__main__":
    main()
