"""Errors the engine returns, shaped exactly as DynamoDB returns them.

Hierarchy::

    DynamoDBError                      every error a client can see
    ├── ClientError (HTTP 400)         the request was wrong, or refused
    │   ├── ValidationException        com.amazon.coral.validate#
    │   ├── SerializationException     com.amazon.coral.service#  (bad JSON / types)
    │   ├── UnknownOperationException  com.amazon.coral.service#
    │   ├── auth errors                com.amazon.coral.service#
    │   └── the DynamoDB service's own com.amazonaws.dynamodb.v20120810#
    └── ServerError (HTTP 500/503)     our fault; the request may be retried

The namespace before ``#`` in ``__type`` is the one DynamoDB uses for that
error: request validation and protocol errors come from Amazon's "coral"
framework, the rest from the DynamoDB service.  Clients (botocore) read the
part after ``#`` as the error code.  Lower layers raise these directly where
the DynamoDB wording is theirs to know (a condition failing, a table missing);
storage errors are translated at the operations seam.
"""

from __future__ import annotations

from typing import Any, ClassVar

DYNAMODB = "com.amazonaws.dynamodb.v20120810"
CORAL_SERVICE = "com.amazon.coral.service"
CORAL_VALIDATE = "com.amazon.coral.validate"


class DynamoDBError(Exception):
    """An error with a DynamoDB wire shape: HTTP status, ``__type`` and message."""

    namespace: ClassVar[str] = DYNAMODB
    status: ClassVar[int] = 400
    default_message: ClassVar[str | None] = None
    # DynamoDB writes "message"; a few coral errors write "Message".
    message_key: ClassVar[str] = "message"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message or type(self).__name__)

    @property
    def code(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        body: dict[str, Any] = {"__type": f"{self.namespace}#{self.code}"}
        if self.message is not None:
            body[self.message_key] = self.message
        return body


class ClientError(DynamoDBError):
    status = 400


class ServerError(DynamoDBError):
    status = 500


# --- protocol and validation (coral) -----------------------------------------


class ValidationException(ClientError):
    namespace = CORAL_VALIDATE


class SerializationException(ClientError):
    """The body is not JSON, or a member has the wrong JSON type."""

    namespace = CORAL_SERVICE
    message_key = "Message"


class UnknownOperationException(ClientError):
    namespace = CORAL_SERVICE


class MissingAuthenticationTokenException(ClientError):
    namespace = CORAL_SERVICE
    status = 400
    default_message = "Request is missing Authentication Token"


class IncompleteSignatureException(ClientError):
    namespace = CORAL_SERVICE


class InvalidSignatureException(ClientError):
    namespace = CORAL_SERVICE


class UnrecognizedClientException(ClientError):
    namespace = CORAL_SERVICE
    default_message = "The security token included in the request is invalid."


class AccessDeniedException(ClientError):
    namespace = CORAL_SERVICE


class RequestEntityTooLarge(ClientError):
    namespace = CORAL_SERVICE
    status = 413
    default_message = "Request payload size exceeds the limit"


# --- the DynamoDB service's own errors -------------------------------------


class ResourceNotFoundException(ClientError):
    default_message = "Requested resource not found"


class ResourceInUseException(ClientError):
    pass


class LimitExceededException(ClientError):
    pass


class ConditionalCheckFailedException(ClientError):
    default_message = "The conditional request failed"

    def __init__(self, message: str | None = None, item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.item = item  # wire-encoded old item, for ReturnValuesOnConditionCheckFailure

    def body(self) -> dict[str, Any]:
        body = super().body()
        if self.item is not None:
            body["Item"] = self.item
        return body


class TransactionCanceledException(ClientError):
    message_key = "Message"  # DynamoDB capitalizes it for this error

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = ", ".join(reason.get("Code", "None") for reason in reasons)
        super().__init__(
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{codes}]"
        )
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["CancellationReasons"] = self.reasons
        return body


class TransactionConflictException(ClientError):
    pass


class TransactionInProgressException(ClientError):
    pass


class IdempotentParameterMismatchException(ClientError):
    pass


class ItemCollectionSizeLimitExceededException(ClientError):
    pass


class ProvisionedThroughputExceededException(ClientError):
    pass


class RequestLimitExceeded(ClientError):
    pass


class ThrottlingException(ClientError):
    namespace = "com.amazon.coral.availability"


# Backup and point-in-time recovery (used by the vault work).


class BackupNotFoundException(ClientError):
    pass


class BackupInUseException(ClientError):
    pass


class TableNotFoundException(ClientError):
    pass


class TableAlreadyExistsException(ClientError):
    pass


class TableInUseException(ClientError):
    pass


class ContinuousBackupsUnavailableException(ClientError):
    pass


class PointInTimeRecoveryUnavailableException(ClientError):
    pass


class InvalidRestoreTimeException(ClientError):
    pass


# DynamoDB Streams (same namespace as the DynamoDB service's errors).


class ExpiredIteratorException(ClientError):
    """A shard iterator used more than 15 minutes after it was issued."""

    default_message = "The provided iterator exceeds the maximum age allowed."


class TrimmedDataAccessException(ClientError):
    """A shard iterator or sequence number whose records were trimmed (older than 24 h)."""

    default_message = "The data you are trying to access has been trimmed."


# --- server side ------------------------------------------------------------------


class InternalServerError(ServerError):
    default_message = "Internal server error"


class ServiceUnavailable(ServerError):
    namespace = "com.amazon.coral.availability"
    status = 503
    default_message = "Service unavailable"
