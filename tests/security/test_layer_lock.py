"""The layer's lock (requirements.txt) matches what requirements.in asks for, every pin with hashes.

sam build installs requirements.txt; pip refuses an install whose files do not match the hashes, so a
tampered or substituted package never reaches the layer. A requirement added to requirements.in
without `make lock` fails here, before a deployment would miss it.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LAYER = Path(__file__).resolve().parents[2] / "layers" / "cdpbridge"


def logical_lines(path: Path) -> list[str]:
    """Lines with continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def locked() -> dict[str, tuple[str, list[str]]]:
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in logical_lines(LAYER / "requirements.txt"):
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        hashes = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=")]
        pins[canonicalize_name(name)] = (version, hashes)
    return pins


def test_every_locked_line_is_an_exact_pin_with_sha256_hashes() -> None:
    pins = locked()
    assert pins
    for name, (version, hashes) in pins.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name} is not pinned with =="
        assert hashes, f"{name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in hashes), name


def test_every_requirement_of_the_layer_is_locked_within_its_range() -> None:
    pins = locked()
    for line in logical_lines(LAYER / "requirements.in"):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in requirements.in but not locked: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} is outside {requirement.specifier}: run `make lock`"
        )
