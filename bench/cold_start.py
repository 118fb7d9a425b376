"""Cold start: how long each Lambda handler module of template.yaml takes to import.

For every AWS::Serverless::Function, a fresh interpreter puts the function's CodeUri and its layers'
ContentUri first on sys.path (as Lambda puts /var/task and /opt/python), sets the function's
environment from the template (parameters at their defaults, other references as placeholders, plus
the variables Lambda itself sets) and times importing the handler's module. The median of --repeats
fresh interpreters is reported, with bytecode caches as they are (warm) and, as a second figure,
with no usable .pyc at all (every module compiled from source, as on a deployment without them).
A handler whose module does not import is reported with its error, not crashed on.

As deployed (``ms_deployed``): the same import from the ``sam build`` artifact (.aws-sam/build, its
built template, the layer's python/ folder), with no bytecode written (Lambda's file system is
read-only, so whatever .pyc the artifact lacks is compiled again by every cold start): the
artifact's own __pycache__ folders are all there is (``make build`` compiles them into it).

    .venv/bin/python bench/cold_start.py [--repeats 5] [--template template.yaml] [--json out.json]
        [--built .aws-sam/build]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import REPO_ROOT, write_json

from cdpbridge_local.stack.intrinsics import IntrinsicResolver
from cdpbridge_local.stack.template import SERVERLESS_FUNCTION, SamTemplate

LAYER_VERSION = "AWS::Serverless::LayerVersion"

# Runs in the fresh interpreter: argv = function dir, module, layer dirs...
IMPORT_TIMER = """
import importlib, json, sys, time
function_dir, module = sys.argv[1], sys.argv[2]
sys.path[0:0] = [function_dir, *sys.argv[3:]]
started = time.perf_counter()
try:
    importlib.import_module(module)
    error = None
except BaseException as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "error": error}))
"""


@dataclass(frozen=True, slots=True)
class HandlerModule:
    function: str
    code_dir: Path
    module: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]


def handler_modules(template_path: Path, *, built: bool = False) -> list[HandlerModule]:
    template = SamTemplate.load(template_path)
    # Resolves parameters and mappings (an import function's CodeUri is an Fn::FindInMap of its folder).
    resolver = template.parameters_resolver(template.parameter_values({}), pseudo={})
    found = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        properties = template.function_properties(logical_id)
        handler = str(properties.get("Handler", ""))
        module = handler.rsplit(".", 1)[0].replace("/", ".")
        layers = tuple(
            # A built layer holds its packages under python/, which Lambda puts on sys.path.
            template.base_dir / str(template.resources[layer["Ref"]]["Properties"]["ContentUri"]) / subdir
            for layer in properties.get("Layers", [])
            if isinstance(layer, dict)
            and "Ref" in layer
            and template.resources.get(layer["Ref"], {}).get("Type") == LAYER_VERSION
            for subdir in (("python",) if built else ("",))
        )
        found.append(
            HandlerModule(
                function=logical_id,
                code_dir=template.base_dir / str(resolver.resolve(properties.get("CodeUri", ""), logical_id)),
                module=module,
                layer_dirs=layers,
                environment=lambda_environment(template, logical_id, properties, resolver),
            )
        )
    return found


def lambda_environment(
    template: SamTemplate, logical_id: str, properties: dict[str, Any], resolver: IntrinsicResolver
) -> dict[str, str]:
    """The function's variables as a deployment would have them, closely enough for an import."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    variables = (properties.get("Environment") or {}).get("Variables") or {}
    for name, value in variables.items():
        environment[name] = _variable_value(template, name, value, resolver)
    return environment


def _variable_value(template: SamTemplate, name: str, value: Any, resolver: IntrinsicResolver) -> str:
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        return str(resolver.resolve(value, name))
    if isinstance(value, dict) and "Ref" in value:
        spec = template.parameter_specs.get(str(value["Ref"]))
        if spec is not None and spec.default not in (None, ""):
            return str(spec.default)
    return f"bench-{name.lower().replace('_', '-')}"


