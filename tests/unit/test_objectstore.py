"""The object store commit against a real S3 API (moto server): manifest as the commit, leases, cleanup."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pandas as pd
import pytest

from batchml.base.errors import IntegrityError
from batchml.store.objectstore import ObjectStorage
from batchml.store.storage import open_storage
from tests.conftest import make_manifest

DAY = dt.date(2026, 1, 5)


def manifest(rows: int = 3):
    return make_manifest(rows, date=DAY)


def stage(writer, rows: int, name: str = "part-00000.parquet") -> None:
    with writer.open(name) as fh:
        pd.DataFrame({"x": range(rows)}).to_parquet(fh, index=False)


def listed(storage: ObjectStorage) -> list[str]:
    """Every key under the dataset, as a plain-prefix reader would list it."""
    return sorted(k.split("/d/", 1)[1] for k in storage.fs.find(f"{storage.base}/d", refresh=True))


def test_a_date_is_committed_by_its_manifest_and_read_through_it(s3):
    storage = open_storage(f"{s3}/root")
    assert isinstance(storage, ObjectStorage)
    with storage.writer("d", DAY) as w:
        stage(w, 3)
        assert storage.committed_dates("d") == set() and not storage.is_committed("d", DAY)
        committed = w.commit(manifest(3))
    assert storage.committed_dates("d") == {DAY}
    assert storage.read_table("d", DAY).shape == (3, 1)
    assert storage.verify("d", DAY).files == committed.files
    assert listed(storage) == [
        f"date={DAY}/_MANIFEST.json",
        f"date={DAY}/{committed.files[0]['path']}",
    ]  # no staging, no lease


def test_a_committed_date_is_never_replaced_unless_asked_and_a_replace_drops_the_old_files(s3):
    storage = open_storage(f"{s3}/root")
    with storage.writer("d", DAY) as w:
        stage(w, 3)
        w.commit(manifest(3))
    with storage.writer("d", DAY) as w:
        assert w.committed
        stage(w, 5)
        with pytest.raises(IntegrityError, match="already committed"):
            w.commit(manifest(5))
    assert storage.read_table("d", DAY).shape == (3, 1)
    with storage.writer("d", DAY, replace=True) as w:
        stage(w, 5)
        new = w.commit(manifest(5))
    assert storage.read_table("d", DAY).shape == (5, 1)
    assert listed(storage) == [f"date={DAY}/_MANIFEST.json", f"date={DAY}/{new.files[0]['path']}"]


def test_leftovers_of_a_crashed_writer_are_removed_by_the_next_one(s3):
    storage = open_storage(f"{s3}/root")
    fs, folder = storage.fs, f"{storage.base}/d/date={DAY}"
    fs.pipe_file(f"{folder}/part-00000-deadbeef.parquet", b"half a commit")  # copied, never listed
    fs.pipe_file(f"{storage.base}/d/_staging/date={DAY}/deadbeef0000/part-00000.parquet", b"staged")
    bucket, key = f"{folder}/part-00001-deadbeef.parquet".split("/", 1)
    fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)  # an upload a killed writer never finished
    with storage.writer("d", DAY) as w:
        assert listed(storage) == [f"_locks/date={DAY}.json"]  # only the lease this writer holds
        assert fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []) == []
        stage(w, 2)
        w.commit(manifest(2))
    assert storage.read_table("d", DAY).shape == (2, 1)


def test_one_writer_holds_a_date_at_a_time(s3):
    storage = open_storage(f"{s3}/root", lease_seconds=30)
    inside, overlaps = [], []

    def write(rows):
        with storage.writer("d", DAY) as w:
            inside.append(rows)
            overlaps.append(len(inside) > 1)
            if not w.committed:
                stage(w, rows)
                w.commit(manifest(rows))
            inside.remove(rows)

    threads = [threading.Thread(target=write, args=(n,)) for n in (3, 4, 5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not any(overlaps)
    assert len(listed(storage)) == 2  # one data file and the manifest: exactly one commit


def test_the_lease_of_a_dead_writer_expires_and_is_taken_over(s3):
    storage = open_storage(f"{s3}/root", lease_seconds=1)
    lease = f"{storage.base}/d/_locks/date={DAY}.json"
    storage.fs.pipe_file(lease, b'{"owner": "killed pod", "expires": %f}' % (time.time() + 1))
    started = time.monotonic()
    with storage.writer("d", DAY) as w:
        waited = time.monotonic() - started
        assert "killed pod" not in storage.fs.cat_file(lease).decode()
        stage(w, 1)
        w.commit(manifest(1))
    assert 0.5 < waited < 10, waited
    assert not storage.fs.exists(lease)  # released


def test_a_live_writer_keeps_its_lease_past_its_length(s3):
    storage = open_storage(f"{s3}/root", lease_seconds=1)
    other = open_storage(f"{s3}/root", lease_seconds=1)
    got = threading.Event()

    def second_writer():
        with other.writer("d", DAY):
            got.set()

    with storage.writer("d", DAY):
        threading.Thread(target=second_writer, daemon=True).start()
        assert not got.wait(3), "a second writer took a lease that its holder kept renewing"
    assert got.wait(10)


def test_write_once_keeps_the_first_text(s3):
    storage = open_storage(f"{s3}/root")
    assert storage.write_once("pins/date=2026-01-05.json", "first")
    assert not storage.write_once("pins/date=2026-01-05.json", "second")
    assert storage.read_text("pins/date=2026-01-05.json") == "first"
    storage.write_text("monitoring/x.json", "a")
    storage.write_text("monitoring/x.json", "b")
    assert storage.read_text("monitoring/x.json") == "b" and storage.list_names("monitoring") == ["x.json"]


def test_the_batchml_reader_lists_only_committed_files_where_a_prefix_listing_sees_a_partial_commit(s3, capsys):
    from batchml.store.reader import main

    storage = open_storage(f"{s3}/root")
    with storage.writer("d", DAY) as w:
        stage(w, 3)
        committed = w.commit(manifest(3))
    later = DAY + dt.timedelta(days=1)
    # What a plain-prefix reader can see while another run is copying a new date in.
    storage.fs.pipe_file(f"{storage.base}/d/date={later}/part-00000-0badc0de.parquet", b"copied, no manifest yet")
    assert len([k for k in storage.fs.find(f"{storage.base}/d", refresh=True) if k.endswith(".parquet")]) == 2
    main([f"{s3}/root", "d"])
    assert capsys.readouterr().out.split() == [f"{s3}/root/d/date={DAY}/{committed.files[0]['path']}"]
