"""
Backups of PHI stores: DynamoDB point-in-time recovery, AWS Backup plans and vault locks, and
which PHI stores no backup selection covers, with a retention map of every store's copies.

AWS Backup is read per region: `ListBackupPlans`, then each plan's rules (`GetBackupPlan`)
and selections (`ListBackupSelections`, `GetBackupSelection`), each once per scan. A selection
that picks resources by tag is resolved with one `tag:GetResources` listing per region, read
only when some selection needs it; tag values stay in memory and never reach a finding.

The coverage check (`BackupCoverage`) gives every PHI store a finding whose evidence is its
retention map (see `RetentionMap`): where each copy of the data lives and how long it is kept.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import (
    GET_CALLER_IDENTITY,
    REGIONS_OPERATION,
    Scan,
    account_id,
    listing,
    read_once,
    scan_regions,
)
from hipaacheck.checks.aws.rds import (
    DESCRIBE_CLUSTERS,
    DESCRIBE_INSTANCES,
    REGIONS_RESOURCE,
    db_clusters,
    db_instances,
)
from hipaacheck.checks.aws.s3 import LISTING_RESOURCE
from hipaacheck.checks.aws.s3_retention import (
    _BUCKET_OPERATIONS as BUCKET_OPERATIONS,
)
from hipaacheck.checks.aws.s3_retention import (
    GET_LIFECYCLE,
    GET_VERSIONING,
    BucketRetention,
    ExpiryRule,
    Versioning,
    observe_buckets,
    shortest,
)
from hipaacheck.checks.aws.stores import (
    BACKUP_VAULTS,
    DYNAMODB_TABLES,
    EBS_SNAPSHOTS,
    EBS_VOLUMES,
    EFS_FILE_SYSTEMS,
    RDS_SNAPSHOTS,
    Store,
)
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
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

LIST_PLANS = "backup:ListBackupPlans"
GET_PLAN = "backup:GetBackupPlan"
LIST_SELECTIONS = "backup:ListBackupSelections"
GET_SELECTION = "backup:GetBackupSelection"
GET_TAGGED = "tag:GetResources"
DESCRIBE_PITR = "dynamodb:DescribeContinuousBackups"
UNTIL_DELETED = -1
"""`retention_days` of a copy that no rule expires: it is kept until someone deletes it."""
CONTINGENCY = ("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)")

PLAN_OPERATIONS = (
    Operation(System.AWS, LIST_PLANS, "list backup plans per region"),
    Operation(System.AWS, GET_PLAN, "read each plan's rules"),
)
SELECTION_OPERATIONS = (
    Operation(System.AWS, LIST_SELECTIONS, "list each plan's resource selections"),
    Operation(System.AWS, GET_SELECTION, "read what each selection picks"),
    Operation(System.AWS, GET_TAGGED, "resolve selections that pick resources by tag"),
)


# AWS Backup plans, rules and selections

@dataclass(frozen=True)
class CopyAction:
    """A rule's copy of each recovery point to another vault, often in another region."""

    destination: str
    delete_after_days: int | None = None

    @property
    def region(self) -> str:
        """The destination vault's region, from its ARN."""
        parts = self.destination.split(":")
        return parts[3] if len(parts) > 3 else ""


@dataclass(frozen=True)
class Rule:
    """One backup rule: when it runs, where it writes and how long recovery points live."""

    name: str
    vault: str
    schedule: str | None = None
    delete_after_days: int | None = None
    cold_after_days: int | None = None
    continuous: bool = False
    copies: tuple[CopyAction, ...] = ()


@dataclass(frozen=True)
class TagCondition:
    """One tag test of a selection: StringEquals, StringLike, StringNotEquals, StringNotLike."""

    operator: str
    key: str
    value: str

    def holds(self, tags: Mapping[str, str]) -> bool:
        """Whether a resource with `tags` passes this test (operators are case-sensitive)."""
        present = tags.get(self.key)
        like = self.operator.endswith("Like")
        hit = present is not None and (fnmatch.fnmatchcase(present, self.value) if like
                                       else present == self.value)
        return not hit if "Not" in self.operator else hit


@dataclass(frozen=True)
class Selection:
    """
    What one backup selection picks: resources matching `resources` or any of `any_tags`,
    narrowed by all of `all_tags`, minus `not_resources`.
    """

    name: str
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    any_tags: tuple[TagCondition, ...] = ()
    all_tags: tuple[TagCondition, ...] = ()

    @property
    def uses_tags(self) -> bool:
        """Whether resource tags decide what this selection picks."""
        return bool(self.any_tags or self.all_tags)

    def picks(self, arn: str, tags: Fact[Mapping[str, str]] | None) -> Fact[bool]:
        """Whether the selection picks the resource `arn`; `Unknown` if its tags are needed."""
        if any(fnmatch.fnmatchcase(arn, p) for p in self.not_resources):
            return False
        by_arn = any(fnmatch.fnmatchcase(arn, p) for p in self.resources)
        if not self.uses_tags:
            return by_arn
        if tags is None or isinstance(tags, Unknown):
            if by_arn and not self.all_tags:
                return True
            return tags if isinstance(tags, Unknown) else Unknown(
                UnknownReason.NOT_VISIBLE, "the resource's tags were not read",
                needs=GET_TAGGED)
        picked = by_arn or any(c.holds(tags) for c in self.any_tags)
        return picked and all(c.holds(tags) for c in self.all_tags)


