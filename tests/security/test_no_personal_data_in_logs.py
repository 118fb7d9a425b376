"""No e-mail address, phone number or API key from the input reaches a log line, a report or a rejects file.

Every integration's path runs through the local stack from the template (generic import, BlueConic
import, BlueConic export, Amperity import, Segment's S3 files), with DEBUG logging, a Braze key of
its own stored in the stack's secret, and input built to end up in rejects by the routes a value
takes there: bad values in columns named as personal data and in free-text columns that are not,
identifiers that are addresses, and a CSV record the reader gives up on. Then everything a person
could read without access to the data is searched for each address, number and the key: the
functions' output (what Lambda sends to CloudWatch, captured per invocation by the stack's
workers), errors returned by invocations, what the workers wrote past sys.stdout (the test
process's own stderr), and every object under reports/.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus

import orjson
import pytest
import requests

from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv
from cdpbridge_local.emulator.workspace import ALL_PERMISSIONS
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
BRAZE_KEY = "pii-probe-braze-key-7f3a9c1e5b"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

# Rows that are rejected by the mapper (bad e-mail, phone, integer), by the CSV reader (an unclosed
# quote swallowing the rest of the file), or accepted and sent: every kind of value appears in each.
BAD_ROWS = (
    "customer_id,email,phone,mobile_alt,note,loyalty_points\n"
    "P-1,petra.probe@example.org,+49 151 2345 6789,,7,10\n"
    "P-2,not-an-address@@example.org,+49 151 2345 6780,,call +1 212 555 0147,ten\n"
    "P-3,quentin.probe@example.org,12,+44 7700 900123,write to quentin.other@example.net,11\n"
    "P-4,rosa.probe@example.org,0049 30 9876543,,8,12\n"
    ",sven.probe@example.org,+33 6 12 34 56 78,,9,5\n"
)
BAD_ROWS_MAPPING = """\
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: customer_id, as: external_id}
create_missing: true
fields:
  - {column: email, attribute: email, type: string, strategy: set}
  - {column: phone, attribute: phone, type: string, strategy: set}
  - {column: mobile_alt, attribute: backup_contact, type: integer, strategy: set}
  - {column: note, attribute: note, type: integer, strategy: set}
  - {column: loyalty_points, attribute: loyalty_points, type: integer, strategy: set}
"""
# Users identified by their address: a bad one is rejected with the identifier as the only clue.
EMAIL_IDENTIFIED = (
    "email,first_name,loyalty_points\n"
    "tina.probe@example.org,Tina,3\n"
    "ulla.probe@@example,Ulla,4\n"
    "victor probe@example.org,Victor,x\n"
)
EMAIL_IDENTIFIED_MAPPING = """\
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: email, as: email}
create_missing: true
fields:
  - {column: first_name, attribute: first_name, type: string, strategy: set}
  - {column: loyalty_points, attribute: loyalty_points, type: integer, strategy: set}
"""
# An unclosed quote: the quoted field runs to the end of the file and the reader rejects the record.
BROKEN_CSV = (
    "customer_id,email,phone,mobile_alt,note,loyalty_points\n"
    "P-8,yvonne.probe@example.org,+49 151 8888 0000,,1,1\n"
    'P-9,wanda.probe@example.org,"+49 151 9999 0000,,1,1\n'
    "P-10,xavier.probe@example.org,+49 151 0000 1111,,1,2\n"
)
# Amperity query results: addresses and numbers in standard fields, a bad address and an over-long
# varchar (rejects), for users Braze does not hold (update-only: counted, not created).
AMPERITY_RESULTS = (
    "customer_id,email,phone,given_name\n"
    "AP-1,amy.probe@example.org,+49 151 1111 2222,Amy\n"
    "AP-2,bert.probe@@example.org,+49 151 3333 4444,Bartholomew\n"
)
AMPERITY_MAPPING = """\
version: 1
integration: amperity
source: {format: csv}
identifier: {column: customer_id, as: external_id}
fields:
  - {column: email, attribute: email, type: string}
  - {column: phone, attribute: phone, type: string}
  - {column: given_name, attribute: first_name, type: "varchar(5)"}
