"""batchml.base.redact: credentials out of every text, log record and stream; nothing else changed."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from batchml.base.redact import RedactFilter, RedactingStream, forget, redact, remember, secrets_of

PW = "S3cretPW"


@pytest.fixture(autouse=True)
def no_remembered_secrets():
    forget()
    yield
    forget()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"MLflow registry at http://alice:{PW}@mlflow:5000: refused",
            "MLflow registry at http://***@mlflow:5000: refused",
        ),
        (f"View run x at: https://alice:{PW}@host/#/experiments/1", "View run x at: https://***@host/#/experiments/1"),
        (
            f"[source] url 'postgresql+psycopg://bob:{PW}@db:5432/trips'",
            "[source] url 'postgresql+psycopg://***@db:5432/trips'",
        ),
        (
            f"s3://bucket/key?X-Amz-Signature={PW}&X-Amz-Date=20260601",
            "s3://bucket/key?X-Amz-Signature=***&X-Amz-Date=20260601",
        ),
        (f"https://hooks.example/notify?channel=ops&token={PW}", "https://hooks.example/notify?channel=ops&token=***"),
        (f"mssql://db/x;password={PW};encrypt=true", "mssql://db/x;password=***;encrypt=true"),
        (f"https://api.example/v1?api_key={PW}#top", "https://api.example/v1?api_key=***#top"),
        (f"host=db user=bob password={PW} dbname=trips", "host=db user=bob password=*** dbname=trips"),
        (f"connect(password='{PW}')", "connect(password='***')"),
        (f"Authorization: Basic {base64.b64encode(f'alice:{PW}'.encode()).decode()}", "Authorization: Basic ***"),
    ],
)
def test_credentials_in_any_url_or_parameter_are_redacted(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id=abc",
        "s3://bucket/data/features/date=2026-06-01/part-0.parquet",
        "sqlite:////tmp/project/mlflow.db",
        "the key columns vendor_id, pickup_datetime; 3% of rows rejected",
        "https://example.org/a?monkeys=3&key_column=vendor_id&date=2026-06-01",
        "ValueError: 31% of rows rejected (max 5%)",
    ],
)
def test_text_without_credentials_is_unchanged(text):
    assert redact(text) == text


def test_secret_named_environment_variables_are_redacted_wherever_they_appear():
    env = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
        "MLFLOW_TRACKING_TOKEN": "tok-123456",
        "PWD": "/home/user",
        "HOME": "/root",
    }
    assert (
        redact("signing with wJalrXUtnFEMI and tok-123456 in /home/user", environ=env)
        == "signing with *** and *** in /home/user"
    )


def test_a_url_held_in_any_environment_variable_gives_its_password():
    env = {"DATABASE_URL": f"postgresql://bob:{PW}@db/trips"}
    assert redact(f"the password {PW} alone", environ=env) == "the password *** alone"


def test_remembered_setting_secrets_are_redacted_in_any_text_and_form():
    """A setting's password is redacted where no URL surrounds it: raw, percent-decoded, inside basic auth."""
    remember(
        f"http://alice:{PW}%2Fx@mlflow:5000",
        "postgresql://bob:p/ss@w0rd@db/trips",
        "https://hooks.example/n?token=abcd1234",
        "data",
        "",
    )
    assert redact(f"a message quoting {PW}%2Fx and {PW}/x") == "a message quoting *** and ***"
    assert redact("a driver error: password p/ss rejected") == "a driver error: password *** rejected"
    assert redact("token abcd1234 expired") == "token *** expired"
    assert redact(base64.b64encode(f"alice:{PW}/x".encode()).decode()) == "***"
    assert redact("data/features is a folder") == "data/features is a folder"  # values without secrets add nothing


def test_secrets_of_a_setting_are_its_password_and_secret_parameters_only():
    assert secrets_of("http://127.0.0.1:5000") == set()
    assert secrets_of("s3://bucket/prefix") == set()
    assert {PW, "tok3n-value"} <= secrets_of(f"https://u:{PW}@h/x?token=tok3n-value&page=2")
    assert "2" not in secrets_of(f"https://u:{PW}@h/x?token=tok3n-value&page=2")


