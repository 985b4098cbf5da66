"""Tags: TagResource, UntagResource, ListTagsOfResource.

A resource is named by its ARN; only tables can carry tags here.  DynamoDB
checks a request in this order, and so do we: the member shapes, the ARN's
form, the tags themselves (all or nothing: one bad tag and none is applied),
then whether the table exists, then the 50-tag limit on the merged set.
Tags are kept on the table definition, in the order they were first set.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from tablekeeper.engine.engine import Engine
from tablekeeper.engine.errors import (
    AccessDeniedException,
    ResourceNotFoundException,
    SerializationException,
    ValidationException,
)
from tablekeeper.engine.operations.base import Operation, WireResult
from tablekeeper.engine.shapes import TABLE_NAME_PATTERN, Members
from tablekeeper.engine.tables import TableDefinition

INVALID: Final = "One or more parameter values were invalid: "
MAX_TAGS: Final = 50
MAX_KEY_LENGTH: Final = 128
MAX_VALUE_LENGTH: Final = 256
MAX_ARN_LENGTH: Final = 1283
# DynamoDB lists all 50 tags a table can have in one page; NextToken is honoured
# all the same, so a client that follows it gets the rest of a longer list.
PAGE_SIZE: Final = MAX_TAGS
TOO_MANY_TAGS: Final = "Number of Tags exceed the current limit for the provided ResourceArn"

# Besides letters, numbers and spaces of any script, AWS tags allow these.
_TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")
# Sub-resources of a table that the tagging API knows are not taggable resources at all.
_NOT_RESOURCES: Final = frozenset({"backup", "export", "import"})
_TABLE_NAME: Final = re.compile(f"(?=.{{3,255}}$){TABLE_NAME_PATTERN}")


# --- resource ARNs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """What a tagging ARN names: a table, or one of its streams."""

    table_name: str
    stream: bool = False


def resource_of(arn: str, region: str, account: str) -> Resource:
    """The resource a tagging ARN names, or DynamoDB's error for an ARN it would not accept."""
    if not arn.startswith("arn:"):
        raise ValidationException(INVALID + f"ARNs must start with 'arn:': {arn}")
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "dynamodb":
        raise ValidationException(INVALID + f"Provided Arn is not a DynamoDB resource arn: {arn}")
    _, partition, _, arn_region, arn_account, path = parts
    if arn_account != account:
        raise AccessDeniedException("Access is denied")
    kind, _, rest = path.partition("/")
    name, _, sub = rest.partition("/")
    sub_kind = sub.partition("/")[0]
    if kind != "table" or sub_kind in _NOT_RESOURCES:
        raise ValidationException(INVALID + f"Provided Arn is not a DynamoDB resource arn: {arn}")
    if partition != "aws" or arn_region != region or not _TABLE_NAME.fullmatch(name):
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    if sub and sub_kind != "stream":
        raise ValidationException(
            INVALID + "Invalid resource arn provided, only table or stream is accepted. "
            f"Provided resource arn: {arn}"
        )
    return Resource(name, stream=bool(sub))


def tagged_table(engine: Engine, arn: str, resource: Resource) -> TableDefinition:
    """The table to tag.  Streams are taggable in DynamoDB but not (yet) here: not found."""
    table = None if resource.stream else engine.catalog.get(resource.table_name)
    if table is None or table.status == "DELETING":
        raise ResourceNotFoundException(
            f"Requested resource not found: ResourceArn: {arn} not found"
        )
    return table


# --- tag keys and values ----------------------------------------------------------------------


def _allowed(text: str) -> bool:
    return all(
        char in _TAG_PUNCTUATION or unicodedata.category(char)[0] in "LNZ" for char in text
    )


def _shown(text: str | None) -> str:
    return "null" if text is None else text


def check_key(key: str | None) -> str:
    if key is None or not 1 <= len(key) <= MAX_KEY_LENGTH or not _allowed(key):
        raise ValidationException(f"The Tag Key provided is invalid, Key: {_shown(key)}")
    if key.lower().startswith("aws:"):
        raise ValidationException(f"Tag Key cannot be prefixed with aws:, Key: {key}")
    return key


def check_value(value: str | None) -> str:
    if value is None or len(value) > MAX_VALUE_LENGTH or not _allowed(value):
        raise ValidationException(f"The Tag Value provided is invalid, Value: {_shown(value)}")
    return value