@dataclass(frozen=True)
class Plan:
    """One backup plan of a region, with its rules and selections (either may be unknown)."""

    id: str
    name: str
    arn: str
    region: str
    rules: Fact[tuple[Rule, ...]]
    selections: Fact[tuple[Selection, ...]] = ()


def _days(raw: Mapping[str, Any] | None, name: str) -> int | None:
    value = (raw or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rule(raw: Mapping[str, Any]) -> Rule:
    lifecycle = raw.get("Lifecycle") or {}
    return Rule(
        str(raw.get("RuleName", "")), str(raw.get("TargetBackupVaultName", "")),
        raw.get("ScheduleExpression") or None, _days(lifecycle, "DeleteAfterDays"),
        _days(lifecycle, "MoveToColdStorageAfterDays"),
        bool(raw.get("EnableContinuousBackup", False)),
        tuple(CopyAction(str(c.get("DestinationBackupVaultArn", "")),
                         _days(c.get("Lifecycle"), "DeleteAfterDays"))
              for c in raw.get("CopyActions") or ()))


def _conditions(raw: Mapping[str, Any]) -> tuple[tuple[TagCondition, ...],
                                                  tuple[TagCondition, ...]]:
    any_tags = tuple(TagCondition("StringEquals", str(t.get("ConditionKey", "")),
                                  str(t.get("ConditionValue", "")))
                     for t in raw.get("ListOfTags") or ())
    all_tags = tuple(TagCondition(op, str(c.get("ConditionKey", "")).removeprefix(
                         "aws:ResourceTag/"), str(c.get("ConditionValue", "")))
                     for op, items in (raw.get("Conditions") or {}).items() for c in items or ())
    return any_tags, all_tags


def _selection(scan: Scan, region: str, plan_id: str, selection_id: str) -> Fact[Selection]:
    response = read_once(scan, "backup", region, "get_backup_selection", GET_SELECTION,
                         BackupPlanId=plan_id, SelectionId=selection_id)
    if isinstance(response, Unknown):
        return response
    raw = response.get("BackupSelection", {})
    any_tags, all_tags = _conditions(raw)
    return Selection(str(raw.get("SelectionName", "")), tuple(raw.get("Resources") or ()),
                     tuple(raw.get("NotResources") or ()), any_tags, all_tags)


def _selections(scan: Scan, region: str, plan_id: str) -> Fact[tuple[Selection, ...]]:
    listed = listing(scan, "backup", region, "list_backup_selections", "BackupSelectionsList",
                     LIST_SELECTIONS, BackupPlanId=plan_id)
    if isinstance(listed, Unknown):
        return listed
    found = []
    for item in listed:
        selection = _selection(scan, region, plan_id, str(item.get("SelectionId", "")))
        if isinstance(selection, Unknown):
            return selection
        found.append(selection)
    return tuple(found)


def _plan(scan: Scan, region: str, summary: Mapping[str, Any], with_selections: bool) -> Plan:
    plan_id = str(summary.get("BackupPlanId", ""))
    name = str(summary.get("BackupPlanName", ""))
    arn = str(summary.get("BackupPlanArn") or f"{region}/{plan_id}")
    response = read_once(scan, "backup", region, "get_backup_plan", GET_PLAN,
                         BackupPlanId=plan_id)
    rules: Fact[tuple[Rule, ...]] = response if isinstance(response, Unknown) else tuple(
        _rule(r) for r in response.get("BackupPlan", {}).get("Rules", []))
    selections = _selections(scan, region, plan_id) if with_selections else ()
    return Plan(plan_id, name, arn, region, rules, selections)


def backup_plans(scan: Scan, region: str, *,
                 with_selections: bool = False) -> Fact[tuple[Plan, ...]]:
    """The region's backup plans with their rules, and their selections when asked."""
    listed = listing(scan, "backup", region, "list_backup_plans", "BackupPlansList", LIST_PLANS)
    if isinstance(listed, Unknown):
        return listed
    return tuple(scan.map(lambda s: _plan(scan, region, s, with_selections), listed))


def tagged_resources(scan: Scan, region: str) -> Fact[Mapping[str, Mapping[str, str]]]:
    """ARN to tags of every tagged resource of the region (one paginated listing)."""
    def compute() -> Fact[Mapping[str, Mapping[str, str]]]:
        raw = listing(scan, "resourcegroupstaggingapi", region, "get_resources",
                      "ResourceTagMappingList", GET_TAGGED)
        if isinstance(raw, Unknown):
            return raw
        return {str(r.get("ResourceARN")): {str(t.get("Key")): str(t.get("Value"))
                                            for t in r.get("Tags") or ()}
                for r in raw}

    return scan.once(("tags", region), compute)


# DynamoDB point-in-time recovery

@dataclass(frozen=True)
class Pitr:
    """A table's point-in-time recovery: on or off, and how many days it reaches back."""

    enabled: bool
    period_days: int | None = None


def table_pitr(scan: Scan, region: str, name: str) -> Fact[Pitr]:
    """A table's point-in-time recovery (`DescribeContinuousBackups`), read once per scan."""
    def compute() -> Fact[Pitr]:
        response = read_once(scan, "dynamodb", region, "describe_continuous_backups",
                             DESCRIBE_PITR, absent={"TableNotFoundException": None},
                             TableName=name)
        if response is None:
            return Unknown(UnknownReason.NOT_VISIBLE, "the table was deleted during the scan")
        if isinstance(response, Unknown):
            return response
        pitr = (response.get("ContinuousBackupsDescription") or {}).get(
            "PointInTimeRecoveryDescription") or {}
        status = pitr.get("PointInTimeRecoveryStatus")
        if status not in ("ENABLED", "DISABLED"):
            return Unknown(UnknownReason.UNPARSEABLE,
                           "DescribeContinuousBackups did not report the PITR status")
        period = pitr.get("RecoveryPeriodInDays")
        return Pitr(status == "ENABLED",
                    period if isinstance(period, int) else (35 if status == "ENABLED" else None))

    return scan.once(("dynamodb.pitr", region, name), compute)


@dataclass(frozen=True)
class TablePitr:
    """One table and its point-in-time recovery."""

    table: Store
    pitr: Fact[Pitr]


@dataclass(frozen=True)
class RegionTables:
    """One region's tables, or why they could not be listed."""

    region: str
    tables: Fact[tuple[TablePitr, ...]]


@dataclass(frozen=True)
class PitrObservation:
    """Every scanned region's PHI tables."""

    regions: Fact[tuple[RegionTables, ...]]


class DynamoDbPitr(Check[PitrObservation]):
    """
    Every DynamoDB table holding PHI has point-in-time recovery on, reaching back long enough.
    """

    meta = CheckMeta(
        id="aws.dynamodb.pitr",
        title="DynamoDB tables with PHI have point-in-time recovery",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=CONTINGENCY,
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Reads point-in-time recovery of every DynamoDB table in the PHI scope. Off fails; "
            "a recovery period below the policy minimum fails, below the recommended period "
            "warns."),
        remediation=(
            "Enable point-in-time recovery (UpdateContinuousBackups "
            "PointInTimeRecoveryEnabled=true, RecoveryPeriodInDays=35), and add an AWS Backup "
            "plan for copies kept longer than 35 days."),
        operations=(*DYNAMODB_TABLES.operations,
                    Operation(System.AWS, DESCRIBE_PITR, "read each table's PITR"),
                    REGIONS_OPERATION),
    )

    def collect(self, ctx: CheckContext, target: Target) -> PitrObservation:
        """List each region's tables and read the PITR of those holding PHI."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        if isinstance(regions, Unknown):
            return PitrObservation(regions)
        observed = []
        for region in regions:
            tables = DYNAMODB_TABLES.fetch(scan, region)
            if not isinstance(tables, Unknown):
                phi = [t for t in tables if scan.scope.holds_phi(t.name, t.arn)]
                tables = tuple(scan.map(
                    lambda t: TablePitr(t, table_pitr(scan, t.region, t.name)), phi))
            observed.append(RegionTables(region, tables))
        return PitrObservation(tuple(observed))

    def evaluate(self, obs: PitrObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per PHI table; one per region whose tables could not be listed."""
        make = self.findings(target)
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        findings: list[Finding] = []
        for region in obs.regions:
            resource = DYNAMODB_TABLES.listing_resource(region.region)
            if isinstance(region.tables, Unknown):
                findings.append(make.unverified(resource, region.tables,
                                                f"the DynamoDB tables in {region.region}"))
            elif not region.tables:
                findings.append(make.passed(resource, f"No PHI DynamoDB tables in "
                                            f"{region.region}.",
                                            evidence={"region": region.region, "count": 0}))
            else:
                findings += [_judge_pitr(make, t, policy) for t in region.tables]
        return findings


