"""
Read-only AWS sessions with a call log, and the translation of AWS failures into `Unknown`.

An `AwsSession` hands out botocore clients that refuse, before any request is signed or sent,
every operation that is not a read: only names starting with Describe, Get, List or Head pass,
plus a short allow-list of named reads (`NAMED_READS`). Every call that passes is recorded with
the IAM action it needs, so the permissions a scan used can be audited against what its checks
declare. Credentials come from a named profile or the default credential chain, optionally
through an assumed role; never from the inventory or the command line.

Sessions are built on botocore directly and share one model loader per process: the API
models are read-only data files, and parsing them again for every session and client cost most
of a small scan's time. `AwsSession.map` runs per-resource reads on a small, bounded pool.

Nothing here logs or formats a request, a response, a header or an error message that AWS
returned: failures are described by their error code and the IAM action alone.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointResolutionError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    UnknownEndpointError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.loaders import Loader, create_loader
from botocore.parsers import ResponseParserError

from hipaacheck.config import AwsAccountConfig
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.model import Fact, Unknown, UnknownReason

logger = logging.getLogger(__name__)

READ_PREFIXES: tuple[str, ...] = ("Describe", "Get", "List", "Head")
"""Operation-name prefixes that AWS reserves for reads."""

NAMED_READS: frozenset[str] = frozenset({
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "FilterLogEvents",
    "LookupEvents",
    "BatchGetResourceConfig",
})
"""Operations that only read although their names do not say so."""

_ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "AllAccessDisabled",
})
_CREDENTIALS_REJECTED_CODES = frozenset({
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "InvalidAccessKeyId", "AuthFailure", "ExpiredToken", "ExpiredTokenException",
    "RequestExpired",
})
_THROTTLED_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown",
    "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
})
_NOT_ENABLED_CODES = frozenset({"OptInRequired", "SubscriptionRequiredException"})
_UNSUPPORTED_CODES = frozenset({
    "UnsupportedOperation", "UnsupportedOperationException", "InvalidAction",
    "UnknownOperationException", "NotImplemented",
})
_SERVER_ERROR_CODES = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerException",
    "ServiceUnavailable", "ServiceUnavailableException", "ServiceException",
})
_PAGE_TOKENS = frozenset({
    "NextToken", "nextToken", "Marker", "ContinuationToken", "StartingToken", "NextMarker",
    "ExclusiveStartTableName", "PaginationToken", "ExclusiveStartKey",
})
"""Request parameters that continue a listing rather than name what is read."""
_PAGE_SIZES = frozenset({
    "MaxResults", "MaxRecords", "MaxItems", "MaxKeys", "MaxBuckets", "Limit", "PageSize",
    "maxResults", "limit", "ResourcesPerPage", "TagsPerPage", "PaginationConfig",
})
"""Request parameters that size a page rather than name what is read."""

R = TypeVar("R")
I = TypeVar("I")

# IAM uses its own prefix for a few services whose boto3 names differ.
_IAM_PREFIXES = {
    "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing", "sesv2": "ses",
    "opensearch": "es", "stepfunctions": "states", "resourcegroupstaggingapi": "tag",
    "docdb": "rds", "neptune": "rds", "s3control": "s3", "efs": "elasticfilesystem",
}

# S3 is the service whose IAM actions most often differ from its operation names.
_S3_ACTIONS = {
    "ListBuckets": "ListAllMyBuckets",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "HeadObject": "GetObject",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "GetBucketLifecycle": "GetLifecycleConfiguration",
    "GetBucketReplication": "GetReplicationConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "GetBucketCors": "GetBucketCORS",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "GetBucketAnalyticsConfiguration": "GetAnalyticsConfiguration",
    "GetBucketInventoryConfiguration": "GetInventoryConfiguration",
    "GetBucketMetricsConfiguration": "GetMetricsConfiguration",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "GetObjectRetention": "GetObjectRetention",
}


@dataclass(frozen=True)
class ApiCall:
    """
    One AWS API call a session let through, named by service, operation, region and IAM action.

    `subject` names what the call read (`Bucket=b`, or `` for an unqualified listing) and
    `continued` marks a later page of a listing, so a scan can prove it read nothing twice.
    Both stay in memory: they are for the scan's own audit, never for a log or a report.
    """

    service: str
    operation: str
    region: str
    iam_action: str
    """The IAM action the call needs, e.g. `s3:GetEncryptionConfiguration`."""
    subject: str = field(default="", compare=False)
    continued: bool = field(default=False, compare=False)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two calls the same read: service, region, operation and subject."""
        return (self.service, self.region, self.operation, self.subject)


