"""Object store on any S3-API bucket (AWS S3, Cloudflare R2, MinIO, moto), reached through boto3."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from tradai_release.core.endpoints import AwsOptions
from tradai_release.core.errors import BackendError, MissingCredentials, ObjectExists, ObjectNotFound
from tradai_release.stores import ObjectInfo, check_key
from tradai_release.stores.aws import client as make_client
from tradai_release.stores.aws import error_code, unreachable

DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 64 * 1024 * 1024
DEFAULT_SINGLE_PUT_LIMIT = 5 * 1024 * 1024 * 1024
"""S3's largest single PutObject; a checksummed file up to it goes as one PUT."""
_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "XAmzContentChecksumMismatch"}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"412", "PreconditionFailed", "ConditionalRequestConflict"}


class S3ObjectStore:
    """Objects under ``s3://bucket/prefix``.

    ``create`` is a conditional PUT (``If-None-Match: *``), which S3, R2 and moto honour, so two
    writers racing for one key cannot both succeed. Large files go through boto3's transfer
    manager (multipart above ``multipart_threshold``; a multipart upload becomes visible only when
    it completes, so a failed upload leaves nothing behind).

    A file put with its ``sha256`` goes as one PutObject carrying ``ChecksumSHA256`` up to
    ``single_put_limit`` (S3's 5 GiB): the server refuses bytes that do not match it and keeps it
    as the object's full-object checksum (a multipart upload could keep only a composite one).
    That signed checksum binds the body, so payloads are not signed a second time (botocore
    would otherwise SHA-256 every body it sends over plain HTTP), and response checksums are not
    validated by botocore: the hub hashes every blob it reads itself.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        aws: AwsOptions | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 8,
        single_put_limit: int = DEFAULT_SINGLE_PUT_LIMIT,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.name = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.aws = aws or AwsOptions()
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.single_put_limit = single_put_limit
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(
                self.aws,
                "s3",
                max_pool_connections=max(10, self.max_concurrency * 2),
                retries={"mode": "standard"},
                s3={"payload_signing_enabled": False},
                response_checksum_validation="when_required",
            )
        return self._client

    # --- reads -------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        response = self._call(key, "get_object", Bucket=self.bucket, Key=self._key(key))
        body: bytes = response["Body"].read()
        return body

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call(
                key, "head_object", Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(key, int(response["ContentLength"]), _full_object_sha256(response))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=base + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(base) :], int(item["Size"]))
        except Exception as err:
            self._raise_translated(prefix or "/", err)

    def get_stream(self, key: str, sink: IO[bytes]) -> None:
        # One GET streamed in order (the transfer manager would HEAD first: two requests per object).
        response = self._call(key, "get_object", Bucket=self.bucket, Key=self._key(key))
        self._drain(key, response["Body"], sink)

    def get_range(self, key: str, start: int, length: int, sink: IO[bytes]) -> int:
        if start < 0 or length < 1:
            raise ValueError(f"bad range: start {start}, length {length}")
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as err:
            if error_code(err) != "InvalidRange":  # a range starting past the end: the object is shorter
                raise self._translate(key, err) from err
            actual = err.response.get("Error", {}).get("ActualObjectSize")
            if actual is not None:
                return int(actual)
            info = self.head(key)
            if info is None:
                raise ObjectNotFound(self.name, key) from err
            return info.size
        except Exception as err:
            self._raise_translated(key, err)
        match = _CONTENT_RANGE.fullmatch(str(response.get("ContentRange", "")))
        if match is None or int(match.group(1)) != start:
            response["Body"].close()
            raise BackendError(self.name, f"{key}: the store did not honour a ranged read")
        self._drain(key, response["Body"], sink)
        return int(match.group(3))

    def _drain(self, key: str, body: Any, sink: IO[bytes]) -> None:
        """Copy a response body into ``sink`` chunk by chunk; a dropped connection is a BackendError."""
        try:
            for chunk in body.iter_chunks(_CHUNK):
                sink.write(chunk)
        except Exception as err:
            self._raise_translated(key, err)
        finally:
            body.close()

    # --- writes ------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        self._call(key, "put_object", Bucket=self.bucket, Key=self._key(key), Body=data)

    def create(self, key: str, data: bytes) -> None:
        self._call(key, "put_object", Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")

    def put_file(self, key: str, path: Path, *, sha256: str | None = None) -> None:
        if sha256 is not None and Path(path).stat().st_size <= self.single_put_limit:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
            with Path(path).open("rb") as body:
                self._call(
                    key,
                    "put_object",
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
            return
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.part_size,
            max_concurrency=self.max_concurrency,
        )
        self._call(key, "upload_file", str(path), self.bucket, self._key(key), Config=config)

    def delete(self, key: str) -> None:
        self._call(key, "delete_object", Bucket=self.bucket, Key=self._key(key))

    # --- helpers -----------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        check_key(self.name, key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, key: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as err:
            self._raise_translated(key, err)

    def _raise_translated(self, key: str, err: Exception) -> NoReturn:
        """Raise ``err`` as the project's error naming ``key``; call it from the ``except`` that caught it."""
        translated = self._translate(key, err)
        if translated is err:  # not a vendor error: a bug, keep its traceback
            raise
        raise translated from err

    def _translate(self, key: str, err: Exception) -> Exception:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _NOT_FOUND or (status == "404" and code != "NoSuchBucket"):
                return ObjectNotFound(self.name, key)
            if code in _EXISTS or status == "412":
                return ObjectExists(self.name, key)
            if code == "NoSuchBucket":
                return BackendError(self.name, "bucket does not exist (create it with `invoke provision`)")
            if code in _BAD_DIGEST:
                return BackendError(
                    self.name, f"{key}: the store refused the upload: its bytes do not match their checksum"
                )
            if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                return BackendError(self.name, f"{key}: access denied ({code}); check the credentials")
            message = err.response.get("Error", {}).get("Message", "") or code
            return BackendError(self.name, f"{key}: {message}")
        if isinstance(err, NoCredentialsError):
            return MissingCredentials("AWS_ACCESS_KEY_ID", f"access to {self.name}")
        if isinstance(
            err, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
        ):
            return BackendError(self.name, unreachable(self.aws, err))
        if isinstance(err, BotoCoreError):
            return BackendError(self.name, f"{key}: {err}")
        return err


def _full_object_sha256(response: dict[str, Any]) -> str | None:
    """The hex SHA-256 of the whole object from a HeadObject response, or None.

    A multipart upload's checksum is a checksum of the parts' checksums (``<base64>-<parts>``,
    ``ChecksumType: COMPOSITE``), not of the content, so it counts as none.
    """
    value = response.get("ChecksumSHA256")
    if not isinstance(value, str) or "-" in value or response.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return digest.hex() if len(digest) == 32 else None


def ensure_bucket(aws: AwsOptions, bucket: str) -> bool:
    """Create S3 bucket ``bucket`` if missing; True when it was created.

    Any AWS failure is a BackendError naming ``s3://bucket``.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_client(aws, "s3")
    try:
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as err:
            if error_code(err) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        extra: dict[str, Any] = {}
        region = aws.region or "us-east-1"
        # us-east-1 and R2's "auto" refuse an explicit location; any other region (also behind a
        # custom endpoint, where the hub region is a setting) must be named or S3 refuses the bucket.
        if region not in ("us-east-1", "auto"):
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(Bucket=bucket, **extra)
    except (ClientError, BotoCoreError) as err:
        raise BackendError(f"s3://{bucket}", f"cannot provision: {err}") from err
    return True
