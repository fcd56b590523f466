"""
Copies of RDS backups in the regions the inventory requires: the pure judgement, whether the
check applies, and collect against moto with a snapshot copied across regions.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.aws.rds_copies import CopiesObservation, CrossRegionBackup, DatabaseCopies
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import LAB_REGIONS, LabCredentials, seed_rds
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

CHECK = CrossRegionBackup()
TARGET = Target(TargetKind.AWS, "aws:test", "test")
ARN = "arn:aws:rds:us-east-1:111122223333:db:db1"


class CopyAccount(AwsAccountConfig):
    """An account config with the knob config.py does not have yet."""

    backup_copy_regions: list[str] = Field(default_factory=list)


def judge(found: dict[str, object], required: tuple[str, ...] = ("eu-west-1",)) -> Finding:
    db = DatabaseCopies(ARN, "us-east-1", "instance", found)  # type: ignore[arg-type]
    [finding] = CHECK.evaluate(CopiesObservation(required, (db,)), TARGET, Policy())
    return finding


def test_copy_in_every_required_region_passes() -> None:
    finding = judge({"eu-west-1": ("snapshot_copy",)})
    assert (finding.check_id, finding.status) == ("aws.rds.cross_region_backup", Status.PASS)
    assert finding.evidence["copy_regions"] == ("eu-west-1",)
    assert finding.evidence["copy_kinds"] == ("snapshot_copy",)


def test_missing_region_fails_even_when_another_is_unknown() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "d", needs="rds:DescribeDBSnapshots")
    assert judge({"eu-west-1": ()}).status == Status.FAIL
    assert judge({"eu-west-1": (), "eu-central-1": denied},
                 ("eu-west-1", "eu-central-1")).status == Status.FAIL
    unknown = judge({"eu-west-1": denied})
    assert (unknown.status, unknown.needs) == (Status.UNVERIFIED, "rds:DescribeDBSnapshots")


def test_database_already_in_the_only_required_region_passes() -> None:
    assert judge({}, ("us-east-1",)).status == Status.PASS


def test_applies_only_where_the_inventory_asks() -> None:
    plain = AwsAccountConfig(name="a", regions=["us-east-1"])
    asking = CopyAccount(name="a", regions=["us-east-1"], backup_copy_regions=["eu-west-1"])
    assert not CHECK.applies_to(Target(TargetKind.AWS, "aws:a", "a", plain))
    assert CHECK.applies_to(Target(TargetKind.AWS, "aws:a", "a", asking))


def test_collect_finds_a_snapshot_copied_to_the_second_region(
        aws_creds: LabCredentials, moto_url: str,
        make_ctx: Callable[..., CheckContext]) -> None:
    # Given two databases in us-east-1, one with a manual snapshot copied to eu-west-1
    seed_rds(aws_creds, moto_url, "us-east-1", "", {"copied": (False, 7), "alone": (False, 7)})
    us = aws_creds.client("rds", "us-east-1", moto_url)
    us.create_db_snapshot(DBSnapshotIdentifier="copied-manual", DBInstanceIdentifier="copied")
    source = us.describe_db_snapshots(DBSnapshotIdentifier="copied-manual")["DBSnapshots"][0]
    aws_creds.client("rds", "eu-west-1", moto_url).copy_db_snapshot(
        SourceDBSnapshotIdentifier=source["DBSnapshotArn"], SourceRegion="us-east-1",
        TargetDBSnapshotIdentifier="copied-dr")
    account = CopyAccount(name="test", regions=[LAB_REGIONS[0]], endpoint_url=moto_url,
                          backup_copy_regions=list(LAB_REGIONS))
    target, ctx = Target(TargetKind.AWS, "aws:test", "test", account), make_ctx()
    # When the check runs, then only the copied database passes
    found = {f.resource.rsplit(":", 1)[-1]: f for f in
             CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)}
    assert {k: f.status for k, f in found.items()} == {"copied": Status.PASS,
                                                       "alone": Status.FAIL}
    assert found["copied"].evidence["copy_kinds"] == ("snapshot_copy",)
    assert {c.iam_action for c in ctx.clients.aws_calls()} <= {
        op.action for op in CHECK.meta.operations}