def is_read_operation(operation: str) -> bool:
    """
    Whether an API operation name (`GetBucketEncryption`) is one a scan may make.
    """
    return operation.startswith(READ_PREFIXES) or operation in NAMED_READS


def iam_action(service: str, operation: str) -> str:
    """
    The IAM action an operation of a boto3 service needs, e.g. `("s3", "ListBuckets")` gives
    `s3:ListAllMyBuckets`.
    """
    prefix = _IAM_PREFIXES.get(service, service)
    if service in ("apigateway", "apigatewayv2"):
        # API Gateway's control plane is authorised per HTTP method: every read is apigateway:GET.
        return "apigateway:GET" if is_read_operation(operation) else f"apigateway:{operation}"
    action = _S3_ACTIONS.get(operation, operation) if prefix == "s3" else operation
    return f"{prefix}:{action}"


def _subject(params: Mapping[str, Any]) -> tuple[str, bool]:
    """What a call's parameters name, and whether they continue an earlier page."""
    continued = any(params.get(name) for name in _PAGE_TOKENS)
    parts = []
    for name in sorted(params):
        value = params[name]
        if name in _PAGE_TOKENS or name in _PAGE_SIZES:
            continue
        if isinstance(value, str | int | bool):
            parts.append(f"{name}={value}")
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            parts.append(f"{name}={','.join(value)}")
        elif name == "resourceKeys" and isinstance(value, list | tuple) and value:
            parts.append(f"{name}={_key_range(value)}")
    return ";".join(parts), continued


def _key_range(keys: list[Any] | tuple[Any, ...]) -> str:
    """
    A `BatchGetResourceConfig` batch as `first..last (n)` of its resource ids: the chunks of
    one sorted listing differ, so two of them are never taken for the same read.
    """
    ids = [str(k.get("resourceId")) if isinstance(k, Mapping) else "?" for k in keys]
    return f"{ids[0]}..{ids[-1]} ({len(ids)})"


_LOADERS: dict[str, Loader] = {}
_LOADERS_LOCK = threading.Lock()


def _shared_loader(data_path: str | None) -> Loader:
    """
    The process's botocore model loader for `data_path` (AWS_DATA_PATH), created once.

    NOTE: module-level on purpose: it caches botocore's read-only API model files, never
    anything about an account, and each session parsing them anew cost seconds per scan.
    """
    key = data_path or ""
    with _LOADERS_LOCK:
        if key not in _LOADERS:
            _LOADERS[key] = create_loader(data_path)
        return _LOADERS[key]


def new_botocore_session(profile: str | None = None) -> botocore.session.Session:
    """A botocore session on `profile` (or the default chain) using the shared model loader."""
    session = botocore.session.Session(profile=profile)
    session.register_component("data_loader",
                               _shared_loader(session.get_config_variable("data_path")))
    return session


_IN_POOL = threading.local()


