"""
Encryption at rest of every other AWS data store, as one table of near-identical controls.

Each row of `ROWS` names a kind of store (`stores.StoreKind`): DB clusters, DB snapshots,
DynamoDB tables, EBS volumes and snapshots, EFS, ElastiCache, Redshift, OpenSearch, CloudWatch
log groups, EKS Secrets and AWS Backup vaults. One check class per row judges every store of
that kind in each scanned region the same way:

- encryption could not be read: UNVERIFIED, naming the action;
- not encrypted: FAIL;
- encrypted with a customer-managed KMS key: PASS;
- encrypted with an AWS-managed or service-owned key: PASS with a note, or WARN when the
  policy requires customer-managed keys; a key whose manager could not be read is UNVERIFIED
  only then, since otherwise it cannot change the verdict.

A region whose listing fails is one UNVERIFIED finding filed under the listing (for example
`dynamodb:eu-west-1`); an empty region passes because its listing succeeded. Per-region EBS
encryption by default is judged by `EbsEncryptionByDefault`, below the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws import stores
from hipaacheck.checks.aws.collector import (
    KEY_OPERATION,
    REGIONS_OPERATION,
    Scan,
    key_manager,
    read_once,
    scan_regions,
)
from hipaacheck.checks.aws.rds import REGIONS_RESOURCE
from hipaacheck.checks.aws.stores import RegionStores, Store, StoreKind, fetch_all
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

KeyRef = tuple[str, str]
"""A KMS key as a store names it, with the region the name is relative to."""


@dataclass(frozen=True)
class Row:
    """One encryption control of the table: a kind of store and the words around it."""

    id: str
    title: str
    kind: StoreKind
    reads: str
    """What is read, for the description: "StorageEncrypted", "SSEDescription", ..."""
    remediation: str
    severity: Severity = Severity.HIGH
    note: str = ""
    """A sentence the description adds for this kind."""

    @property
    def meta(self) -> CheckMeta:
        """The check metadata the row stands for."""
        description = (
            f"Reads {self.reads} of every {self.kind.noun} in each scanned region. "
            "Unencrypted fails; a customer-managed KMS key passes; an AWS-managed or "
            "service-owned key passes with a note, or warns when the policy requires "
            f"customer-managed keys. {self.note}").strip()
        return CheckMeta(
            id=self.id, title=self.title, family=Family.ENCRYPTION,
            standard=Standard.ENCRYPTION, citations=("164.312(a)(2)(iv)",),
            severity=self.severity, target_kind=TargetKind.AWS, description=description,
            remediation=self.remediation,
            operations=self.kind.operations + (KEY_OPERATION, REGIONS_OPERATION))


@dataclass(frozen=True)
class KindObservation:
    """Every scanned region's stores of one kind, and the managers of the keys they name."""

    regions: Fact[tuple[RegionStores, ...]]
    key_managers: Mapping[KeyRef, Fact[str]] = field(default_factory=dict)


def named_keys(regions: Sequence[RegionStores]) -> list[KeyRef]:
    """The distinct KMS keys that encrypted stores name, with their regions, sorted."""
    return sorted({(r.region, s.key_id) for r in regions if not isinstance(r.stores, Unknown)
                   for s in r.stores if s.encrypted is True and s.key_id})


