#!/usr/bin/env python3
"""Prints the unzipped size of each built Lambda function (with its layers) from `.aws-sam/build`.

    python3 scripts/function_sizes.py [--build-dir .aws-sam/build] [--importtime] [--python python3.12]

Lambda's limit is 250 MB (262,144,000 bytes) unzipped for a function and all its layers together.
Exit status 1 when a function is over it.

--importtime also measures the handler module's import (`python -X importtime -c 'import MODULE'`,
minimum of 5 warm-cache runs, wall and CPU time) — the cold-start-relevant part of the init phase.
The built packages are for the template's architecture (arm64); when the host is another architecture their native wheels
cannot load here, so the import is measured against the project venv's packages with the function
and layer source (same modules, host wheels) and the table says so.
Standard library only (runs with any python3 >= 3.9; YAML is read with a minimal tag-tolerant loader
when PyYAML is importable, else with a line scanner sufficient for SAM's built template).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

LIMIT = 262_144_000  # bytes, function + layers, unzipped
MB = 1_000_000
ROOT = Path(__file__).resolve().parent.parent


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def _load_template(path: Path) -> dict:
    """Resources of the built template: {logical_id: {"Type", "CodeUri"/"ContentUri", "Handler", "Layers"}}."""
    text = path.read_text(encoding="utf-8")
    try:
        import yaml  # type: ignore

        class Loader(yaml.SafeLoader):
            pass

        def _any_tag(loader, suffix, node):  # "!Ref X" -> {"Ref": X}; built templates rarely use tags
            if isinstance(node, yaml.ScalarNode):
                return {suffix: loader.construct_scalar(node)}
            if isinstance(node, yaml.SequenceNode):
                return {suffix: loader.construct_sequence(node)}
            return {suffix: loader.construct_mapping(node)}

        Loader.add_multi_constructor("!", _any_tag)
        doc = yaml.load(text, Loader=Loader)
        globals_fn = ((doc.get("Globals") or {}).get("Function") or {})
        out = {}
        for lid, res in (doc.get("Resources") or {}).items():
            props = res.get("Properties") or {}
            out[lid] = {"Type": res.get("Type"), "CodeUri": props.get("CodeUri"),
                        "ContentUri": props.get("ContentUri"), "Handler": props.get("Handler"),
                        "Architectures": props.get("Architectures", globals_fn.get("Architectures")),
                        "Layers": _refs(props.get("Layers", globals_fn.get("Layers")) or [])}
        return out
    except ImportError:
        return _scan_template(text)


def _refs(layers: list) -> list[str]:
    out = []
    for item in layers:
        if isinstance(item, dict) and "Ref" in item:
            out.append(item["Ref"])
        elif isinstance(item, str):
            out.append(item)
    return out


def _scan_template(text: str) -> dict:
    """Fallback without PyYAML: logical ids at 2-space indent, their Type/CodeUri/ContentUri/Handler."""
    out: dict[str, dict] = {}
    in_resources = False
    current = None
    head = text.split("\nResources:")[0]
    global_layers = re.findall(r"^\s+- Ref: (\w+)", head.split("Layers:", 1)[-1] if "Layers:" in head else "",
                               flags=re.M)[:1]
    arch = re.search(r"Architectures:\s*(?:\[\s*|\n\s*-\s*)(\w+)", head)
    global_arch = [arch.group(1)] if arch else ["x86_64"]
    for line in text.splitlines():
        if re.match(r"^\S", line):
            in_resources = line.startswith("Resources:")
            continue
        if not in_resources:
            continue
        m = re.match(r"^  (\w+):\s*$", line)
        if m:
            current = m.group(1)
            out[current] = {"Layers": list(global_layers), "Architectures": list(global_arch)}
            continue
        m = re.match(r"^\s+(Type|CodeUri|ContentUri|Handler):\s*(\S+)", line)
        if current and m and m.group(1) not in out[current]:
            out[current][m.group(1)] = m.group(2).strip("'\"")
    return out


def _importtime_ms(python: str, module: str, pythonpath: str | None, runs: int = 5) -> tuple[float, float] | None:
    """(wall ms, CPU ms) of importing `module`: the minimum over `runs` warm runs.

    Wall time is `-X importtime`'s cumulative figure of the module's own top-level line (its whole
    import tree, interpreter start-up excluded); CPU time is `time.process_time()` around the import,
    which a busy machine inflates far less than wall time."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env.setdefault("AWS_DEFAULT_REGION", "eu-north-1")
    env.setdefault("POWERTOOLS_SERVICE_NAME", "sizes")
    code = ("import sys, time; t = time.process_time(); import {m}; "
            "sys.stdout.write(repr(time.process_time() - t))").format(m=module)
    walls, cpus = [], []
    for i in range(runs + 1):  # the first run warms the bytecode / page cache
        proc = subprocess.run([python, "-X", "importtime", "-c", code],
                              capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            print(f"import of {module} failed:\n{proc.stderr[-1500:]}", file=sys.stderr)
            return None
        wall = None
        for line in proc.stderr.splitlines():  # "import time: self [us] | cumulative | imported package"
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip() == module and parts[1].strip().isdigit():
                wall = int(parts[1].strip()) / 1000
        if wall is None:
            return None
        if i:
            walls.append(wall)
            cpus.append(float(proc.stdout.strip() or 0) * 1000)
    return min(walls), min(cpus)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"))
    ap.add_argument("--importtime", action="store_true", help="also measure the handler module's import time")
    ap.add_argument("--python", default=None, help="interpreter for --importtime (default: the project .venv)")
    args = ap.parse_args(argv)

    build = Path(args.build_dir)
    template = build / "template.yaml"
    if not template.is_file():
        print(f"no built template at {template}: run `make sam-build` first", file=sys.stderr)
        return 2
    resources = _load_template(template)
    layers = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::Serverless::LayerVersion"}
    functions = {lid: r for lid, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"}

    layer_sizes = {lid: dir_size(build / str(r.get("ContentUri") or lid)) for lid, r in layers.items()}
    host_arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine())
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = args.python or (str(venv_python) if venv_python.exists() else sys.executable)

    cols = ["function", "handler", "function MB", "layers MB", "total MB", "% of 250 MB"]
    if args.importtime:
        cols += ["import ms (wall)", "import ms (CPU)"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|")
    over = False
    for lid in sorted(functions):
        r = functions[lid]
        fdir = build / str(r.get("CodeUri") or lid)
        fsize = dir_size(fdir)
        lsize = sum(layer_sizes.get(layer, 0) for layer in r.get("Layers") or [])
        total = fsize + lsize
        over |= total > LIMIT
        row = [lid, f"`{r.get('Handler')}`", f"{fsize / MB:.1f}", f"{lsize / MB:.1f}",
               f"{total / MB:.1f}" + (" **over**" if total > LIMIT else ""), f"{100 * total / LIMIT:.0f}%"]
        if args.importtime:
            module = str(r.get("Handler") or "").rsplit(".", 1)[0]
            arch = (r.get("Architectures") or ["x86_64"])[0]
            if arch == host_arch:
                path = os.pathsep.join([str(fdir)] + [str(build / str(layers[x].get("ContentUri") or x) / "python")
                                                      for x in r.get("Layers") or [] if x in layers])
                ms, where = _importtime_ms(python, module, path), "build"
            else:
                ms, where = _importtime_ms(python, module, None), "venv"
            row += ["n/a (import failed)", ""] if ms is None else [f"{ms[0]:.0f} ({where})", f"{ms[1]:.0f}"]
        print("| " + " | ".join(row) + " |")
    for lid, size in sorted(layer_sizes.items()):
        print(f"\nlayer {lid}: {size / MB:.1f} MB unzipped")
    print(f"limit: {LIMIT / MB:.1f} MB (function + layers, unzipped)")
    if args.importtime:
        print(f"import times: minimum of 5 warm runs with {python}; load average while measuring: "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
