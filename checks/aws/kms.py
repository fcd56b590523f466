"""
The KMS keys that PHI stores depend on: their state and their rotation.

The keys are found from the stores themselves: S3 default encryption, RDS instances, and every
kind of store of the encryption table (`stores.ALL_KINDS`), each listed once per scan and
shared with the encryption checks. Only stores in the account's PHI scope count (every store
by default). Each key is described once (`DescribeKey`); rotation is read
(`GetKeyRotationStatus`) only for customer-managed keys KMS can rotate.

A disabled key or one pending deletion fails: the data it protects becomes unreadable. A
listing or a store whose key could not be read is an UNVERIFIED finding of its own, since an
unseen store may depend on a failing key; it is filed under the listing (`dynamodb:eu-west-1`,
`s3:buckets`) and counts how many stores it hides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import (
    KEY_OPERATION,
    REGIONS_OPERATION,
    Scan,
    key_info,
    read_once,
    scan_regions,
)
from hipaacheck.checks.aws.rds import DESCRIBE_INSTANCES, REGIONS_RESOURCE, db_instances
from hipaacheck.checks.aws.s3 import (
    GET_ENCRYPTION,
    GET_LOCATION,
    LIST_BUCKETS,
    LISTING_RESOURCE,
    BucketRef,
    DefaultSse,
    bucket_encryption,
    bucket_listing,
    locate_bucket,
)
from hipaacheck.checks.aws.stores import ALL_KINDS
from hipaacheck.clients.aws import KeyInfo, is_aws_managed_alias, key_region
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

GET_ROTATION = "kms:GetKeyRotationStatus"
UNUSABLE_STATES = frozenset({"Disabled", "PendingDeletion", "PendingReplicaDeletion",
                             "Unavailable", "PendingImport"})
"""Key states in which KMS refuses to decrypt: the data the key protects cannot be read."""
_SHOWN_USERS = 10


@dataclass(frozen=True)
class Rotation:
    """A key's automatic rotation setting."""

    enabled: bool
    period_days: int | None = None


@dataclass(frozen=True)
class KeyUse:
    """
    One KMS key and the PHI stores that name it.

    `rotation` is None when it was not read: the key is AWS-managed, cannot rotate
    automatically, or is in a state in which KMS does not report it.
    """

    ref: str
    region: str
    info: Fact[KeyInfo]
    used_by: tuple[str, ...]
    kinds: tuple[str, ...]
    rotation: Fact[Rotation] | None = None

    @property
    def resource(self) -> str:
        """The resource id findings use: the key's ARN when known, else the name stores use."""
        return self.info.arn if isinstance(self.info, KeyInfo) else self.ref


@dataclass(frozen=True)
class Gap:
    """Stores whose KMS keys could not be learnt: a failed listing or unreadable stores."""

    resource: str
    unknown: Unknown
    what: str
    count: int = 1


@dataclass(frozen=True)
class KeysObservation:
    """The keys PHI stores name, and the stores whose keys could not be learnt."""

    keys: tuple[KeyUse, ...]
    gaps: tuple[Gap, ...] = ()


class _Uses:
    """Accumulates key references and gaps while the stores are walked."""

    def __init__(self) -> None:
        self.refs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self.gaps: dict[str, Gap] = {}

    def add(self, region: str, key_id: str | None, resource: str, kind: str) -> None:
        """Note that `resource` (of `kind`) names `key_id`; AWS-managed aliases are skipped."""
        if key_id and not is_aws_managed_alias(key_id):
            self.refs[(key_region(key_id, region), key_id)].append((resource, kind))

    def gap(self, resource: str, unknown: Unknown, what: str) -> None:
        """Count one more store under `resource` whose key could not be learnt."""
        seen = self.gaps.get(resource)
        self.gaps[resource] = Gap(resource, unknown, what, seen.count + 1 if seen else 1)


def _walk_stores(scan: Scan, regions: Sequence[str], uses: _Uses) -> None:
    """Every PHI store of the table's kinds and every RDS instance, by the key it names."""
    scope = scan.scope
    for kind in ALL_KINDS:
        for region in regions:
            found = kind.fetch(scan, region)
            resource = kind.listing_resource(region)
            if isinstance(found, Unknown):
                uses.gap(resource, found, f"the {kind.plural} in {region}")
                continue
            for store in found:
                if isinstance(store.encrypted, Unknown):
                    uses.gap(resource, store.encrypted, f"some {kind.plural} in {region}")
                elif store.encrypted and scope.holds_phi(store.name, store.arn):
                    uses.add(region, store.key_id, store.resource, kind.kind)
    for region in regions:
        instances = db_instances(scan, region)
        if isinstance(instances, Unknown):
            uses.gap(f"rds:{region}", instances, f"the DB instances in {region}")
            continue
        for db in instances:
            if db.storage_encrypted is True and scope.holds_phi(db.identifier, db.arn):
                uses.add(region, db.kms_key_id, db.resource, "rds_instance")


