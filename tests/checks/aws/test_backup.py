"""
AWS Backup and DynamoDB PITR: plan rules, vault locks, point-in-time recovery and PHI coverage
with its retention map, judged on hand-built observations, then collected from moto. moto has
no backup selections, so the fault proxy stands in for ListBackupSelections and
GetBackupSelection; every other call reaches moto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.backup import (
    UNTIL_DELETED,
    BackupCoverage,
    BackupPlanRules,
    BackupVaultLock,
    Copy,
    CopyAction,
    CoverageObservation,
    DynamoDbPitr,
    Pitr,
    PitrObservation,
    Plan,
    PlansObservation,
    RegionPlans,
    RegionTables,
    Rule,
    Selection,
    StoreCoverage,
    TablePitr,
    TagCondition,
    VaultsObservation,
    schedule_gap_hours,
)
from hipaacheck.checks.aws.stores import Store
from hipaacheck.lab.aws import LabCredentials, seed_backup, seed_dynamodb, seed_ebs, seed_rds
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.AWS, "aws:test", "test")
POLICY = Policy(min_backup_retention_days=7, recommended_backup_retention_days=35)
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "denied", needs="backup:ListBackupPlans")
TABLE_ARN = "arn:aws:dynamodb:us-east-1:111122223333:table/records"


# evaluate(): point-in-time recovery

def pitr(state: object) -> list[Finding]:
    table = Store("dynamodb_table", "us-east-1", "records", TABLE_ARN, True)
    obs = PitrObservation((RegionTables("us-east-1", (TablePitr(table, state),)),))  # type: ignore
    return list(DynamoDbPitr().evaluate(obs, TARGET, POLICY))


@pytest.mark.parametrize(("state", "status"), [
    (Pitr(False), Status.FAIL), (Pitr(True, 35), Status.PASS), (Pitr(True, 14), Status.WARN),
    (Pitr(True, 3), Status.FAIL),
])
def test_pitr(state: Pitr, status: Status) -> None:
    [finding] = pitr(state)
    assert (finding.check_id, finding.resource, finding.status) == (
        "aws.dynamodb.pitr", TABLE_ARN, status)


def test_unknown_pitr_and_unknown_listing_are_unverified() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="dynamodb:DescribeContinuousBackups")
    [finding] = pitr(denied)
    assert (finding.status, finding.needs) == (Status.UNVERIFIED,
                                               "dynamodb:DescribeContinuousBackups")
    obs = PitrObservation((RegionTables("eu-west-1", DENIED),))
    [region] = DynamoDbPitr().evaluate(obs, TARGET, POLICY)
    assert (region.resource, region.status) == ("dynamodb:eu-west-1", Status.UNVERIFIED)


# evaluate(): schedules and plan rules

@pytest.mark.parametrize(("expression", "hours"), [
    ("cron(0 5 ? * * *)", 24.0), ("cron(0 */6 ? * * *)", 12.0), ("rate(1 hour)", 1.0),
    ("rate(12 hours)", 12.0), ("cron(0 5 ? * SUN *)", 168.0), ("cron(0 5 ? * MON-FRI *)", 72.0),
    ("cron(0 5 1 * ? *)", 744.0), ("rate(2 days)", 48.0),
])
def test_schedule_gap(expression: str, hours: float) -> None:
    assert schedule_gap_hours(expression) == hours


def test_unparseable_schedule_is_unknown() -> None:
    assert isinstance(schedule_gap_hours("every day"), Unknown)


def rules(*rule: Rule, plan_rules: object = None) -> list[Finding]:
    plan = Plan("p1", "phi", "arn:aws:backup:us-east-1:1:backup-plan:p1", "us-east-1",
                rule if plan_rules is None else plan_rules)  # type: ignore[arg-type]
    obs = PlansObservation((RegionPlans("us-east-1", (plan,)),))
    return list(BackupPlanRules().evaluate(obs, TARGET, POLICY))


DAILY = "cron(0 5 ? * * *)"


@pytest.mark.parametrize(("rule", "status"), [
    (Rule("r", "v", DAILY, 35), Status.PASS),
    (Rule("r", "v", DAILY, None), Status.PASS),
    (Rule("r", "v", None, 35), Status.FAIL),
    (Rule("r", "v", DAILY, 3), Status.FAIL),
    (Rule("r", "v", DAILY, 14), Status.WARN),
    (Rule("r", "v", "cron(0 5 ? * SUN *)", 35), Status.WARN),
    (Rule("r", "v", DAILY, 35, copies=(CopyAction("arn:aws:backup:eu-west-1:1:backup-vault:dr",
                                                  3),)), Status.FAIL),
])
def test_rule(rule: Rule, status: Status) -> None:
    [finding] = rules(rule)
    assert (finding.check_id, finding.status) == ("aws.backup.plan_rules", status)
    assert finding.resource == "arn:aws:backup:us-east-1:1:backup-plan:p1#r"


def test_rule_evidence_names_retention_copies_and_cold_storage() -> None:
    rule = Rule("r", "v", DAILY, 400, 30, copies=(
        CopyAction("arn:aws:backup:eu-west-1:1:backup-vault:dr", None),))
    [finding] = rules(rule)
    assert finding.evidence["delete_after_days"] == 400
    assert finding.evidence["cold_storage_after_days"] == 30
    assert finding.evidence["copy_regions"] == ("eu-west-1",)
    assert finding.evidence["copy_delete_after_days"] == (UNTIL_DELETED,)


def test_unreadable_plan_and_unparseable_schedule_are_unverified() -> None:
    [finding] = rules(plan_rules=DENIED)
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "backup:ListBackupPlans")
    [odd] = rules(Rule("r", "v", "whenever", 35))
    assert (odd.status, odd.unknown_reason) == (Status.UNVERIFIED, UnknownReason.UNPARSEABLE)
    obs = PlansObservation((RegionPlans("eu-west-1", DENIED),))
    [region] = BackupPlanRules().evaluate(obs, TARGET, POLICY)
    assert (region.resource, region.status) == ("backup:eu-west-1:plans", Status.UNVERIFIED)


# evaluate(): vault locks

def vault(locked: bool, low: int | None = None, high: int | None = None) -> list[Finding]:
    store = Store("backup_vault", "us-east-1", "v", "arn:aws:backup:us-east-1:1:backup-vault:v",
                  True, None, (("locked", locked), ("min_retention_days", low),
                               ("max_retention_days", high)))
    obs = VaultsObservation((("us-east-1", (store,)),))
    return list(BackupVaultLock().evaluate(obs, TARGET, POLICY))


@pytest.mark.parametrize(("locked", "low", "high", "status"), [
    (False, None, None, Status.WARN), (True, 7, 3650, Status.PASS), (True, 30, None, Status.PASS),
    (True, 1, 3650, Status.WARN), (True, None, None, Status.WARN), (True, 1, 3, Status.FAIL),
])
def test_vault_lock(locked: bool, low: int | None, high: int | None, status: Status) -> None:
    [finding] = vault(locked, low, high)
    assert (finding.check_id, finding.status) == ("aws.backup.vault_lock", status)


def test_unlisted_vaults_are_unverified() -> None:
    obs = VaultsObservation((("us-east-1", DENIED),))
    [finding] = BackupVaultLock().evaluate(obs, TARGET, POLICY)
    assert (finding.resource, finding.status) == ("backup:us-east-1:vaults", Status.UNVERIFIED)


# evaluate(): what a selection picks

@pytest.mark.parametrize(("selection", "arn", "tags", "picked"), [
    (Selection("s", ("arn:aws:dynamodb:*:*:table/*",)), TABLE_ARN, None, True),
    (Selection("s", ("*",), ("arn:aws:dynamodb:*:*:table/rec*",)), TABLE_ARN, None, False),
    (Selection("s", ("arn:aws:rds:*",)), TABLE_ARN, None, False),
    (Selection("s", any_tags=(TagCondition("StringEquals", "backup", "daily"),)),
     TABLE_ARN, {"backup": "daily"}, True),
    (Selection("s", any_tags=(TagCondition("StringEquals", "backup", "daily"),)),
     TABLE_ARN, {"backup": "weekly"}, False),
    (Selection("s", ("*",), all_tags=(TagCondition("StringLike", "env", "prod*"),
                                      TagCondition("StringNotEquals", "skip", "yes"))),
     TABLE_ARN, {"env": "prod-1"}, True),
    (Selection("s", ("*",), all_tags=(TagCondition("StringNotEquals", "skip", "yes"),)),
     TABLE_ARN, {"skip": "yes"}, False),
])
def test_selection_picks(selection: Selection, arn: str, tags: dict[str, str] | None,
                         picked: bool) -> None:
    assert selection.picks(arn, tags if tags is not None else {}) is picked


def test_selection_by_tag_with_unknown_tags_is_unknown_unless_the_arn_decides() -> None:
    by_tag = Selection("s", any_tags=(TagCondition("StringEquals", "backup", "daily"),))
    unknown = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="tag:GetResources")
    picked = by_tag.picks(TABLE_ARN, unknown)
    assert isinstance(picked, Unknown) and picked.needs == "tag:GetResources"
    both = Selection("s", (TABLE_ARN,), any_tags=by_tag.any_tags)
    assert both.picks(TABLE_ARN, unknown) is True


# evaluate(): coverage and the retention map

def cover(covered: object, native: object = (), copies: tuple[Copy, ...] = ()) -> Finding:
    store = StoreCoverage("dynamodb_table", "us-east-1", TABLE_ARN, covered,  # type: ignore
                          native, copies)  # type: ignore[arg-type]
    [finding] = BackupCoverage().evaluate(CoverageObservation((store,)), TARGET, POLICY)
    return finding


def test_covered_store_passes_with_its_retention_map() -> None:
    finding = cover(("phi/by-arn",), (Copy("pitr", "us-east-1", 35),),
                    (Copy("aws_backup", "phi-vault@us-east-1", 365),))
    assert (finding.check_id, finding.status) == ("aws.backup.phi_coverage", Status.PASS)
    assert finding.evidence["covered_by"] == ("phi/by-arn",)
    assert finding.evidence["copies"] == ("primary", "pitr", "aws_backup")
    assert finding.evidence["copy_locations"] == ("us-east-1", "us-east-1", "phi-vault@us-east-1")
    assert finding.evidence["retention_days"] == (UNTIL_DELETED, 35, 365)
    assert finding.evidence["copies_incomplete"] is False


def test_uncovered_store_warns_with_native_copies_and_fails_without() -> None:
    assert cover((), (Copy("pitr", "us-east-1", 35),)).status == Status.WARN
    bare = cover(())
    assert (bare.status, bare.evidence["copies"]) == (Status.FAIL, ("primary",))


def test_unknown_coverage_or_native_copies_are_unverified_naming_the_action() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="backup:ListBackupSelections")
    finding = cover(denied, (Copy("pitr", "us-east-1", 35),))
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "backup:ListBackupSelections")
    assert finding.evidence["copies_incomplete"] is True
    pitr_denied = Unknown(UnknownReason.ACCESS_DENIED, "d",
                          needs="dynamodb:DescribeContinuousBackups")
    assert cover((), pitr_denied).needs == "dynamodb:DescribeContinuousBackups"
    # A covering selection decides, whatever else is unknown
    assert cover(("phi/by-arn",), pitr_denied).status == Status.PASS


def test_listing_gaps_are_unverified_findings() -> None:
    obs = CoverageObservation((), (("rds:us-east-1", DENIED, "the RDS databases"),))
    [finding] = BackupCoverage().evaluate(obs, TARGET, POLICY)
    assert (finding.resource, finding.status) == ("rds:us-east-1", Status.UNVERIFIED)


# collect(): moto, with the fault proxy standing in for backup selections

def selection_bodies(plan_id: str) -> dict[str, dict[str, Any]]:
    """What the stand-in answers for the plan's two selections: by ARN and by tag."""
    return {
        f"/backup/plans/{plan_id}/selections/": {"BackupSelectionsList": [
            {"SelectionId": "sel-arn", "SelectionName": "by-arn", "BackupPlanId": plan_id},
            {"SelectionId": "sel-tag", "SelectionName": "by-tag", "BackupPlanId": plan_id}]},
        f"/backup/plans/{plan_id}/selections/sel-arn": {"SelectionId": "sel-arn",
            "BackupPlanId": plan_id, "BackupSelection": {
                "SelectionName": "by-arn", "IamRoleArn": "arn:aws:iam::1:role/backup",
                "Resources": ["arn:aws:dynamodb:*:*:table/records"]}},
        f"/backup/plans/{plan_id}/selections/sel-tag": {"SelectionId": "sel-tag",
            "BackupPlanId": plan_id, "BackupSelection": {
                "SelectionName": "by-tag", "IamRoleArn": "arn:aws:iam::1:role/backup",
                "ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionKey": "backup",
                                "ConditionValue": "daily"}]}},
    }


