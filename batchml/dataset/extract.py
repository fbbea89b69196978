"""Validate a date's rows against the contract and commit its features, quarantine and labels."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Generator, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from batchml.base.errors import MissingInput, RejectedShareTooHigh
from batchml.base.faults import failpoint
from batchml.base.provenance import code_version, shaped_by
from batchml.base.redact import redact
from batchml.base.setting import setting, share
from batchml.dataset.contract import (
    REASON,
    Contract,
    add_keys,
    empty_rejected,
    repeats,
    top_reasons,
    validate,
)
from batchml.dataset.features import labels_of, model_inputs
from batchml.dataset.nulls import NullCounts
from batchml.dataset.sources import FILE_BATCH_ROWS, Source
from batchml.store import layout
from batchml.store.manifest import Manifest, parquet_file
from batchml.store.storage import Storage, naming_a_full_disk

log = logging.getLogger(__name__)
FEATURES, QUARANTINE = layout.FEATURES, layout.QUARANTINE
Batch = tuple[str, pd.DataFrame]  # a source's batch: where it came from, its rows
# Features row groups: scoring cuts a small date's files into row ranges (one per core and
# more), and a range reads only the row groups that hold it.
ROW_GROUP_ROWS = 65_536
# A column's dictionary stops at 32 KB, not Arrow's 1 MB: a column of many values (timestamps, distances) falls back to
# plain encoding after a few thousand rows instead of after a 1 MB dictionary built for nothing, and one of few values
# (zones, hours) keeps its dictionary. A 2M-row date's ExtractFeatures: 2.06-2.13 s -> 1.77 s (bench/score.py).
DICTIONARY_PAGE_BYTES = 32 << 10


@dataclass(frozen=True)
class SchemaSettings:
    """[schema] settings: the dataset contract and how many broken rows a date may have (the home of their
    defaults)."""

    path: str = setting("contract.yaml", "The dataset contract (YAML), relative to the project folder.")
    max_reject_share: float = share(0.05, "A date with a larger share of rejected rows fails.")


@dataclass
class ExtractResult:
    rows_in: int
    rows_valid: int
    rows_rejected: int
    top_reasons: list[tuple[str, int]]
    skipped: bool = False


class _Writer:
    """Features files of `rows_per_file` rows (the last fewer), written on a thread of their own while the next rows
    are read and validated.

    Rows are cut into files whatever the batches they came in: a source's batches of 262,144
    rows no longer make a 250,000-row file and a 12,144-row one each (16 uneven partitions to
    score instead of 8). Rows of a batch whose columns differ in type from those held start a
    file of their own. Writing Parquet releases the GIL, so on a date of many files it
    overlaps the reading and validation of the next batch (a fifth of extracting a 2M-row
    date). At most `in_flight` files wait; the first failure is raised in the extracting
    thread, and leaving the block waits for every write.
    """

    def __init__(self, staging, rows_per_file: int, in_flight: int = 2):
        self.staging, self.rows_per_file, self.in_flight = staging, rows_per_file, in_flight
        self.pending: collections.deque = collections.deque()
        self.file_rows: dict[str, int] = {}
        self.digests: dict[str, tuple[int, str]] = {}  # file -> (size, sha256) of the bytes written
        self.held: list[pa.Table] = []  # rows not yet in a file, fewer than rows_per_file

    def __enter__(self):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="batchml-features-writer")
        return self

    def add(self, table: pa.Table) -> None:
        """Hold `table`'s rows, and write every whole file they complete."""
        if self.held and not table.schema.equals(self.held[0].schema):
            self.finish()
        self.held.append(table)
        rows = sum(t.num_rows for t in self.held)
        if rows < self.rows_per_file:
            return
        joined, start = pa.concat_tables(self.held), 0
        while rows - start >= self.rows_per_file:
            self._file(joined.slice(start, self.rows_per_file))
            start += self.rows_per_file
        self.held = [joined.slice(start)] if start < rows else []

    def finish(self) -> None:
        """Write the rows held as the last file."""
        if self.held:
            self._file(pa.concat_tables(self.held))
            self.held = []

    def _file(self, table: pa.Table) -> None:
        name = f"part-{len(self.file_rows):05d}.parquet"
        self.file_rows[name] = table.num_rows
        self._submit(name, table)

    def _submit(self, name: str, table: pa.Table) -> None:
        while len(self.pending) >= self.in_flight:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write, name, table))

    def _write(self, name: str, table: pa.Table) -> None:
        """One file, made in memory and written whole; the sha256 of its bytes kept for the commit (`digests`), which
        then need not read the file back."""
        data, sha256 = parquet_file(
            table, row_group_size=ROW_GROUP_ROWS, dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES
        )
        with (
            naming_a_full_disk(self.staging.dataset, self.staging.date, f"{self.staging.url}/{name}"),
            self.staging.open(name) as fh,
        ):
            fh.write(data)
        self.digests[name] = (data.size, sha256)
        failpoint("extract.staged")

    def __exit__(self, exc_type, *exc):
        try:
            while self.pending:
                future = self.pending.popleft()
                future.result() if exc_type is None else future.exception()  # on an error, it stays the cause
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _validated_ahead(
    batches: Iterator[Batch], pool: ThreadPoolExecutor, contract: Contract, date: dt.date
) -> Generator[tuple[str, pd.DataFrame, Future | None], None, None]:
    """(origin, batch, its validation as a future: None for a batch of no rows), each batch's validation started on
    `pool` as soon as it is read, so the next batch is validated while the caller writes the one before (2 cores:
    the caller's model inputs and writes overlap it). A batch is validated alone (its own keys); the caller checks
    its keys against the date's before using it. The origin is redacted: it is named in the quarantine, the manifest
    and errors, and a source URL's credentials are not."""
    before = None
    for origin, batch in batches:
        origin = redact(origin)
        ahead = (
            pool.submit(validate, batch, contract, date, origin=origin) if batch is not None and len(batch) else None
        )
        if before is not None:
            yield before
        before = (origin, batch, ahead)
    if before is not None:
        yield before


