"""Extraction: features files written on a thread of their own, quarantine and features that appear together, null keys,
a full disk."""

import datetime as dt
import errno
import threading

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batchml.base.errors import SchemaError
from batchml.dataset.contract import Contract, add_keys
from batchml.dataset.extract import extract_date
from batchml.dataset.features import model_inputs
from batchml.dataset.sources import GeneratorSource
from batchml.store.storage import NoSpaceLeft, open_storage
from tests.conftest import CONTRACT, TRIPS

DAY = dt.date(2026, 6, 10)


def extract(storage, rows_per_file=500, rows=3000):
    return extract_from(
        storage,
        GeneratorSource(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": rows}),
        rows_per_file=rows_per_file,
    )


def extract_from(storage, source, rows_per_file=500):
    """Extract DAY of `source` with the taxi example's contract and features."""
    return extract_date(
        source,
        Contract.load(CONTRACT),
        storage,
        DAY,
        transform="taxi_hooks:features",
        run_id="r",
        max_reject_share=0.05,
        rows_per_file=rows_per_file,
    )


def test_every_file_written_in_the_background_is_in_the_manifest(tmp_path):
    storage = open_storage(tmp_path / "data")
    result = extract(storage)
    manifest = storage.verify("features", DAY, checksums=True)
    assert len(manifest.files) == 6 and manifest.rows["written"] == result.rows_valid == len(
        storage.read_table("features", DAY)
    )


def test_a_features_file_that_fails_to_write_fails_the_date_and_commits_nothing(tmp_path, monkeypatch):
    storage = open_storage(tmp_path / "data")
    real, calls = pq.write_table, []

    def disk_full_on_the_third(table, where, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", disk_full_on_the_third)
    with pytest.raises(OSError, match="No space left"):
        extract(storage)
    assert DAY not in storage.committed_dates("features") and DAY not in storage.committed_dates("quarantine")
    monkeypatch.setattr(pq, "write_table", real)
    assert extract(storage).rows_valid > 0  # the next run extracts the date


class Killed(BaseException):
    """Stands for a kill -9 at a failpoint: nothing after it runs (staging is cleaned, unlike a real kill;
    tests/e2e/test_crashes.py kills for real)."""


def killed_at(monkeypatch, point: str) -> None:
    def failpoint(name):
        if name == point:
            raise Killed(name)

    monkeypatch.setattr("batchml.dataset.extract.failpoint", failpoint)
    monkeypatch.setattr("batchml.store.storage.failpoint", failpoint)


def whole_date(storage) -> dict[str, object]:
    """What batchml's readers see of DAY: per dataset, its manifest's rows or None, and the reader's files."""
    from batchml.store.reader import committed_files

    return {
        d: (
            storage.manifest(d, DAY) and storage.manifest(d, DAY).rows,
            storage.is_committed(d, DAY),
            DAY in storage.committed_dates(d),
            bool(committed_files(str(storage.root), d)),
        )
        for d in ("quarantine", "features")
    }


@pytest.mark.parametrize("replacing", [False, True])
@pytest.mark.parametrize(
    "point",
    [
        "extract.pending",
        "commit.quarantine.manifest",
        "extract.quarantine.committed",
        "commit.features.files",
        "extract.features.committed",
    ],
)
def test_a_run_killed_between_the_quarantine_and_features_commits_leaves_the_date_absent_and_the_next_run_heals(
    tmp_path, monkeypatch, point, replacing
):
    reference = open_storage(tmp_path / "reference")
    extract(reference)
    storage = open_storage(tmp_path / "data")
    if replacing:
        extract(storage)
    killed_at(monkeypatch, point)
    with pytest.raises(Killed):
        extract(storage) if not replacing else extract_replacing(storage)
    seen = whole_date(storage)
    absent = {"quarantine": (None, False, False, False), "features": (None, False, False, False)}
    assert seen == absent, f"killed at {point}: readers see {seen}"
    assert storage.pending_dates() == {DAY}

    monkeypatch.setattr("batchml.dataset.extract.failpoint", lambda name: None)
    monkeypatch.setattr("batchml.store.storage.failpoint", lambda name: None)
    assert not extract(storage).skipped  # the date is extracted again, replacing what the killed run left
    assert storage.pending_dates() == set()
    for dataset in ("quarantine", "features"):
        assert storage.manifest(dataset, DAY).rows == reference.manifest(dataset, DAY).rows
        assert storage.read_table(dataset, DAY).equals(reference.read_table(dataset, DAY))


def extract_replacing(storage):
    source = GeneratorSource(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000})
    return extract_date(
        source,
        Contract.load(CONTRACT),
        storage,
        DAY,
        transform="taxi_hooks:features",
        run_id="r2",
        max_reject_share=0.05,
        rows_per_file=500,
        replace=True,
    )


def test_a_quarantine_without_its_features_is_not_shown(tmp_path):
    """What a run killed between the two commits left before the marker existed: a committed quarantine, no features."""
    storage = open_storage(tmp_path / "data")
    extract(storage)
    features = storage.partition_path("features", DAY)
    features.rename(features.parent / "_gone")
    assert storage.manifest("quarantine", DAY) is None and DAY not in storage.committed_dates("quarantine")
    assert not extract(storage).skipped and DAY in storage.committed_dates("quarantine")


KEYED = """\
dataset: keyed
key: [code]
columns:
  code: {dtype: string, nullable: false}
  value: {dtype: float}
"""


def keyed(text: str = KEYED):
    from batchml.dataset.contract import validate

    contract = Contract.from_dict(__import__("yaml").safe_load(text), path="keyed.yaml")
    frame = pd.DataFrame(
        {"code": ["a", "  ", "NA", "null", "None", "nA ", "b", "NULLx"], "value": ["1"] * 8}, dtype=object
    )
    return validate(frame, contract, None, origin="f.csv")


def test_text_keys_that_are_empty_after_trimming_or_null_tokens_are_quarantined_as_null_keys():
    out = keyed()
    assert list(out.valid["code"]) == ["a", "b", "NULLx"]
    assert list(out.rejected["code"]) == ["  ", "NA", "null", "None", "nA "]
    assert all(
        r.startswith("code: null key: ") and "is a null token (null_tokens: ['', 'NA', 'null', 'None'])" in r
        for r in out.rejected["reason"]
    ), list(out.rejected["reason"])


def test_a_contract_whose_key_column_sets_null_tokens_takes_those_texts_as_keys():
    out = keyed(KEYED.replace("nullable: false}", 'nullable: false, null_tokens: ["null"]}'))
    assert list(out.valid["code"]) == ["a", "  ", "NA", "None", "nA ", "b", "NULLx"]  # NA is Namibia here
    assert list(out.rejected["reason"]) == ["code: null key: 'null' is a null token (null_tokens: ['null'])"]
    with pytest.raises(
        SchemaError,
        match=r"keyed.yaml: column 'code' has null_tokens 'NA', expected a list of texts read as null, quoted",
    ):
        keyed(KEYED.replace("nullable: false}", "nullable: false, null_tokens: NA}"))


def test_a_key_value_the_contract_allows_is_a_key_not_a_null_token():
    """A region `na` (North America) in `allowed` is a value: only the other tokens stay null keys, untuned."""
    allowed = KEYED.replace(
        "code: {dtype: string, nullable: false}", "code: {dtype: string, nullable: false, allowed: [a, b, na, NULLx]}"
    )
    out = keyed(allowed)
    assert list(out.valid["code"]) == ["a", "b", "NULLx"]
    reasons = dict(zip(out.rejected["code"], out.rejected["reason"], strict=True))
    assert all("null_tokens: ['', 'null', 'None']" in reasons[v] for v in ("  ", "null", "None"))
    assert "null key" not in reasons["NA"] and "not in" in reasons["NA"]  # the allowed rule speaks: NA is not na
    assert "null key" not in reasons["nA "]


def test_a_contract_that_sets_no_null_tokens_keeps_its_fingerprint():
    """The taxi contract's fingerprint before null_tokens existed: dates extracted before are not listed as changed."""
    assert Contract.load(CONTRACT).fingerprint() == "31375e5da7e854c2"


def test_a_full_disk_names_the_dataset_the_date_and_the_path(small_disk):
    storage = open_storage(small_disk / "data")
    with pytest.raises(NoSpaceLeft) as caught:
        extract(storage, rows_per_file=10_000, rows=60_000)  # about 3 MiB of features
    text = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert (
        f"No space left on device writing features of {DAY} to {small_disk}/data/features/_staging/date={DAY}/" in text
    ), text
    assert DAY not in storage.committed_dates("features") and not storage.pending_dates()


class Watched(GeneratorSource):
    """The example's synthetic rows, in batches, recording which thread reads each batch and when the extraction
    asks for the next one; `fail_at` raises instead of reading that batch."""

    def __init__(self, fail_at: int | None = None):
        super().__init__(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000, "chunk_rows": 500})
        self.fail_at, self.threads, self.closed = fail_at, [], False
        self.second_read = threading.Event()  # the source is reading batch 2
        self.first_validated = threading.Event()  # the extraction is done with batch 1

    def batches(self, date):
        try:
            for i, batch in enumerate(super().batches(date)):
                self.threads.append(threading.current_thread())
                if i == 1:
                    self.second_read.set()
                if i == self.fail_at:
                    raise OSError(f"batch {i}: connection reset")
                yield batch
        finally:
            self.closed = True