@pytest.fixture(scope="module")
def backup_account(module_creds: LabCredentials, moto_url: str) -> dict[str, Any]:
    """
    eu-west-1: the lab's vaults and plan. us-east-1: a plan, two tables (one with PITR), a
    tagged DB instance, an untagged one, a volume with a snapshot, and an EFS file system.
    """
    creds = module_creds
    key = creds.client("kms", "eu-west-1", moto_url).create_key()["KeyMetadata"]["Arn"]
    seed_backup(creds, moto_url, "eu-west-1", key)
    us = "us-east-1"
    backup = creds.client("backup", us, moto_url)
    backup.create_backup_vault(BackupVaultName="us-vault")
    plan = backup.create_backup_plan(BackupPlan={"BackupPlanName": "us-daily", "Rules": [
        {"RuleName": "daily", "TargetBackupVaultName": "us-vault",
         "ScheduleExpression": DAILY, "Lifecycle": {"DeleteAfterDays": 365}}]})
    seed_dynamodb(creds, moto_url, us, {"records": (None, True), "scratch": (None, False)})
    seed_rds(creds, moto_url, us, "", {"tagged-db": (False, 7), "plain-db": (False, 0)})
    creds.client("rds", us, moto_url).add_tags_to_resource(
        ResourceName=f"arn:aws:rds:{us}:{creds.account_id}:db:tagged-db",
        Tags=[{"Key": "backup", "Value": "daily"}])
    seed_ebs(creds, moto_url, us, {"snapped": None}, by_default=False)
    creds.client("efs", us, moto_url).create_file_system(CreationToken="bare")
    return {"plan_id": plan["BackupPlanId"]}


