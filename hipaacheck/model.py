"""
The ground floor: statuses, check metadata, observed facts and findings.

Everything here is plain, immutable, serialisable data. This module imports nothing else from
hipaacheck, so every other floor can depend on it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeAlias, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class Status(str, enum.Enum):
    """
    The verdict of one finding, in the vocabulary of `MISSION.md`.
    """

    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    UNVERIFIED = "UNVERIFIED"
    ERROR = "ERROR"


class Severity(str, enum.Enum):
    """
    How much a failure of the control matters.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """
        An integer that orders severities from low (0) to critical (3).
        """
        return list(Severity).index(self)


class Family(str, enum.Enum):
    """
    The check families of `MISSION.md`.
    """

    TRANSMISSION = "transmission_security"
    ENCRYPTION = "encryption_at_rest"
    AUDIT = "audit_isolation"
    PHI_LOGS = "phi_in_logs"
    BACKUP = "backup_retention"
    ACCESS = "access_control"


class Standard(str, enum.Enum):
    """
    The HIPAA Security Rule standards the report is organised by.
    """

    ACCESS_CONTROL = "164.312(a)(1)"
    ENCRYPTION = "164.312(a)(2)(iv)"
    AUDIT_CONTROLS = "164.312(b)"
    INTEGRITY = "164.312(c)(1)"
    AUTHENTICATION = "164.312(d)"
    TRANSMISSION = "164.312(e)(1)"
    CONTINGENCY = "164.308(a)(7)"

    @property
    def label(self) -> str:
        """
        The standard's name as the rule words it.
        """
        return _STANDARD_TITLES[self]


_STANDARD_TITLES = {
    Standard.ACCESS_CONTROL: "Access control",
    Standard.ENCRYPTION: "Encryption and decryption (addressable)",
    Standard.AUDIT_CONTROLS: "Audit controls",
    Standard.INTEGRITY: "Integrity",
    Standard.AUTHENTICATION: "Person or entity authentication",
    Standard.TRANSMISSION: "Transmission security",
    Standard.CONTINGENCY: "Contingency plan: data backup",
}


class TargetKind(str, enum.Enum):
    """
    The kinds of thing a check can be pointed at, one per inventory section.
    """

    TLS_ENDPOINT = "tls_endpoint"
    AWS = "aws"
    KUBERNETES = "kubernetes"
    POSTGRES = "postgres"
    LOG_SINK = "log_sink"


class System(str, enum.Enum):
    """
    The kind of system a declared read-only operation is made against.
    """

    AWS = "aws"
    KUBERNETES = "kubernetes"
    POSTGRES = "postgres"
    TLS = "tls"
    FILE = "file"


@dataclass(frozen=True)
class Operation:
    """
    One read-only operation a check declares it makes.

    `action` is the system's own name for it: an IAM action (`s3:GetEncryptionConfiguration`),
    a Kubernetes verb and resource (`list storage.k8s.io/storageclasses`), a catalog view
    (`pg_catalog.pg_roles`), a TLS handshake or a file read.
    """

    system: System
    action: str
    why: str = ""


@dataclass(frozen=True)
class CheckMeta:
    """
    Everything hipaacheck knows about a check without running it.
    """

    id: str
    """A stable dotted id, `family_area.service.control`, e.g. `aws.rds.storage_encrypted`."""
    title: str
    family: Family
    standard: Standard
    """The standard whose report section the check's findings appear under."""
    citations: tuple[str, ...]
    """45 CFR sections, e.g. `164.312(a)(2)(iv)`."""
    severity: Severity
    target_kind: TargetKind
    description: str
    remediation: str
    operations: tuple[Operation, ...]

    def problems(self) -> list[str]:
        """
        What is missing or malformed in this metadata; empty when it is complete.
        """
        problems = []
        parts = self.id.split(".")
        if len(parts) < 2 or not all(p and p.replace("_", "").isalnum() and p == p.lower()
                                     for p in parts):
            problems.append("id must be dotted lowercase words, e.g. aws.rds.storage_encrypted")
        for name in ("title", "description", "remediation"):
            if not getattr(self, name).strip():
                problems.append(f"{name} is empty")
        if not self.citations:
            problems.append("no HIPAA citation")
        for citation in self.citations:
            if not citation.startswith("164."):
                problems.append(f"citation {citation!r} is not a 45 CFR 164 section")
        if not self.operations:
            problems.append("no declared operations")
        return problems


