"""`batchml init`: a starter project (contract.yaml, luigi.cfg, hooks, README) from one sample file.

The contract comes from `batchml.project.infer`; this module writes it as commented YAML, with a
luigi.cfg for a files source like the sample, a hooks module whose stubs name the inferred
columns, and a README of next steps. Lines a person must decide are marked TODO or GUESS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import yaml

from batchml.base.errors import ConfigError, SchemaError
from batchml.base.setting import policy_field
from batchml.dataset.contract import Contract
from batchml.dataset.extract import SchemaSettings
from batchml.dataset.sources import SourceSettings
from batchml.model.registry import RegistrySettings
from batchml.model.training import TrainingPolicy
from batchml.project.infer import (
    ColumnGuess,
    Inferred,
    infer_column,
    infer_contract,
    is_id_like,
    read_sample,
    sample_format,
    snake_case,
)
from batchml.scoring.compute import ClusterSettings
from batchml.store.storage import StorageSettings

TASKS = ("regression", "classification")


# -- the files written --------------------------------------------------------------------


def _y(value) -> str:
    """One YAML scalar or flow list, quoted where YAML would read it as another type."""
    if isinstance(value, np.generic):
        value = value.item()
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
        .strip()
        .removesuffix("...")
        .strip()
    )


def _spec(c: ColumnGuess, label: str | None) -> str:
    parts = [f"dtype: {c.dtype}", f"nullable: {'true' if c.nullable or c.name == label else 'false'}"]
    if c.min is not None:
        parts += [f"min: {_y(c.min)}", f"max: {_y(c.max)}"]
    if c.allowed is not None:
        parts.append(f"allowed: {_y(list(c.allowed))}")
    if c.source != c.name:
        parts.append(f"source: {_y(c.source)}")
    return "{" + ", ".join(parts) + "}"


def _comment(c: ColumnGuess, label: str | None) -> str:
    bits = []
    if c.name == label:
        bits.append("the label: nullable, so rows not yet labelled are still scored")
    if c.note:
        bits.append(c.note)
    elif c.nulls:
        bits.append(f"{c.nulls / c.rows:.1%} null")
    if c.observed:
        bits.append(f"observed {c.observed}")
    if c.dtype == "string" and c.allowed is None and not c.empty:
        bits.append(f"{c.distinct} distinct values")
    return "  # " + "; ".join(bits) if bits else ""


def _wrapped(text: str, width: int = 92) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width)]


MAX_CLASSES = 50  # a label with more distinct values gets a TODO instead of a list of classes


def contract_yaml(
    inf: Inferred, sample: str, *, label: str | None = None, task: str | None = None, classes: list | None = None
) -> str:
    """The contract as commented YAML that `Contract.load` reads; `classes` are a classification label's values in the
    sample."""
    width = max(len(_y(c.name)) for c in inf.columns) + 1
    lines = [
        f"# The dataset contract of {inf.dataset}, written by `batchml init` from",
        f"#   {sample} ({inf.rows} rows read)",
        "# Every stage reads column names from here. A row that breaks a rule goes to",
        "# quarantine/date=D/ with the rule in its `reason`; a missing column fails the date.",
        "# REVIEW IT: dtypes, nullable, min/max and allowed are what the sample showed, not rules",
        "# anyone decided. min/max are the observed ranges rounded outward: widen or delete them",
        "# where other values are legitimate; `allowed` lists the few values a text column had.",
        "# nullable: false means the sample had no nulls there.",
        f"dataset: {_y(inf.dataset)}",
        *_wrapped(f"GUESS: {inf.key_note}. Check that it identifies a row: duplicates are quarantined."),
        f"key: {_y(list(inf.key))}",
    ]
    if inf.timestamp:
        lines += [
            "# GUESS: the datetime column that places a row on a date (a source file holding many",
            "# dates gives each date the rows whose timestamp falls on it).",
            f"timestamp: {_y(inf.timestamp)}",
        ]
    else:
        lines += [
            "# TODO: no datetime column found; a timestamp (a datetime column) places a row on a date.",
            "# timestamp: <column>",
        ]
    lines += [*_wrapped(inf.timezone_note), f"timezone: {_y(inf.timezone)}", "columns:"]
    if any(c.source != c.name for c in inf.columns):
        lines.insert(-1, "# `source:` is the name the file gives a column; the contract's names are snake_case.")
    for c in inf.columns:
        lines.append(f"  {(_y(c.name) + ':').ljust(width)} {_spec(c, label)}{_comment(c, label)}")
    if label:
        where = (
            "a column of the rows"
            if label in [c.name for c in inf.columns]
            else "derived from the rows by [labels] transform"
        )
        lines += [
            "# What the model predicts, and how it is judged.",
            "label:",
            f"  column: {_y(label)}  # {where}",
            f"  task: {task or 'regression'}  # regression | classification",
        ]
        if task == "classification" and classes and 2 <= len(classes) <= MAX_CLASSES:
            lines += [
                "  # GUESS: the label's values in the sample, sorted; one proba_<class> column each. Add classes the",
                "  # sample did not show: a label value outside them is counted as such in the metrics.",
                f"  classes: {_y(list(classes))}",
            ]
        elif task == "classification":
            seen = (
                f"the sample shows {len(classes)} values" if classes else "the sample does not show the label's values"
            )
            lines += [
                f"  # TODO: {seen}; list the classes (one proba_<class> column each)",
                "  # classes: [<class>, ...]",
            ]
    else:
        lines += [
            "# TODO: the label, what the model predicts. Uncomment and name a column of the rows, or one",
            "# your [labels] transform (luigi.cfg) derives from them; `batchml init --label` fills it in.",
            "# label:",
            "#   column: <column>",
            "#   task: regression  # regression | classification",
        ]
    return "\n".join(lines) + "\n"


def path_template(sample: Path) -> tuple[str, str]:
    """(fsspec path template, comment) for files like the sample, from the date in its name or folder."""
    name, folder = sample.name, sample.parent
    rules = [
        (r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)", "{date}", "one file per date"),
        (r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)", "{year}{month}{day}", "one file per date"),
        (
            r"(?<!\d)(\d{4})([-_])(\d{2})(?!\d)",
            None,
            "one file per month: a date's rows are those its timestamp places on it",
        ),
    ]
    for pattern, field_text, note in rules:
        m = re.search(pattern, name)
        if m and _plausible(m):
            text = field_text or "{year}" + m.group(2) + "{month}"
            return str(folder / (name[: m.start()] + text + name[m.end() :])), note
    m = re.search(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)", folder.name)
    if m and _plausible(m):
        return str(
            folder.parent / (folder.name[: m.start()] + "{date}" + folder.name[m.end() :])
        ) + "/", "one folder per date: every file in it"
    return str(
        sample
    ), "TODO: no date in the file's name; put {date}, {year}, {month} or {day} where a date's files differ"


def _plausible(m: re.Match) -> bool:
    year, month = int(m.group(1)), int(m.group(2) if m.group(2).isdigit() else m.group(3))
    return 1900 <= year <= 2200 and 1 <= month <= 12


def module_name(folder: Path) -> str:
    base = snake_case(folder.name)
    return ("p_" + base if base[0].isdigit() else base) + "_hooks"


def dataset_name(sample: Path) -> str:
    """The sample's name without extensions and dates: sales_export_2026-06.csv.gz -> sales_export."""
    stem = sample.name.split(".")[0]
    stem = re.sub(r"\d{4}[-_]?\d{2}(?:[-_]?\d{2})?", "", stem)
    return snake_case(stem) or "dataset"


