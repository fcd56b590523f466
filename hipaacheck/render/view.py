"""
The report's view model: the scan result arranged the way every report format presents it.

Templates only lay this out; ordering, grouping and counting happen here, once. Findings are
grouped by check and status and counted, so the size of a report grows with the number of
checks, not with the number of resources: a scan of 100,000 resources still renders a report a
browser opens at once, and the full detail stays in the JSON document.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hipaacheck.exitcodes import verdict
from hipaacheck.model import (
    ENDPOINT_REASONS,
    CheckMeta,
    EndpointRecord,
    EvidenceValue,
    Family,
    Finding,
    Severity,
    Standard,
    Status,
    System,
    TargetKind,
    UnknownReason,
)
from hipaacheck.render.chart import Chart, status_chart
from hipaacheck.result import ScanResult, TargetSummary, WaiverState, WaiverUse

# Most urgent first: what failed, what broke, what could not be seen, then the rest.
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.UNVERIFIED, Status.WARN, Status.PASS)

RESOURCE_LIMIT = 20
"""Resources named in a group of findings; the rest are counted (all of them are in the JSON)."""
VALUE_LIMIT = 5
"""Distinct reasons, evidence values and missing permissions shown per group."""
TARGET_LIMIT = 300
"""Targets listed per kind on the scope page."""
PRIORITY_LIMIT = 10
"""Groups of failed findings listed as priorities in the executive summary."""
TEXT_LIMIT = 300
"""Characters of one evidence value or reason shown; longer text is cut with an ellipsis."""
STORE_LIMIT = 200
"""Rows of the Audit controls table and of the retention map; the rest are counted."""
ENTRY_LIMIT = 8
"""Values shown in one cell of those tables; the rest are counted (all of them are in the JSON)."""
ENDPOINT_LIMIT = STORE_LIMIT
"""Rows of the Discovered endpoints table; the rest are counted (all of them are in the JSON)."""

# The worst status among a probed endpoint's findings: ERROR, then FAIL > WARN > UNVERIFIED >
# PASS. A probed endpoint with no finding at all ranks just before PASS: nothing judged it.
ENDPOINT_ORDER = (Status.ERROR, Status.FAIL, Status.WARN, Status.UNVERIFIED, Status.PASS)
_ENDPOINT_RANK = {s: i for i, s in enumerate(ENDPOINT_ORDER)}
_PROBED_RANK: dict[Status | None, int] = {
    **{s: i for i, s in enumerate(ENDPOINT_ORDER[:-1])}, None: len(ENDPOINT_ORDER) - 1,
    Status.PASS: len(ENDPOINT_ORDER)}
NO_FINDING = "no finding recorded"
"""What the Discovered endpoints table says of a probed endpoint whose target has no finding."""

_NOT_PROBED = "not probed: "

SYSTEM_METHODS: dict[System, tuple[str, str]] = {
    System.TLS: ("TLS endpoints", (
        "TCP connections and TLS handshakes from the scanning host: which protocol versions "
        "each endpoint accepts and which certificate chain it presents. No application request "
        "is sent and no attack-shaped probe is run.")),
    System.AWS: ("AWS accounts", (
        "AWS API calls with the account's read-only credentials. A guard inside the client "
        "refuses, before sending, every operation that is not a Describe, Get, List or Head "
        "call or a named read.")),
    System.KUBERNETES: ("Kubernetes clusters", (
        "Kubernetes API reads with the get and list verbs only; the client refuses every other "
        "HTTP method.")),
    System.POSTGRES: ("PostgreSQL servers", (
        "Read-only sessions (default_transaction_read_only) that query catalog and settings "
        "views and the audit relations named in the inventory.")),
    System.FILE: ("Files on the scanning host", (
        "Files read on the scanning host. Matches are counted and masked inside the detector; "
        "no matched value is kept.")),
}
"""Per system: the heading and how it was observed, for the methodology section."""

KIND_LABELS: dict[TargetKind, tuple[str, str]] = {
    TargetKind.TLS_ENDPOINT: ("TLS endpoint", "TLS endpoints"),
    TargetKind.AWS: ("AWS account region", "AWS account regions"),
    TargetKind.KUBERNETES: ("Kubernetes cluster", "Kubernetes clusters"),
    TargetKind.POSTGRES: ("PostgreSQL database", "PostgreSQL databases"),
    TargetKind.LOG_SINK: ("log sink", "log sinks"),
}
"""Per target kind: how one and several of them are called."""

NOT_OBSERVED = "not observed"
"""What a cell of the Audit controls table or the retention map says when no check saw it."""

TRAIL_KINDS: dict[str, str] = {
    "postgres_table": "PostgreSQL table",
    "s3_bucket": "S3 bucket",
    "cloudwatch_log_group": "CloudWatch Logs group",
    "cloudtrail": "CloudTrail trail",
    "kubernetes_workload": "Kubernetes audit writer workload",
    "kubernetes_secret": "Kubernetes Secret of the audit store",
}
"""The `trail_kind` evidence values of the audit checks, in table order, and their names."""

AUDIT_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Who can write", ("trail_writers",)),
    ("Who can change or delete", ("trail_modifiers", "trail_app_can_modify")),
    ("Where it lives", ("trail_location",)),
    ("How long it is kept", ("trail_retention",)),
    ("Breach query answerable", ("trail_breach_query",)),
    ("Shares the application's credentials", ("trail_shares_app_credentials",)),
)
"""The Audit controls columns after the store's own, and the evidence keys that fill each."""


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` with thousands separators and the noun in the right number: "1 check", "2 checks"."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows that the scan result itself does not hold."""

    assessor: str | None = None
    """Who performed the assessment, printed on the cover page when given."""
    scope: str | None = None
    """A sentence describing the scope, printed above the counts derived from the targets."""


@dataclass(frozen=True)
class Tally:
    """A value and how many findings share it."""

    value: str
    count: int


@dataclass(frozen=True)
class EvidenceSummary:
    """One evidence key across a group: its most common values and how many others there are."""

    key: str
    values: tuple[Tally, ...]
    others: int


@dataclass(frozen=True)
class FindingGroup:
    """
    The findings of one check with one status, counted.

    A group of one is shown in full; a larger group shows its most common reasons and evidence
    values with counts and names its first `RESOURCE_LIMIT` resources.
    """

    anchor: str
    check_id: str
    title: str
    status: Status
    severity: Severity
    citations: tuple[str, ...]
    remediation: str
    count: int
    targets: int
    reasons: tuple[Tally, ...]
    reasons_more: int
    resources: tuple[tuple[str, str], ...]
    evidence: tuple[EvidenceSummary, ...]
    needs: tuple[Tally, ...]
    waived: tuple[Tally, ...] = ()
    """Waiver ids covering findings of the group, with how many each covers."""

    @property
    def more(self) -> int:
        """Resources in the group that are not named."""
        return self.count - len(self.resources)

    @property
    def waived_count(self) -> int:
        """Findings of the group that an accepted-risk waiver covers."""
        return sum(t.count for t in self.waived)


@dataclass(frozen=True)
class UnobservedGroup:
    """UNVERIFIED or ERROR findings of one check that share a reason code and a missing access."""

    status: Status
    check_id: str
    anchor: str
    unknown_reason: str
    needs: str
    count: int
    example: str
    resources: tuple[tuple[str, str], ...]

    @property
    def more(self) -> int:
        """Resources in the group that are not named."""
        return self.count - len(self.resources)


@dataclass(frozen=True)
class Section:
    """One HIPAA standard: its groups of findings, most urgent first, and their counts."""

    standard: Standard
    title: str
    counts: dict[str, int]
    groups: tuple[FindingGroup, ...]

    @property
    def total(self) -> int:
        """Findings under this standard."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class OperationUse:
    """One declared read-only operation, why it is made and which checks make it."""

    action: str
    why: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Method:
    """How one kind of system was observed, and every read-only operation made against it."""

    system: str
    label: str
    how: str
    operations: tuple[OperationUse, ...]


@dataclass(frozen=True)
class TargetGroup:
    """The targets of one kind, listed up to `TARGET_LIMIT`."""

    kind: str
    label: str
    count: int
    targets: tuple[TargetSummary, ...]

    @property
    def more(self) -> int:
        """Targets of this kind that are not listed."""
        return self.count - len(self.targets)


@dataclass(frozen=True)
class Traced:
    """
    An observed value and the finding it came from, so a reader can trace it.

    `anchor` is the id of the finding group of that check and status in the findings section.
    """

    text: str
    check_id: str
    status: Status
    anchor: str


@dataclass(frozen=True)
class Cell:
    """One property of an audit store: every value the checks observed for it, or none."""

    entries: tuple[Traced, ...]
    """Most urgent status first; empty when no check observed the property."""
    more: int = 0
    """Distinct values observed beyond the `ENTRY_LIMIT` shown."""


@dataclass(frozen=True)
class AuditStore:
    """
    One row of the Audit controls table: an audit store of one target, as the checks saw it.

    `cells` follow `AUDIT_COLUMNS`. `trail` is the store id from the evidence (`schema.table`,
    `s3://bucket`, `logs:/group`, a trail ARN, `k8s:...`); it is empty for the row that holds
    target-wide findings of a target whose stores were not named by any finding.
    """

    target: str
    trail: str
    name: str
    kind: str
    label: str
    checks: tuple[Traced, ...]
    """Every check that judged the store, with its status (`text` is empty)."""
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class StorelessGroup:
    """
    Findings of an audit check, other than PASS, that carry no store evidence, counted: the
    store could not be observed, or none was found.
    """

    check_id: str
    status: Status
    anchor: str
    count: int
    example: str


@dataclass(frozen=True)
class AuditControls:
    """The Audit controls section: one row per audit store, and what fits in no row."""

    columns: tuple[str, ...] = ()
    stores: tuple[AuditStore, ...] = ()
    more: int = 0
    """Audit stores beyond the `STORE_LIMIT` listed."""
    storeless: tuple[StorelessGroup, ...] = ()


@dataclass(frozen=True)
class Copy:
    """One copy of a resource's data: what it is, where it lives and how long it is kept."""

    kind: str
    location: str
    kept: str


