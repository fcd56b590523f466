"""
The `hipaacheck.checks` entry points the AWS encryption and backup checks need in
pyproject.toml: each line loads a check class with a no-argument constructor whose id is the
entry point's name, exactly as the registry requires.
"""

from __future__ import annotations

import importlib

import pytest

from hipaacheck.check import Check

PROPOSED = """
"aws.rds.deletion_protection" = "hipaacheck.checks.aws.rds:DeletionProtection"
"aws.rds.cross_region_backup" = "hipaacheck.checks.aws.rds_copies:CrossRegionBackup"
"aws.rds.cluster_storage_encrypted" = "hipaacheck.checks.aws.encryption:RdsClusterEncrypted"
"aws.rds.snapshot_encrypted" = "hipaacheck.checks.aws.encryption:RdsSnapshotEncrypted"
"aws.dynamodb.table_encrypted" = "hipaacheck.checks.aws.encryption:DynamoDbTableEncrypted"
"aws.dynamodb.pitr" = "hipaacheck.checks.aws.backup:DynamoDbPitr"
"aws.ec2.ebs_volume_encrypted" = "hipaacheck.checks.aws.encryption:EbsVolumeEncrypted"
"aws.ec2.ebs_snapshot_encrypted" = "hipaacheck.checks.aws.encryption:EbsSnapshotEncrypted"
"aws.ec2.ebs_encryption_by_default" = "hipaacheck.checks.aws.encryption:EbsEncryptionByDefault"
"aws.efs.file_system_encrypted" = "hipaacheck.checks.aws.encryption:EfsEncrypted"
"aws.elasticache.at_rest_encryption" = "hipaacheck.checks.aws.encryption:ElastiCacheEncrypted"
"aws.redshift.cluster_encrypted" = "hipaacheck.checks.aws.encryption:RedshiftEncrypted"
"aws.opensearch.domain_encrypted" = "hipaacheck.checks.aws.encryption:OpenSearchEncrypted"
"aws.logs.log_group_encrypted" = "hipaacheck.checks.aws.encryption:LogGroupEncrypted"
"aws.logs.audit_retention" = "hipaacheck.checks.aws.log_retention:AuditLogRetention"
"aws.eks.secrets_encrypted" = "hipaacheck.checks.aws.encryption:EksSecretsEncrypted"
"aws.kms.key_state" = "hipaacheck.checks.aws.kms:KmsKeyState"
"aws.kms.key_rotation" = "hipaacheck.checks.aws.kms:KmsKeyRotation"
"aws.backup.vault_encrypted" = "hipaacheck.checks.aws.encryption:BackupVaultEncrypted"
"aws.backup.plan_rules" = "hipaacheck.checks.aws.backup:BackupPlanRules"
"aws.backup.vault_lock" = "hipaacheck.checks.aws.backup:BackupVaultLock"
"aws.backup.phi_coverage" = "hipaacheck.checks.aws.backup:BackupCoverage"
"aws.s3.versioning" = "hipaacheck.checks.aws.s3_retention:S3Versioning"
"aws.s3.lifecycle_retention" = "hipaacheck.checks.aws.s3_retention:S3LifecycleRetention"
"""
"""The lines to add under [project.entry-points."hipaacheck.checks"], as written there."""


def entries() -> list[tuple[str, str]]:
    pairs = []
    for line in PROPOSED.strip().splitlines():
        name, _, value = line.partition(" = ")
        pairs.append((name.strip('"'), value.strip('"')))
    return pairs


@pytest.mark.parametrize(("name", "value"), entries())
def test_each_entry_point_loads_the_check_it_names(name: str, value: str) -> None:
    module, _, attribute = value.partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    check = cls()
    assert isinstance(check, Check)
    assert check.meta.id == name
    assert check.meta.problems() == []


def test_entry_point_names_are_unique() -> None:
    names = [name for name, _ in entries()]
    assert len(names) == len(set(names)) == 24
