"""
CloudWatch Logs groups that hold the audit trail (CloudTrail's, and the inventory's
`audit_log_groups` patterns): can the application's role delete them or shorten their
retention?

`AuditLogGroupProtection` reads each group (its retention) and the region's resource policies:
a resource policy statement that lets the application role, or every principal, delete the
group, delete its streams or change its retention fails. With `application_role_arn`
configured it also asks the same of the role's own permissions, by the IAM policy simulator or
by policy analysis (see `audit_policy`). No log event is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.audit_bucket import judge_role_access
from hipaacheck.checks.aws.audit_policy import (
    NOT_EVALUATED,
    ROLE_OPERATIONS,
    Ask,
    RoleDecisions,
    Statement,
    action_matches,
    application_role,
    parse_policy,
    principal_matches,
    resource_overlaps,
    role_decisions,
)
from hipaacheck.checks.aws.audit_trail import (
    AUDIT_CITATIONS,
    DESCRIBE_LOG_GROUPS,
    DESCRIBE_TRAILS,
    GROUPS_RESOURCE,
    AuditStore,
    Discovery,
    audit_log_groups,
    discovery_gaps,
)
from hipaacheck.checks.aws.collector import REGIONS_OPERATION, Scan, listing
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

DESCRIBE_RESOURCE_POLICIES = "logs:DescribeResourcePolicies"
DESTRUCTIVE_ACTIONS = ("logs:DeleteLogGroup", "logs:DeleteLogStream", "logs:PutRetentionPolicy",
                       "logs:DeleteRetentionPolicy")
"""What rewrites a log group's history: deleting it or its streams, or shortening retention."""


@dataclass(frozen=True)
class LogGroup:
    """One audit log group as `DescribeLogGroups` gives it."""

    name: str
    region: str
    arn: str
    retention_days: int | None
    """None: kept forever."""


@dataclass(frozen=True)
class GroupFacts:
    """What was observed of one audit log group."""

    name: str
    sources: tuple[str, ...]
    group: Fact[LogGroup]
    resource_grants: Fact[tuple[str, ...]]
    """Names of resource policies that let the role (or everyone) do a destructive action."""
    role: Fact[RoleDecisions] | None
    """The role's own permissions; None when no application role is configured."""


@dataclass(frozen=True)
class LogGroupsObservation:
    """The configured role, the listings that could not be read, and every audit log group."""

    role: Fact[str]
    discovery: Discovery
    groups: tuple[GroupFacts, ...]


def log_group(store: AuditStore) -> Fact[LogGroup]:
    """The log group a discovered store stands for, from its `DescribeLogGroups` item."""
    raw = store.details if isinstance(store.details, dict) else {}
    arn = str(raw.get("logGroupArn") or str(raw.get("arn", "")).removesuffix(":*"))
    if not arn or store.region is None:
        return Unknown(UnknownReason.UNPARSEABLE, "DescribeLogGroups gave no ARN for the group")
    retention = raw.get("retentionInDays")
    return LogGroup(store.name, store.region, arn,
                    int(retention) if retention is not None else None)


def _resource_policies(scan: Scan, region: str) -> Fact[tuple[tuple[str, tuple[Statement, ...]],
                                                              ...]]:
    raw = listing(scan, "logs", region, "describe_resource_policies", "resourcePolicies",
                  DESCRIBE_RESOURCE_POLICIES)
    if isinstance(raw, Unknown):
        return raw
    policies = []
    for item in raw:
        parsed = parse_policy(item.get("policyDocument", "{}"))
        if isinstance(parsed, Unknown):
            return parsed
        policies.append((str(item.get("policyName", "")), parsed))
    return tuple(policies)


def resource_policy_grants(policies: Sequence[tuple[str, Sequence[Statement]]], group_arn: str,
                           role: str | None) -> tuple[str, ...]:
    """
    The resource policies with an Allow of a destructive action on the group to `role` (or to
    every principal when `role` is None or the statement names `*`).
    """
    names = []
    for name, statements in policies:
        for statement in statements:
            if statement.effect != "Allow" or not any(action_matches(statement, a)
                                                      for a in DESTRUCTIVE_ACTIONS):
                continue
            if not any(resource_overlaps(p, f"{group_arn}:*") or resource_overlaps(p, group_arn)
                       for p in statement.resources or ("*",)):
                continue
            everyone = statement.principals == ("*",)
            if everyone or (role is not None and principal_matches(statement, role)):
                names.append(name)
                break
    return tuple(names)


