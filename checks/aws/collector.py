"""
The shared AWS collector: which regions a scan covers, memoised listings and reads, and the
inventory settings the AWS checks read.

Every AWS check reads through these helpers, so each API result is fetched once per scan and
shared through `ctx.memo`, whatever the order the runner starts the checks in. A listing that
fails is memoised as `Unknown` too: the checks that need it all report UNVERIFIED naming the
action, and none of them retries it or reads its absence as "there are none".

Fan-outs over many resources run on the session's bounded pool (`AwsSession.map`); a memoised
computation is always a single read or one paginated listing, never a fan-out, so a thread that
waits on the memo never holds up the pool that would finish the computation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hipaacheck.check import CheckContext
from hipaacheck.clients.aws import (
    AwsSession,
    KeyInfo,
    classify_error,
    error_code,
    is_aws_managed_alias,
    key_region,
    kms_key_info,
    paginate,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.model import (
    Fact,
    Operation,
    System,
    Target,
    Unknown,
    UnknownReason,
)

T = TypeVar("T")

ALL_REGIONS = frozenset({"all", "*"})
"""A `regions` entry that stands for every region enabled in the account."""
FALLBACK_REGION = "us-east-1"
DESCRIBE_REGIONS = "ec2:DescribeRegions"
DESCRIBE_KEY = "kms:DescribeKey"
GET_CALLER_IDENTITY = "sts:GetCallerIdentity"

REGIONS_OPERATION = Operation(System.AWS, DESCRIBE_REGIONS,
                              "expand `regions: [all]` into the account's enabled regions")
KEY_OPERATION = Operation(System.AWS, DESCRIBE_KEY,
                          "tell customer-managed from AWS-managed keys")



@dataclass(frozen=True)
class AwsScope:
    """
    What the inventory says about an account's data beyond where to find it.

    These settings are read defensively from the account's configuration (see `scope_of`), so
    an inventory schema without them gives the defaults: every store may hold PHI, audit
    records are CloudTrail's stores plus log groups named like audit logs, and no second
    region is required for backups.
    """

    phi_resources: tuple[str, ...] = ("*",)
    """Glob patterns over resource names and ARNs that hold PHI; `*` (every store) by default."""
    audit_buckets: tuple[str, ...] = ()
    """Bucket names or patterns holding audit records, besides CloudTrail's own buckets."""
    audit_log_groups: tuple[str, ...] = ()
    """Log-group names or patterns holding audit records, besides CloudTrail's own groups."""
    backup_copy_regions: tuple[str, ...] = ()
    """Regions where copies of PHI backups must exist; empty means no such requirement."""

    def holds_phi(self, *names: str | None) -> bool:
        """Whether a resource known by any of `names` (name, ARN) is in the PHI scope."""
        return matches(self.phi_resources, names)


def matches(patterns: Iterable[str], names: Iterable[str | None]) -> bool:
    """Whether any of `names` matches any glob of `patterns`, case-insensitively."""
    folded = [n.lower() for n in names if n]
    return any(fnmatch.fnmatchcase(name, pattern.lower())
               for pattern in patterns for name in folded)


