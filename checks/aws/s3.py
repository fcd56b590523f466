"""
S3 default encryption: every bucket encrypts new objects at rest by default.

The bucket listing is account-wide and fetched once per scan (`list_buckets`), so the other S3
checks share it. Every bucket of the account is judged, whatever its region (buckets outside
the inventory's regions hold data too), and its configuration is read in its own region. A
bucket's region comes from the listing: real S3 reports it per bucket; where an endpoint does
not, one listing filtered by region per scanned region places the buckets, and only the rest
cost a `GetBucketLocation` each.

Per bucket this check makes one call (`GetBucketEncryption`), and needs the bucket policy
only for SSE-S3 buckets when the policy does not already require customer-managed keys: a
bucket policy that refuses uploads without SSE-KMS turns an SSE-S3 default into a WARN. Where
the account opts in (`use_aws_config`) and AWS Config records S3 continuously in the bucket's
region, the policy comes from Config's recorded item, fetched for 100 buckets per call
(`config_items`), and the finding's evidence names the item's capture time
(`policy_source`); elsewhere it is one `GetBucketPolicy`.

Only bucket-level configuration is read, never an object or a key name. The S3 reads return
no tags; a Config item also carries the bucket's tags and ACL (and its logging and
notification settings), and hipaacheck keeps only the policy and the lifecycle rules from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.collector import (
    KEY_OPERATION,
    REGIONS_OPERATION,
    Scan,
    home_region,
    listing,
    read,
    scan_regions,
)
from hipaacheck.checks.aws.collector import key_manager as _key_manager
from hipaacheck.checks.aws.config_items import CONFIG_OPERATIONS, RecordedBucket
from hipaacheck.checks.aws.config_items import recorded_bucket as _recorded_bucket
from hipaacheck.clients.aws import AwsSession, classify_error, error_code
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

LIST_BUCKETS = "s3:ListAllMyBuckets"
GET_LOCATION = "s3:GetBucketLocation"
GET_ENCRYPTION = "s3:GetEncryptionConfiguration"
GET_POLICY = "s3:GetBucketPolicy"
DESCRIBE_KEY = "kms:DescribeKey"

SSE_S3 = "AES256"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
LISTING_RESOURCE = "s3:buckets"
"""The resource a finding about the whole bucket listing is filed under."""
_SSE_CONDITION_KEYS = ("s3:x-amz-server-side-encryption",
                       "s3:x-amz-server-side-encryption-aws-kms-key-id")


@dataclass(frozen=True)
class BucketRef:
    """One bucket from the account's listing, with its region when the listing gave it."""

    name: str
    region: str | None = None


@dataclass(frozen=True)
class DefaultSse:
    """A bucket's default server-side encryption rule."""

    algorithm: str
    """`AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse` (DSSE-KMS)."""
    kms_key_id: str | None = None
    """The key named in the rule; None for SSE-S3, or SSE-KMS with the AWS-managed key."""
    bucket_key_enabled: bool = False


@dataclass(frozen=True)
class BucketEncryption:
    """
    What was observed of one bucket.

    `encryption` is None when the bucket has no default encryption. `key_manager` is
    `"CUSTOMER"` or `"AWS"` for KMS rules, None when no KMS key is involved.
    `policy_requires_kms` is whether the bucket policy refuses uploads without SSE-KMS; None
    when it was not read because it could not change the verdict. `policy_source` names the
    AWS Config item the policy came from (evidence `policy_source`); None when it was read
    from S3.
    """

    name: str
    region: Fact[str]
    encryption: Fact[DefaultSse | None]
    key_manager: Fact[str] | None = None
    policy_requires_kms: Fact[bool] | None = None
    policy_source: str | None = None


@dataclass(frozen=True)
class S3Observation:
    """Every bucket of the account, or why they could not be listed."""

    buckets: Fact[tuple[BucketEncryption, ...]]


def bucket_listing(scan: Scan) -> Fact[tuple[BucketRef, ...]]:
    """
    The account's buckets with their regions where the listings tell, once per scan.
    """
    def compute() -> Fact[tuple[BucketRef, ...]]:
        raw = listing(scan, "s3", home_region(scan.account), "list_buckets", "Buckets",
                      LIST_BUCKETS)
        if isinstance(raw, Unknown):
            return raw
        buckets = [BucketRef(str(b["Name"]), b.get("BucketRegion")) for b in raw]
        if all(b.region for b in buckets):
            return tuple(buckets)
        placed = _regions_by_listing(scan)
        return tuple(b if b.region else BucketRef(b.name, placed.get(b.name)) for b in buckets)

    return scan.once(("s3.buckets",), compute)