def test_the_next_batch_is_read_while_the_one_before_is_validated(tmp_path, monkeypatch):
    from batchml.dataset import extract as module

    source, real = Watched(), module.validate

    def validate(batch, *args, **kwargs):
        if not source.first_validated.is_set():  # batch 1: the source reads batch 2 meanwhile, on its own thread
            assert source.second_read.wait(timeout=10), "batch 2 was not read while batch 1 was being validated"
            source.first_validated.set()
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(module, "validate", validate)
    storage = open_storage(tmp_path / "data")
    result = extract_from(storage, source)

    assert len(set(source.threads)) == 1 and source.threads[0] is not threading.current_thread()
    assert source.closed
    assert result.rows_in == 3000 and result.rows_valid + result.rows_rejected == 3000
    # The same rows in the same order as reading and validating one batch after the other in this thread.
    contract, seen, expected = Contract.load(CONTRACT), np.empty(0, dtype="uint64"), []
    for origin, batch in GeneratorSource(generator=source.generator, options=source.options).batches(DAY):
        checked = real(batch, contract, DAY, origin=origin, seen_keys=seen)
        seen = add_keys(seen, checked.key_hashes)
        expected.append(model_inputs(checked.valid.reset_index(drop=True), contract, "taxi_hooks:features"))
    pd.testing.assert_frame_equal(
        storage.read_table("features", DAY).reset_index(drop=True), pd.concat(expected, ignore_index=True)
    )


