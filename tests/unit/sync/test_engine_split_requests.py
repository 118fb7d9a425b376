"""A users.track request the client had to split after "Max Input Length Exceeded": the objects of
a piece that could not be sent follow the retry-file path, the others are committed, and the report
carries the extra requests and the cap the run was lowered to."""

from __future__ import annotations

import threading

from cdpbridge.braze import AdaptiveTrackCap, TrackOutcome, TrackRequest
from cdpbridge.sync.job import run_part
from cdpbridge.sync.retry import decode_retry_file
from tests.unit.sync.job_helpers import FakeBraze, Workdir, job_request

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string}
"""


class SplittingBraze(FakeBraze):
    """Answers every request as the client does when Braze refused its size, lowered the cap to half
    and then took the first half while the second met a Braze that stayed unavailable."""

    def __init__(self) -> None:
        super().__init__()
        self._split_lock = threading.Lock()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        assert isinstance(cap, AdaptiveTrackCap)
        with self._split_lock:
            self.calls += 1
            cap.lower(request.object_count())
            refs = request.refs["attributes"]
            middle = (len(refs) + 1) // 2
            return TrackOutcome(
                "partial", 503, "unavailable", [], attempts=5, unsent=list(refs[middle:]), requests=3
            )


def test_unsent_half_goes_to_the_retry_file_and_the_report_names_the_lowered_cap(workdir: Workdir) -> None:
    path = workdir.write("users.csv", "id,tier", [f"u{n},gold" for n in range(10)])
    braze = SplittingBraze()
    outcome = run_part(job_request(MAPPING, path, "runA"), workdir.services(braze))
    report = outcome.report
    assert report is not None
    assert report["track_cap"] == {"mode": "total", "limit": 75}
    assert report["track_cap_lowered_to"] == 5
    assert (report["requests"], report["retries"]) == (3, 2)
    assert report["objects_to_retry_file"] == 5 and report["objects_rejected_by_braze"] == 0
    [retry_file] = workdir.retry_files()
    entries = list(decode_retry_file(workdir.artifacts.get(retry_file) or b"", "a"))
    assert sorted(entry.ref.user_key for entry in entries) == [f"external_id:u{n}" for n in range(5, 10)]