def _regions_by_listing(scan: Scan) -> dict[str, str]:
    """Bucket name to region from one `ListBuckets` filtered by each scanned region."""
    regions = scan_regions(scan)
    placed: dict[str, str] = {}
    if isinstance(regions, Unknown):
        return placed
    for region in regions:
        raw = listing(scan, "s3", home_region(scan.account), "list_buckets", "Buckets",
                      LIST_BUCKETS, BucketRegion=region)
        if not isinstance(raw, Unknown):
            placed.update((str(b["Name"]), region) for b in raw)
    return placed


def locate_bucket(scan: Scan, bucket: BucketRef) -> Fact[str]:
    """
    The bucket's region: from the listings when they have it, else `GetBucketLocation`.
    """
    if bucket.region:
        return bucket.region

    def compute() -> Fact[str]:
        response = read(scan, "s3", home_region(scan.account), "get_bucket_location",
                        GET_LOCATION, absent={"NoSuchBucket": None}, Bucket=bucket.name)
        if response is None:
            return vanished()
        if isinstance(response, Unknown):
            return response
        location = response.get("LocationConstraint")
        # The two legacy spellings: no constraint is us-east-1, "EU" is eu-west-1.
        if not location:
            return "us-east-1"
        return "eu-west-1" if location == "EU" else str(location)

    return scan.once(("s3.region", bucket.name), compute)


def list_buckets(ctx: CheckContext, session: AwsSession,
                 account: AwsAccountConfig) -> Fact[tuple[BucketRef, ...]]:
    """
    The account's buckets, listed once per scan and shared by every check that asks (the
    same memo entry as `bucket_listing`).
    """
    return bucket_listing(Scan(ctx, account, session))


def bucket_region(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                  bucket: BucketRef) -> Fact[str]:
    """A bucket's region, looked up once per scan (the same memo entry as `locate_bucket`)."""
    return locate_bucket(Scan(ctx, account, session), bucket)


def key_manager(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                region: str, key_id: str | None) -> Fact[str]:
    """Who manages a KMS key (`"CUSTOMER"` or `"AWS"`), looked up once per scan."""
    return _key_manager(Scan(ctx, account, session), region, key_id)


def vanished() -> Unknown:
    """The fact for a bucket deleted between the listing and the read."""
    return Unknown(UnknownReason.NOT_VISIBLE, "the bucket was deleted during the scan")


def read_default_sse(session: AwsSession, region: str, name: str) -> Fact[DefaultSse | None]:
    """
    A bucket's default encryption rule, None when it has none, or why it could not be read.
    """
    try:
        response = session.client("s3", region).get_bucket_encryption(Bucket=name)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        code = error_code(exc)
        if code == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        if code == "NoSuchBucket":
            return vanished()
        return classify_error(exc, GET_ENCRYPTION)
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault")
        if default and default.get("SSEAlgorithm"):
            return DefaultSse(str(default["SSEAlgorithm"]), default.get("KMSMasterKeyID"),
                              bool(rule.get("BucketKeyEnabled", False)))
    return None


def bucket_encryption(scan: Scan, name: str, region: str) -> Fact[DefaultSse | None]:
    """A bucket's default encryption rule, read once per scan."""
    return scan.once(("s3.encryption", name),
                     lambda: read_default_sse(scan.session, region, name))


def buckets_in_region(scan: Scan, region: str) -> tuple[str, ...]:
    """The listed buckets the listings place in `region`; none when the listing failed."""
    def compute() -> tuple[str, ...]:
        buckets = bucket_listing(scan)
        if isinstance(buckets, Unknown):
            return ()
        return tuple(b.name for b in buckets if b.region == region)

    return scan.once(("s3.region_buckets", region), compute)


def recorded(scan: Scan, name: str, region: str) -> RecordedBucket | None:
    """
    The bucket's AWS Config item, or None when the bucket is to be read directly.

    The first request in a region fetches the items of every listed bucket there, once.
    """
    return _recorded_bucket(scan, region, name, lambda: buckets_in_region(scan, region))


def bucket_policy_source(scan: Scan, name: str, region: str) -> str | None:
    """Where `bucket_policy_text` took the policy from: the Config item, or None for S3."""
    item = recorded(scan, name, region)
    return item.policy.source if item is not None and item.policy is not None else None


def bucket_policy_text(scan: Scan, name: str, region: str) -> Fact[str | None]:
    """
    The bucket policy's JSON text, None when the bucket has none; read once per scan, from the
    bucket's AWS Config item where there is a usable one (see `bucket_policy_source`).

    NOTE: the audit family's `audit_bucket.read_bucket_policy` reads through this function,
    so the memo key and value (policy text or None) are shared and a scan running both
    families reads each policy once.
    """
    def compute() -> Fact[str | None]:
        item = recorded(scan, name, region)
        if item is not None and item.policy is not None:
            return item.policy.value
        response = read(scan, "s3", region, "get_bucket_policy", GET_POLICY,
                        absent={"NoSuchBucketPolicy": {}, "NoSuchBucket": vanished()},
                        Bucket=name)
        if isinstance(response, Unknown):
            return response
        policy = response.get("Policy")
        return str(policy) if policy else None

    return scan.ctx.memo.get(("aws.s3.bucket_policy", scan.account.name, name), compute)


