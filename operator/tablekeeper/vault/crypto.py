"""The vault's cryptography: sealed objects, wrapped data keys, content ids, the vault key.

A sealed object is the plaintext compressed with zstd (kept raw when that
does not make it smaller), encrypted with AES-256-GCM under a random 96-bit
nonce, framed by a header and followed by a checksum::

    offset  size  field
    0       4     magic b"TKVS"
    4       1     format version (1)
    5       1     compression: 0 none, 1 zstd
    6       8     key id: the first 8 bytes of HMAC-SHA256(key, "tablekeeper/v1 key id")
    14      12    nonce
    26      8     plaintext length (big-endian; bounds decompression)
    34      8     body length n (ciphertext with its 16-byte GCM tag)
    42      n     body
    42+n    32    SHA-256 of every byte before it

The header is authenticated along with the caller's AAD, which binds the
object to its name and backup (``b"tablekeeper/v1|backups/ID/manifest"``),
so an object swapped for another, or moved to another name, fails
authentication.  ``open_sealed`` checks, in this order: the framing and the
checksum (``IntegrityError`` for an altered, truncated or extended object,
before any decryption, and ``verify_sealed`` does just that much without a
key), then the key id (``WrongKey``), then the GCM tag (``IntegrityError``:
the object was forged or belongs under another name).  It never returns
anything but the exact plaintext that was sealed.

Keys: the *vault key* (``VaultKey``, 32 random bytes kept in a key file
outside the vault) wraps a *data key* per backup (``wrap_key``), and data
keys seal objects.  ``content_id`` names content with a keyed hash, so equal
content is visible only to someone who holds the vault key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tablekeeper.vault.errors import IntegrityError, StoreFull, VaultError, WrongKey

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_BYTES = 8
CHECKSUM_BYTES = 32
MAGIC = b"TKVS"
FORMAT_VERSION = 1
ZSTD_LEVEL = 3

NO_COMPRESSION = 0
ZSTD = 1

_HEADER = struct.Struct(">4sBB8s12sQQ")
HEADER_BYTES = _HEADER.size
OVERHEAD = HEADER_BYTES + TAG_BYTES + CHECKSUM_BYTES

_KEY_ID_LABEL = b"tablekeeper/v1 key id"
_CONTENT_ID_LABEL = b"tablekeeper/v1 content id"
_WRAP_LABEL = b"tablekeeper/v1 wrapped data key|"


def key_fingerprint(key: bytes) -> bytes:
    """The key id of a key: a short, non-secret HMAC of a constant."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]


def new_data_key() -> bytes:
    """A fresh random key to seal one backup's objects with."""
    return secrets.token_bytes(KEY_BYTES)


def _check_key(verb: str, key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise VaultError(f"{verb}: the key is {len(key)} bytes, not {KEY_BYTES}")


# -- sealing -------------------------------------------------------------------


def seal(plaintext: bytes, key: bytes, aad: bytes) -> bytes:
    """Compress, encrypt and checksum ``plaintext`` under ``key``, bound to ``aad``."""
    _check_key("seal object", key)
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(plaintext)
    if len(compressed) < len(plaintext):
        compression, body = ZSTD, compressed
    else:
        compression, body = NO_COMPRESSION, plaintext
    nonce = secrets.token_bytes(NONCE_BYTES)
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, compression, key_fingerprint(key), nonce,
        len(plaintext), len(body) + TAG_BYTES,
    )
    ciphertext = AESGCM(key).encrypt(nonce, body, header + aad)
    framed = header + ciphertext
    return framed + hashlib.sha256(framed).digest()


@dataclass(frozen=True, slots=True)
class SealedHeader:
    """The header of a sealed object whose framing and checksum are sound."""

    version: int
    compression: int
    key_id: str
    nonce: bytes
    plaintext_length: int
    body_length: int


def verify_sealed(sealed: bytes) -> SealedHeader:
    """Check a sealed object's framing and checksum without a key; ``IntegrityError`` if bad."""
    if len(sealed) < OVERHEAD:
        raise IntegrityError(f"open sealed object: {len(sealed)} bytes is too short to be one")
    magic, version, compression, key_id, nonce, plaintext_length, body_length = _HEADER.unpack_from(sealed)
    if magic != MAGIC:
        raise IntegrityError("open sealed object: not a sealed object (bad magic)")
    expected = HEADER_BYTES + body_length + CHECKSUM_BYTES
    if len(sealed) != expected:
        state = "truncated" if len(sealed) < expected else "extended"
        raise IntegrityError(
            f"open sealed object: {state}: {len(sealed)} bytes where the header says {expected}"
        )
    if not hmac.compare_digest(hashlib.sha256(sealed[:-CHECKSUM_BYTES]).digest(), sealed[-CHECKSUM_BYTES:]):
        raise IntegrityError("open sealed object: checksum mismatch: the object is corrupted")
    if version != FORMAT_VERSION:
        raise VaultError(
            f"open sealed object: format version {version} is not one this tablekeeper reads "
            f"({FORMAT_VERSION})"
        )
    if compression not in (NO_COMPRESSION, ZSTD) or body_length < TAG_BYTES:
        raise VaultError(
            f"open sealed object: unknown compression {compression} or body length {body_length}"
        )
    return SealedHeader(version, compression, key_id.hex(), nonce, plaintext_length, body_length)


