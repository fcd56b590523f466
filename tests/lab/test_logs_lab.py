"""The logs lab writes deterministic log files on which the PHI check both fails and passes."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import yaml

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.files import PhiInLogFiles
from hipaacheck.clients import Clients
from hipaacheck.config import parse_inventory
from hipaacheck.detectors.phi import PhiDetector
from hipaacheck.lab.logs import SyntheticLogs, start_logs_lab, synthetic_patients
from hipaacheck.model import Status, TargetKind


def _context() -> CheckContext:
    return CheckContext(clients=Clients(timeout=5.0), policy=Policy(),
                        logger=logging.getLogger("test.lab.logs"),
                        clock=lambda: dt.datetime(2026, 12, 3, tzinfo=dt.UTC))


def test_the_lab_fails_and_passes_files_in_both_sinks(tmp_path: Path) -> None:
    part = start_logs_lab(tmp_path)
    inventory = parse_inventory(yaml.safe_dump(part.inventory), env=part.env)
    targets = [t for t in inventory.targets() if t.kind == TargetKind.LOG_SINK]
    assert [t.name for t in targets] == ["app", "edge"]
    check, ctx = PhiInLogFiles(), _context()
    statuses: dict[str, dict[str, Status]] = {}
    for target in targets:
        findings = check.evaluate(check.collect(ctx, target), target, Policy())
        statuses[target.name] = {Path(f.resource).name: f.status for f in findings}
    assert statuses == {
        "app": {"api.log": Status.FAIL, "api.log.1.gz": Status.PASS,
                "worker.log": Status.PASS},
        "edge": {"access.log": Status.PASS, "access.log-20261202.gz": Status.FAIL},
    }
    part.stop()
    part.stop()


def test_the_lab_is_deterministic(tmp_path: Path) -> None:
    start_logs_lab(tmp_path / "one")
    start_logs_lab(tmp_path / "two")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert len(files) == 5
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_no_synthetic_value_reaches_a_finding(tmp_path: Path) -> None:
    part = start_logs_lab(tmp_path)
    check, ctx = PhiInLogFiles(), _context()
    rendered = ""
    for target in parse_inventory(yaml.safe_dump(part.inventory)).targets():
        rendered += repr(check.evaluate(check.collect(ctx, target), target, Policy()))
    for patient in synthetic_patients(200):
        for value in (patient.ssn, patient.mrn, patient.email, patient.phone, patient.last,
                      patient.dob.isoformat(), patient.member_id, patient.card):
            assert value not in rendered


def test_synthetic_leaks_are_found_with_their_labels() -> None:
    logs, detector = SyntheticLogs(seed=3), PhiDetector()
    for fmt in SyntheticLogs.FORMATS:
        for _ in range(20):
            line, kinds = logs.leaking(fmt)
            assert {m.kind for m in detector.scan_line(line)} == kinds, fmt
            assert detector.scan_line(logs.clean(fmt)) == [], fmt