def _judge_pitr(make: FindingBuilder[PitrObservation], item: TablePitr,
                policy: Policy) -> Finding:
    resource = item.table.resource
    if isinstance(item.pitr, Unknown):
        return make.unverified(resource, item.pitr, "point-in-time recovery")
    evidence: dict[str, EvidenceValue] = {
        "region": item.table.region, "pitr_enabled": item.pitr.enabled,
        "recovery_period_days": item.pitr.period_days,
        "min_days": policy.min_backup_retention_days,
        "recommended_days": policy.recommended_backup_retention_days}
    if not item.pitr.enabled:
        return make.failed(resource, "Point-in-time recovery is off.", evidence=evidence)
    days = item.pitr.period_days or 35
    if days < policy.min_backup_retention_days:
        return make.failed(resource, f"Point-in-time recovery reaches back {days} days, below "
                           f"the policy minimum of {policy.min_backup_retention_days}.",
                           evidence=evidence)
    if days < policy.recommended_backup_retention_days:
        return make.warned(resource, f"Point-in-time recovery reaches back {days} days, below "
                           f"the recommended {policy.recommended_backup_retention_days}.",
                           evidence=evidence)
    return make.passed(resource, f"Point-in-time recovery is on, reaching back {days} days.",
                       evidence=evidence)


# Backup plan rules

@dataclass(frozen=True)
class RegionPlans:
    """One region's backup plans, or why they could not be listed."""

    region: str
    plans: Fact[tuple[Plan, ...]]


@dataclass(frozen=True)
class PlansObservation:
    """Every scanned region's backup plans."""

    regions: Fact[tuple[RegionPlans, ...]]


