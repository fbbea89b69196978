"""What a run tells its reader about the model: one log line per promotion and rollback, and the per-date table naming
them."""

import datetime as dt
import json
import logging

import luigi
from luigi.execution_summary import LuigiStatusCode

from pipelines import DailyScore
from pipelines.summary import summary_lines
from tasks.config import make_registry, make_storage
from tasks.retrain import Rollback

DAY0 = dt.date(2026, 5, 1)


def build(task) -> None:
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text


def day(i: int) -> dt.date:
    return DAY0 + dt.timedelta(days=i)


def row(i: int) -> str:
    (line,) = [line for line in summary_lines(day(0), day(6)) if line.startswith(day(i).isoformat())]
    return line


class Lines(logging.Handler):
    """The messages of a logger: batchml's logger does not propagate to pytest's handler once Luigi configured
    logging."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_promotion_and_a_rollback_are_one_log_line_each_and_shown_in_the_table(pipeline):
    for i in range(3):
        build(DailyScore(day(i)))
    lines = Lines()  # after Luigi's logging set-up, which replaces the logger's handlers
    logging.getLogger("batchml").addHandler(lines)
    try:
        # Any realized error now triggers, and any challenger passes the gate.
        pipeline(
            {
                "retrain": {
                    "error_increase": "-1",
                    "gate_days": "1",
                    "min_train_days": "1",
                    "margin": "-100",
                    "guard_tolerance": "100",
                }
            }
        )
        build(DailyScore(day(3)))
        decision = json.loads(make_storage().read_text(f"monitoring/date={day(3)}/retrain.json"))
        assert decision["decision"] == "promoted" and decision["challenger_version"] == "2"
        promotions = [m for m in lines.messages if m.startswith("promotion:")]
        assert promotions == [f"promotion: challenger v2 replaces v1 as @champion ({day(3)}): {decision['reason']}"]
        assert row(3).endswith("  promoted v2 (champion was v1)")

        build(Rollback(date=day(4), reason="bad promotion"))
        rollbacks = [m for m in lines.messages if m.startswith("rollback:")]
        assert rollbacks == [f"rollback: @champion moved from v2 back to v1 from {day(4)} on: bad promotion"]
        assert str(make_registry().version_by_alias("champion").version) == "1"
        assert row(4) == f"{day(4)}  not scored"  # the rollback shows with the date's numbers, once it is scored
        build(DailyScore(day(4)))
        assert row(4).endswith("  rolled back v2 -> v1") and " trip_duration v1 " in row(4)
        assert row(2).endswith("  not triggered")
    finally:
        logging.getLogger("batchml").removeHandler(lines)
