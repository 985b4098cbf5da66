"""The backup format: object names, the sealed envelope, and the catalog objects' codecs.

A vault holds five kinds of backup objects (docs/backup-format.md draws them)::

    manifests/<backup id>             the backup: what it is and every object it needs
    maps/<backup id>.<nonce>          its chunks in key order, as runs of (pack, ordinal, count)
    indexes/<backup id>.<nonce>       the chunk ids of the packs that backup wrote (for dedup)
    packs/<hh>/<32 hex>               chunks (items in key order), a few MB, shared by backups
    tombstones/<backup id>            a deleted backup's manifest, kept for the GC's grace

Every object is written once (``if_absent=True``) and never changed; a
backup exists exactly when its manifest does, and the manifest is written
last.  Other prefixes (``_probe/``, a future ``pitr/``) are not ours: garbage
collection never touches them.

**Envelope.**  Every object is::

    b"TKV1" | kind (1 byte) | len(wrapped) (u16 BE) | wrapped data key | sealed body

The data key is 32 random bytes, new for every object, wrapped by the vault
key (``crypto.wrap_key``); the body is ``crypto.seal`` (zstd, AES-256-GCM,
checksum) under that data key.  Both are authenticated with the object's
*binding*: a format tag, the kind, the object's name and -- for manifests,
maps, indexes and tombstones -- the backup id; the seal also covers the
header bytes.  So an object copied to another name or another backup's name,
altered, truncated or given a foreign header fails to open with
``IntegrityError`` (raised here as ``BackupDamaged``, which names the object
and the backup), and a wrong vault key is ``WrongKey`` (told apart by the key
id in the wrapped key's header), never garbage.  The issue's "a data key per
backup" is met more finely: no data key is ever used for more than one
object, so none is shared between backups.

**Bodies.**  Manifests are JSON (small, readable by people's tools after
decryption), and a tombstone's body is the deleted backup's manifest; maps
and indexes are little-endian binary arrays,
because an incremental backup's map is its one per-backup cost that grows
with the table.  Packs are in ``tablekeeper.vault.chunks``.
"""

from __future__ import annotations

import re
import secrets
import struct
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from tablekeeper.vault import crypto
from tablekeeper.vault.chunks import u32_array, u32_bytes
from tablekeeper.vault.errors import IntegrityError, VaultError, WrongKey

FORMAT_VERSION: Final = 1
MAGIC: Final = b"TKV1"
_HEADER = struct.Struct(">4scH")
_BINDING_TAG: Final = b"tablekeeper-vault-1"

KIND_MANIFEST: Final = b"M"
KIND_MAP: Final = b"A"
KIND_INDEX: Final = b"I"
KIND_PACK: Final = b"P"
KIND_TOMBSTONE: Final = b"T"
KIND_SEGMENT: Final = b"S"  # PITR: a run of change-log records (tablekeeper.vault.pitr_format)
KIND_SETTINGS: Final = b"W"  # PITR: a table's window settings
KIND_NAMES: Final = {
    KIND_MANIFEST: "manifest",
    KIND_MAP: "map",
    KIND_INDEX: "index",
    KIND_PACK: "pack",
    KIND_TOMBSTONE: "tombstone",
    KIND_SEGMENT: "log segment",
    KIND_SETTINGS: "PITR settings",
}

MANIFESTS: Final = "manifests/"
MAPS: Final = "maps/"
INDEXES: Final = "indexes/"
PACKS: Final = "packs/"
TOMBSTONES: Final = "tombstones/"
# The prefixes of objects that belong to backups and that garbage collection may remove.
DATA_PREFIXES: Final = (MAPS, INDEXES, PACKS)

CHUNK_ID_BYTES: Final = 16  # content ids are truncated to 128 bits, as kopia's default hash is

BACKUP_ID = re.compile(r"^[0-9]{14}-[0-9a-f]{8}$")
_PACK_NAME = re.compile(r"^packs/[0-9a-f]{2}/[0-9a-f]{32}$")
_DATA_KEY_BYTES: Final = 32


class BackupNotFound(VaultError):
    """No backup with that id in the vault (no manifest): "verb backup ID: not found"."""


class BackupExists(VaultError):
    """A backup with that id is already in the vault (its manifest exists)."""


class BackupDamaged(IntegrityError):
    """An object a backup needs is missing, altered, truncated, swapped or malformed.

    ``object_key`` names the object and ``backup_id`` the backup being read
    (``None`` when no one backup was); the message says both, and ``cause``
    why.
    """

    def __init__(self, message: str, *, object_key: str, backup_id: str | None, cause: str = "") -> None:
        super().__init__(message)
        self.object_key = object_key
        self.backup_id = backup_id
        self.cause = cause or message


