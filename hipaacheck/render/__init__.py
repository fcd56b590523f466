"""
Renderers: plain functions from a `ScanResult` to text. They know findings, never checks.
"""

from hipaacheck.render.formats import (
    FORMATS,
    render,
    render_html,
    render_json,
    render_markdown,
    write_report,
)

__all__ = ["FORMATS", "render", "render_html", "render_json", "render_markdown", "write_report"]