def open_sealed(sealed: bytes, key: bytes, aad: bytes) -> bytes:
    """The plaintext ``seal`` was given; ``IntegrityError`` or ``WrongKey``, never anything else."""
    _check_key("open sealed object", key)
    header = verify_sealed(sealed)
    given = key_fingerprint(key).hex()
    if header.key_id != given:
        raise WrongKey(f"open sealed object: it was sealed with key id {header.key_id}, not {given}")
    try:
        body = AESGCM(key).decrypt(header.nonce, sealed[HEADER_BYTES:-CHECKSUM_BYTES],
                                   sealed[:HEADER_BYTES] + aad)
    except InvalidTag:
        raise IntegrityError(
            "open sealed object: authentication failed: it was altered, or belongs under another name"
        ) from None
    if header.compression == ZSTD:
        try:
            plaintext = zstandard.ZstdDecompressor().decompress(
                body, max_output_size=header.plaintext_length
            )
        except zstandard.ZstdError as error:
            raise IntegrityError(f"open sealed object: cannot decompress: {error}") from error
    else:
        plaintext = body
    if len(plaintext) != header.plaintext_length:
        raise IntegrityError(
            f"open sealed object: {len(plaintext)} bytes where the header says {header.plaintext_length}"
        )
    return plaintext


# -- the vault key ------------------------------------------------------------------


@dataclass(frozen=True)
class VaultKey:
    """A vault's key: 32 secret bytes and their key id (a fingerprint, safe to show and store)."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key("use vault key", self.secret)
        if self.key_id != key_fingerprint(self.secret).hex():
            raise VaultError(f"use vault key: key id {self.key_id!r} does not match the secret")

    @classmethod
    def from_secret(cls, secret: bytes) -> VaultKey:
        _check_key("use vault key", secret)
        return cls(key_fingerprint(secret).hex(), bytes(secret))

    @classmethod
    def generate(cls) -> VaultKey:
        return cls.from_secret(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VaultKey:
        """Read a key file: one line of base64 (``openssl rand -base64 32`` makes one), '#' comments.

        Refuses a file that others may read or write (mode & 0o007): a key
        file belongs to its owner (and at most its group, as Kubernetes
        secret volumes with an fsGroup are).
        """
        where = f"load vault key {os.fspath(path)}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise VaultError(f"{where}: no such file") from None
        except OSError as error:
            raise VaultError(f"{where}: {error.strerror}") from error
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise VaultError(f"{where}: not a regular file")
            if st.st_mode & 0o007:
                raise VaultError(
                    f"{where}: other users may access it (mode {stat.S_IMODE(st.st_mode):04o}); "
                    f"chmod 600 {os.fspath(path)}"
                )
            if st.st_size > 4096:
                raise VaultError(f"{where}: {st.st_size} bytes is too big for a key file")
            raw = os.read(fd, 8192)
        except OSError as error:
            raise VaultError(f"{where}: {error.strerror}") from error
        finally:
            os.close(fd)
        return cls.from_secret(_parse_key_file(where, raw))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key to a new file, mode 0600, crash-safely; never replaces an existing file.

        The key is written to a temporary file beside the target, fsynced,
        hard-linked to the target name (which fails if the name exists),
        and the folder fsynced: after a crash the key file is there whole or
        not at all.
        """
        target = Path(path)
        where = f"save vault key {target}"
        if target.exists() or target.is_symlink():
            raise VaultError(f"{where}: a file is already there; refusing to overwrite a key")
        text = (
            f"# tablekeeper vault key, key id {self.key_id}\n"
            "# Keep it secret, and keep a copy away from the vault: without it no backup can be read.\n"
            f"{base64.b64encode(self.secret).decode()}\n"
        )
        temp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(6)}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(text.encode())
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, target)
            except FileExistsError:
                raise VaultError(f"{where}: a file is already there; refusing to overwrite a key") from None
            dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(f"{where}: disk full ({errno.errorcode[error.errno]})") from error
            raise VaultError(f"{where}: {error.strerror or error}") from error
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _parse_key_file(where: str, raw: bytes) -> bytes:
    hint = "a key file holds one line of base64 of 32 random bytes (openssl rand -base64 32)"
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise VaultError(f"{where}: not a key file: {hint}") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if len(lines) != 1:
        raise VaultError(f"{where}: {'no key' if not lines else 'more than one key line'}: {hint}")
    try:
        secret = base64.b64decode(lines[0], validate=True)
    except (binascii.Error, ValueError):
        raise VaultError(f"{where}: the key is not valid base64: {hint}") from None
    if len(secret) != KEY_BYTES:
        raise VaultError(f"{where}: the key is {len(secret)} bytes, not {KEY_BYTES}")
    return secret


# -- data keys and content ids ----------------------------------------------------------


def wrap_key(data_key: bytes, vault_key: VaultKey, aad: bytes) -> bytes:
    """``data_key`` sealed under the vault key, bound to ``aad`` (e.g. the backup it serves)."""
    _check_key("wrap data key", data_key)
    return seal(data_key, vault_key.secret, _WRAP_LABEL + aad)


def unwrap_key(wrapped: bytes, vault_key: VaultKey, aad: bytes) -> bytes:
    """The data key ``wrap_key`` wrapped; ``WrongKey`` when ``vault_key`` is not the one it used."""
    data_key = open_sealed(wrapped, vault_key.secret, _WRAP_LABEL + aad)
    if len(data_key) != KEY_BYTES:
        raise IntegrityError(f"unwrap data key: {len(data_key)} bytes, not a {KEY_BYTES}-byte key")
    return data_key


def content_id(plaintext: bytes, vault_key: VaultKey) -> str:
    """A keyed hash (HMAC-SHA256, hex) naming ``plaintext`` without revealing it to others."""
    subkey = hmac.new(vault_key.secret, _CONTENT_ID_LABEL, hashlib.sha256).digest()
    return hmac.new(subkey, plaintext, hashlib.sha256).hexdigest()
