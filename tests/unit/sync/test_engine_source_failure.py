"""A source that fails part-way: every row it gave before failing is still applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdpbridge.records import RowPosition, SourceRow
from tests.unit.sync.test_engine_repeated_users import SCOPE, FakeBraze, Mapper, Setup


class FailingRows:
    """``count`` rows, then an error, as a damaged file gives them."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self) -> Iterator[SourceRow]:
        for number in range(1, self.count + 1):
            yield SourceRow(RowPosition("file.csv", number, 0), {"id": f"u{number}", "city": "Paris"})
        raise OSError("the file is cut off")

    def resume_point(self) -> None:
        return None


@pytest.mark.parametrize("count", [0, 3, 4, 5])
def test_the_rows_before_the_failure_are_sent_in_a_chunk_cut_short(tmp_path: Path, count: int) -> None:
    setup = Setup(tmp_path)
    braze = FakeBraze()
    engine = setup.engine(braze, chunk_rows=4)
    with pytest.raises(OSError, match="cut off"):
        engine.run(FailingRows(count), Mapper(), scope=SCOPE)
    assert engine.counters.rows_read == count
    assert sorted(body["external_id"] for body in braze.objects) == sorted(
        f"u{n}" for n in range(1, count + 1)
    )
