"""
Every AWS check of the encryption and backup families: complete metadata, and a scan of the
lab's seeded account in which each check, alone in its own scan, calls only what it declares,
and all of them together read nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.aws import (
    backup,
    encryption,
    kms,
    log_retention,
    rds,
    rds_copies,
    s3,
    s3_retention,
)
from hipaacheck.checks.aws.collector import Scan, scan_regions
from hipaacheck.clients.aws import NAMED_READS, is_read_operation
from hipaacheck.lab.aws import LabCredentials, seed_account
from hipaacheck.model import Family, Status, Target, Unknown
from hipaacheck.registry import Registry

FAMILY_CHECKS: tuple[type[Check[Any]], ...] = (
    s3.DefaultEncryption, rds.StorageEncrypted, rds.BackupRetention, rds.DeletionProtection,
    *encryption.TABLE_CHECKS, encryption.EbsEncryptionByDefault, kms.KmsKeyState,
    kms.KmsKeyRotation, backup.DynamoDbPitr, backup.BackupPlanRules, backup.BackupVaultLock,
    backup.BackupCoverage, s3_retention.S3Versioning, s3_retention.S3LifecycleRetention,
    log_retention.AuditLogRetention, rds_copies.CrossRegionBackup)


def test_every_check_has_complete_metadata_and_a_unique_id() -> None:
    registry = Registry.from_checks(cls() for cls in FAMILY_CHECKS)
    assert len(registry.checks) == len(FAMILY_CHECKS)
    for check in registry.checks.values():
        assert check.meta.family in (Family.ENCRYPTION, Family.BACKUP)
        for op in check.meta.operations:
            service, action = op.action.split(":")
            # Describe/Get/List, or one of the client's named reads (BatchGetResourceConfig)
            assert service and (action.startswith(("Describe", "Get", "List"))
                                or action in NAMED_READS), op.action


@pytest.fixture(scope="module")
def lab_account(module_creds: LabCredentials, moto_url: str) -> LabCredentials:
    """The module's account, seeded exactly as `hipaacheck demo` seeds its lab."""
    seed_account(module_creds, moto_url)
    return module_creds


def test_each_check_alone_calls_only_what_it_declares(
        lab_account: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target = make_target(moto_url)
    for cls in FAMILY_CHECKS:
        check, ctx = cls(), make_ctx()
        findings = check.evaluate(check.collect(ctx, target), target, ctx.policy)
        assert findings, cls.__name__
        assert Status.ERROR not in {f.status for f in findings}, cls.__name__
        declared = {op.action for op in check.meta.operations}
        made = {c.iam_action for c in ctx.clients.aws_calls()}
        assert made <= declared, (cls.__name__, made - declared)
        assert all(is_read_operation(c.operation) for c in ctx.clients.aws_calls())


def test_all_checks_in_one_scan_read_nothing_twice(
        lab_account: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target, ctx = make_target(moto_url), make_ctx()
    for cls in FAMILY_CHECKS:
        check = cls()
        check.evaluate(check.collect(ctx, target), target, ctx.policy)
    reads = [c.identity for c in ctx.clients.aws_calls() if not c.continued]
    twice = {r for r in reads if reads.count(r) > 1}
    assert not twice


def test_regions_all_expands_to_the_enabled_regions_once(
        lab_account: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext],
        make_target: Callable[..., Target]) -> None:
    target, ctx = make_target(moto_url, regions=("eu-west-1", "all")), make_ctx()
    scan = Scan.of(ctx, target)
    regions = scan_regions(scan)
    assert not isinstance(regions, Unknown)
    assert regions[0] == "eu-west-1" and "us-east-1" in regions and len(set(regions)) == len(
        regions)
    assert scan_regions(scan) == regions
    assert [c.operation for c in ctx.clients.aws_calls()] == ["DescribeRegions"]
    assert ctx.clients.aws_calls()[0].region == "eu-west-1"