class UnknownReason(str, enum.Enum):
    """
    Why a fact could not be observed.
    """

    ACCESS_DENIED = "access_denied"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    UNPARSEABLE = "unparseable"
    NOT_SUPPORTED = "not_supported"
    NOT_VISIBLE = "not_visible"
    THROTTLED = "throttled"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Unknown:
    """
    A fact that could not be observed, with the reason.

    `needs` names what would let the tool look: an IAM action, a Kubernetes permission, a
    PostgreSQL role, network reachability.
    """

    reason: UnknownReason
    detail: str
    needs: str | None = None


Fact: TypeAlias = T | Unknown
"""A value that was observed, or `Unknown` with the reason it was not."""


def known(fact: object) -> bool:
    """
    True when `fact` holds an observed value rather than `Unknown`.
    """
    return not isinstance(fact, Unknown)


EvidenceValue: TypeAlias = str | int | float | bool | None | tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class Waived:
    """
    The accepted-risk waiver that covers a finding: who accepted it, why, and until when.

    `expires` is an ISO date; the waiver applies through that day (UTC).
    """

    id: str
    justification: str
    approver: str
    expires: str


@dataclass(frozen=True)
class Finding:
    """
    One verdict on one resource for one check: the unit of every report.

    `target` is the inventory target the check ran against (`aws:lab:us-east-1`); `resource` is
    the thing judged inside it (a bucket, an endpoint, a table). Evidence holds only
    non-sensitive facts: never a secret, never a matched identifier's value.
    """

    check_id: str
    target: str
    resource: str
    status: Status
    reason: str
    severity: Severity
    standard: Standard
    citations: tuple[str, ...]
    remediation: str
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)
    needs: str | None = None
    """For UNVERIFIED findings: the access that would let the tool look."""
    unknown_reason: UnknownReason | None = None
    waiver: Waived | None = None
    """Set when an accepted-risk waiver covers this finding; the status stays as observed."""

    @property
    def key(self) -> tuple[str, str, str]:
        """
        The stable identity of this finding across scans.
        """
        return (self.check_id, self.target, self.resource)


@dataclass(frozen=True)
class Target:
    """
    One thing from the inventory that checks run against.

    `config` is the validated inventory section for it; it never reaches a report.
    """

    kind: TargetKind
    id: str
    name: str
    config: object = field(default=None, compare=False, repr=False)


Zone = Literal["internal", "external"]
"""Where an endpoint is reached from: the public internet, or inside the organisation."""