class AwsSession:
    """
    A read-only view of one AWS account: cached, guarded clients and the log of their calls.

    The botocore session is built on first use, so a missing profile surfaces as a failure of
    the check that needed it (see `classify_error`) rather than of the whole scan.
    """

    def __init__(self, account: AwsAccountConfig, *, timeout: float,
                 max_attempts: int = 3, max_workers: int = 8) -> None:
        """
        A session on `account` whose clients time out after `timeout` seconds (connect and
        read) and make at most `max_attempts` attempts per call, the first included.
        `max_workers` bounds the threads of each `map`.
        """
        self.account = account
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_workers = max(1, max_workers)
        self.calls: list[ApiCall] = []
        """Every call let through, in order; append-only."""
        self._lock = threading.Lock()
        self._session: botocore.session.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        """
        The guarded botocore client for `service` in `region`, created once and shared.

        Any call to an operation that is not a read raises `ReadOnlyViolation` before the
        request is signed or sent. Raises `ProfileNotFound` when the account's profile is missing.
        """
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                session = self._boto_session()
                client = session.create_client(service, region_name=region,
                                               endpoint_url=self.account.endpoint_url,
                                               config=self._config())
                client.meta.events.register_first("before-parameter-build.*.*", _note_subject)
                client.meta.events.register_first(
                    "before-call.*.*", functools.partial(self._guard, service, region))
                self._clients[key] = client
            return self._clients[key]

    def recorded_actions(self) -> set[str]:
        """The distinct IAM actions of every call made so far."""
        with self._lock:
            return {call.iam_action for call in self.calls}

    def map(self, fn: Callable[[I], R], items: Iterable[I]) -> list[R]:
        """
        `fn` over `items`, in order, on at most `max_workers` threads.

        A `map` called from inside another runs inline on its caller's thread, so nesting
        never multiplies the threads and never waits on a pool it occupies. `fn` must not
        raise for an expected AWS failure: it returns `Unknown` instead.
        """
        work = list(items)
        if len(work) <= 1 or getattr(_IN_POOL, "active", False):
            return [fn(item) for item in work]

        def run(item: I) -> R:
            _IN_POOL.active = True
            try:
                return fn(item)
            finally:
                _IN_POOL.active = False

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(work)),
                                thread_name_prefix="hipaacheck-aws") as pool:
            return list(pool.map(run, work))

    def _guard(self, service: str, region: str, model: Any, context: dict[str, Any] | None = None,
               **_: Any) -> None:
        """The `before-call` handler: refuse non-reads, record the rest."""
        operation = str(model.name)
        if not is_read_operation(operation):
            logger.error("refused %s:%s, which is not a read", service, operation)
            raise ReadOnlyViolation(
                f"refused {service}:{operation}: hipaacheck makes read operations only")
        subject, continued = (context or {}).get("hipaacheck_subject", ("", False))
        call = ApiCall(service, operation, region, iam_action(service, operation), subject,
                       continued)
        with self._lock:
            self.calls.append(call)

    def _config(self) -> Config:
        """Timeouts, adaptive retries, and path-style S3 addressing for local endpoints."""
        options: dict[str, Any] = {
            "connect_timeout": self.timeout,
            "read_timeout": self.timeout,
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts the
            # first attempt too, which is what `max_attempts` means here.
            "retries": {"mode": "adaptive", "total_max_attempts": self.max_attempts},
            "user_agent_extra": "hipaacheck",
            # Several checks may fan out on one client at once: room for each map's threads.
            "max_pool_connections": 4 * self.max_workers,
        }
        if self.account.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        return Config(**options)

    def _boto_session(self) -> botocore.session.Session:
        """The botocore session from the profile or default chain; called under the lock."""
        if self._session is None:
            session = new_botocore_session(self.account.profile)
            if self.account.role_arn:
                _assume_role(session, self.account, self._config())
            self._session = session
        return self._session


def _note_subject(params: Mapping[str, Any], context: dict[str, Any] | None = None,
                  **_: Any) -> None:
    """The `before-parameter-build` handler: note what the call names for the call log."""
    if context is not None:
        context["hipaacheck_subject"] = _subject(params)


