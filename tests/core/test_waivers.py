"""Waiver files are validated strictly; waivers mark findings, expire, and report staleness."""

from __future__ import annotations

import json
from datetime import date

import pytest
from core.scan_builders import finding, meta, result

from hipaacheck.errors import ConfigError
from hipaacheck.exitcodes import FAILED, INCOMPLETE, OK, exit_code
from hipaacheck.model import Status
from hipaacheck.result import ScanResult, WaiverState
from hipaacheck.waivers import apply_waivers, load_waivers, parse_waivers

CHECK = meta("logs.files.phi")
TODAY = date(2026, 12, 3)

WAIVERS = """\
version: 1
waivers:
  - id: legacy-batch
    check: logs.files.phi
    target: "logs:legacy-*"
    justification: Batch host retires in Q1; logs are on an encrypted, access-logged volume.
    approver: Jane Roe, CISO
    expires: 2027-03-31
  - check: logs.files.phi
    target: "logs:vendor"
    resource: "*/debug.log"
    justification: Vendor fix scheduled.
    approver: John Doe
    expires: 2026-11-30
  - id: stale
    check: logs.files.phi
    target: "logs:decommissioned"
    justification: Host was removed.
    approver: Jane Roe
    expires: 2027-01-31
"""


def _scan():
    return result([
        finding(CHECK, "logs:legacy-batch", "legacy-batch/app.log", Status.FAIL),
        finding(CHECK, "logs:legacy-batch", "legacy-batch/ok.log", Status.PASS),
        finding(CHECK, "logs:legacy-etl", "legacy-etl/x.log", Status.UNVERIFIED),
        finding(CHECK, "logs:vendor", "vendor/debug.log", Status.FAIL),
        finding(CHECK, "logs:web", "web/access.log", Status.PASS),
    ], ["logs:legacy-batch", "logs:legacy-etl", "logs:vendor", "logs:web"], [CHECK])


def test_waiver_marks_finding_keeps_status_and_reports_expired_and_unmatched():
    # Given one waiver in force, one expired and one naming a target that is gone
    waivers = parse_waivers(WAIVERS, known_checks={"logs.files.phi"})
    # When they are applied
    out = apply_waivers(_scan(), waivers, TODAY)
    by_resource = {f.resource: f for f in out.findings}
    # Then the covered failure keeps its status and carries the waiver
    legacy = by_resource["legacy-batch/app.log"]
    assert legacy.status is Status.FAIL and legacy.waiver is not None
    assert legacy.waiver.id == "legacy-batch" and legacy.waiver.expires == "2027-03-31"
    # A waiver never covers what could not be observed, nor what passed
    assert by_resource["legacy-etl/x.log"].waiver is None
    assert by_resource["legacy-batch/ok.log"].waiver is None
    # The expired waiver covers nothing, and the notes say it expired
    assert by_resource["vendor/debug.log"].waiver is None
    states = {w.id: (w.state, w.matched) for w in out.waivers}
    assert states == {"legacy-batch": (WaiverState.ACTIVE, 1), "W2": (WaiverState.EXPIRED, 1),
                      "stale": (WaiverState.UNMATCHED, 0)}
    assert any("W2" in n and "expired on 2026-11-30" in n for n in out.notes)
    assert any("stale" in n and "covered no" in n for n in out.notes)


def test_waiver_applies_through_its_expiry_day():
    waivers = parse_waivers(WAIVERS)
    on_the_day = apply_waivers(_scan(), waivers, date(2026, 11, 30))
    assert {w.id: w.state for w in on_the_day.waivers}["W2"] is WaiverState.ACTIVE
    day_after = apply_waivers(_scan(), waivers, date(2026, 12, 1))
    assert {w.id: w.state for w in day_after.waivers}["W2"] is WaiverState.EXPIRED


def test_waived_failure_no_longer_fails_the_exit_code():
    scan = result([finding(CHECK, "logs:legacy-a", "a.log", Status.FAIL),
                   finding(CHECK, "logs:web", "w.log", Status.PASS)],
                  ["logs:legacy-a", "logs:web"], [CHECK])
    assert exit_code(scan) == FAILED
    waived = apply_waivers(scan, parse_waivers(WAIVERS), TODAY)
    assert exit_code(waived) == OK
    assert exit_code(apply_waivers(scan, parse_waivers(WAIVERS), date(2027, 4, 1))) == FAILED


def test_unverified_stays_incomplete_whatever_the_waivers():
    waived = apply_waivers(_scan(), parse_waivers(WAIVERS), TODAY)
    assert exit_code(waived) == INCOMPLETE


def test_marks_and_waiver_uses_round_trip_through_json():
    out = apply_waivers(_scan(), parse_waivers(WAIVERS), TODAY)
    assert ScanResult.from_json(json.loads(json.dumps(out.to_json()))) == out


def test_applying_again_replaces_earlier_marks_and_notes():
    waivers = parse_waivers(WAIVERS)
    once = apply_waivers(_scan(), waivers, TODAY)
    later = apply_waivers(once, waivers, date(2027, 6, 1))
    assert all(f.waiver is None for f in later.findings)
    assert not any("covered no" in n for n in later.notes)
    assert sum("expired" in n for n in later.notes) == 3


@pytest.mark.parametrize("text,path", [
    ("waivers: [{check: a.b, target: 'logs:x', justification: j, approver: a}]",
     "waivers[0].expires"),
    (("waivers: [{check: a.b, target: 'logs:x', justification: j, approver: a, "
     "expires: 2027-01-01, colour: crimson}]"), "waivers[0].colour"),
    (("waivers: [{check: a.b, target: 'logs:x', justification: '  ', approver: a, "
     "expires: 2027-01-01}]"), "waivers[0].justification"),
    (("waivers: [{check: a.b, target: 'just-a-name', justification: j, approver: a, "
     "expires: 2027-01-01}]"), "waivers[0].target"),
    (("waivers: [{check: a.b, target: 'logs:x', justification: j, approver: a, "
     "expires: next-tuesday}]"), "waivers[0].expires"),
    ("version: 2\nwaivers: []", "version"),
])
def test_invalid_waiver_files_name_the_key_never_the_value(text, path):
    with pytest.raises(ConfigError) as err:
        parse_waivers(text, "w.yaml")
    assert path in err.value.explain() and "w.yaml:" in err.value.explain()
    assert "tuesday" not in err.value.explain() and "crimson" not in err.value.explain()


def test_unknown_check_and_repeated_id_are_refused():
    text = ("waivers:\n"
            "  - {id: x, check: no.such, target: 'logs:a', justification: j, approver: a, "
            "expires: 2027-01-01}\n"
            "  - {id: x, check: logs.files.phi, target: 'logs:a', justification: j, "
            "approver: a, expires: 2027-01-01}\n")
    with pytest.raises(ConfigError) as err:
        parse_waivers(text, "w.yaml", known_checks={"logs.files.phi"})
    message = err.value.explain()
    assert "w.yaml:2: waivers[0].check" in message and "w.yaml:3: waivers[1].id" in message


def test_load_waivers_reads_a_real_file(tmp_path):
    path = tmp_path / "waivers.yaml"
    path.write_text(WAIVERS)
    assert [w.id for w in load_waivers(path)] == ["legacy-batch", "W2", "stale"]
    with pytest.raises(ConfigError):
        load_waivers(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("waivers: [unclosed\n")
    with pytest.raises(ConfigError):
        load_waivers(tmp_path / "bad.yaml")
