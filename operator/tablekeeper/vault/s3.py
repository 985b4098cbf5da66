"""S3Store: an object store in an S3-compatible bucket (``s3://bucket/prefix``), through boto3.

Keys live under ``prefix/`` in the bucket; the store never sees objects
outside it (a sibling prefix such as ``prefix2/`` included).

* put sends ``Content-MD5``, so the store refuses a body damaged in transit
  (``BadDigest``); ``if_absent`` is S3's conditional write
  (``If-None-Match: *``: 412 means the key exists).  A store that answers
  ``NotImplemented`` to it gets a HEAD then PUT instead, from then on, with
  a warning that this is best-effort (two writers can both win).
* Throttling (SlowDown, 429, 503), other 5xx, 409 ConditionalRequestConflict,
  RequestTimeout, BadDigest and dropped or timed-out connections are retried
  with capped exponential backoff and jitter, a bounded number of times;
  connection failures fewer times, with a short connect timeout, so an
  unreachable endpoint is reported within seconds.  botocore's own retries
  are off: this module is the one place that decides.
* An ``if_absent`` put that had to be retried after an attempt whose outcome
  is unknown (a timeout, a 5xx) and then finds the key taken reads the
  object back: if it holds our bytes, our earlier attempt landed and the put
  succeeded.
* Refusals name their cause: AccessDenied, InvalidAccessKeyId (unknown access
  key), SignatureDoesNotMatch (wrong secret), NoSuchBucket, an expired token,
  a bucket in another region — all ``StoreUnavailable``.  HEAD answers have
  no body, so a 403 or 404 on HEAD cannot say more; a 404 on HEAD is checked
  once against HeadBucket so that a missing bucket is not taken for a
  missing object.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from tablekeeper.vault.errors import (
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    StoreFull,
    StoreUnavailable,
    VaultError,
)
from tablekeeper.vault.store import ObjectInfo, check_key, key_problem

log = logging.getLogger(__name__)

T = TypeVar("T")

# Codes (or HTTP statuses) worth another try: the request may succeed later.
_RETRYABLE = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequests",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "ConditionalRequestConflict",
    "OperationAborted",
    "BadDigest",
}

# Refusals: the store works but will not serve these credentials or this bucket.
_REFUSALS = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "all access to the bucket is disabled",
    "AccountProblem": "the account has a problem",
    "InvalidAccessKeyId": "the access key id is not known to the store",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "ExpiredToken": "the session token has expired",
    "TokenRefreshRequired": "the session token has expired",
    "InvalidToken": "the session token is invalid",
    "NoSuchBucket": "no such bucket",
    "PermanentRedirect": "the bucket is in another region or needs another endpoint",
    "AuthorizationHeaderMalformed": "the bucket is in another region (or the region is wrong)",
    "IllegalLocationConstraintException": "the bucket is in another region",
    "RequestTimeTooSkewed": "this machine's clock is too far off the store's",
}

_FULL = {"QuotaExceeded", "XMinioStorageFull", "InsufficientStorage", "StorageFull"}

_INTEGRITY = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}

_CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError)


class _Unsupported(VaultError):
    """The store answered NotImplemented (501) to a request."""


def _error_code(error: ClientError) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a ClientError; HEAD errors have only the status as code."""
    details = error.response.get("Error", {})
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(details.get("Code") or status)
    return code, status, str(details.get("Message") or "").strip()


