import datetime as dt
import hashlib
import json
import os
import threading

import pandas as pd
import pyarrow.dataset as ds
import pytest

from batchml.base.errors import IntegrityError
from batchml.store.layout import MANIFEST
from batchml.store.storage import Storage
from tests.conftest import make_manifest

DAY = dt.date(2026, 1, 5)


def manifest(rows: int = 3):
    return make_manifest(rows, date=DAY)


def write_rows(folder, n=3, name="part-00000.parquet"):
    pd.DataFrame({"x": range(n)}).to_parquet(folder / name, index=False)


def commit_rows(storage, n=3, *, replace=False) -> None:
    """Commit a date of `n` rows through the writer, as any dataset does."""
    with storage.writer("d", DAY, replace=replace) as w:
        write_rows(w.path, n)
        w.commit(manifest(n))


def visible_rows(storage) -> int:
    if not storage.dataset_path("d").exists():
        return 0
    return ds.dataset(storage.dataset_path("d"), format="parquet", partitioning="hive").count_rows()


def test_readers_see_a_date_only_after_commit(tmp_path):
    storage = Storage(tmp_path)
    with storage.writer("d", DAY) as w:
        write_rows(w.path)
        assert visible_rows(storage) == 0 and not storage.is_committed("d", DAY)
        committed = w.commit(manifest())
    assert visible_rows(storage) == 3
    data = (storage.partition_path("d", DAY) / "part-00000.parquet").read_bytes()
    assert committed.files == [
        {"path": "part-00000.parquet", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    ]
    assert json.loads(storage.manifest_path("d", DAY).read_text())["run_id"] == "r"
    assert storage.committed_dates("d") == {DAY}
    assert not list((storage.dataset_path("d") / "_staging").iterdir())


def test_an_exception_inside_the_writer_publishes_nothing(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(RuntimeError), storage.writer("d", DAY) as w:
        write_rows(w.path)
        raise RuntimeError("boom")
    assert visible_rows(storage) == 0 and storage.committed_dates("d") == set()


def test_staging_left_by_a_crashed_run_is_removed_by_the_next_writer(tmp_path):
    storage = Storage(tmp_path)
    crashed = storage.dataset_path("d") / "_staging" / f"date={DAY}" / "deadbeef"
    crashed.mkdir(parents=True)
    write_rows(crashed)
    with storage.writer("d", DAY) as w:
        assert not crashed.exists()
        write_rows(w.path)
        w.commit(manifest())
    assert visible_rows(storage) == 3


def test_a_committed_date_is_never_replaced_unless_asked(tmp_path):
    storage = Storage(tmp_path)
    commit_rows(storage)
    with storage.writer("d", DAY) as w:
        assert w.committed
        write_rows(w.path, n=5)
        with pytest.raises(IntegrityError, match="already committed"):
            w.commit(manifest(5))
    assert visible_rows(storage) == 3
    commit_rows(storage, 5, replace=True)
    assert visible_rows(storage) == 5


def test_verify_catches_files_that_disagree_with_the_manifest(tmp_path):
    storage = Storage(tmp_path)
    commit_rows(storage)
    storage.verify("d", DAY)
    write_rows(storage.partition_path("d", DAY), name="part-00001.parquet")
    with pytest.raises(IntegrityError, match=r"unlisted \['part-00001.parquet'\]"):
        storage.verify("d", DAY)


def test_concurrent_writers_of_one_date_commit_exactly_once(tmp_path):
    storage = Storage(tmp_path)
    barrier = threading.Barrier(4)
    outcomes = []

    def writer(i):
        barrier.wait()
        with storage.writer("d", DAY) as w:
            if w.committed:
                outcomes.append("skipped")
                return
            write_rows(w.path, n=10)
            w.commit(manifest(10))
            outcomes.append("committed")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == ["committed", "skipped", "skipped", "skipped"]
    assert visible_rows(storage) == 10


def test_write_once_keeps_the_first_text(tmp_path):
    storage = Storage(tmp_path)
    assert storage.write_once("pins/a.json", "first")
    assert not storage.write_once("pins/a.json", "second")
    assert storage.read_text("pins/a.json") == "first"
    assert storage.read_text("pins/none.json") is None
    assert [p.name for p in (tmp_path / "pins").iterdir()] == ["a.json"]


def test_manifest_is_inside_the_partition_and_ignored_by_readers(tmp_path):
    storage = Storage(tmp_path)
    commit_rows(storage)
    assert (storage.partition_path("d", DAY) / MANIFEST).exists()
    table = ds.dataset(storage.dataset_path("d"), format="parquet", partitioning="hive").to_table()
    assert table.column_names == ["x", "date"]


def test_a_replace_swaps_old_and_new_in_one_step(tmp_path, monkeypatch):
    storage = Storage(tmp_path)
    commit_rows(storage, 3)
    renames, real_rename = [], os.rename
    monkeypatch.setattr("batchml.store.storage.os.rename", lambda *a: renames.append(a) or real_rename(*a))
    with storage.writer("d", DAY, replace=True) as w:
        write_rows(w.path, 5)
        w.commit(manifest(5))
    assert renames == [(w.path / ".manifest.tmp", w.path / MANIFEST)]  # the publish itself is one renameat2 exchange
    assert visible_rows(storage) == 5 and storage.verify("d", DAY).rows["in"] == 5


def test_an_old_date_left_in_trash_by_a_crashed_replace_comes_back(tmp_path):
    storage = Storage(tmp_path)
    commit_rows(storage, 3)
    # What the two-rename fallback leaves when killed between its renames.
    trash = storage.dataset_path("d") / "_trash" / f"date={DAY}.0badc0de"
    trash.parent.mkdir()
    storage.partition_path("d", DAY).rename(trash)
    assert visible_rows(storage) == 0
    with storage.writer("d", DAY) as w:
        assert w.committed  # the old date is back before the writer decides anything
    assert visible_rows(storage) == 3 and not trash.exists()


def test_a_commit_records_the_sha256_its_writer_took_of_a_file_of_that_size_and_reads_any_other(tmp_path):
    """A writer that hashed the bytes it wrote hands (size, sha256) to the commit, which then does not read the file
    back; a file whose size is not what was hashed is read for its checksum."""
    storage = Storage(tmp_path / "data")
    with storage.writer("d", DAY) as w:
        write_rows(w.path, 3, "part-00000.parquet")
        write_rows(w.path, 4, "part-00001.parquet")
        sizes = {p.name: p.stat().st_size for p in w.path.iterdir()}
        taken = "0" * 64  # not the file's: only the writer's word can put it in the manifest
        w.commit(
            manifest(7),
            digests={
                "part-00000.parquet": (sizes["part-00000.parquet"], taken),
                "part-00001.parquet": (sizes["part-00001.parquet"] + 1, taken),
            },
        )
    listed = {f["path"]: f["sha256"] for f in storage.manifest("d", DAY).files}
    real = hashlib.sha256(storage.partition_path("d", DAY).joinpath("part-00001.parquet").read_bytes()).hexdigest()
    assert listed == {"part-00000.parquet": taken, "part-00001.parquet": real}