def bucket_policy_requires_kms(scan: Scan, name: str, region: str) -> Fact[bool]:
    """Whether the bucket policy refuses uploads that do not use SSE-KMS."""
    text = bucket_policy_text(scan, name, region)
    if isinstance(text, Unknown):
        return text
    if text is None:
        return False
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        return Unknown(UnknownReason.UNPARSEABLE, "the bucket policy is not valid JSON")
    return requires_kms(document) if isinstance(document, Mapping) else Unknown(
        UnknownReason.UNPARSEABLE, "the bucket policy is not a JSON object")


def requires_kms(document: Mapping[str, Any]) -> bool:
    """
    Whether a bucket policy denies object uploads that are not encrypted with SSE-KMS.

    Recognises the documented patterns: a Deny on `s3:PutObject` (or `s3:*`, `*`) whose
    condition is StringNotEquals[IfExists] on `s3:x-amz-server-side-encryption` with only
    KMS algorithms, StringNotEquals on the KMS key id, or Null on the KMS key id.
    """
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    return any(_denies_non_kms(s) for s in statements if isinstance(s, Mapping))


def _denies_non_kms(statement: Mapping[str, Any]) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if statement.get("Effect") != "Deny" or not any(
            a.lower() in ("s3:putobject", "s3:*", "*") for a in actions if isinstance(a, str)):
        return False
    for operator, clause in (statement.get("Condition") or {}).items():
        if not isinstance(clause, Mapping):
            continue
        for raw_key, raw_values in clause.items():
            key = raw_key.lower()
            values = [raw_values] if isinstance(raw_values, str) else list(raw_values or [])
            if operator.startswith("StringNotEquals") and key == _SSE_CONDITION_KEYS[0] \
                    and values and all(v in KMS_ALGORITHMS for v in values):
                return True
            if operator.startswith("StringNotEquals") and key == _SSE_CONDITION_KEYS[1]:
                return True
            if operator == "Null" and key == _SSE_CONDITION_KEYS[1] and "true" in values:
                return True
    return False


