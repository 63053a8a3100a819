"""Timeouts and retry budgets from settings reach the boto3 and MLflow clients; a closed port fails
a call quickly with one error naming the backend."""

from __future__ import annotations

import os
import time

import pytest

from servers import free_port
from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError, RegistryError
from tradai_release.core.settings import Settings
from tradai_release.registry.adapter import MlflowRegistry, connection
from tradai_release.stores.aws import client
from tradai_release.stores.dynamodb import DynamoTable

MLFLOW_VARIABLES = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_POOL_MAXSIZE",
)


@pytest.fixture(autouse=True)
def clean_mlflow_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(connection, "_SET_BY_US", {})


def test_settings_give_boto3_clients_their_timeouts_and_attempts() -> None:
    options = Settings(backend_timeout_seconds=2.5, backend_retries=1).aws()
    assert (options.timeout_seconds, options.attempts) == (2.5, 2)
    config = client(options, "dynamodb", retries={"mode": "standard"}).meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    own = client(options, "s3", read_timeout=30, retries={"max_attempts": 7}).meta.config
    assert (own.connect_timeout, own.read_timeout) == (2.5, 30)  # what the caller sets wins
    assert own.retries == {"mode": "standard", "total_max_attempts": 8}  # 7 retries
    plain = client(AwsOptions(), "s3").meta.config  # no budget given: botocore's defaults
    assert plain.connect_timeout == 60 and "total_max_attempts" not in (plain.retries or {})


def test_clients_share_botocores_service_data_but_each_reads_the_credentials_of_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = AwsOptions(region="us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "first-key")
    first = client(options, "dynamodb")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "second-key")
    second, s3 = client(options, "dynamodb"), client(options, "s3")
    assert first._loader is second._loader is s3._loader  # the service models are parsed once per process
    assert [c._request_signer._credentials.access_key for c in (first, second)] == ["first-key", "second-key"]
    assert first.meta.service_model.service_name == "dynamodb" and s3.meta.service_model.service_name == "s3"


def test_defaults_bound_a_dead_backend_to_about_thirty_seconds() -> None:
    settings = Settings()
    attempts = settings.backend_retries + 1
    back_off = sum(2 ** k for k in range(1, settings.backend_retries)) + settings.backend_retries  # + jitter
    assert attempts * settings.backend_timeout_seconds + back_off <= 30
    assert settings.apply_concurrency == 8


def test_the_registry_sets_mlflow_budget_variables_but_leaves_the_users_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")  # exported by the user
    registry = MlflowRegistry(f"http://127.0.0.1:{free_port()}", timeout_seconds=2.2, retries=2)
    registry.client  # noqa: B018 - creating the client applies the budget
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    MlflowRegistry(f"http://127.0.0.1:{free_port()}", retries=0).client  # noqa: B018
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # ours: replaced by the newer settings
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"


def test_an_mlflow_server_refusing_connections_fails_fast_naming_the_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    registry = MlflowRegistry(url, timeout_seconds=1, retries=1)
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        registry.set_alias("SomeModel", "p1", 3)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith(f"mlflow: {url}: cannot reach the server after 2 attempts (")
    assert message.endswith("Connection refused)") and "\n" not in message
    with pytest.raises(RegistryError, match="cannot reach the server after 2 attempts"):
        registry.set_stage("SomeModel", 3, "Production")  # the stage mirror too: not 'unsupported'


def test_a_table_endpoint_refusing_connections_fails_fast_naming_the_table() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    aws = AwsOptions(endpoint_url=endpoint, region="us-east-1", timeout_seconds=1, retries=1)
    table = DynamoTable("tradai-releases-x", "pk", "sk", aws=aws)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        table.put({"pk": "dev", "sk": "#LOCK"})
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(
        f"dynamodb://tradai-releases-x: cannot reach {endpoint} after 2 attempts ("
    )


def test_a_hung_mlflow_server_fails_within_attempts_times_timeout() -> None:
    import socket

    with socket.socket() as listening:  # accepts connections (the kernel's backlog), never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        registry = MlflowRegistry(url, timeout_seconds=1, retries=1)
        started = time.monotonic()
        with pytest.raises(RegistryError) as caught:
            registry.delete_alias("SomeModel", "p1")
        elapsed = time.monotonic() - started
    assert 2 <= elapsed < 2 * 1 + 1 + 3  # two attempts timing out, up to 1 s jitter, slack
    assert str(caught.value) == f"mlflow: {url}: cannot reach the server after 2 attempts (Read timed out)"
