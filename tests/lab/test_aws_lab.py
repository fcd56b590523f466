"""
The AWS lab: a seeded moto server whose inventory fragment and environment a scan can use as
they are, with the sound and broken cases telling themselves apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws import backup, encryption, kms, log_retention, s3_retention
from hipaacheck.checks.aws.rds import BackupRetention, DeletionProtection, StorageEncrypted
from hipaacheck.checks.aws.s3 import DefaultEncryption
from hipaacheck.clients import Clients
from hipaacheck.config import Inventory
from hipaacheck.lab.aws import LAB_REGIONS, start_aws_lab
from hipaacheck.lab.base import LabPart
from hipaacheck.model import Finding, Status, Target

DEFAULT = Policy()
FAMILY_CHECKS: list[Check[object]] = [
    DefaultEncryption(), StorageEncrypted(), BackupRetention(), DeletionProtection(),
    *(cls() for cls in encryption.TABLE_CHECKS), encryption.EbsEncryptionByDefault(),
    kms.KmsKeyState(), kms.KmsKeyRotation(), backup.DynamoDbPitr(), backup.BackupPlanRules(),
    backup.BackupVaultLock(), backup.BackupCoverage(), s3_retention.S3Versioning(),
    s3_retention.S3LifecycleRetention(), log_retention.AuditLogRetention()]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPart]:
    """One started AWS lab for the module; stopped twice at the end to prove that is safe."""
    part = start_aws_lab(tmp_path_factory.mktemp("aws-lab"))
    yield part
    part.stop()
    part.stop()


def lab_target(part: LabPart) -> Target:
    """The AWS target the lab's inventory fragment describes, validated as a real inventory."""
    [target] = Inventory.model_validate(part.inventory).targets()
    return target


def use_lab_env(part: LabPart, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment a scan of the lab runs with, and nothing from the machine's AWS set-up."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in part.env.items():
        monkeypatch.setenv(name, value)


def scan(part: LabPart, checks: list[Check[object]], policy: Policy = DEFAULT
         ) -> tuple[CheckContext, list[Finding]]:
    """Collect and evaluate each check against the lab target through one scan context."""
    target = lab_target(part)
    ctx = CheckContext(clients=Clients(timeout=5), policy=policy,
                       logger=logging.getLogger("test.lab"),
                       clock=lambda: datetime.now(UTC), timeout=5)
    findings = [f for check in checks
                for f in check.evaluate(check.collect(ctx, target), target, policy)]
    return ctx, findings


def test_inventory_fragment_points_at_loopback_in_both_regions(lab: LabPart) -> None:
    [account] = lab.inventory["aws"]["accounts"]
    assert account["name"] == "lab"
    assert account["regions"] == list(LAB_REGIONS) == ["us-east-1", "eu-west-1"]
    assert account["endpoint_url"].startswith("http://127.0.0.1:")
    assert lab_target(lab).id == "aws:lab"


def test_env_carries_only_fake_credentials_for_the_default_chain(lab: LabPart) -> None:
    assert set(lab.env) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                            "AWS_DEFAULT_REGION"}
    assert lab.env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "credentials" not in str(lab.inventory).lower()