def _walk_buckets(scan: Scan, uses: _Uses) -> None:
    """Every PHI bucket whose default encryption names a KMS key."""
    buckets = bucket_listing(scan)
    if isinstance(buckets, Unknown):
        uses.gap(LISTING_RESOURCE, buckets, "the account's S3 buckets")
        return
    scope = scan.scope

    def observe(bucket: BucketRef) -> tuple[str, str, Fact[DefaultSse | None]]:
        region = locate_bucket(scan, bucket)
        if isinstance(region, Unknown):
            return bucket.name, "", region
        return bucket.name, region, bucket_encryption(scan, bucket.name, region)

    phi = [b for b in buckets if scope.holds_phi(b.name, f"arn:aws:s3:::{b.name}")]
    for name, region, sse in scan.map(observe, phi):
        if isinstance(sse, Unknown):
            uses.gap(LISTING_RESOURCE, sse, "the default encryption of some S3 buckets")
        elif sse is not None and sse.kms_key_id:
            uses.add(region, sse.kms_key_id, name, "s3_bucket")


def _rotation(scan: Scan, info: KeyInfo, region: str) -> Fact[Rotation] | None:
    """The key's rotation, read only where KMS rotates it and reports it."""
    if info.manager != "CUSTOMER" or not info.rotatable or info.state not in (
            "Enabled", "Disabled"):
        return None
    response = read_once(scan, "kms", region, "get_key_rotation_status", GET_ROTATION,
                         KeyId=info.arn)
    if isinstance(response, Unknown):
        return response
    enabled = response.get("KeyRotationEnabled")
    if not isinstance(enabled, bool):
        return Unknown(UnknownReason.UNPARSEABLE, "GetKeyRotationStatus did not report it")
    period = response.get("RotationPeriodInDays")
    return Rotation(enabled, period if isinstance(period, int) else None)


def phi_key_uses(scan: Scan, *, rotation: bool = False) -> KeysObservation:
    """
    Every KMS key a PHI store names, described once; with its rotation, where it applies,
    when `rotation` is asked for.
    """
    uses = _Uses()
    regions = scan_regions(scan)
    if isinstance(regions, Unknown):
        return KeysObservation((), (Gap(REGIONS_RESOURCE, regions, "the account's regions"),))
    _walk_stores(scan, regions, uses)
    _walk_buckets(scan, uses)
    refs = sorted(uses.refs)
    infos = scan.map(lambda ref: key_info(scan, ref[0], ref[1]), refs)
    merged: dict[str, KeyUse] = {}
    for (region, key_id), info in zip(refs, infos, strict=True):
        users = uses.refs[(region, key_id)]
        name = info.arn if isinstance(info, KeyInfo) else key_id
        if name in merged:
            previous = merged[name]
            users = [*zip(previous.used_by, previous.kinds, strict=True), *users]
        merged[name] = KeyUse(key_id, region, info, tuple(u[0] for u in users),
                              tuple(u[1] for u in users))
    keys = list(merged.values())
    if rotation:
        keys = scan.map(lambda use: _with_rotation(scan, use), keys)
    return KeysObservation(tuple(keys), tuple(uses.gaps.values()))


def _with_rotation(scan: Scan, use: KeyUse) -> KeyUse:
    if not isinstance(use.info, KeyInfo):
        return use
    return KeyUse(use.ref, use.region, use.info, use.used_by, use.kinds,
                  _rotation(scan, use.info, use.region))


_OPERATIONS = (
    Operation(System.AWS, LIST_BUCKETS, "list the account's buckets"),
    Operation(System.AWS, GET_LOCATION, "find the region of a bucket the listings do not place"),
    Operation(System.AWS, GET_ENCRYPTION, "find the key each bucket encrypts with"),
    Operation(System.AWS, DESCRIBE_INSTANCES, "find the key each DB instance encrypts with"),
    *sorted({op for kind in ALL_KINDS for op in kind.operations}, key=lambda o: o.action),
    KEY_OPERATION,
    REGIONS_OPERATION,
)


def _evidence(use: KeyUse) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {
        "region": use.region, "used_by_count": len(use.used_by),
        "used_by": use.used_by[:_SHOWN_USERS], "store_kinds": tuple(sorted(set(use.kinds)))}
    if isinstance(use.info, KeyInfo):
        evidence.update(key_manager=use.info.manager, key_state=use.info.state,
                        key_origin=use.info.origin, key_spec=use.info.spec)
    return evidence


def _gap_findings(make: FindingBuilder[KeysObservation],
                  gaps: Sequence[Gap]) -> list[Finding]:
    return [make.make(Status.UNVERIFIED, gap.resource,
                      f"Could not observe the KMS keys of {gap.what}: {gap.unknown.detail}",
                      evidence={"stores_unseen": gap.count}, needs=gap.unknown.needs,
                      unknown_reason=gap.unknown.reason)
            for gap in gaps]


class _KeyCheck(Check[KeysObservation]):
    """The shared collect step of the two key checks."""

    reads_rotation = False

    def collect(self, ctx: CheckContext, target: Target) -> KeysObservation:
        """Find every key the PHI stores name (shared with the other key check)."""
        return phi_key_uses(Scan.of(ctx, target), rotation=self.reads_rotation)


