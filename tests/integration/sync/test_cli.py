"""`cdpbridge run` from a laptop: a real run, a second run that dedupes, a dry run that sends nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv

from .conftest import Braze

pytestmark = pytest.mark.integration


def test_run_then_rerun_then_dry_run(
    tmp_path: Path, braze: Braze, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_customers_csv(tmp_path / "customers.csv", 200)
    config = tmp_path / "mapping.yaml"
    config.write_text(CUSTOMER_MAPPING_YAML)
    common = [
        "--config",
        str(config),
        "--state",
        str(tmp_path / "state.sqlite3"),
        "--report-dir",
        str(tmp_path / "r"),
    ]
    target = ["--braze-url", braze.url, "--api-key", "local-dev-key"]

    # When a file runs, the summary says what was sent
    assert main(["run", str(data), *common, *target, "--quiet"]) == 0
    first = capsys.readouterr().out
    assert "rows read" in first
    assert "3,800" in first  # 200 users x 19 attributes
    assert braze.user_count() == 200

    # And a second run of the same file skips every value
    requests_before = braze.stats()["requests"]
    assert main(["run", str(data), *common, *target, "--quiet"]) == 0
    second = capsys.readouterr().out
    assert "attributes unchanged (skipped)  3,800" in second
    assert braze.stats()["requests"] == requests_before

    # And a dry run of a changed file sends nothing but plans the changed values
    changed = write_customers_csv(tmp_path / "changed.csv", 200, generation=1, change_share=0.1)
    assert main(["run", str(changed), *common, "--dry-run", "--quiet"]) == 0
    plan = capsys.readouterr().out
    assert "dry run: nothing was sent" in plan
    assert "attributes to send" in plan
    assert braze.stats()["requests"] == requests_before


def test_a_bad_mapping_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mapping.yaml"
    config.write_text(CUSTOMER_MAPPING_YAML.replace("strategy: set}", "strategy: replace}", 1))
    data = write_customers_csv(tmp_path / "c.csv", 3)
    assert main(["run", str(data), "--config", str(config), "--dry-run"]) == 2
    assert "fields[0].strategy" in capsys.readouterr().err


def test_a_file_that_does_not_fit_its_mapping_fails_the_command(
    tmp_path: Path, braze: Braze, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a customer file whose identifier column was renamed
    data = write_customers_csv(tmp_path / "customers.csv", 5)
    data.write_text(data.read_text().replace("customer_id,", "CustomerId,", 1))
    config = tmp_path / "mapping.yaml"
    config.write_text(CUSTOMER_MAPPING_YAML)
    # When it runs
    code = main(
        [
            "run",
            str(data),
            "--config",
            str(config),
            "--state",
            str(tmp_path / "state.sqlite3"),
            "--report-dir",
            str(tmp_path / "r"),
            "--braze-url",
            braze.url,
            "--api-key",
            "local-dev-key",
            "--quiet",
        ]
    )
    # Then the command fails and says why, and nothing reached Braze
    assert code == 1
    err = capsys.readouterr().err
    assert (
        f"cdpbridge run: failed: the file does not fit the mapping, so none of its rows were sent: {data}"
        in err
    )
    assert "identifier.column: the file has no column 'customer_id'" in err
    assert braze.user_count() == 0
