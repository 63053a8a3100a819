"""Key-value table on DynamoDB (or moto), with condition expressions and TransactWriteItems."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError, ConditionFailed, MissingCredentials
from tradai_release.stores import (
    Check,
    Condition,
    Delete,
    Operation,
    Put,
    check_transaction,
    string_key,
)
from tradai_release.stores.aws import client as make_client
from tradai_release.stores.aws import error_code, unreachable

BODY_ATTRIBUTE = "_json"


class DynamoTable:
    """Items round-trip exactly (a JSON body attribute); top-level scalars are also native attributes,
    so conditions and the TTL attribute work as DynamoDB expects.

    Conditions mean exactly what ``stores.condition_failure`` says, on top-level scalar attributes.
    """

    def __init__(
        self, table: str, partition_key: str, sort_key: str, *, aws: AwsOptions | None = None
    ) -> None:
        self.table = table
        self.name = f"dynamodb://{table}"
        self.partition_key = partition_key
        self.sort_key = sort_key
        self.aws = aws or AwsOptions()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            # apply writes from several threads at once (settings.apply_concurrency, at most 32)
            self._client = make_client(
                self.aws, "dynamodb", retries={"mode": "standard"}, max_pool_connections=32
            )
        return self._client

    # --- reads -------------------------------------------------------------------------------------

    def get(self, key: Mapping[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
        response = self._call("get_item", TableName=self.table, Key=self._key(key), ConsistentRead=consistent)
        item = response.get("Item")
        return None if item is None else _decode_item(item)

    def query(self, partition: str, *, prefix: str = "", descending: bool = False) -> list[dict[str, Any]]:
        names = {"#pk": self.partition_key}
        values: dict[str, Any] = {":pk": {"S": partition}}
        expression = "#pk = :pk"
        if prefix:
            names["#sk"] = self.sort_key
            values[":prefix"] = {"S": prefix}
            expression += " AND begins_with(#sk, :prefix)"
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = self._call(
                "query",
                TableName=self.table,
                KeyConditionExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=not descending,
                ConsistentRead=True,
                **extra,
            )
            items.extend(_decode_item(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items

    def scan(self) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        items: list[dict[str, Any]] = []
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = self._call("scan", TableName=self.table, ConsistentRead=True, **extra)
            items.extend(_decode_item(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        items.sort(key=lambda item: (item[self.partition_key].encode(), item[self.sort_key].encode()))
        return iter(items)

    # --- writes ------------------------------------------------------------------------------------

    def put(self, item: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._key(item)
        self._call("put_item", TableName=self.table, Item=_encode_item(item), **self._expression(condition))

    def delete(self, key: Mapping[str, Any], *, condition: Condition | None = None) -> None:
        self._call("delete_item", TableName=self.table, Key=self._key(key), **self._expression(condition))

    def transact(self, operations: Sequence[Operation]) -> None:
        check_transaction(self.name, operations, self.partition_key, self.sort_key)
        if not operations:
            return
        items: list[dict[str, Any]] = []
        for op in operations:
            if isinstance(op, Put):
                self._key(op.item)
                items.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _encode_item(op.item),
                            **self._expression(op.condition),
                        }
                    }
                )
            elif isinstance(op, Delete):
                items.append(
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": self._key(op.key),
                            **self._expression(op.condition),
                        }
                    }
                )
            else:
                assert isinstance(op, Check)
                expression = self._expression(op.condition)
                if not expression:  # an always-true check needs no round trip
                    continue
                items.append(
                    {"ConditionCheck": {"TableName": self.table, "Key": self._key(op.key), **expression}}
                )
        self._call("transact_write_items", TransactItems=items)

    # --- helpers -----------------------------------------------------------------------------------

    def _key(self, key: Mapping[str, Any]) -> dict[str, Any]:
        partition, sort = string_key(self.name, key, self.partition_key, self.sort_key)
        return {self.partition_key: {"S": partition}, self.sort_key: {"S": sort}}

    def _expression(self, condition: Condition | None) -> dict[str, Any]:
        """A ConditionExpression meaning what ``condition_failure`` checks."""
        if condition is None:
            return {}
        parts: list[str] = []
        names: dict[str, str] = {"#pk": self.partition_key}
        values: dict[str, Any] = {}
        if condition.exists is True:
            parts.append("attribute_exists(#pk)")
        elif condition.exists is False:
            parts.append("attribute_not_exists(#pk)")
        for index, (name, expected) in enumerate(condition.equals.items()):
            names[f"#e{index}"] = name
            values[f":e{index}"] = _encode_value(expected)
            parts.append(f"#e{index} = :e{index}")
        for index, (name, expected) in enumerate(condition.absent_or_equals.items()):
            names[f"#a{index}"] = name
            values[f":a{index}"] = _encode_value(expected)
            parts.append(f"(attribute_not_exists(#a{index}) OR #a{index} = :a{index})")
        if not parts:
            return {}
        used = {alias: name for alias, name in names.items() if any(alias in part for part in parts)}
        expression: dict[str, Any] = {
            "ConditionExpression": " AND ".join(parts),
            "ExpressionAttributeNames": used,
        }
        if values:
            expression["ExpressionAttributeValues"] = values
        return expression

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectTimeoutError as ConnectTimeout

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            message = str(err.response.get("Error", {}).get("Message", "")) or code
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(self.name, message) from err
            if code == "TransactionCanceledException":
                reasons = [
                    str(reason.get("Code"))
                    for reason in err.response.get("CancellationReasons", [])
                    if reason.get("Code") not in (None, "None")
                ]
                raise ConditionFailed(
                    self.name, "transaction cancelled: " + (", ".join(reasons) or message)
                ) from err
            if code == "TransactionConflictException":
                raise ConditionFailed(self.name, "transaction conflict: " + message) from err
            if code == "ResourceNotFoundException":
                raise BackendError(
                    self.name, "table does not exist (create it with `invoke provision`)"
                ) from err
            raise BackendError(self.name, f"{method}: {message}") from err
        except NoCredentialsError as err:
            raise MissingCredentials("AWS_ACCESS_KEY_ID", f"access to {self.name}") from err
        except (EndpointConnectionError, ConnectTimeout, ReadTimeoutError, ConnectionClosedError) as err:
            raise BackendError(self.name, unreachable(self.aws, err)) from err
        except BotoCoreError as err:
            raise BackendError(self.name, f"{method}: {err}") from err


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BackendError("dynamodb", "NaN and infinite numbers cannot be stored")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    raise BackendError("dynamodb", f"unsupported attribute type {type(value).__name__}")


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _encode_value(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    encoded: dict[str, Any] = TypeSerializer().serialize(_to_dynamo(value))
    return encoded


def _encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as one exact JSON body plus native copies of its scalar attributes.

    The body keeps JSON types exactly (DynamoDB has a single number type, so ``1.0`` would come
    back as ``1`` and change a config's hash); the native scalars serve condition expressions and
    the TTL attribute.
    """
    import json

    if BODY_ATTRIBUTE in item:
        raise BackendError("dynamodb", f"attribute name {BODY_ATTRIBUTE!r} is reserved")
    try:
        body = json.dumps(dict(item), sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise BackendError("dynamodb", f"item is not JSON-like: {err}") from err
    encoded = {
        name: _encode_value(value)
        for name, value in item.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }
    encoded[BODY_ATTRIBUTE] = {"S": body}
    return encoded


def _decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    import json

    if BODY_ATTRIBUTE in item:
        decoded: dict[str, Any] = json.loads(item[BODY_ATTRIBUTE]["S"])
        return decoded
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: _from_dynamo(deserializer.deserialize(value)) for name, value in item.items()}


def ensure_table(
    aws: AwsOptions, table: str, partition_key: str, sort_key: str, *, ttl_attribute: str | None = None
) -> bool:
    """Create DynamoDB table ``table`` (string keys, on-demand) if missing; True when it was created.

    Waits until the new table is ACTIVE. With ``ttl_attribute``, switches TTL on when it is off,
    also on a table that already existed. Any AWS failure is a BackendError naming the table.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_client(aws, "dynamodb")
    made = False
    try:
        try:
            client.describe_table(TableName=table)
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            client.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": partition_key, "KeyType": "HASH"},
                    {"AttributeName": sort_key, "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": partition_key, "AttributeType": "S"},
                    {"AttributeName": sort_key, "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            client.get_waiter("table_exists").wait(
                TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            made = True
        if ttl_attribute:
            ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
                )
    except (ClientError, BotoCoreError) as err:
        raise BackendError(f"dynamodb://{table}", f"cannot provision: {err}") from err
    return made
