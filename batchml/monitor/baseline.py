"""The drift reference of a version that carries none: built from its first scored dates.

Layout under the storage root, per model version, each file written once:

    _baselines/<model>/<version>/bins.json    the bins: a reference profile of a sample of
                                               the first date the version scored (features
                                               and outputs), made just before that date is
                                               scored, so every date it scores is profiled
                                               on the same bins in the scoring pass
    _baselines/<model>/<version>/dates.json   the `baseline_days` earliest dates it scored,
                                               fixed once that many have daily profiles

The reference is the bins with the sum of those dates' daily profiles (daily profiles add
up), plus the dates' own profiles, so a date is compared with the baseline's same weekdays
as with a reference made at training time. Until the dates are in, drift says
"collecting baseline (k of N dates)".
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd

from batchml.base.setting import count
from batchml.dataset.features import categorical_inputs
from batchml.model.onnx_io import PREDICTION, proba_columns
from batchml.model.pin import ModelPin
from batchml.scoring.predictions import profile_path
from batchml.stats.profile import reference_profile, window_profile
from batchml.store.layout import PREDICTIONS

BASELINES = "_baselines"


@dataclass(frozen=True)
class BaselinePolicy:
    """[drift] baseline_days: the reference of a version batchml did not profile (the home of its default)."""

    baseline_days: int = count(
        7,
        "A version without batchml's reference profile is judged against the sum of its first baseline_days scored "
        "dates; until then 'collecting baseline'.",
    )


def baseline_dir(pin: ModelPin) -> str:
    return f"{BASELINES}/{pin.name}/{pin.version}"


def profiled_outputs(classes) -> list[str]:
    """The outputs whose distribution is watched: the prediction, or each class probability."""
    return proba_columns(classes) if classes else [PREDICTION]


def bins_of(features: pd.DataFrame, outputs: pd.DataFrame, classes, date: dt.date) -> dict:
    """A reference profile of one scored sample: its bins are what later dates are counted on."""
    names = [c for c in profiled_outputs(classes) if c in outputs and pd.api.types.is_numeric_dtype(outputs[c].dtype)]
    profile = reference_profile(features, categorical=categorical_inputs(features, list(features.columns)))
    profile["outputs"] = reference_profile(outputs[names].reset_index(drop=True))["columns"] if names else {}
    if names:
        profile["prediction"] = profile["outputs"][names[0]]
    profile["bins_from"] = date.isoformat()
    return profile


def baseline_bins(storage, pin: ModelPin, make) -> dict:
    """The version's baseline bins: read, or made by `make()` and written once (a concurrent run's win is kept)."""
    path = f"{baseline_dir(pin)}/bins.json"
    text = storage.read_text(path)
    if text is None:
        storage.write_once(path, json.dumps(make(), sort_keys=True))
        text = storage.read_text(path)
    return json.loads(text)


def baseline_reference(storage, pin: ModelPin, date: dt.date, days: int) -> tuple[dict | None, int]:
    """(the reference, None while it is collected; how many baseline dates are in, counting up to `date`)."""
    bins_text = storage.read_text(f"{baseline_dir(pin)}/bins.json")
    if bins_text is None:
        return None, 0
    dates = _baseline_dates(storage, pin, days)
    if len(dates) < days or date.isoformat() in dates:
        return None, sum(1 for d in dates if d <= date.isoformat())
    bins = json.loads(bins_text)
    specs = {**bins["columns"], **bins.get("outputs", {})}
    daily = {d: json.loads(storage.read_text(profile_path(dt.date.fromisoformat(d))) or "null") for d in dates}
    summed = window_profile(daily, specs)["columns"]
    merge = lambda cols: {n: {**spec, **summed[n]} if n in summed else spec for n, spec in cols.items()}  # noqa: E731
    reference = {
        **bins,
        "rows": sum(p["rows"] for p in daily.values() if p),
        "columns": merge(bins["columns"]),
        "dates": daily,
    }
    reference["outputs"] = merge(bins.get("outputs", {}))
    if "prediction" in bins:
        reference["prediction"] = reference["outputs"].get(profiled_outputs(pin.classes)[0], bins["prediction"])
    reference["baseline_dates"] = dates
    return reference, days


def _baseline_dates(storage, pin: ModelPin, days: int) -> list[str]:
    """The earliest `days` dates the version scored with a profile on its baseline bins; fixed once complete."""
    path = f"{baseline_dir(pin)}/dates.json"
    text = storage.read_text(path)
    if text is not None:
        return json.loads(text)
    found = []
    for date in sorted(storage.committed_dates(PREDICTIONS)):
        manifest = storage.manifest(PREDICTIONS, date)
        same = (
            manifest is not None
            and manifest.model.get("name") == pin.name
            and manifest.model.get("version") == pin.version
        )
        if same and storage.read_text(profile_path(date)) is not None:
            found.append(date.isoformat())
            if len(found) == days:
                storage.write_once(path, json.dumps(found))
                return json.loads(storage.read_text(path))
    return found


def first_bins(storage, pin: ModelPin, model_path, date: dt.date, key: tuple[str, ...], rows: int) -> dict:
    """Baseline bins from a sample of the date's features and the pinned model's outputs on them."""
    from batchml.scoring.predictions import features_sample, sample_predictions

    sample = features_sample(storage, date, rows)
    outputs, inputs = sample_predictions(sample, pin, model_path, key)
    return bins_of(sample[inputs], outputs, pin.classes, date)


def reference_for(
    storage, registry, pin: ModelPin, date: dt.date, *, cache_dir, make_bins=None, baseline_days: int = 0
) -> tuple[dict | None, int]:
    """The reference a date of `pin` is profiled on or compared with, and how many baseline dates are in (0 when not
    counted).

    One rule at every call site: the version's own reference profile when it carries one
    (batchml trained it). A version batchml did not train has its baseline instead, made
    from the first dates it scored:
    - to score a date (`make_bins` given): the baseline bins, made once by `make_bins()`
      from the first date it scores, so every date of the version is profiled on the same bins;
    - to compare a date with it (`baseline_days` given): the bins with the summed profiles of
      its first `baseline_days` dates, None while they are collected;
    - otherwise (the checks and the report): none; they compare with a version's own profile only.
    """
    own = registry.reference_profile(pin, cache_dir)
    if own is not None:
        return own, 0
    if make_bins is not None:
        return baseline_bins(storage, pin, make_bins), 0
    if baseline_days:
        return baseline_reference(storage, pin, date, baseline_days)
    return None, 0