@dataclass(frozen=True)
class RetentionSource:
    """The copies that one check, with one status, reported for a resource."""

    check_id: str
    status: Status
    anchor: str
    copies: tuple[Copy, ...]
    more: int = 0
    """Copies beyond the `ENTRY_LIMIT` shown."""
    incomplete: bool = False
    """True when the check said some source of copies could not be read."""


@dataclass(frozen=True)
class RetentionRow:
    """One resource of the retention map, with its copies per reporting check."""

    target: str
    resource: str
    store: str
    sources: tuple[RetentionSource, ...]


@dataclass(frozen=True)
class RetentionMap:
    """The Retention map section: one row per resource whose copies or retention was seen."""

    rows: tuple[RetentionRow, ...] = ()
    more: int = 0
    """Resources beyond the `STORE_LIMIT` listed."""


@dataclass(frozen=True)
class Origin:
    """Where an endpoint was found: the source target, and the resource there that leads to it."""

    source: str
    resource: str
    """What the resource is and its name (`ELBv2 listener app/portal/1f2e`)."""


@dataclass(frozen=True)
class EndpointRow:
    """
    One endpoint the scan found in a control plane, and what became of it.

    For a probed endpoint, `status` is the worst status of the findings of its TLS target
    (`target`) and `checks` every check that judged it, with its status and the anchor of its
    finding group; `status` is None when no finding names the target (nothing judged it).
    """

    address: str
    zone: str
    via: str
    origins: tuple[Origin, ...]
    """Every source and resource that leads to the endpoint, up to `ENTRY_LIMIT`."""
    origins_more: int
    probed: bool
    note: str
    reason: str
    """The class the endpoint is counted under (`endpoint_reason`)."""
    target: str
    status: Status | None
    findings: int
    checks: tuple[Traced, ...]
    checks_more: int = 0