def plans_resource(region: str) -> str:
    """The resource a finding about a region's plan listing is filed under."""
    return f"backup:{region}:plans"


_CRON = re.compile(r"^cron\((.+)\)$")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def schedule_gap_hours(expression: str) -> Fact[float]:
    """
    The longest gap between runs of a schedule expression, in hours (approximate for cron).
    """
    rate = _RATE.match(expression.strip())
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        return float(count * {"m": 1 / 60, "h": 1, "d": 24}[unit[0]])
    cron = _CRON.match(expression.strip())
    fields = cron.group(1).split() if cron else []
    if len(fields) != 6:
        return Unknown(UnknownReason.UNPARSEABLE, "the schedule expression is not rate() or "
                       "a six-field cron()")
    _, hours, day_of_month, month, day_of_week, _ = fields
    if month not in ("*", "?"):
        return 24.0 * 365
    if day_of_month not in ("*", "?"):
        return 24.0 * 31
    if day_of_week not in ("*", "?"):
        return 24.0 * 7 if "-" not in day_of_week and "," not in day_of_week else 72.0
    return 24.0 if hours.isdigit() else 12.0


class BackupPlanRules(Check[PlansObservation]):
    """
    Every AWS Backup rule runs on a schedule, at least daily, and keeps recovery points long
    enough, copies included.
    """

    meta = CheckMeta(
        id="aws.backup.plan_rules",
        title="AWS Backup rules run daily and keep backups long enough",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=CONTINGENCY,
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads every rule of every backup plan in each scanned region: its schedule, its "
            "lifecycle (DeleteAfterDays, cold-storage transition) and its copy actions. A rule "
            "without a schedule or keeping recovery points, or copies, less than the policy "
            "minimum fails; below the recommended period, or running less often than daily, "
            "warns. A rule with no DeleteAfterDays keeps recovery points until deleted."),
        remediation=(
            "Give every rule a daily (or more frequent) schedule and DeleteAfterDays of at "
            "least the policy minimum on the rule and on each copy action (UpdateBackupPlan)."),
        operations=(*PLAN_OPERATIONS, REGIONS_OPERATION),
    )

    def collect(self, ctx: CheckContext, target: Target) -> PlansObservation:
        """List each region's plans and read their rules."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        if isinstance(regions, Unknown):
            return PlansObservation(regions)
        return PlansObservation(tuple(RegionPlans(r, backup_plans(scan, r)) for r in regions))

    def evaluate(self, obs: PlansObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per rule; one per region or plan that could not be read."""
        make = self.findings(target)
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        findings: list[Finding] = []
        for region in obs.regions:
            resource = plans_resource(region.region)
            if isinstance(region.plans, Unknown):
                findings.append(make.unverified(resource, region.plans,
                                                f"the backup plans in {region.region}"))
                continue
            if not region.plans:
                findings.append(make.passed(resource, f"No backup plans in {region.region}.",
                                            evidence={"region": region.region, "count": 0}))
            for plan in region.plans:
                if isinstance(plan.rules, Unknown):
                    findings.append(make.unverified(plan.arn, plan.rules, "the plan's rules"))
                else:
                    findings += [_judge_rule(make, plan, rule, policy) for rule in plan.rules]
        return findings


def _judge_rule(make: FindingBuilder[PlansObservation], plan: Plan, rule: Rule,
                policy: Policy) -> Finding:
    resource = f"{plan.arn}#{rule.name}"
    keep = UNTIL_DELETED if rule.delete_after_days is None else rule.delete_after_days
    evidence: dict[str, EvidenceValue] = {
        "region": plan.region, "plan": plan.name, "vault": rule.vault,
        "schedule": rule.schedule, "delete_after_days": keep,
        "cold_storage_after_days": rule.cold_after_days, "continuous": rule.continuous,
        "copy_regions": tuple(c.region for c in rule.copies),
        "copy_delete_after_days": tuple(UNTIL_DELETED if c.delete_after_days is None
                                        else c.delete_after_days for c in rule.copies)}
    if not rule.schedule:
        return make.failed(resource, "The rule has no schedule: it never runs on its own.",
                           evidence=evidence)
    gap = schedule_gap_hours(rule.schedule)
    if isinstance(gap, Unknown):
        return make.make(Status.UNVERIFIED, resource, f"Could not observe the rule's schedule: "
                         f"{gap.detail}", evidence=evidence, unknown_reason=gap.reason)
    shortest_days = min([d for d in [rule.delete_after_days,
                                     *(c.delete_after_days for c in rule.copies)]
                         if d is not None], default=None)
    if shortest_days is not None and shortest_days < policy.min_backup_retention_days:
        return make.failed(resource, f"Recovery points (or their copies) are deleted after "
                           f"{shortest_days} days, below the policy minimum of "
                           f"{policy.min_backup_retention_days}.", evidence=evidence)
    if shortest_days is not None and shortest_days < policy.recommended_backup_retention_days:
        return make.warned(resource, f"Recovery points (or their copies) are kept "
                           f"{shortest_days} days, below the recommended "
                           f"{policy.recommended_backup_retention_days}.", evidence=evidence)
    if gap > 24:
        return make.warned(resource, "The rule runs less often than daily: up to "
                           f"{gap:g} hours of changes could be lost.", evidence=evidence)
    return make.passed(resource, "The rule runs at least daily and keeps recovery points long "
                       "enough.", evidence=evidence)


