"""monitoring/index.html: a dashboard over every monitored date.

Three steps, so that 400 dates stay cheap: collect.py reads each date's documents once (one
listing of its folder, then only the files it holds, and the predictions/features
manifests), summary.py boils them down to one small dict, and `render_dashboard` draws
timelines (timeline.py), a date-by-feature drift heatmap, model version bands and a table
of the dates from those dicts alone. Only `collect` and `write_index` touch storage.
"""

from __future__ import annotations

from batchml.monitor.charts import format_number, format_share
from batchml.monitor.collect import date_records
from batchml.monitor.report import render
from batchml.monitor.summary import STATUS_LABELS, place_realized, status_key, summarize_date
from batchml.monitor.timeline import timeline_charts
from batchml.store import layout
from batchml.store.storage import Storage

INDEX = layout.INDEX


def collect(storage: Storage) -> list[dict]:
    """One summary per monitored date, oldest first; each date's documents are read once."""
    return [summarize_date(record) for record in date_records(storage)]


def write_index(storage: Storage) -> None:
    """Render the dashboard over every date to monitoring/index.html."""
    storage.write_text(INDEX, render_dashboard(collect(storage)))


def render_dashboard(summaries: list[dict]) -> str:
    """The dashboard page from `summarize_date` results (any order; drawn oldest to newest)."""
    dates = place_realized(sorted(summaries, key=lambda s: s["date"]))
    counts = {s: sum(1 for d in dates if d["status"] == s) for s in STATUS_LABELS}
    latest = dates[-1] if dates else None
    scored = [d for d in dates if d["status"] not in ("labels", "missing")]
    return render(
        "dashboard.html",
        dates=dates,
        newest_first=dates[::-1],
        counts={s: n for s, n in counts.items() if n},
        latest=latest,
        last_scored=scored[-1] if scored else None,
        tiles=_tiles(dates),
        charts=timeline_charts(dates) if dates else [],
        href=layout.report_href,
        status_key=status_key,
        num=format_number,
        pct=format_share,
    )


def _tiles(dates: list[dict]) -> list[tuple[str, str, str, str]]:
    """Headline numbers: (label, value, sub-line, status class)."""
    if not dates:
        return []
    last = dates[-1]
    with_version = [d for d in dates if d["version"]]
    realized = [d for d in dates if d["r_value"] is not None]
    verdicts = [
        d for d in dates if d["verdict"] in ("drift", "no drift")
    ]  # a date collecting its baseline had no verdict
    drifted_dates = sum(1 for d in verdicts if d["verdict"] == "drift")
    failed = [d for d in dates if d["status"] == "fail"]
    return [
        (
            "Latest date",
            last["date"],
            STATUS_LABELS[last["status"]] + (f" · {last['cause']}" if last["cause"] else ""),
            last["status"],
        ),
        (
            "Model in use",
            f"v{with_version[-1]['version']}" if with_version else "—",
            f"since {_version_start(dates)}" if with_version else "",
            "",
        ),
        (
            f"Realized {realized[-1]['r_metric'] if realized else 'error'}",
            format_number(realized[-1]["r_value"]) if realized else "—",
            f"of {realized[-1]['date']} (v{realized[-1]['r_version']}) · coverage "
            f"{format_share(realized[-1]['r_coverage'])}"
            if realized
            else "no labels yet",
            "",
        ),
        (
            "Dates with drift",
            f"{drifted_dates} of {len(verdicts)}",
            f"of the dates with a verdict · latest share {format_share(verdicts[-1]['drifted_share'])}"
            if verdicts
            else "no verdict yet",
            "drift" if drifted_dates else "",
        ),
        ("Failed dates", str(len(failed)), failed[-1]["date"] if failed else "none", "fail" if failed else ""),
    ]


def _version_start(dates: list[dict]) -> str:
    current, start = None, None
    for d in dates:
        if d["version"] and d["version"] != current:
            current, start = d["version"], d["date"]
    return start or "—"
