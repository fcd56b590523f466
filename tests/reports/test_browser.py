"""Headless Chromium opens the HTML report, draws it without console errors, and screenshots it."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from hipaacheck.render import ReportOptions, write_report

PROBE = """JSON.stringify({
  title: document.title,
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  scripts: document.scripts.length,
  chart: (r => [r.width, r.height])(document.querySelector('figure.chart svg')
                                     .getBoundingClientRect()),
  bars: document.querySelectorAll('figure.chart rect').length,
  height: document.documentElement.scrollHeight,
  width: document.documentElement.scrollWidth,
})"""


def test_report_renders_without_console_errors(browser, result, tmp_path):
    report = write_report(result, "html", tmp_path / "out", ReportOptions(assessor="Jane Roe"))
    session = browser.open_page(report.as_uri())
    page = json.loads(browser.call("Runtime.evaluate", session, expression=PROBE,
                                   returnByValue=True)["result"]["value"])
    shot = base64.b64decode(browser.call("Page.captureScreenshot", session, format="png")["data"])
    (tmp_path / "report.png").write_bytes(shot)

    assert browser.problems(session) == []
    assert page["title"].startswith("HIPAA technical safeguard assessment")
    assert {"cover", "summary", "scope", "method", "findings", "appendix"} <= set(page["sections"])
    assert page["scripts"] == 0
    assert page["chart"][0] > 300 and page["chart"][1] > 100 and page["bars"] > 10
    assert page["width"] <= 1280 and page["height"] > 2000  # no sideways scroll; a long report
    image = Image.open(io.BytesIO(shot))
    assert image.size == (1280, 1000)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50


def test_the_harness_does_see_console_errors(browser):
    page = "data:text/html,<p>x</p><script>console.error('deliberate')</script>"
    session = browser.open_page(page)
    assert any("deliberate" in p for p in browser.problems(session))