def _read_ahead(batches: Iterator[Batch], pool: ThreadPoolExecutor) -> Generator[Batch, None, None]:
    """`batches`, the next one read on `pool` (one thread) while the caller works on the one before: reading the next
    file or query result, or a generator making it, overlaps the validation of the batch before (2.7 s -> 2.3 s
    extracting a 2M-row date of eight 250k-row batches; a second batch ahead gained nothing more). The source runs on
    that one thread from start to end, its close included (a query's connection stays on the thread that opened it);
    its exceptions are raised here, in order, and a caller that stops early stops it."""
    ahead = pool.submit(next, batches, None)
    try:
        while (batch := ahead.result()) is not None:
            ahead = pool.submit(next, batches, None)
            yield batch
    finally:
        futures.wait([ahead])  # the read under way, if any, ends before the source is closed on its thread
        close = getattr(batches, "close", None)
        if close is not None:
            pool.submit(close).result()


def _provenance(contract: Contract, source: Source, date: dt.date, run_id: str) -> dict[str, Any]:
    """What a manifest of the date records of where its rows came from: contract, input, code and run."""
    return {
        "date": date.isoformat(),
        "schema_hash": contract.fingerprint(),
        "input_fingerprint": source.fingerprint(date),
        "code_version": code_version(),
        "run_id": run_id,
    }


