"""
PDF output: the HTML report laid out for print by WeasyPrint.

The print style sheet in the HTML template carries the page numbers ("Page 3 of 12"), the page
numbers in the table of contents and the PDF bookmarks, so the PDF and a browser's print of the
HTML come from the same source. WeasyPrint is imported only when a PDF is asked for; it needs
the Pango text-layout libraries of the operating system (Debian: libpango-1.0-0 and
libpangoft2-1.0-0).
"""

from __future__ import annotations

import logging

from hipaacheck.errors import UsageError

logger = logging.getLogger(__name__)

INSTALL_HINT = ("PDF output needs WeasyPrint and the Pango libraries: pip install weasyprint, "
                "and on Debian apt-get install libpango-1.0-0 libpangoft2-1.0-0")


class PdfUnavailable(UsageError):
    """WeasyPrint or the system libraries it loads are not installed."""

    def explain(self) -> str:
        """What is missing and how to install it."""
        return f"{self}. {INSTALL_HINT}."


def html_to_pdf(html: str) -> bytes:
    """
    Lay `html` out as a PDF.

    Only `data:` URLs may be fetched while rendering: the report is self-contained, and a
    resource name that looks like a URL must never make the renderer reach the network or
    read a local file.
    """
    try:
        import weasyprint
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:
        raise PdfUnavailable(f"cannot load WeasyPrint ({type(exc).__name__})") from None
    fetcher = URLFetcher(allowed_protocols=("data",), allow_redirects=False, timeout=5)
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher)
    pdf = document.write_pdf()
    if not isinstance(pdf, bytes):
        raise TypeError("WeasyPrint returned no PDF bytes")
    logger.debug("rendered PDF of %d bytes", len(pdf))
    return pdf
