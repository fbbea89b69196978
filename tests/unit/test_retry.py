"""Which failures are retried, how often, and what the caller is told when retries run out."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException, RestException

from batchml.base.errors import IntegrityError, SchemaError
from batchml.base.retry import Retrying, RetryPolicy, Unavailable, is_transient, one_line
from tests.conftest import free_port

FAST = RetryPolicy(attempts=4, initial_delay=0.001, max_delay=0.002, deadline=30)


class Flaky:
    """Fails with `errors` in order, then answers."""

    def __init__(self, *errors: BaseException):
        self.errors, self.calls = list(errors), 0

    def __call__(self, value="ok"):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return value


def refused_by_mlflow() -> MlflowException:
    """What MlflowClient raises when nothing listens on the tracking server's port."""
    url = f"http://127.0.0.1:{free_port()}"
    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    with pytest.raises(MlflowException) as info:
        client.get_model_version_by_alias("m", "champion")
    return info.value


def test_a_server_that_does_not_answer_is_transient(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert is_transient(refused_by_mlflow())
    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try later"}))
    assert is_transient(
        MlflowException("API request to endpoint /x failed with error code 502 != 200. Response body: 'Bad Gateway'")
    )


@pytest.mark.parametrize(
    "exc",
    [
        RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no version 9"}),
        MlflowException("Invalid model name"),
        MlflowException("API request to endpoint /x failed with error code 404 != 200. Response body: 'Not Found'"),
        IntegrityError("sha256 differs"),
        SchemaError("missing column"),
        ValueError("bad value"),
        KeyError("onnx_sha256"),
    ],
)
def test_deterministic_failures_are_not_transient(exc):
    assert not is_transient(exc)


def test_transient_failures_are_retried_until_the_call_succeeds():
    fn = Flaky(ConnectionResetError("reset"), TimeoutError("slow"))
    assert FAST.call("the registry", fn, "answer") == "answer"
    assert fn.calls == 3


def test_a_deterministic_failure_is_raised_on_the_first_attempt():
    fn = Flaky(IntegrityError("sha256 differs"))
    with pytest.raises(IntegrityError):
        FAST.call("the registry", fn)
    assert fn.calls == 1


def test_retries_stop_after_the_attempts_with_one_line_naming_the_call_and_cause():
    fn = Flaky(*[ConnectionRefusedError("[Errno 111] Connection\nrefused")] * 10)
    with pytest.raises(Unavailable) as info:
        FAST.call("MLflow registry at http://mlflow:5000 (get_model_version)", fn)
    assert fn.calls == 4
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "MLflow registry at http://mlflow:5000 (get_model_version): [Errno 111] Connection refused"
    )
    assert "gave up after 4 attempts" in message
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_no_retry_starts_past_the_deadline():
    policy = RetryPolicy(
        attempts=100, initial_delay=1.0, max_delay=1.0, deadline=0.1
    )  # the first wait already ends past it
    fn = Flaky(*[ConnectionRefusedError()] * 100)
    with pytest.raises(Unavailable, match="gave up after 1 attempt in"):
        policy.call("x", fn)
    assert fn.calls == 1


def test_waits_double_up_to_the_cap_with_jitter():
    policy = RetryPolicy(attempts=10, initial_delay=1.0, max_delay=5.0, deadline=100)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (8, 5.0)]:
        waits = {policy.delay(attempt) for _ in range(50)}
        assert all(base / 2 <= w <= base for w in waits)
        assert len(waits) > 1


def test_the_proxy_retries_every_method_and_passes_attributes_through():
    class Client:
        tracking_uri = "http://mlflow:5000"

        def __init__(self):
            self.get = Flaky(ConnectionResetError())

    proxy = Retrying(Client(), FAST, "registry")
    assert proxy.tracking_uri == "http://mlflow:5000"
    assert proxy.get("v1") == "v1"


def test_one_line_folds_and_shortens():
    assert one_line(ValueError("a\n  b")) == "a b"
    assert len(one_line(ValueError("x" * 1000))) == 300
    assert one_line(ValueError()) == "ValueError"
