"""``tablekeeper backup list|describe|verify|delete|gc`` work from a folder vault and a key file alone."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from tablekeeper.vault.backup import BackupWriter
from tablekeeper.vault.catalog import Progress, Vault
from tablekeeper.vault.cli import ProgressBar, add_backup_commands
from tablekeeper.vault.crypto import VaultKey
from tablekeeper.vault.folder import FolderStore
from tablekeeper.vault.format import BackupManifest, new_backup_id
from tests.vault.fakes import definition_json, make_items

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault.key"
    VaultKey.generate().save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def manifest(folder: Path, key_file: Path) -> BackupManifest:
    vault = Vault(FolderStore(folder), VaultKey.load(key_file))
    with BackupWriter(vault, new_backup_id(T0), definition_json(), 42, T0, name="before-migration") as writer:
        for key, item in make_items(2000):
            writer.add(key, item)
        return writer.finish()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="tablekeeper")
    add_backup_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def vault_args(folder: Path, key_file: Path) -> list[str]:
    return ["--vault", folder.as_uri(), "--vault-key-file", str(key_file)]


def test_list_as_json_names_every_backup(capsys: pytest.CaptureFixture[str], folder: Path, key_file: Path,
                                         manifest: BackupManifest) -> None:
    code, out, _ = run(capsys, "backup", "list", *vault_args(folder, key_file), "--output", "json")
    assert code == 0
    listed = json.loads(out)["Backups"]
    assert [(b["BackupId"], b["TableName"], b["ItemCount"], b["Status"]) for b in listed] == [
        (manifest.backup_id, "orders", 2000, "AVAILABLE")]


def test_list_as_text_is_a_table(capsys: pytest.CaptureFixture[str], folder: Path, key_file: Path,
                                 manifest: BackupManifest) -> None:
    code, out, _ = run(capsys, "backup", "list", *vault_args(folder, key_file))
    assert code == 0
    header, row = out.splitlines()
    assert header.startswith("BACKUP ID") and row.startswith(manifest.backup_id)
    assert "before-migration" in row and "2,000" in row and "AVAILABLE" in row


def test_describe_shows_the_table_definition(capsys: pytest.CaptureFixture[str], folder: Path, key_file: Path,
                                             manifest: BackupManifest) -> None:
    code, out, _ = run(capsys, "backup", "describe", manifest.backup_id, *vault_args(folder, key_file),
                       "--output", "json")
    assert code == 0
    described = json.loads(out)
    assert described["Sequence"] == 42 and described["TableDefinition"]["name"] == "orders"
    code, out, _ = run(capsys, "backup", "describe", manifest.backup_id, *vault_args(folder, key_file))
    assert "GSI:" in out and "by-gk" in out and manifest.backup_arn in out


def test_verify_exits_1_and_names_the_damaged_object(capsys: pytest.CaptureFixture[str], folder: Path,
                                                     key_file: Path, manifest: BackupManifest) -> None:
    code, out, _ = run(capsys, "backup", "verify", manifest.backup_id, *vault_args(folder, key_file))
    assert code == 0 and ": ok:" in out
    pack = folder.joinpath(*manifest.packs[0].name.split("/"))
    pack.write_bytes(pack.read_bytes()[:-10])
    code, out, _ = run(capsys, "backup", "verify", manifest.backup_id, *vault_args(folder, key_file),
                       "--output", "json")
    assert code == 1
    assert [p["Object"] for p in json.loads(out)["Problems"]] == [manifest.packs[0].name]


def test_delete_then_list_shows_nothing(capsys: pytest.CaptureFixture[str], folder: Path, key_file: Path,
                                        manifest: BackupManifest) -> None:
    code, _, _ = run(capsys, "backup", "delete", manifest.backup_id, *vault_args(folder, key_file))
    assert code == 0
    _, out, _ = run(capsys, "backup", "list", *vault_args(folder, key_file))
    assert "no backups" in out
    code, out, _ = run(capsys, "backup", "gc", *vault_args(folder, key_file), "--dry-run", "--output", "json")
    assert code == 0 and json.loads(out)["Delete"] == []  # all of it is within the grace


def test_an_unknown_backup_is_a_clear_error_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], folder: Path, key_file: Path, manifest: BackupManifest
) -> None:
    code, _, err = run(capsys, "backup", "describe", "01700000000000-00000000", *vault_args(folder, key_file))
    assert code == 2 and "describe backup 01700000000000-00000000: not found" in err


def test_a_wrong_key_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path,
                                           manifest: BackupManifest) -> None:
    other = tmp_path / "other.key"
    VaultKey.generate().save(other)
    code, _, err = run(capsys, "backup", "list", *vault_args(folder, other))
    assert code == 2 and "sealed with key id" in err


def test_no_key_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], folder: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLEKEEPER_VAULT_KEY_FILE", raising=False)
    code, _, err = run(capsys, "backup", "list", "--vault", folder.as_uri())
    assert code == 2 and "--vault-key-file" in err


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    with ProgressBar("verify x", terminal) as bar:
        bar.update(Progress(50, 100, "bytes"))
        bar.update(Progress(100, 100, "bytes"))
    assert "100.0%" in terminal.getvalue()
    plain = io.StringIO()
    with ProgressBar("verify x", plain) as bar:
        bar.update(Progress(100, 100, "bytes"))
    assert plain.getvalue() == ""
