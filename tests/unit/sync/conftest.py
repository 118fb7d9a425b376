from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.sync.job_helpers import Workdir


@pytest.fixture
def workdir(tmp_path: Path) -> Workdir:
    return Workdir(tmp_path)
