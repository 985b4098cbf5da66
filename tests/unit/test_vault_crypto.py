"""Sealed objects, wrapped data keys, content ids and the vault key file (tablekeeper.vault.crypto)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tablekeeper.vault.crypto import (
    CHECKSUM_BYTES,
    HEADER_BYTES,
    KEY_BYTES,
    OVERHEAD,
    VaultKey,
    content_id,
    new_data_key,
    open_sealed,
    seal,
    unwrap_key,
    verify_sealed,
    wrap_key,
)
from tablekeeper.vault.errors import IntegrityError, VaultError, WrongKey

AAD = b"tablekeeper/v1|backups/b1/manifest"


@pytest.fixture
def key() -> bytes:
    return new_data_key()


# -- seal / open_sealed -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 1_000_000])
def test_open_sealed_returns_exactly_what_was_sealed(key: bytes, size: int) -> None:
    plaintext = os.urandom(size // 2) + b"a" * (size - size // 2)
    assert open_sealed(seal(plaintext, key, AAD), key, AAD) == plaintext


def test_compressible_data_is_stored_compressed(key: bytes) -> None:
    plaintext = b'{"pk": {"S": "user#000001"}, "name": {"S": "Ada"}}\n' * 20_000
    sealed = seal(plaintext, key, AAD)
    assert len(sealed) < len(plaintext) / 20


def test_incompressible_data_costs_only_the_fixed_overhead(key: bytes) -> None:
    plaintext = os.urandom(10_000)
    assert len(seal(plaintext, key, AAD)) == len(plaintext) + OVERHEAD


def test_sealing_twice_gives_different_bytes(key: bytes) -> None:
    assert seal(b"same", key, AAD) != seal(b"same", key, AAD)


def test_sealed_bytes_do_not_contain_the_plaintext(key: bytes) -> None:
    secret = b"credit card 4111-1111-1111-1111 " * 4
    assert b"4111-1111" not in seal(secret, key, AAD)


def test_flipping_any_bit_of_a_sealed_object_is_an_integrity_error(key: bytes) -> None:
    sealed = seal(b"the table as of sequence 42" * 3, key, AAD)
    for position in range(len(sealed)):
        for bit in (0x01, 0x80):
            altered = bytearray(sealed)
            altered[position] ^= bit
            with pytest.raises(IntegrityError):
                open_sealed(bytes(altered), key, AAD)


@pytest.mark.parametrize("keep", [0, 10, HEADER_BYTES, -1, -CHECKSUM_BYTES, -CHECKSUM_BYTES - 1])
def test_a_truncated_object_is_an_integrity_error(key: bytes, keep: int) -> None:
    sealed = seal(b"x" * 500, key, AAD)
    with pytest.raises(IntegrityError):
        open_sealed(sealed[:keep], key, AAD)


def test_an_extended_object_is_an_integrity_error(key: bytes) -> None:
    with pytest.raises(IntegrityError, match="extended"):
        open_sealed(seal(b"x", key, AAD) + b"\x00", key, AAD)


def test_corruption_is_caught_by_the_checksum_before_decryption(key: bytes) -> None:
    sealed = bytearray(seal(b"payload" * 100, key, AAD))
    sealed[HEADER_BYTES + 3] ^= 0xFF
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        open_sealed(bytes(sealed), key, AAD)


def test_an_altered_body_with_a_recomputed_checksum_fails_authentication(key: bytes) -> None:
    sealed = bytearray(seal(b"payload" * 100, key, AAD))
    sealed[HEADER_BYTES + 3] ^= 0xFF
    framed = bytes(sealed[:-CHECKSUM_BYTES])
    forged = framed + hashlib.sha256(framed).digest()
    with pytest.raises(IntegrityError, match="authentication failed"):
        open_sealed(forged, key, AAD)


def test_an_object_opened_under_another_name_is_an_integrity_error(key: bytes) -> None:
    sealed = seal(b"manifest of b1", key, b"tablekeeper/v1|backups/b1/manifest")
    with pytest.raises(IntegrityError, match="another name"):
        open_sealed(sealed, key, b"tablekeeper/v1|backups/b2/manifest")


def test_opening_with_another_key_is_wrong_key_not_garbage(key: bytes) -> None:
    sealed = seal(b"rows", key, AAD)
    with pytest.raises(WrongKey, match="sealed with key id"):
        open_sealed(sealed, new_data_key(), AAD)


def test_a_key_of_the_wrong_length_is_refused(key: bytes) -> None:
    with pytest.raises(VaultError, match="16 bytes, not 32"):
        seal(b"x", key[:16], AAD)


def test_verify_sealed_checks_the_checksum_without_a_key(key: bytes) -> None:
    sealed = seal(b"rows" * 50, key, AAD)
    header = verify_sealed(sealed)
    assert header.plaintext_length == 200
    with pytest.raises(IntegrityError):
        verify_sealed(sealed[:-1] + bytes([sealed[-1] ^ 1]))


# -- wrap_key / unwrap_key -----------------------------------------------------------


def test_unwrap_returns_the_wrapped_data_key() -> None:
    vault_key, data_key = VaultKey.generate(), new_data_key()
    assert unwrap_key(wrap_key(data_key, vault_key, b"backups/b1"), vault_key, b"backups/b1") == data_key


def test_unwrapping_with_another_vault_key_is_wrong_key() -> None:
    wrapped = wrap_key(new_data_key(), VaultKey.generate(), b"backups/b1")
    with pytest.raises(WrongKey):
        unwrap_key(wrapped, VaultKey.generate(), b"backups/b1")


def test_a_wrapped_key_does_not_unwrap_for_another_backup() -> None:
    vault_key = VaultKey.generate()
    wrapped = wrap_key(new_data_key(), vault_key, b"backups/b1")
    with pytest.raises(IntegrityError):
        unwrap_key(wrapped, vault_key, b"backups/b2")


def test_a_wrapped_key_is_not_an_object_sealed_with_the_vault_key() -> None:
    vault_key = VaultKey.generate()
    wrapped = wrap_key(new_data_key(), vault_key, AAD)
    with pytest.raises(IntegrityError):
        open_sealed(wrapped, vault_key.secret, AAD)


# -- content_id ---------------------------------------------------------------------


def test_content_id_is_stable_for_one_key_and_differs_between_keys() -> None:
    first, second = VaultKey.generate(), VaultKey.generate()
    assert content_id(b"chunk", first) == content_id(b"chunk", first)
    assert content_id(b"chunk", first) != content_id(b"chunk", second)
    assert content_id(b"chunk", first) != content_id(b"chunk!", first)


def test_content_id_is_hex_and_not_the_plain_hash() -> None:
    cid = content_id(b"chunk", VaultKey.generate())
    assert len(cid) == 64 and int(cid, 16) >= 0
    assert cid != hashlib.sha256(b"chunk").hexdigest()


# -- VaultKey -----------------------------------------------------------------------


def test_key_id_is_a_short_fingerprint_that_never_shows_the_secret() -> None:
    vault_key = VaultKey.generate()
    assert len(vault_key.secret) == KEY_BYTES
    assert len(vault_key.key_id) == 16
    assert vault_key.secret.hex()[:16] not in vault_key.key_id
    assert vault_key.secret.hex() not in repr(vault_key)


def test_a_key_id_that_does_not_match_the_secret_is_refused() -> None:
    with pytest.raises(VaultError, match="does not match"):
        VaultKey("0" * 16, os.urandom(KEY_BYTES))


def test_saved_key_loads_back_equal(tmp_path: Path) -> None:
    vault_key = VaultKey.generate()
    vault_key.save(tmp_path / "vault.key")
    assert VaultKey.load(tmp_path / "vault.key") == vault_key


def test_saved_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        VaultKey.generate().save(tmp_path / "vault.key")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "vault.key").stat().st_mode) == 0o600


def test_save_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    first = VaultKey.generate()
    first.save(tmp_path / "vault.key")
    with pytest.raises(VaultError, match="refusing to overwrite"):
        VaultKey.generate().save(tmp_path / "vault.key")
    assert VaultKey.load(tmp_path / "vault.key") == first


def test_save_fsyncs_the_key_before_it_appears_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def link(source: Any, target: Any) -> None:
        events.append("link")
        real_link(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    VaultKey.generate().save(tmp_path / "vault.key")
    assert events == ["fsync file", "link", "fsync dir"]


def test_a_save_that_fails_midway_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(VaultError, match="Input/output error"):
        VaultKey.generate().save(tmp_path / "vault.key")
    assert list(tmp_path.iterdir()) == []


def test_loading_a_missing_key_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match=r"load vault key .*nope\.key: no such file"):
        VaultKey.load(tmp_path / "nope.key")


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_loading_a_key_file_others_may_access_is_refused(tmp_path: Path, mode: int) -> None:
    VaultKey.generate().save(tmp_path / "vault.key")
    (tmp_path / "vault.key").chmod(mode)
    with pytest.raises(VaultError, match=r"other users may access it.*chmod 600"):
        VaultKey.load(tmp_path / "vault.key")


def test_a_group_readable_key_file_loads_as_kubernetes_secret_volumes_make_them(tmp_path: Path) -> None:
    vault_key = VaultKey.generate()
    vault_key.save(tmp_path / "vault.key")
    (tmp_path / "vault.key").chmod(0o440)
    assert VaultKey.load(tmp_path / "vault.key") == vault_key


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "no key"),
        (b"# only a comment\n", "no key"),
        (bytes(range(32)).hex().encode() + b"\n", "48 bytes, not 32"),  # hex, not base64
        (b"c2hvcnQ=\n", "5 bytes, not 32"),
        (b"@@@@\n", "not valid base64"),
        (b"\xff\xfe binary", "not a key file"),
        (b"AAAA\nBBBB\n", "more than one key line"),
    ],
)
def test_a_malformed_key_file_is_refused_saying_why(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "vault.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(VaultError, match=problem):
        VaultKey.load(path)


def test_a_key_made_with_openssl_rand_base64_loads(tmp_path: Path) -> None:
    secret = os.urandom(32)
    path = tmp_path / "vault.key"
    path.write_bytes(base64.b64encode(secret) + b"\n")
    path.chmod(0o600)
    assert VaultKey.load(path).secret == secret
