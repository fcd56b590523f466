"""CLI tests keep their scan history in their own temporary folder, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_history(tmp_path, monkeypatch):
    """Point `--history`'s default (and every subprocess's) at a file under `tmp_path`."""
    path = tmp_path / "history" / "history.sqlite"
    monkeypatch.setenv("HIPAACHECK_HISTORY", str(path))
    return path