# Backup vault locks

@dataclass(frozen=True)
class VaultsObservation:
    """Every scanned region's backup vaults."""

    regions: Fact[tuple[tuple[str, Fact[tuple[Store, ...]]], ...]]


class BackupVaultLock(Check[VaultsObservation]):
    """
    Backup vaults are locked so recovery points outlive a compromised administrator, with a
    lock that allows the policy's retention.
    """

    meta = CheckMeta(
        id="aws.backup.vault_lock",
        title="AWS Backup vaults are locked with a retention that fits the policy",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=(*CONTINGENCY, "164.312(c)(1)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads each backup vault's lock. A lock whose maximum retention is below the "
            "policy minimum fails (recovery points cannot be kept long enough); no lock, or a "
            "minimum retention below the policy minimum, warns: recovery points can then be "
            "deleted early."),
        remediation=(
            "Lock the vault (PutBackupVaultLockConfiguration) with MinRetentionDays of at least "
            "the policy minimum and MaxRetentionDays, if set, above every rule's "
            "DeleteAfterDays; set ChangeableForDays to make the lock immutable (compliance "
            "mode)."),
        operations=(*BACKUP_VAULTS.operations, REGIONS_OPERATION),
    )

    def collect(self, ctx: CheckContext, target: Target) -> VaultsObservation:
        """List each region's vaults with their lock settings."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        if isinstance(regions, Unknown):
            return VaultsObservation(regions)
        return VaultsObservation(tuple((r, BACKUP_VAULTS.fetch(scan, r)) for r in regions))

    def evaluate(self, obs: VaultsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per vault; one per region whose vaults could not be listed."""
        make = self.findings(target)
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        findings: list[Finding] = []
        for region, vaults in obs.regions:
            resource = BACKUP_VAULTS.listing_resource(region)
            if isinstance(vaults, Unknown):
                findings.append(make.unverified(resource, vaults,
                                                f"the backup vaults in {region}"))
            elif not vaults:
                findings.append(make.passed(resource, f"No backup vaults in {region}.",
                                            evidence={"region": region, "count": 0}))
            else:
                findings += [_judge_lock(make, vault, policy) for vault in vaults]
        return findings


def _judge_lock(make: FindingBuilder[VaultsObservation], vault: Store,
                policy: Policy) -> Finding:
    locked = vault.detail("locked") is True
    low, high = vault.detail("min_retention_days"), vault.detail("max_retention_days")
    evidence: dict[str, EvidenceValue] = {"region": vault.region, **dict(vault.details),
                                          "policy_min_days": policy.min_backup_retention_days}
    minimum = policy.min_backup_retention_days
    if not locked:
        return make.warned(vault.resource, "The vault is not locked: anyone allowed to delete "
                           "recovery points can delete them before their retention ends.",
                           evidence=evidence)
    if isinstance(high, int) and high < minimum:
        return make.failed(vault.resource, f"The vault lock's maximum retention ({high} days) "
                           f"is below the policy minimum of {minimum} days.", evidence=evidence)
    if not isinstance(low, int) or low < minimum:
        shown = "not set" if not isinstance(low, int) else f"{low} days"
        return make.warned(vault.resource, f"The vault is locked, but its minimum retention "
                           f"({shown}) lets recovery points go before {minimum} days.",
                           evidence=evidence)
    return make.passed(vault.resource, f"The vault is locked with a minimum retention of {low} "
                       "days.", evidence=evidence)


# PHI coverage and the retention map

@dataclass(frozen=True)
class Copy:
    """One copy of a store's data: what it is, where it lives and how long it is kept."""

    kind: str
    """`primary`, `automated_backups`, `pitr`, `manual_snapshots`, `snapshots`,
    `read_replica`, `versions`, `aws_backup` or `aws_backup_copy`."""
    location: str
    retention_days: int = UNTIL_DELETED
    """Days each copy is kept; `UNTIL_DELETED` (-1) when nothing expires it."""
    backup: bool = True
    """False for the primary, which is not a backup of itself."""


@dataclass(frozen=True)
class RetentionMap:
    """
    Where a store's data lives and for how long: the evidence of a coverage finding.

    As evidence it becomes three parallel tuples, one entry per copy: `copies` (kinds),
    `copy_locations` (a region, `vault@region` or a bucket) and `retention_days` (-1 for "until
    deleted"); `copies_incomplete` is True when some source of copies could not be read.
    """

    copies: tuple[Copy, ...] = ()
    incomplete: bool = False

    def evidence(self) -> dict[str, EvidenceValue]:
        """The map as finding evidence."""
        return {"copies": tuple(c.kind for c in self.copies),
                "copy_locations": tuple(c.location for c in self.copies),
                "retention_days": tuple(c.retention_days for c in self.copies),
                "copies_incomplete": self.incomplete}


@dataclass(frozen=True)
class StoreCoverage:
    """
    One PHI store: whether an AWS Backup selection covers it, and its other copies.

    `covered_by` names the covering `plan/selection` pairs; `native` holds the copies the
    service itself keeps (`Unknown` when they could not be read).
    """

    kind: str
    region: str
    resource: str
    covered_by: Fact[tuple[str, ...]]
    native: Fact[tuple[Copy, ...]]
    backup_copies: tuple[Copy, ...] = ()
    primary_days: int = UNTIL_DELETED
    lifecycle_source: str | None = None
    """The AWS Config item (and its capture time) a bucket's lifecycle rules came from; None
    when they were read live. Evidence `lifecycle_source`, whatever the status."""