def extract_date(
    source: Source,
    contract: Contract,
    storage: Storage,
    date: dt.date,
    *,
    transform: str = "",
    run_id: str,
    max_reject_share: float,
    rows_per_file: int,
    replace: bool = False,
) -> ExtractResult:
    """Validate every row of `date`, commit quarantine/ then features/ (features marks done).

    The two commits appear together (batchml.store.visibility): the date's `_pending` marker is
    written before the first and removed after the second, and a date found with its
    marker (a run killed between them) is extracted again, replacing what it left.
    Files with no rows (header-only, or 0 bytes) are skipped and listed in the features
    manifest under `extra.empty_inputs`.

    Raises RejectedShareTooHigh, after keeping the rejected rows under
    `quarantine/_rejected/`, when more than `max_reject_share` of the rows break the contract,
    and MissingInput when the source holds no row of the date (an empty file is missing
    data, not an empty date: the date runs when its rows arrive). `replace` re-extracts a
    committed date (on request only: its source changed).
    """
    with (
        storage.writer(FEATURES, date, replace=replace) as features,
        storage.writer(QUARANTINE, date, replace=True) as quarantine,
    ):
        if storage.is_pending(date):  # a run was killed between the two commits: neither is visible, extract again
            log.warning(
                "%s: a killed run left its quarantine and features commits unfinished; extracting the date again", date
            )
            features.replace = True
        if features.committed:
            log.info("features for %s already committed by another run; nothing to do", date)
            return ExtractResult(0, 0, 0, [], skipped=True)
        empty_inputs: list[str] = []
        seen = np.empty(0, dtype="uint64")
        columns: dict[str, str] = {}
        rejected: list[pd.DataFrame] = []
        nulls = NullCounts()
        rows_in = 0
        # The hook sees at most a file's rows, or a source file's batch whole: cut at 250,000 rows, each 262,144-row
        # batch called it twice.
        hook_rows = max(rows_per_file, FILE_BATCH_ROWS)
        with (
            _Writer(features, rows_per_file) as writer,
            ThreadPoolExecutor(1, thread_name_prefix="batchml-source-reader") as reader,
            ThreadPoolExecutor(1, thread_name_prefix="batchml-validate") as validator,
            # closed before their threads stop: a failure stops the source on its thread
            contextlib.closing(_read_ahead(source.batches(date), reader)) as batches,
            contextlib.closing(_validated_ahead(batches, validator, contract, date)) as checked_batches,
        ):
            for origin, batch, ahead in checked_batches:
                if ahead is None:  # a 0-byte or header-only file: no rows, nothing to check
                    empty_inputs.append(origin)
                    continue
                checked = ahead.result()
                keys = add_keys(seen, checked.key_hashes)
                if repeats(keys):
                    # A key of an earlier batch again (validated alone, the batch could not know): validated once
                    # more against the date's keys, so those rows go to the quarantine with their source text.
                    checked = validate(batch, contract, date, origin=origin, seen_keys=seen)
                    keys = add_keys(seen, checked.key_hashes)
                rows_in += checked.rows_in
                seen = keys
                nulls.add(len(checked.valid), checked.null_counts)
                for start in range(0, len(checked.valid), hook_rows):
                    part = model_inputs(
                        checked.valid.iloc[start : start + hook_rows].reset_index(drop=True), contract, transform
                    )
                    columns = columns or {c: str(t) for c, t in part.dtypes.items()}
                    writer.add(pa.Table.from_pandas(part, preserve_index=False))
                if len(checked.rejected):
                    rejected.append(checked.rejected.assign(source=origin))
            writer.finish()
        file_rows, digests = writer.file_rows, writer.digests

        if rows_in == 0:
            raise MissingInput(
                f"{date}: the source holds no rows of this date (an empty file or query); nothing committed"
            )
        bad = (
            pd.concat(rejected, ignore_index=True)
            if rejected
            else empty_rejected(contract).assign(source=pd.Series([], dtype="string"))
        )
        rows_valid = sum(file_rows.values())
        assert rows_in == rows_valid + len(bad), "rows in != valid + rejected"
        reasons = top_reasons(bad[REASON])
        if rows_in and len(bad) / rows_in > max_reject_share:
            relative = layout.rejected(date, run_id)
            with naming_a_full_disk(QUARANTINE, date, storage.url(relative)), storage.open(relative, "wb") as fh:
                bad.to_parquet(fh, index=False, write_page_checksum=True)
            kept = storage.url(relative)
            listed = ", ".join(f"{r} ({n})" for r, n in reasons)
            raise RejectedShareTooHigh(
                f"{date}: {len(bad)} of {rows_in} rows ({len(bad) / rows_in:.1%}) broke the schema contract, "
                f"above max_reject_share={max_reject_share:.1%}. Top reasons: {listed}. Rejected rows kept in {kept}"
            )

        common: dict[str, Any] = _provenance(contract, source, date, run_id)
        common["shaped_by"] = shaped_by(contract, transform)  # what Backfill compares to list a date as changed
        with (
            naming_a_full_disk(QUARANTINE, date, f"{quarantine.url}/part-00000.parquet"),
            quarantine.open("part-00000.parquet") as fh,
        ):
            bad.to_parquet(fh, index=False, write_page_checksum=True)
        extra = {
            "top_reasons": reasons,
            "columns": columns,
            "key": list(contract.key),
            "validated_nulls": nulls.as_json(),
        }
        if empty_inputs:
            extra["empty_inputs"] = empty_inputs
        # Quarantine and features appear together: neither is visible while the marker exists.
        storage.write_text(layout.pending(date), json.dumps({"run_id": run_id}))
        failpoint("extract.pending")
        quarantine.commit(
            Manifest(
                dataset=QUARANTINE,
                rows={"in": rows_in, "written": len(bad), "quarantined": len(bad)},
                extra={"top_reasons": reasons},
                **common,
            ),
            {"part-00000.parquet": len(bad)},
        )
        failpoint("extract.quarantine.committed")
        features.commit(
            Manifest(
                dataset=FEATURES,
                rows={"in": rows_in, "written": rows_valid, "quarantined": len(bad)},
                extra=extra,
                **common,
            ),
            file_rows,
            digests,
        )
        failpoint("extract.features.committed")
        storage.delete(layout.pending(date))
        if empty_inputs:
            log.info("%s: skipped %d input file(s) with no rows: %s", date, len(empty_inputs), ", ".join(empty_inputs))
        log.info("%s: %d rows in, %d valid, %d quarantined", date, rows_in, rows_valid, len(bad))
        return ExtractResult(rows_in, rows_valid, len(bad), reasons)