def _strings(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


def scope_of(account: AwsAccountConfig) -> AwsScope:
    """
    The account's `AwsScope`, each setting read with `getattr` and a default.

    NOTE: the inventory schema (hipaacheck/config.py) does not have these fields yet; reading
    them defensively lets the checks work before and after they are added.
    """
    base = AwsScope()
    return AwsScope(
        phi_resources=_strings(getattr(account, "phi_resources", None), base.phi_resources),
        audit_buckets=_strings(getattr(account, "audit_buckets", None), base.audit_buckets),
        audit_log_groups=_strings(getattr(account, "audit_log_groups", None),
                                  base.audit_log_groups),
        backup_copy_regions=_strings(getattr(account, "backup_copy_regions", None),
                                     base.backup_copy_regions))


def account_of(target: Target) -> AwsAccountConfig:
    """The AWS account configuration an AWS target carries."""
    if not isinstance(target.config, AwsAccountConfig):
        raise TypeError(f"target {target.id} carries no AWS account configuration")
    return target.config


@dataclass(frozen=True)
class Scan:
    """One check's handle on one account: the context, the account and its session."""

    ctx: CheckContext
    account: AwsAccountConfig
    session: AwsSession

    @classmethod
    def of(cls, ctx: CheckContext, target: Target) -> Scan:
        """The handle for an AWS target, its session shared with every other check."""
        account = account_of(target)
        return cls(ctx, account, ctx.clients.aws(account))

    @property
    def scope(self) -> AwsScope:
        """The account's PHI and audit scope."""
        return scope_of(self.account)

    def once(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """`compute()` once per scan and account under `key`."""
        return self.ctx.memo.get(("aws", self.account.name, *key), compute)

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """`fn` over `items` on the session's bounded pool, in order."""
        return self.session.map(fn, items)


def home_region(account: AwsAccountConfig) -> str:
    """The first concrete configured region: where account-wide calls are made."""
    return next((r for r in account.regions if r not in ALL_REGIONS), FALLBACK_REGION)


def scan_regions(scan: Scan) -> Fact[tuple[str, ...]]:
    """
    The regions to scan: the configured ones, with `all` expanded to the enabled regions.
    """
    configured = tuple(dict.fromkeys(r for r in scan.account.regions if r not in ALL_REGIONS))
    if len(configured) == len(scan.account.regions):
        return configured

    def compute() -> Fact[tuple[str, ...]]:
        enabled = listing(scan, "ec2", home_region(scan.account), "describe_regions",
                          "Regions", DESCRIBE_REGIONS)
        if isinstance(enabled, Unknown):
            return enabled
        names = tuple(sorted(str(r["RegionName"]) for r in enabled if r.get("RegionName")))
        return tuple(dict.fromkeys(configured + names))

    return scan.once(("regions",), compute)


def listing(scan: Scan, service: str, region: str, method: str, result_key: str, action: str,
            **params: Any) -> Fact[tuple[Any, ...]]:
    """
    Every item of a paginated listing (a boto3 method name), fetched once per scan.

    The result is the raw items, or the `Unknown` that the first failure maps to.
    """
    def compute() -> Fact[tuple[Any, ...]]:
        try:
            return tuple(paginate(scan.session.client(service, region), method, result_key,
                                  **params))
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return classify_error(exc, action)

    return scan.once(("listing", service, region, method, _frozen(params)), compute)


def read(scan: Scan, service: str, region: str, method: str, action: str, *,
         absent: Mapping[str, Any] | None = None, **params: Any) -> Fact[Any]:
    """
    One read (not memoised): the response, `absent[code]` for an error code that means "not
    configured", or `Unknown`.
    """
    try:
        return getattr(scan.session.client(service, region), method)(**params)
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        code = error_code(exc)
        if absent and code is not None and code in absent:
            return absent[code]
        return classify_error(exc, action)


def read_once(scan: Scan, service: str, region: str, method: str, action: str, *,
              absent: Mapping[str, Any] | None = None, **params: Any) -> Fact[Any]:
    """`read`, memoised per scan by service, region, method and parameters."""
    return scan.once(("read", service, region, method, _frozen(params)),
                     lambda: read(scan, service, region, method, action, absent=absent,
                                  **params))


def _frozen(params: Mapping[str, Any]) -> tuple[Any, ...]:
    def freeze(value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple(sorted((k, freeze(v)) for k, v in value.items()))
        if isinstance(value, list | tuple):
            return tuple(freeze(v) for v in value)
        return value
    return freeze(params)  # type: ignore[no-any-return]


def key_info(scan: Scan, region: str, key_id: str) -> Fact[KeyInfo]:
    """A KMS key's metadata (`DescribeKey`), once per scan and key."""
    where = key_region(key_id, region)
    return scan.once(("kms.key", where, key_id),
                     lambda: kms_key_info(scan.session, where, key_id))


def key_manager(scan: Scan, region: str, key_id: str | None) -> Fact[str]:
    """
    Who manages the key a resource names: `"CUSTOMER"` or `"AWS"`, or `Unknown`.

    No key (a service-owned or AWS-managed default) and `alias/aws/...` are AWS-managed
    without a call.
    """
    if not key_id or is_aws_managed_alias(key_id):
        return "AWS"
    info = key_info(scan, region, key_id)
    return info if isinstance(info, Unknown) else info.manager


def account_id(scan: Scan) -> Fact[str]:
    """The account's id from `GetCallerIdentity`, for ARNs that listings do not carry."""
    def compute() -> Fact[str]:
        identity = read(scan, "sts", home_region(scan.account), "get_caller_identity",
                        GET_CALLER_IDENTITY)
        if isinstance(identity, Unknown):
            return identity
        value = identity.get("Account")
        if not isinstance(value, str):
            return Unknown(UnknownReason.UNPARSEABLE, "GetCallerIdentity reported no account")
        return value

    return scan.once(("account_id",), compute)
