"""
The S3 buckets that hold the audit trail (CloudTrail's, and the inventory's `audit_buckets`):
can anything delete or rewrite what they hold, and can the application's own role?

- `AuditBucketImmutable` reads Object Lock (mode and default retention), versioning and MFA
  delete, and the bucket policy: Object Lock in compliance mode passes; governance mode, MFA
  delete or a policy that denies deletes to everyone are warnings (an administrator can lift
  each); none of them fails.
- `AppRoleAuditBucketAccess` asks whether the inventory's `application_role_arn` may
  s3:DeleteObject, s3:DeleteObjectVersion, s3:PutObject (over existing keys),
  s3:PutLifecycleConfiguration or s3:PutBucketPolicy on each bucket: through the IAM policy
  simulator when the scan may call it, else by reading the role's and the bucket's policies
  (see `audit_policy`); the evidence names the method.

Both read the bucket policy through the encryption family's `s3.bucket_policy_text`, so a scan
reads each policy once; where the account opts in (`use_aws_config`) and AWS Config records S3
continuously in the bucket's region, it comes from Config's recorded item, and every finding
that used it, UNVERIFIED ones included, names the item's capture time (evidence
`policy_source`). Only bucket-level configuration is read, never an object or a key name; of a
Config item, which also carries the bucket's tags and ACL, only the policy is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.audit_policy import (
    NOT_EVALUATED,
    ROLE_OPERATIONS,
    Ask,
    RoleDecisions,
    action_matches,
    application_role,
    parse_policy,
    resource_covers,
    role_decisions,
)
from hipaacheck.checks.aws.audit_trail import (
    AUDIT_CITATIONS,
    DESCRIBE_TRAILS,
    AuditStore,
    Discovery,
    audit_buckets,
    discovery_gaps,
)
from hipaacheck.checks.aws.collector import REGIONS_OPERATION, Scan
from hipaacheck.checks.aws.config_items import CONFIG_OPERATIONS
from hipaacheck.checks.aws.s3 import (
    GET_LOCATION,
    LIST_BUCKETS,
    BucketRef,
    bucket_policy_source,
    bucket_policy_text,
    bucket_region,
)
from hipaacheck.clients.aws import AwsSession, classify_error, error_code
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

GET_OBJECT_LOCK = "s3:GetBucketObjectLockConfiguration"
GET_VERSIONING = "s3:GetBucketVersioning"
GET_POLICY = "s3:GetBucketPolicy"
BUCKETS_RESOURCE = "s3:audit-buckets"
DAYS_PER_YEAR = 365
_DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")


def _aws(action: str, why: str) -> Operation:
    return Operation(System.AWS, action, why)


_DISCOVERY_OPERATIONS = (
    REGIONS_OPERATION,
    _aws(DESCRIBE_TRAILS, "find the buckets CloudTrail delivers to"),
    _aws("cloudtrail:GetTrailStatus", "the trails' logging status (shared listing)"),
    _aws(LIST_BUCKETS, "find buckets matching the `audit_buckets` patterns"),
    _aws(GET_LOCATION, "find each audit bucket's region"),
)


def _vanished() -> Unknown:
    return Unknown(UnknownReason.NOT_VISIBLE, "the bucket does not exist or is in another "
                   "account", "the audit bucket in the scanned account")


def read_bucket_policy(scan: Scan, region: str, name: str) -> Fact[str | None]:
    """
    The bucket policy's JSON text, None when the bucket has none; read once per scan and
    shared with the encryption family (the memo entry of `s3.bucket_policy_text`).
    """
    return bucket_policy_text(scan, name, region)


# --- aws.s3.audit_bucket_immutable -------------------------------------------------------------

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]


@dataclass(frozen=True)
class ObjectLock:
    """A bucket's Object Lock: enabled, and its default retention (None when it has none)."""

    enabled: bool
    mode: LockMode | None = None
    days: int | None = None


@dataclass(frozen=True)
class Versioning:
    """`Enabled`, `Suspended` or `Off` (never enabled), and whether MFA delete is on."""

    status: str
    mfa_delete: bool


DenyDelete = Literal["everyone", "conditional", "none"]


