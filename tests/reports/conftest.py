"""
Shared fixtures of the report tests: the fixed sample result and the tools the tests drive.

The helper modules of this folder (`report_sample`, `report_browser`) are put on `sys.path`
under names of their own: a package path such as `reports.sample` would be shadowed by the
project's top-level `reports` package whenever the current folder is on `sys.path`
(`python -m pytest`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_browser import Browser
from report_sample import sample_result

from hipaacheck.result import ScanResult


@pytest.fixture
def result() -> ScanResult:
    """The fixed sample scan result."""
    return sample_result()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's headless Chromium; CI installs it with `apt-get install chromium`."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the browser test needs Debian's chromium package: apt-get install chromium"
    return Path(found)


@pytest.fixture(scope="session")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium per test process, with a fresh profile; each test opens its pages."""
    instance = Browser(chromium, tmp_path_factory.mktemp("chromium-profile"))
    yield instance
    instance.close()
