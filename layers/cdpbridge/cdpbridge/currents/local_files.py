"""Routing Currents files from a local disk (the CLI): the same router, the path as the key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from cdpbridge.currents.layout import CurrentsLayoutError, parse_currents_key
from cdpbridge.currents.reader import CurrentsFileError
from cdpbridge.currents.router import CurrentsRouter


def avro_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every ``.avro`` file under ``paths`` (files as given, folders walked), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(candidate for candidate in path.rglob("*.avro") if candidate.is_file())
        else:
            yield path


def route_local_file(router: CurrentsRouter, path: Path) -> None:
    """Routes one file; a file that cannot be read or is not in Braze's layout is reported, not raised."""
    location = str(path)
    try:
        source = parse_currents_key(path.resolve().as_posix())
        stat = path.stat()
        with path.open("rb") as stream:
            router.route(stream, source, location=location, version=f"{stat.st_size}-{stat.st_mtime_ns}")
    except (CurrentsLayoutError, CurrentsFileError, OSError) as exc:
        router.refuse(location, str(exc))