class BackupAborted(VaultError):
    """A backup writer was aborted, failed, or ran past its deadline; nothing became visible."""


# -- names and ids -------------------------------------------------------


def new_backup_id(now: float, nonce: str | None = None) -> str:
    """A DynamoDB-like backup id: milliseconds since the epoch (14 digits), '-', 8 random hex.

    Ids sort by creation time, so listing ``manifests/`` lists backups oldest first.
    """
    millis = int(now * 1000)
    if not 0 <= millis < 10**14:
        raise ValueError(f"new backup id: time {now!r} is out of range")
    nonce = secrets.token_hex(4) if nonce is None else nonce
    backup_id = f"{millis:014d}-{nonce}"
    check_backup_id(backup_id)
    return backup_id


def check_backup_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        raise VaultError(f"use backup {backup_id!r}: not a backup id (14 digits, '-', 8 lowercase hex)")
    return backup_id


def backup_id_time(backup_id: str) -> float:
    """When a backup id was made (epoch seconds), from its first 14 digits."""
    return int(check_backup_id(backup_id)[:14]) / 1000


def manifest_name(backup_id: str) -> str:
    return MANIFESTS + backup_id


def tombstone_name(backup_id: str) -> str:
    return TOMBSTONES + backup_id


def new_map_name(backup_id: str) -> str:
    return f"{MAPS}{backup_id}.{secrets.token_hex(4)}"


def new_index_name(backup_id: str) -> str:
    return f"{INDEXES}{backup_id}.{secrets.token_hex(4)}"


def new_pack_name() -> str:
    token = secrets.token_hex(16)
    return f"{PACKS}{token[:2]}/{token}"


def is_pack_name(name: str) -> bool:
    return bool(_PACK_NAME.match(name))


def backup_arn(table_arn: str, backup_id: str) -> str:
    """A backup's ARN, as DynamoDB forms it: ``<table ARN>/backup/<id>``."""
    return f"{table_arn}/backup/{backup_id}"


def backup_id_of_arn(arn: str) -> str | None:
    """The backup id an ARN names (``backup_arn``), None if it names none."""
    _, found, backup_id = arn.rpartition("/backup/")
    if not found or not BACKUP_ID.match(backup_id):
        return None
    return backup_id


def backup_id_of(name: str) -> str | None:
    """The backup id a manifest/map/index/tombstone name carries (None for other names)."""
    for prefix in (MANIFESTS, TOMBSTONES, MAPS, INDEXES):
        if name.startswith(prefix):
            candidate = name[len(prefix):].split(".", 1)[0]
            return candidate if BACKUP_ID.match(candidate) else None
    return None


# -- the envelope --------------------------------------------------------


def _binding(kind: bytes, name: str, backup_id: str) -> bytes:
    return b"\x00".join((_BINDING_TAG, kind, name.encode(), backup_id.encode()))


def seal_object(body: bytes, *, kind: bytes, name: str, backup_id: str, key: crypto.VaultKey) -> bytes:
    """The stored bytes of an object: header with a fresh wrapped data key, then the sealed body."""
    binding = _binding(kind, name, backup_id)
    data_key = secrets.token_bytes(_DATA_KEY_BYTES)
    wrapped = crypto.wrap_key(data_key, key, binding)
    header = _HEADER.pack(MAGIC, kind, len(wrapped)) + wrapped
    return header + crypto.seal(body, data_key, binding + b"\x00" + header)


def open_object(
    data: bytes,
    *,
    kind: bytes,
    name: str,
    backup_id: str,
    key: crypto.VaultKey,
    context: str | None,
) -> bytes:
    """The body of an object made by ``seal_object`` with the same kind, name and backup id.

    ``context`` is the backup being read, for the error message.  Raises
    ``BackupDamaged`` when the object is not what was written there and
    ``WrongKey`` when ``key`` is not the vault key it was sealed with.
    """
    what = KIND_NAMES[kind]
    if len(data) < _HEADER.size:
        raise damaged(context, name, f"{what} is truncated ({len(data)} bytes)")
    magic, found_kind, wrapped_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise damaged(context, name, f"not a tablekeeper vault object (magic {magic!r})")
    if found_kind != kind:
        found = KIND_NAMES.get(found_kind, repr(found_kind))
        raise damaged(context, name, f"holds a {found}, not a {what}")
    end = _HEADER.size + wrapped_len
    if len(data) < end:
        raise damaged(context, name, f"{what} is truncated ({len(data)} bytes)")
    binding = _binding(kind, name, backup_id)
    try:
        data_key = crypto.unwrap_key(data[_HEADER.size:end], key, binding)
        return crypto.open_sealed(data[end:], data_key, binding + b"\x00" + data[:end])
    except IntegrityError as error:
        raise damaged(context, name, f"{what} does not open: {error}") from error
    except WrongKey:
        raise
    except VaultError as error:  # a sound object this version cannot read
        raise VaultError(f"read {name}: {error}") from error