def test_a_source_that_fails_mid_date_fails_the_extraction_with_its_error_and_commits_nothing(tmp_path):
    storage = open_storage(tmp_path / "data")
    source = Watched(fail_at=3)

    with pytest.raises(OSError, match="batch 3: connection reset"):
        extract_from(storage, source)

    assert source.closed
    assert DAY not in storage.committed_dates("features") and DAY not in storage.committed_dates("quarantine")
    assert not [t for t in threading.enumerate() if t.name.startswith("batchml-source-reader")]


def test_an_extraction_that_fails_early_stops_the_source_reading_ahead(tmp_path, monkeypatch):
    from batchml.dataset import extract as module

    def broken(batch, *args, **kwargs):
        raise RuntimeError("validation broke")

    monkeypatch.setattr(module, "validate", broken)
    storage, source = open_storage(tmp_path / "data"), Watched()
    with pytest.raises(RuntimeError, match="validation broke"):
        extract_from(storage, source)

    assert source.closed and len(source.threads) <= 3  # stopped a batch or two ahead, not read to the end (6)
    assert not [t for t in threading.enumerate() if t.name.startswith("batchml-source-reader")]


class Repeating(GeneratorSource):
    """The example's rows in batches of 500, the fourth batch's first rows being rows of the first batch again, with
    their values written as text (a CSV export read as text); the extraction validates batches ahead, alone."""

    def __init__(self, repeated: int):
        super().__init__(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000, "chunk_rows": 500})
        self.repeated = repeated

    def batches(self, date):
        first = None
        for i, (origin, batch) in enumerate(super().batches(date)):
            first = batch if first is None else first
            if i == 3:
                batch = pd.concat([first.iloc[: self.repeated].astype(str), batch.astype(str)], ignore_index=True)
            yield origin, batch


