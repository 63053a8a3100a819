"""The loopback servers of the end-to-end suite start, answer, and are reachable with boto3/mlflow."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_moto_server_serves_s3_and_dynamodb(moto_server: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="smoke")
    s3.put_object(Bucket="smoke", Key="k", Body=b"v")
    assert s3.get_object(Bucket="smoke", Key="k")["Body"].read() == b"v"
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    assert "TableNames" in ddb.list_tables()


def test_mlflow_server_answers(mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    client.create_registered_model("smoke-model")
    assert client.get_registered_model("smoke-model").name == "smoke-model"
