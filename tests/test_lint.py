"""The code base stays lint-clean and type-checks, as part of the test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=600)


def test_ruff_is_clean():
    result = _run("ruff", "check", "hipaacheck", "checks", "tests")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_is_clean():
    result = _run("mypy", "hipaacheck", "checks")
    assert result.returncode == 0, result.stdout[-4000:]
