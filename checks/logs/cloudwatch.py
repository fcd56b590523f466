"""
PHI in CloudWatch Logs groups (45 CFR 164.312(b); 164.502(b) and 164.514(d), minimum necessary).

A `cloudwatch` log sink names log groups, exactly or by prefix, in every region of its
account. For each group the check reads the group's data protection policy (and the account's)
and samples recent events in the configured window with `FilterLogEvents`, paging within an
event and a byte budget, the window cut in slices so that the sample spreads over it. Where a
policy masks identifiers, the same span before the policy took effect is sampled too: events
ingested before a policy existed are never masked, and they stay until the group's retention
removes them.

Events are always read masked: the check never passes `unmask`, and a guard on the client
refuses any call that would. A Deidentify statement covering the identifiers CloudWatch can
mask is a mitigating control; an Audit-only statement is not (it finds, it does not mask).

Judgement per group: FAIL when identifiers were found in what was read (evidence says which
of them the policy masks and whether they were all older than the policy), UNVERIFIED when
events could not be read or there were none in the window, PASS otherwise. Group names come
from the inventory and CloudWatch; stream names and events never reach evidence.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.logs.common import (
    ContentScan,
    RedactionControl,
    Tally,
    iso_time,
    judge,
)
from hipaacheck.clients.aws import AwsSession, classify_error, error_code
from hipaacheck.config import AwsAccountConfig, CloudWatchSinkConfig
from hipaacheck.detectors.phi import Block, Kind, LineHits, PhiDetector
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

SLICES = 4
"""How many equal slices a sampling window is cut into, each with its share of the budget."""
MAX_PAGE_EVENTS = 10_000
MAX_EMPTY_PAGES = 50
"""FilterLogEvents may page through empty results while it searches; this bounds that."""
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                            "RequestLimitExceeded", "LimitExceededException"})

MANAGED_IDENTIFIERS: dict[Kind, tuple[str, ...]] = {
    Kind.SSN: ("Ssn-US",),
    Kind.MEDICARE_ID: ("MedicareBeneficiaryNumber-US", "HealthInsuranceClaimNumber-US"),
    Kind.DATE_OF_BIRTH: ("DateOfBirth",),
    Kind.EMAIL: ("EmailAddress",),
    Kind.PHONE: ("PhoneNumber-US",),
    Kind.PAYMENT_CARD: ("CreditCardNumber",),
    Kind.PERSON_NAME: ("Name",),
    Kind.STREET_ADDRESS: ("Address",),
    Kind.NPI: ("NationalProviderId-US",),
    Kind.DEA_NUMBER: ("DrugEnforcementAgencyNumber-US",),
}
"""The CloudWatch Logs managed data identifiers that mask each kind (all of them needed)."""

PATIENT_MASKABLE: tuple[Kind, ...] = tuple(k for k in MANAGED_IDENTIFIERS if not k.provider)
"""The patient identifiers a Deidentify statement must cover to count as covering PHI."""

_OPS = {
    "describe": "logs:DescribeLogGroups",
    "policy": "logs:GetDataProtectionPolicy",
    "account": "logs:DescribeAccountPolicies",
    "events": "logs:FilterLogEvents",
}


class UnmaskRefused(ReadOnlyViolation):
    """Something asked CloudWatch Logs for unmasked events; the scan never reads them."""


def sink_account(sink: CloudWatchSinkConfig | Any) -> AwsAccountConfig:
    """
    The account a sink reads through: its own entry under a name of its own, so that the
    scan's session for it never mixes with an `aws.accounts` entry that shares the name.
    """
    account: AwsAccountConfig = sink.account
    return account.model_copy(update={"name": f"{account.name} (logs sink {sink.name})"})


def _refuse_unmask(params: dict[str, Any], **_: Any) -> None:
    """The `before-parameter-build` guard: masked events only."""
    if params.get("unmask"):
        raise UnmaskRefused("refused to ask CloudWatch Logs for unmasked events")


def logs_client(session: AwsSession, region: str) -> Any:
    """The session's guarded CloudWatch Logs client, which also refuses `unmask`."""
    client = session.client("logs", region)
    for operation in ("FilterLogEvents", "GetLogEvents"):
        client.meta.events.register(f"before-parameter-build.logs.{operation}",
                                    _refuse_unmask, unique_id=f"hipaacheck-masked-{operation}")
    return client


