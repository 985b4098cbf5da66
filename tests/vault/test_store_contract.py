"""The object-store contract (tablekeeper.vault.store), run against every backend.

The first part is one suite parametrized over FolderStore (a tmp folder) and
S3Store (moto's standalone server on 127.0.0.1, see conftest.py); the later
parts test what only one backend can show: a full disk, fsync, an
unreachable endpoint, refused credentials, the fallback for stores without
conditional writes.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tablekeeper.vault.errors import (
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    StoreFull,
    StoreUnavailable,
    VaultError,
)
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.s3 import S3Store
from tablekeeper.vault.store import PROBE_PREFIX, ObjectStore, open_store, probe
from tests.vault.conftest import MotoS3

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "folder":
        return open_store((tmp_path / "vault").as_uri())
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    return open_store(
        f"s3://{moto.bucket}/t-{uuid.uuid4().hex[:12]}",
        endpoint_url=moto.endpoint,
        region="us-east-1",
        access_key_id=moto.access_key_id,
        secret_access_key=moto.secret_access_key,
    )


# -- the contract, on every backend ------------------------------------------------------


def test_get_returns_exactly_the_bytes_put(store: ObjectStore) -> None:
    data = os.urandom(100_000)
    store.put("backups/b1/manifest", data)
    assert store.get("backups/b1/manifest") == data


def test_an_empty_object_round_trips(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    info = store.head("empty")
    assert info is not None and info.size == 0


def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    store.put("k", b"old")
    store.put("k", b"new")
    assert store.get("k") == b"new"


def test_get_of_a_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound, match=r"^get .*missing/key: no such object"):
        store.get("missing/key")


def test_head_gives_size_and_modification_time(store: ObjectStore) -> None:
    before = time.time()
    store.put("chunks/ab/abcdef", b"x" * 1234)
    info = store.head("chunks/ab/abcdef")
    assert info is not None
    assert (info.key, info.size) == ("chunks/ab/abcdef", 1234)
    assert before - 5 <= info.modified <= time.time() + 5


def test_head_of_a_missing_key_is_none(store: ObjectStore) -> None:
    assert store.head("nothing/here") is None


def test_delete_removes_the_object(store: ObjectStore) -> None:
    store.put("a/b", b"data")
    store.delete("a/b")
    assert store.head("a/b") is None
    with pytest.raises(ObjectNotFound):
        store.get("a/b")


def test_delete_of_a_missing_key_is_not_an_error(store: ObjectStore) -> None:
    store.delete("never/was")


def test_put_if_absent_writes_a_new_key(store: ObjectStore) -> None:
    store.put("locks/one", b"mine", if_absent=True)
    assert store.get("locks/one") == b"mine"


def test_put_if_absent_refuses_an_existing_key_and_keeps_it(store: ObjectStore) -> None:
    store.put("locks/one", b"first")
    with pytest.raises(ObjectExists, match=r"^put .*locks/one: already exists"):
        store.put("locks/one", b"second", if_absent=True)
    assert store.get("locks/one") == b"first"


def test_racing_if_absent_puts_have_exactly_one_winner(store: ObjectStore) -> None:
    writers = 8
    start = threading.Barrier(writers)

    def attempt(n: int) -> bool:
        start.wait()
        try:
            store.put("race/key", f"writer {n}".encode(), if_absent=True)
        except ObjectExists:
            return False
        return True

    with ThreadPoolExecutor(writers) as pool:
        won = list(pool.map(attempt, range(writers)))
    assert won.count(True) == 1
    assert store.get("race/key") == f"writer {won.index(True)}".encode()


def test_list_is_sorted_by_key_and_filtered_by_a_string_prefix(store: ObjectStore) -> None:
    keys = ["b", "a/x/1", "a-c", "a0", "a/y", "ab/z", "a/x/2"]
    for key in keys:
        store.put(key, key.encode())
    assert [info.key for info in store.list()] == sorted(keys)
    assert [info.key for info in store.list("a/")] == ["a/x/1", "a/x/2", "a/y"]
    assert [info.key for info in store.list("a")] == ["a-c", "a/x/1", "a/x/2", "a/y", "a0", "ab/z"]
    assert [info.key for info in store.list("a/x/")] == ["a/x/1", "a/x/2"]


def test_list_reports_each_object_size(store: ObjectStore) -> None:
    store.put("s/one", b"1")
    store.put("s/three", b"333")
    assert [(info.key, info.size) for info in store.list("s/")] == [("s/one", 1), ("s/three", 3)]


def test_list_of_a_prefix_with_no_objects_is_empty(store: ObjectStore) -> None:
    store.put("x/1", b"")
    assert list(store.list("y")) == []
    assert list(store.list("x/1/")) == []


def test_list_returns_every_object_past_one_page(store: ObjectStore) -> None:
    keys = [f"many/{n:05d}" for n in range(1105)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put(key, b"."), keys))
    assert [info.key for info in store.list("many/")] == keys


def test_keys_may_hold_unicode_and_spaces(store: ObjectStore) -> None:
    store.put("tables/café au lait/1", b"ok")
    assert store.get("tables/café au lait/1") == b"ok"
    assert [info.key for info in store.list("tables/")] == ["tables/café au lait/1"]


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "a/", "../up", "a/../b", "a/./b", ".hidden", "a/.tk-tmp-1", "back\\slash",
     "nul\x00", "x" * 1025],
)
def test_invalid_keys_are_refused_before_the_store_is_touched(store: ObjectStore, key: str) -> None:
    for call in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.head(key),
                 lambda: store.delete(key)):
        with pytest.raises(VaultError, match="invalid key"):
            call()


def test_probe_passes_on_a_working_store_and_leaves_nothing(store: ObjectStore) -> None:
    probe(store)
    assert list(store.list(PROBE_PREFIX)) == []


# -- open_store ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/no/scheme", "file://host/path", "file:relative", "s3://", "gs://bucket/x",
            "s3://bucket/p?region=x"],
)
def test_open_store_refuses_urls_it_does_not_know(url: str) -> None:
    with pytest.raises(VaultError, match=r"^open vault "):
        open_store(url)


def test_open_store_takes_s3_settings_from_the_standard_environment(
    monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3.secret_access_key)
    store = open_store(f"s3://{moto_s3.bucket}/env-{uuid.uuid4().hex[:8]}/")
    assert isinstance(store, S3Store)
    store.put("k", b"v")
    assert store.get("k") == b"v"


# -- FolderStore only ---------------------------------------------------------------


def _failing(error_number: int) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(error_number, os.strerror(error_number))

    return fail


@pytest.mark.parametrize("call", ["write", "open"])
def test_folder_put_on_a_full_disk_raises_store_full_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    store = FolderStore(tmp_path / "vault")
    store.put("d/other", b"here")
    monkeypatch.setattr(os, call, _failing(errno.ENOSPC))
    with pytest.raises(StoreFull, match=r"^put .*d/k: disk full \(ENOSPC\)"):
        store.put("d/k", b"x" * 10_000)
    monkeypatch.undo()
    assert sorted(path.name for path in (tmp_path / "vault" / "d").iterdir()) == ["other"]


def test_folder_permission_denied_is_a_vault_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderStore(tmp_path / "vault")
    monkeypatch.setattr(os, "open", _failing(errno.EACCES))
    with pytest.raises(VaultError, match="permission denied") as raised:
        store.put("k", b"x")
    assert not isinstance(raised.value, StoreUnavailable | StoreFull)


def test_folder_put_fsyncs_the_file_before_renaming_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderStore(tmp_path / "vault")
    store.put("d/first", b"")  # the folder exists, so only the object's own syncs follow
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(source: Any, target: Any) -> None:
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.put("d/k", b"data")
    assert events == ["fsync file", "rename", "fsync dir"]


def test_folder_root_is_created_owner_only_and_objects_are_private(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "new" / "vault")
    store.put("a/b", b"secret-ish")
    assert stat.S_IMODE((tmp_path / "new" / "vault").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "vault" / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "vault" / "a" / "b").stat().st_mode) == 0o600


def test_folder_leftover_temporary_files_are_not_listed(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.put("d/k", b"x")
    (tmp_path / "d" / ".tk-tmp-deadbeef").write_bytes(b"half a put")
    assert [info.key for info in store.list()] == ["d/k"]


def test_folder_delete_removes_folders_it_leaves_empty(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "vault")
    store.put("backups/b1/manifest", b"x")
    store.delete("backups/b1/manifest")
    assert list((tmp_path / "vault").iterdir()) == []


def test_folder_key_that_is_a_folder_of_other_keys_is_refused(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    store.put("a/b", b"x")
    with pytest.raises(VaultError, match="folder of other objects"):
        store.put("a", b"y")
    with pytest.raises(VaultError, match="cannot hold other objects"):
        store.put("a/b/c", b"z")
    assert store.head("a") is None


def test_folder_opened_without_create_on_a_missing_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="no such folder"):
        FolderStore(tmp_path / "typo", create=False)


# -- S3Store only -------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_s3_unreachable_endpoint_is_unavailable_within_seconds() -> None:
    store = S3Store("bucket", "p", endpoint_url=f"http://127.0.0.1:{_closed_port()}", region="us-east-1",
                    access_key_id="AKIDTEST", secret_access_key="secret")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"could not connect to http://127\.0\.0\.1"):
        store.get("k")
    assert time.monotonic() - started < 5


def test_s3_unknown_access_key_is_unavailable_naming_invalid_access_key_id(moto_s3: MotoS3) -> None:
    store = moto_s3.store(access_key_id="AKIANOTAKEY000000000")
    with pytest.raises(StoreUnavailable, match="InvalidAccessKeyId"):
        store.put("k", b"x")


def test_s3_wrong_secret_is_unavailable_naming_signature_does_not_match(moto_s3: MotoS3) -> None:
    store = moto_s3.store(secret_access_key="not-the-secret")
    with pytest.raises(StoreUnavailable, match="SignatureDoesNotMatch"):
        store.get("k")


def test_s3_credentials_without_permission_are_unavailable_naming_access_denied(moto_s3: MotoS3) -> None:
    key_id, secret = moto_s3.powerless_key
    store = moto_s3.store(access_key_id=key_id, secret_access_key=secret)
    with pytest.raises(StoreUnavailable, match=r"access denied .*AccessDenied"):
        store.put("k", b"x")


def test_s3_missing_bucket_is_unavailable_naming_it_even_on_head(moto_s3: MotoS3) -> None:
    store = S3Store("no-such-bucket", "p", endpoint_url=moto_s3.endpoint, region="us-east-1",
                    access_key_id=moto_s3.access_key_id, secret_access_key=moto_s3.secret_access_key)
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.put("k", b"x")
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.head("k")


def test_s3_store_sees_nothing_outside_its_prefix(moto_s3: MotoS3) -> None:
    base = f"iso-{uuid.uuid4().hex[:8]}"
    moto_s3.store(base + "2").put("k", b"sibling")
    moto_s3.store(base).put("k", b"mine")
    assert [info.key for info in moto_s3.store(base).list()] == ["k"]
    assert moto_s3.store(base).get("k") == b"mine"


def test_s3_put_sends_the_content_md5_of_the_body(moto_s3: MotoS3) -> None:
    store = moto_s3.store()
    sent: list[bytes] = []
    store._client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("Content-MD5"))
    )
    store.put("k", b"hello")
    assert sent == [b"XUFAKrxLKna5cZ2REBfFkg=="]  # base64 of MD5("hello")


def _client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def test_s3_throttling_is_retried_until_it_passes(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    store = moto_s3.store(base_delay=0.01)
    real = store._client.put_object
    failures = [_client_error("SlowDown", 503), _client_error("InternalError", 500)]

    def flaky(**params: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real(**params)

    monkeypatch.setattr(store._client, "put_object", flaky)
    store.put("k", b"x")
    assert store.get("k") == b"x"


def test_s3_throttling_that_never_ends_is_unavailable_after_bounded_attempts(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = moto_s3.store(base_delay=0.01, max_attempts=4)
    calls: list[int] = []

    def throttled(**params: Any) -> Any:
        calls.append(1)
        raise _client_error("SlowDown", 503)

    monkeypatch.setattr(store._client, "put_object", throttled)
    with pytest.raises(StoreUnavailable, match=r"after 4 attempts \(SlowDown \(503\)"):
        store.put("k", b"x")
    assert len(calls) == 4


def test_s3_corruption_in_transit_that_persists_is_an_integrity_error(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = moto_s3.store(base_delay=0.01, max_attempts=2)

    def damaged_in_transit(**params: Any) -> Any:
        raise _client_error("BadDigest", 400)

    monkeypatch.setattr(store._client, "put_object", damaged_in_transit)
    with pytest.raises(IntegrityError, match="BadDigest"):
        store.put("k", b"x")


def test_s3_if_absent_put_that_landed_before_a_timeout_succeeds(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = moto_s3.store(base_delay=0.01)
    real = store._client.put_object
    timed_out: list[bool] = []

    def lands_then_times_out(**params: Any) -> Any:
        answer = real(**params)
        if not timed_out:
            timed_out.append(True)
            raise ReadTimeoutError(endpoint_url=moto_s3.endpoint)
        return answer

    monkeypatch.setattr(store._client, "put_object", lands_then_times_out)
    store.put("k", b"ours", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put("k", b"theirs", if_absent=True)


def test_s3_store_without_conditional_writes_falls_back_to_head_then_put(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = moto_s3.store()
    real = store._client.put_object

    def no_conditionals(**params: Any) -> Any:
        if "IfNoneMatch" in params:
            raise _client_error("NotImplemented", 501)
        return real(**params)

    monkeypatch.setattr(store._client, "put_object", no_conditionals)
    with caplog.at_level(logging.WARNING, logger="tablekeeper.vault.s3"):
        store.put("k", b"first", if_absent=True)
    assert "falls back to HEAD then PUT" in caplog.text
    with pytest.raises(ObjectExists):
        store.put("k", b"second", if_absent=True)
    assert store.get("k") == b"first"