@dataclass(frozen=True)
class ImmutabilityFacts:
    """What was observed of one audit bucket."""

    name: str
    sources: tuple[str, ...]
    region: Fact[str]
    lock: Fact[ObjectLock]
    versioning: Fact[Versioning]
    deny_delete: Fact[DenyDelete]
    policy_source: str | None = None
    """The AWS Config item the bucket policy came from; None when read from S3."""


@dataclass(frozen=True)
class BucketsObservation:
    """Every audit bucket, and the listings that could not be read while finding them."""

    discovery: Discovery
    buckets: tuple[ImmutabilityFacts, ...]


def _read_lock(session: AwsSession, region: str, name: str) -> Fact[ObjectLock]:
    try:
        config = session.client("s3", region).get_object_lock_configuration(Bucket=name)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        code = error_code(exc)
        if code == "ObjectLockConfigurationNotFoundError":
            return ObjectLock(False)
        if code == "NoSuchBucket":
            return _vanished()
        return classify_error(exc, GET_OBJECT_LOCK)
    lock = config.get("ObjectLockConfiguration", {})
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    mode = retention.get("Mode")
    days = int(retention.get("Days") or 0) or int(retention.get("Years") or 0) * DAYS_PER_YEAR
    return ObjectLock(lock.get("ObjectLockEnabled") == "Enabled",
                      mode if mode in ("COMPLIANCE", "GOVERNANCE") else None, days or None)


def _read_versioning(session: AwsSession, region: str, name: str) -> Fact[Versioning]:
    try:
        response = session.client("s3", region).get_bucket_versioning(Bucket=name)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "NoSuchBucket":
            return _vanished()
        return classify_error(exc, GET_VERSIONING)
    # S3 omits MFADelete unless it was ever configured, and Status unless versioning was.
    return Versioning(str(response.get("Status") or "Off"), response.get("MFADelete") == "Enabled")


def policy_denies_delete(policy: str | None, bucket: str) -> Fact[DenyDelete]:
    """
    Whether the bucket policy denies object deletion to every principal, over every object:
    `everyone`, `conditional` (a deny that carries a condition), or `none`.
    """
    if policy is None:
        return "none"
    statements = parse_policy(policy)
    if isinstance(statements, Unknown):
        return statements
    objects = f"arn:aws:s3:::{bucket}/*"
    found: DenyDelete = "none"
    for statement in statements:
        if statement.effect != "Deny" or statement.not_principals is not None:
            continue
        if statement.principals != ("*",) or not all(action_matches(statement, a)
                                                      for a in _DELETE_ACTIONS):
            continue
        if not any(resource_covers(p, objects) for p in statement.resources):
            continue
        if not statement.condition_keys:
            return "everyone"
        found = "conditional"
    return found


def _region(scan: Scan, name: str) -> Fact[str]:
    return bucket_region(scan.ctx, scan.session, scan.account, BucketRef(name))


def _observe_bucket(scan: Scan, store: AuditStore) -> ImmutabilityFacts:
    region = _region(scan, store.name)
    if isinstance(region, Unknown):
        return ImmutabilityFacts(store.name, store.sources, region, region, region, region)
    policy = read_bucket_policy(scan, region, store.name)
    deny: Fact[DenyDelete] = (policy if isinstance(policy, Unknown)
                              else policy_denies_delete(policy, store.name))
    return ImmutabilityFacts(store.name, store.sources, region,
                             _read_lock(scan.session, region, store.name),
                             _read_versioning(scan.session, region, store.name), deny,
                             bucket_policy_source(scan, store.name, region))


