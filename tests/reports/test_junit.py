"""JUnit XML is well formed, has one test case per finding, and never shows unverified as green."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from report_sample import finding

from hipaacheck.model import Status
from hipaacheck.render.junit import render_junit
from hipaacheck.result import ScanResult

OUTCOME = {Status.FAIL: "failure", Status.ERROR: "error", Status.UNVERIFIED: "skipped"}


def _cases(root: ET.Element) -> list[ET.Element]:
    return root.findall("./testsuite/testcase")


def test_one_case_per_finding_with_the_status_as_outcome(result):
    root = ET.fromstring(render_junit(result))
    cases = _cases(root)
    assert len(cases) == len(result.findings)
    by_name = {(c.get("classname"), c.get("name")): c for c in cases}
    for f in result.findings:
        case = by_name[(f.check_id, f"{f.target} {f.resource}")]
        children = {child.tag for child in case}
        expected = OUTCOME.get(f.status)
        if expected:
            assert expected in children
            assert case.find(expected).get("message")
        else:
            assert not children & set(OUTCOME.values())


def test_counts_on_suites_and_root_agree_with_the_cases(result):
    root = ET.fromstring(render_junit(result))
    counts = result.counts()
    assert int(root.get("tests")) == len(result.findings)
    assert int(root.get("failures")) == counts[Status.FAIL]
    assert int(root.get("errors")) == counts[Status.ERROR]
    assert int(root.get("skipped")) == counts[Status.UNVERIFIED]
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)


def test_unverified_is_skipped_with_the_reason_and_missing_access(result):
    root = ET.fromstring(render_junit(result))
    skipped = [c.find("skipped").get("message") for c in _cases(root)
               if c.find("skipped") is not None]
    assert any("access_denied" in m and "s3:GetEncryptionConfiguration" in m for m in skipped)


def test_control_characters_in_names_still_give_well_formed_xml(result):
    odd = finding(Status.FAIL, "bucket\x00with\x1bcontrol\x07chars")
    doc = render_junit(ScanResult(**{**result.__dict__, "findings": (odd,)}))
    case = _cases(ET.fromstring(doc))[0]
    assert case.get("name").startswith("aws:lab bucket")


def test_an_interrupted_or_empty_scan_adds_an_errored_case(result):
    cut = ScanResult(**{**result.__dict__, "complete": False, "interrupted": True})
    root = ET.fromstring(render_junit(cut))
    assert int(root.get("errors")) == result.counts()[Status.ERROR] + 1
    empty = ScanResult(**{**result.__dict__, "findings": (), "tasks": 0})
    root = ET.fromstring(render_junit(empty))
    assert [c.get("classname") for c in _cases(root)] == ["hipaacheck.scan"]
    assert root.get("errors") == "1"
