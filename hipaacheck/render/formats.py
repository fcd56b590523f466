"""
Every report format, registered in `FORMATS`, and writing them with owner-only access.

HTML is rendered with autoescaping on and Markdown through a finalizer that escapes every value,
so a resource named with markup prints as text. Both environments use `StrictUndefined`: a
missing field fails the render instead of printing an empty status cell. The machine-readable
formats (SARIF, JUnit XML, CSV, OCSF) carry every finding; the HTML, Markdown and PDF reports
group and count repeated findings.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jinja2
import markupsafe

from hipaacheck.render.csvfile import render_csv
from hipaacheck.render.junit import render_junit
from hipaacheck.render.ocsf import render_ocsf
from hipaacheck.render.pdf import html_to_pdf
from hipaacheck.render.sarif import render_sarif
from hipaacheck.render.view import ReportOptions, anchor, build_view, counted
from hipaacheck.result import ScanResult

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_BREAK_AFTER = re.compile(r"([./:_])(?=.)")


class Renderer(Protocol):
    """A report format: a function from a scan result (and report options) to text or bytes."""

    def __call__(self, result: ScanResult,
                 options: ReportOptions | None = None) -> str | bytes: ...


def _md_escape(value: Any) -> str:
    """Escape a value for Markdown tables and prose; newlines become spaces."""
    text = "" if value is None else str(value)
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _loader() -> jinja2.BaseLoader:
    return jinja2.PackageLoader("hipaacheck.reports", "templates")


def _thousands(value: int) -> str:
    return f"{value:,}"


def _breakable(value: Any) -> markupsafe.Markup:
    """Escaped text that may wrap after `.`, `/`, `:` and `_`: long ids in narrow table cells."""
    return markupsafe.Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(markupsafe.escape(value))))


def _environment(**kwargs: Any) -> jinja2.Environment:
    env = jinja2.Environment(loader=_loader(), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, **kwargs)
    env.filters["thousands"] = _thousands
    env.filters["counted"] = counted
    env.filters["anchor"] = lambda value, prefix: anchor(prefix, str(value))
    return env


@cache
def _html_env() -> jinja2.Environment:
    env = _environment(autoescape=True)
    env.filters["breakable"] = _breakable
    return env


@cache
def _md_env() -> jinja2.Environment:
    # Markdown has no autoescape; the finalizer escapes every value printed with {{ }}.
    # Template text itself is not passed through the finalizer.
    return _environment(autoescape=False, finalize=_md_escape)


def render_json(result: ScanResult, options: ReportOptions | None = None) -> str:
    """The `hipaacheck.scan/1` JSON document, every finding in full."""
    return json.dumps(result.to_json(), indent=2, sort_keys=False) + "\n"


def render_html(result: ScanResult, options: ReportOptions | None = None) -> str:
    """A self-contained HTML assessment report that prints cleanly, with no script in it."""
    return _html_env().get_template("report.html.j2").render(view=build_view(result, options))


def render_markdown(result: ScanResult, options: ReportOptions | None = None) -> str:
    """A Markdown report with the same sections as the HTML one."""
    return _md_env().get_template("report.md.j2").render(view=build_view(result, options))


def render_pdf(result: ScanResult, options: ReportOptions | None = None) -> bytes:
    """The HTML report as PDF (WeasyPrint), with page numbers, bookmarks and a contents page."""
    return html_to_pdf(render_html(result, options))


FORMATS: dict[str, tuple[str, Renderer]] = {
    "json": ("report.json", render_json),
    "html": ("report.html", render_html),
    "md": ("report.md", render_markdown),
    "sarif": ("report.sarif", render_sarif),
    "junit": ("report.junit.xml", render_junit),
    "csv": ("findings.csv", render_csv),
    "ocsf": ("report.ocsf.json", render_ocsf),
    "pdf": ("report.pdf", render_pdf),
}
"""Format name to (file name, renderer). `scan --format` offers exactly these names."""


def render(result: ScanResult, fmt: str, options: ReportOptions | None = None) -> str | bytes:
    """The result in one of `FORMATS`: text, or bytes for PDF."""
    return FORMATS[fmt][1](result, options)


def write_private(path: Path, data: str | bytes) -> None:
    """
    Write `data` to `path` with owner-only permissions, atomically.

    The file is written beside its destination and renamed into place, so an interrupted
    write never leaves half a report under the final name.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(result: ScanResult, fmt: str, out_dir: Path,
                 options: ReportOptions | None = None) -> Path:
    """Write one format into `out_dir` with owner-only permissions (a report maps weak points)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FORMATS[fmt][0]
    write_private(path, render(result, fmt, options))
    return path