def damaged(context: str | None, name: str, cause: str) -> BackupDamaged:
    where = f"read backup {context}" if context else "read vault"
    return BackupDamaged(f"{where}: {name}: {cause}", object_key=name, backup_id=context, cause=cause)


# -- manifests -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackRef:
    """A pack a backup reads: its name, the index object holding its chunk ids, its stored size."""

    name: str
    index: str
    size: int


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """Everything about one backup: the catalog entry and the objects it needs.

    ``definition`` is the source table's ``TableDefinition.to_json()``;
    ``sequence`` the change-log sequence number the snapshot is as of.
    ``item_bytes`` sums the stored items' lengths and ``key_bytes`` their
    keys'.  ``packs`` are the packs the map refers to, in the map's
    numbering; ``indexes`` the index objects covering them (and the sizes of
    both, so GC and ``describe`` never list the store).  ``written_bytes`` is
    what this backup added to the vault (its packs, index and map; the
    manifest aside), ``stored_bytes`` everything it needs there.
    ``digest`` is SHA-256 over the SHA-256 of each of the backup's chunks in
    order (a chunk's framing delimits it, so this names the whole item
    stream): a reader that recomputes it has read exactly this backup.
    """

    backup_id: str
    name: str
    backup_type: str
    created: float
    sequence: int
    table_name: str
    table_arn: str
    table_id: str
    definition: str
    item_count: int
    item_bytes: int
    key_bytes: int
    chunk_count: int
    new_chunk_count: int
    digest: str
    map: str
    map_size: int
    packs: tuple[PackRef, ...]
    indexes: tuple[tuple[str, int], ...]
    written_bytes: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    @property
    def backup_arn(self) -> str:
        return backup_arn(self.table_arn, self.backup_id)

    @property
    def stored_bytes(self) -> int:
        """The bytes of every object this backup needs, shared ones included (manifest aside)."""
        return self.map_size + sum(p.size for p in self.packs) + sum(size for _, size in self.indexes)

    def references(self) -> frozenset[str]:
        """Every object this backup needs besides its manifest."""
        return frozenset([self.map, *(p.name for p in self.packs), *(name for name, _ in self.indexes)])


def encode_manifest(manifest: BackupManifest) -> bytes:
    plain: dict[str, Any] = {
        "format": manifest.format,
        "backup_id": manifest.backup_id,
        "name": manifest.name,
        "backup_type": manifest.backup_type,
        "created": manifest.created,
        "sequence": manifest.sequence,
        "table": {"name": manifest.table_name, "arn": manifest.table_arn, "id": manifest.table_id},
        "definition": manifest.definition,
        "annotations": dict(manifest.annotations),
        "items": {"count": manifest.item_count, "bytes": manifest.item_bytes,
                  "key_bytes": manifest.key_bytes},
        "chunks": {"count": manifest.chunk_count, "new": manifest.new_chunk_count, "digest": manifest.digest},
        "map": {"name": manifest.map, "size": manifest.map_size},
        "packs": [[p.name, p.index, p.size] for p in manifest.packs],
        "indexes": [[name, size] for name, size in manifest.indexes],
        "written_bytes": manifest.written_bytes,
    }
    return orjson.dumps(plain)