class S3Store:
    """The ObjectStore seam (see ``tablekeeper.vault.store``) over an S3-compatible bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        conditional_writes: bool = True,
        max_attempts: int = 6,
        connection_attempts: int = 2,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
    ) -> None:
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.endpoint_url = endpoint_url
        if prefix and key_problem(prefix) is not None:
            raise VaultError(f"open vault {self.url}: invalid prefix: {key_problem(prefix)}")
        if (access_key_id is None) != (secret_access_key is None):
            raise VaultError(f"open vault {self.url}: give both an access key id and a secret, or neither")
        self._conditional_writes = conditional_writes
        self._max_attempts = max(1, max_attempts)
        self._connection_attempts = max(1, connection_attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._bucket_seen = False
        self._lock = threading.Lock()
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=32,
            signature_version="s3v4",
            # Content-MD5 is sent explicitly; the newer default checksums break older S3-compatibles.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
                region_name=region,
            )
            self._client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        except (BotoCoreError, ValueError) as error:
            raise VaultError(f"open vault {self.url}: {error}") from error

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Store({self.url!r}{endpoint})"

    # -- the seam ----------------------------------------------------------

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        check_key(key, "put", f"{self.url}/")
        what = self._where(key)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.prefix + key,
            "Body": data,
            "ContentMD5": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
            "ContentType": "application/octet-stream",
        }
        if not if_absent:
            self._call("put", what, self._client.put_object, params)
            return
        if not self._conditional_writes:
            self._put_after_head(key, what, params)
            return
        outcome_unknown: list[bool] = []
        try:
            self._call("put", what, self._client.put_object, {**params, "IfNoneMatch": "*"},
                       outcome_unknown=outcome_unknown)
        except _Unsupported:
            self._fall_back_to_head_then_put()
            self._put_after_head(key, what, params)
        except ObjectExists:
            if outcome_unknown and self._holds(key, data):
                return
            raise

    def get(self, key: str) -> bytes:
        check_key(key, "get", f"{self.url}/")

        def read(**params: Any) -> bytes:
            return bytes(self._client.get_object(**params)["Body"].read())

        return self._call("get", self._where(key), read, {"Bucket": self.bucket, "Key": self.prefix + key})

    def head(self, key: str) -> ObjectInfo | None:
        check_key(key, "head", f"{self.url}/")
        what = self._where(key)
        try:
            answer = self._call("head", what, self._client.head_object,
                                {"Bucket": self.bucket, "Key": self.prefix + key})
        except ObjectNotFound:
            if not self._bucket_seen:
                self._check_bucket("head", what)
            return None
        return ObjectInfo(key, int(answer["ContentLength"]), answer["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._list(prefix)

    def delete(self, key: str) -> None:
        check_key(key, "delete", f"{self.url}/")
        self._call("delete", self._where(key), self._client.delete_object,
                   {"Bucket": self.bucket, "Key": self.prefix + key})

    # -- internals ---------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        what = f"{self.url}/{prefix}*"
        while True:
            page = self._call("list", what, self._client.list_objects_v2, params)
            for item in page.get("Contents", ()):
                key = item["Key"][len(self.prefix):]
                if key_problem(key) is None:
                    yield ObjectInfo(key, int(item["Size"]), item["LastModified"].timestamp())
            if not page.get("IsTruncated"):
                return
            params = {**params, "ContinuationToken": page["NextContinuationToken"]}

    def _put_after_head(self, key: str, what: str, params: dict[str, Any]) -> None:
        """if_absent without conditional writes: best-effort, a racing writer can slip in between."""
        if self.head(key) is not None:
            raise ObjectExists(f"put {what}: already exists")
        self._call("put", what, self._client.put_object, params)

    def _fall_back_to_head_then_put(self) -> None:
        with self._lock:
            if not self._conditional_writes:
                return
            self._conditional_writes = False
        log.warning(
            "put %s: the store does not implement conditional writes (If-None-Match); "
            "if_absent falls back to HEAD then PUT, which two concurrent writers can both pass",
            self.url,
        )

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self.get(key) == data
        except ObjectNotFound:
            return False

    def _check_bucket(self, verb: str, what: str) -> None:
        try:
            self._call(verb, what, self._client.head_bucket, {"Bucket": self.bucket})
        except ObjectNotFound:
            raise StoreUnavailable(f"{verb} {what}: no such bucket (NoSuchBucket): {self.bucket}") from None

    def _call(
        self,
        verb: str,
        what: str,
        operation: Callable[..., T],
        params: dict[str, Any],
        *,
        outcome_unknown: list[bool] | None = None,
    ) -> T:
        """Run one request with bounded retries; every failure leaves as a VaultError."""
        attempt = 0
        while True:
            attempt += 1
            try:
                result = operation(**params)
            except ClientError as error:
                code, status, message = _error_code(error)
                retryable = code in _RETRYABLE or (status >= 500 and status not in (501, 507))
                if retryable and attempt < self._max_attempts:
                    if outcome_unknown is not None and (status >= 500 or code == "RequestTimeout"):
                        outcome_unknown.append(True)
                    self._sleep(attempt)
                    continue
                raise self._translate(verb, what, code, status, message, attempt) from error
            except (NoCredentialsError, PartialCredentialsError) as error:
                raise StoreUnavailable(
                    f"{verb} {what}: no usable credentials ({error}); set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY or give them to the vault"
                ) from error
            except _CONNECTION_ERRORS as error:
                if attempt < min(self._connection_attempts, self._max_attempts):
                    if outcome_unknown is not None and not isinstance(
                        error, EndpointConnectionError | ConnectTimeoutError
                    ):
                        outcome_unknown.append(True)
                    self._sleep(attempt)
                    continue
                raise StoreUnavailable(
                    f"{verb} {what}: {self._connection_cause(error)} after {attempt} attempts: {error}"
                ) from error
            except BotoCoreError as error:
                raise VaultError(f"{verb} {what}: {error}") from error
            self._bucket_seen = True
            return result

    def _connection_cause(self, error: BotoCoreError) -> str:
        endpoint = self.endpoint_url or "the S3 endpoint"
        if isinstance(error, ConnectTimeoutError):
            return f"timed out connecting to {endpoint}"
        if isinstance(error, ReadTimeoutError):
            return f"timed out waiting for {endpoint}"
        if isinstance(error, EndpointConnectionError):
            return f"could not connect to {endpoint}"
        return f"lost the connection to {endpoint}"

    def _translate(
        self, verb: str, what: str, code: str, status: int, message: str, attempts: int
    ) -> VaultError:
        cause = f"{code} ({status})" + (f": {message}" if message else "")
        if code in ("NoSuchKey", "NotFound", "404"):
            return ObjectNotFound(f"{verb} {what}: no such object")
        if code in ("PreconditionFailed", "412"):
            return ObjectExists(f"{verb} {what}: already exists")
        if code in _REFUSALS:
            detail = f"{_REFUSALS[code]}: {self.bucket}" if code == "NoSuchBucket" else _REFUSALS[code]
            return StoreUnavailable(f"{verb} {what}: {detail} ({cause})")
        if code in ("403", "Forbidden"):
            return StoreUnavailable(
                f"{verb} {what}: forbidden (403): wrong credentials or missing permission "
                "(S3 also answers 403 for a missing object when s3:ListBucket is not granted)"
            )
        if code in ("301", "400") and verb == "head":
            return StoreUnavailable(f"{verb} {what}: the store refused the request ({code}): "
                                    "is the bucket in another region?")
        if code in _FULL or status == 507:
            return StoreFull(f"{verb} {what}: the store is full ({cause})")
        if code in _INTEGRITY:
            return IntegrityError(f"{verb} {what}: the store received other bytes than were sent ({cause})")
        if code in ("NotImplemented", "501"):
            return _Unsupported(f"{verb} {what}: the store does not implement this request ({cause})")
        if code in _RETRYABLE or status >= 500:
            return StoreUnavailable(f"{verb} {what}: the store is failing or throttling after "
                                    f"{attempts} attempts ({cause})")
        return VaultError(f"{verb} {what}: {cause}")

    def _sleep(self, attempt: int) -> None:
        ceiling = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
        time.sleep(ceiling / 2 + random.uniform(0, ceiling / 2))