@dataclass(frozen=True)
class CoverageObservation:
    """Every PHI store found, and the listings that could not be read."""

    stores: tuple[StoreCoverage, ...]
    gaps: tuple[tuple[str, Unknown, str], ...] = ()


@dataclass
class RegionBackupContext:
    """What coverage needs of one region: its plans with selections, and tags if needed."""

    region: str
    plans: Fact[tuple[Plan, ...]]
    tags: Fact[Mapping[str, Mapping[str, str]]] | None = None
    gaps: list[tuple[str, Unknown, str]] = field(default_factory=list)


def covering(region: RegionBackupContext,
             arn: str | None) -> tuple[Fact[tuple[str, ...]], tuple[Copy, ...]]:
    """The plan/selection pairs that pick `arn`, and the copies their rules make."""
    if isinstance(region.plans, Unknown):
        return region.plans, ()
    if arn is None:
        return Unknown(UnknownReason.NOT_VISIBLE, "the resource's ARN is not known",
                       needs=GET_CALLER_IDENTITY), ()
    names: list[str] = []
    copies: list[Copy] = []
    unknown: Unknown | None = None
    for plan in region.plans:
        if isinstance(plan.selections, Unknown) or isinstance(plan.rules, Unknown):
            unknown = unknown or first(plan.selections, plan.rules)
            continue
        for selection in plan.selections:
            picked = selection.picks(arn, region.tags.get(arn, {}) if isinstance(
                region.tags, Mapping) else region.tags)
            if isinstance(picked, Unknown):
                unknown = unknown or picked
            elif picked:
                names.append(f"{plan.name}/{selection.name}")
                copies += _rule_copies(plan)
    if unknown and not names:
        return unknown, ()
    return tuple(names), tuple(copies)


def first(*facts: object) -> Unknown:
    """The first `Unknown` of `facts` (there must be one)."""
    return next(f for f in facts if isinstance(f, Unknown))


def _rule_copies(plan: Plan) -> list[Copy]:
    copies: list[Copy] = []
    for rule in plan.rules if not isinstance(plan.rules, Unknown) else ():
        copies.append(Copy("aws_backup", f"{rule.vault}@{plan.region}",
                           _keep(rule.delete_after_days)))
        copies += [Copy("aws_backup_copy", c.destination.rsplit(":", 1)[-1] + "@" + c.region,
                        _keep(c.delete_after_days)) for c in rule.copies]
    return copies


def _keep(days: int | None) -> int:
    return UNTIL_DELETED if days is None else days


def region_context(scan: Scan, region: str) -> RegionBackupContext:
    """The region's backup plans with their selections, and its tags when a selection needs
    them."""
    plans = backup_plans(scan, region, with_selections=True)
    context = RegionBackupContext(region, plans)
    if not isinstance(plans, Unknown) and any(
            not isinstance(p.selections, Unknown) and any(s.uses_tags for s in p.selections)
            for p in plans):
        context.tags = tagged_resources(scan, region)
    return context


def _rds_stores(scan: Scan, region: RegionBackupContext) -> list[StoreCoverage]:
    """Standalone DB instances and DB clusters of the PHI scope, with their native copies."""
    found: list[StoreCoverage] = []
    instances = db_instances(scan, region.region)
    clusters = db_clusters(scan, region.region)
    snapshots = RDS_SNAPSHOTS.fetch(scan, region.region)
    for fact, resource in ((instances, f"rds:{region.region}"),
                           (clusters, f"rds:{region.region}:clusters")):
        if isinstance(fact, Unknown):
            region.gaps.append((resource, fact, f"the RDS databases in {region.region}"))
    manual = _manual_snapshots(snapshots)
    for db in instances if not isinstance(instances, Unknown) else ():
        if db.cluster_id or not scan.scope.holds_phi(db.identifier, db.arn):
            continue
        native = _rds_native(region.region, db.backup_retention_days,
                             manual, db.identifier, db.read_replicas)
        covered, copies = covering(region, db.arn)
        found.append(StoreCoverage("rds_instance", region.region, db.resource, covered, native,
                                   copies))
    for cluster in clusters if not isinstance(clusters, Unknown) else ():
        if not scan.scope.holds_phi(cluster.identifier, cluster.arn):
            continue
        native = _rds_native(region.region, cluster.backup_retention_days, manual,
                             cluster.identifier, ())
        covered, copies = covering(region, cluster.arn)
        found.append(StoreCoverage("rds_cluster", region.region, cluster.resource, covered,
                                   native, copies))
    return found


def _manual_snapshots(snapshots: Fact[tuple[Store, ...]]) -> Fact[Mapping[str, int]]:
    """Source database to its number of manual snapshots."""
    if isinstance(snapshots, Unknown):
        return snapshots
    counts: dict[str, int] = {}
    for snap in snapshots:
        if snap.detail("snapshot_type") == "manual":
            source = str(snap.detail("source"))
            counts[source] = counts.get(source, 0) + 1
    return counts


