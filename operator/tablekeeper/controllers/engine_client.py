"""The operator's client of one Table's engine: the few DynamoDB calls the controllers make.

A boto3 ``dynamodb`` client against the engine's endpoint, signed with the
Table's generated credentials.  This is the seam where engine and network
errors become kopf's:

* ``EngineUnavailable`` (a ``kopf.TemporaryError``): the engine does not
  answer yet (no pod, not ready, a connection refused or timed out) or
  answers with a server error;
* ``EngineBusy`` (a ``kopf.TemporaryError``): DynamoDB's "not now" —
  ResourceInUseException, LimitExceededException, throttling, a TTL change
  within an hour of the last one;
* ``EngineRefused`` (a ``kopf.PermanentError``): the engine refuses the
  request as invalid (ValidationException and other client errors): retrying
  the same spec cannot help.

Nothing here decides what to change: ``table_plan`` does; this carries it out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import boto3
import kopf
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tablekeeper.controllers.builders import Credentials
from tablekeeper.controllers.table_plan import Change, EngineTable, create_table_request
from tablekeeper.resources.table import TableSpec

REGION: Final = "us-east-1"  # the engine's default region; it names the ARNs
BUSY_ERRORS: Final = frozenset({
    "ResourceInUseException", "LimitExceededException", "ThrottlingException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded",
})  # fmt: skip
# Wrong credentials may be a pod still running with an older Secret: worth retrying.
RETRYABLE_ERRORS: Final = frozenset({"UnrecognizedClientException", "InvalidSignatureException"})
TOO_SOON: Final = "modified multiple times within a fixed interval"
TTL_RETRY_SECONDS: Final = 300.0


class EngineUnavailable(kopf.TemporaryError):
    """The engine did not answer, or answered with a server error."""


class EngineBusy(kopf.TemporaryError):
    """The engine asked to come back later."""


class EngineRefused(kopf.PermanentError):
    """The engine refused the request as invalid."""


@dataclass(frozen=True)
class ClientSettings:
    region: str = REGION
    connect_timeout: float = 3.0
    read_timeout: float = 20.0
    retry_delay: float = 10.0  # when the engine is unavailable or busy


_clients: dict[tuple[str, str, str, str], Any] = {}
_clients_lock = threading.Lock()


def _boto_client(endpoint: str, credentials: Credentials, settings: ClientSettings) -> Any:
    # boto3 clients are thread-safe and slow to build: one per endpoint and key pair.
    key = (endpoint, credentials.access_key_id, credentials.secret_access_key, settings.region)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = boto3.session.Session().client(
                "dynamodb",
                endpoint_url=endpoint,
                region_name=settings.region,
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                config=Config(
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    retries={"max_attempts": 1, "mode": "standard"},  # kopf retries, with backoff
                ),
            )
            _clients[key] = client
        return client


class EngineClient:
    """One table in one engine, as the operator sees it."""

    def __init__(
        self, endpoint: str, credentials: Credentials, table_name: str, settings: ClientSettings | None = None
    ) -> None:
        self.endpoint = endpoint
        self.table_name = table_name
        self.settings = settings or ClientSettings()
        self._client = _boto_client(endpoint, credentials, self.settings)

    def describe(self) -> EngineTable | None:
        """The table as the engine has it, or None when the engine has no such table."""
        with self._translated("describe table"):
            try:
                description = self._client.describe_table(TableName=self.table_name)["Table"]
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return None
                raise
            ttl = self._client.describe_time_to_live(TableName=self.table_name)["TimeToLiveDescription"]
            tags = self._tags(description["TableArn"])
        return EngineTable.from_wire(description, ttl, tags)

    def _tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        request: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = self._client.list_tags_of_resource(**request)
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", ())})
            if not page.get("NextToken"):
                return tags
            request["NextToken"] = page["NextToken"]

    def ensure_table(self, spec: TableSpec) -> bool:
        """Create the table unless it exists; True when this call created it."""
        if self.describe() is not None:
            return False
        with self._translated("create table"):
            try:
                self._client.create_table(**create_table_request(spec, self.table_name))
            except ClientError as error:
                if _code(error) == "ResourceInUseException":  # created meanwhile: as good
                    return False
                raise
        return True

    def apply(self, change: Change, arn: str) -> None:
        """Carry out one planned change."""
        request = dict(change.request)
        if change.operation in ("TagResource", "UntagResource"):
            request["ResourceArn"] = arn
        else:
            request["TableName"] = self.table_name
        call = getattr(self._client, _snake(change.operation))
        with self._translated(change.summary):
            call(**request)

    def delete_table(self) -> bool:
        """Delete the table; False when there was none."""
        with self._translated("delete table"):
            try:
                self._client.delete_table(TableName=self.table_name)
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return False
                raise
        return True

    @contextmanager
    def _translated(self, verb: str) -> Iterator[None]:
        """Engine and network errors as kopf's, with messages "verb table: cause"."""
        where = f"{verb} {self.table_name} at {self.endpoint}"
        delay = self.settings.retry_delay
        try:
            yield
        except ClientError as error:
            code, message = _code(error), error.response.get("Error", {}).get("Message", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in BUSY_ERRORS:
                raise EngineBusy(f"{where}: {code}: {message}", delay=delay) from error
            if TOO_SOON in message:
                raise EngineBusy(f"{where}: {message}", delay=max(delay, TTL_RETRY_SECONDS)) from error
            if code in RETRYABLE_ERRORS or status >= 500:
                raise EngineUnavailable(f"{where}: {code}: {message}", delay=delay) from error
            raise EngineRefused(f"{where}: {code}: {message}") from error
        except BotoCoreError as error:  # connection refused, timeouts, DNS: no engine (yet)
            raise EngineUnavailable(f"{where}: {error}", delay=delay) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
