"""100,000 findings give an HTML report under 10 MB that a browser opens at once."""

from __future__ import annotations

import importlib.util
import time
from html.parser import HTMLParser
from pathlib import Path

from hipaacheck.model import Status
from hipaacheck.render import render_html, render_markdown, write_private

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "report_scale.py"
LIMIT = 10 * 1024 * 1024


def _benchmark():
    spec = importlib.util.spec_from_file_location("report_scale", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Count(HTMLParser):
    elements = 0

    def handle_starttag(self, tag, attrs):
        self.elements += 1


def test_large_report_is_small_bounded_and_opens_quickly(browser, tmp_path):
    # Given the benchmark's synthetic scan of 100,000 findings (built once: it is the slow part)
    large = _benchmark().synthetic_result(100_000)

    # When it is rendered
    start = time.perf_counter()
    html = render_html(large)
    elapsed = time.perf_counter() - start

    # Then the report is small, its size follows the checks rather than the resources...
    counter = _Count()
    counter.feed(html)
    assert len(html.encode("utf-8")) < LIMIT
    assert counter.elements < 20_000
    assert elapsed < 30
    assert f"{large.counts()[Status.FAIL]:,}" in html  # every finding is still counted
    assert len(render_markdown(large).encode("utf-8")) < LIMIT

    # ...and a browser opens it at once, without a console error
    path = tmp_path / "report.html"
    write_private(path, html)
    start = time.perf_counter()
    session = browser.open_page(path.as_uri())
    assert time.perf_counter() - start < 10
    assert browser.problems(session) == []
