"""Primary keys: the schema, its validation, and the order-preserving encoding.

A stored key is ``hash(pk) || enc(pk) || enc(sk)``:

* ``enc`` preserves order (strings by UTF-8 bytes, binaries by unsigned
  bytes, numbers numerically) and is self-delimiting, so that all items of
  one partition are one contiguous range, sorted by sort key: Query ranges
  and ScanIndexForward=false are plain range scans.
* The 4-byte hash prefix spreads partitions over the key space like
  DynamoDB's partitioning does; a parallel Scan's Segment is then a
  contiguous range of hash prefixes.

Scalar encoding: a type byte, then

* S and B: the bytes with 0x00 escaped as 0x00 0xFF, ended by 0x00 0x01;
* N: zero is one class byte; otherwise a class byte (negative / positive),
  the decimal exponent biased into one byte (DynamoDB's exponent range is
  exactly 256 values), the mantissa digits as ASCII and a 0x00 terminator.
  Negative numbers invert every byte after the class byte, so larger
  magnitudes sort first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.values import Item, Value, load_item, type_of, value_size

HASH_PREFIX_BYTES: Final = 4
MAX_HASH_KEY_BYTES: Final = 2048
MAX_RANGE_KEY_BYTES: Final = 1024

_TYPE_BYTES: Final = {"B": b"\x01", "N": b"\x02", "S": b"\x03"}
_NEG, _ZERO, _POS = b"\x01", b"\x02", b"\x03"
_INVERT: Final = bytes(255 - i for i in range(256))


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def _encode_number(number: Decimal) -> bytes:
    if not number:
        return _ZERO
    sign, digits, _ = number.as_tuple()
    exponent = number.adjusted() + 130  # -130..125 -> 0..255
    body = bytes([exponent]) + "".join(map(str, digits)).encode("ascii") + b"\x00"
    if sign:
        return _NEG + body.translate(_INVERT)
    return _POS + body


def encode_scalar(value: Value) -> bytes:
    """Order-preserving, self-delimiting encoding of an S, N or B value."""
    if isinstance(value, str):
        return b"\x03" + _escape(value.encode("utf-8"))
    if isinstance(value, bytes):
        return b"\x01" + _escape(value)
    if isinstance(value, Decimal):
        return b"\x02" + _encode_number(value)
    raise TypeError(f"not a key value: {value!r}")


def hash_prefix(encoded_partition: bytes) -> bytes:
    return hashlib.blake2b(encoded_partition, digest_size=HASH_PREFIX_BYTES).digest()


def segment_bounds(segment: int, total: int) -> tuple[bytes | None, bytes | None]:
    """The stored-key range [low, high) of one parallel-scan segment."""
    space = 1 << (8 * HASH_PREFIX_BYTES)
    low = segment * space // total
    high = (segment + 1) * space // total
    as_bytes = lambda n: n.to_bytes(HASH_PREFIX_BYTES, "big")  # noqa: E731
    return (as_bytes(low) if segment else None, as_bytes(high) if high < space else None)


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: str  # "S" | "N" | "B"


@dataclass(frozen=True, slots=True)
class KeySchema:
    """A table's (or an index's) key: partition attribute and optional sort attribute."""

    hash: KeyAttribute
    range: KeyAttribute | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)

    def partition_prefix(self, hash_value: Value) -> bytes:
        encoded = encode_scalar(hash_value)
        return hash_prefix(encoded) + encoded

    def encode(self, key: Item) -> bytes:
        """The stored key of an item or key map that has already been validated."""
        prefix = self.partition_prefix(key[self.hash.name])
        if self.range is None:
            return prefix
        return prefix + encode_scalar(key[self.range.name])

    def encode_stored(self, wire: Mapping[str, Any]) -> bytes:
        """The stored key of an item (or index entry) in its stored JSON form."""
        return self.encode(load_item({name: wire[name] for name in self.names}))

    def key_of(self, item: Item) -> Item:
        return {name: item[name] for name in self.names}

    def validate_key(self, key: Item) -> None:
        """Check a Key parameter: exactly the key attributes, right types."""
        if len(key) != len(self.names) or any(name not in key for name in self.names):
            raise ValidationException("The provided key element does not match the schema")
        for attr in self._attributes():
            value = key[attr.name]
            if type_of(value) != attr.type:
                raise ValidationException("The provided key element does not match the schema")
            self._check_key_value(attr, value)

    def validate_item_keys(self, item: Item) -> None:
        """Check that a full item carries valid key attributes."""
        for attr in self._attributes():
            if attr.name not in item:
                raise ValidationException(
                    "One or more parameter values were invalid: "
                    f"Missing the key {attr.name} in the item"
                )
            value = item[attr.name]
            actual = type_of(value)
            if actual != attr.type:
                raise ValidationException(
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{attr.name} expected: {attr.type} actual: {actual}"
                )
            self._check_key_value(attr, value)

    def _attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.hash,) if self.range is None else (self.hash, self.range)

    def _check_key_value(self, attr: KeyAttribute, value: Value) -> None:
        if isinstance(value, str | bytes) and not value:
            raise ValidationException(
                "One or more parameter values are not valid. The AttributeValue for a key "
                f"attribute cannot contain an empty {'string' if isinstance(value, str) else 'binary'}"
                f" value. Key: {attr.name}"
            )
        size = value_size(value) if isinstance(value, str | bytes) else 0  # 38 digits fit any limit
        if attr is self.hash and size > MAX_HASH_KEY_BYTES:
            raise ValidationException(
                "One or more parameter values were invalid: Size of hashkey has exceeded "
                "the maximum size limit of2048 bytes"
            )
        if attr is self.range and size > MAX_RANGE_KEY_BYTES:
            raise ValidationException(
                "One or more parameter values were invalid: Aggregated size of all range keys "
                "has exceeded the size limit of 1024 bytes"
            )
