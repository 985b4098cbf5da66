"""Consumed capacity, computed from item sizes as DynamoDB does.

* A read unit covers 4 KB read strongly consistently; eventually consistent
  reads cost half.  GetItem charges the item's size rounded up to 4 KB (one
  unit when there is no item); Query and Scan charge the summed size of every
  item they read, rounded up once.
* A write unit covers 1 KB; a write charges the larger of the old and new
  item, rounded up (at least one unit).
* Transactions charge twice: a prepare and a commit.

Nothing is throttled: capacity is reported, not enforced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024


def read_units(size: int, consistent: bool, minimum_one: bool = True) -> float:
    units = math.ceil(size / READ_UNIT_BYTES)
    if minimum_one:
        units = max(units, 1)
    return units if consistent else units / 2


def write_units(*sizes: int) -> float:
    return float(max(1, math.ceil(max(sizes, default=0) / WRITE_UNIT_BYTES)))


@dataclass
class Consumed:
    """Capacity consumed on one table (and its indexes) by one request."""

    table_name: str
    read: float = 0.0
    write: float = 0.0
    indexes: dict[str, tuple[bool, float, float]] = field(default_factory=dict)  # name -> (local, r, w)

    def add(self, other: Consumed) -> None:
        self.read += other.read
        self.write += other.write
        for name, (local, r, w) in other.indexes.items():
            _, r0, w0 = self.indexes.get(name, (local, 0.0, 0.0))
            self.indexes[name] = (local, r0 + r, w0 + w)

    def to_wire(self, mode: str | None, split: bool = False) -> dict[str, Any] | None:
        """The ConsumedCapacity structure for ReturnConsumedCapacity=mode.

        ``split`` adds ReadCapacityUnits / WriteCapacityUnits, which DynamoDB
        reports for transactions only.
        """
        if mode not in ("TOTAL", "INDEXES"):
            return None
        index_read = sum(r for _, r, _ in self.indexes.values())
        index_write = sum(w for _, _, w in self.indexes.values())
        wire: dict[str, Any] = {"TableName": self.table_name}
        wire.update(_units(self.read + index_read, self.write + index_write, split))
        if mode == "INDEXES":
            wire["Table"] = _units(self.read, self.write, split)
            for name, (local, r, w) in self.indexes.items():
                key = "LocalSecondaryIndexes" if local else "GlobalSecondaryIndexes"
                wire.setdefault(key, {})[name] = _units(r, w, split)
        return wire


def _units(read: float, write: float, split: bool) -> dict[str, float]:
    units: dict[str, float] = {"CapacityUnits": read + write}
    if not split:
        return units
    if read:
        units["ReadCapacityUnits"] = read
    if write:
        units["WriteCapacityUnits"] = write
    return units
