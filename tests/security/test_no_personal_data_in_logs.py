"""No e-mail address, phone number or key from the input reaches a log line, a report or a rejects file.

Every integration's path runs through the local stack from the template: generic import, BlueConic
import and export, Amperity import, Segment's S3 files and its signed webhook (with its relay),
Lytics snapshots, deltas and the Lytics export, Braze Currents (the CurrentsFunction with its
files, lytics and engagement routes) and Notify (opt-in export, planner, dispatcher and the
tracking pixel). It runs with DEBUG logging, every key of its own in the stack's secrets (the Braze
API key, the Segment webhook secret, the Lytics token, the pixel key), and input built to end up in
rejects by the routes a value takes there: bad values in columns named as personal data and in
free-text columns that are not, identifiers that are addresses, a CSV record the reader gives up
on, an unsigned webhook request and a signed one that is not JSON (both holding addresses), a batch
mixing calls with items that are not calls, an opt-in row with a raw address where the hash goes,
and pixel tokens forged or expired. Then everything a person could read without access to the data
is searched for each address, number and key: the functions' output (what Lambda sends to
CloudWatch, captured per invocation by the stack's workers), errors returned by invocations, the
answers of the Function URLs, what the workers wrote past sys.stdout (the test process's own
stderr), and every object under reports/.

What is deliberately not searched is the product's data output, which holds what its configuration
asks for: the export CSVs under outbound/ (BlueConic, Lytics), Currents' files route under outbound/
and the events posted to the Lytics collect API (the route config names the event types, and
Braze's Currents events carry the address they were sent to). The test checks that addresses do
reach them, so that the search of the other places is known to have had something to find.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote_plus

import orjson
import pytest
import requests

from cdpbridge.currents import currents_key
from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge.integrations.lytics import EXAMPLE_EXPORT_CONFIG_PATH as LYTICS_EXPORT_CONFIG_PATH
from cdpbridge.integrations.notify.pixel import PixelClaim, mint_token
from cdpbridge.integrations.segment.webhook import sign
from cdpbridge_local.currents_data import avro_bytes, load_sample
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv
from cdpbridge_local.emulator.workspace import ALL_PERMISSIONS
from cdpbridge_local.sinks import LyticsSinkServer
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CLICK_SAMPLE = ROOT / ".." / "shared" / "fixtures" / "currents" / "users.messages.email.Click.avro"
BRAZE_KEY = "pii-probe-braze-key-7f3a9c1e5b"
WEBHOOK_SECRET = "pii-probe-webhook-secret-2d8e4a"
LYTICS_TOKEN = "pii-probe-lytics-token-9b1f6c"
PIXEL_KEY = "pii-probe-pixel-key-5c7d3e0a"
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
# Lytics: a snapshot whose identifiers and audiences hold addresses and numbers (the bad ones are
# rejected), and deltas with an address in a custom field and as an identifier.
LYTICS_SNAPSHOT = (
    "external_id,audiences\n"
    "LP-1,lytics_all|high_value\n"
    "LP-2,lytics_all|lara.probe@example.org\n"
    ",lytics_all|+49 151 7777 8888\n"
    "LP-4,lytics_all\n"
)
LYTICS_DELTA_MAPPING = (
    "version: 1\nintegration: lytics\nsource: {format: jsonl}\n"
    "identifier: {column: external_id, as: external_id}\nlytics: {mode: delta}\n"
)
LYTICS_DELTA = (
    b'{"external_id": "LP-1", "email": "lena.probe@example.org", "lytics_segments": {"add": ["vip"]}}\n'
    b'{"external_id": "LP-4", "lytics_segments": {"add": ["mona.probe@example.org"], "remove": 5}}\n'
    b'{"external_id": "", "phone": "+49 151 4444 3333", "lytics_segments": {"add": ["vip"]}}\n'
    b"{broken line with otto.probe@example.org\n"
)
# Currents: every route on; the clicks' addresses go to outbound/ and to Lytics, never to a log.
CURRENTS_CONFIG = b"""
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""
CURRENTS_HOUR = datetime(2026, 12, 7, 8, tzinfo=UTC)
# Segment's webhook: signed calls with addresses and numbers in standard traits and custom ones.
WEBHOOK_CALLS = [
    {
        "type": "identify",
        "messageId": "pii-hook-1",
        "userId": "SW-1",
        "timestamp": "2026-12-01T09:00:00.000Z",
        "traits": {
            "email": "hanna.probe@example.org",
            "phone": "+49 151 2222 1111",
            "backup": "ida.probe@example.org",
        },
    },
    {
        "type": "track",
        "messageId": "pii-hook-2",
        "userId": "SW-1",
        "timestamp": "2026-12-01T09:01:00.000Z",
        "event": "Contact Changed",
        "properties": {"new_email": "jana.probe@example.org", "new_phone": "+49 151 2222 3333"},
    },
    # Calls the relay rejects: no time, a user id that is an address.
    {
        "type": "identify",
        "messageId": "pii-hook-3",
        "userId": "SW-3",
        "traits": {"email": "kai.probe@example.org"},
    },
    {
        "type": "identify",
        "messageId": "pii-hook-4",
        "userId": "lutz.probe@example.org",
        "timestamp": "2026-12-01T09:02:00.000Z",
        "traits": {"phone": "+49 151 2222 4444"},
    },
]
# Notify: readers with addresses, an opt-in export whose bad rows hold raw addresses.
NOTIFY_READERS = 12
NOTIFY_CAMPAIGN = "pii-probe-campaign"
NOTIFY_SEND_DATE = "2026-12-08"