def test_a_key_of_an_earlier_batch_again_is_quarantined_as_a_duplicate_with_its_source_text(tmp_path):
    storage = open_storage(tmp_path / "data")
    result = extract_from(storage, Repeating(repeated=7))

    assert result.rows_in == 3007
    bad = pq.read_table(storage.files("quarantine", DAY)[0]).to_pandas()
    duplicates = bad[bad["reason"].str.startswith("key (vendor_id, pickup_datetime")]
    assert len(duplicates) >= 7 and set(duplicates["source"]) == {"taxi_hooks:trips(2026-06-10)#3"}
    first = next(GeneratorSource(generator="taxi_hooks:trips", options=Repeating(0).options).batches(DAY))[1]
    assert set(duplicates["trip_distance"]) >= set(first["trip_distance"].iloc[:7].astype(str)) - {"nan"}
    features = storage.read_table("features", DAY)
    assert len(features) == result.rows_valid == 3007 - len(bad)


def test_a_parquet_file_read_in_batches_extracts_as_one_read_whole_with_its_duplicates_across_batches(
    tmp_path, monkeypatch
):
    """One date's Parquet file, handed over in batches, commits the features and quarantine a single batch of the same
    rows does: a key of the first batch again in the last is quarantined naming the file."""
    import batchml.dataset.sources as sources
    from batchml.dataset.sources import FileSource

    made = GeneratorSource(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000}).batches(DAY)
    rows = pd.concat([b for _, b in made], ignore_index=True)
    rows = pd.concat([rows, rows.iloc[:7]], ignore_index=True)  # 7 rows of the first batch again, in the last
    rows.to_parquet(tmp_path / f"{DAY}.parquet", row_group_size=500)
    source = FileSource(path=str(tmp_path / "{date}.parquet"), contract=Contract.load(CONTRACT))
    committed = {}
    for name, batch_rows in (("whole", 10**6), ("batched", 1000)):
        monkeypatch.setattr(sources, "FILE_BATCH_ROWS", batch_rows)
        storage = open_storage(tmp_path / name)
        result = extract_from(storage, source)
        committed[name] = (
            result,
            storage.read_table("features", DAY),
            pq.read_table(storage.files("quarantine", DAY)[0]).to_pandas(),
        )

    (whole, features, bad), (batched, features_b, bad_b) = committed["whole"], committed["batched"]
    assert batched.rows_in == whole.rows_in == 3007 and batched.rows_valid == whole.rows_valid
    pd.testing.assert_frame_equal(features_b, features)
    for frame in (bad, bad_b):  # a quarantined timestamp's text is as its batch renders it (".900" or ".900000")
        for column in ("pickup_datetime", "dropoff_datetime"):
            frame[column] = pd.to_datetime(frame[column])
    pd.testing.assert_frame_equal(bad_b, bad)
    duplicates = bad_b[bad_b["reason"].str.startswith("key (vendor_id, pickup_datetime")]
    assert len(duplicates) >= 7 and set(duplicates["source"]) == {f"file://{tmp_path}/{DAY}.parquet"}


