"""bench/currents_throughput.py on a small file: it decodes and routes every event it builds."""

from __future__ import annotations

from pathlib import Path

from currents_throughput import FIXTURES, build_file, decode_seconds, route_seconds

from cdpbridge_local.currents_data import load_sample


def test_the_benchmark_decodes_and_routes_every_event_of_its_file(tmp_path: Path) -> None:
    sample = load_sample(FIXTURES / "users.messages.email.Open.avro")
    path = build_file(tmp_path / "in", sample, 500)
    decoded, decode_s = decode_seconds(path, sample.event_type)
    routed, route_s, output_bytes = route_seconds([path], tmp_path / "work")
    assert decoded == routed == 500
    assert decode_s > 0 and route_s > 0 and output_bytes > 0
    assert len(list((tmp_path / "work" / "outbound").rglob("*.jsonl.gz"))) == 1