def decode_manifest(body: bytes, *, name: str, backup_id: str) -> BackupManifest:
    try:
        plain = orjson.loads(body)
        if plain["format"] != FORMAT_VERSION:
            raise damaged(backup_id, name, f"manifest format {plain['format']!r} is not {FORMAT_VERSION}; "
                          "a newer tablekeeper wrote it")
        manifest = BackupManifest(
            backup_id=plain["backup_id"],
            name=plain["name"],
            backup_type=plain["backup_type"],
            created=float(plain["created"]),
            sequence=int(plain["sequence"]),
            table_name=plain["table"]["name"],
            table_arn=plain["table"]["arn"],
            table_id=plain["table"]["id"],
            definition=plain["definition"],
            annotations={str(k): str(v) for k, v in plain["annotations"].items()},
            item_count=int(plain["items"]["count"]),
            item_bytes=int(plain["items"]["bytes"]),
            key_bytes=int(plain["items"]["key_bytes"]),
            chunk_count=int(plain["chunks"]["count"]),
            new_chunk_count=int(plain["chunks"]["new"]),
            digest=plain["chunks"]["digest"],
            map=plain["map"]["name"],
            map_size=int(plain["map"]["size"]),
            packs=tuple(PackRef(p[0], p[1], int(p[2])) for p in plain["packs"]),
            indexes=tuple((i[0], int(i[1])) for i in plain["indexes"]),
            written_bytes=int(plain["written_bytes"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as error:
        raise damaged(backup_id, name, f"malformed manifest ({type(error).__name__}: {error})") from error
    if manifest.backup_id != backup_id:
        raise damaged(backup_id, name, f"manifest is of backup {manifest.backup_id}")
    return manifest


# -- maps ----------------------------------------------------------------

_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Run:
    """``count`` consecutive chunks of the pack numbered ``pack`` (in the manifest), from ``first``."""

    pack: int
    first: int
    count: int


def encode_map(runs: array) -> bytes:  # type: ignore[type-arg]
    """A map body: the run count, then (pack, first, count) u32 triples (``runs`` is array('I'))."""
    return _U32.pack(len(runs) // 3) + u32_bytes(runs)


def decode_map(body: bytes, *, name: str, backup_id: str, packs: int) -> list[Run]:
    if len(body) < 4:
        raise damaged(backup_id, name, "malformed map (no run count)")
    (count,) = _U32.unpack_from(body)
    if len(body) != 4 + 12 * count:
        raise damaged(backup_id, name, f"malformed map ({len(body)} bytes for {count} runs)")
    data = u32_array(body[4:])
    runs = [Run(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]
    for run in runs:
        if run.pack >= packs or run.count == 0:
            raise damaged(backup_id, name, f"malformed map (run {run} outside the manifest's {packs} packs)")
    return runs


# -- indexes -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackIndex:
    """The chunk ids of one pack, in the pack's order (``CHUNK_ID_BYTES`` each, concatenated)."""

    pack: str
    ids: bytes

    @property
    def count(self) -> int:
        return len(self.ids) // CHUNK_ID_BYTES

    def id_at(self, ordinal: int) -> bytes:
        return self.ids[ordinal * CHUNK_ID_BYTES:(ordinal + 1) * CHUNK_ID_BYTES]


def encode_index(packs: Sequence[PackIndex]) -> bytes:
    """An index body: pack count; per pack its name (u8 length) and chunk count (u32); then all ids."""
    head = [_U32.pack(len(packs))]
    for pack in packs:
        raw = pack.pack.encode()
        head.append(struct.pack("<B", len(raw)) + raw + _U32.pack(pack.count))
    return b"".join(head) + b"".join(p.ids for p in packs)


def decode_index(body: bytes, *, name: str, context: str | None) -> list[PackIndex]:
    try:
        (count,) = _U32.unpack_from(body)
        pos = 4
        heads: list[tuple[str, int]] = []
        for _ in range(count):
            (length,) = struct.unpack_from("<B", body, pos)
            pack = body[pos + 1:pos + 1 + length].decode()
            (chunks,) = _U32.unpack_from(body, pos + 1 + length)
            pos += 1 + length + 4
            if not is_pack_name(pack):
                raise ValueError(f"{pack!r} is not a pack name")
            heads.append((pack, chunks))
        result = []
        for pack, chunks in heads:
            end = pos + chunks * CHUNK_ID_BYTES
            if end > len(body):
                raise ValueError("ids run past the end")
            result.append(PackIndex(pack, body[pos:end]))
            pos = end
        if pos != len(body):
            raise ValueError(f"{len(body) - pos} bytes left over")
    except (struct.error, UnicodeDecodeError, ValueError) as error:
        raise damaged(context, name, f"malformed index ({error})") from error
    return result


# -- tombstones ----------------------------------------------------------


def encode_tombstone(manifest: BackupManifest) -> bytes:
    """A tombstone's body is the deleted backup's manifest: what it was and what it referred to."""
    return encode_manifest(manifest)


def decode_tombstone(body: bytes, *, name: str, backup_id: str) -> BackupManifest:
    try:
        return decode_manifest(body, name=name, backup_id=backup_id)
    except BackupDamaged as error:
        raise damaged(None, name, error.cause.replace("manifest", "tombstone")) from error
