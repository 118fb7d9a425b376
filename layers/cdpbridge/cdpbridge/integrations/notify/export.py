"""The planner's segment export: the program's segment as a users file, e-mails hashed on the way.

The planner function runs the shared segment export machinery (``cdpbridge.exports``: export into
the drop bucket, wait across invocations) with this integration. The converted file is a CSV under
``outbound/notify/<program>/<YYYY-MM-DD>/<run>.csv`` with the columns ``external_id,
email_sha256, time_zone``: the e-mail is hashed as each user is read, so no raw address is
written anywhere. The config carries the program's name and send date so that the function knows,
once the file is written, which plan it is for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import IO, Any, Final

from pydantic import Field

from cdpbridge.exports.segment import ExportIntegration, OutputCounters, SegmentExportConfig, csv_writer
from cdpbridge.integrations.notify.planner import SEGMENT_EXPORT_FIELDS, plan_user_from_export

USERS_COLUMNS: Final = ("external_id", "email_sha256", "time_zone")


class NotifyExportConfig(SegmentExportConfig):
    """The segment of one program, exported for the plan of one send date."""

    program: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    send_date: date

    def export_fields(self) -> list[str]:
        return list(SEGMENT_EXPORT_FIELDS)


def write_users(config: Any, users: Iterable[dict[str, Any]], out: IO[str]) -> OutputCounters:
    counters = OutputCounters()
    writer = csv_writer(out)
    writer.writerow(USERS_COLUMNS)
    for record in users:
        user = plan_user_from_export(record)
        if user is None:
            counters.users_skipped += 1
            continue
        writer.writerow((user.external_id, user.email_sha256 or "", user.time_zone or ""))
        counters.rows_written += 1
    return counters


NOTIFY_EXPORT: Final = ExportIntegration(
    name="notify", config_model=NotifyExportConfig, write_output=write_users
)

__all__ = ["NOTIFY_EXPORT", "USERS_COLUMNS", "NotifyExportConfig", "write_users"]