def test_s3_buckets_pass_and_fail_as_seeded(lab: LabPart, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    use_lab_env(lab, monkeypatch, tmp_path)
    _, findings = scan(lab, [DefaultEncryption()])
    by_kind = {f.resource.rsplit("-", 1)[-1] + "@" + str(f.evidence["region"]): f.status
               for f in findings}
    assert by_kind == {
        "s3@us-east-1": Status.PASS, "kms@us-east-1": Status.PASS, "none@us-east-1": Status.FAIL,
        "s3@eu-west-1": Status.WARN, "kms@eu-west-1": Status.PASS, "none@eu-west-1": Status.FAIL,
        "trail@us-east-1": Status.PASS}


def test_rds_instances_pass_warn_and_fail_as_seeded(
        lab: LabPart, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_lab_env(lab, monkeypatch, tmp_path)
    _, findings = scan(lab, [StorageEncrypted(), BackupRetention()])
    statuses = {(f.check_id, f.resource.rsplit(":", 1)[-1]): f.status for f in findings}
    assert statuses == {
        ("aws.rds.storage_encrypted", "patients-primary"): Status.PASS,
        ("aws.rds.storage_encrypted", "reporting"): Status.PASS,
        ("aws.rds.storage_encrypted", "legacy-intake"): Status.FAIL,
        ("aws.rds.storage_encrypted", "eu-patients"): Status.PASS,
        ("aws.rds.storage_encrypted", "eu-scratch"): Status.FAIL,
        ("aws.rds.backup_retention", "patients-primary"): Status.PASS,
        ("aws.rds.backup_retention", "reporting"): Status.WARN,
        ("aws.rds.backup_retention", "legacy-intake"): Status.FAIL,
        ("aws.rds.backup_retention", "eu-patients"): Status.WARN,
        ("aws.rds.backup_retention", "eu-scratch"): Status.FAIL,
    }


@pytest.fixture(scope="module")
def family_scan(lab: LabPart, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[CheckContext, list[Finding]]:
    """One scan of the lab by every encryption and backup check, shared by the tests below."""
    with pytest.MonkeyPatch.context() as patch:
        use_lab_env(lab, patch, tmp_path_factory.mktemp("aws-scan"))
        return scan(lab, FAMILY_CHECKS)


def test_the_lab_shows_each_new_check_passing_or_failing_as_seeded(
        family_scan: tuple[CheckContext, list[Finding]]) -> None:
    _, findings = family_scan
    seen: dict[str, set[Status]] = {}
    for finding in findings:
        seen.setdefault(finding.check_id, set()).add(finding.status)
    assert Status.ERROR not in {s for statuses in seen.values() for s in statuses}
    for check_id in ("aws.ec2.ebs_volume_encrypted", "aws.ec2.ebs_encryption_by_default",
                     "aws.efs.file_system_encrypted", "aws.rds.snapshot_encrypted",
                     "aws.kms.key_state", "aws.kms.key_rotation", "aws.dynamodb.pitr",
                     "aws.backup.plan_rules", "aws.s3.versioning"):
        assert {Status.PASS, Status.FAIL} <= seen[check_id], check_id
    assert seen["aws.logs.audit_retention"] == {Status.FAIL}
    assert Status.FAIL in seen["aws.s3.lifecycle_retention"]
    assert {Status.PASS, Status.WARN} <= seen["aws.backup.vault_lock"]
    assert {Status.WARN, Status.FAIL} <= seen["aws.backup.phi_coverage"]
    copies = [f for f in findings if f.check_id == "aws.backup.phi_coverage"]
    assert all(len(f.evidence["copies"]) == len(f.evidence["retention_days"]) for f in copies)


def test_a_scan_of_the_lab_stays_read_only_and_within_declared_operations(
        lab: LabPart, family_scan: tuple[CheckContext, list[Finding]],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_lab_env(lab, monkeypatch, tmp_path)
    checks = FAMILY_CHECKS
    ctx, first = family_scan
    declared = {op.action for c in checks for op in c.meta.operations}
    assert {c.iam_action for c in ctx.clients.aws_calls()} <= declared
    reads = [c.identity for c in ctx.clients.aws_calls() if not c.continued]
    assert len(reads) == len(set(reads))
    # Scanning again finds exactly the same: nothing was changed
    _, second = scan(lab, checks)
    assert [(f.key, f.status) for f in first] == [(f.key, f.status) for f in second]


def test_two_labs_in_one_process_do_not_see_each_other(
        lab: LabPart, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = start_aws_lab(tmp_path)
    try:
        use_lab_env(other, monkeypatch, tmp_path)
        _, findings = scan(other, [DefaultEncryption()])
        account = other.env["AWS_ACCESS_KEY_ID"]
        assert len(findings) == 7 and account != lab.env["AWS_ACCESS_KEY_ID"]
        assert len({f.resource.split("-")[2] for f in findings}) == 1  # one account id
    finally:
        other.stop()
