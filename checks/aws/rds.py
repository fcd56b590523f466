"""
RDS storage encryption, automated-backup retention and deletion protection.

Every check here reads one `DescribeDBInstances` listing per region, fetched once per scan
through the memo. Backup retention and deletion protection also read `DescribeDBClusters`,
because the retention and protection of an Aurora or Multi-AZ cluster belong to the cluster,
not to its member instances. A region whose listing fails becomes one UNVERIFIED finding
(`rds:<region>`) and the other regions go on. Only configuration is read: no database is
connected to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import (
    KEY_OPERATION,
    REGIONS_OPERATION,
    Scan,
    key_manager,
    listing,
    scan_regions,
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
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

DESCRIBE_INSTANCES = "rds:DescribeDBInstances"
DESCRIBE_CLUSTERS = "rds:DescribeDBClusters"


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
    deletion_protection: Fact[bool] = False
    read_replicas: tuple[str, ...] = ()
    """Identifiers or ARNs of this instance's read replicas (ARNs for other regions)."""

    @property
    def resource(self) -> str:
        """The resource id findings use: the ARN, else `region/identifier`."""
        return self.arn or f"{self.region}/{self.identifier}"


@dataclass(frozen=True)
class DbCluster:
    """The encryption, backup and protection facts of one DB cluster."""

    identifier: str
    region: str
    arn: str | None
    engine: str
    backup_retention_days: Fact[int]
    storage_encrypted: Fact[bool] = False
    kms_key_id: str | None = None
    deletion_protection: Fact[bool] = False

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
        backup_retention_days=_fact(raw, "BackupRetentionPeriod", int, "DescribeDBInstances"),
        deletion_protection=_fact(raw, "DeletionProtection", bool, "DescribeDBInstances"),
        read_replicas=tuple(str(r) for r in raw.get("ReadReplicaDBInstanceIdentifiers") or ()))


def _cluster(raw: dict[str, Any], region: str) -> DbCluster:
    return DbCluster(
        identifier=str(raw.get("DBClusterIdentifier", "")), region=region,
        arn=raw.get("DBClusterArn"), engine=str(raw.get("Engine", "")),
        backup_retention_days=_fact(raw, "BackupRetentionPeriod", int, "DescribeDBClusters"),
        storage_encrypted=_fact(raw, "StorageEncrypted", bool, "DescribeDBClusters"),
        kms_key_id=raw.get("KmsKeyId"),
        deletion_protection=_fact(raw, "DeletionProtection", bool, "DescribeDBClusters"))


def db_instances(scan: Scan, region: str) -> Fact[tuple[DbInstance, ...]]:
    """
    Every DB instance in one region of the account, listed once per scan.
    """
    def compute() -> Fact[tuple[DbInstance, ...]]:
        raw = listing(scan, "rds", region, "describe_db_instances", "DBInstances",
                      DESCRIBE_INSTANCES)
        if isinstance(raw, Unknown):
            return raw
        return tuple(_instance(item, region) for item in raw)

    return scan.once(("rds.db_instances", region), compute)


def db_clusters(scan: Scan, region: str) -> Fact[tuple[DbCluster, ...]]:
    """
    Every DB cluster in one region of the account, listed once per scan.
    """
    def compute() -> Fact[tuple[DbCluster, ...]]:
        raw = listing(scan, "rds", region, "describe_db_clusters", "DBClusters",
                      DESCRIBE_CLUSTERS)
        if isinstance(raw, Unknown):
            return raw
        return tuple(_cluster(item, region) for item in raw)

    return scan.once(("rds.db_clusters", region), compute)


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
    """Every scanned region of the account; `unknown_regions` when they could not be listed."""

    regions: tuple[RegionEncryption, ...]
    unknown_regions: Unknown | None = None


REGIONS_RESOURCE = "aws:regions"
"""The resource a finding about the account's region list is filed under."""


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
            KEY_OPERATION,
            REGIONS_OPERATION,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> EncryptionObservation:
        """List each region's instances and look up the managers of their keys."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        if isinstance(regions, Unknown):
            return EncryptionObservation((), regions)
        observed = []
        for region in regions:
            instances = db_instances(scan, region)
            managers: dict[str, Fact[str]] = {}
            if not isinstance(instances, Unknown):
                keys = sorted({i.kms_key_id for i in instances
                               if i.storage_encrypted is True and i.kms_key_id})
                managers = dict(zip(keys, scan.map(
                    lambda key, where=region: key_manager(scan, where, key), keys), strict=True))
            observed.append(RegionEncryption(region, instances, managers))
        return EncryptionObservation(tuple(observed))

    def evaluate(self, obs: EncryptionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per instance; one per region that could not be listed or is empty."""
        make = self.findings(target)
        if obs.unknown_regions:
            return [make.unverified(REGIONS_RESOURCE, obs.unknown_regions,
                                    "the account's regions")]
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
    """Every scanned region of the account; `unknown_regions` when they could not be listed."""

    regions: tuple[RegionBackups, ...]
    unknown_regions: Unknown | None = None