@pytest.fixture
def standin(faults: Any, backup_account: dict[str, Any]) -> Iterator[Any]:
    """The fault proxy answering the us-east-1 plan's selections; eu-west-1 left to moto."""
    for path, body in selection_bodies(backup_account["plan_id"]).items():
        operation = "ListBackupSelections" if path.endswith("/") else "GetBackupSelection"
        faults.answer("backup", operation, body, subject=path)
    yield faults


def by_name(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1]: f for f in findings}


def test_collect_coverage_resolves_arns_and_tags_and_maps_copies(
        standin: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target, ctx = make_target(standin.url, regions=("us-east-1",)), make_ctx()
    check = BackupCoverage()
    found = by_name(list(check.evaluate(check.collect(ctx, target), target, POLICY)))
    # The table picked by ARN and the DB instance picked by tag are covered
    assert found["records"].status == Status.PASS
    assert found["records"].evidence["covered_by"] == ("us-daily/by-arn",)
    assert found["records"].evidence["copies"] == ("primary", "pitr", "aws_backup")
    assert found["records"].evidence["retention_days"] == (UNTIL_DELETED, 35, 365)
    assert found["tagged-db"].status == Status.PASS
    # The rest have only the service's own copies, or none
    assert found["scratch"].status == Status.FAIL
    assert found["plain-db"].status == Status.FAIL
    kinds = {f.evidence.get("store_kind"): f for f in found.values()}
    assert kinds["efs_file_system"].status == Status.FAIL
    volumes = [f for f in found.values() if f.evidence.get("store_kind") == "ebs_volume"]
    assert [v.status for v in volumes] == [Status.WARN]
    assert volumes[0].evidence["copies"] == ("primary", "snapshots")
    # Tags were read once for the region, and every call was declared
    calls = ctx.clients.aws_calls()
    assert [c.operation for c in calls].count("GetResources") == 1
    assert {c.iam_action for c in calls} <= {op.action for op in check.meta.operations}


def test_collect_coverage_unverified_where_selections_cannot_be_read(
        standin: Any, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    # Given ListBackupSelections denied in us-east-1
    standin.clear()
    standin.deny("backup", "ListBackupSelections", region="us-east-1",
                 code="AccessDeniedException")
    target, ctx = make_target(standin.url, regions=("us-east-1",)), make_ctx()
    check = BackupCoverage()
    found = by_name(list(check.evaluate(check.collect(ctx, target), target, POLICY)))
    # Then every PHI store there is unverified, naming the action, and none passes or fails
    assert {f.status for f in found.values()} == {Status.UNVERIFIED}
    assert {f.needs for f in found.values()} == {"backup:ListBackupSelections"}
    assert found["records"].evidence["copies"] == ("primary", "pitr")


def test_collect_pitr_plan_rules_and_vault_locks(
        backup_account: dict[str, Any], moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target, ctx = make_target(moto_url), make_ctx()
    results = {}
    for check in (DynamoDbPitr(), BackupPlanRules(), BackupVaultLock()):
        results[check.meta.id] = by_name(list(check.evaluate(check.collect(ctx, target),
                                                             target, POLICY)))
    assert results["aws.dynamodb.pitr"]["records"].status == Status.PASS
    assert results["aws.dynamodb.pitr"]["scratch"].status == Status.FAIL
    rules_found = {k.split("#")[-1]: f.status for k, f in results["aws.backup.plan_rules"].items()
                   if "#" in k}
    assert rules_found == {"daily": Status.PASS, "daily-35": Status.PASS,
                           "weekly-short": Status.FAIL}
    locks = {k: f.status for k, f in results["aws.backup.vault_lock"].items()}
    assert locks == {"phi-vault": Status.PASS, "scratch-vault": Status.WARN,
                     "us-vault": Status.WARN}