def input_columns(inf: Inferred, label: str | None) -> list[ColumnGuess]:
    """Contract columns worth giving a model as they are: not the label, an id unique per row,
    free text, an always-empty column or a datetime (the timestamp gives an hour instead)."""
    out = []
    for c in inf.columns:
        if c.name == label or c.empty or c.dtype == "datetime":
            continue
        if c.dtype == "string" and c.allowed is None:
            continue
        if c.dtype in ("integer", "string") and is_id_like(c.name) and c.distinct > 0.5 * (c.rows - c.nulls):
            continue
        out.append(c)
    return out


def _feature_line(c: ColumnGuess) -> str:
    name = json.dumps(c.name)
    col = f"rows[{name}]"
    if c.dtype == "string":
        return f"{name}: _text({col}),"
    if c.dtype in ("integer", "boolean") and not c.nullable:
        return f'{name}: {col}.astype("int64"),'
    return f'{name}: {col}.to_numpy(dtype="float64", na_value=np.nan),'


def hooks_py(inf: Inferred, module: str, sample: str, *, label: str | None) -> str:
    """The project's hooks module: features, labels and recipe, with the inferred columns filled in."""
    inputs = input_columns(inf, label)
    lines = [f"            {_feature_line(c)}" for c in inputs]
    if inf.timestamp:
        lines.append(f"            {json.dumps(inf.timestamp + '_hour')}: _hour(rows[{json.dumps(inf.timestamp)}]),")
    label_in_rows = label is not None and label in [c.name for c in inf.columns]
    if label_in_rows:
        labels_body = f'    """The label, {label}, is a column of the rows."""\n    return rows[{json.dumps(label)}]\n'
    else:
        what = f"the label {label!r}" if label else "the label"
        labels_body = (
            f'    """{what[0].upper() + what[1:]} of each validated row, row for row (a Series, or a frame with the '
            "label column).\n\n"
            "    Set [labels] transform = " + module + ":labels in luigi.cfg to use it; labels of date D are read\n"
            "    [source] label_lag_days after D. NaN means 'no label' (the row is not trained on).\n"
            '    """\n'
            "    raise NotImplementedError(\n"
            f'        "{module}.labels: derive {what} from the rows here (for example a difference of two timestamps), '
            '"\n'
            '        "or delete [labels] transform and give [source] labels_path (a feed of key columns and the '
            'label)"\n'
            "    )\n"
        )
    return f'''"""Hooks of this project, named in luigi.cfg as `{module}:<function>`.

Written by `batchml init` from
    {sample}
Edit freely. batchml imports this module from the project folder: `features` when a date
is extracted and when a model is trained (so a model never trains on inputs it would not be
scored on), `labels` when a date's labels come from its own rows, `recipe` when batchml
trains a model (retraining, or a cold start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def features(rows: pd.DataFrame) -> pd.DataFrame:
    """A date's validated rows (contract columns, contract names) -> the model's inputs.

    Return one row per input row, in the same order, with only the columns the model
    takes: numbers as int64 or float64 (NaN where missing), categories as Python strings.
    batchml keeps the key columns beside them. Never return the label.
    Left out as they are: the label, ids unique per row, free text, always-empty columns
    and datetimes (the timestamp's hour of day stands for it).
    """
    return pd.DataFrame(
        {{
{chr(10).join(lines)}
        }}
    )


def labels(rows: pd.DataFrame) -> pd.Series:
{labels_body}

def recipe(frame: pd.DataFrame, settings):
    """A labelled training frame -> a fitted scikit-learn Pipeline.

    `settings` gives the inputs (the columns features() returns), the label, the task, a seed
    and [training] params. Text inputs are one-hot encoded, numbers imputed with the median,
    then gradient-boosted trees: a solid default for tables; replace it with your own.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    inputs = list(settings.inputs)
    text = [c for c in inputs if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    numbers = [c for c in inputs if c not in text]
    steps = []
    if text:
        steps.append(("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text))
    if numbers:
        steps.append(("numbers", SimpleImputer(strategy="median", keep_empty_features=True), numbers))
    params = {{"max_iter": 200, **settings.params}}
    if settings.task == "classification":
        model = HistGradientBoostingClassifier(random_state=settings.seed, **params)
    else:
        model = HistGradientBoostingRegressor(random_state=settings.seed, **params)
    pipeline = Pipeline([("prepare", ColumnTransformer(steps)), ("model", model)])
    return pipeline.fit(frame[inputs], frame[settings.label])


def _text(values: pd.Series) -> pd.Series:
    """Categories as Python strings, '' where missing (one-hot encoders want no NA)."""
    return values.astype("string").fillna("").astype(object)


def _hour(values: pd.Series) -> np.ndarray:
    """Hour of the day as a real number (13.5 is 13:30); NaN where missing."""
    return (values.dt.hour + values.dt.minute / 60.0).to_numpy(dtype="float64", na_value=np.nan)
'''


