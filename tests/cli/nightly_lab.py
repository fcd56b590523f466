"""Real log files and inventories for the CLI's nightly-scan and shard tests."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from hipaacheck.cli import app

runner = CliRunner()

CLEAN = "2026-12-03T10:00:00Z INFO request served status=200 duration_ms=12\n"
LEAKY = "2026-12-03T10:00:01Z INFO claim check ssn=524-71-3390 status=ok\n"
LEAKED_VALUE = "524-71-3390"


def write_lab(root: Path, sinks: dict[str, str | None]) -> Path:
    """
    Write each sink's log file (CLEAN or LEAKY text; None: no file, so nothing to read) and an
    inventory naming every sink; returns the inventory's path, the same on every call.
    """
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    entries = []
    for name, text in sinks.items():
        path = logs / f"{name}.log"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text * 10)
        entries.append(f"{{name: {name}, paths: ['{path}']}}")
    config = root / "hipaacheck.yaml"
    config.write_text(f"organization: Example Health\nlogs: {{sinks: [{', '.join(entries)}]}}\n")
    return config


def invoke(*args: str):
    """Run the CLI in-process; returns Typer's result."""
    return runner.invoke(app, list(args))
