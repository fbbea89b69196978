"""Score one committed features date into predictions/date=D with the pinned model."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import fsspec

from batchml.base.errors import IntegrityError
from batchml.base.provenance import code_version
from batchml.model.pin import ModelPin
from batchml.model.runtimes import check_inputs
from batchml.scoring.scoring import ModelSpec, score_files
from batchml.stats.profile import daily_profile
from batchml.store import layout
from batchml.store.layout import FEATURES, PREDICTIONS, PROFILE_FILE
from batchml.store.manifest import Manifest
from batchml.store.storage import Storage

log = logging.getLogger(__name__)


def predict_date(
    storage: Storage,
    date: dt.date,
    *,
    pin: ModelPin,
    model_path: Path | str,
    key: tuple[str, ...],
    client,
    run_id: str,
    reference: dict | None = None,
    on_progress=None,
    replace: bool = False,
    in_process_rows: int = 0,
    threads_here: int = 0,
) -> Manifest | None:
    """Commit predictions for `date`; None when another run committed them first.

    With a `reference` profile, the date's profile on the reference bins is computed in the
    same pass and committed with the predictions. The features' files are checked against
    their manifest: sizes first, then every byte's sha256 as scoring reads it, naming a bad
    file (the date is read once). Checks rows in = rows scored + rows
    quarantined before anything is published. `replace` re-scores a committed date (on
    request only: a re-pinned, stale date); the old files stay visible until the new ones
    are complete. `client` is a Dask client or a function that opens one; a date of at most
    `in_process_rows` rows is scored on `threads_here` threads of this process instead, and
    the client is never opened.
    """
    # The files' sizes here; their sha256 as scoring reads them: every byte read once, and checked.
    features = storage.verify(FEATURES, date)
    inputs = check_inputs(pin, features, date)
    specs = profile_specs(reference)  # the profile's bins, or None: no profile
    spec = ModelSpec(
        str(model_path),
        pin.scored_sha256,
        pin.runtime,
        inputs,
        tuple(key),
        pin.name,
        pin.version,
        pin.classes,
        pin.input_types,
    )
    with storage.writer(PREDICTIONS, date, replace=replace) as out:
        if out.committed:
            log.info("predictions for %s already committed by another run; nothing to do", date)
            return None
        scored = features.rows["in"] - features.rows["quarantined"]
        here = threads_here if threads_here and scored <= in_process_rows else 0
        if here:
            log.info("scoring %d rows of %s on %d threads of this process ([dask] in_process_rows)", scored, date, here)
        files = storage.files(FEATURES, date)  # in the manifest's order
        result = score_files(
            None if here else (client() if callable(client) else client),
            files,
            out.url,
            spec=spec,
            profile_specs=specs,
            on_progress=on_progress,
            threads=here,
            sha256={url: f["sha256"] for url, f in zip(files, features.files, strict=True) if f.get("sha256")},
        )
        rows = {"in": features.rows["in"], "written": result.rows, "quarantined": features.rows["quarantined"]}
        if rows["in"] != rows["written"] + rows["quarantined"]:
            raise IntegrityError(
                f"{date}: rows in {rows['in']} != scored {rows['written']} + quarantined {rows['quarantined']}; "
                "nothing committed"
            )
        manifest = Manifest(
            dataset=PREDICTIONS,
            date=date.isoformat(),
            rows=rows,
            schema_hash=features.schema_hash,
            input_fingerprint=scored_from(features),
            code_version=code_version(),
            run_id=run_id,
            model=manifest_model(pin),
        )
        if result.profile is not None and specs is not None:
            body = daily_profile(result.profile, specs)
            with out.open(PROFILE_FILE, "w") as fh:
                fh.write(json.dumps(body, sort_keys=True))
        committed = out.commit(manifest, result.file_rows, result.digests)
        log.info("committed predictions for %s: %d rows, models:/%s/%s", date, rows["written"], pin.name, pin.version)
        return committed


def manifest_model(pin: ModelPin) -> dict:
    """What the predictions manifest records of the model: version, runtime, what was loaded and why."""
    body = {
        "name": pin.name,
        "version": pin.version,
        "sha256": pin.sha256,
        "runtime": pin.runtime,
        "flavor": pin.flavor,
    }
    if pin.converted_sha256:
        body["converted_sha256"] = pin.converted_sha256
    if pin.note:
        body["note"] = pin.note
    return body


def features_sample(storage: Storage, date: dt.date, n: int, seed: int = 0):
    """At most `n` of the date's feature rows, drawn with a fixed seed from its first files (read whole)."""
    import pandas as pd

    parts, have = [], 0
    for path in storage.files(FEATURES, date):
        with fsspec.open(path, "rb") as fh:
            parts.append(pd.read_parquet(fh))
        have += len(parts[-1])
        if have >= 4 * n:
            break
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(n, random_state=seed).reset_index(drop=True) if len(frame) > n else frame


def sample_predictions(sample, pin: ModelPin, model_path, key: tuple[str, ...]):
    """The pinned model's outputs on a sample, as the workers compute them."""
    from batchml.scoring.scoring import predict_partition

    inputs = pin.inputs or tuple(c for c in sample.columns if c not in key)
    spec = ModelSpec(
        str(model_path), pin.scored_sha256, pin.runtime, inputs, (), pin.name, pin.version, pin.classes, pin.input_types
    )
    return predict_partition(sample, spec), list(inputs)


def model_for_workers(storage, pin: ModelPin, local_path: Path) -> str:
    """Where Dask workers read the pinned model from.

    On an object store, the ONNX file is put once beside the data, named by its sha256,
    so workers on other hosts read it straight from the store, once per worker (each keeps
    its session); nothing goes through the scheduler. On a local root, the local cache.
    """
    if "://" not in storage.url() or Path(local_path).is_dir():
        return str(local_path)  # a pyfunc model folder is read from the local cache
    relative = layout.model_file(pin.scored_sha256)
    if storage.read_text(layout.model_file(pin.scored_sha256, ".json")) is None:
        with storage.open(relative, "wb") as fh:
            fh.write(local_path.read_bytes())
        storage.write_text(
            layout.model_file(pin.scored_sha256, ".json"), pin.to_json()
        )  # written after the model: it marks it whole
    return storage.url(relative)


def profile_path(date: dt.date) -> str:
    """Where a date's profile lives, relative to the storage root."""
    return layout.profile(date)


def profile_specs(reference: dict | None) -> dict[str, dict] | None:
    """The bins to count a date on: every reference feature column, and the prediction."""
    if reference is None:
        return None
    return {**reference["columns"], **(reference.get("outputs") or {"prediction": reference["prediction"]})}


def scored_from(features: Manifest) -> str:
    """The features this date was scored from: their run and files."""
    body = f"{features.run_id}|" + "|".join(f"{f['path']}:{f['size']}" for f in features.files)
    return hashlib.sha256(body.encode()).hexdigest()[:16]