def _observe_group(scan: Scan, role: Fact[str], store: AuditStore) -> GroupFacts:
    group = log_group(store)
    if isinstance(group, Unknown):
        return GroupFacts(store.name, store.sources, group, group, group)
    policies = _resource_policies(scan, group.region)
    grants: Fact[tuple[str, ...]] = policies if isinstance(policies, Unknown) else \
        resource_policy_grants(policies, group.arn, role if isinstance(role, str) else None)
    decisions: Fact[RoleDecisions] | None = None
    if isinstance(role, str):
        asks = tuple(Ask(a, group.arn) for a in DESTRUCTIVE_ACTIONS)
        decisions = role_decisions(scan.ctx, scan.session, scan.account, role, asks, None)
    return GroupFacts(store.name, store.sources, group, grants, decisions)


class AuditLogGroupProtection(Check[LogGroupsObservation]):
    """
    Audit log groups cannot be deleted or shortened by the application's role.
    """

    meta = CheckMeta(
        id="aws.logs.audit_log_group_protected",
        title="The application cannot delete or shorten the audit log groups",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=AUDIT_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "For every CloudWatch Logs group a CloudTrail trail delivers to and every group "
            "matching the `audit_log_groups` patterns, reads the group (its retention) and the "
            "region's "
            "resource policies. A resource policy statement that lets the application role "
            "(`application_role_arn`) or every principal delete the group or its streams, or "
            "change its retention, fails. With the role configured, the role's own "
            "permissions for the same actions are asked of the IAM policy simulator, or "
            f"analysed from its policies; {NOT_EVALUATED} are not seen. Without a configured "
            "role only a grant to every principal can be judged."),
        remediation=(
            "Remove logs:Delete* and logs:PutRetentionPolicy from the application role and "
            "from resource policies that name it or `*`; keep audit log groups' retention at "
            "the audit retention policy, and export them to an object-locked bucket."),
        operations=(
            REGIONS_OPERATION,
            Operation(System.AWS, DESCRIBE_TRAILS, "find the log groups CloudTrail writes to"),
            Operation(System.AWS, "cloudtrail:GetTrailStatus", "the trails' logging status"),
            Operation(System.AWS, DESCRIBE_LOG_GROUPS,
                      "find the audit groups (trail targets, `audit_log_groups` patterns) and "
                      "their retention"),
            Operation(System.AWS, DESCRIBE_RESOURCE_POLICIES, "the region's resource policies"),
            *ROLE_OPERATIONS,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> LogGroupsObservation:
        """Find the audit log groups and read what may delete them."""
        scan = Scan.of(ctx, target)
        role = application_role(scan.account)
        discovery = audit_log_groups(scan)
        return LogGroupsObservation(role, discovery, tuple(
            _observe_group(scan, role, store) for store in discovery.stores))

    def evaluate(self, obs: LogGroupsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit log group."""
        f = self.findings(target)
        gaps = discovery_gaps(f, obs.discovery, "which log groups hold the audit trail")
        if not obs.groups:
            return gaps or [f.unverified(GROUPS_RESOURCE, Unknown(
                UnknownReason.NOT_VISIBLE, "no audit log group was found: no trail delivers to "
                "CloudWatch Logs and no group matches `audit_log_groups`",
                "`audit_log_groups` in this AWS account of the inventory"), "the audit log "
                "groups")]
        return [*gaps, *(_judge_group(f, obs.role, group) for group in obs.groups)]


def _group_evidence(group: LogGroup, facts: GroupFacts) -> dict[str, EvidenceValue]:
    retention = ("kept indefinitely" if group.retention_days is None
                 else f"{group.retention_days} days (log group retention)")
    return {"region": group.region, "sources": facts.sources, "trail": f"logs:{group.name}",
            "trail_kind": "cloudwatch_log_group", "retention_days": group.retention_days,
            "trail_retention": retention,
            "trail_location": f"CloudWatch Logs in {group.region}, scanned account"}


def _judge_group(f: FindingBuilder[Any], role: Fact[str], facts: GroupFacts) -> Finding:
    name = facts.name
    if isinstance(facts.group, Unknown):
        return f.unverified(name, facts.group, "the audit log group")
    evidence = _group_evidence(facts.group, facts)
    if isinstance(facts.resource_grants, Unknown):
        return f.unverified(name, facts.resource_grants, "the log group's resource policies")
    if facts.resource_grants:
        evidence.update(resource_policies=facts.resource_grants, trail_app_can_modify=True)
        return f.failed(name, "A resource policy lets "
                        f"{role if isinstance(role, str) else 'every principal'} delete the "
                        f"audit log group or change its retention: "
                        f"{', '.join(facts.resource_grants)}.", evidence=evidence)
    if isinstance(role, Unknown) or facts.role is None:
        unknown = role if isinstance(role, Unknown) else Unknown(
            UnknownReason.NOT_VISIBLE, "no application role", "application_role_arn")
        return f.unverified(name, unknown, "whether the application role may delete the group")
    judged = judge_role_access(f, role, name, "cloudwatch_log_group", f"logs:{name}",
                               facts.role)
    return f.make(judged.status, name, judged.reason, evidence={**evidence, **judged.evidence},
                  needs=judged.needs, unknown_reason=judged.unknown_reason)
