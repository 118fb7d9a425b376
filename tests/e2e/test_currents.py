"""From a Currents file landing under currents/, through the template's routing and the Currents
function, to outbound/ and the Lytics sink: each event once, however often the file comes.

Runs once template.yaml declares the Currents function (code in functions/currents/); until then it
is expected to fail, strictly, so that the template's arrival turns it on.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cdpbridge.currents import currents_key
from cdpbridge_local.currents_data import avro_bytes, load_sample, synthetic_events
from cdpbridge_local.sinks import LyticsSinkServer
from cdpbridge_local.stack import LocalStack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xfail(
        condition="functions/currents"
        not in (Path(__file__).resolve().parents[2] / "template.yaml").read_text(),
        reason="template.yaml has no CurrentsFunction yet",
        strict=True,
    ),
]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FIXTURES = ROOT / ".." / "shared" / "fixtures" / "currents"
TOKEN = "e2e-lytics-token"
CONFIG = b"""
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""


@pytest.fixture(scope="module")
def lytics() -> Iterator[LyticsSinkServer]:
    with LyticsSinkServer(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def stack(lytics: LyticsSinkServer) -> Iterator[LocalStack]:
    overrides = {"LYTICS_URL": lytics.url, "LYTICS_TOKEN_SECRET": "e2e-lytics-token"}
    with LocalStack.start(
        template=TEMPLATE, failed_message_visibility_s=0, env_vars={"CurrentsFunction": overrides}
    ) as running:
        running.secrets_client.create_secret(Name="e2e-lytics-token", SecretString=TOKEN)
        running.put_object("config/currents.yaml", CONFIG)
        yield running


def outbound_lines(stack: LocalStack) -> list[dict]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="outbound/amperity/currents/")
    lines: list[dict] = []
    for item in listing.get("Contents", []):
        body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
        lines += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return lines


def test_a_dropped_currents_file_reaches_outbound_and_lytics_once(
    stack: LocalStack, lytics: LyticsSinkServer
):
    # Given 300 e-mail clicks in a file Braze would write
    click = load_sample(FIXTURES / "users.messages.email.Click.avro")
    events = list(synthetic_events(click.record, 300))
    data = avro_bytes(click.schema, events)
    hour = datetime(2026, 12, 7, 8, tzinfo=UTC)
    key = currents_key(prefix="currents", event_type=click.event_type, hour=hour, name="a.avro")
    # When it lands under currents/ and the queues drain
    stack.put_object(key, data)
    stack.drain(timeout_s=180)
    # Then every event is in outbound/ and at the Lytics sink, once
    assert sorted(line["id"] for line in outbound_lines(stack)) == sorted(event["id"] for event in events)
    assert sorted(event["id"] for event in lytics.sink.events("braze_engagement")) == sorted(
        event["id"] for event in events
    )

    # When the same events come again in another file
    again = currents_key(prefix="currents", event_type=click.event_type, hour=hour, name="b.avro")
    stack.put_object(again, data)
    stack.drain(timeout_s=180)
    # Then nothing new is written or posted
    assert len(outbound_lines(stack)) == 300
    assert len(lytics.sink.events()) == 300
