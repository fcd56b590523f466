"""
RDS storage encryption and automated-backup retention.

Both checks read one `DescribeDBInstances` listing per region, fetched once per scan through
the memo. Backup retention also reads `DescribeDBClusters`, because the retention of an Aurora
or Multi-AZ cluster belongs to the cluster, not to its member instances. A region whose
listing fails becomes one UNVERIFIED finding (`rds:<region>`) and the other regions go on.
Only configuration is read: no database is connected to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipaacheck.checks.aws.s3 import account_of, key_manager

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.aws import AwsSession, classify_error, paginate
from hipaacheck.config import AwsAccountConfig
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

DESCRIBE_INSTANCES = "rds:DescribeDBInstances"
DESCRIBE_CLUSTERS = "rds:DescribeDBClusters"
DESCRIBE_KEY = "kms:DescribeKey"


@dataclass(frozen=True)
class DbInstance:
    """The configuration facts of one DB instance that these checks judge."""

    identifier: str
    region: str
    arn: str | None
    engine: str
    cluster_id: str | None
    """The cluster the instance belongs to (Aurora, Multi-AZ DB cluster), if any."""
    replica_source: str | None
    """The source instance when this is a read replica."""
    storage_encrypted: Fact[bool]
    kms_key_id: str | None
    backup_retention_days: Fact[int]

    @property
    def resource(self) -> str:
        """The resource id findings use: the ARN, else `region/identifier`."""
        return self.arn or f"{self.region}/{self.identifier}"


@dataclass(frozen=True)
class DbCluster:
    """The backup facts of one DB cluster."""

    identifier: str
    region: str
    arn: str | None
    engine: str
    backup_retention_days: Fact[int]

    @property
    def resource(self) -> str:
        """The resource id findings use: the ARN, else `region/identifier`."""
        return self.arn or f"{self.region}/{self.identifier}"


def _fact(raw: dict[str, Any], name: str, kind: type, operation: str) -> Fact[Any]:
    """`raw[name]` when it has the expected type, else `Unknown` (unparseable)."""
    value = raw.get(name)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    return Unknown(UnknownReason.UNPARSEABLE, f"{operation} did not report {name}")


def _instance(raw: dict[str, Any], region: str) -> DbInstance:
    return DbInstance(
        identifier=str(raw.get("DBInstanceIdentifier", "")), region=region,
        arn=raw.get("DBInstanceArn"), engine=str(raw.get("Engine", "")),
        cluster_id=raw.get("DBClusterIdentifier"),
        replica_source=raw.get("ReadReplicaSourceDBInstanceIdentifier"),
        storage_encrypted=_fact(raw, "StorageEncrypted", bool, "DescribeDBInstances"),
        kms_key_id=raw.get("KmsKeyId"),
        backup_retention_days=_fact(raw, "BackupRetentionPeriod", int, "DescribeDBInstances"))


def _cluster(raw: dict[str, Any], region: str) -> DbCluster:
    return DbCluster(
        identifier=str(raw.get("DBClusterIdentifier", "")), region=region,
        arn=raw.get("DBClusterArn"), engine=str(raw.get("Engine", "")),
        backup_retention_days=_fact(raw, "BackupRetentionPeriod", int, "DescribeDBClusters"))


def db_instances(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                 region: str) -> Fact[tuple[DbInstance, ...]]:
    """
    Every DB instance in one region of the account, listed once per scan.
    """
    def compute() -> Fact[tuple[DbInstance, ...]]:
        try:
            raw = paginate(session.client("rds", region), "describe_db_instances",
                           "DBInstances")
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return classify_error(exc, DESCRIBE_INSTANCES)
        return tuple(_instance(item, region) for item in raw)

    return ctx.memo.get(("aws.rds.db_instances", account.name, region), compute)


def db_clusters(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                region: str) -> Fact[tuple[DbCluster, ...]]:
    """
    Every DB cluster in one region of the account, listed once per scan.
    """
    def compute() -> Fact[tuple[DbCluster, ...]]:
        try:
            raw = paginate(session.client("rds", region), "describe_db_clusters", "DBClusters")
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return classify_error(exc, DESCRIBE_CLUSTERS)
        return tuple(_cluster(item, region) for item in raw)

    return ctx.memo.get(("aws.rds.db_clusters", account.name, region), compute)


def region_resource(region: str) -> str:
    """The resource a finding about a whole region's listing is filed under."""
    return f"rds:{region}"