class DefaultEncryption(Check[S3Observation]):
    """
    Every S3 bucket has default encryption; customer-managed KMS keys are best.
    """

    meta = CheckMeta(
        id="aws.s3.default_encryption",
        title="S3 buckets encrypt objects at rest by default",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)", "164.312(e)(2)(ii)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "Reads each bucket's default server-side encryption. SSE-KMS or DSSE-KMS with a "
            "customer-managed key passes; SSE-S3 or the AWS-managed KMS key passes with a note, "
            "or warns when the policy requires customer-managed keys or the bucket policy "
            "requires SSE-KMS; no default encryption fails. Whether S3 Bucket Keys are on is "
            "noted. With use_aws_config, bucket policies come from AWS Config's recorded items "
            "where a continuous, succeeding recorder covers S3 in the bucket's region (the "
            "evidence's policy_source names the capture time), else from S3."),
        remediation=(
            "Set default encryption on the bucket (PutBucketEncryption) to SSE-KMS with a "
            "customer-managed KMS key, enable S3 Bucket Keys, and re-encrypt existing objects "
            "with S3 Batch Operations if they predate the rule."),
        operations=(
            Operation(System.AWS, LIST_BUCKETS, "list the account's buckets"),
            Operation(System.AWS, GET_LOCATION,
                      "find the region of a bucket the listings do not place"),
            Operation(System.AWS, GET_ENCRYPTION, "read each bucket's default encryption"),
            Operation(System.AWS, GET_POLICY,
                      "see whether an SSE-S3 bucket's policy requires SSE-KMS"),
            *CONFIG_OPERATIONS,
            KEY_OPERATION,
            REGIONS_OPERATION,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> S3Observation:
        """List the buckets once, then read each bucket's default encryption in its region."""
        scan = Scan.of(ctx, target)
        buckets = bucket_listing(scan)
        if isinstance(buckets, Unknown):
            return S3Observation(buckets=buckets)
        strict = ctx.policy.require_customer_managed_keys
        return S3Observation(buckets=tuple(
            scan.map(lambda bucket: self._observe(scan, bucket, strict), buckets)))

    def _observe(self, scan: Scan, bucket: BucketRef, strict: bool) -> BucketEncryption:
        region = locate_bucket(scan, bucket)
        if isinstance(region, Unknown):
            return BucketEncryption(bucket.name, region, region)
        sse = bucket_encryption(scan, bucket.name, region)
        manager: Fact[str] | None = None
        requires: Fact[bool] | None = None
        source: str | None = None
        if isinstance(sse, DefaultSse) and sse.algorithm in KMS_ALGORITHMS:
            manager = _key_manager(scan, region, sse.kms_key_id)
        elif isinstance(sse, DefaultSse) and sse.algorithm == SSE_S3 and not strict:
            requires = bucket_policy_requires_kms(scan, bucket.name, region)
            source = bucket_policy_source(scan, bucket.name, region)
        return BucketEncryption(bucket.name, region, sse, manager, requires, source)

    def evaluate(self, obs: S3Observation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per bucket; one UNVERIFIED finding when the buckets could not be listed."""
        make = self.findings(target)
        return make.each(obs.buckets, LISTING_RESOURCE, "the account's S3 buckets",
                         "The account has no S3 buckets.", lambda b: _judge(make, b, policy))


def _judge(make: FindingBuilder[S3Observation], bucket: BucketEncryption,
           policy: Policy) -> Finding:
    """The finding for one bucket."""
    if isinstance(bucket.region, Unknown):
        return make.unverified(bucket.name, bucket.region, "the bucket's region")
    if isinstance(bucket.encryption, Unknown):
        return make.unverified(bucket.name, bucket.encryption, "default encryption")
    evidence: dict[str, EvidenceValue] = {"region": bucket.region}
    sse = bucket.encryption
    if sse is None:
        evidence["sse_algorithm"] = None
        return make.failed(bucket.name, "The bucket has no default encryption.",
                           evidence=evidence)
    evidence.update(sse_algorithm=sse.algorithm, bucket_key_enabled=sse.bucket_key_enabled)
    if sse.algorithm == SSE_S3:
        return _judge_sse_s3(make, bucket, evidence, policy)
    if sse.algorithm not in KMS_ALGORITHMS:
        unknown = Unknown(UnknownReason.UNPARSEABLE, "unrecognised SSE algorithm")
        return make.unverified(bucket.name, unknown, "default encryption")
    return _judge_kms(make, bucket, evidence, policy)


def _judge_sse_s3(make: FindingBuilder[S3Observation], bucket: BucketEncryption,
                  evidence: dict[str, EvidenceValue], policy: Policy) -> Finding:
    """SSE-S3: PASS with a note, WARN when the policy or the bucket policy requires KMS."""
    how = "SSE-S3 (keys managed by Amazon S3)"
    if policy.require_customer_managed_keys:
        return _provider_managed(make, bucket.name, how, evidence, policy)
    requires = bucket.policy_requires_kms
    if requires is None:
        requires = Unknown(UnknownReason.NOT_VISIBLE, "the bucket policy was not read")
    if bucket.policy_source:
        evidence["policy_source"] = bucket.policy_source
    if isinstance(requires, Unknown):
        finding = make.unverified(bucket.name, requires, "whether the bucket policy requires KMS")
        # A recorded policy that could not be judged still says where it came from.
        return replace(finding, evidence=evidence) if bucket.policy_source else finding
    evidence["policy_requires_kms"] = requires
    if requires:
        return make.warned(bucket.name, "The bucket policy requires SSE-KMS uploads, but the "
                           "default encryption is SSE-S3.", evidence=evidence)
    return _provider_managed(make, bucket.name, how, evidence, policy)


def _judge_kms(make: FindingBuilder[S3Observation], bucket: BucketEncryption,
               evidence: dict[str, EvidenceValue], policy: Policy) -> Finding:
    """The finding for a bucket whose default rule uses a KMS key."""
    manager = bucket.key_manager
    if isinstance(manager, Unknown):
        evidence["key_manager"] = "unknown"
        if policy.require_customer_managed_keys:
            return make.unverified(bucket.name, manager, "who manages the bucket's KMS key")
        return make.passed(
            bucket.name, "Objects are encrypted with SSE-KMS by default; who manages the key "
            "could not be read.", evidence=evidence)
    evidence["key_manager"] = manager
    if manager == "CUSTOMER":
        return make.passed(bucket.name, "Objects are encrypted by default with a "
                           "customer-managed KMS key.", evidence=evidence)
    return _provider_managed(make, bucket.name, "SSE-KMS with an AWS-managed key", evidence,
                             policy)


def _provider_managed(make: FindingBuilder[S3Observation], name: str, how: str,
                      evidence: Mapping[str, EvidenceValue], policy: Policy) -> Finding:
    """PASS with a note, or WARN when the policy requires customer-managed keys."""
    if policy.require_customer_managed_keys:
        return make.warned(name, f"Objects are encrypted by default with {how}, but the "
                           "policy requires customer-managed KMS keys.", evidence=evidence)
    return make.passed(name, f"Objects are encrypted by default with {how}; a customer-managed "
                       "KMS key would add key-policy control and key-use audit.",
                       evidence=evidence)