class KmsKeyState(_KeyCheck):
    """
    Every KMS key a PHI store depends on is enabled.
    """

    meta = CheckMeta(
        id="aws.kms.key_state",
        title="KMS keys protecting PHI are enabled",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)", "164.308(a)(7)(ii)(A)"),
        severity=Severity.CRITICAL,
        target_kind=TargetKind.AWS,
        description=(
            "Finds the KMS keys that PHI stores (S3, RDS, DynamoDB, EBS, EFS, ElastiCache, "
            "Redshift, OpenSearch, CloudWatch Logs, EKS, AWS Backup) encrypt with and reads "
            "each key's state. A disabled key, one pending deletion or import, or one in an "
            "unavailable custom key store fails: the data it protects cannot be read."),
        remediation=(
            "Re-enable the key (EnableKey) or cancel its deletion (CancelKeyDeletion) at once; "
            "before retiring a key, re-encrypt every store that uses it under a new key."),
        operations=_OPERATIONS,
    )

    def evaluate(self, obs: KeysObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per key, and one per listing whose stores' keys are unknown."""
        make = self.findings(target)
        findings = _gap_findings(make, obs.gaps)
        for use in obs.keys:
            findings.append(_judge_state(make, use))
        if not findings:
            findings.append(make.passed("kms:keys", "No PHI store names a KMS key of its own.",
                                        evidence={"key_count": 0}))
        return findings


def _judge_state(make: FindingBuilder[KeysObservation], use: KeyUse) -> Finding:
    if isinstance(use.info, Unknown):
        return make.make(Status.UNVERIFIED, use.resource,
                         f"Could not observe the key's state: {use.info.detail}",
                         evidence=_evidence(use), needs=use.info.needs,
                         unknown_reason=use.info.reason)
    evidence = _evidence(use)
    state = use.info.state
    if use.info.deletion_date:
        evidence["deletion_date"] = use.info.deletion_date
    if state in UNUSABLE_STATES:
        return make.failed(use.resource, f"The key is {state}: the {len(use.used_by)} PHI "
                           "store(s) it protects cannot be decrypted.", evidence=evidence)
    if state != "Enabled":
        return make.warned(use.resource, f"The key is {state}, not yet usable.",
                           evidence=evidence)
    return make.passed(use.resource, "The key is enabled.", evidence=evidence)


class KmsKeyRotation(_KeyCheck):
    """
    Every customer-managed KMS key a PHI store depends on rotates automatically.
    """

    reads_rotation = True

    meta = CheckMeta(
        id="aws.kms.key_rotation",
        title="KMS keys protecting PHI rotate automatically",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)",),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.AWS,
        description=(
            "For each KMS key a PHI store encrypts with, reads whether automatic rotation is "
            "on. AWS-managed keys rotate every year and pass; customer-managed symmetric keys "
            "without rotation fail; keys KMS cannot rotate (asymmetric, HMAC, imported or "
            "external key material) warn, as they need rotating by hand."),
        remediation=(
            "Enable automatic rotation (EnableKeyRotation, optionally with "
            "--rotation-period-in-days); for imported or asymmetric keys, rotate manually by "
            "creating a new key and moving the alias."),
        operations=(*_OPERATIONS,
                    Operation(System.AWS, GET_ROTATION, "read each customer key's rotation")),
    )

    def evaluate(self, obs: KeysObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per key, and one per listing whose stores' keys are unknown."""
        make = self.findings(target)
        findings = _gap_findings(make, obs.gaps)
        for use in obs.keys:
            findings.append(_judge_rotation(make, use))
        if not findings:
            findings.append(make.passed("kms:keys", "No PHI store names a KMS key of its own.",
                                        evidence={"key_count": 0}))
        return findings


def _judge_rotation(make: FindingBuilder[KeysObservation], use: KeyUse) -> Finding:
    info = use.info
    if isinstance(info, Unknown):
        return make.make(Status.UNVERIFIED, use.resource,
                         f"Could not observe the key's rotation: {info.detail}",
                         evidence=_evidence(use), needs=info.needs, unknown_reason=info.reason)
    evidence = _evidence(use)
    if info.manager == "AWS":
        return make.passed(use.resource, "AWS rotates AWS-managed keys every year.",
                           evidence=evidence)
    if not info.rotatable:
        return make.warned(use.resource, "KMS cannot rotate this key automatically "
                           f"({info.spec}, {info.origin} key material); rotate it by hand.",
                           evidence=evidence)
    rotation = use.rotation or Unknown(
        UnknownReason.NOT_VISIBLE, f"KMS does not report rotation for a {info.state} key")
    if isinstance(rotation, Unknown):
        return make.make(Status.UNVERIFIED, use.resource,
                         f"Could not observe the key's rotation: {rotation.detail}",
                         evidence=evidence, needs=rotation.needs,
                         unknown_reason=rotation.reason)
    evidence.update(rotation_enabled=rotation.enabled,
                    rotation_period_days=rotation.period_days)
    if not rotation.enabled:
        return make.failed(use.resource, "Automatic rotation is off for this customer-managed "
                           "key.", evidence=evidence)
    return make.passed(use.resource, "Automatic rotation is on.", evidence=evidence)