@dataclass(frozen=True)
class RegionEncryption:
    """One region's DB instances and the managers of the KMS keys they use."""

    region: str
    instances: Fact[tuple[DbInstance, ...]]
    key_managers: Mapping[str, Fact[str]] = field(default_factory=dict)
    """KMS key id to `"CUSTOMER"`, `"AWS"` or `Unknown`."""


@dataclass(frozen=True)
class EncryptionObservation:
    """Every configured region of the account."""

    regions: tuple[RegionEncryption, ...]


class StorageEncrypted(Check[EncryptionObservation]):
    """
    Every RDS DB instance encrypts its storage, automated backups and snapshots.
    """

    meta = CheckMeta(
        id="aws.rds.storage_encrypted",
        title="RDS DB instances encrypt storage at rest",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)",),
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Reads StorageEncrypted for every DB instance in each configured region. An "
            "unencrypted instance fails; an instance encrypted with the AWS-managed key warns "
            "when the policy requires customer-managed keys."),
        remediation=(
            "Storage encryption cannot be switched on in place: snapshot the instance, copy "
            "the snapshot with a customer-managed KMS key, restore from the encrypted copy and "
            "cut over."),
        operations=(
            Operation(System.AWS, DESCRIBE_INSTANCES, "list DB instances per region"),
            Operation(System.AWS, DESCRIBE_KEY, "tell customer-managed from AWS-managed keys"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> EncryptionObservation:
        """List each region's instances and look up the managers of their keys."""
        account = account_of(target)
        session = ctx.clients.aws(account)
        regions = []
        for region in account.regions:
            instances = db_instances(ctx, session, account, region)
            managers: dict[str, Fact[str]] = {}
            if not isinstance(instances, Unknown):
                for key_id in sorted({i.kms_key_id for i in instances
                                      if i.storage_encrypted is True and i.kms_key_id}):
                    managers[key_id] = key_manager(ctx, session, account, region, key_id)
            regions.append(RegionEncryption(region, instances, managers))
        return EncryptionObservation(tuple(regions))

    def evaluate(self, obs: EncryptionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per instance; one per region that could not be listed or is empty."""
        make = self.findings(target)
        findings: list[Finding] = []
        for region in obs.regions:
            if isinstance(region.instances, Unknown):
                findings.append(make.unverified(region_resource(region.region), region.instances,
                                                f"the DB instances in {region.region}"))
            elif not region.instances:
                findings.append(make.passed(
                    region_resource(region.region), f"No DB instances in {region.region}.",
                    evidence={"region": region.region, "instance_count": 0}))
            else:
                findings += [_judge_encryption(make, i, region.key_managers, policy)
                             for i in region.instances]
        return findings


def _judge_encryption(make: FindingBuilder[EncryptionObservation], db: DbInstance,
                      managers: Mapping[str, Fact[str]], policy: Policy) -> Finding:
    """The finding for one instance's storage encryption."""
    if isinstance(db.storage_encrypted, Unknown):
        return make.unverified(db.resource, db.storage_encrypted, "storage encryption")
    evidence: dict[str, EvidenceValue] = {
        "region": db.region, "engine": db.engine, "storage_encrypted": db.storage_encrypted}
    if not db.storage_encrypted:
        return make.failed(db.resource, "The DB instance's storage is not encrypted.",
                           evidence=evidence)
    manager = managers.get(db.kms_key_id or "") or Unknown(
        UnknownReason.UNPARSEABLE, "DescribeDBInstances did not report the KMS key")
    evidence["key_manager"] = manager if isinstance(manager, str) else "unknown"
    if manager == "CUSTOMER":
        return make.passed(db.resource, "Storage is encrypted with a customer-managed KMS key.",
                           evidence=evidence)
    if isinstance(manager, Unknown):
        if policy.require_customer_managed_keys:
            return make.unverified(db.resource, manager, "who manages the instance's KMS key")
        return make.passed(db.resource, "Storage is encrypted; who manages the KMS key could not "
                           "be read.", evidence=evidence)
    if policy.require_customer_managed_keys:
        return make.warned(db.resource, "Storage is encrypted with the AWS-managed key, but the "
                           "policy requires customer-managed KMS keys.", evidence=evidence)
    return make.passed(db.resource, "Storage is encrypted with the AWS-managed key; a "
                       "customer-managed key would add key-policy control.", evidence=evidence)


@dataclass(frozen=True)
class RegionBackups:
    """One region's DB instances and DB clusters."""

    region: str
    instances: Fact[tuple[DbInstance, ...]]
    clusters: Fact[tuple[DbCluster, ...]]


@dataclass(frozen=True)
class BackupObservation:
    """Every configured region of the account."""

    regions: tuple[RegionBackups, ...]


class BackupRetention(Check[BackupObservation]):
    """
    Automated backups of every RDS DB instance and cluster are kept long enough.
    """

    meta = CheckMeta(
        id="aws.rds.backup_retention",
        title="RDS automated backups are retained long enough",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads the automated-backup retention period of every standalone DB instance and "
            "every DB cluster in each configured region. Below the policy minimum fails (zero "
            "means automated backups are off); below the recommended period warns."),
        remediation=(
            "Raise the backup retention period (ModifyDBInstance or ModifyDBCluster "
            "--backup-retention-period) to at least the policy minimum, and add an AWS Backup "
            "plan for retention beyond 35 days."),
        operations=(
            Operation(System.AWS, DESCRIBE_INSTANCES, "list DB instances per region"),
            Operation(System.AWS, DESCRIBE_CLUSTERS, "list DB clusters per region"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> BackupObservation:
        """List each region's instances and clusters."""
        account = account_of(target)
        session = ctx.clients.aws(account)
        return BackupObservation(tuple(
            RegionBackups(region, db_instances(ctx, session, account, region),
                          db_clusters(ctx, session, account, region))
            for region in account.regions))

    def evaluate(self, obs: BackupObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per standalone instance and cluster; cluster members go with the cluster."""
        make = self.findings(target)
        findings: list[Finding] = []
        for region in obs.regions:
            findings += _judge_region_backups(make, region, policy)
        return findings


def _judge_region_backups(make: FindingBuilder[BackupObservation], region: RegionBackups,
                          policy: Policy) -> list[Finding]:
    """The findings for one region: its listings, standalone instances and clusters."""
    findings: list[Finding] = []
    resource = region_resource(region.region)
    instances: tuple[DbInstance, ...] = ()
    clusters: tuple[DbCluster, ...] = ()
    if isinstance(region.instances, Unknown):
        findings.append(make.unverified(resource, region.instances,
                                        f"the DB instances in {region.region}"))
    else:
        instances = region.instances
    if isinstance(region.clusters, Unknown):
        findings.append(make.unverified(f"{resource}:clusters", region.clusters,
                                        f"the DB clusters in {region.region}"))
    else:
        clusters = region.clusters
    for db in (db for db in instances if not db.cluster_id):
        findings.append(_judge_retention(make, db.resource, db.backup_retention_days, policy,
                                         {"region": db.region, "engine": db.engine},
                                         replica=db.replica_source is not None))
    for cluster in clusters:
        findings.append(_judge_retention(make, cluster.resource, cluster.backup_retention_days,
                                         policy, {"region": cluster.region,
                                                  "engine": cluster.engine, "cluster": True}))
    if not findings:
        findings.append(make.passed(resource, f"No DB instances or clusters in {region.region}.",
                                    evidence={"region": region.region, "instance_count": 0,
                                              "cluster_count": 0}))
    return findings


def _judge_retention(make: FindingBuilder[BackupObservation], resource: str, days: Fact[int],
                     policy: Policy, evidence: dict[str, EvidenceValue], *,
                     replica: bool = False) -> Finding:
    """The finding for one retention period against the policy's minimum and recommendation."""
    if isinstance(days, Unknown):
        return make.unverified(resource, days, "the backup retention period")
    evidence.update(backup_retention_days=days, read_replica=replica,
                    min_days=policy.min_backup_retention_days,
                    recommended_days=policy.recommended_backup_retention_days)
    if days < policy.min_backup_retention_days:
        what = ("Automated backups are disabled" if days == 0
                else f"Automated backups are kept {days} days")
        if replica:
            # A read replica's data is protected by its source's backups, judged on its own.
            return make.warned(resource, f"{what} on this read replica, below the "
                               f"{policy.min_backup_retention_days}-day minimum; its source's "
                               "backups protect the data.", evidence=evidence)
        return make.failed(resource, f"{what}, below the policy minimum of "
                           f"{policy.min_backup_retention_days} days.", evidence=evidence)
    if days < policy.recommended_backup_retention_days:
        return make.warned(resource, f"Automated backups are kept {days} days, below the "
                           f"recommended {policy.recommended_backup_retention_days}.",
                           evidence=evidence)
    return make.passed(resource, f"Automated backups are kept {days} days.", evidence=evidence)
