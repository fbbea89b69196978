"""`Backfill --dry-run` and the dashboard agree on failed versus missing (batchml.monitor.monitoring.has_failed)."""

from __future__ import annotations

import datetime as dt

from batchml.monitor.backfill import plan
from batchml.monitor.dashboard import collect
from batchml.monitor.failures import failure_of, record_failure
from batchml.store.storage import Storage

DAY = dt.date(2026, 6, 12)


def test_a_date_that_failed_before_scoring_is_failed_for_both(tmp_path):
    storage = Storage(tmp_path)
    record_failure(
        storage,
        DAY,
        failure_of("ExtractFeatures", "ExtractFeatures(date=2026-06-12)", ValueError("31% of rows rejected")),
    )
    never_run = DAY + dt.timedelta(days=1)

    dry_run = plan(storage, [DAY, never_run], champion_version="1")
    assert dry_run.failed == [DAY] and dry_run.missing == [never_run]
    assert [(s["date"], s["status"]) for s in collect(storage)] == [(DAY.isoformat(), "fail")]
    assert "ValueError: 31% of rows rejected" in storage.read_text("monitoring/index.html")  # rendered when recorded


def test_credentials_never_reach_a_failure_record(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    exc = ConnectionError("postgresql://batch:hunter2@db:5432/trips refused; key s3cr3t-value")
    cause = failure_of("SourceData", "SourceData(date=2026-06-12)", exc).cause
    assert cause == "ConnectionError: postgresql://***@db:5432/trips refused; key ***"