class Rebatched(GeneratorSource):
    """The example's 3000 rows of the date, handed over in batches of `rows`."""

    def __init__(self, rows: int):
        super().__init__(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 3000})
        self.rows = rows

    def batches(self, date):
        whole = pd.concat([batch for _, batch in super().batches(date)], ignore_index=True)
        for start in range(0, len(whole), self.rows):
            yield f"rows {start}..", whole.iloc[start : start + self.rows]


def test_features_files_hold_rows_per_file_rows_whatever_the_batches_the_source_gives(tmp_path):
    """Batches of 300 rows make files of 500 (the last fewer), with the rows, in order, of one batch of them all."""
    committed = {}
    for rows in (300, 3000):
        storage = open_storage(tmp_path / str(rows))
        result = extract_from(storage, Rebatched(rows))
        sizes = [f["rows"] for f in storage.manifest("features", DAY).files]
        committed[rows] = result, sizes, storage.read_table("features", DAY)

    (result, sizes, features), (_, sizes_one, features_one) = committed[300], committed[3000]
    assert sizes == sizes_one and sum(sizes) == result.rows_valid
    assert set(sizes[:-1]) == {500} and 0 < sizes[-1] <= 500
    pd.testing.assert_frame_equal(features, features_one)


def test_a_features_column_of_many_values_gives_up_its_dictionary_early_and_one_of_few_values_keeps_it(tmp_path):
    """Arrow builds a dictionary of up to 1 MB before falling back to plain encoding: for a column of many values
    (timestamps, distances) that is work for nothing. Features files stop at 32 KB; zones and hours keep theirs."""
    storage = open_storage(tmp_path / "data")
    extract(storage, rows_per_file=20_000, rows=20_000)  # 20,000 timestamps: a 160 KB dictionary by default
    meta = pq.ParquetFile(storage.files("features", DAY)[0]).metadata
    names = meta.schema.to_arrow_schema().names
    dictionaries = {}
    for group in range(meta.num_row_groups):
        for i, name in enumerate(names):
            column = meta.row_group(group).column(i)
            if column.has_dictionary_page:
                dictionaries[name] = max(
                    dictionaries.get(name, 0), column.data_page_offset - column.dictionary_page_offset
                )
    assert max(dictionaries.values()) < 40 << 10  # 32 KB and the last values the writer added before it looked
    assert {"pickup_zone", "dropoff_zone", "payment_type"} <= set(dictionaries)


def test_the_hook_gets_a_source_files_batch_whole_and_a_larger_batch_in_pieces_of_a_file(tmp_path, monkeypatch):
    """A batch as large as a source file's (FILE_BATCH_ROWS, here 700) reaches the hook in one call, not cut at
    rows_per_file (500) into a file's piece and a small rest; a batch of a whole date is cut at that size."""
    from batchml.dataset import extract as module

    calls: list[int] = []

    def model_inputs(rows, *args):
        calls.append(len(rows))
        return real(rows, *args)

    real = module.model_inputs
    monkeypatch.setattr(module, "model_inputs", model_inputs)
    monkeypatch.setattr(module, "FILE_BATCH_ROWS", 700)
    seen = {}
    for rows in (700, 3000):
        calls.clear()
        result = extract_from(open_storage(tmp_path / str(rows)), Rebatched(rows))
        seen[rows] = list(calls)
        assert sum(calls) == result.rows_valid

    assert len(seen[700]) == 5 and max(seen[700]) <= 700 and min(seen[700][:-1]) > 500  # a call per batch
    assert len(seen[3000]) == 5 and set(seen[3000][:-1]) == {700}  # the date's one batch, in pieces of 700