def time_import(
    handler: HandlerModule, *, warm_bytecode: bool, pycache: Path | None, write_bytecode: bool = True
) -> dict[str, Any]:
    command = [sys.executable, "-I"]
    if not warm_bytecode:
        # An empty cache directory and no writing: every module is compiled from source.
        command += ["-B", "-X", f"pycache_prefix={pycache}"]
    elif not write_bytecode:
        # The files' own __pycache__ folders, read but never written: a read-only deployment.
        command += ["-B"]
    command += ["-c", IMPORT_TIMER, str(handler.code_dir), handler.module, *map(str, handler.layer_dirs)]
    completed = subprocess.run(
        command, capture_output=True, text=True, env=handler.environment, cwd=handler.code_dir, check=False
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return {"ms": None, "error": (completed.stderr.strip().splitlines() or ["no output"])[-1]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(handler: HandlerModule, repeats: int) -> dict[str, Any]:
    if not handler.code_dir.is_dir():
        return {
            "function": handler.function,
            "ms": None,
            "error": f"CodeUri {handler.code_dir} does not exist",
        }
    figures: dict[str, Any] = {"function": handler.function, "module": handler.module}
    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-pycache-") as pycache:
        for label, warm in (("ms", True), ("ms_no_pyc", False)):
            # One unmeasured import first, so the warm figure has its .pyc files written.
            samples = [
                time_import(handler, warm_bytecode=warm, pycache=Path(pycache)) for _ in range(repeats + warm)
            ]
            samples = samples[1:] if warm else samples
            errors = [sample["error"] for sample in samples if sample["error"]]
            if errors:
                figures.update({"ms": None, "error": errors[0]})
                return figures
            figures[label] = round(statistics.median(sample["ms"] for sample in samples), 1)
    return figures


def host_loadable_layer(layer_dir: Path, into: Path) -> tuple[Path, list[str]]:
    """``layer_dir`` as this machine can import it: the artifact's packages as they are, except those
    whose compiled extensions are built for Lambda's arm64 and not for this machine, which are taken
    from the virtualenv (same pinned versions, their bytecode already compiled, as the artifact's is).
    Returns the folder to import from and the packages taken from the virtualenv."""
    machine = platform.machine()
    if not layer_dir.is_dir() or machine in ("aarch64", "arm64"):
        return layer_dir, []
    into.mkdir(parents=True, exist_ok=True)
    substituted = []
    for entry in sorted(layer_dir.iterdir()):
        target = entry
        foreign = entry.is_dir() and any(
            machine not in library.name for library in entry.rglob("*.so") if "aarch64" in library.name
        )
        if foreign:
            spec = importlib.util.find_spec(entry.name)
            if spec is not None and spec.submodule_search_locations:
                target = Path(next(iter(spec.submodule_search_locations)))
                substituted.append(entry.name)
        (into / entry.name).symlink_to(target)
    return into, substituted


def measure_deployed(handler: HandlerModule, repeats: int) -> dict[str, Any]:
    """Imports from the built artifact, writing no bytecode."""
    if not handler.code_dir.is_dir():
        return {"function": handler.function, "ms_deployed": None, "error": f"{handler.code_dir} missing"}
    samples = [
        time_import(handler, warm_bytecode=True, pycache=None, write_bytecode=False) for _ in range(repeats)
    ]
    errors = [sample["error"] for sample in samples if sample["error"]]
    if errors:
        return {"function": handler.function, "ms_deployed": None, "error": errors[0]}
    return {
        "function": handler.function,
        "ms_deployed": round(statistics.median(sample["ms"] for sample in samples), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, help="accepted for symmetry with the other scripts; unused")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--built",
        type=Path,
        default=REPO_ROOT / ".aws-sam" / "build",
        help="the sam build artifact measured as deployed (skipped when it has no template.yaml)",
    )
    args = parser.parse_args()

    results = [measure(handler, args.repeats) for handler in handler_modules(args.template)]
    built_template = args.built / "template.yaml"
    substituted: set[str] = set()
    if built_template.is_file():
        with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-layer-") as layers_root:
            built_handlers = []
            for handler in handler_modules(built_template, built=True):
                layer_dirs = []
                for layer_dir in handler.layer_dirs:
                    into = Path(layers_root) / layer_dir.parent.name
                    loadable, taken = (into, []) if into.exists() else host_loadable_layer(layer_dir, into)
                    substituted.update(taken)
                    layer_dirs.append(loadable)
                built_handlers.append(replace(handler, layer_dirs=tuple(layer_dirs)))
            deployed = {
                figures["function"]: figures
                for figures in (measure_deployed(handler, args.repeats) for handler in built_handlers)
            }
        for figures in results:
            found = deployed.get(figures["function"], {})
            figures["ms_deployed"] = found.get("ms_deployed")
            if found.get("error"):
                figures["deployed_error"] = found["error"]
    for figures in results:
        if figures.get("ms") is None:
            print(f"{figures['function']}: does not import: {figures.get('error')}")
        else:
            deployed_ms = figures.get("ms_deployed")
            print(
                f"{figures['function']}: import {figures['ms']:.0f} ms (median of {args.repeats}), "
                f"{figures['ms_no_pyc']:.0f} ms without .pyc, "
                + (
                    f"{deployed_ms:.0f} ms as deployed (sam build artifact, read-only bytecode)"
                    if deployed_ms is not None
                    else f"as deployed: {figures.get('deployed_error', 'no sam build artifact')}"
                )
            )
    write_json(
        args.json,
        {
            "parameters": {"repeats": args.repeats, "template": args.template.name},
            "import_ms": {figures["function"]: figures.get("ms") for figures in results},
            "import_ms_deployed": {figures["function"]: figures.get("ms_deployed") for figures in results},
            "deployed_packages_from_virtualenv": sorted(substituted),
            "handlers": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
