"""
The result of one scan, and its versioned JSON form.

The JSON document is the contract between the scanner and everything after it: the renderers,
`hipaacheck report`, history and merging. Its schema is `hipaacheck.scan/1`, documented in the
README; a document of another schema is refused rather than guessed at.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hipaacheck.model import (
    CheckMeta,
    Endpoint,
    EndpointRecord,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    TargetKind,
    UnknownReason,
    Waived,
)

SCHEMA = "hipaacheck.scan/1"


@dataclass(frozen=True)
class TargetSummary:
    """A target of the scan as the report shows it: no configuration, no secrets."""

    id: str
    kind: TargetKind
    name: str


@dataclass(frozen=True)
class Shard:
    """
    Which share of the inventory a sharded scan covered: shard `index` (1-based) of `count`.
    """

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class WaiverState(str, enum.Enum):
    """What became of one waiver in a scan."""

    ACTIVE = "active"
    """In force and covering at least one FAIL or WARN finding."""
    EXPIRED = "expired"
    """Past its expiry date: the findings it named count again."""
    UNMATCHED = "unmatched"
    """In force but covering no FAIL or WARN finding: a candidate for removal."""


@dataclass(frozen=True)
class WaiverUse:
    """One waiver of the waiver file and what it did in this scan."""

    id: str
    check_id: str
    target_pattern: str
    resource_pattern: str
    justification: str
    approver: str
    expires: str
    state: WaiverState
    matched: int = 0
    """FAIL and WARN findings it covers (or, when expired, would have covered)."""


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
    scope: str = ""
    """Which scheduled job this scan is a run of (see `hipaacheck.sharding.scope_id`); history
    compares scans of one scope and shard. Empty in documents written before it existed."""
    shard: Shard | None = None
    """The share of the inventory this result covers; None for a whole (or merged) scan."""
    inventory_targets: tuple[TargetSummary, ...] = field(default=())
    """Every target of the inventory when `shard` is set, so a merge can tell what is missing."""
    waivers: tuple[WaiverUse, ...] = field(default=())
    endpoints: tuple[EndpointRecord, ...] = field(default=())
    """Every endpoint the checks found in control planes, and whether it was probed live."""

    @property
    def all_targets(self) -> tuple[TargetSummary, ...]:
        """Every target of the scanned inventory: this shard's share and the others'."""
        return self.inventory_targets or self.targets

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
                "scope": self.scope,
                "shard": _plain(asdict(self.shard)) if self.shard else None,
                "inventory_targets": [_plain(asdict(t)) for t in self.inventory_targets],
            },
            "summary": {s.value: n for s, n in self.counts().items()},
            "checks": [_plain(asdict(m)) for m in self.checks],
            "findings": [_finding_json(f) for f in self.findings],
            "waivers": [_plain(asdict(w)) for w in self.waivers],
            "endpoints": [_plain(asdict(e)) for e in self.endpoints],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScanResult:
        """Rebuild a result from its JSON document; raises ValueError on another schema."""
        if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        scan = doc["scan"]
        return cls(
            tool_version=doc["tool"]["version"], organization=scan["organization"],
            started=scan["started"], finished=scan["finished"],
            config_fingerprint=scan["config_fingerprint"],
            targets=_targets_from_json(scan["targets"]),
            checks=tuple(_meta_from_json(m) for m in doc["checks"]),
            findings=tuple(_finding_from_json(f) for f in doc["findings"]),
            complete=scan["complete"], interrupted=scan["interrupted"], tasks=scan["tasks"],
            notes=tuple(scan.get("notes", ())), scope=scan.get("scope") or "",
            shard=Shard(scan["shard"]["index"], scan["shard"]["count"])
            if scan.get("shard") else None,
            inventory_targets=_targets_from_json(scan.get("inventory_targets") or ()),
            waivers=tuple(_waiver_from_json(w) for w in doc.get("waivers") or ()),
            endpoints=tuple(_endpoint_from_json(e) for e in doc.get("endpoints") or ()))


def _targets_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[TargetSummary, ...]:
    return tuple(TargetSummary(t["id"], TargetKind(t["kind"]), t["name"]) for t in items)


def _endpoint_from_json(e: Mapping[str, Any]) -> EndpointRecord:
    return EndpointRecord(
        endpoint=Endpoint(**e["endpoint"]), probed=bool(e["probed"]), note=e["note"],
        target=e.get("target"), origins=tuple(e.get("origins") or ()),
        reason=e.get("reason") or "")


def _waiver_from_json(w: Mapping[str, Any]) -> WaiverUse:
    return WaiverUse(
        id=w["id"], check_id=w["check_id"], target_pattern=w["target_pattern"],
        resource_pattern=w["resource_pattern"], justification=w["justification"],
        approver=w["approver"], expires=w["expires"], state=WaiverState(w["state"]),
        matched=int(w.get("matched", 0)))


_PRIMITIVES = (str, int, float, bool, type(None))


def _finding_json(f: Finding) -> dict[str, Any]:
    """One finding as JSON, by hand: `asdict` deep-copies and dominates large scans' cost."""
    evidence = {k: v if isinstance(v, _PRIMITIVES) and not hasattr(v, "value") else _plain(v)
                for k, v in f.evidence.items()}
    return {
        "check_id": f.check_id, "target": f.target, "resource": f.resource,
        "status": f.status.value, "reason": f.reason, "severity": f.severity.value,
        "standard": f.standard.value, "citations": list(f.citations),
        "remediation": f.remediation, "evidence": evidence, "needs": f.needs,
        "unknown_reason": f.unknown_reason.value if f.unknown_reason else None,
        "waiver": _plain(asdict(f.waiver)) if f.waiver else None,
    }


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
        unknown_reason=UnknownReason(f["unknown_reason"]) if f.get("unknown_reason") else None,
        waiver=Waived(**f["waiver"]) if f.get("waiver") else None)
