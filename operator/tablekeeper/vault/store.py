"""The object-store seam: what the vault needs from a place that keeps bytes.

A store is a flat namespace of keys to immutable byte strings, and promises:

* ``put(key, data)`` is atomic and durable: a reader sees the whole object or
  nothing (never a prefix), and once ``put`` returns the object survives a
  crash of this process, of the machine (FolderStore fsyncs) or of the
  connection (S3 acknowledges only stored objects).  A plain ``put``
  replaces an existing object.  With ``if_absent=True`` it raises
  ``ObjectExists`` when the key exists, atomically: of several writers
  racing for one key exactly one wins (S3Store: through the store's
  conditional write, ``If-None-Match: *``; on a store that answers that it
  does not implement one, a HEAD then PUT that is only best-effort, logged
  as such).
* ``get(key)`` returns the whole object or raises ``ObjectNotFound``.
* ``head(key)`` returns its ``ObjectInfo`` or ``None`` when it is missing.
* ``list(prefix)`` yields the ``ObjectInfo`` of every object whose key starts
  with ``prefix`` (a plain string prefix, not only whole segments), sorted
  by key (code-point order, which is S3's UTF-8 byte order); it pages
  internally and reads lazily.  Objects put or deleted while a listing runs
  may or may not appear.
* ``delete(key)`` removes an object; a missing one is not an error.

Keys (checked by ``check_key``, the same rules for every backend): 1 to 1024
UTF-8 bytes of printable characters without a backslash, segments separated
by ``/``, no segment empty, ``.`` or ``..``, and none starting with a dot
(reserved for a backend's own temporary files, so those never list).  A key
is never also the folder of other keys: FolderStore cannot hold both ``a``
and ``a/b``, and raises ``VaultError`` when asked to.

Errors (``tablekeeper.vault.errors``): the ones named above, ``StoreFull``
when the store has no room, ``StoreUnavailable`` when it cannot be reached
or refuses our credentials (the message says which), ``VaultError`` for
anything else (an invalid key, a folder we may not write, ...).  No
exception from a lower layer (OSError, botocore) ever crosses the seam.

Every method is safe to call from several threads at once.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from tablekeeper.vault.errors import IntegrityError, ObjectExists, ObjectNotFound, VaultError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024

# probe() writes here; nothing else does, and a vault's garbage collection may remove it.
PROBE_PREFIX = "_probe/"

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """An object as listed: its key (relative to the store), size in bytes, mtime in epoch seconds."""

    key: str
    size: int
    modified: float


class ObjectStore(Protocol):
    """A flat, durable map of keys to immutable bytes; see the module docstring for the contract."""

    url: str

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically and durably.

        ``if_absent``: raise ``ObjectExists`` instead of replacing an existing object.
        """
        ...

    def get(self, key: str) -> bytes:
        """The whole object; ``ObjectNotFound`` when it does not exist."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size and mtime, or ``None`` when it does not exist."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key, read lazily."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...


def check_key(key: str, verb: str = "use", where: str = "") -> str:
    """Return ``key`` if it follows the key rules, else raise ``VaultError`` saying why."""
    problem = key_problem(key)
    if problem is not None:
        raise VaultError(f"{verb} {where}{key!r}: invalid key: {problem}")
    return key


def key_problem(key: str) -> str | None:
    """Why ``key`` breaks the key rules, or ``None`` when it is valid."""
    if not key:
        return "empty"
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if len(encoded) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if _BAD_CHARS.search(key):
        return "control character or backslash"
    if key.startswith("/"):
        return "absolute (starts with '/')"
    for segment in key.split("/"):
        if segment == "":
            return "empty segment"
        if segment in (".", ".."):
            return f"segment {segment!r}"
        if segment.startswith("."):
            return "segment starts with '.' (reserved)"
    return None


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> ObjectStore:
    """The store a vault URL names.

    ``file:///abs/path`` is a ``FolderStore`` (the folder is created, mode
    0700).  ``s3://bucket[/prefix]`` is an ``S3Store``; endpoint, region and
    credentials come from the arguments, else from the standard AWS
    environment (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION``
    / ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
    then boto3's own chain: profiles, web identity, instance roles).
    Anything else raises ``VaultError``.  Opening an S3 store does not
    contact it: ``probe`` does.
    """
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise VaultError(f"open vault {url!r}: a vault URL has no query or fragment")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise VaultError(
                f"open vault {url!r}: a file URL names a local folder: file:///absolute/path"
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise VaultError(f"open vault {url!r}: the folder must be an absolute path")
        from tablekeeper.vault.folder import FolderStore

        return FolderStore(path)
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise VaultError(f"open vault {url!r}: no bucket: use s3://bucket/prefix")
        try:
            from tablekeeper.vault.s3 import S3Store
        except ImportError as error:
            raise VaultError(f"open vault {url!r}: S3 vaults need boto3 ({error})") from error

        return S3Store(
            bucket,
            unquote(parts.path).strip("/"),
            endpoint_url=endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None,
            region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
    raise VaultError(
        f"open vault {url!r}: unsupported URL: use file:///absolute/path or s3://bucket/prefix"
    )


def probe(store: ObjectStore) -> None:
    """Check that ``store`` works end to end, raising the precise error when it does not.

    Writes a small random object under ``PROBE_PREFIX`` with ``if_absent``,
    reads it back (``IntegrityError`` when it differs), checks ``head``,
    checks that a second ``if_absent`` put is refused, deletes it and checks
    it is gone.  A store that silently ignores conditional writes is logged
    as a warning, not refused: some S3-compatible stores do, and backups
    stay correct on them as long as one writer writes a vault at a time.
    """
    key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
    data = secrets.token_bytes(64)
    store.put(key, data, if_absent=True)
    try:
        if store.get(key) != data:
            raise IntegrityError(f"probe {store.url}: the object read back differs from the one written")
        info = store.head(key)
        if info is None or info.size != len(data):
            raise VaultError(f"probe {store.url}: head of a just-written object answered {info!r}")
        try:
            store.put(key, data, if_absent=True)
        except ObjectExists:
            pass
        else:
            log.warning(
                "probe %s: the store ignored a conditional write (If-None-Match); "
                "two writers of one vault could overwrite each other's objects",
                store.url,
            )
    finally:
        store.delete(key)
    if store.head(key) is not None:
        raise VaultError(f"probe {store.url}: an object was still there after delete")
    try:
        store.get(key)
    except ObjectNotFound:
        return
    raise VaultError(f"probe {store.url}: get of a deleted object did not raise ObjectNotFound")
