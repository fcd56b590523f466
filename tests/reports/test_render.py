"""Reports render every section from the same findings, escape markup and round-trip via JSON."""

from __future__ import annotations

import json
import os
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_sample import MARKUP

from hipaacheck.model import Standard, Status
from hipaacheck.render import (
    FORMATS,
    ReportOptions,
    render,
    render_html,
    render_json,
    render_markdown,
    write_report,
)
from hipaacheck.result import ScanResult

GOLDEN = Path(__file__).parent / "golden"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key == "id" and value:
                self.ids.append(value)
            if key == "href" and value:
                self.hrefs.append(value)
            if key.startswith("on"):
                self.handlers.append(key)

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    return parser


def test_html_has_every_section_and_escapes_markup(result):
    html = render_html(result)
    parser = _parse(html)
    assert {"cover", "contents", "summary", "scope", "method", "unverified", "findings",
            "waivers", "appendix"} <= set(parser.ids)
    assert {f"std-{i}" for i in range(1, len(Standard) + 1)} <= set(parser.ids)
    assert "script" not in parser.tags and not parser.handlers
    assert MARKUP in "".join(parser.text)  # shown as text, not as markup
    assert "<script>" not in html


def test_html_ids_are_unique_and_every_link_lands(result):
    parser = _parse(render_html(result))
    assert len(parser.ids) == len(set(parser.ids))
    internal = [h[1:] for h in parser.hrefs if h.startswith("#")]
    assert internal and set(internal) <= set(parser.ids)
    assert all(h.startswith("#") for h in parser.hrefs)  # nothing leaves the document


def test_html_needs_no_javascript_and_forbids_it(result):
    html = render_html(result)
    assert "default-src 'none'" in html  # a content security policy refuses scripts
    assert "<svg" in html and "<script" not in html.lower()


def test_cover_carries_the_assessor_only_when_given(result):
    with_assessor = render_html(result, ReportOptions(assessor="Jane <Roe>", scope="Prod"))
    assert "Jane &lt;Roe&gt;" in with_assessor and "Prod" in with_assessor
    assert "Assessor" not in render_html(result)


def test_markdown_matches_golden_file(result):
    text = render_markdown(result)
    golden = GOLDEN / "report.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "<script>" not in text


def test_json_round_trips_to_the_same_reports(result):
    rebuilt = ScanResult.from_json(json.loads(render_json(result)))
    assert rebuilt == result
    assert render_html(rebuilt) == render_html(result)
    assert render_markdown(rebuilt) == render_markdown(result)


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"pdf"}))
def test_every_format_writes_an_owner_only_file(result, tmp_path, fmt):
    path = write_report(result, fmt, tmp_path)
    assert path.name == FORMATS[fmt][0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == render(result, fmt).encode("utf-8")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_rewriting_a_report_replaces_it(result, tmp_path):
    first = write_report(result, "md", tmp_path)
    first.write_text("stale")
    assert write_report(result, "md", tmp_path).read_text() == render_markdown(result)


def test_verdict_never_claims_compliance_while_unverified(result):
    html = render_html(result)
    assert "Not verified" in html
    passing = [f for f in result.findings if f.status is Status.PASS]
    only_passing = ScanResult(**{**result.__dict__, "findings": tuple(passing)})
    assert "Every selected control was observed to hold." in render_html(only_passing)