def test_the_log_filter_redacts_the_message_its_arguments_and_its_traceback():
    remember(f"http://alice:{PW}@mlflow:5000")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter())
    logger = logging.getLogger("batchml.test_redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ConnectionError(f"cannot reach http://alice:{PW}@mlflow:5000")
        except ConnectionError:
            logger.exception("registry at %s failed with %s", f"http://alice:{PW}@mlflow:5000", PW)
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert PW not in written
    assert "registry at http://***@mlflow:5000 failed with ***" in written
    assert "ConnectionError: cannot reach http://***@mlflow:5000" in written  # the traceback kept, redacted


def test_a_redacting_stream_redacts_what_is_printed_to_it():
    remember(f"http://alice:{PW}@mlflow:5000")
    target = io.StringIO()
    stream = RedactingStream(target)
    print(f"🏃 View run monitor at: http://alice:{PW}@mlflow:5000/#/experiments/1", file=stream)
    stream.writelines([f"again {PW}\n"])
    assert target.getvalue() == "🏃 View run monitor at: http://***@mlflow:5000/#/experiments/1\nagain ***\n"
    assert stream.getvalue() == target.getvalue()  # the rest is the stream's own


def test_a_sql_source_url_whose_driver_is_missing_is_named_without_its_password():
    from batchml.base.errors import ConfigError
    from batchml.dataset.contract import Contract
    from batchml.dataset.sources import SqlSource
    from tests.conftest import CONTRACT

    with pytest.raises(ConfigError) as raised:
        SqlSource(
            url=f"postgresql+nosuchdriver://bob:{PW}@db:5432/trips",
            query="select * from t where d = :date",
            contract=Contract.load(CONTRACT),
        )
    assert str(raised.value).startswith("[source] url 'postgresql+nosuchdriver://***@db:5432/trips': NoSuchModuleError")
    assert PW not in str(raised.value)


def test_setting_values_are_every_value_luigi_read(monkeypatch):
    from luigi.configuration.cfg_parser import LuigiConfigParser

    from pipelines.defaults import setting_values

    monkeypatch.setenv("MLFLOW_PW", PW)
    config = LuigiConfigParser()
    config.read_string(
        f"[mlflow]\ntracking_uri = http://alice:${{MLFLOW_PW}}@mlflow:5000\n[source]\nurl = postgresql://bob:{PW}x@db/t\n"
    )
    values = setting_values(config)
    assert f"http://alice:{PW}@mlflow:5000" in values and f"postgresql://bob:{PW}x@db/t" in values


def test_a_source_url_with_credentials_is_named_without_them_in_the_quarantine_and_the_manifest(tmp_path):
    """A file source's origin (its URL) lands in the quarantine's source column and the manifest's empty inputs."""
    import datetime as dt

    import pandas as pd

    from batchml.dataset.contract import Contract
    from batchml.dataset.extract import extract_date
    from batchml.dataset.sources import GeneratorSource
    from batchml.store.storage import open_storage
    from tests.conftest import CONTRACT, TRIPS

    day = dt.date(2026, 6, 10)

    class UrlSource(GeneratorSource):
        def batches(self, date):
            for i, (_, chunk) in enumerate(super().batches(date)):
                yield f"https://bob:{PW}@files.example/trips-{date}.csv?part={i}", chunk
            yield f"https://files.example/empty.csv?X-Amz-Signature={PW}", pd.DataFrame()

    storage = open_storage(tmp_path / "data")
    source = UrlSource(generator="taxi_hooks:trips", options={**TRIPS, "rows_per_day": 2000, "bad_row_share": 0.01})
    extract_date(
        source,
        Contract.load(CONTRACT),
        storage,
        day,
        transform="taxi_hooks:features",
        run_id="r",
        max_reject_share=0.05,
        rows_per_file=1000,
    )
    quarantined = storage.read_table("quarantine", day)
    assert len(quarantined) and set(quarantined["source"]) == {f"https://***@files.example/trips-{day}.csv?part=0"}
    texts = [p.read_text() for p in (tmp_path / "data").rglob("*.json")]
    assert texts and not any(PW in text for text in texts)
    assert any("X-Amz-Signature=***" in text for text in texts)  # the empty input, named in the manifest


def test_a_monitoring_document_is_written_without_credentials(tmp_path):
    import datetime as dt

    from batchml.store.documents import read_document, write_document
    from batchml.store.layout import monitoring_file
    from batchml.store.storage import Storage

    storage = Storage(tmp_path)
    path = monitoring_file(dt.date(2026, 6, 10), "checks.json")
    write_document(
        storage,
        path,
        {"source": f"postgresql://bob:{PW}@db/trips", "rows": 3, "notes": [f"token={PW}"], "at": dt.date(2026, 6, 10)},
    )
    assert read_document(storage, path) == {
        "source": "postgresql://***@db/trips",
        "rows": 3,
        "notes": [f"token={PW}".replace(PW, "***")],
        "at": "2026-06-10",
    }


def test_a_variable_removed_by_another_thread_while_the_environment_is_read_is_no_error(monkeypatch):
    """MLflow's telemetry thread unsets _MLFLOW_TELEMETRY_SESSION_ID while batchml redacts a log line:
    copying os.environ lists the keys, then reads each, and a key gone in between raised KeyError (a
    failed Metrics task). The copy is taken again."""
    import types
    from collections.abc import Mapping

    class Vanishing(Mapping):
        """A mapping read as os.environ is (its keys listed, then each read), whose first listing names a key gone
        since."""

        tries = 0

        def __init__(self, data):
            self.data = data

        def __iter__(self):
            Vanishing.tries += 1
            return iter([*self.data, "_GONE"] if Vanishing.tries == 1 else list(self.data))

        def __getitem__(self, key):
            return self.data[key]

        def __len__(self):
            return len(self.data)

    import batchml.base.redact

    monkeypatch.setattr(
        batchml.base.redact, "os", types.SimpleNamespace(environ=Vanishing({"SERVICE_TOKEN": "tok-8c1f2e9a"}))
    )
    assert redact("sent with tok-8c1f2e9a") == "sent with ***"
    assert Vanishing.tries == 2


def test_the_environment_is_scanned_again_only_when_it_changed(monkeypatch):
    """redact runs on every log line, output write and document string: it scanned every environment
    variable each time (most of a date's redaction cost). Now once per change of the environment or of
    the remembered secrets, and a secret set, removed or remembered in between is seen at the next call."""
    import batchml.base.redact

    scans = []
    scan = batchml.base.redact.env_secrets
    monkeypatch.setattr(batchml.base.redact, "env_secrets", lambda *a: scans.append(1) or scan(*a))
    monkeypatch.setenv("SERVICE_TOKEN", "tok-8c1f2e9a")
    for _ in range(100):
        assert redact("sent with tok-8c1f2e9a") == "sent with ***"
    assert len(scans) == 1
    monkeypatch.setenv("OTHER_SECRET", "sec-77d0a1")
    assert redact("sec-77d0a1 and tok-8c1f2e9a") == "*** and ***"
    monkeypatch.delenv("SERVICE_TOKEN")
    assert redact("sent with tok-8c1f2e9a") == "sent with tok-8c1f2e9a"
    remember(f"postgresql://bob:{PW}@db/trips")
    assert redact(f"the password {PW} alone") == "the password *** alone"
    assert len(scans) == 4