# --------------------------------------------------------------------------------------------
# Data protection policies.

@dataclass(frozen=True)
class PolicyView:
    """
    The data protection in force on a log group: managed identifiers in Deidentify and in
    Audit statements, the number of custom identifiers, and when the earliest masking policy
    (the group's or the account's) was last set.
    """

    deidentify: frozenset[str] = frozenset()
    audit: frozenset[str] = frozenset()
    custom: int = 0
    updated_ms: int | None = None
    sources: tuple[str, ...] = ()


def _identifier_name(value: object) -> str:
    return str(value).rsplit("/", 1)[-1]


def parse_policy(document: str, updated_ms: int | None, source: str) -> Fact[PolicyView]:
    """A data protection policy document as a `PolicyView`, or `Unknown` when unreadable."""
    try:
        doc = json.loads(document)
        deidentify: set[str] = set()
        audit: set[str] = set()
        for statement in doc.get("Statement", []):
            names = {_identifier_name(d) for d in statement.get("DataIdentifier", [])}
            operation = statement.get("Operation", {})
            if "Deidentify" in operation:
                deidentify |= names
            if "Audit" in operation:
                audit |= names
        custom = len((doc.get("Configuration") or {}).get("CustomDataIdentifier") or [])
    except (ValueError, AttributeError, TypeError):
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the {source} data protection policy document could not be read")
    return PolicyView(frozenset(deidentify), frozenset(audit), custom,
                      updated_ms if deidentify else None, (source,))


def merge_policies(*views: PolicyView | None) -> PolicyView:
    """The protection of several policies in force together (a group's and its account's)."""
    present = [v for v in views if v is not None]
    times = [v.updated_ms for v in present if v.updated_ms is not None]
    return PolicyView(
        frozenset().union(*(v.deidentify for v in present)),
        frozenset().union(*(v.audit for v in present)), sum(v.custom for v in present),
        min(times) if times else None, tuple(s for v in present for s in v.sources))


def _covered(name: str, masked: frozenset[str]) -> bool:
    return name in masked or name.removesuffix("-US") in masked


def control_of(policy: Fact[PolicyView]) -> RedactionControl:
    """The redaction control a group's policy amounts to."""
    if isinstance(policy, Unknown):
        return RedactionControl("unknown", detail=policy.detail, needs=policy.needs)
    masks = frozenset(k for k, names in MANAGED_IDENTIFIERS.items()
                      if all(_covered(n, policy.deidentify) for n in names))
    if not policy.deidentify:
        state = "audit_only" if policy.audit else "none"
        return RedactionControl(state, detail=f"{len(policy.audit)} audited identifier(s)")
    missing = tuple(k for k in PATIENT_MASKABLE if k not in masks)
    return RedactionControl("deidentify_partial" if missing else "deidentify", masks, missing,
                            f"{len(policy.deidentify)} masked identifier(s), "
                            f"{policy.custom} custom")


def _policy_time(response: dict[str, Any]) -> int | None:
    value = response.get("lastUpdatedTime")
    return int(value) if isinstance(value, int | float) else None


def group_policy(client: Any, group: str) -> Fact[PolicyView | None]:
    """The group's own data protection policy; None when it has none."""
    try:
        response = client.get_data_protection_policy(logGroupIdentifier=group)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "ResourceNotFoundException":
            return None
        return classify_error(exc, _OPS["policy"])
    document = response.get("policyDocument")
    if not document:
        return None
    return parse_policy(document, _policy_time(response), "log group")


