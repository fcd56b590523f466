"""
S3 default encryption: every bucket encrypts new objects at rest by default.

The bucket listing is account-wide and fetched once per scan (`list_buckets`), so other S3
checks can share it. Every bucket of the account is judged, whatever its region (buckets
outside the inventory's regions hold data too), and its encryption is read in its own region.
Only the bucket-level configuration is read: no object, key name or tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.aws import (
    AwsSession,
    classify_error,
    error_code,
    kms_key_manager,
    paginate,
)
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
DESCRIBE_KEY = "kms:DescribeKey"

SSE_S3 = "AES256"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
LISTING_RESOURCE = "s3:buckets"
"""The resource a finding about the whole bucket listing is filed under."""


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
    """

    name: str
    region: Fact[str]
    encryption: Fact[DefaultSse | None]
    key_manager: Fact[str] | None = None


@dataclass(frozen=True)
class S3Observation:
    """Every bucket of the account, or why they could not be listed."""

    buckets: Fact[tuple[BucketEncryption, ...]]


def account_of(target: Target) -> AwsAccountConfig:
    """The AWS account configuration an AWS target carries."""
    if not isinstance(target.config, AwsAccountConfig):
        raise TypeError(f"target {target.id} carries no AWS account configuration")
    return target.config


def list_buckets(ctx: CheckContext, session: AwsSession,
                 account: AwsAccountConfig) -> Fact[tuple[BucketRef, ...]]:
    """
    The account's buckets, listed once per scan and shared by every check that asks.
    """
    def compute() -> Fact[tuple[BucketRef, ...]]:
        try:
            client = session.client("s3", account.regions[0])
            buckets = paginate(client, "list_buckets", "Buckets")
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return classify_error(exc, LIST_BUCKETS)
        return tuple(BucketRef(b["Name"], b.get("BucketRegion")) for b in buckets)

    return ctx.memo.get(("aws.s3.list_buckets", account.name), compute)


def bucket_region(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                  bucket: BucketRef) -> Fact[str]:
    """
    The bucket's region: from the listing when it has it, else `GetBucketLocation` (memoised).
    """
    if bucket.region:
        return bucket.region

    def compute() -> Fact[str]:
        try:
            client = session.client("s3", account.regions[0])
            location = client.get_bucket_location(Bucket=bucket.name).get("LocationConstraint")
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            if error_code(exc) == "NoSuchBucket":
                return _vanished()
            return classify_error(exc, GET_LOCATION)
        # The two legacy spellings: no constraint is us-east-1, "EU" is eu-west-1.
        if not location:
            return "us-east-1"
        return "eu-west-1" if location == "EU" else str(location)

    return ctx.memo.get(("aws.s3.bucket_region", account.name, bucket.name), compute)


def key_manager(ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                region: str, key_id: str) -> Fact[str]:
    """
    Who manages a KMS key (`"CUSTOMER"` or `"AWS"`), looked up once per scan.
    """
    return ctx.memo.get(("aws.kms.key_manager", account.name, region, key_id),
                        lambda: kms_key_manager(session, region, key_id))


def _vanished() -> Unknown:
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
            return _vanished()
        return classify_error(exc, GET_ENCRYPTION)
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault")
        if default and default.get("SSEAlgorithm"):
            return DefaultSse(str(default["SSEAlgorithm"]), default.get("KMSMasterKeyID"),
                              bool(rule.get("BucketKeyEnabled", False)))
    return None


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
            "or warns when the policy requires customer-managed keys; no default encryption "
            "fails."),
        remediation=(
            "Set default encryption on the bucket (PutBucketEncryption) to SSE-KMS with a "
            "customer-managed KMS key, enable S3 Bucket Keys, and re-encrypt existing objects "
            "with S3 Batch Operations if they predate the rule."),
        operations=(
            Operation(System.AWS, LIST_BUCKETS, "list the account's buckets"),
            Operation(System.AWS, GET_LOCATION, "find each bucket's region"),
            Operation(System.AWS, GET_ENCRYPTION, "read each bucket's default encryption"),
            Operation(System.AWS, DESCRIBE_KEY, "tell customer-managed from AWS-managed keys"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> S3Observation:
        """List the buckets once, then read each bucket's default encryption in its region."""
        account = account_of(target)
        session = ctx.clients.aws(account)
        listing = list_buckets(ctx, session, account)
        if isinstance(listing, Unknown):
            return S3Observation(buckets=listing)
        return S3Observation(buckets=tuple(
            self._observe(ctx, session, account, bucket) for bucket in listing))

    def _observe(self, ctx: CheckContext, session: AwsSession, account: AwsAccountConfig,
                 bucket: BucketRef) -> BucketEncryption:
        region = bucket_region(ctx, session, account, bucket)
        if isinstance(region, Unknown):
            return BucketEncryption(bucket.name, region, region)
        sse = read_default_sse(session, region, bucket.name)
        manager: Fact[str] | None = None
        if isinstance(sse, DefaultSse) and sse.algorithm in KMS_ALGORITHMS:
            manager = ("AWS" if sse.kms_key_id is None
                       else key_manager(ctx, session, account, region, sse.kms_key_id))
        return BucketEncryption(bucket.name, region, sse, manager)

    def evaluate(self, obs: S3Observation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per bucket; one UNVERIFIED finding when the buckets could not be listed."""
        make = self.findings(target)
        if isinstance(obs.buckets, Unknown):
            return [make.unverified(LISTING_RESOURCE, obs.buckets, "the account's S3 buckets")]
        if not obs.buckets:
            return [make.passed(LISTING_RESOURCE, "The account has no S3 buckets.",
                                evidence={"bucket_count": 0})]
        return [_judge(make, bucket, policy) for bucket in obs.buckets]


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
        return _provider_managed(make, bucket.name, "SSE-S3 (keys managed by Amazon S3)",
                                 evidence, policy)
    if sse.algorithm not in KMS_ALGORITHMS:
        unknown = Unknown(UnknownReason.UNPARSEABLE, "unrecognised SSE algorithm")
        return make.unverified(bucket.name, unknown, "default encryption")
    return _judge_kms(make, bucket, evidence, policy)


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