def _assume_role(core: botocore.session.Session, account: AwsAccountConfig,
                 config: Config) -> None:
    """
    Make `core` use the account's role, refreshed by botocore before it expires.

    The STS `AssumeRole` call is made by botocore's own credential fetcher, outside the guarded
    clients: it changes nothing in the inspected account and needs `sts:AssumeRole` from the
    source identity, not from the audit role.
    """
    source = core.get_credentials()
    if source is None:
        # NOTE: without source credentials the first call raises NoCredentialsError, which
        # classify_error reports; there is nothing to assume the role with.
        return
    extra: dict[str, Any] = {"RoleSessionName": "hipaacheck"}
    if account.external_id:
        extra["ExternalId"] = account.external_id.reveal()
    creator = functools.partial(core.create_client, endpoint_url=account.endpoint_url,
                                config=config)
    fetcher = AssumeRoleCredentialFetcher(creator, source, account.role_arn, extra_args=extra)
    # botocore has no public setter for refreshable credentials on a session.
    core._credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role")


def classify_error(exc: Exception, iam_action: str) -> Unknown:
    """
    The `Unknown` for an AWS failure of a call needing `iam_action`; re-raise anything else.

    Messages name the error code and the action, never AWS's own message, which can quote
    request details.
    """
    if isinstance(exc, ClientError):
        return _classify_client_error(exc, iam_action)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return Unknown(UnknownReason.TIMEOUT, f"the AWS endpoint timed out on {iam_action}",
                       needs="network access to the AWS endpoint")
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return Unknown(UnknownReason.UNREACHABLE,
                       f"the AWS endpoint could not be reached for {iam_action}",
                       needs="network access to the AWS endpoint")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return Unknown(UnknownReason.ACCESS_DENIED, "no AWS credentials found",
                       needs="AWS credentials from a profile or the default credential chain")
    if isinstance(exc, ProfileNotFound):
        return Unknown(UnknownReason.ACCESS_DENIED, "the configured AWS profile was not found",
                       needs="the AWS profile named in the inventory")
    if isinstance(exc, ResponseParserError):
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the endpoint's answer to {iam_action} could not be parsed",
                       needs="a healthy AWS endpoint")
    if isinstance(exc, InvalidRegionError | UnknownEndpointError | EndpointResolutionError |
                  NoRegionError):
        return Unknown(UnknownReason.NOT_SUPPORTED,
                       f"the region is not valid or not served for {iam_action}")
    raise exc


