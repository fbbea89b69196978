"""Validate a date of raw trips and commit its features and quarantined rows."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batchml.errors import RejectedShareTooHigh
from batchml.faults import failpoint
from batchml.features import KEY, LABEL, build_features
from batchml.provenance import code_version
from batchml.schema import REASON, Schema, top_reasons, validate
from batchml.sources import Source
from batchml.storage import Manifest, Storage

log = logging.getLogger(__name__)
FEATURES, QUARANTINE = "features", "quarantine"


@dataclass
class ExtractResult:
    rows_in: int
    rows_valid: int
    rows_rejected: int
    top_reasons: list[tuple[str, int]]
    skipped: bool = False


def extract_date(
    source: Source,
    schema: Schema,
    storage: Storage,
    date: dt.date,
    *,
    run_id: str,
    max_reject_share: float,
    rows_per_file: int,
) -> ExtractResult:
    """Validate every row of `date`, commit quarantine/ then features/ (features marks done).

    Raises RejectedShareTooHigh, after keeping the rejected rows under
    `quarantine/_rejected/`, when more than `max_reject_share` of the rows break the contract.
    """
    with storage.writer(FEATURES, date) as features, storage.writer(QUARANTINE, date, replace=True) as quarantine:
        if features.committed:
            log.info("features for %s already committed by another run; nothing to do", date)
            return ExtractResult(0, 0, 0, [], skipped=True)
        seen = np.empty(0, dtype="int64")
        file_rows: dict[str, int] = {}
        rejected: list[pd.DataFrame] = []
        rows_in = 0
        for origin, batch in source.batches(date):
            checked = validate(batch, schema, date, origin=origin, seen_keys=seen)
            rows_in += checked.rows_in
            seen = np.concatenate([seen, checked.valid[KEY].to_numpy()])
            for start in range(0, len(checked.valid), rows_per_file):
                name = f"part-{len(file_rows):05d}.parquet"
                part = build_features(checked.valid.iloc[start : start + rows_per_file])
                with features.open(name) as fh:
                    pq.write_table(pa.Table.from_pandas(part, preserve_index=False), fh)
                file_rows[name] = len(part)
                failpoint("extract.staged")
            if len(checked.rejected):
                rejected.append(checked.rejected.assign(source=origin))

        bad = pd.concat(rejected, ignore_index=True) if rejected else _empty_rejected(schema)
        rows_valid = sum(file_rows.values())
        assert rows_in == rows_valid + len(bad), "rows in != valid + rejected"
        reasons = top_reasons(bad[REASON])
        if rows_in and len(bad) / rows_in > max_reject_share:
            relative = f"{QUARANTINE}/_rejected/date={date.isoformat()}.{run_id}.parquet"
            with storage.open(relative, "wb") as fh:
                bad.to_parquet(fh, index=False)
            kept = storage.url(relative)
            listed = ", ".join(f"{r} ({n})" for r, n in reasons)
            raise RejectedShareTooHigh(
                f"{date}: {len(bad)} of {rows_in} rows ({len(bad) / rows_in:.1%}) broke the schema contract, "
                f"above max_reject_share={max_reject_share:.1%}. Top reasons: {listed}. Rejected rows kept in {kept}"
            )

        common = dict(
            date=date.isoformat(), schema_hash=schema.fingerprint(), input_fingerprint=source.fingerprint(date), code_version=code_version(), run_id=run_id
        )
        with quarantine.open("part-00000.parquet") as fh:
            bad.to_parquet(fh, index=False)
        quarantine.commit(
            Manifest(dataset=QUARANTINE, rows={"in": rows_in, "written": len(bad), "quarantined": len(bad)}, extra={"top_reasons": reasons}, **common),
            {"part-00000.parquet": len(bad)},
        )
        features.commit(
            Manifest(dataset=FEATURES, rows={"in": rows_in, "written": rows_valid, "quarantined": len(bad)}, extra={"top_reasons": reasons}, **common),
            file_rows,
        )
        log.info("%s: %d rows in, %d valid, %d quarantined", date, rows_in, rows_valid, len(bad))
        return ExtractResult(rows_in, rows_valid, len(bad), reasons)


def _empty_rejected(schema: Schema) -> pd.DataFrame:
    frame = validate(pd.DataFrame({c: pd.Series([], dtype="object") for c in schema.names}), schema, dt.date.min, origin="").rejected
    return frame.assign(source=pd.Series([], dtype="string"))


LABELS = "labels"


def extract_labels(source: Source, storage: Storage, date: dt.date, *, run_id: str) -> int | None:
    """Commit the arrived labels of `date` to labels/date=D; None if another run did first."""
    with storage.writer(LABELS, date) as out:
        if out.committed:
            return None
        labels = source.labels(date)
        labels = labels.astype({KEY: "int64", LABEL: "float64"})
        with out.open("part-00000.parquet") as fh:
            labels.to_parquet(fh, index=False)
        manifest = Manifest(
            dataset=LABELS,
            date=date.isoformat(),
            rows={"in": len(labels), "written": len(labels), "quarantined": 0},
            schema_hash="labels-v1",
            input_fingerprint=source.fingerprint(date),
            code_version=code_version(),
            run_id=run_id,
        )
        out.commit(manifest, {"part-00000.parquet": len(labels)})
        return len(labels)