@dataclass(frozen=True)
class DiscoveredEndpoints:
    """
    The Discovered endpoints part of the transmission security section: every endpoint the
    checks found in control planes, whether it was probed and what its probe found.

    `shown` is False when the section is left out: no endpoint was found and no transmission
    security check ran. Rows are the `ENDPOINT_LIMIT` most urgent: probed endpoints by worst
    status, then endpoints not probed, each by address.
    """

    shown: bool = False
    standard: Standard = Standard.TRANSMISSION
    """The section of the report the part belongs under."""
    rows: tuple[EndpointRow, ...] = ()
    found: int = 0
    probed: int = 0
    not_probed: int = 0
    probed_by: tuple[Tally, ...] = ()
    """Probed endpoints per class: directly, as a configured endpoint, through connect_to."""
    not_probed_by: tuple[Tally, ...] = ()
    """Endpoints not probed per reason class."""
    worst: tuple[Tally, ...] = ()
    """Probed endpoints per worst status of their findings, worst first; `NO_FINDING` last."""
    more_probed: int = 0
    """Probed endpoints beyond the rows listed."""
    more_not_probed: int = 0
    """Endpoints not probed beyond the rows listed."""

    @property
    def more(self) -> int:
        """Endpoints beyond the rows listed."""
        return self.more_probed + self.more_not_probed