def _setting(cls: type, name: str) -> str:
    """`name = value` as luigi.cfg reads it, the value the setting's default in its home, the policy dataclass `cls`."""
    default = policy_field(cls, name).default
    if isinstance(default, bool):
        text = "true" if default else "false"
    elif isinstance(default, tuple):
        text = json.dumps(list(default))
    else:
        text = str(default)
    return f"{name} = {text.replace('%', '%%')}".rstrip()


def luigi_cfg(inf: Inferred, sample: Path, module: str, *, label: str | None, fmt: str) -> str:
    """luigi.cfg for the files source the sample stands for, with embedded defaults and TODOs.

    A setting written as its default takes the value from its home, the core's policy dataclass
    (`_setting`), so the file follows a changed default as the luigi.Config classes and the docs do.
    """
    template, note = path_template(sample)
    label_in_rows = label is not None and label in [c.name for c in inf.columns]
    day = example_date(inf, sample)
    lines = [
        f"# A batchml project written by `batchml init` from {sample}.",
        "# Run from this folder:",
        f"#   luigi --module pipelines DailyScore --date {day or 'YYYY-MM-DD'}",
        "# Relative paths resolve against this folder. Lines marked TODO need you; every section is",
        "# read by the luigi.Config class of the same name in batchml's tasks/config.py.",
        "",
        "[core]",
        "# No scheduler server: each command schedules its own tasks. With luigid: false, and",
        "# [core] scheduler_host / scheduler_port.",
        "local_scheduler = true",
        "",
        "[storage]",
        "# Features, quarantine, predictions, metrics and reports: <root>/<dataset>/date=YYYY-MM-DD/.",
        _setting(StorageSettings, "root"),
        "",
        "[source]",
        _setting(SourceSettings, "kind"),
        f"# {note}",
        f"path = {template.replace('%', '%%')}",
        f"format = {fmt}",
        "# Labels of date D are complete on D + label_lag_days; realized error is measured then.",
        _setting(SourceSettings, "label_lag_days"),
    ]
    if not label_in_rows:
        lines += [
            "# TODO: either [labels] transform below, or a labels feed (key columns and the label):",
            "# labels_path = ",
        ]
    lines += [
        "",
        "[schema]",
        _setting(SchemaSettings, "path"),
        "# A date with a larger share of quarantined rows fails.",
        _setting(SchemaSettings, "max_reject_share"),
        "",
        "[features]",
        f"transform = {module}:features",
        "",
        "[labels]",
    ]
    if label_in_rows:
        lines += ["# The label is a column of the rows.", f"transform = {module}:labels"]
    elif label:
        lines += [
            f"# TODO: write {module}.labels, which derives {label} from a date's rows.",
            f"transform = {module}:labels",
        ]
    else:
        lines += [
            f"# TODO: name the label in contract.yaml, then write {module}.labels (or set [source] labels_path).",
            f"# transform = {module}:labels",
        ]
    lines += [
        "",
        "[training]",
        f"# TODO: check {module}.recipe; it trains challengers when the data drifts (and a cold start).",
        f"recipe = {module}:recipe",
        "params = {}",
        _setting(TrainingPolicy, "window_days"),
        _setting(TrainingPolicy, "max_rows"),
        _setting(TrainingPolicy, "seed"),
        "",
        "[mlflow]",
        "# The registry: a SQLite file in this folder (a tracking server in production: http://...).",
        _setting(RegistrySettings, "tracking_uri"),
        "# TODO: the name your model is registered under in that registry.",
        f"registered_model = {inf.dataset}",
        _setting(RegistrySettings, "alias"),
        "# Off: a date fails, naming the alias, until a version of the registered model holds it.",
        "# On: the first run trains and registers one with [training] recipe (needs labelled dates).",
        _setting(RegistrySettings, "cold_start"),
        "artifact_location = mlartifacts",
        _setting(RegistrySettings, "cache_dir"),
        "",
        "[dask]",
        "# Empty: a LocalCluster; tcp://host:8786 for an existing cluster.",
        _setting(ClusterSettings, "scheduler_address"),
        _setting(ClusterSettings, "n_workers"),
        _setting(ClusterSettings, "threads_per_worker"),
    ]
    return "\n".join(lines) + "\n"


