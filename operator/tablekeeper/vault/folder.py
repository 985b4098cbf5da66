"""FolderStore: an object store in a local folder (``file:///abs/path``).

Each key is a file under the root, its segments folders.  A put writes a
temporary file beside the target (named with a leading dot, which no key
has, so it never lists), fsyncs it, renames it into place (or, for
``if_absent``, hard-links it, which fails atomically when the name exists)
and fsyncs the folder: a reader sees the whole object or nothing, and once
put returns the object survives a power loss.  Folders are created mode 0700
and objects mode 0600; folders left empty by a delete are removed.

A delete is not fsynced: a crash right after one may bring the object back,
which a later delete removes again.  Temporary files of a put that crashed
stay behind (invisible to ``list``) until removed by hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from tablekeeper.vault.errors import (
    ObjectExists,
    ObjectNotFound,
    StoreFull,
    StoreUnavailable,
    VaultError,
)
from tablekeeper.vault.store import ObjectInfo, check_key, key_problem

TEMP_PREFIX = ".tk-tmp-"
DIR_MODE = 0o700
FILE_MODE = 0o600

_UNAVAILABLE = {
    errno.ETIMEDOUT,
    errno.ESTALE,
    errno.ENOTCONN,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


def os_error(verb: str, what: str, error: OSError) -> VaultError:
    """Translate an OSError into the vault's hierarchy: "verb what: cause (ERRNO)"."""
    code = error.errno or 0
    name = errno.errorcode.get(code, str(code))
    if code == errno.ENOSPC:
        return StoreFull(f"{verb} {what}: disk full ({name})")
    if code == errno.EDQUOT:
        return StoreFull(f"{verb} {what}: disk quota exceeded ({name})")
    if code in (errno.EACCES, errno.EPERM):
        on = f" on {error.filename}" if error.filename else ""
        return VaultError(f"{verb} {what}: permission denied ({name}){on}")
    if code == errno.EROFS:
        return VaultError(f"{verb} {what}: read-only file system ({name})")
    if code in _UNAVAILABLE:
        return StoreUnavailable(f"{verb} {what}: {error.strerror} ({name})")
    return VaultError(f"{verb} {what}: {error.strerror or error} ({name})")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a new, renamed or linked file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SYNC_EVERY = 256 * 1024  # bytes written between two flushes of a large object


def write_temp(directory: Path, data: bytes, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to a new temporary file in ``directory`` and fsync it; removed on failure."""
    temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        unsynced = 0
        while view:
            written = os.write(fd, view[:SYNC_EVERY])
            view = view[written:]
            unsynced += written
            if unsynced >= SYNC_EVERY and view:
                # Flush as we go: on ext4 an engine's commit (fsync) that comes meanwhile waits for
                # every dirty page of this file; in small steps it waits for little.
                os.fdatasync(fd)
                unsynced = 0
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp)
        raise
    os.close(fd)
    return temp


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class FolderStore:
    """The ObjectStore seam (see ``tablekeeper.vault.store``) over a local folder."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = self.root.as_uri()
        if self.root.exists() and not self.root.is_dir():
            raise VaultError(f"open {self.url}: not a folder")
        if create:
            try:
                self._make_folders(self.root)
            except OSError as error:
                raise os_error("create vault folder", self.url, error) from error
        if not self.root.is_dir():
            raise StoreUnavailable(f"open {self.url}: no such folder")

    def __repr__(self) -> str:
        return f"FolderStore({str(self.root)!r})"

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        path = self._path("put", key)
        what = self._where(key)
        if path.is_dir():
            raise VaultError(f"put {what}: the key is a folder of other objects")
        try:
            temp = self._write_beside(path, data)
            try:
                if if_absent:
                    try:
                        os.link(temp, path)
                    except FileExistsError:
                        raise ObjectExists(f"put {what}: already exists") from None
                else:
                    os.replace(temp, path)
            finally:
                _unlink_quietly(temp)
            fsync_dir(path.parent)
        except OSError as error:
            raise os_error("put", what, error) from error

    def get(self, key: str) -> bytes:
        path = self._path("get", key)
        try:
            with open(path, "rb") as file:
                return file.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"get {self._where(key)}: no such object") from None
        except OSError as error:
            raise os_error("get", self._where(key), error) from error

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path("head", key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise os_error("head", self._where(key), error) from error
        if not stat.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            raise StoreUnavailable(f"list {self.url}: no such folder")
        return self._walk(self.root, "", prefix)

    def delete(self, key: str) -> None:
        path = self._path("delete", key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as error:
            if error.errno == errno.EISDIR:
                return
            raise os_error("delete", self._where(key), error) from error
        self._remove_empty_folders(path.parent)

    # -- internals ---------------------------------------------------------

    def _where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _path(self, verb: str, key: str) -> Path:
        check_key(key, verb, f"{self.url}/")
        return self.root.joinpath(*key.split("/"))

    def _write_beside(self, path: Path, data: bytes) -> Path:
        """A fsynced temporary file in the target's folder, creating the folder if need be.

        A concurrent delete may remove a just-created empty folder; then the
        folder is made again.
        """
        for _attempt in range(5):
            self._make_folders(path.parent)
            try:
                return write_temp(path.parent, data)
            except FileNotFoundError:
                continue
        raise VaultError(f"put {self.url}: folder {path.parent} keeps disappearing")

    def _make_folders(self, folder: Path) -> None:
        """Create ``folder`` and its missing parents durably (mode 0700)."""
        missing: list[Path] = []
        current = folder
        while not current.is_dir():
            missing.append(current)
            if current == current.parent:
                break
            current = current.parent
        for created in reversed(missing):
            try:
                os.mkdir(created, DIR_MODE)
            except FileExistsError:
                if not created.is_dir():
                    raise VaultError(
                        f"put {self.url}: {created} is an object, so it cannot hold other objects"
                    ) from None
            fsync_dir(created.parent)

    def _remove_empty_folders(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents:
            try:
                os.rmdir(folder)
            except OSError:
                return
            folder = folder.parent

    def _walk(self, folder: Path, relative: str, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``folder`` whose key starts with ``prefix``, in key order.

        Sorting each folder's entries by name, with "/" appended to folder
        names, gives the order of the full keys without holding them all.
        """
        try:
            with os.scandir(folder) as entries:
                named = [
                    (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
                    for entry in entries
                    if not entry.name.startswith(".")
                ]
        except FileNotFoundError:
            if folder == self.root:
                raise StoreUnavailable(f"list {self.url}: no such folder") from None
            return
        except OSError as error:
            raise os_error("list", f"{self.url}/{relative}", error) from error
        named.sort(key=lambda pair: pair[0])
        for name, entry in named:
            key = relative + name
            if name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
                continue
            if not key.startswith(prefix) or key_problem(key) is not None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise os_error("list", self._where(key), error) from error
            if stat.S_ISREG(st.st_mode):
                yield ObjectInfo(key, st.st_size, st.st_mtime)