def reader_email(index: int) -> str:
    return f"reader{index}.probe@example.org"


def notify_optin_csv() -> str:
    lines = ["email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id"]
    for index in range(NOTIFY_READERS):
        digest = hashlib.sha256(reader_email(index).encode()).hexdigest()
        lines.append(f"{digest},active,gold,open,2026-11-0{index % 7 + 2}T10:15:00Z,c-1")
    lines.append("olga.probe@example.org,active,gold,open,2026-11-02T10:00:00Z,c-1")  # raw address: rejected
    digest = hashlib.sha256(b"x").hexdigest()
    lines.append(f"{digest},active,gold,paul.probe@example.org,2026-11-02T10:00:00Z,c-1")
    lines.append(f"{digest},active,gold,open,+49 151 6666 5555,c-1")
    return "\n".join(lines) + "\n"


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
        self.add_text(name, text)

    def add_text(self, name: str, text: str) -> None:
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
def lytics() -> Iterator[LyticsSinkServer]:
    with LyticsSinkServer(LYTICS_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def stack(lytics: LyticsSinkServer) -> Iterator[LocalStack]:
    quick_exports = {
        "EXPORT_POLL_INITIAL_S": "0.2",
        "EXPORT_POLL_MAX_S": "0.5",
        "EXPORT_QUIET_PERIOD_S": "0.3",
        "EXPORT_INLINE_WAIT_MAX_S": "0.3",
    }
    with LocalStack.start(
        template=TEMPLATE,
        parameters={
            "BlueConicExportSegment": "Gold and platinum",
            "LyticsExportSegment": "Lytics probe",
            "EnableCurrents": "true",
            "LyticsUrl": lytics.url,
            "LogLevel": "DEBUG",
        },
        stack_name="pii-probe",
        secret_values={
            "BrazeApiKeySecretResource": BRAZE_KEY,
            "SegmentWebhookSecret": WEBHOOK_SECRET,
            "LyticsTokenSecretResource": LYTICS_TOKEN,
            "NotifyPixelKeySecret": PIXEL_KEY,
        },
        env_vars={
            "BlueConicExportFunction": quick_exports,
            "LyticsExportFunction": quick_exports,
            "NotifyPlannerFunction": quick_exports,
        },
        failed_message_visibility_s=0,
    ) as running:
        emulator(running, "POST", "/keys", {"key": BRAZE_KEY, "permissions": sorted(ALL_PERMISSIONS)})
        yield running


def run_every_integration(stack: LocalStack, tmp_path: Path, answers: dict[str, str]) -> Secrets:
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

    run_lytics(stack, secrets)
    run_currents(stack, secrets)
    run_segment_webhook(stack, secrets, answers)
    run_notify(stack, secrets, answers)
    return secrets


def run_lytics(stack: LocalStack, secrets: Secrets) -> None:
    stack.put_object(
        "config/lytics/probe.yaml",
        b"version: 1\nintegration: lytics\nsource: {format: csv}\n"
        b"identifier: {column: external_id, as: external_id}\n"
        b"lytics: {mode: snapshot, audiences_column: audiences, separator: '|'}\n",
    )
    stack.put_object("config/lytics/probe_delta.yaml", LYTICS_DELTA_MAPPING)
    stack.put_object("config/lytics-export.yaml", LYTICS_EXPORT_CONFIG_PATH.read_bytes())
    stack.put_object("inbound/lytics/probe/probe_2026-11-01.csv", LYTICS_SNAPSHOT)
    secrets.add_file("lytics snapshot", LYTICS_SNAPSHOT)
    stack.put_object("inbound/lytics/probe_delta/delta_1.jsonl", LYTICS_DELTA)
    secrets.add_text("lytics delta", LYTICS_DELTA.decode())
    stack.drain(timeout_s=180)
    emulator(
        stack,
        "POST",
        "/segments",
        {"name": "Lytics probe", "filter": {"attribute": "lytics_segments", "op": "exists"}},
    )
    stack.fire_schedule("LyticsExportFunction")
    stack.drain(timeout_s=180)


def run_currents(stack: LocalStack, secrets: Secrets) -> None:
    stack.put_object("config/currents.yaml", CURRENTS_CONFIG)
    click = load_sample(CLICK_SAMPLE)
    events = []
    for index in range(6):
        event = dict(click.record)
        event["id"] = f"pii-click-{index}"
        event["external_user_id"] = f"CU-{index}"
        event["email_address"] = f"clara{index}.probe@example.org"
        event["url"] = f"https://example.org/unsubscribe?email=clara{index}.probe@example.org"
        events.append(event)
        secrets.values[event["email_address"]] = f"Currents click {index} email_address"
    key = currents_key(prefix="currents", event_type=click.event_type, hour=CURRENTS_HOUR, name="probe.avro")
    stack.put_object(key, avro_bytes(click.schema, events))
    stack.drain(timeout_s=180)


def run_segment_webhook(stack: LocalStack, secrets: Secrets, answers: dict[str, str]) -> None:
    url = stack.function_urls["SegmentWebhookFunction"]
    mixed = orjson.dumps([*WEBHOOK_CALLS, "quinn.probe@example.org", ["+49 151 9090 8080"]])
    not_json = (
        b'{"type": "identify", "traits": {"email": "rita.probe@example.org", "phone": "+49 151 3030 4040"'
    )
    unsigned = orjson.dumps(
        WEBHOOK_CALLS[0] | {"userId": "SW-9", "traits": {"email": "sara.probe@example.org"}}
    )
    not_utf8 = b'{"type": "identify", "traits": {"email": "tom\xff.probe@example.org"}}'
    requests_sent = {
        "a signed mixed batch": (mixed, sign(WEBHOOK_SECRET.encode(), mixed), 200),
        "a signed body that is not JSON": (not_json, sign(WEBHOOK_SECRET.encode(), not_json), 400),
        "an unsigned body": (unsigned, "0" * 40, 401),
        "a signed body that is not UTF-8": (not_utf8, sign(WEBHOOK_SECRET.encode(), not_utf8), 400),
    }
    for label, (body, signature, status) in requests_sent.items():
        secrets.add_text(f"webhook: {label}", body.decode("utf-8", "replace"))
        response = requests.post(
            url, data=body, headers={"content-type": "application/json", "x-signature": signature}, timeout=30
        )
        assert response.status_code == status, (label, response.text)
        answers[f"webhook answer to {label}"] = response.text
    stack.drain(timeout_s=180)


def run_notify(stack: LocalStack, secrets: Secrets, answers: dict[str, str]) -> None:
    assert stack.emulator is not None
    readers = [
        {"external_id": f"NR-{index:03d}", "email": reader_email(index), "phone": f"+49 151 5050 {index:04d}"}
        for index in range(NOTIFY_READERS)
    ]
    for reader in readers:
        secrets.values[reader["email"]] = f"Notify reader {reader['external_id']} email"
        secrets.values[reader["phone"]] = f"Notify reader {reader['external_id']} phone"
    response = requests.post(
        f"{stack.emulator.url}/users/track",
        json={"attributes": readers},
        headers={"Authorization": f"Bearer {BRAZE_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    # Every user of the workspace: the readers and the profiles the imports above created.
    segment = emulator(stack, "POST", "/segments", {"name": "Notify probe"})
    emulator(stack, "POST", "/campaigns", {"campaign_id": NOTIFY_CAMPAIGN, "name": "Probe read"})
    program = {
        "program": "probe",
        "campaign_id": NOTIFY_CAMPAIGN,
        "segment_id": segment["segment_id"],
        "window": {"start": "09:00", "end": "12:00"},
        "slot_minutes": 60,
        "default_time_zone": "Europe/Berlin",
        "grace_minutes": 30,
    }
    stack.put_object("config/notify/probe.yaml", json.dumps(program))
    optin = notify_optin_csv()
    secrets.add_text("notify opt-in export", optin)
    stack.put_object("inbound/notify/optin/optin-probe.csv", optin)
    stack.drain(timeout_s=180)
    stack.invoke_record("NotifyPlannerFunction", {"send_date": NOTIFY_SEND_DATE})
    stack.drain(timeout_s=180)
    for hour in range(7, 13):
        stack.invoke_record("NotifyDispatchFunction", {"now": f"{NOTIFY_SEND_DATE}T{hour:02d}:05:00Z"})

    # The pixel: a good token, a forged one and an expired one, each answered with the GIF.
    sent_at = int(datetime(2026, 12, 8, 9, tzinfo=UTC).timestamp())
    good = mint_token(
        PIXEL_KEY.encode(), PixelClaim("probe", "NR-000", "s-1", sent_at, 60, sent_at + 86_400 * 3650)
    )
    expired = mint_token(PIXEL_KEY.encode(), PixelClaim("probe", "NR-001", "s-1", sent_at, 60, sent_at + 1))
    url = stack.function_urls["NotifyPixelFunction"]
    for label, token in {"good": good, "forged": good[:-4] + "AAAA", "expired": expired}.items():
        secrets.values[token] = f"pixel token ({label})"
        response = requests.get(url, params={"t": token}, timeout=30)
        assert response.status_code == 200 and response.content.startswith(b"GIF89a"), label
        answers[f"pixel answer ({label} token)"] = response.text


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
    stack: LocalStack, lytics: LyticsSinkServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    answers: dict[str, str] = {}
    secrets = run_every_integration(stack, tmp_path, answers)
    secrets.values.update(
        {
            WEBHOOK_SECRET: "the Segment webhook secret",
            LYTICS_TOKEN: "the Lytics token",
            PIXEL_KEY: "the Notify pixel key",
        }
    )
    stray_output = capfd.readouterr()

    places: dict[str, str] = dict(answers)
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
        "LyticsImportFunction",
        "LyticsExportFunction",
        "CurrentsFunction",
        "SegmentWebhookFunction",
        "SegmentRelayFunction",
        "NotifyOptinFunction",
        "NotifyPlannerFunction",
        "NotifyDispatchFunction",
        "NotifyPixelFunction",
    }
    assert sum(len(record.logs.splitlines()) for record in stack.invocations) > 20
    rejects = "\n".join(text for key, text in artifacts.items() if "rejects" in key)
    assert "loyalty_points" in rejects and "phone" in rejects and "note" in rejects
    assert "broken.csv" in rejects and ("malformed CSV" in rejects or "but the header has" in rejects)
    # Lytics, the webhook's relay and Notify's opt-in import each wrote rejects too, and the webhook
    # listed the items of the batch that are not calls.
    rejects_keys = [key for key in artifacts if "rejects" in key]
    assert sum("/reports/lytics/" in key for key in rejects_keys) >= 2, rejects_keys
    assert any("/reports/segment/" in key for key in artifacts), sorted(artifacts)
    assert any("/reports/notify-optin/" in key for key in artifacts), sorted(artifacts)
    assert '"rejected":2' in answers["webhook answer to a signed mixed batch"]
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
    # So do the Lytics export CSV, Currents' files route and the events posted to Lytics.
    for prefix, address in (
        ("outbound/lytics/", "@example"),
        ("outbound/amperity/currents/", "clara0.probe@example.org"),
    ):
        bodies = [
            stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            for item in stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix=prefix).get(
                "Contents", []
            )
        ]
        texts = [gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body for body in bodies]
        assert any(address.encode() in text for text in texts), prefix
    assert any(event.get("email_address") == "clara0.probe@example.org" for event in lytics.sink.events())

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
