"""A non-editable install ships the checks and templates inside `hipaacheck`, nothing top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_checks_templates_and_entry_points(tmp_path):
    # Given a wheel built from the project's own files, offline
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("hipaacheck-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    # Then the checks live under hipaacheck/, and no top-level `checks` package ships
    assert "hipaacheck/checks/__init__.py" in names
    assert "hipaacheck/reports/templates/report.html.j2" in names
    assert "hipaacheck/example.yaml" in names
    assert not any(n.startswith(("checks/", "reports/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[hipaacheck.checks]" in text and "hipaacheck.checks.tls.endpoint" in text
    for source in ("tls/endpoint.py", "aws/s3.py", "postgres/audit.py", "logs/files.py",
                   "kubernetes/storage.py"):
        assert f"hipaacheck/checks/{source}" in names