def region_backups(scan: Scan) -> BackupObservation:
    """Each scanned region's instances and clusters."""
    regions = scan_regions(scan)
    if isinstance(regions, Unknown):
        return BackupObservation((), regions)
    return BackupObservation(tuple(
        RegionBackups(region, db_instances(scan, region), db_clusters(scan, region))
        for region in regions))


class _RegionBackupsCheck(Check[BackupObservation]):
    """
    Base of the checks judged over each region's instances and clusters: one shared listing,
    the same fail-closed handling of unknown regions, one verdict per store.
    """

    def collect(self, ctx: CheckContext, target: Target) -> BackupObservation:
        """List each region's instances and clusters (shared by the checks of this base)."""
        return region_backups(Scan.of(ctx, target))

    def evaluate(self, obs: BackupObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per standalone instance and cluster; cluster members go with the cluster."""
        make = self.findings(target)
        if obs.unknown_regions:
            return [make.unverified(REGIONS_RESOURCE, obs.unknown_regions,
                                    "the account's regions")]
        findings: list[Finding] = []
        for region in obs.regions:
            findings += self.judge_region(make, region, policy)
        return findings

    def judge_region(self, make: FindingBuilder[BackupObservation], region: RegionBackups,
                     policy: Policy) -> list[Finding]:
        """The findings for one region; each subclass judges its own setting."""
        raise NotImplementedError


class BackupRetention(_RegionBackupsCheck):
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
            REGIONS_OPERATION,
        ),
    )

    def judge_region(self, make: FindingBuilder[BackupObservation], region: RegionBackups,
                     policy: Policy) -> list[Finding]:
        """Retention of each store against the policy minimum and recommendation."""
        return _judge_region_backups(make, region, policy)


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


class DeletionProtection(_RegionBackupsCheck):
    """
    Every standalone RDS DB instance and every DB cluster has deletion protection on.
    """

    meta = CheckMeta(
        id="aws.rds.deletion_protection",
        title="RDS DB instances and clusters are protected from deletion",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads DeletionProtection of every standalone DB instance and every DB cluster in "
            "each scanned region. Without it one API call deletes the database, and by default "
            "its automated backups with it. A read replica without it warns: its source holds "
            "the data."),
        remediation=(
            "Turn deletion protection on (ModifyDBInstance or ModifyDBCluster "
            "--deletion-protection), and keep automated backups on deletion "
            "(--delete-automated-backups false) for instances that may be retired."),
        operations=(
            Operation(System.AWS, DESCRIBE_INSTANCES, "list DB instances per region"),
            Operation(System.AWS, DESCRIBE_CLUSTERS, "list DB clusters per region"),
            REGIONS_OPERATION,
        ),
    )

    def judge_region(self, make: FindingBuilder[BackupObservation], region: RegionBackups,
                     policy: Policy) -> list[Finding]:
        """Deletion protection of each store."""
        return _judge_region_protection(make, region)


def _judge_region_protection(make: FindingBuilder[BackupObservation],
                             region: RegionBackups) -> list[Finding]:
    """The findings for one region's listings, standalone instances and clusters."""
    findings: list[Finding] = []
    resource = region_resource(region.region)
    targets: list[tuple[str, Fact[bool], dict[str, EvidenceValue], bool]] = []
    if isinstance(region.instances, Unknown):
        findings.append(make.unverified(resource, region.instances,
                                        f"the DB instances in {region.region}"))
    else:
        targets += [(db.resource, db.deletion_protection,
                     {"region": db.region, "engine": db.engine}, db.replica_source is not None)
                    for db in region.instances if not db.cluster_id]
    if isinstance(region.clusters, Unknown):
        findings.append(make.unverified(f"{resource}:clusters", region.clusters,
                                        f"the DB clusters in {region.region}"))
    else:
        targets += [(c.resource, c.deletion_protection,
                     {"region": c.region, "engine": c.engine, "cluster": True}, False)
                    for c in region.clusters]
    for name, protected, evidence, replica in targets:
        findings.append(_judge_protection(make, name, protected, evidence, replica))
    if not findings:
        findings.append(make.passed(resource, f"No DB instances or clusters in {region.region}.",
                                    evidence={"region": region.region, "instance_count": 0,
                                              "cluster_count": 0}))
    return findings


def _judge_protection(make: FindingBuilder[BackupObservation], resource: str,
                      protected: Fact[bool], evidence: dict[str, EvidenceValue],
                      replica: bool) -> Finding:
    """The finding for one instance's or cluster's deletion protection."""
    if isinstance(protected, Unknown):
        return make.unverified(resource, protected, "deletion protection")
    evidence.update(deletion_protection=protected, read_replica=replica)
    if protected:
        return make.passed(resource, "Deletion protection is on.", evidence=evidence)
    if replica:
        return make.warned(resource, "Deletion protection is off on this read replica; its "
                           "source holds the data.", evidence=evidence)
    return make.failed(resource, "Deletion protection is off: one API call deletes the "
                       "database and, by default, its automated backups.", evidence=evidence)
