"""What a new user types wrong on the command line gets one line naming it."""

from __future__ import annotations

import pytest

from tests.e2e.test_startup import minimal_cfg, run_project


@pytest.mark.parametrize(
    "args, line",
    [
        (["DailyScore", "--date", "2026-13-45"], "batchml: DailyScore --date 2026-13-45: not a date as YYYY-MM-DD"),
        (
            ["RangeDaily", "--of", "DailyScore", "--start", "2026-06-01", "--stop", "June 3"],
            "batchml: RangeDaily --stop June 3: not a date as YYYY-MM-DD",
        ),
    ],
)
def test_an_invalid_date_is_one_line_naming_the_parameter_and_value(tmp_path, args, line):
    run = run_project(tmp_path, minimal_cfg(tmp_path), *args)
    assert run.returncode == 35  # Luigi's scheduling_error, as every start-up check
    assert (run.stdout + run.stderr).strip().splitlines() == [line]
    assert not (tmp_path / "data").exists()