class AuditBucketImmutable(Check[BucketsObservation]):
    """
    Audit buckets keep what they hold: Object Lock in compliance mode with default retention.
    """

    meta = CheckMeta(
        id="aws.s3.audit_bucket_immutable",
        title="Audit buckets are immutable (Object Lock, MFA delete, deny-delete policy)",
        family=Family.AUDIT,
        standard=Standard.INTEGRITY,
        citations=AUDIT_CITATIONS,
        severity=Severity.HIGH,
        target_kind=TargetKind.AWS,
        description=(
            "For every bucket CloudTrail delivers to and every bucket named in `audit_buckets`, "
            "reads Object Lock (mode and default retention), versioning and MFA delete, and "
            "the bucket policy. Object Lock in compliance mode with a default retention passes "
            "(no one, root included, can delete a locked version early), warning when the "
            "retention is shorter than the policy's audit retention; governance mode (lifted "
            "with s3:BypassGovernanceRetention), MFA delete, or a bucket policy denying "
            "DeleteObject and DeleteObjectVersion to every principal are warnings, since an "
            "administrator can undo each; a bucket with none of them fails."),
        remediation=(
            "Deliver the audit trail to a bucket created with Object Lock, with a default "
            "retention in COMPLIANCE mode at least as long as the audit retention policy (six "
            "years), versioning on, and a bucket policy denying s3:DeleteObject*, "
            "s3:PutBucketPolicy and s3:PutLifecycleConfiguration to all but a break-glass role."),
        operations=(
            *_DISCOVERY_OPERATIONS,
            _aws(GET_OBJECT_LOCK, "Object Lock mode and default retention"),
            _aws(GET_VERSIONING, "versioning and MFA delete"),
            _aws(GET_POLICY, "whether the bucket policy denies deletes"),
            *CONFIG_OPERATIONS,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> BucketsObservation:
        """Find the audit buckets and read each one's lock, versioning and policy."""
        scan = Scan.of(ctx, target)
        discovery = audit_buckets(scan)
        return BucketsObservation(discovery, tuple(scan.map(
            lambda store: _observe_bucket(scan, store), discovery.stores)))

    def evaluate(self, obs: BucketsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit bucket; no bucket at all (every listing read) fails."""
        f = self.findings(target)
        gaps = discovery_gaps(f, obs.discovery, "which buckets hold the audit trail")
        if not obs.buckets:
            return gaps or [f.failed(BUCKETS_RESOURCE, "No audit bucket was found: no "
                                     "CloudTrail trail delivers to S3 and no bucket matches "
                                     "`audit_buckets`.", evidence={"bucket_count": 0})]
        return [*gaps, *(_judge_immutable(f, bucket, policy) for bucket in obs.buckets)]


def _retention_words(lock: ObjectLock) -> str:
    if lock.mode and lock.days:
        return f"Object Lock {lock.mode}, {lock.days} days"
    if lock.enabled:
        return "Object Lock enabled without a default retention"
    return "no retention lock"


def _immutability_evidence(bucket: ImmutabilityFacts, region: str,
                           policy: Policy) -> dict[str, EvidenceValue]:
    lock = bucket.lock if isinstance(bucket.lock, ObjectLock) else None
    versioning = bucket.versioning if isinstance(bucket.versioning, Versioning) else None
    evidence: dict[str, EvidenceValue] = {
        "region": region, "sources": bucket.sources, "trail": f"s3://{bucket.name}",
        "trail_kind": "s3_bucket", "trail_location": f"S3 bucket in {region}, scanned account",
        "object_lock": "unknown" if lock is None else (lock.mode or (
            "enabled_no_default" if lock.enabled else "disabled")),
        "retention_days": lock.days if lock else None,
        "versioning": versioning.status if versioning else "unknown",
        "mfa_delete": versioning.mfa_delete if versioning else "unknown",
        "policy_denies_delete": bucket.deny_delete if isinstance(bucket.deny_delete, str)
        else "unknown"}
    if bucket.policy_source:
        # Set only when the policy judged came from Config, whatever the judgement made of it.
        evidence["policy_source"] = bucket.policy_source
    if lock is not None:
        evidence["trail_retention"] = _retention_words(lock)
        evidence["retention_meets_policy"] = bool(lock.mode and lock.days and
                                                  lock.days >= policy.min_audit_retention_days)
    return evidence


def _judge_immutable(f: FindingBuilder[Any], bucket: ImmutabilityFacts,
                     policy: Policy) -> Finding:
    name = bucket.name
    if isinstance(bucket.region, Unknown):
        return f.unverified(name, bucket.region, "the audit bucket's region")
    evidence = _immutability_evidence(bucket, bucket.region, policy)
    lock = bucket.lock
    if isinstance(lock, ObjectLock) and lock.mode == "COMPLIANCE" and lock.days:
        if lock.days < policy.min_audit_retention_days:
            return f.warned(name, f"Object Lock in compliance mode keeps objects for "
                            f"{lock.days} days, less than the {policy.min_audit_retention_days} "
                            "days the audit retention policy asks.", evidence=evidence)
        return f.passed(name, f"Object Lock in compliance mode keeps every object for "
                        f"{lock.days} days.", evidence=evidence)
    for fact, what in ((lock, "Object Lock"), (bucket.versioning, "versioning and MFA delete"),
                       (bucket.deny_delete, "the bucket policy")):
        if isinstance(fact, Unknown):
            return _unverified(f, name, fact, what, evidence)
    assert isinstance(lock, ObjectLock) and isinstance(bucket.versioning, Versioning)
    softer = []
    if lock.mode == "GOVERNANCE" and lock.days:
        softer.append("Object Lock in governance mode (lifted with "
                      "s3:BypassGovernanceRetention)")
    if bucket.versioning.mfa_delete and bucket.versioning.status == "Enabled":
        softer.append("MFA delete")
    if bucket.deny_delete == "everyone":
        softer.append("a bucket policy denying deletes (whoever may PutBucketPolicy can lift "
                      "it)")
    if softer:
        return f.warned(name, "Deletes are blocked only by " + "; ".join(softer) + ".",
                        evidence=evidence)
    return f.failed(name, "Nothing stops deletion of the audit objects: no Object Lock "
                    "retention, no MFA delete and no bucket policy denying deletes.",
                    evidence=evidence)


def _unverified(f: FindingBuilder[Any], resource: str, unknown: Unknown, what: str,
                evidence: Mapping[str, EvidenceValue]) -> Finding:
    return f.make(Status.UNVERIFIED, resource, f"Could not observe {what}: {unknown.detail}",
                  evidence=evidence, needs=unknown.needs, unknown_reason=unknown.reason)


# --- aws.iam.app_role_audit_bucket -------------------------------------------------------------

BUCKET_ACTIONS = ("s3:PutLifecycleConfiguration", "s3:PutBucketPolicy")
OBJECT_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject")


@dataclass(frozen=True)
class RoleOnBucket:
    """What the application role may do to one audit bucket."""

    name: str
    sources: tuple[str, ...]
    decisions: Fact[RoleDecisions]
    policy_source: str | None = None
    """The AWS Config item the bucket policy came from; None when read from S3."""


@dataclass(frozen=True)
class RoleAccessObservation:
    """The configured role and its power over every audit bucket."""

    role: Fact[str]
    discovery: Discovery
    buckets: tuple[RoleOnBucket, ...]


def bucket_asks(name: str) -> tuple[Ask, ...]:
    """The questions asked of one bucket: bucket actions on it, object actions on `name/*`."""
    arn = f"arn:aws:s3:::{name}"
    return (*(Ask(a, arn) for a in BUCKET_ACTIONS), *(Ask(a, f"{arn}/*") for a in OBJECT_ACTIONS))


def _role_on_bucket(scan: Scan, role: str, store: AuditStore) -> RoleOnBucket:
    region = _region(scan, store.name)
    if isinstance(region, Unknown):
        return RoleOnBucket(store.name, store.sources, region)
    policy = read_bucket_policy(scan, region, store.name)
    if isinstance(policy, Unknown):
        return RoleOnBucket(store.name, store.sources, policy)
    return RoleOnBucket(store.name, store.sources, role_decisions(
        scan.ctx, scan.session, scan.account, role, bucket_asks(store.name), policy),
        bucket_policy_source(scan, store.name, region))


class AppRoleAuditBucketAccess(Check[RoleAccessObservation]):
    """
    The application's IAM role cannot delete, overwrite or unprotect the audit buckets.
    """

    meta = CheckMeta(
        id="aws.iam.app_role_audit_bucket",
        title="The application's IAM role cannot alter the audit buckets",
        family=Family.AUDIT,
        standard=Standard.AUDIT_CONTROLS,
        citations=AUDIT_CITATIONS,
        severity=Severity.CRITICAL,
        target_kind=TargetKind.AWS,
        description=(
            "For the role named in `application_role_arn`, asks whether it may "
            "s3:DeleteObject, s3:DeleteObjectVersion, s3:PutObject (which overwrites an "
            "existing key, or adds a newer version of it), s3:PutLifecycleConfiguration "
            "(expire the trail) or s3:PutBucketPolicy (lift every protection) on each audit "
            "bucket. It calls iam:SimulatePrincipalPolicy with the bucket policy included when "
            "the scan may; otherwise it reads the role's inline, attached and boundary policies "
            "and the bucket policy and evaluates them itself: an Allow over any part of the "
            "bucket counts, a Deny only when it covers all of it unconditionally, and a "
            f"condition makes the answer unverified. Neither method sees {NOT_EVALUATED}; the "
            "evidence says which method was used."),
        remediation=(
            "Grant the application role s3:PutObject on new keys only where it writes the "
            "trail directly (better: let CloudTrail or a log shipper write), never "
            "s3:Delete*, s3:PutLifecycleConfiguration or s3:PutBucketPolicy; add a bucket "
            "policy that denies those actions to the role, and enable Object Lock."),
        operations=(
            *_DISCOVERY_OPERATIONS,
            _aws(GET_POLICY, "the bucket policy, for the simulation and the analysis"),
            *CONFIG_OPERATIONS,
            *ROLE_OPERATIONS,
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> RoleAccessObservation:
        """Find the audit buckets and decide the role's power over each."""
        scan = Scan.of(ctx, target)
        role = application_role(scan.account)
        if isinstance(role, Unknown):
            return RoleAccessObservation(role, Discovery((), ()), ())
        discovery = audit_buckets(scan)
        return RoleAccessObservation(role, discovery, tuple(
            _role_on_bucket(scan, role, store) for store in discovery.stores))

    def evaluate(self, obs: RoleAccessObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per audit bucket: FAIL when the role may do any of the actions."""
        f = self.findings(target)
        if isinstance(obs.role, Unknown):
            return [f.unverified(BUCKETS_RESOURCE, obs.role, "the application's IAM role")]
        gaps = discovery_gaps(f, obs.discovery, "which buckets hold the audit trail")
        if not obs.buckets:
            return gaps or [f.unverified(BUCKETS_RESOURCE, Unknown(
                UnknownReason.NOT_VISIBLE, "no audit bucket was found",
                "`audit_buckets` in this AWS account of the inventory"), "the audit buckets")]
        return [*gaps, *(_with_source(judge_role_access(
            f, obs.role, b.name, "s3_bucket", f"s3://{b.name}", b.decisions), b)
            for b in obs.buckets)]


def _with_source(finding: Finding, bucket: RoleOnBucket) -> Finding:
    """
    The finding, its evidence naming the Config item when the bucket policy came from one,
    UNVERIFIED findings included: the recorded policy was part of what was judged.
    """
    if not bucket.policy_source:
        return finding
    return replace(finding, evidence={**finding.evidence, "policy_source": bucket.policy_source})


def judge_role_access(f: FindingBuilder[Any], role: str, resource: str, kind: str,
                      trail: str, decisions: Fact[RoleDecisions]) -> Finding:
    """
    The verdict on one audit store from the role's decisions: any allowed action fails, a
    conditional one is unverified, all denied passes. Shared with the log-group check.
    """
    if isinstance(decisions, Unknown):
        return f.unverified(resource, decisions, f"what {role} may do to {resource}")
    allowed = tuple(a for a, d in decisions.decisions.items() if d == "allowed")
    conditional = tuple(a for a, d in decisions.decisions.items() if d == "conditional")
    evidence: dict[str, EvidenceValue] = {
        "role": role, "method": decisions.method, "allowed_actions": allowed,
        "conditional_actions": conditional, "condition_keys": decisions.condition_keys,
        "not_evaluated": NOT_EVALUATED, "trail": trail, "trail_kind": kind,
        "trail_app_can_modify": bool(allowed) if allowed or not conditional else "unknown"}
    if decisions.simulation_unavailable:
        evidence["simulation_unavailable"] = decisions.simulation_unavailable
    if allowed:
        evidence["trail_modifiers"] = (role,)
        return f.failed(resource, f"The application role may {', '.join(allowed)} on the audit "
                        f"store {resource} (by {decisions.method}).", evidence=evidence)
    if conditional:
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{', '.join(conditional)} depend on "
                          f"policy conditions ({', '.join(decisions.condition_keys) or 'unnamed'})"
                          " that are not evaluated", "iam:SimulatePrincipalPolicy")
        return _unverified(f, resource, unknown, f"what {role} may do to {resource}", evidence)
    return f.passed(resource, f"The application role may not {', '.join(decisions.decisions)} "
                    f"on the audit store {resource} (by {decisions.method}).", evidence=evidence)