class StoreEncryptionCheck(Check[KindObservation]):
    """
    The encryption-at-rest control of one row of the table; subclasses set `row` and `meta`.
    """

    row: ClassVar[Row]

    def collect(self, ctx: CheckContext, target: Target) -> KindObservation:
        """List the kind's stores in every region, then who manages each key they name."""
        scan = Scan.of(ctx, target)
        regions = fetch_all(scan, self.row.kind)
        if isinstance(regions, Unknown):
            return KindObservation(regions)
        keys = named_keys(regions)
        managers = scan.map(lambda ref: key_manager(scan, ref[0], ref[1]), keys)
        return KindObservation(regions, dict(zip(keys, managers, strict=True)))

    def evaluate(self, obs: KindObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per store; one per region whose listing failed or was empty."""
        make = self.findings(target)
        kind = self.row.kind
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        findings: list[Finding] = []
        for region in obs.regions:
            resource = kind.listing_resource(region.region)
            if isinstance(region.stores, Unknown):
                findings.append(make.unverified(resource, region.stores,
                                                f"the {kind.plural} in {region.region}"))
            elif not region.stores:
                findings.append(make.passed(resource, f"No {kind.plural} in {region.region}.",
                                            evidence={"region": region.region, "count": 0}))
            else:
                findings += [judge_store(make, kind, s, obs.key_managers, policy)
                             for s in region.stores]
        return findings


def judge_store(make: FindingBuilder[KindObservation], kind: StoreKind, store: Store,
                managers: Mapping[KeyRef, Fact[str]], policy: Policy) -> Finding:
    """The finding for one store's encryption at rest."""
    if isinstance(store.encrypted, Unknown):
        return make.unverified(store.resource, store.encrypted, "encryption at rest")
    evidence: dict[str, EvidenceValue] = {"region": store.region, **dict(store.details),
                                          "encrypted": store.encrypted}
    if not store.encrypted:
        return make.failed(store.resource, f"The {kind.noun} is not encrypted at rest.",
                           evidence=evidence)
    if store.detail("key_inaccessible"):
        return make.failed(store.resource, f"The {kind.noun}'s KMS key is inaccessible: its "
                           "data cannot be read or written.", evidence=evidence)
    manager: Fact[str] = "AWS"
    if store.key_id:
        manager = managers.get((store.region, store.key_id)) or Unknown(
            UnknownReason.NOT_VISIBLE, "the key's manager was not looked up")
    return judge_key_manager(make, store.resource, f"The {kind.noun} is", manager, evidence,
                             policy)


def judge_key_manager(make: FindingBuilder[Any], resource: str, subject: str,
                      manager: Fact[str], evidence: dict[str, EvidenceValue],
                      policy: Policy) -> Finding:
    """
    PASS for a customer-managed key; a note, WARN or UNVERIFIED for the rest. `subject`
    starts the reason ("The DynamoDB table is").
    """
    evidence["key_manager"] = manager if isinstance(manager, str) else "unknown"
    if manager == "CUSTOMER":
        return make.passed(resource, f"{subject} encrypted with a customer-managed KMS key.",
                           evidence=evidence)
    if isinstance(manager, Unknown):
        if policy.require_customer_managed_keys:
            return make.unverified(resource, manager, "who manages the KMS key")
        return make.passed(resource, f"{subject} encrypted; who manages the KMS key could not "
                           "be read.", evidence=evidence)
    if policy.require_customer_managed_keys:
        return make.warned(resource, f"{subject} encrypted with an AWS-managed or "
                           "service-owned key, but the policy requires customer-managed KMS "
                           "keys.", evidence=evidence)
    return make.passed(resource, f"{subject} encrypted with an AWS-managed or service-owned "
                       "key; a customer-managed key would add key-policy control and key-use "
                       "audit.", evidence=evidence)


_REENCRYPT = ("copy the data into a new, encrypted resource with a customer-managed KMS key "
              "and cut over")

ROWS: dict[str, Row] = {row.id: row for row in (
    Row("aws.rds.cluster_storage_encrypted",
        "RDS and Aurora DB clusters encrypt storage at rest", stores.RDS_CLUSTERS,
        "StorageEncrypted",
        "Cluster encryption cannot be switched on in place: snapshot the cluster, restore the "
        "snapshot into a new cluster encrypted with a customer-managed KMS key, and cut over."),
    Row("aws.rds.snapshot_encrypted", "RDS manual and automated snapshots are encrypted",
        stores.RDS_SNAPSHOTS, "the Encrypted flag",
        "Copy each unencrypted snapshot with a customer-managed KMS key (CopyDBSnapshot or "
        "CopyDBClusterSnapshot --kms-key-id), delete the original once the copy is verified, "
        "and encrypt the source database so its new snapshots are encrypted.",
        note="Instance and cluster snapshots, manual and automated, are judged alike."),
    Row("aws.dynamodb.table_encrypted", "DynamoDB tables encrypt at rest with a known key",
        stores.DYNAMODB_TABLES, "SSEDescription",
        "Switch the table to a customer-managed KMS key (UpdateTable --sse-specification); "
        "if the table reports its key inaccessible, restore the key's state and policy.",
        note="DynamoDB always encrypts; a table whose KMS key is inaccessible fails."),
    Row("aws.ec2.ebs_volume_encrypted", "EBS volumes are encrypted", stores.EBS_VOLUMES,
        "Encrypted",
        "Snapshot the volume, copy the snapshot with encryption and a customer-managed KMS "
        "key, create a volume from the copy and swap it in; turn on EBS encryption by "
        "default so new volumes are encrypted."),
    Row("aws.ec2.ebs_snapshot_encrypted", "EBS snapshots are encrypted", stores.EBS_SNAPSHOTS,
        "Encrypted",
        "Copy the snapshot with --encrypted and a customer-managed KMS key (CopySnapshot), "
        "then delete the unencrypted original."),
    Row("aws.efs.file_system_encrypted", "EFS file systems are encrypted at rest",
        stores.EFS_FILE_SYSTEMS, "Encrypted",
        "Encryption at rest is chosen when a file system is created: create an encrypted file "
        f"system and {_REENCRYPT} (AWS DataSync copies the files)."),
    Row("aws.elasticache.at_rest_encryption", "ElastiCache caches encrypt at rest",
        stores.ELASTICACHE, "AtRestEncryptionEnabled",
        "Create a replication group with at-rest encryption and a customer-managed key from a "
        "backup of the unencrypted one and move clients to it. Memcached node-based clusters "
        "cannot encrypt at rest: keep PHI out of them or move to Valkey or Redis OSS.",
        note="Replication groups and standalone cache clusters are judged."),
    Row("aws.redshift.cluster_encrypted", "Redshift clusters are encrypted",
        stores.REDSHIFT_CLUSTERS, "Encrypted",
        "Turn on KMS encryption (ModifyCluster --encrypted --kms-key-id with a customer-managed "
        "key); Redshift migrates the data in place."),
    Row("aws.opensearch.domain_encrypted", "OpenSearch domains encrypt data at rest",
        stores.OPENSEARCH_DOMAINS, "EncryptionAtRestOptions",
        "Enable encryption at rest (UpdateDomainConfig --encryption-at-rest-options) on a "
        "domain that supports it, or create an encrypted domain and restore a snapshot into "
        "it."),
    Row("aws.logs.log_group_encrypted", "CloudWatch log groups use a customer-managed key",
        stores.LOG_GROUPS, "kmsKeyId",
        "Associate a customer-managed KMS key with the log group (AssociateKmsKey) whose key "
        "policy lets CloudWatch Logs use it.", Severity.MEDIUM,
        note="CloudWatch Logs always encrypts; without kmsKeyId the key is the service's own."),
    Row("aws.eks.secrets_encrypted", "EKS clusters encrypt Kubernetes Secrets with KMS",
        stores.EKS_CLUSTERS, "encryptionConfig",
        "Enable envelope encryption of Secrets with a customer-managed KMS key "
        "(AssociateEncryptionConfig), or upgrade to Kubernetes 1.28 or later, where EKS "
        "envelope-encrypts API data with an AWS-owned key by default.",
        note="A cluster before Kubernetes 1.28 without a Secrets encryptionConfig fails."),
    Row("aws.backup.vault_encrypted", "AWS Backup vaults use a customer-managed key",
        stores.BACKUP_VAULTS, "EncryptionKeyArn",
        "A vault's key is fixed when it is created: create a vault with a customer-managed "
        "KMS key, point the backup plans at it and let the old vault's recovery points age "
        "out.", Severity.MEDIUM, note="Backup vaults always encrypt."),
)}


class RdsClusterEncrypted(StoreEncryptionCheck):
    """RDS and Aurora DB clusters encrypt their storage."""

    row = ROWS["aws.rds.cluster_storage_encrypted"]
    meta = row.meta


class RdsSnapshotEncrypted(StoreEncryptionCheck):
    """RDS instance and cluster snapshots, manual and automated, are encrypted."""

    row = ROWS["aws.rds.snapshot_encrypted"]
    meta = row.meta


class DynamoDbTableEncrypted(StoreEncryptionCheck):
    """DynamoDB tables encrypt with a usable key, customer-managed at best."""

    row = ROWS["aws.dynamodb.table_encrypted"]
    meta = row.meta


class EbsVolumeEncrypted(StoreEncryptionCheck):
    """EBS volumes are encrypted."""

    row = ROWS["aws.ec2.ebs_volume_encrypted"]
    meta = row.meta


class EbsSnapshotEncrypted(StoreEncryptionCheck):
    """The account's EBS snapshots are encrypted."""

    row = ROWS["aws.ec2.ebs_snapshot_encrypted"]
    meta = row.meta


class EfsEncrypted(StoreEncryptionCheck):
    """EFS file systems are encrypted at rest."""

    row = ROWS["aws.efs.file_system_encrypted"]
    meta = row.meta


class ElastiCacheEncrypted(StoreEncryptionCheck):
    """ElastiCache replication groups and standalone clusters encrypt at rest."""

    row = ROWS["aws.elasticache.at_rest_encryption"]
    meta = row.meta


class RedshiftEncrypted(StoreEncryptionCheck):
    """Redshift clusters are encrypted."""

    row = ROWS["aws.redshift.cluster_encrypted"]
    meta = row.meta


class OpenSearchEncrypted(StoreEncryptionCheck):
    """OpenSearch domains encrypt data at rest."""

    row = ROWS["aws.opensearch.domain_encrypted"]
    meta = row.meta


class LogGroupEncrypted(StoreEncryptionCheck):
    """CloudWatch log groups are encrypted with a customer-managed key."""

    row = ROWS["aws.logs.log_group_encrypted"]
    meta = row.meta


class EksSecretsEncrypted(StoreEncryptionCheck):
    """EKS clusters envelope-encrypt Kubernetes Secrets."""

    row = ROWS["aws.eks.secrets_encrypted"]
    meta = row.meta


class BackupVaultEncrypted(StoreEncryptionCheck):
    """AWS Backup vaults encrypt recovery points with a customer-managed key."""

    row = ROWS["aws.backup.vault_encrypted"]
    meta = row.meta


TABLE_CHECKS: tuple[type[StoreEncryptionCheck], ...] = (
    RdsClusterEncrypted, RdsSnapshotEncrypted, DynamoDbTableEncrypted, EbsVolumeEncrypted,
    EbsSnapshotEncrypted, EfsEncrypted, ElastiCacheEncrypted, RedshiftEncrypted,
    OpenSearchEncrypted, LogGroupEncrypted, EksSecretsEncrypted, BackupVaultEncrypted)
"""Every check of the table, one per row."""


# EBS encryption by default, per region

GET_EBS_DEFAULT = "ec2:GetEbsEncryptionByDefault"
GET_EBS_DEFAULT_KEY = "ec2:GetEbsDefaultKmsKeyId"


@dataclass(frozen=True)
class RegionDefault:
    """One region's EBS encryption-by-default setting and the manager of its default key."""

    region: str
    enabled: Fact[bool]
    key_manager: Fact[str] | None = None
    """None when encryption by default is off (the key then does not matter)."""


@dataclass(frozen=True)
class DefaultsObservation:
    """Every scanned region, or why the regions are unknown."""

    regions: Fact[tuple[RegionDefault, ...]]


def ebs_default_resource(region: str) -> str:
    """The resource a region's encryption-by-default finding is filed under."""
    return f"ec2:{region}:ebs-encryption-by-default"


class EbsEncryptionByDefault(Check[DefaultsObservation]):
    """
    Every scanned region encrypts new EBS volumes and snapshot copies by default.
    """

    meta = CheckMeta(
        id="aws.ec2.ebs_encryption_by_default",
        title="EBS encryption by default is on in every region",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)",),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "Reads the per-region EBS encryption-by-default setting and its default KMS key. "
            "Off fails: any volume created without an explicit flag is unencrypted. On with a "
            "customer-managed default key passes; with aws/ebs it passes with a note, or warns "
            "when the policy requires customer-managed keys."),
        remediation=(
            "Turn it on in every region (EnableEbsEncryptionByDefault) and set a "
            "customer-managed default key (ModifyEbsDefaultKmsKeyId)."),
        operations=(
            Operation(System.AWS, GET_EBS_DEFAULT, "read the region's setting"),
            Operation(System.AWS, GET_EBS_DEFAULT_KEY, "read the region's default EBS key"),
            KEY_OPERATION,
            REGIONS_OPERATION,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> DefaultsObservation:
        """Read each region's setting, and the default key's manager where it is on."""
        scan = Scan.of(ctx, target)
        regions = scan_regions(scan)
        if isinstance(regions, Unknown):
            return DefaultsObservation(regions)
        return DefaultsObservation(tuple(scan.map(lambda r: _region_default(scan, r), regions)))

    def evaluate(self, obs: DefaultsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per region."""
        make = self.findings(target)
        if isinstance(obs.regions, Unknown):
            return [make.unverified(REGIONS_RESOURCE, obs.regions, "the account's regions")]
        return [_judge_default(make, r, policy) for r in obs.regions]


def _region_default(scan: Scan, region: str) -> RegionDefault:
    response = read_once(scan, "ec2", region, "get_ebs_encryption_by_default", GET_EBS_DEFAULT)
    if isinstance(response, Unknown):
        return RegionDefault(region, response)
    enabled = stores.flag(response, "EbsEncryptionByDefault", "GetEbsEncryptionByDefault")
    if enabled is not True:
        return RegionDefault(region, enabled)
    key = read_once(scan, "ec2", region, "get_ebs_default_kms_key_id", GET_EBS_DEFAULT_KEY)
    if isinstance(key, Unknown):
        return RegionDefault(region, True, key)
    return RegionDefault(region, True, key_manager(scan, region, key.get("KmsKeyId")))


def _judge_default(make: FindingBuilder[DefaultsObservation], region: RegionDefault,
                   policy: Policy) -> Finding:
    resource = ebs_default_resource(region.region)
    if isinstance(region.enabled, Unknown):
        return make.unverified(resource, region.enabled, "EBS encryption by default")
    evidence: dict[str, EvidenceValue] = {"region": region.region,
                                          "encryption_by_default": region.enabled}
    if not region.enabled:
        return make.failed(resource, f"EBS encryption by default is off in {region.region}.",
                           evidence=evidence)
    manager = region.key_manager or Unknown(UnknownReason.NOT_VISIBLE,
                                            "the default key was not read")
    return judge_key_manager(make, resource, f"New EBS volumes in {region.region} are",
                             manager, evidence, policy)
