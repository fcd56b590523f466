"""Reports render every section from the same findings, escape markup and round-trip via JSON."""

from __future__ import annotations

import json
import os
import stat
from html.parser import HTMLParser
from pathlib import Path

from hipaacheck.model import Standard
from hipaacheck.render import render_html, render_json, render_markdown, write_report
from hipaacheck.result import ScanResult

from reports.sample import MARKUP, sample_result

GOLDEN = Path(__file__).parent / "golden"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k == "id" and v)
        self.scripts += tag == "script"

    def handle_data(self, data):
        self.text.append(data)


def test_html_has_every_section_and_escapes_markup():
    html = render_html(sample_result())
    parser = _Collector()
    parser.feed(html)
    assert {"summary", "scope", "findings", "unverified", "appendix"} <= parser.ids
    assert {f"std-{i}" for i in range(1, len(Standard) + 1)} <= parser.ids
    assert parser.scripts == 0
    assert MARKUP in "".join(parser.text)  # shown as text, not as markup
    assert "<script>" not in html


def test_markdown_matches_golden_file():
    text = render_markdown(sample_result())
    golden = GOLDEN / "report.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "<script>" not in text


def test_json_round_trips_to_the_same_reports():
    result = sample_result()
    rebuilt = ScanResult.from_json(json.loads(render_json(result)))
    assert rebuilt == result
    assert render_html(rebuilt) == render_html(result)


def test_report_files_are_owner_only(tmp_path):
    path = write_report(sample_result(), "html", tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_verdict_never_claims_compliance_while_unverified():
    html = render_html(sample_result())
    assert "Not verified" in html
