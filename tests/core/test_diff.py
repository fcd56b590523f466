"""The diff of two scans: new failures, resolved ones, blind spots, targets and checks."""

from __future__ import annotations

import dataclasses
import json

from core.scan_builders import finding, meta, nightly, result
from rich.console import Console

from hipaacheck.diff import diff, print_diff
from hipaacheck.model import Endpoint, EndpointRecord, Status

CHECK = meta("fake.file")


def _keys(changes):
    return {(c.target, c.old, c.new) for c in changes}


def test_nightly_changes_land_in_their_buckets(tmp_path):
    # Given two real scans a night apart with a fix, a new failure, an expired waiver,
    # a vanished target, an unreadable target and a new one
    first, second = nightly(tmp_path)
    # When they are compared
    changes = diff(first, second)
    # Then each change is in its own bucket
    assert _keys(changes.new_failures) == {("logs:web", Status.PASS, Status.FAIL)}
    assert _keys(changes.resolved) == {("logs:api", Status.FAIL, Status.PASS)}
    assert _keys(changes.waivers_lapsed) == {("logs:batch", Status.FAIL, Status.FAIL)}
    assert {(c.target, c.new) for c in changes.became_unverified} == {
        ("logs:audit", Status.UNVERIFIED)}
    assert changes.targets_vanished == ("logs:gone",)
    assert changes.targets_appeared == ("logs:fresh",)
    assert changes.status_changes == () and not changes.empty
    # A vanished target's findings are never counted as fixed
    assert not any(c.target == "logs:gone" for c in changes.resolved)


def test_a_failure_that_could_not_be_looked_at_is_not_resolved():
    # Given a check that failed on two files, then lost access to the target
    old = result([finding(CHECK, "logs:a", "a1.log", Status.FAIL),
                  finding(CHECK, "logs:a", "a2.log", Status.PASS)], ["logs:a"], [CHECK])
    new = result([finding(CHECK, "logs:a", "a", Status.UNVERIFIED)], ["logs:a"], [CHECK])
    changes = diff(old, new)
    # Then the failure shows as no longer observed, never as resolved
    assert changes.resolved == ()
    assert {(c.resource, c.old, c.new) for c in changes.became_unverified} == {
        ("a1.log", Status.FAIL, None), ("a", None, Status.UNVERIFIED)}


def test_a_gone_resource_on_an_observed_target_is_resolved():
    old = result([finding(CHECK, "logs:a", "rotated.log", Status.FAIL),
                  finding(CHECK, "logs:a", "kept.log", Status.PASS)], ["logs:a"], [CHECK])
    new = result([finding(CHECK, "logs:a", "kept.log", Status.PASS)], ["logs:a"], [CHECK])
    assert _keys(diff(old, new).resolved) == {("logs:a", Status.FAIL, None)}


def test_checks_added_and_removed_and_identical_scans():
    other = meta("fake.other")
    old = result([finding(CHECK, "logs:a", "x", Status.PASS)], ["logs:a"], [CHECK])
    new = result([finding(other, "logs:a", "x", Status.PASS)], ["logs:a"], [other])
    changes = diff(old, new)
    assert changes.checks_added == ("fake.other",) and changes.checks_removed == ("fake.file",)
    assert changes.resolved == () and changes.new_failures == ()
    assert diff(old, old).empty


def test_repeated_key_is_judged_by_its_worst_finding():
    old = result([finding(CHECK, "logs:a", "x", Status.PASS)], ["logs:a"], [CHECK])
    new = result([finding(CHECK, "logs:a", "x", Status.PASS),
                  finding(CHECK, "logs:a", "x", Status.FAIL)], ["logs:a"], [CHECK])
    assert _keys(diff(old, new).new_failures) == {("logs:a", Status.PASS, Status.FAIL)}


def test_json_form_and_text_rendering(tmp_path):
    first, second = nightly(tmp_path)
    changes = diff(first, second, old_label="scan 1", new_label="scan 2")
    doc = json.loads(json.dumps(changes.to_json()))
    assert doc["schema"] == "hipaacheck.diff/1"
    assert doc["new_failures"][0]["new"] == "FAIL" and doc["targets_vanished"] == ["logs:gone"]
    console = Console(record=True, width=200)
    print_diff(changes, console)
    assert "logs:web" in console.export_text()


def test_markup_in_resource_names_is_printed_as_text():
    old = result([], ["logs:a"], [CHECK])
    new = result([finding(CHECK, "logs:a", "[bold]x[/bold]", Status.FAIL)], ["logs:a"], [CHECK])
    console = Console(record=True, width=200)
    print_diff(diff(old, new), console)
    assert "[bold]x[/bold]" in console.export_text()


def test_endpoints_newly_found_and_no_longer_found():
    # Given two scans whose control planes led to partly different endpoints
    def found(host: str) -> EndpointRecord:
        endpoint = Endpoint(host=host, port=443, source="aws:lab", origin=host, via="ELBv2")
        return EndpointRecord(endpoint, False, "not probed: probing is off for aws:lab")
    base = result([finding(CHECK, "logs:a", "x", Status.PASS)], ["logs:a"], [CHECK])
    old = dataclasses.replace(base, endpoints=(found("kept.example"), found("gone.example")))
    new = dataclasses.replace(base, endpoints=(found("kept.example"), found("new.example")))
    # When they are compared
    changes = diff(old, new)
    # Then each side's own endpoints are named, and the JSON and the text carry them
    assert changes.endpoints_appeared == ("new.example:443",)
    assert changes.endpoints_vanished == ("gone.example:443",)
    assert not changes.empty and diff(old, old).empty
    assert changes.to_json()["endpoints_vanished"] == ["gone.example:443"]
    console = Console(record=True, width=200)
    print_diff(changes, console)
    assert "Endpoints no longer found (1): gone.example:443" in console.export_text()
