"""
Hand-built scan results and target-dependent fake checks for the history, diff, waiver and
sharding tests. The fake checks implement the real `Check` interface; results from them go
through the real runner and the real `run_scan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.config import Inventory, parse_inventory
from hipaacheck.errors import ProbeUnavailable
from hipaacheck.model import (
    CheckMeta,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    UnknownReason,
)
from hipaacheck.result import ScanResult, TargetSummary

FINGERPRINT = "ab" * 32


def meta(check_id: str, kind: TargetKind = TargetKind.LOG_SINK,
         severity: Severity = Severity.HIGH) -> CheckMeta:
    """Complete metadata for a hand-built check."""
    return CheckMeta(
        id=check_id, title=f"Check {check_id}", family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS, citations=("164.312(b)",), severity=severity,
        target_kind=kind, description="A test check.", remediation="Fix it.",
        operations=(Operation(System.FILE, "read"),))


def finding(m: CheckMeta, target: str, resource: str, status: Status, **kw: object) -> Finding:
    """A finding of check `m` as the FindingBuilder would make it."""
    return Finding(check_id=m.id, target=target, resource=resource, status=status,
                   reason=f"{status.value} on {resource}.", severity=m.severity,
                   standard=m.standard, citations=m.citations, remediation=m.remediation,
                   **kw)  # type: ignore[arg-type]


def result(findings: Sequence[Finding], targets: Sequence[str], checks: Sequence[CheckMeta],
           *, started: str = "2026-12-01T02:00:00+00:00", scope: str = "scope-a",
           complete: bool = True) -> ScanResult:
    """A scan result over log-sink targets named by id (`logs:NAME`)."""
    return ScanResult(
        tool_version="0.1.0", organization="Example Health", started=started,
        finished=started.replace(":00+", ":09+"), config_fingerprint=FINGERPRINT,
        targets=tuple(TargetSummary(t, TargetKind.LOG_SINK, t.split(":", 1)[1])
                      for t in targets),
        checks=tuple(checks), findings=tuple(findings), complete=complete,
        interrupted=not complete, tasks=len(targets) * len(checks), scope=scope)


@dataclass(frozen=True)
class Seen:
    """What the name-driven fake check observed: the target's name."""

    name: str


class ByName(Check[Seen]):
    """
    Judges a log sink by its name: `leaky*` FAIL, `old*` WARN, `locked*` cannot be read,
    anything else PASS. Two resources per target, so findings are not one per task.
    """

    def __init__(self, check_id: str = "fake.byname") -> None:
        self.meta = meta(check_id)  # type: ignore[misc]

    def collect(self, ctx: CheckContext, target: Target) -> Seen:
        if target.name.startswith("locked"):
            raise ProbeUnavailable(UnknownReason.ACCESS_DENIED, "denied", "file:read")
        return Seen(target.name)

    def evaluate(self, obs: Seen, target: Target, policy: Policy) -> Sequence[Finding]:
        out = self.findings(target)
        verdict = (out.failed if obs.name.startswith("leaky")
                   else out.warned if obs.name.startswith("old") else out.passed)
        return [verdict(f"{obs.name}/a.log", "Judged by name."),
                out.passed(f"{obs.name}/b.log", "Judged by name.")]


def sink_inventory(tmp_path: Path, names: Sequence[str]) -> Inventory:
    """A real, validated inventory of log sinks with these names (paths need not exist)."""
    sinks = ", ".join(f"{{name: {n}, paths: ['{tmp_path}/{n}.log']}}" for n in names)
    return parse_inventory(f"organization: Example Health\nlogs: {{sinks: [{sinks}]}}\n")


@dataclass(frozen=True)
class Read:
    """What the file-driven fake check read: the first word of the sink's file."""

    word: str
    resource: str


class FileVerdict(Check[Read]):
    """
    Judges a log sink by the first word of its (real) file: `fail`, `warn`, anything else PASS;
    a file that cannot be read is UNVERIFIED. Edit the file between scans to change the verdict.
    """

    meta = meta("fake.file")

    def collect(self, ctx: CheckContext, target: Target) -> Read:
        path = Path(target.config.paths[0])  # type: ignore[attr-defined]
        try:
            text = path.read_text()
        except OSError:
            raise ProbeUnavailable(UnknownReason.NOT_VISIBLE, "the file cannot be read",
                                   "file:read") from None
        return Read((text.split() or [""])[0], path.name)

    def evaluate(self, obs: Read, target: Target, policy: Policy) -> Sequence[Finding]:
        out = self.findings(target)
        verdict = {"fail": out.failed, "warn": out.warned}.get(obs.word, out.passed)
        return [verdict(obs.resource, "Judged by the file's first word.")]


def write_sinks(tmp_path: Path, words: dict[str, str | None]) -> Inventory:
    """Write one file per sink holding its word (None: no file) and the inventory naming them."""
    for name, word in words.items():
        path = tmp_path / f"{name}.log"
        if word is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(word + "\n")
    return sink_inventory(tmp_path, list(words))


NIGHTLY_WAIVERS = """\
waivers:
  - id: batch-accepted
    check: fake.file
    target: "logs:batch"
    justification: Batch host retires next month.
    approver: Jane Roe, CISO
    expires: 2026-12-01
"""


def nightly(tmp_path: Path) -> tuple[ScanResult, ScanResult]:
    """
    Two real scans a night apart. Between them: `api` was fixed, `web` started failing, the
    waiver on `batch` expired, `gone` left the inventory, `audit` became unreadable, and
    `fresh` was added.
    """
    from datetime import date

    from hipaacheck.registry import Registry
    from hipaacheck.scanning import run_scan
    from hipaacheck.waivers import parse_waivers

    registry = Registry.from_checks([FileVerdict()])
    waivers = parse_waivers(NIGHTLY_WAIVERS)
    first = run_scan(write_sinks(tmp_path, {"api": "fail", "batch": "fail", "web": "pass",
                                            "gone": "pass", "audit": "pass"}),
                     registry, waivers=waivers, today=date(2026, 12, 1))
    second = run_scan(write_sinks(tmp_path, {"api": "pass", "batch": "fail", "web": "fail",
                                             "audit": None, "fresh": "pass"}),
                      registry, waivers=waivers, today=date(2026, 12, 2))
    return first, second
