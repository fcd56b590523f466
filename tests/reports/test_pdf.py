"""The PDF comes from the same HTML: numbered pages, a contents page that is right, bookmarks."""

from __future__ import annotations

import io
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdf
from report_sample import sample_result

from hipaacheck.render import ReportOptions, render_pdf
from hipaacheck.render.pdf import html_to_pdf

TOC_LINE = re.compile(r"^(?P<title>\S.*?)\s*\.{3,}\s*(?P<page>\d+)$")
PARTS = ("Executive summary", "Scope", "Methodology", "Findings by HIPAA standard",
         "Accepted risks (waivers)", "Appendix: checks and citations")


def _render_logging() -> tuple[bytes, list[logging.LogRecord]]:
    """The sample's PDF report, and whatever WeasyPrint logged while rendering it."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    weasy = logging.getLogger("weasyprint")
    weasy.addHandler(handler)
    try:
        return render_pdf(sample_result(), ReportOptions(assessor="Jane Roe")), records
    finally:
        weasy.removeHandler(handler)


def _titles(outline) -> list[str]:
    out = []
    for item in outline:
        out += _titles(item) if isinstance(item, list) else [item.title]
    return out


def _plain(text: str) -> str:
    return " ".join(text.replace("45 CFR ", "").replace(":", "").split())


def test_pdf_has_a_cover_numbered_pages_a_true_contents_page_and_bookmarks():
    # One rendering serves every assertion: WeasyPrint is the slow part of this file.
    data, records = _render_logging()
    assert data.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]

    # The cover names the organisation and the assessor and carries no page number.
    assert len(pages) >= 8
    assert "Technical safeguard assessment" in pages[0] and "Example <Health>" in pages[0]
    assert "Jane Roe" in pages[0] and "Page 1 of" not in pages[0]
    for number, text in enumerate(pages[1:], start=2):
        assert f"Page {number} of {len(pages)}" in text

    # Every contents entry's page number is the page its section starts on.
    entries = [m.groupdict() for line in pages[1].splitlines() if (m := TOC_LINE.match(line))]
    assert len(entries) >= 10
    numbers = [int(e["page"]) for e in entries]
    assert numbers == sorted(numbers) and numbers[0] > 2
    for entry in entries:
        assert _plain(entry["title"]) in _plain(pages[int(entry["page"]) - 1]), entry

    # Bookmarks lead to every part, and WeasyPrint understood the whole style sheet.
    assert set(PARTS) <= set(_titles(reader.outline))
    assert [r.getMessage() for r in records] == []


class _Counter(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_rendering_never_fetches_anything():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        html = (f'<link rel="stylesheet" href="{url}/x.css"><img src="{url}/x.png">'
                '<img src="file:///etc/hostname"><p>text</p>')
        assert html_to_pdf(html).startswith(b"%PDF-")
    finally:
        server.shutdown()
        server.server_close()
    assert _Counter.hits == 0
