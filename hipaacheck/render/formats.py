"""
JSON, HTML and Markdown renderings of a scan result, and writing them with owner-only access.

HTML is rendered with autoescaping on and Markdown through a finalizer that escapes every value,
so a resource named with markup prints as text. Both environments use `StrictUndefined`: a
missing field fails the render instead of printing an empty status cell.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from hipaacheck.render.view import build_view
from hipaacheck.result import ScanResult

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md_escape(value: Any) -> str:
    """Escape a value for Markdown tables and prose; newlines become spaces."""
    text = "" if value is None else str(value)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _loader() -> jinja2.BaseLoader:
    return jinja2.PackageLoader("hipaacheck.reports", "templates")


@cache
def _html_env() -> jinja2.Environment:
    return jinja2.Environment(loader=_loader(), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


@cache
def _md_env() -> jinja2.Environment:
    # Markdown has no autoescape; the finalizer escapes every value printed with {{ }}.
    # Template text itself is not passed through the finalizer.
    env = jinja2.Environment(loader=_loader(), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, finalize=_md_escape)
    return env


def render_json(result: ScanResult) -> str:
    """The `hipaacheck.scan/1` JSON document."""
    return json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n"


def render_html(result: ScanResult) -> str:
    """A self-contained HTML report that prints cleanly."""
    return _html_env().get_template("report.html.j2").render(view=build_view(result))


def render_markdown(result: ScanResult) -> str:
    """A Markdown report with the same sections as the HTML one."""
    return _md_env().get_template("report.md.j2").render(view=build_view(result))


FORMATS: dict[str, tuple[str, Callable[[ScanResult], str]]] = {
    "json": ("report.json", render_json),
    "html": ("report.html", render_html),
    "md": ("report.md", render_markdown),
}


def render(result: ScanResult, fmt: str) -> str:
    """The result in one of `FORMATS`."""
    return FORMATS[fmt][1](result)


def write_report(result: ScanResult, fmt: str, out_dir: Path) -> Path:
    """
    Write one format into `out_dir` with owner-only permissions (a report maps weak points).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FORMATS[fmt][0]
    text = render(result, fmt)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path
