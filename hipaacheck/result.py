"""
The result of one scan, and its versioned JSON form.

The JSON document is the contract between the scanner and everything after it: the renderers,
`hipaacheck report`, history and merging. Its schema is `hipaacheck.scan/1`, documented in the
README; a document of another schema is refused rather than guessed at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hipaacheck.model import (
    CheckMeta,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    TargetKind,
    UnknownReason,
)

SCHEMA = "hipaacheck.scan/1"


@dataclass(frozen=True)
class TargetSummary:
    """A target of the scan as the report shows it: no configuration, no secrets."""

    id: str
    kind: TargetKind
    name: str


@dataclass(frozen=True)
class ScanResult:
    """
    Everything a report needs about one scan.

    `complete` is False when the scan was interrupted or a task never finished; such a result is
    never summarised as compliant.
    """

    tool_version: str
    organization: str
    started: str
    finished: str
    config_fingerprint: str
    targets: tuple[TargetSummary, ...]
    checks: tuple[CheckMeta, ...]
    findings: tuple[Finding, ...]
    complete: bool = True
    interrupted: bool = False
    tasks: int = 0
    notes: tuple[str, ...] = field(default=())

    def counts(self, findings: Iterable[Finding] | None = None) -> dict[Status, int]:
        """Findings per status, every status present (zero where none)."""
        counter = Counter(f.status for f in (self.findings if findings is None else findings))
        return {status: counter.get(status, 0) for status in Status}

    def by_standard(self) -> dict[Standard, list[Finding]]:
        """Findings grouped by HIPAA standard, in the rule's order, every standard present."""
        groups: dict[Standard, list[Finding]] = {s: [] for s in Standard}
        for finding in self.findings:
            groups[finding.standard].append(finding)
        return groups

    def to_json(self) -> dict[str, Any]:
        """The `hipaacheck.scan/1` document."""
        return {
            "schema": SCHEMA,
            "tool": {"name": "hipaacheck", "version": self.tool_version},
            "scan": {
                "organization": self.organization,
                "started": self.started,
                "finished": self.finished,
                "complete": self.complete,
                "interrupted": self.interrupted,
                "tasks": self.tasks,
                "config_fingerprint": self.config_fingerprint,
                "notes": list(self.notes),
                "targets": [_plain(asdict(t)) for t in self.targets],
            },
            "summary": {s.value: n for s, n in self.counts().items()},
            "checks": [_plain(asdict(m)) for m in self.checks],
            "findings": [_plain(asdict(f)) for f in self.findings],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScanResult:
        """Rebuild a result from its JSON document; raises ValueError on another schema."""
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        scan = doc["scan"]
        return cls(
            tool_version=doc["tool"]["version"], organization=scan["organization"],
            started=scan["started"], finished=scan["finished"],
            config_fingerprint=scan["config_fingerprint"],
            targets=tuple(TargetSummary(t["id"], TargetKind(t["kind"]), t["name"])
                          for t in scan["targets"]),
            checks=tuple(_meta_from_json(m) for m in doc["checks"]),
            findings=tuple(_finding_from_json(f) for f in doc["findings"]),
            complete=scan["complete"], interrupted=scan["interrupted"], tasks=scan["tasks"],
            notes=tuple(scan.get("notes", ())))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    if isinstance(value, str) and hasattr(value, "value"):
        return value.value
    return value


def _meta_from_json(m: Mapping[str, Any]) -> CheckMeta:
    return CheckMeta(
        id=m["id"], title=m["title"], family=Family(m["family"]), standard=Standard(m["standard"]),
        citations=tuple(m["citations"]), severity=Severity(m["severity"]),
        target_kind=TargetKind(m["target_kind"]), description=m["description"],
        remediation=m["remediation"],
        operations=tuple(Operation(System(o["system"]), o["action"], o.get("why", ""))
                         for o in m["operations"]))


def _finding_from_json(f: Mapping[str, Any]) -> Finding:
    evidence = {k: tuple(v) if isinstance(v, list) else v for k, v in f["evidence"].items()}
    return Finding(
        check_id=f["check_id"], target=f["target"], resource=f["resource"],
        status=Status(f["status"]), reason=f["reason"], severity=Severity(f["severity"]),
        standard=Standard(f["standard"]), citations=tuple(f["citations"]),
        remediation=f["remediation"], evidence=evidence, needs=f.get("needs"),
        unknown_reason=UnknownReason(f["unknown_reason"]) if f.get("unknown_reason") else None)
