"""
Read-only AWS sessions with a call log, and the translation of AWS failures into `Unknown`.

An `AwsSession` hands out botocore clients that refuse, before any request is signed or sent,
every operation that is not a read: only names starting with Describe, Get, List or Head pass,
plus a short allow-list of named reads (`NAMED_READS`). Every call that passes is recorded with
the IAM action it needs, so the permissions a scan used can be audited against what its checks
declare. Credentials come from a named profile or the default credential chain, optionally
through an assumed role; never from the inventory or the command line.

Nothing here logs or formats a request, a response, a header or an error message that AWS
returned: failures are described by their error code and the IAM action alone.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

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

# IAM uses its own prefix for a few services whose boto3 names differ.
_IAM_PREFIXES = {
    "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing", "sesv2": "ses",
    "opensearch": "es", "stepfunctions": "states", "resourcegroupstaggingapi": "tag",
    "docdb": "rds", "neptune": "rds", "s3control": "s3",
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
    """

    service: str
    operation: str
    region: str
    iam_action: str
    """The IAM action the call needs, e.g. `s3:GetEncryptionConfiguration`."""


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
    action = _S3_ACTIONS.get(operation, operation) if prefix == "s3" else operation
    return f"{prefix}:{action}"


class AwsSession:
    """
    A read-only view of one AWS account: cached, guarded clients and the log of their calls.

    The boto3 session is built on first use, so a missing profile surfaces as a failure of the
    check that needed it (see `classify_error`) rather than of the whole scan.
    """

    def __init__(self, account: AwsAccountConfig, *, timeout: float,
                 max_attempts: int = 3) -> None:
        """
        A session on `account` whose clients time out after `timeout` seconds (connect and
        read) and make at most `max_attempts` attempts per call, the first included.
        """
        self.account = account
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.calls: list[ApiCall] = []
        """Every call let through, in order; append-only."""
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None
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
                client = session.client(service, region_name=region,
                                        endpoint_url=self.account.endpoint_url,
                                        config=self._config())
                client.meta.events.register_first(
                    "before-call.*.*", functools.partial(self._guard, service, region))
                self._clients[key] = client
            return self._clients[key]

    def recorded_actions(self) -> set[str]:
        """The distinct IAM actions of every call made so far."""
        with self._lock:
            return {call.iam_action for call in self.calls}

    def _guard(self, service: str, region: str, model: Any, **_: Any) -> None:
        """The `before-call` handler: refuse non-reads, record the rest."""
        operation = str(model.name)
        if not is_read_operation(operation):
            logger.error("refused %s:%s, which is not a read", service, operation)
            raise ReadOnlyViolation(
                f"refused {service}:{operation}: hipaacheck makes read operations only")
        call = ApiCall(service, operation, region, iam_action(service, operation))
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
        }
        if self.account.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        return Config(**options)

    def _boto_session(self) -> boto3.Session:
        """The boto3 session from the profile or default chain; called under the lock."""
        if self._session is None:
            session = boto3.Session(profile_name=self.account.profile)
            if self.account.role_arn:
                _assume_role(session, self.account, self._config())
            self._session = session
        return self._session


def _assume_role(session: boto3.Session, account: AwsAccountConfig, config: Config) -> None:
    """
    Make `session` use the account's role, refreshed by botocore before it expires.

    The STS `AssumeRole` call is made by botocore's own credential fetcher, outside the guarded
    clients: it changes nothing in the inspected account and needs `sts:AssumeRole` from the
    source identity, not from the audit role.
    """
    core = session._session  # boto3 has no public handle for credentials
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


def kms_key_manager(session: AwsSession, region: str, key_id: str) -> Fact[str]:
    """
    Who manages a KMS key: `"CUSTOMER"` or `"AWS"`, or `Unknown` when it cannot be read.

    AWS-managed aliases (`alias/aws/s3`) are recognised without a call. A key ARN is looked up
    in its own region; anything else in `region`.
    """
    if key_id.startswith("alias/aws/") or ":alias/aws/" in key_id:
        return "AWS"
    if key_id.startswith("arn:") and key_id.count(":") >= 5:
        region = key_id.split(":")[3] or region
    try:
        client = session.client("kms", region)
        metadata = client.describe_key(KeyId=key_id)["KeyMetadata"]
    except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
        if error_code(exc) == "NotFoundException":
            return Unknown(UnknownReason.NOT_VISIBLE, "the KMS key was not found",
                           needs="kms:DescribeKey on the key (it may be in another account)")
        return classify_error(exc, "kms:DescribeKey")
    manager = metadata.get("KeyManager")
    if manager not in ("CUSTOMER", "AWS"):
        return Unknown(UnknownReason.UNPARSEABLE, "DescribeKey did not report the key manager")
    return str(manager)