def account_policy(client: Any) -> Fact[PolicyView | None]:
    """The account-wide data protection policy of the client's region; None when none."""
    try:
        response = client.describe_account_policies(policyType="DATA_PROTECTION_POLICY")
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, _OPS["account"])
    views = [parse_policy(p.get("policyDocument") or "{}", _policy_time(p), "account")
             for p in response.get("accountPolicies", [])]
    for view in views:
        if isinstance(view, Unknown):
            return view
    known = [v for v in views if isinstance(v, PolicyView)]
    return merge_policies(*known) if known else None


def effective_policy(own: Fact[PolicyView | None],
                     account: Fact[PolicyView | None]) -> Fact[PolicyView]:
    """The group's protection: its own policy and the account's, Unknown if either is."""
    for part in (own, account):
        if isinstance(part, Unknown):
            return part
    return merge_policies(own, account)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Sampling events.

@dataclass(frozen=True)
class Window:
    """A span of event times to sample: `recent`, or `before_policy` took effect."""

    label: str
    start_ms: int
    end_ms: int


def plan_windows(now_ms: int, window_ms: int, policy_ms: int | None,
                 retention_days: int | None, before_policy: bool) -> list[Window]:
    """
    The recent window, and the same span before the policy took effect when there is a
    masking policy, `before_policy` is asked for, and the group still retains events that old.
    """
    windows = [Window("recent", now_ms - window_ms, now_ms)]
    if not before_policy or policy_ms is None:
        return windows
    oldest = now_ms - retention_days * 86_400_000 if retention_days else 0
    start = max(policy_ms - window_ms, oldest)
    if start < policy_ms and start < now_ms - window_ms:
        windows.append(Window("before_policy", start, min(policy_ms, now_ms - window_ms)))
    return windows