def check_tags(tags: list[tuple[str | None, str | None]]) -> tuple[tuple[str, str], ...]:
    """Tags as a TagResource (or CreateTable) request gives them, checked as DynamoDB does."""
    checked = [(check_key(key), check_value(value)) for key, value in tags]
    seen: set[str] = set()
    for key, _ in checked:
        if key in seen:
            raise ValidationException(
                f"Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}"
            )
        seen.add(key)
    if len(checked) > MAX_TAGS:
        raise ValidationException(TOO_MANY_TAGS)
    return tuple(checked)


def merge_tags(
    current: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """Tags after an upsert: existing keys keep their place and take the new value."""
    merged = dict(current)
    merged.update(new)
    if len(merged) > MAX_TAGS:
        raise ValidationException(TOO_MANY_TAGS)
    return tuple(merged.items())


# --- TagResource ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagResourceRequest:
    resource_arn: str
    tags: tuple[tuple[str | None, str | None], ...]  # as sent: DynamoDB checks them after the ARN


def _parse_arn(m: Members) -> str:
    arn = m.string("ResourceArn", required=True, min_len=1, max_len=MAX_ARN_LENGTH)
    return arn or ""


def parse_tag_resource(body: dict[str, Any]) -> TagResourceRequest:
    m = Members(body)
    arn = _parse_arn(m)
    wire_tags = m.array("Tags", required=True)
    tags: list[tuple[str | None, str | None]] = []
    for tag in wire_tags or []:
        t = Members(tag)  # types only: DynamoDB words a bad key or value its own way
        tags.append((t.string("Key"), t.string("Value")))
    m.done()
    return TagResourceRequest(arn, tuple(tags))


async def tag_resource(engine: Engine, request: TagResourceRequest) -> WireResult:
    resource = resource_of(request.resource_arn, engine.config.region, engine.config.account)
    if not request.tags:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    new = check_tags(list(request.tags))
    table = tagged_table(engine, request.resource_arn, resource)
    tags = merge_tags(table.tags, new)
    if tags != table.tags:
        engine.catalog.put(table.replace(tags=tags))
    return WireResult({})


# --- UntagResource -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UntagResourceRequest:
    resource_arn: str
    keys: tuple[str, ...]  # as sent


def parse_untag_resource(body: dict[str, Any]) -> UntagResourceRequest:
    m = Members(body)
    arn = _parse_arn(m)
    wire_keys = m.array("TagKeys", required=True)
    keys = wire_keys or []
    if not all(isinstance(key, str) for key in keys):
        raise SerializationException("Unexpected value type for member 'TagKeys': expected String")
    m.done()
    return UntagResourceRequest(arn, tuple(keys))


async def untag_resource(engine: Engine, request: UntagResourceRequest) -> WireResult:
    resource = resource_of(request.resource_arn, engine.config.region, engine.config.account)
    if not request.keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    removed = {check_key(key) for key in request.keys}
    if len(request.keys) > MAX_TAGS:
        raise ValidationException(TOO_MANY_TAGS)
    table = tagged_table(engine, request.resource_arn, resource)
    tags = tuple((key, value) for key, value in table.tags if key not in removed)
    if tags != table.tags:
        engine.catalog.put(table.replace(tags=tags))
    return WireResult({})


# --- ListTagsOfResource --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListTagsRequest:
    resource_arn: str
    start: int  # index of the first tag of the page, from NextToken


def parse_list_tags(body: dict[str, Any]) -> ListTagsRequest:
    m = Members(body)
    arn = _parse_arn(m)
    token = m.string("NextToken")
    m.done()
    return ListTagsRequest(arn, 0 if token is None else decode_token(token))


def encode_token(start: int) -> str:
    return base64.urlsafe_b64encode(f"tags:{start}".encode()).decode("ascii")


def decode_token(token: str) -> int:
    try:
        kind, _, start = base64.urlsafe_b64decode(token.encode("ascii")).decode().partition(":")
        if kind == "tags" and start.isdigit():
            return int(start)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise ValidationException(f"Invalid NextToken: {token}")


async def list_tags(engine: Engine, request: ListTagsRequest) -> WireResult:
    resource = resource_of(request.resource_arn, engine.config.region, engine.config.account)
    table = tagged_table(engine, request.resource_arn, resource)
    page = table.tags[request.start : request.start + PAGE_SIZE]
    body: dict[str, Any] = {"Tags": [{"Key": key, "Value": value} for key, value in page]}
    if request.start + PAGE_SIZE < len(table.tags):
        body["NextToken"] = encode_token(request.start + PAGE_SIZE)
    return WireResult(body)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("TagResource", parse_tag_resource, tag_resource),
        Operation("UntagResource", parse_untag_resource, untag_resource),
        Operation("ListTagsOfResource", parse_list_tags, list_tags),
    )
}