def _rds_native(region: str, retention: Fact[int], manual: Fact[Mapping[str, int]],
                identifier: str, replicas: Sequence[str]) -> Fact[tuple[Copy, ...]]:
    """Automated backups, manual snapshots and read replicas, each where it lives."""
    if isinstance(retention, Unknown):
        return retention
    if isinstance(manual, Unknown):
        return manual
    copies = [Copy("automated_backups", region, retention)] if retention > 0 else []
    if manual.get(identifier):
        copies.append(Copy("manual_snapshots", region))
    copies += [Copy("read_replica", r.split(":")[3] if r.startswith("arn:") else region)
               for r in replicas]
    return tuple(copies)


def _table_stores(scan: Scan, region: RegionBackupContext) -> list[StoreCoverage]:
    tables = DYNAMODB_TABLES.fetch(scan, region.region)
    if isinstance(tables, Unknown):
        region.gaps.append((DYNAMODB_TABLES.listing_resource(region.region), tables,
                            f"the DynamoDB tables in {region.region}"))
        return []
    found = []
    for table in tables:
        if not scan.scope.holds_phi(table.name, table.arn):
            continue
        pitr = table_pitr(scan, region.region, table.name)
        native: Fact[tuple[Copy, ...]] = pitr if isinstance(pitr, Unknown) else (
            (Copy("pitr", region.region, pitr.period_days or 35),) if pitr.enabled else ())
        covered, copies = covering(region, table.arn)
        found.append(StoreCoverage("dynamodb_table", region.region, table.resource, covered,
                                   native, copies))
    return found


def _volume_stores(scan: Scan, region: RegionBackupContext,
                   account: Fact[str]) -> list[StoreCoverage]:
    volumes = EBS_VOLUMES.fetch(scan, region.region)
    if isinstance(volumes, Unknown):
        region.gaps.append((EBS_VOLUMES.listing_resource(region.region), volumes,
                            f"the EBS volumes in {region.region}"))
        return []
    snapshots = EBS_SNAPSHOTS.fetch(scan, region.region)
    sources: Fact[set[str]] = snapshots if isinstance(snapshots, Unknown) else {
        str(s.detail("source")) for s in snapshots}
    found = []
    for volume in volumes:
        arn = None if isinstance(account, Unknown) else (
            f"arn:aws:ec2:{region.region}:{account}:volume/{volume.name}")
        if not scan.scope.holds_phi(volume.name, arn):
            continue
        native: Fact[tuple[Copy, ...]] = sources if isinstance(sources, Unknown) else (
            (Copy("snapshots", region.region),) if volume.name in sources else ())
        covered, copies = covering(region, arn)
        found.append(StoreCoverage("ebs_volume", region.region, volume.resource, covered,
                                   native, copies))
    return found


def _file_system_stores(scan: Scan, region: RegionBackupContext) -> list[StoreCoverage]:
    systems = EFS_FILE_SYSTEMS.fetch(scan, region.region)
    if isinstance(systems, Unknown):
        region.gaps.append((EFS_FILE_SYSTEMS.listing_resource(region.region), systems,
                            f"the EFS file systems in {region.region}"))
        return []
    found = []
    for system in systems:
        if scan.scope.holds_phi(system.name, system.arn):
            covered, copies = covering(region, system.arn)
            found.append(StoreCoverage("efs_file_system", region.region, system.resource,
                                       covered, (), copies))
    return found


def _bucket_stores(scan: Scan, regions: Mapping[str, RegionBackupContext],
                   gaps: list[tuple[str, Unknown, str]]) -> list[StoreCoverage]:
    observed = observe_buckets(scan, versioning=True, lifecycle=True)
    if isinstance(observed.buckets, Unknown):
        gaps.append((LISTING_RESOURCE, observed.buckets, "the account's S3 buckets"))
        return []
    found = []
    for bucket in observed.buckets:
        if not bucket.phi:
            continue
        found.append(_bucket_store(scan, bucket, regions))
    return found


def _bucket_store(scan: Scan, bucket: BucketRetention,
                  regions: Mapping[str, RegionBackupContext]) -> StoreCoverage:
    if isinstance(bucket.region, Unknown):
        return StoreCoverage("s3_bucket", "", bucket.name, bucket.region, bucket.region)
    region = regions.get(bucket.region) or region_context(scan, bucket.region)
    versioning: Fact[Versioning] = Unknown(UnknownReason.NOT_VISIBLE, "not read") \
        if bucket.versioning is None else bucket.versioning
    rules: Fact[tuple[ExpiryRule, ...]] = () if bucket.lifecycle is None else bucket.lifecycle
    covered, copies = covering(region, f"arn:aws:s3:::{bucket.name}")
    native = first(versioning, rules) if isinstance(versioning, Unknown) or isinstance(
        rules, Unknown) else ((Copy("versions", bucket.name,
                                    shortest(rules, "noncurrent_days")),)
                              if versioning.status == "Enabled" else ())
    primary = UNTIL_DELETED if isinstance(rules, Unknown) else shortest(rules, "current_days")
    return StoreCoverage("s3_bucket", bucket.region, bucket.name, covered, native, copies,
                         primary, bucket.lifecycle_source)