def example_date(inf: Inferred, sample: Path) -> dt.date | None:
    """A date the sample has rows on: the one its file name gives if present, else its busiest."""
    if not inf.dates:
        return None
    m = re.search(r"(?<!\d)(\d{4})-(\d{2})(?:-(\d{2}))?(?!\d)", sample.name)
    if m:
        try:
            named = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
        except ValueError:
            named = None
        if named in inf.dates:
            return named
    return inf.dates[len(inf.dates) // 2]


def readme(inf: Inferred, sample: Path, module: str, *, label: str | None) -> str:
    day = example_date(inf, sample) or "YYYY-MM-DD"
    guesses = [f"- key `{', '.join(inf.key)}`: {inf.key_note}."]
    if inf.timestamp:
        guesses.append(f"- timestamp `{inf.timestamp}`, timezone `{inf.timezone}`: {inf.timezone_note}.")
    label_step = (
        f"3. The label `{label}` is set in `contract.yaml`; check `{module}.labels` in `{module}.py`."
        if label
        else "3. Choose the label: uncomment `label:` in `contract.yaml` (column and task), then write\n"
        f"   `{module}.labels` and set `[labels] transform` in `luigi.cfg` (or `[source] labels_path`)."
    )
    registry = str(policy_field(RegistrySettings, "tracking_uri").default).removeprefix("sqlite:///")
    alias = policy_field(RegistrySettings, "alias").default
    root = policy_field(StorageSettings, "root").default
    return f"""# {inf.dataset}: a batchml project

Written by `batchml init` from `{sample}` ({inf.rows} rows read).

## Files

- `contract.yaml`: the dataset contract inferred from the sample (key, timestamp, columns, label).
- `luigi.cfg`: settings. The source reads files like the sample; the registry is `{registry}` here.
- `{module}.py`: hooks: `features` (model inputs), `labels`, `recipe` (training).

## Next steps

1. Review `contract.yaml`. Its ranges, nullability and allowed values are what the sample showed,
   not rules; widen or delete those that real data may break. The guesses:
{chr(10).join("   " + g for g in guesses)}
2. Check `[source] path` in `luigi.cfg`: the template for the other dates' files.
{label_step}
4. Register a model in the registry (`{registry}`, or your tracking server: `[mlflow] tracking_uri`)
   under `[mlflow] registered_model`, trained on what `{module}.features` returns, and give
   the version the alias `{alias}`. Or set `[mlflow] cold_start = true` to let batchml train a
   first one with `{module}.recipe`.
5. Run a date, from this folder:

       luigi --module pipelines ExtractFeatures --date {day}
       luigi --module pipelines DailyScore --date {day}

   `{root}/features/`, `{root}/quarantine/` (rows that broke the contract, with their reason) and
   `{root}/predictions/` hold the results, one `date=YYYY-MM-DD/` folder per date.
"""


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def init_project(
    folder: str | Path, sample: str | Path, *, label: str | None = None, task: str | None = None, force: bool = False
) -> list[Path]:
    """Write contract.yaml, luigi.cfg, <name>_hooks.py and README.md into `folder`; return their paths."""
    folder, sample = Path(folder).expanduser(), Path(sample).expanduser().resolve()
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if task is not None and label is None:
        raise ConfigError("--task needs --label (the column the model predicts)")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ConfigError(f"{folder}: exists and is not empty; use --force to write the starter files into it anyway")
    if not sample.is_file():
        raise ConfigError(f"{sample}: no such file (the --sample to infer the contract from)")
    fmt = sample_format(sample)
    frame = read_sample(sample)
    if frame.columns.empty:
        raise SchemaError(f"{sample}: has no columns")
    inf = infer_contract(frame, dataset_name(sample), label=label)
    classes = None
    if label is not None:
        by_source = {c.source: c.name for c in inf.columns}
        label = by_source.get(
            label, label
        )  # a column of the sample: its contract name (the file's name is its source:)
        if label in inf.key:
            raise ConfigError(f"--label {label}: is part of the guessed key; a label cannot identify a row")
        # A label the sample does not hold keeps the name as given: a labels feed or transform writes it so.
        if label in inf.names:
            column = inf.column(label)
            task = task or (
                "classification" if column.dtype in ("string", "boolean") else None
            )  # no regression on text
            if task == "classification":
                source = next(c.source for c in inf.columns if c.name == label)
                typed = infer_column(frame[source], label)[1].dropna()
                seen = sorted(v.item() if isinstance(v, np.generic) else v for v in typed.unique())
                classes = [False, True] if column.dtype == "boolean" else seen
    module = module_name(folder.resolve())
    contract_text = contract_yaml(inf, str(sample), label=label, task=task, classes=classes)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "contract.yaml": contract_text,
        "luigi.cfg": luigi_cfg(inf, sample, module, label=label, fmt=fmt),
        f"{module}.py": hooks_py(inf, module, str(sample), label=label),
        "README.md": readme(inf, sample, module, label=label),
    }
    written = []
    for name, text in files.items():
        _write(folder / name, text)
        written.append(folder / name)
    Contract.load(folder / "contract.yaml")  # what was written must load; a failure here is a bug
    return written
