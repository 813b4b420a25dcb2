"""The `cloudbackup` command line, called in-process: --version, keys, provider install, serve's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudbackup import cli
from shim.store import Store, default_url
from shim.store.models import ApiKey


def test_keys_create_prints_exactly_a_public_and_a_private_key(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--data-dir", str(data_dir), "--read-only"]) == 0
    key = json.loads(capsys.readouterr().out)
    assert list(key) == ["publicKey", "privateKey"]
    store = Store(default_url(data_dir))
    with store.read() as session:
        row = session.get(ApiKey, key["publicKey"])
        assert row is not None and row.read_only and row.project_id is None
        assert key["privateKey"] not in (row.ha1_md5, row.ha1_sha256)
    store.close()


def test_keys_create_takes_a_database_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert cli.main(["keys", "create", "--database", url]) == 0
    assert "publicKey" in json.loads(capsys.readouterr().out)
    assert (tmp_path / "elsewhere.db").exists()


def test_provider_install_puts_the_plugin_where_terraform_finds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The launcher goes beside the user's configuration: a test keeps it out of the real home.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert cli.main(["provider", "install", "--dir", str(tmp_path)]) == 0
    installed = Path(capsys.readouterr().out.strip())
    assert installed.is_relative_to(tmp_path)
    assert any(p.name.startswith("terraform-provider-cloudbackup") for p in tmp_path.rglob("*"))
    assert (tmp_path / "config" / "cloudbackup" / "plugin-launcher").is_file()


def test_serve_knows_the_contracts_flags() -> None:
    args = cli._parser().parse_args(
        [
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--data-dir",
            "d",
            "--database",
            "sqlite:///x.db",
            "--driver",
            "azure",
            "--manual-clock",
            "--azure-subscription-id",
            "s",
            "--azure-resource-group",
            "g",
            "--azure-endpoint",
            "https://management.example",
        ]
    )
    assert (args.host, args.port, args.driver, args.manual_clock) == ("0.0.0.0", 0, "azure", True)
    assert (args.azure_subscription_id, args.azure_resource_group) == ("s", "g")
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["serve", "--driver", "tape"])


def test_serve_reconciles_every_15_minutes_unless_told_otherwise() -> None:
    assert cli._parser().parse_args(["serve"]).reconcile_interval == 900.0
    assert cli._parser().parse_args(["serve", "--reconcile-interval", "0"]).reconcile_interval == 0.0


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"cloudbackup {version('cloudbackup')}"


def test_serve_without_its_schema_documents_refuses_in_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract import documents

    monkeypatch.setattr(documents, "schema_dir", lambda: tmp_path / "not-installed")
    assert cli.main(["serve", "--port", "0", "--data-dir", str(data_dir)]) == 2
    captured = capsys.readouterr()
    assert "listening" not in captured.out
    assert captured.err.count("\n") == 1 and "not-installed" in captured.err and "reinstall" in captured.err


def test_keys_list_on_a_database_without_keys_says_how_to_make_one(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "list", "--data-dir", str(data_dir)]) == 0
    assert "cloudbackup keys create" in capsys.readouterr().out


def test_keys_create_export_prints_one_line_a_shell_can_eval(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--export", "--data-dir", str(data_dir)]) == 0
    words = capsys.readouterr().out.split()
    assert words[0] == "export"
    assert sorted(word.split("=")[0] for word in words[1:]) == [
        "CLOUDBACKUP_PRIVATE_KEY",
        "CLOUDBACKUP_PUBLIC_KEY",
    ]