@dataclass(frozen=True)
class ReportView:
    """Everything a report template reads."""

    result: ScanResult
    options: ReportOptions
    verdict: str
    date: str
    scope: str
    statuses: tuple[str, ...]
    counts: dict[str, int]
    total: int
    sections: tuple[Section, ...]
    chart: Chart
    targets: tuple[TargetGroup, ...]
    methods: tuple[Method, ...]
    unobserved: tuple[UnobservedGroup, ...]
    unknown_reasons: tuple[Tally, ...]
    checks: tuple[CheckMeta, ...]
    families: tuple[Tally, ...] = field(default=())
    priorities: tuple[FindingGroup, ...] = field(default=())
    resource_limit: int = RESOURCE_LIMIT
    waivers: tuple[WaiverUse, ...] = field(default=())
    audit: AuditControls = field(default_factory=AuditControls)
    retention: RetentionMap = field(default_factory=RetentionMap)
    endpoints: DiscoveredEndpoints = field(default_factory=DiscoveredEndpoints)


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` cut to `limit` characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_text(value: object) -> str:
    """An evidence value as report text: lists joined, booleans as yes or no."""
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _tallies(counter: Counter[str], limit: int = VALUE_LIMIT) -> tuple[tuple[Tally, ...], int]:
    """The `limit` most common values (ties in text order) and how many findings hold others."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = tuple(Tally(clip(value), n) for value, n in ranked[:limit])
    return shown, sum(n for _, n in ranked[limit:])


def anchor(*parts: str) -> str:
    """An HTML id made of `parts`: letters, digits, dots and dashes only."""
    text = "-".join(parts)
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text)


def _group(findings: Sequence[Finding], titles: dict[str, str]) -> FindingGroup:
    first = findings[0]
    reasons, _ = _tallies(Counter(f.reason for f in findings))
    evidence: dict[str, Counter[str]] = defaultdict(Counter)
    for f in findings:
        for key, value in f.evidence.items():
            evidence[key][evidence_text(value)] += 1
    summaries = tuple(EvidenceSummary(key, *_tallies(evidence[key])) for key in sorted(evidence))
    needs, _ = _tallies(Counter(f.needs for f in findings if f.needs))
    waived, _ = _tallies(Counter(f.waiver.id for f in findings if f.waiver), limit=100)
    named = sorted(findings, key=lambda f: (f.target, f.resource))[:RESOURCE_LIMIT]
    return FindingGroup(
        anchor=anchor("g", first.check_id, first.status.value), check_id=first.check_id,
        title=titles.get(first.check_id, first.check_id), status=first.status,
        severity=first.severity, citations=first.citations, remediation=first.remediation,
        count=len(findings), targets=len({f.target for f in findings}), reasons=reasons,
        reasons_more=len({f.reason for f in findings}) - len(reasons),
        resources=tuple((f.target, clip(f.resource)) for f in named), evidence=summaries,
        needs=needs, waived=waived)


def _groups(findings: Iterable[Finding], titles: dict[str, str]) -> tuple[FindingGroup, ...]:
    """Groups by check and status: most urgent status first, then severity, then check id."""
    buckets: dict[tuple[str, Status], list[Finding]] = defaultdict(list)
    for f in findings:
        buckets[(f.check_id, f.status)].append(f)
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    keys = sorted(buckets, key=lambda k: (rank[k[1]], -buckets[k][0].severity.rank, k[0]))
    return tuple(_group(buckets[k], titles) for k in keys)


def _unobserved(findings: Iterable[Finding]) -> tuple[UnobservedGroup, ...]:
    """UNVERIFIED and ERROR findings grouped by status, check, reason code and missing access."""
    buckets: dict[tuple[int, str, str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.status in (Status.UNVERIFIED, Status.ERROR):
            reason = f.unknown_reason.value if f.unknown_reason else "-"
            order = 0 if f.status is Status.ERROR else 1
            buckets[(order, f.check_id, reason, f.needs or "")].append(f)
    groups = []
    for key in sorted(buckets):
        items = sorted(buckets[key], key=lambda f: (f.target, f.resource))
        _, check_id, reason, needs = key
        groups.append(UnobservedGroup(
            status=items[0].status, check_id=check_id,
            anchor=anchor("g", check_id, items[0].status.value), unknown_reason=reason,
            needs=needs, count=len(items), example=clip(items[0].reason),
            resources=tuple((f.target, clip(f.resource)) for f in items[:RESOURCE_LIMIT])))
    return tuple(groups)


def _methods(checks: Sequence[CheckMeta]) -> tuple[Method, ...]:
    """Every declared operation, per system, with the checks that declare it."""
    uses: dict[System, dict[str, tuple[str, set[str]]]] = defaultdict(dict)
    for meta in checks:
        for op in meta.operations:
            why, ids = uses[op.system].get(op.action, (op.why, set()))
            ids.add(meta.id)
            uses[op.system][op.action] = (why or op.why, ids)
    methods = []
    for system in System:
        if system in uses:
            label, how = SYSTEM_METHODS[system]
            ops = tuple(OperationUse(action, why, tuple(sorted(ids)))
                        for action, (why, ids) in sorted(uses[system].items()))
            methods.append(Method(system.value, label, how, ops))
    return tuple(methods)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _targets(targets: Sequence[TargetSummary]) -> tuple[TargetGroup, ...]:
    by_kind: dict[TargetKind, list[TargetSummary]] = defaultdict(list)
    for t in targets:
        by_kind[t.kind].append(t)
    return tuple(TargetGroup(kind.value, _capital(KIND_LABELS[kind][1]), len(by_kind[kind]),
                             tuple(sorted(by_kind[kind], key=lambda t: t.id)[:TARGET_LIMIT]))
                 for kind in TargetKind if kind in by_kind)


def _scope_line(result: ScanResult, targets: Sequence[TargetGroup]) -> str:
    kinds = "; ".join(counted(g.count, *KIND_LABELS[TargetKind(g.kind)]) for g in targets)
    shard = f" (shard {result.shard.index} of {result.shard.count})" if result.shard else ""
    return f"{counted(len(result.checks), 'check')} against {kinds or 'no targets'}{shard}"


def _date(timestamp: str) -> str:
    try:
        return datetime.fromisoformat(timestamp).strftime("%d %B %Y")
    except ValueError:
        return timestamp


def _waivers(waivers: Iterable[WaiverUse]) -> tuple[WaiverUse, ...]:
    """Waivers in force first, then expired ones, then those that match nothing."""
    order = {WaiverState.ACTIVE: 0, WaiverState.EXPIRED: 1, WaiverState.UNMATCHED: 2}
    return tuple(sorted(waivers, key=lambda w: (order.get(w.state, 3), w.id)))


def _priorities(sections: Sequence[Section]) -> tuple[FindingGroup, ...]:
    """Failed groups, most severe and most widespread first."""
    failed = [g for s in sections for g in s.groups if g.status is Status.FAIL]
    failed.sort(key=lambda g: (-g.severity.rank, -g.count, g.check_id))
    return tuple(failed[:PRIORITY_LIMIT])


_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
_TRAIL_KEYS = frozenset(key for _, keys in AUDIT_COLUMNS for key in keys)
_EVERY_STORE = "every audit store of this target; no finding named one"


def _traced(text: str, f: Finding) -> Traced:
    return Traced(clip(text), f.check_id, f.status, anchor("g", f.check_id, f.status.value))


def _ranked(items: Iterable[Traced]) -> tuple[Traced, ...]:
    """Distinct entries, most urgent status first, then by check id, then as first seen."""
    return tuple(sorted(dict.fromkeys(items), key=lambda t: (_RANK[t.status], t.check_id)))


def _trail_text(key: str, value: object) -> str:
    """One `trail_*` evidence value in the words of its Audit controls cell."""
    if key == "trail_app_can_modify" and isinstance(value, bool):
        return "the application, with its own credentials" if value else "not the application"
    if key == "trail_app_can_modify" and value == "unknown":
        return "the application: not known"
    return evidence_text(value)


def _cell(found: Sequence[Finding], keys: Sequence[str]) -> Cell:
    entries = _ranked(_traced(_trail_text(key, f.evidence[key]), f)
                      for f in found for key in keys if key in f.evidence)
    return Cell(entries[:ENTRY_LIMIT], max(0, len(entries) - ENTRY_LIMIT))


def _trail_kind(found: Iterable[Finding]) -> str:
    kinds = (f.evidence.get("trail_kind") for f in found)
    return next((k for k in kinds if isinstance(k, str) and k), "")


def _store_row(target: str, trail: str, found: Sequence[Finding]) -> AuditStore:
    kind = _trail_kind(found)
    return AuditStore(
        target=target, trail=trail, name=clip(trail) if trail else _EVERY_STORE, kind=kind,
        label=TRAIL_KINDS.get(kind, kind or "audit store"),
        checks=_ranked(_traced("", f) for f in found),
        cells=tuple(_cell(found, keys) for _, keys in AUDIT_COLUMNS))


def _spread(stores: dict[tuple[str, str], list[Finding]], wide: Iterable[Finding]) -> None:
    """
    Add each target-wide finding (audit keys, no `trail`) to every store of its target whose
    kind matches its `trail_kind`; a target with no such store gets a row of its own.
    """
    kinds = {key: _trail_kind(found) for key, found in stores.items()}
    by_target: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in stores:
        by_target[key[0]].append(key)
    for f in wide:
        kind = f.evidence.get("trail_kind")
        keys = [k for k in by_target.get(f.target, ())
                if not isinstance(kind, str) or kinds[k] == kind]
        for key in keys or [(f.target, "")]:
            stores.setdefault(key, []).append(f)


def _storeless(found: Iterable[Finding]) -> tuple[StorelessGroup, ...]:
    buckets: dict[tuple[str, Status], list[Finding]] = defaultdict(list)
    for f in found:
        buckets[(f.check_id, f.status)].append(f)
    keys = sorted(buckets, key=lambda k: (_RANK[k[1]], k[0]))
    return tuple(StorelessGroup(check_id, status, anchor("g", check_id, status.value),
                                len(buckets[(check_id, status)]),
                                clip(buckets[(check_id, status)][0].reason))
                 for check_id, status in keys)


def _audit_controls(result: ScanResult) -> AuditControls:
    """
    One row per (target, `trail`) from the audit checks' `trail_*` evidence, built in one pass
    over the findings; non-PASS audit findings without store evidence are counted apart.
    """
    families = {m.id: m.family for m in result.checks}
    stores: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    wide: list[Finding] = []
    storeless: list[Finding] = []
    for f in result.findings:
        trail = f.evidence.get("trail")
        if isinstance(trail, str) and trail:
            stores[(f.target, trail)].append(f)
        elif not _TRAIL_KEYS.isdisjoint(f.evidence):
            wide.append(f)
        elif f.status is not Status.PASS and families.get(f.check_id) is Family.AUDIT:
            storeless.append(f)
    _spread(stores, wide)
    return AuditControls(tuple(heading for heading, _ in AUDIT_COLUMNS), _listed(stores),
                         max(0, len(stores) - STORE_LIMIT), _storeless(storeless))


def _listed(stores: Mapping[tuple[str, str], Sequence[Finding]]) -> tuple[AuditStore, ...]:
    """
    Rows for the `STORE_LIMIT` stores whose findings are most urgent, in the order of target,
    kind and id. Only the rows listed are built, so a large estate costs one pass.
    """
    order = {kind: i for i, kind in enumerate(TRAIL_KINDS)}
    kinds = {key: _trail_kind(found) for key, found in stores.items()}

    def place(key: tuple[str, str]) -> tuple[str, int, str, str]:
        return (key[0], order.get(kinds[key], len(order)), kinds[key], key[1])

    worst = {key: min(_RANK[f.status] for f in found) for key, found in stores.items()}
    kept = heapq.nsmallest(STORE_LIMIT, stores, key=lambda k: (worst[k], place(k)))
    return tuple(_store_row(*key, stores[key]) for key in sorted(kept, key=place))


_COPY_WITH_DAYS = re.compile(r"^(?P<kind>.+):(?P<days>-?\d+)d$")
_RETENTION_PERIOD = "retention period"


def days_text(value: object) -> str:
    """A retention in days as report text: negative is "until deleted", None is no period."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return "until deleted (nothing expires it)"
        text = counted(value, "day")
        years = round(value / 365.25, 1)
        about = f"about {years:g} {'year' if years == 1 else 'years'}"
        return f"{text} ({about})" if value >= 365 else text
    return "no retention period set" if value is None else clip(evidence_text(value))


def _items(value: object) -> tuple[object, ...]:
    """An evidence value as a sequence: a tuple or list as it is, anything else alone."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def copies_of(evidence: Mapping[str, EvidenceValue]) -> tuple[Copy, ...]:
    """
    The copies a finding's evidence describes, tolerating every shape the checks emit.

    `copies` may be a string or a tuple of strings, each a kind (`automated_backups`) or a kind
    with its retention (`snapshot:35d`); `retention_days` a number or a tuple parallel to
    `copies`; `copy_locations` a tuple parallel to `copies`. A retention that cannot be paired
    with a copy is shown as a retention period of its own, never attached by guess.
    """
    kinds = _items(evidence["copies"]) if evidence.get("copies") is not None else ()
    days = _items(evidence["retention_days"]) if "retention_days" in evidence else ()
    places = _items(evidence["copy_locations"]) if "copy_locations" in evidence else ()
    paired = len(days) == len(kinds)
    copies = []
    for i, kind in enumerate(kinds):
        place = evidence_text(places[i]) if len(places) == len(kinds) else ""
        match = _COPY_WITH_DAYS.match(str(kind))
        if match:
            copies.append(Copy(match["kind"], place, days_text(int(match["days"]))))
        else:
            copies.append(Copy(clip(str(kind)) or NOT_OBSERVED, place,
                               days_text(days[i]) if paired else NOT_OBSERVED))
    if not paired:
        copies += [Copy(_RETENTION_PERIOD, "", days_text(d)) for d in days]
    return tuple(copies)


def _source(found: Sequence[Finding]) -> RetentionSource:
    first = found[0]
    copies = tuple(dict.fromkeys(c for f in found for c in copies_of(f.evidence)))
    return RetentionSource(
        first.check_id, first.status, anchor("g", first.check_id, first.status.value),
        copies[:ENTRY_LIMIT], max(0, len(copies) - ENTRY_LIMIT),
        any(f.evidence.get("copies_incomplete") is True for f in found))


def _retention_row(target: str, resource: str, found: Sequence[Finding]) -> RetentionRow:
    by_source: dict[tuple[str, Status], list[Finding]] = defaultdict(list)
    for f in found:
        by_source[(f.check_id, f.status)].append(f)
    keys = sorted(by_source, key=lambda k: (_RANK[k[1]], k[0]))
    stores = dict.fromkeys(evidence_text(f.evidence["store"]) for f in found
                           if "store" in f.evidence)
    return RetentionRow(target, clip(resource), clip(", ".join(stores)),
                        tuple(_source(by_source[k]) for k in keys))


def _retention(findings: Iterable[Finding]) -> RetentionMap:
    """One row per (target, resource) whose evidence has `copies` or `retention_days`."""
    resources: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if "copies" in f.evidence or "retention_days" in f.evidence:
            resources[(f.target, f.resource)].append(f)
    worst = {key: min(_RANK[f.status] for f in found) for key, found in resources.items()}
    keys = heapq.nsmallest(STORE_LIMIT, resources, key=lambda k: (worst[k], k))
    return RetentionMap(tuple(_retention_row(*k, resources[k]) for k in keys),
                        max(0, len(resources) - STORE_LIMIT))



def endpoint_reason(record: EndpointRecord) -> str:
    """
    The class of what became of one endpoint, from its reason key: how it was probed
    (`directly`), or why it was not (`probing is off for its source ...`). An unprobeable one,
    or one from a document without reason keys, is counted under its note's own words.
    """
    if record.reason in ENDPOINT_REASONS and record.reason != "unprobeable":
        return ENDPOINT_REASONS[record.reason]
    if record.probed:
        return ENDPOINT_REASONS["direct"]
    return clip(record.note.removeprefix(_NOT_PROBED) or "not probed", 120)


def _origins(record: EndpointRecord) -> tuple[Origin, ...]:
    """The record's origins (`source via origin`), or its endpoint's own when it lists none."""
    e = record.endpoint
    origins = record.origins or (f"{e.source} {e.via} {e.origin}",)
    out = []
    for text in origins:
        source, _, resource = text.partition(" ")
        out.append(Origin(clip(source), clip(resource)))
    return tuple(dict.fromkeys(out))


def _judged(records: Sequence[EndpointRecord], findings: Iterable[Finding]
            ) -> dict[str, Counter[tuple[str, Status]]]:
    """Per TLS target of a probed endpoint: its findings counted by check and status."""
    wanted = {r.target for r in records if r.probed and r.target}
    judged: dict[str, Counter[tuple[str, Status]]] = {t: Counter() for t in wanted}
    for f in findings:
        if f.target in judged:
            judged[f.target][(f.check_id, f.status)] += 1
    return judged


def _worst(judged: Counter[tuple[str, Status]] | None) -> Status | None:
    statuses = {status for _, status in judged or ()}
    return min(statuses, key=_ENDPOINT_RANK.__getitem__) if statuses else None


def _endpoint_row(record: EndpointRecord, judged: Counter[tuple[str, Status]] | None
                  ) -> EndpointRow:
    e = record.endpoint
    origins = _origins(record)
    pairs = sorted(judged or (), key=lambda k: (_ENDPOINT_RANK[k[1]], k[0]))
    checks = tuple(Traced("", check_id, status, anchor("g", check_id, status.value))
                   for check_id, status in pairs)
    return EndpointRow(
        address=clip(e.address), zone=e.zone, via=clip(e.via), origins=origins[:ENTRY_LIMIT],
        origins_more=max(0, len(origins) - ENTRY_LIMIT), probed=record.probed,
        note=clip(record.note), reason=endpoint_reason(record),
        target=clip(record.target or "") if record.probed else "",
        status=_worst(judged) if record.probed else None,
        findings=sum((judged or Counter()).values()) if record.probed else 0,
        checks=checks[:ENTRY_LIMIT], checks_more=max(0, len(checks) - ENTRY_LIMIT))


def _discovered(result: ScanResult) -> DiscoveredEndpoints:
    """
    The Discovered endpoints part: counts over every record, rows for the `ENDPOINT_LIMIT` most
    urgent. Shown when the scan found an endpoint or ran a transmission security check.
    """
    records = result.endpoints
    if not records:
        return DiscoveredEndpoints(shown=any(m.family is Family.TRANSMISSION
                                             for m in result.checks))
    judged = _judged(records, result.findings)
    worst = {i: _worst(judged.get(r.target or "")) for i, r in enumerate(records) if r.probed}

    def place(i: int) -> tuple[int, int, str, int, str]:
        e = records[i].endpoint
        rank = _PROBED_RANK[worst[i]] if i in worst else 0
        return (0 if i in worst else 1, rank, e.host.lower(), e.port, e.starttls or "")

    kept = heapq.nsmallest(ENDPOINT_LIMIT, range(len(records)), key=place)
    probed = [r for r in records if r.probed]
    listed = sum(1 for i in kept if i in worst)
    return DiscoveredEndpoints(
        shown=True,
        rows=tuple(_endpoint_row(records[i], judged.get(records[i].target or "")) for i in kept),
        found=len(records), probed=len(probed), not_probed=len(records) - len(probed),
        probed_by=_tallies(Counter(endpoint_reason(r) for r in probed), limit=100)[0],
        not_probed_by=_tallies(Counter(endpoint_reason(r) for r in records if not r.probed),
                               limit=100)[0],
        worst=_worst_tallies(worst.values()), more_probed=len(probed) - listed,
        more_not_probed=len(records) - len(probed) - (len(kept) - listed))


def _worst_tallies(statuses: Iterable[Status | None]) -> tuple[Tally, ...]:
    """Probed endpoints per worst status, worst first, those with no finding last."""
    counter = Counter(s.value if s else NO_FINDING for s in statuses)
    order = [s.value for s in ENDPOINT_ORDER] + [NO_FINDING]
    return tuple(Tally(value, counter[value]) for value in order if counter[value])


def build_view(result: ScanResult, options: ReportOptions | None = None) -> ReportView:
    """Arrange a scan result into sections per standard, with grouped, counted findings."""
    titles = {m.id: m.title for m in result.checks}
    statuses = tuple(s.value for s in STATUS_ORDER)
    sections = tuple(
        Section(standard, standard.label, {s.value: n for s, n in result.counts(found).items()},
                _groups(found, titles))
        for standard, found in result.by_standard().items())
    targets = _targets(result.targets)
    counts = {s.value: n for s, n in result.counts().items()}
    unobserved = _unobserved(result.findings)
    reasons, _ = _tallies(Counter(f.unknown_reason.value for f in result.findings
                                  if f.unknown_reason), limit=len(UnknownReason))
    families, _ = _tallies(Counter(m.family.value for m in result.checks), limit=100)
    return ReportView(
        result=result, options=options or ReportOptions(), verdict=verdict(result),
        date=_date(result.finished), scope=_scope_line(result, targets), statuses=statuses,
        counts=counts, total=len(result.findings), sections=sections,
        chart=status_chart([(f"{s.standard.value}", s.title, s.counts) for s in sections],
                           statuses),
        targets=targets, methods=_methods(result.checks), unobserved=unobserved,
        unknown_reasons=reasons, checks=tuple(sorted(result.checks, key=lambda m: m.id)),
        families=families, priorities=_priorities(sections), waivers=_waivers(result.waivers),
        audit=_audit_controls(result), retention=_retention(result.findings),
        endpoints=_discovered(result))