def validated_nulls(storage: Storage, date: dt.date) -> NullCounts | None:
    """The nulls of `date`'s valid rows per nullable contract column, before the features hook (None: extracted before
    they were counted)."""
    manifest = storage.manifest(FEATURES, date)
    return NullCounts.from_json(manifest.extra.get("validated_nulls")) if manifest else None


def trailing_nulls(storage: Storage, date: dt.date, days: int) -> tuple[NullCounts | None, list[str]]:
    """The validated nulls of the committed dates among the `days` before `date`, added up, and those dates."""
    total, dates = NullCounts(), []
    for i in range(1, days + 1):
        day = date - dt.timedelta(days=i)
        counts = validated_nulls(storage, day)
        if counts is not None:
            total.add(counts.rows, counts.nulls)
            dates.append(day.isoformat())
    return (total if dates else None), dates


LABELS = layout.LABELS


def extract_labels(
    source: Source, contract: Contract, storage: Storage, date: dt.date, *, transform: str = "", run_id: str
) -> int | None:
    """Commit the labels of `date` to labels/date=D; None if another run did first.

    With `[labels] transform`, labels are derived from the date's own valid rows;
    otherwise they are read from the source's labels feed.
    """
    with storage.writer(LABELS, date) as out:
        if out.committed:
            return None
        if transform:
            rows = [validate(b, contract, date, origin=o).valid for o, b in source.batches(date)]
            labels = labels_of(pd.concat(rows, ignore_index=True), contract, transform)
        else:
            labels = source.labels(date)
        with out.open("part-00000.parquet") as fh:
            labels.to_parquet(fh, index=False, write_page_checksum=True)
        manifest = Manifest(
            dataset=LABELS,
            rows={"in": len(labels), "written": len(labels), "quarantined": 0},
            **_provenance(contract, source, date, run_id),
            extra={"label": contract.require_label().column, "key": list(contract.key)},
        )
        out.commit(manifest, {"part-00000.parquet": len(labels)})
        return len(labels)
