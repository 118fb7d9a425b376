"""Time and peak memory of `cdpbridge run --dry-run` on the damaged files a new user may drop.

Each file runs in a child process of its own, whose peak RSS (from wait4) is its own. The files:
an Avro block claiming 2^40 records, gzip and zip bombs of --bomb-gib GiB of zeros, UTF-16 (LE and
BE) and UTF-8 files with their BOM, a file whose lines end in CR alone, a single 5 MB quoted field,
and for a baseline a two-row CSV. Prints one line per file (seconds, peak RSS, rows read and
rejected, the failure if any) and with --json writes them.

    .venv/bin/python bench/hostile_files.py [--bomb-gib 1] [--timeout 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import fastavro
import orjson
from harness import write_json

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "cdpbridge"
TEXT = "id,name\n1,alice\n2,Zoë\n"


def _zigzag_long(value: int) -> bytes:
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = encoded & 0x7F
        encoded >>= 7
        if not encoded:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _avro_claiming_records(claimed: int) -> bytes:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "User",
            "fields": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}],
        }
    )
    header = io.BytesIO()
    fastavro.writer(header, schema, [])
    sync = header.getvalue()[-16:]
    body = io.BytesIO()
    for number, name in ((1, "alice"), (2, "bob")):
        fastavro.schemaless_writer(body, schema, {"id": str(number), "name": name})
    records = body.getvalue()
    return header.getvalue() + _zigzag_long(claimed) + _zigzag_long(len(records)) + records + sync


def _gzip_bomb(head: bytes, chunk: bytes, repeats: int) -> bytes:
    """A gzip file may be several members one after another: one small member, repeated."""
    return gzip.compress(head, mtime=0) + gzip.compress(chunk, compresslevel=9, mtime=0) * repeats


def _zip_bomb(name: str, head: bytes, chunk: bytes, repeats: int) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w") as member,
    ):
        member.write(head)
        for _ in range(repeats):
            member.write(chunk)
    return buffer.getvalue()


def _files(folder: Path, bomb_gib: int) -> dict[str, tuple[Path, str]]:
    zeros = b"\0" * MIB
    files: dict[str, tuple[bytes, str, str]] = {
        "baseline 2-row CSV": (TEXT.encode(), "users.csv", "csv"),
        "Avro block claiming 2^40 records": (_avro_claiming_records(1 << 40), "claims.avro", "avro"),
        f"gzip bomb, {bomb_gib} GiB of zeros": (
            _gzip_bomb(b"id,name\n", zeros, bomb_gib * 1024),
            "bomb.csv.gz",
            "csv",
        ),
        f"zip bomb, {bomb_gib} GiB of zeros": (
            _zip_bomb("bomb.csv", b"id,name\n", zeros, bomb_gib * 1024),
            "bomb.zip",
            "csv",
        ),
        "UTF-16 LE with BOM": (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf16le.csv", "csv"),
        "UTF-16 BE with BOM": (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf16be.csv", "csv"),
        "UTF-8 with BOM": (b"\xef\xbb\xbf" + TEXT.encode(), "utf8bom.csv", "csv"),
        "CR line ends": (TEXT.replace("\n", "\r").encode(), "mac.csv", "csv"),
        "one 5 MB quoted field": (
            b'id,name\n1,"' + b"x" * (5 * MIB) + b'"\n2,bob\n',
            "bigfield.csv",
            "csv",
        ),
    }
    written: dict[str, tuple[Path, str]] = {}
    for label, (data, name, file_format) in files.items():
        path = folder / name
        path.write_bytes(data)
        mapping = folder / f"{file_format}.yaml"
        mapping.write_text(
            "version: 1\nintegration: generic\n"
            f"source: {{format: {file_format}}}\n"
            "identifier: {column: id, as: external_id}\n"
            "fields:\n  - {column: name, attribute: name, strategy: set}\n"
        )
        written[label] = (path, str(mapping))
    return written


def _run(path: Path, mapping: str, folder: Path, timeout_s: float) -> dict[str, Any]:
    report_dir = folder / f"reports-{path.name}"
    command = [
        str(CLI),
        "run",
        str(path),
        "--config",
        mapping,
        "--dry-run",
        "--quiet",
        "--state",
        str(folder / f"{path.name}.sqlite3"),
        "--report-dir",
        str(report_dir),
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timed_out = False
    try:
        child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        child.kill()
        child.communicate()
    seconds = time.perf_counter() - started
    reports = sorted(report_dir.rglob("*.json"))
    report = orjson.loads(reports[-1].read_bytes()) if reports else {}
    return {
        "seconds": round(seconds, 2),
        "timed_out": timed_out,
        "exit_status": child.returncode,
        "rows_read": report.get("rows_read"),
        "rows_rejected": report.get("rows_rejected"),
        "failure": report.get("failure"),
    }


def _measure_one(label: str, bomb_gib: int, timeout_s: float) -> dict[str, Any]:
    """Runs one file from this (fresh) process: RUSAGE_CHILDREN then holds that run's peak RSS."""
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        path, mapping = _files(folder, bomb_gib)[label]
        result = _run(path, mapping, folder, timeout_s)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bomb-gib", type=int, default=1, help="size of the bombs once decompressed")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a run is killed")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.stdout.write(orjson.dumps(_measure_one(args.one, args.bomb_gib, args.timeout)).decode() + "\n")
        return 0
    with tempfile.TemporaryDirectory() as folder_name:
        labels = list(_files(Path(folder_name), args.bomb_gib))
    results: dict[str, Any] = {}
    for label in labels:
        # A fresh interpreter per file, so that RUSAGE_CHILDREN is that file's run alone.
        command = [sys.executable, __file__, "--one", label, "--bomb-gib", str(args.bomb_gib)]
        command += ["--timeout", str(args.timeout)]
        output = subprocess.run(command, capture_output=True, check=True, env=os.environ).stdout
        result = orjson.loads(output.splitlines()[-1])
        results[label] = result
        failure = (result["failure"] or "")[:110]
        print(
            f"{label:34} {result['seconds']:7.2f} s {result['peak_rss_mb']:7.1f} MB peak  "
            f"rows {result['rows_read']} rejected {result['rows_rejected']}"
            + (" TIMED OUT" if result["timed_out"] else "")
            + (f"  failure: {failure}" if failure else "")
        )
    write_json(args.json, {"bomb_gib": args.bomb_gib, "files": results}, echo=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
