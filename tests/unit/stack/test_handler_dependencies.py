"""Every handler runs with what a deployment has: the layer's requirements and the Lambda runtime.

The dev venv holds more (moto, aiohttp, the X-Ray SDK that moto pulls in); a handler importing any of
those would pass every in-process test and fail at init in AWS. Each handler and the modules it
loads on first use are imported in a fresh interpreter, as Lambda would, and every module that ends
up loaded must come from the standard library, our own code, or a distribution that the layer's
requirements.txt (or boto3, which the runtime ships) pulls in.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from cdpbridge_local.stack.template import SERVERLESS_FUNCTION, SamTemplate

ROOT = Path(__file__).resolve().parents[3]
LAYER = ROOT / "layers" / "cdpbridge"
# Loaded on the first invocation, not at import (cold start): a deployment needs them all the same.
LAZY_MODULES = ("cdpbridge.sync.import_runtime", "cdpbridge.exports.runtime")
RUNTIME_PROVIDED = ("boto3",)

PROBE = """
import json, os, sys
os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "probe")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "probe")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import importlib
importlib.import_module("app")
for name in sys.argv[3:]:
    importlib.import_module(name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or "extra ==" in text:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", text)
        if match:
            names.append(_normalized(match.group(0)))
    return names


def _closure(roots: list[str]) -> set[str]:
    """The distributions ``roots`` install, following their non-optional requirements."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        pending.extend(_requirement_names(requires))
    return seen


def _allowed_top_level_modules() -> set[str]:
    requirements = (LAYER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    distributions = _closure(_requirement_names(requirements) + list(RUNTIME_PROVIDED))
    allowed = set(sys.stdlib_module_names) | {"cdpbridge", "app"}
    for module, providers in metadata.packages_distributions().items():
        if any(_normalized(provider) in distributions for provider in providers):
            allowed.add(module)
    return allowed


def _handler_dirs() -> list[Path]:
    return sorted(path.parent for path in (ROOT / "functions").glob("*/app.py"))


def test_every_function_of_the_template_is_probed() -> None:
    # The expanded template: the import functions' CodeUri is written once, in a loop.
    template = SamTemplate.load(ROOT / "template.yaml")
    resolver = template.parameters_resolver(template.parameter_values({}), pseudo={})
    code_uris = {
        str(resolver.resolve(resource["Properties"]["CodeUri"], f"{logical_id}.CodeUri")).rstrip("/")
        for logical_id, resource in template.resources.items()
        if resource["Type"] == SERVERLESS_FUNCTION
    }
    assert code_uris == {str(path.relative_to(ROOT)) for path in _handler_dirs()}


@pytest.mark.parametrize("function_dir", _handler_dirs(), ids=lambda path: path.name)
def test_handler_loads_only_what_a_deployment_ships(function_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(function_dir), str(LAYER), *LAZY_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=function_dir,
    )
    assert completed.returncode == 0, completed.stderr
    # Underscored names are interpreter and extension internals (_cython_*, __mp_main__, ...).
    loaded = {name for name in json.loads(completed.stdout.strip().splitlines()[-1]) if name[0] != "_"}
    loaded.discard("cython_runtime")
    assert "aws_xray_sdk" not in loaded
    assert loaded - _allowed_top_level_modules() == set()