@dataclass
class _Budget:
    """What is left to read: events and message bytes."""

    events: int
    bytes: int

    def share(self, parts: int) -> _Budget:
        return _Budget(max(1, self.events // parts), max(1, self.bytes // parts))

    def spend(self, events: int, size: int) -> None:
        self.events -= events
        self.bytes -= size

    @property
    def left(self) -> bool:
        return self.events > 0 and self.bytes > 0


@dataclass
class _GroupReader:
    """Reads one group's events into a tally, page by page, within its budget."""

    client: Any
    group: str
    tally: Tally
    budget: _Budget
    backoff: Sequence[float]
    policy_ms: int | None
    seen: set[str] = field(default_factory=set)
    events: int = 0
    hits_before: int = 0
    hits_after: int = 0
    truncated: bool = False

    def read(self, window: Window, parts: int) -> None:
        """
        Sample `window` with a `parts`-th of what is left of the group's budget, slice by
        slice, each slice getting an even share of what its predecessors left.
        """
        own = self.budget.share(parts)
        width = max(1, (window.end_ms - window.start_ms) // SLICES)
        for i in range(SLICES):
            if not own.left:
                self.truncated = True
                return
            start = window.start_ms + i * width
            end = window.end_ms if i == SLICES - 1 else start + width
            events, size = self._slice(start, end, own.share(SLICES - i))
            own.spend(events, size)
            self.budget.spend(events, size)
            if self.tally.problems:
                return

    def _slice(self, start: int, end: int, share: _Budget) -> tuple[int, int]:
        """Read one slice within `share`; return the events and bytes it took."""
        events_before, bytes_before = share.events, share.bytes
        for events in self._pages(start, end, share):
            taken, size, full = self._take(events, share)
            share.spend(len(taken), size)
            if taken:
                self._scan(taken)
            if full or not share.left:
                self.truncated = True
                break
        return events_before - share.events, bytes_before - share.bytes

    def _take(self, events: list[dict[str, Any]], share: _Budget
              ) -> tuple[list[tuple[int, int, bytes]], int, bool]:
        """
        The new events of a page that fit the share, as (event time, ingestion time,
        message), their size, and whether the share ran out before the page did.
        """
        taken: list[tuple[int, int, bytes]] = []
        size = 0
        for event in events:
            event_id = str(event.get("eventId", ""))
            if event_id and event_id in self.seen:
                continue
            message = str(event.get("message", "")).encode("utf-8", errors="replace")
            if len(taken) >= share.events or size + len(message) > share.bytes:
                return taken, size, True
            self.seen.add(event_id)
            stamp = int(event.get("timestamp") or 0)
            taken.append((stamp, int(event.get("ingestionTime") or stamp),
                          message.replace(b"\n", b" ")))
            size += len(message)
        return taken, size, False

    def _scan(self, taken: list[tuple[int, int, bytes]]) -> None:
        first = self.events + 1
        self.events += len(taken)
        block = Block(first, b"\n".join(m for _, _, m in taken))

        def on_hit(_block: Block, hits: LineHits) -> int | None:
            stamp, ingested, _ = taken[hits.line_no - first]
            if self.policy_ms is not None and ingested < self.policy_ms:
                self.hits_before += 1
            else:
                self.hits_after += 1
            return stamp

        self.tally.scan([block], on_hit=on_hit)
        self.tally.bytes_read += len(block.data)
        self.tally.records += len(taken)

    def _pages(self, start: int, end: int, share: _Budget) -> Iterator[list[dict[str, Any]]]:
        """Pages of FilterLogEvents in [start, end); a failure is recorded on the tally."""
        token: str | None = None
        tokens: set[str] = set()
        empty = 0
        while share.left:
            kwargs: dict[str, Any] = {"logGroupName": self.group, "startTime": start,
                                      "endTime": end,
                                      "limit": min(MAX_PAGE_EVENTS, max(1, share.events))}
            if token:
                kwargs["nextToken"] = token
            response = self._call(kwargs)
            if response is None:
                return
            events = list(response.get("events", []))
            yield events
            token = response.get("nextToken")
            empty = 0 if events else empty + 1
            if not token or token in tokens or empty >= MAX_EMPTY_PAGES:
                self.truncated = self.truncated or bool(token)
                return
            tokens.add(token)

    def _call(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """One FilterLogEvents call, waiting out throttling a few times before giving up."""
        for pause in (*self.backoff, None):
            try:
                return dict(self.client.filter_log_events(**kwargs))
            except ReadOnlyViolation:
                raise
            except Exception as exc:  # noqa: BLE001 - classify_error re-raises the unknown
                if error_code(exc) in THROTTLE_CODES and pause is not None:
                    logger.info("CloudWatch Logs throttled FilterLogEvents; waiting %.1f s",
                                pause)
                    time.sleep(pause)
                    continue
                if error_code(exc) in THROTTLE_CODES:
                    unknown = Unknown(UnknownReason.THROTTLED,
                                      f"CloudWatch Logs kept throttling {_OPS['events']}")
                else:
                    unknown = classify_error(exc, _OPS["events"])
                self.tally.fail(unknown, unread=self.events == 0)
                return None
        return None


# --------------------------------------------------------------------------------------------
# Observations and the check.

@dataclass(frozen=True)
class GroupObservation:
    """
    One log group: its retention, its data protection, what sampling its events found, the
    windows read, and how many lines with identifiers were ingested before and after the
    masking policy took effect.
    """

    region: str
    group: str
    retention_days: int | None
    policy: Fact[PolicyView]
    scan: ContentScan
    windows: tuple[Window, ...]
    hits_before_policy: int = 0
    hits_after_policy: int = 0


@dataclass(frozen=True)
class CloudWatchObservation:
    """Every group of one sink, and what could not be listed or was not found."""

    sink: str
    window_hours: float
    groups: tuple[GroupObservation, ...]
    problems: tuple[tuple[str, Unknown], ...] = ()


class PhiInCloudWatchLogs(Check[CloudWatchObservation]):
    """
    Fails a CloudWatch Logs group whose recent events (or the events from before its data
    protection policy) hold unredacted identifiers.
    """

    meta = CheckMeta(
        id="logs.cloudwatch.phi",
        title="CloudWatch Logs groups hold no unredacted patient identifiers",
        family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS,
        citations=("164.312(b)", "164.502(b)", "164.514(d)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.LOG_SINK,
        description=(
            "Samples recent events of the configured log groups (by name or prefix, in every "
            "region of the account) with FilterLogEvents, within an event and byte budget and "
            "never unmasked, through the PHI detector. Reads each group's and the account's "
            "data protection policy: a Deidentify statement covering the identifiers "
            "CloudWatch can mask is a mitigating control, Audit-only is not; events from "
            "before the policy took effect, which are never masked, are sampled too."),
        remediation=(
            "Stop the identifiers at the source (log allow-listed fields, not bodies). Put a "
            "data protection policy with a Deidentify statement on the group or the account "
            "covering the identifiers it can mask, add custom identifiers for record and plan "
            "numbers, restrict logs:Unmask, and shorten the group's retention or delete the "
            "streams that hold identifiers from before the policy."),
        operations=(
            Operation(System.AWS, "logs:DescribeLogGroups",
                      "list the configured groups and their retention"),
            Operation(System.AWS, "logs:GetDataProtectionPolicy",
                      "read each group's masking policy (never logs:Unmask)"),
            Operation(System.AWS, "logs:DescribeAccountPolicies",
                      "read the account-wide data protection policy"),
            Operation(System.AWS, "logs:FilterLogEvents",
                      "sample events, masked, within the sink's budget; values never leave "
                      "the detector"),
        ),
    )

    def __init__(self, backoff: Sequence[float] = (0.5, 1.0, 2.0)) -> None:
        """`backoff` is how long to wait out each successive throttling before giving up."""
        self.backoff = tuple(backoff)

    def applies_to(self, target: Target) -> bool:
        """CloudWatch sinks only."""
        return target.kind == TargetKind.LOG_SINK and isinstance(target.config,
                                                                 CloudWatchSinkConfig)

    def collect(self, ctx: CheckContext, target: Target) -> CloudWatchObservation:
        """List the sink's groups in every region and sample each within the budgets."""
        sink = target.config
        if not isinstance(sink, CloudWatchSinkConfig):
            raise TypeError(f"target {target.id} carries no CloudWatch sink configuration")
        session = ctx.clients.aws(sink_account(sink))
        listed, problems = _list_groups(session, sink)
        if len(listed) > sink.max_groups:
            problems.append((f"{len(listed) - sink.max_groups} more group(s)", Unknown(
                UnknownReason.NOT_VISIBLE,
                f"more groups matched than max_groups ({sink.max_groups}); these were not read",
                needs="a higher max_groups or narrower names and prefixes")))
            listed = listed[:sink.max_groups]
        bytes_left, groups = sink.max_bytes_per_sink, []
        for i, (region, group) in enumerate(listed):
            share = min(sink.max_bytes_per_group, bytes_left // (len(listed) - i))
            budget = _Budget(sink.max_events_per_group, max(1, share))
            groups.append(self._group(ctx, session, region, group, sink, budget))
            bytes_left -= groups[-1].scan.bytes_read
        return CloudWatchObservation(sink.name, sink.window_hours, tuple(groups),
                                     tuple(problems))

    def _group(self, ctx: CheckContext, session: AwsSession, region: str,
               group: dict[str, Any], sink: CloudWatchSinkConfig,
               budget: _Budget) -> GroupObservation:
        """Read one group's policies, then sample its windows."""
        client = logs_client(session, region)
        name = str(group["logGroupName"])
        account = ctx.memo.get(("cloudwatch-account-policy", session.account.name, region),
                               lambda: account_policy(client))
        policy = effective_policy(group_policy(client, name), account)
        policy_ms = policy.updated_ms if isinstance(policy, PolicyView) else None
        retention = group.get("retentionInDays")
        now_ms = int(ctx.clock().timestamp() * 1000)
        windows = plan_windows(now_ms, int(sink.window_hours * 3_600_000), policy_ms,
                               retention, sink.sample_before_policy)
        detector = ctx.memo.get(("phi-detector",), PhiDetector)
        reader = _GroupReader(client, name, Tally(detector, sources=1), budget, self.backoff,
                              policy_ms)
        for i, window in enumerate(windows):
            reader.read(window, len(windows) - i)
            if reader.tally.problems:
                break
        reader.tally.complete = not reader.truncated
        logger.debug("log group %s in %s: %d events sampled", name, region, reader.events)
        return GroupObservation(region, name, retention, policy, reader.tally.result(),
                                tuple(windows), reader.hits_before, reader.hits_after)

    def evaluate(self, obs: CloudWatchObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per group, and one per listing problem."""
        build = self.findings(target)
        findings = [build.unverified(resource, unknown, "the sink's log groups")
                    for resource, unknown in obs.problems]
        findings += [self._judge(g, target) for g in obs.groups]
        if not findings:
            nothing = Unknown(UnknownReason.NOT_VISIBLE, "no log group matched the sink",
                              needs="log group names or prefixes that exist")
            findings.append(build.unverified(obs.sink, nothing, "the sink's log groups"))
        return findings

    def _judge(self, group: GroupObservation, target: Target) -> Finding:
        build = self.findings(target)
        control = control_of(group.policy)
        finding = judge(build, f"{group.region}:{group.group}", group.scan, control, "events",
                        _group_evidence(group))
        if group.scan.kinds and group.hits_after_policy == 0 \
                and group.hits_before_policy and control.mitigates:
            finding = replace(finding, reason=finding.reason + (
                " Every one was ingested before the data protection policy took effect, so "
                "it is stored and shown unmasked until retention removes it."))
        return finding


def _group_evidence(group: GroupObservation) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {
        "sink_kind": "cloudwatch", "region": group.region,
        "windows_read": tuple(f"{w.label} {iso_time(w.start_ms)}/{iso_time(w.end_ms)}"
                              for w in group.windows),
        "retention_days": group.retention_days,
    }
    if isinstance(group.policy, PolicyView):
        evidence["policy_sources"] = group.policy.sources
        evidence["masked_identifiers"] = tuple(sorted(group.policy.deidentify))
        evidence["policy_updated"] = iso_time(group.policy.updated_ms)
    if group.scan.kinds:
        evidence["records_with_identifiers_before_policy"] = group.hits_before_policy
        evidence["records_with_identifiers_after_policy"] = group.hits_after_policy
    return evidence


def _list_groups(session: AwsSession, sink: CloudWatchSinkConfig
                 ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, Unknown]]]:
    """The matching groups per region, and the regions, names and prefixes that failed."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[tuple[str, Unknown]] = []
    listed_everywhere = True
    for region in sink.account.regions:
        groups = _region_groups(session, region, sink)
        if isinstance(groups, Unknown):
            problems.append((region, groups))
            listed_everywhere = False
            continue
        for group in groups:
            found[(region, str(group["logGroupName"]))] = group
    names = {name for _, name in found}
    if listed_everywhere:
        problems += [(name, _missing("the log group does not exist in any configured region"))
                     for name in sink.log_groups if name not in names]
        problems += [(prefix + "*", _missing("no log group starts with the prefix"))
                     for prefix in sink.log_group_prefixes
                     if not any(n.startswith(prefix) for n in names)]
    return [(region, group) for (region, _), group in sorted(found.items())], problems


def _missing(detail: str) -> Unknown:
    return Unknown(UnknownReason.NOT_VISIBLE, detail,
                   needs="log group names or prefixes that exist in the account's regions")


def _region_groups(session: AwsSession, region: str,
                   sink: CloudWatchSinkConfig) -> Fact[list[dict[str, Any]]]:
    """The groups of one region that the sink names or whose names start with its prefixes."""
    limit = sink.max_groups + 1
    try:
        client = logs_client(session, region)
        groups: list[dict[str, Any]] = []
        for name in sink.log_groups:
            groups += [g for g in _describe(client, name, limit) if g["logGroupName"] == name]
        for prefix in sink.log_group_prefixes:
            groups += _describe(client, prefix, limit)
    except ReadOnlyViolation:
        raise
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        return classify_error(exc, _OPS["describe"])
    return groups


def _describe(client: Any, prefix: str, limit: int) -> list[dict[str, Any]]:
    pages = client.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=prefix, PaginationConfig={"MaxItems": limit})
    return [g for page in pages for g in page.get("logGroups", [])]