@dataclass(frozen=True)
class Endpoint:
    """
    A network endpoint that a check found in a control plane (a load balancer listener, an
    Ingress host, a database address), offered for live TLS probing.

    `source` is the id of the target whose check found it and `origin` the resource it belongs
    to. `tls` says whether the configuration means it to carry TLS: a plaintext listener is
    listed but never probed, its configuration having already been judged. `unprobeable`
    names why no TLS probe could observe it (a database whose TLS upgrade the prober does not
    speak), and is None when it can be probed.
    """

    host: str
    port: int
    source: str
    origin: str
    via: str
    """What the endpoint is, in words: `ELBv2 listener`, `Ingress host`, `RDS instance`."""
    zone: Zone = "external"
    tls: bool = True
    starttls: Literal["postgres"] | None = None
    unprobeable: str | None = None

    @property
    def address(self) -> str:
        """`host:port`, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


ENDPOINT_REASONS: Mapping[str, str] = {
    "direct": "directly",
    "connect_to": "through probe_endpoints.connect_to",
    "configured": "as a configured TLS endpoint",
    "plaintext": "plaintext by configuration (judged by the configuration checks)",
    "unprobeable": "a protocol whose TLS negotiation the prober does not speak",
    "off": "probing is off for its source (set probe_endpoints)",
    "budget": "beyond its source's probe_endpoints.max_endpoints",
    "filtered": "outside probe_endpoints.include and exclude",
    "wildcard": "a wildcard host names no single endpoint",
    "no_tls_check": "no TLS endpoint check is selected",
    "interrupted": "the scan was interrupted before its probing phase",
}
"""`EndpointRecord.reason` keys, and the class a report counts each under. An unprobeable
endpoint is counted under its discovering check's own words instead."""


@dataclass(frozen=True)
class EndpointRecord:
    """
    One endpoint the scan found and what became of it: probed as `target` (a TLS endpoint
    target of the scan), or not, and why (`note`). `origins` lists every source and resource
    that led to it, `via` and `origin` joined by a space, when several did.
    """

    endpoint: Endpoint
    probed: bool
    note: str
    target: str | None = None
    origins: tuple[str, ...] = ()
    reason: str = ""
    """What the note says, as a stable key of `ENDPOINT_REASONS`: how it was
    probed, or why not; empty in documents written before it existed."""


class FindingBuilder(Generic[T]):
    """
    Builds findings that carry a check's metadata, so evaluate functions stay short.
    """

    def __init__(self, meta: CheckMeta, target: Target) -> None:
        self.meta = meta
        self.target = target

    def make(self, status: Status, resource: str, reason: str, *,
             evidence: Mapping[str, EvidenceValue] | None = None, needs: str | None = None,
             unknown_reason: UnknownReason | None = None) -> Finding:
        """
        A finding of this check on `resource` inside the builder's target.
        """
        return Finding(
            check_id=self.meta.id, target=self.target.id, resource=resource, status=status,
            reason=reason, severity=self.meta.severity, standard=self.meta.standard,
            citations=self.meta.citations, remediation=self.meta.remediation,
            evidence=dict(evidence or {}), needs=needs, unknown_reason=unknown_reason)

    def passed(self, resource: str, reason: str, **kw: object) -> Finding:
        """A PASS finding."""
        return self.make(Status.PASS, resource, reason, **kw)  # type: ignore[arg-type]

    def failed(self, resource: str, reason: str, **kw: object) -> Finding:
        """A FAIL finding."""
        return self.make(Status.FAIL, resource, reason, **kw)  # type: ignore[arg-type]

    def warned(self, resource: str, reason: str, **kw: object) -> Finding:
        """A WARN finding."""
        return self.make(Status.WARN, resource, reason, **kw)  # type: ignore[arg-type]

    def each(self, listing: Fact[Sequence[V]], resource: str, what: str, empty: str,
             judge: Callable[[V], Finding]) -> list[Finding]:
        """
        One finding per listed item; UNVERIFIED when the listing itself could not be read.

        An empty listing passes only because it was read: `empty` says why nothing is judged.
        """
        if isinstance(listing, Unknown):
            return [self.unverified(resource, listing, what)]
        if not listing:
            return [self.passed(resource, empty, evidence={"count": 0})]
        return [judge(item) for item in listing]

    def unverified(self, resource: str, unknown: Unknown, what: str = "") -> Finding:
        """
        An UNVERIFIED finding for a fact that could not be observed.

        `what` names the fact ("default encryption"), so the reason reads as a sentence.
        """
        prefix = f"Could not observe {what}: " if what else "Could not observe: "
        return self.make(Status.UNVERIFIED, resource, prefix + unknown.detail,
                         needs=unknown.needs, unknown_reason=unknown.reason)
