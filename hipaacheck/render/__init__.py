"""
Renderers: plain functions from a `ScanResult` to text (or PDF bytes). They know findings, never
checks.

`FORMATS` maps each format name to its file name and renderer; `write_report` writes one of
them with owner-only permissions. `ReportOptions` carries what a report shows that the scan
result does not hold, such as the assessor's name.
"""

from hipaacheck.render.formats import (
    FORMATS,
    Renderer,
    render,
    render_html,
    render_json,
    render_markdown,
    render_pdf,
    write_private,
    write_report,
)
from hipaacheck.render.view import ReportOptions

__all__ = ["FORMATS", "Renderer", "ReportOptions", "render", "render_html", "render_json",
           "render_markdown", "render_pdf", "write_private", "write_report"]
