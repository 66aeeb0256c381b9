"""The dev server command line keeps state on disk and knows every search attribute."""

from __future__ import annotations

from pathlib import Path

from workers.devserver import SQLITE_PRAGMAS, DevServerSettings, build_argv
from workflows.search_attributes import ALL, CLI_TYPES


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_argv_keeps_state_in_the_data_folder_and_listens_on_the_chosen_ports(tmp_path):
    settings = DevServerSettings(data_dir=tmp_path / "data", port=17001, ui_port=18001)
    binary = str(tmp_path / "bin" / "temporal")
    argv = build_argv(binary, settings)
    assert argv[:3] == [binary, "server", "start-dev"]
    assert flag_values(argv, "--db-filename") == [str(tmp_path / "data" / "temporal.sqlite")]
    assert flag_values(argv, "--port") == ["17001"]
    assert flag_values(argv, "--ui-port") == ["18001"]
    assert flag_values(argv, "--namespace") == ["default"]
    assert flag_values(argv, "--log-level") == ["warn"]


def test_argv_registers_every_search_attribute_with_its_cli_type():
    argv = build_argv(Path("temporal"), DevServerSettings())
    expected = [f"{key.name}={CLI_TYPES[key.indexed_value_type.name]}" for key in ALL]
    assert flag_values(argv, "--search-attribute") == expected


def test_durability_chooses_the_sqlite_pragmas():
    fast = build_argv("temporal", DevServerSettings(durability="fast"))
    safe = build_argv("temporal", DevServerSettings(durability="safe"))
    assert flag_values(fast, "--sqlite-pragma") == ["journal_mode=WAL", "synchronous=OFF"]
    assert flag_values(safe, "--sqlite-pragma") == list(SQLITE_PRAGMAS["safe"])
    assert "synchronous=FULL" in flag_values(safe, "--sqlite-pragma")


def test_headless_server_has_no_ui_port():
    argv = build_argv("temporal", DevServerSettings(headless=True))
    assert "--headless" in argv and "--ui-port" not in argv


def test_ports_and_data_folder_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FITNEST_DEVSERVER_PORT", "7300")
    monkeypatch.setenv("FITNEST_DEVSERVER_UI_PORT", "8300")
    monkeypatch.setenv("FITNEST_DEVSERVER_DATA_DIR", str(tmp_path / "fitnest"))
    settings = DevServerSettings()
    assert settings.address == "localhost:7300"
    assert settings.ui_url == "http://localhost:8300/namespaces/default/workflows"
    assert settings.db_file == tmp_path / "fitnest" / "temporal.sqlite"
