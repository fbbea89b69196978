"""Score one committed features date into predictions/date=D with the pinned model."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from batchml.errors import IntegrityError
from batchml.extract import FEATURES
from batchml.provenance import code_version
from batchml.registry import ModelPin
from batchml.scoring import score_files
from batchml.storage import Manifest, Storage

log = logging.getLogger(__name__)
PREDICTIONS = "predictions"


def predict_date(storage: Storage, date: dt.date, *, pin: ModelPin, model_path: Path, client, run_id: str) -> Manifest | None:
    """Commit predictions for `date`; None when another run committed them first.

    Checks rows in = rows scored + rows quarantined before anything is published.
    """
    features = storage.verify(FEATURES, date)
    with storage.writer(PREDICTIONS, date) as out:
        if out.committed:
            log.info("predictions for %s already committed by another run; nothing to do", date)
            return None
        result = score_files(
            client,
            str(storage.partition_path(FEATURES, date)),
            str(out.path),
            model_url=str(model_path),
            sha256=pin.sha256,
            model_name=pin.name,
            model_version=pin.version,
        )
        rows = {"in": features.rows["in"], "written": result.rows, "quarantined": features.rows["quarantined"]}
        if rows["in"] != rows["written"] + rows["quarantined"]:
            raise IntegrityError(f"{date}: rows in {rows['in']} != scored {rows['written']} + quarantined {rows['quarantined']}; nothing committed")
        manifest = Manifest(
            dataset=PREDICTIONS,
            date=date.isoformat(),
            rows=rows,
            schema_hash=features.schema_hash,
            input_fingerprint=_fingerprint(features),
            code_version=code_version(),
            run_id=run_id,
            model={"name": pin.name, "version": pin.version, "sha256": pin.sha256},
        )
        return out.commit(manifest, result.file_rows)


def _fingerprint(features: Manifest) -> str:
    """The features this date was scored from: their run and files."""
    body = f"{features.run_id}|" + "|".join(f"{f['path']}:{f['size']}" for f in features.files)
    return hashlib.sha256(body.encode()).hexdigest()[:16]