def _classify_client_error(exc: ClientError, iam_action: str) -> Unknown:
    """The `Unknown` for an error response from AWS; re-raise codes that are not access."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if exc.operation_name == "AssumeRole":
        return Unknown(UnknownReason.ACCESS_DENIED,
                       f"the audit role could not be assumed ({code})", needs="sts:AssumeRole")
    if code in _ACCESS_DENIED_CODES:
        return Unknown(UnknownReason.ACCESS_DENIED, f"access to {iam_action} was denied ({code})",
                       needs=iam_action)
    if code in _CREDENTIALS_REJECTED_CODES:
        return Unknown(UnknownReason.ACCESS_DENIED,
                       f"AWS rejected the credentials on {iam_action} ({code})",
                       needs="valid AWS credentials")
    if code in _THROTTLED_CODES:
        return Unknown(UnknownReason.THROTTLED,
                       f"AWS throttled {iam_action} after retries ({code})")
    if code in _NOT_ENABLED_CODES:
        return Unknown(UnknownReason.NOT_SUPPORTED,
                       f"the service or region is not enabled for {iam_action} ({code})")
    if code in _UNSUPPORTED_CODES:
        return Unknown(UnknownReason.NOT_SUPPORTED,
                       f"the endpoint does not support {iam_action} ({code})")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _SERVER_ERROR_CODES or (isinstance(status, int) and status >= 500):
        # A server error outlasting the retries: nothing was observed, and the check is sound.
        return Unknown(UnknownReason.UNREACHABLE,
                       f"AWS answered {iam_action} with a server error ({code or status})",
                       needs="a healthy AWS endpoint")
    raise exc


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a `ClientError`, or None for any other exception."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[Any]:
    """
    Every item under `result_key` across all pages of `operation` (its boto3 method name).

    Operations without a paginator are called once.
    """
    if not client.can_paginate(operation):
        return list(getattr(client, operation)(**kwargs).get(result_key, []))
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(result_key, []))
    return items


@dataclass(frozen=True)
class KeyInfo:
    """
    The metadata of one KMS key that the encryption checks judge.

    `manager` is `"CUSTOMER"` or `"AWS"`; `state` is KMS's KeyState (`Enabled`, `Disabled`,
    `PendingDeletion`, ...); `origin` is `AWS_KMS`, `EXTERNAL`, `AWS_CLOUDHSM` or
    `EXTERNAL_KEY_STORE`; `spec` is the KeySpec (`SYMMETRIC_DEFAULT`, ...).
    """

    arn: str
    manager: str
    state: str
    origin: str = "AWS_KMS"
    spec: str = "SYMMETRIC_DEFAULT"
    deletion_date: str | None = None

    @property
    def rotatable(self) -> bool:
        """Whether KMS can rotate the key automatically (symmetric, KMS-generated material)."""
        return self.spec == "SYMMETRIC_DEFAULT" and self.origin == "AWS_KMS"


def key_region(key_id: str, region: str) -> str:
    """The region to look a key up in: a key ARN's own region, else `region`."""
    if key_id.startswith("arn:") and key_id.count(":") >= 5:
        return key_id.split(":")[3] or region
    return region


def kms_key_info(session: AwsSession, region: str, key_id: str) -> Fact[KeyInfo]:
    """
    The metadata of a KMS key from `DescribeKey`, or `Unknown` when it cannot be read.

    A key ARN is looked up in its own region; anything else (key id, alias) in `region`.
    """
    try:
        client = session.client("kms", key_region(key_id, region))
        metadata = client.describe_key(KeyId=key_id)["KeyMetadata"]
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "NotFoundException":
            return Unknown(UnknownReason.NOT_VISIBLE, "the KMS key was not found",
                           needs="kms:DescribeKey on the key (it may be in another account)")
        return classify_error(exc, "kms:DescribeKey")
    manager = metadata.get("KeyManager")
    state = metadata.get("KeyState")
    if manager not in ("CUSTOMER", "AWS") or not isinstance(state, str):
        return Unknown(UnknownReason.UNPARSEABLE,
                       "DescribeKey did not report the key manager and state")
    deletion = metadata.get("DeletionDate")
    return KeyInfo(
        arn=str(metadata.get("Arn") or key_id), manager=str(manager), state=state,
        origin=str(metadata.get("Origin") or "AWS_KMS"),
        spec=str(metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
                 or "SYMMETRIC_DEFAULT"),
        deletion_date=deletion.date().isoformat() if hasattr(deletion, "date") else None)


def is_aws_managed_alias(key_id: str) -> bool:
    """Whether `key_id` names an AWS-managed key by its alias (`alias/aws/s3`)."""
    return key_id.startswith("alias/aws/") or ":alias/aws/" in key_id


def kms_key_manager(session: AwsSession, region: str, key_id: str) -> Fact[str]:
    """
    Who manages a KMS key: `"CUSTOMER"` or `"AWS"`, or `Unknown` when it cannot be read.

    AWS-managed aliases (`alias/aws/s3`) are recognised without a call. A key ARN is looked up
    in its own region; anything else in `region`.
    """
    if is_aws_managed_alias(key_id):
        return "AWS"
    info = kms_key_info(session, region, key_id)
    return info if isinstance(info, Unknown) else info.manager