"""
# Segment identify calls: one with an address and a number in its traits, one anonymous (a reject).
SEGMENT_CALLS = (
    b'{"type":"identify","messageId":"pii-1","userId":"SP-1","timestamp":"2026-12-01T09:00:00.000Z",'
    b'"traits":{"email":"sam.probe@example.org","phone":"+49 151 5555 6666"}}\n'
    b'{"type":"identify","messageId":"pii-2","anonymousId":"anon-1","timestamp":"2026-12-01T09:01:00.000Z",'
    b'"traits":{"email":"nora.probe@example.org"}}\n'
)
SEGMENT_MAPPING = "version: 1\nintegration: segment\nsource: {format: jsonl}\n"
EXPORT_CONFIG = {
    "segment": {"name": "replaced by the schedule's segment"},
    "identifiers": [{"braze": "external_id", "column": "crm_customer_id"}],
    "fields": [
        {"braze": "first_name", "column": "firstname"},
        {"braze": "email", "column": "email"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
    ],
}


@dataclass
class Secrets:
    """What must not appear, and where it came from."""

    values: dict[str, str] = field(default_factory=dict)

    def add_file(self, name: str, text: str) -> None:
        for row_number, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
            for column, value in row.items():
                for address in EMAIL.findall(value or ""):
                    self.values[address] = f"{name} row {row_number} {column}"
                if column and ("phone" in column or "mobile" in column) and value and len(value) > 6:
                    self.values[value] = f"{name} row {row_number} {column}"
                    # The E.164 form the mapper normalises it to.
                    digits = re.sub(r"\D", "", value)
                    e164 = "+" + (digits[2:] if digits.startswith("00") else digits)
                    self.values[e164] = f"{name} row {row_number} {column} (E.164)"
        for address in EMAIL.findall(text):
            self.values.setdefault(address, f"{name} (free text)")
        for number in re.findall(r"\+\d[\d ]{6,}\d", text):
            self.values.setdefault(number, f"{name} (free text)")
            self.values.setdefault("+" + re.sub(r"\D", "", number), f"{name} (free text, E.164)")


def emulator(stack: LocalStack, method: str, path: str, body: object = None) -> object:
    assert stack.emulator is not None
    response = requests.request(method, f"{stack.emulator.url}/_emulator{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        parameters={"BlueConicExportSegment": "Gold and platinum", "LogLevel": "DEBUG"},
        stack_name="pii-probe",
        secret_values={"BrazeApiKeySecretResource": BRAZE_KEY},
        env_vars={
            "BlueConicExportFunction": {
                "EXPORT_POLL_INITIAL_S": "0.2",
                "EXPORT_POLL_MAX_S": "0.5",
                "EXPORT_QUIET_PERIOD_S": "0.3",
                "EXPORT_INLINE_WAIT_MAX_S": "0.3",
            }
        },
        failed_message_visibility_s=0,
    ) as running:
        emulator(running, "POST", "/keys", {"key": BRAZE_KEY, "permissions": sorted(ALL_PERMISSIONS)})
        yield running


def run_every_integration(stack: LocalStack, tmp_path: Path) -> Secrets:
    secrets = Secrets({BRAZE_KEY: "the Braze REST API key"})
    customers = write_customers_csv(tmp_path / "customers.csv", 60).read_text(encoding="utf-8")
    inputs = {
        "config/generic.yaml": CUSTOMER_MAPPING_YAML,
        "config/generic/probe.yaml": BAD_ROWS_MAPPING,
        "config/generic/byemail.yaml": EMAIL_IDENTIFIED_MAPPING,
        "config/blueconic.yaml": EXAMPLE_MAPPING_PATH.read_text(encoding="utf-8"),
        "config/blueconic-export.yaml": json.dumps(EXPORT_CONFIG),
        "config/amperity.yaml": AMPERITY_MAPPING,
        "config/segment.yaml": SEGMENT_MAPPING,
    }
    files = {
        "inbound/generic/customers.csv": customers,
        "inbound/generic/probe/bad-values.csv": BAD_ROWS,
        "inbound/generic/probe/broken.csv": BROKEN_CSV,
        "inbound/generic/byemail/users.csv": EMAIL_IDENTIFIED,
        "inbound/blueconic/profiles-delta.csv": EXAMPLE_DELTA_PATH.read_text(encoding="utf-8"),
        "inbound/amperity/results.csv": AMPERITY_RESULTS,
    }
    for key, body in {**inputs, **files}.items():
        stack.put_object(key, body)
    for key, body in files.items():
        secrets.add_file(key, body)
    segment_key = "inbound/segment/segment-logs/src_1/1796083200000/pii-probe.gz"
    stack.put_object(segment_key, gzip.compress(SEGMENT_CALLS))
    secrets.add_file(segment_key, SEGMENT_CALLS.decode("utf-8"))
    stack.drain(timeout_s=180)

    # The export: a segment of the imported profiles, with their addresses, comes back as a CSV.
    emulator(
        stack,
        "POST",
        "/segments",
        {
            "name": "Gold and platinum",
            "filter": {"attribute": "loyalty_tier", "op": "in", "value": ["gold", "platinum"]},
        },
    )
    emulator(
        stack,
        "PUT",
        "/config",
        {
            "export_s3": {
                "endpoint_url": stack.moto_url,
                "bucket": stack.drop_bucket,
                "path": "",
                "region": "us-east-1",
            },
            "export_delay_s": 1.0,
        },
    )
    stack.fire_schedule("BlueConicExportFunction")
    stack.drain(timeout_s=180)
    return secrets


def readable_artifacts(stack: LocalStack) -> dict[str, str]:
    """Everything under reports/ (run reports, rejects files, export reports), by key."""
    found: dict[str, str] = {}
    paginator = stack.s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=stack.drop_bucket, Prefix="reports/"):
        for item in page.get("Contents", []):
            body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            found[f"s3://{stack.drop_bucket}/{item['Key']}"] = body.decode("utf-8", errors="replace")
    return found


def test_no_address_number_or_key_in_logs_reports_or_rejects(
    stack: LocalStack, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    secrets = run_every_integration(stack, tmp_path)
    stray_output = capfd.readouterr()

    places: dict[str, str] = {}
    for number, record in enumerate(stack.invocations):
        places[f"log of invocation {number} of {record.function_id}"] = record.logs
        if record.error is not None:
            places[f"error of invocation {number} of {record.function_id}"] = orjson.dumps(
                record.error
            ).decode()
    places["output written past sys.stdout"] = stray_output.out + stray_output.err
    artifacts = readable_artifacts(stack)
    places.update(artifacts)

    # The probe reached every route it is meant to: each function ran, rows were rejected by the
    # mapper and by the CSV reader, and each file has its report.
    functions = {record.function_id for record in stack.invocations}
    assert functions >= {
        "GenericImportFunction",
        "BlueConicImportFunction",
        "BlueConicExportFunction",
        "AmperityImportFunction",
        "SegmentImportFunction",
    }
    assert sum(len(record.logs.splitlines()) for record in stack.invocations) > 20
    rejects = "\n".join(text for key, text in artifacts.items() if "rejects" in key)
    assert "loyalty_points" in rejects and "phone" in rejects and "note" in rejects
    assert "broken.csv" in rejects and ("malformed CSV" in rejects or "but the header has" in rejects)
    assert len(secrets.values) > 60
    # The outbound CSV holds the addresses by design (it is data, not a report): proof they were there.
    outbound = [
        key
        for key in (
            item["Key"]
            for item in stack.s3_client.list_objects_v2(
                Bucket=stack.drop_bucket, Prefix="outbound/blueconic/"
            ).get("Contents", [])
        )
    ]
    assert outbound

    leaks = [
        f"{secret!r} ({origin}) in {place}"
        for place, text in places.items()
        for secret, origin in secrets.values.items()
        if secret in text
    ]
    leaks += [
        f"an e-mail address {address!r} in {place}"
        for place, text in places.items()
        for address in EMAIL.findall(text)
    ]
    assert leaks == []


def test_a_notification_for_an_unsafe_key_is_refused_and_ends_in_the_dead_letter_queue(
    stack: LocalStack,
) -> None:
    # Given a notification forged onto the queue for a key outside inbound/generic/ (the mapping)
    # and a real one for a key with an escape sequence in it
    queue_url = stack.physical_id("GenericImportQueue")
    forged = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": stack.drop_bucket},
                    "object": {"key": "config/generic.yaml", "size": 10, "eTag": "forged"},
                },
            }
        ]
    }
    stack.sqs_client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(forged))
    stack.put_object("inbound/generic/evil\x1b[2J.csv", "customer_id,first_name\nE-1,Eve\n")

    # When the queues drain
    records = stack.drain(timeout_s=120)

    # Then neither is processed: every delivery fails with the reason, and both messages wait in the
    # dead-letter queue for an operator (docs/operations.md)
    refusals = [r.error["errorMessage"] for r in records if r.error is not None]
    assert any("refused S3 key 'config/generic.yaml': the key is outside" in m for m in refusals)
    assert any("refused S3 key 'inbound/generic/evil\\x1b[2J.csv'" in m for m in refusals)
    dead = [orjson.loads(m["Body"]) for m in stack.peek_messages("GenericImportDeadLetterQueue")]
    keys = sorted(unquote_plus(r["s3"]["object"]["key"]) for message in dead for r in message["Records"])
    assert keys == ["config/generic.yaml", "inbound/generic/evil\x1b[2J.csv"]
    assert not any(
        "evil" in key
        for key in (
            item["Key"]
            for item in stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="reports/").get(
                "Contents", []
            )
        )
    )