def coverage(scan: Scan) -> CoverageObservation:
    """
    Every PHI store with its AWS Backup coverage and native copies.

    NOTE: Redshift, ElastiCache and OpenSearch keep their own snapshots and are left out of
    coverage for now; Data Lifecycle Manager policies, S3 replication and AWS Backup's
    per-region resource-type opt-in are not read (issue 4): a store they protect shows here
    as covered by no selection, never as covered.
    """
    regions = scan_regions(scan)
    if isinstance(regions, Unknown):
        return CoverageObservation((), ((REGIONS_RESOURCE, regions, "the account's regions"),))
    contexts = {r: region_context(scan, r) for r in regions}
    account = account_id(scan)
    stores: list[StoreCoverage] = []
    for region in contexts.values():
        stores += _rds_stores(scan, region)
        stores += _table_stores(scan, region)
        stores += _volume_stores(scan, region, account)
        stores += _file_system_stores(scan, region)
    gaps = [gap for region in contexts.values() for gap in region.gaps]
    stores += _bucket_stores(scan, contexts, gaps)
    return CoverageObservation(tuple(stores), tuple(gaps))


class BackupCoverage(Check[CoverageObservation]):
    """
    Every PHI store is covered by an AWS Backup selection; the finding maps all its copies.
    """

    meta = CheckMeta(
        id="aws.backup.phi_coverage",
        title="Every PHI store is covered by a backup selection",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=(*CONTINGENCY, "164.316(b)(2)(i)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "For each PHI store (RDS instances and clusters, DynamoDB tables, EBS volumes, EFS "
            "file systems, S3 buckets), resolves the AWS Backup selections of its region "
            "(ARNs, wildcards, NotResources and tag conditions). Covered passes; covered by no "
            "selection warns when the service keeps its own copies (automated backups, PITR, "
            "snapshots, versions) and fails when nothing does. Each finding's evidence is the "
            "store's retention map: every copy, where it lives and how long it is kept."),
        remediation=(
            "Add the store to a backup plan's selection (CreateBackupSelection by ARN or by a "
            "tag the store carries), with a rule whose retention meets the policy; copy "
            "recovery points to a second region for disaster recovery."),
        operations=(
            *PLAN_OPERATIONS, *SELECTION_OPERATIONS,
            Operation(System.AWS, DESCRIBE_INSTANCES, "list DB instances per region"),
            Operation(System.AWS, DESCRIBE_CLUSTERS, "list DB clusters per region"),
            *RDS_SNAPSHOTS.operations, *DYNAMODB_TABLES.operations,
            Operation(System.AWS, DESCRIBE_PITR, "read each table's PITR"),
            *EBS_VOLUMES.operations, *EBS_SNAPSHOTS.operations, *EFS_FILE_SYSTEMS.operations,
            *BUCKET_OPERATIONS,
            Operation(System.AWS, GET_VERSIONING, "see whether a bucket keeps versions"),
            Operation(System.AWS, GET_LIFECYCLE, "read how long a bucket keeps versions"),
            Operation(System.AWS, GET_CALLER_IDENTITY, "build EBS volume ARNs"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> CoverageObservation:
        """Gather every PHI store, the region's backup selections and the native copies."""
        return coverage(Scan.of(ctx, target))

    def evaluate(self, obs: CoverageObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per PHI store, and one per listing that could not be read."""
        make = self.findings(target)
        findings = [make.unverified(resource, unknown, what)
                    for resource, unknown, what in obs.gaps]
        findings += [_judge_coverage(make, store) for store in obs.stores]
        if not findings:
            findings.append(make.passed("backup:phi-stores", "No PHI stores were found.",
                                        evidence={"store_count": 0}))
        return findings


def retention_map(store: StoreCoverage) -> RetentionMap:
    """Every copy of a store's data that was observed."""
    native = () if isinstance(store.native, Unknown) else store.native
    copies = (Copy("primary", store.region or store.resource, store.primary_days, False),
              *native, *store.backup_copies)
    return RetentionMap(copies, isinstance(store.native, Unknown)
                        or isinstance(store.covered_by, Unknown))


def _judge_coverage(make: FindingBuilder[CoverageObservation],
                    store: StoreCoverage) -> Finding:
    evidence: dict[str, EvidenceValue] = {"region": store.region, "store_kind": store.kind,
                                          **retention_map(store).evidence()}
    if store.lifecycle_source:
        evidence["lifecycle_source"] = store.lifecycle_source
    covered = store.covered_by
    if not isinstance(covered, Unknown) and covered:
        evidence["covered_by"] = covered
        return make.passed(store.resource, "AWS Backup selection(s) cover this PHI store.",
                           evidence=evidence)
    pending = first(covered, store.native) if isinstance(covered, Unknown) or isinstance(
        store.native, Unknown) else None
    if pending is not None:
        return make.make(Status.UNVERIFIED, store.resource,
                         f"Could not observe the store's backups: {pending.detail}",
                         evidence=evidence, needs=pending.needs,
                         unknown_reason=pending.reason)
    native = () if isinstance(store.native, Unknown) else store.native
    if native:
        return make.warned(store.resource, "No AWS Backup selection covers this PHI store; "
                           "only the service's own copies ("
                           + ", ".join(sorted({c.kind for c in native})) + ") protect it.",
                           evidence=evidence)
    return make.failed(store.resource, "No backup of any kind protects this PHI store: no "
                       "AWS Backup selection covers it and the service keeps no copies.",
                       evidence=evidence)

