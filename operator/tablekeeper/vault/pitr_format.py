"""The point-in-time-recovery archive in a vault: segments of change log, settings, bases.

::

    pitr/<table id>/segments/<first seq>-<last seq>.<first ms>-<last ms>   log records, sealed
    pitr/<table id>/settings/<changed ms>-<nonce>                         the window, as of a change
    manifests/<backup id>    a base: an ordinary backup of type PITR (hidden from ListBackups),
                             annotated with its table id; see tablekeeper.vault.backup

Every object is written once (``if_absent``) and sealed like a backup's
objects (``vault.format``), bound to its name.  A **segment** holds a
contiguous run of one table's change-log records, oldest first, with a
per-second index (the first record of each second), and names its sequence
and time range, so a restore plans from a listing alone.  **Settings** say
whether PITR is on, the recovery period, and when the current window
started; the newest wins.  The sequence numbers of a table's log are
contiguous, so a restore can prove there is no gap between a base (as of
sequence S) and the time it restores to.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

import orjson

from tablekeeper.engine.storage.base import StoredRecord
from tablekeeper.vault.format import KIND_SEGMENT, KIND_SETTINGS, damaged

__all__ = ["KIND_SEGMENT", "KIND_SETTINGS"]

PITR: Final = "pitr/"
BASE_TYPE: Final = "PITR"  # the backup type of a base; ListBackups never shows it
BASE_TABLE_ANNOTATION: Final = "pitr-table-id"
BASE_WINDOW_ANNOTATION: Final = "pitr-window-start"  # ms: the window a base belongs to

_SEGMENT = re.compile(r"^(\d{20})-(\d{20})\.(\d{15})-(\d{15})$")


def table_prefix(table_id: str) -> str:
    return f"{PITR}{table_id}/"


def segments_prefix(table_id: str) -> str:
    return f"{table_prefix(table_id)}segments/"


def settings_prefix(table_id: str) -> str:
    return f"{table_prefix(table_id)}settings/"


@dataclass(frozen=True, slots=True, order=True)
class SegmentRef:
    """A segment as its name describes it."""

    first: int
    last: int
    first_ms: int
    last_ms: int
    name: str

    @classmethod
    def parse(cls, table_id: str, name: str) -> SegmentRef | None:
        found = _SEGMENT.match(name[len(segments_prefix(table_id)):])
        if not name.startswith(segments_prefix(table_id)) or found is None:
            return None
        first, last, first_ms, last_ms = (int(group) for group in found.groups())
        return cls(first, last, first_ms, last_ms, name)


def segment_name(table_id: str, records: list[StoredRecord]) -> str:
    first, last = records[0], records[-1]
    return (f"{segments_prefix(table_id)}{first.sequence:020d}-{last.sequence:020d}."
            f"{min(r.timestamp_ms for r in records):015d}-{max(r.timestamp_ms for r in records):015d}")


def _text(blob: bytes | None) -> str | None:
    return None if blob is None else blob.decode()


def encode_segment(table_id: str, records: list[StoredRecord]) -> bytes:
    """The segment's body: its table, its records and the per-second index into them."""
    index: list[list[int]] = []
    for position, record in enumerate(records):
        second = record.timestamp_ms // 1000
        if not index or index[-1][0] != second:
            index.append([second, position])
    return orjson.dumps({
        "table": table_id,
        "index": index,
        "records": [[r.sequence, r.timestamp_ms, r.keys.decode(), _text(r.old), _text(r.new), r.origin]
                    for r in records],
    })


def decode_segment(body: bytes, ref: SegmentRef, table_id: str) -> list[StoredRecord]:
    """The records of a segment, checked against its name (a swapped segment is damage)."""
    try:
        plain = orjson.loads(body)
        records = [
            StoredRecord(seq, ts, keys.encode(), None if old is None else old.encode(),
                         None if new is None else new.encode(), origin)
            for seq, ts, keys, old, new, origin in plain["records"]
        ]
        table = plain["table"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise damaged(None, ref.name, f"log segment does not parse: {error}") from None
    sequences = [record.sequence for record in records]
    times = [record.timestamp_ms for record in records]
    if (table != table_id or sequences != list(range(ref.first, ref.last + 1))
            or (min(times, default=None), max(times, default=None)) != (ref.first_ms, ref.last_ms)):
        raise damaged(None, ref.name, "log segment does not hold the records its name says")
    return records


def settings_time(name: str) -> int:
    """When a settings object was written (its name's milliseconds); 0 for a name not ours."""
    stem = name.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(stem) if stem.isdigit() else 0


@dataclass(frozen=True, slots=True)
class Settings:
    """PITR of one table as of its last change (UpdateContinuousBackups, or deletion)."""

    table_id: str
    table_name: str
    table_arn: str
    enabled: bool
    period_days: int
    window_start_ms: int  # the earliest time this window can ever restore to
    changed_ms: int
    deleted_ms: int | None = None  # the table was deleted then; its archive is kept for the period

    def to_body(self) -> bytes:
        return orjson.dumps({name: getattr(self, name) for name in self.__slots__})

    @classmethod
    def from_body(cls, body: bytes, name: str) -> Settings:
        try:
            plain: dict[str, Any] = orjson.loads(body)
            return cls(**plain)
        except (orjson.JSONDecodeError, TypeError) as error:
            raise damaged(None, name, f"PITR settings do not parse: {error}") from None

    def object_name(self) -> str:
        return f"{settings_prefix(self.table_id)}{self.changed_ms:015d}-{secrets.token_hex(4)}"
