"""
S3 bucket policies and lifecycle rules read from AWS Config's recorded configuration items,
up to 100 buckets per call, where the account opts in and Config can be trusted to be current.

This is the account-scale read that Cloud Custodian's `source: config` mode makes. It is off
unless the account sets `use_aws_config`: Config's items are taken as complete, so a policy or
lifecycle rule that Config did not record (its role denied by a bucket policy, recording lag)
would count as none. Where it is on, a region's items are used only when:

- `DescribeConfigurationRecorders` shows a customer-managed recorder (service-linked ones,
  named `AWSConfigurationRecorderFor...`, scoped `INTERNAL` or carrying a service principal,
  are ignored) whose recording group covers `AWS::S3::Bucket` (all supported types, the type
  named under an inclusion strategy, or not excluded under an exclusion strategy) and whose
  recording mode is CONTINUOUS for S3 buckets (an absent mode is continuous, as the API
  documents; an empty mode, a mode without a frequency, a DAILY default, or any override
  covering S3 buckets that is not CONTINUOUS is not trusted);
- `DescribeConfigurationRecorderStatus` shows that recorder recording, with a last status of
  SUCCESS (PENDING, FAILURE or none is not trusted), no last error code, and a last start
  time. Only items captured at or after that start are used: an item captured before the
  recorder's latest start may predate changes made while it was stopped.

That verdict is memoised per account and region. Any failure of those reads (denied,
throttled, not supported) means "read the buckets directly": it is logged at debug level and
never makes a finding UNVERIFIED by itself.

In a trusted region, the first request for a bucket's recorded item fetches the items of every
listed bucket of that region, in chunks of 100 (`BatchGetResourceConfig`, resource type
`AWS::S3::Bucket`, resource id = bucket name), once per scan, and memoises each bucket's item.
A bucket whose key comes back unprocessed, that is missing from the answer, whose item is not
recorded (`ResourceDeleted`, `ResourceNotRecorded`, `ResourceDeletedNotRecorded`), was recorded
daily or captured before the recorder's last start, or whose chunk's call failed, has no
recorded item: its checks read it directly.

An item carries more of the bucket's configuration than the checks need (its tags, ACL,
logging, notification and public access block settings). hipaacheck keeps only the bucket
policy and the lifecycle rules from it; the rest is dropped when the item is parsed and is
never logged, stored or reported.

Config's formats differ from the S3 API's, and are converted to the shapes the direct reads
produce, so the checks judge both alike:

- `supplementaryConfiguration` values are JSON strings (sometimes encoded twice) or objects;
- `BucketPolicy` is `{"policyText": <the policy JSON, or null when the bucket has none>}`;
- `BucketLifecycleConfiguration` is `{"rules": [...]}` with lowerCamel fields (`id`, `status`,
  `prefix`, `filter.predicate`, `expirationInDays`, `expirationDate`,
  `noncurrentVersionExpirationInDays`, ...), where -1 (the AWS SDK's default) means "not set";
  each rule becomes an S3 API rule (`ID`, `Status`, `Filter`, `Expiration`,
  `NoncurrentVersionExpiration`).

Assumption: Config records `BucketPolicy` for every bucket (null text when there is none) and
leaves out `BucketLifecycleConfiguration` when the bucket has no lifecycle rules. So an item
that is recorded (`OK` or `ResourceDiscovered`) and carries `BucketPolicy` is complete, and a
lifecycle key absent from it means "no lifecycle rules". An item without `BucketPolicy` is not
complete and is used for nothing. Anything that does not parse exactly (an unknown rule field
or filter predicate, a malformed date or number) is never guessed at: that part of the item is
dropped and the bucket is read directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from hipaacheck.checks.aws.collector import Scan
from hipaacheck.clients.aws import error_code
from hipaacheck.model import Operation, System

logger = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_GET = "config:BatchGetResourceConfig"
DESCRIBE_RECORDERS = "config:DescribeConfigurationRecorders"
DESCRIBE_RECORDER_STATUS = "config:DescribeConfigurationRecorderStatus"
BUCKET_TYPE = "AWS::S3::Bucket"
BATCH_SIZE = 100
"""The most resource keys `BatchGetResourceConfig` takes in one call."""
SERVICE_LINKED_PREFIX = "AWSConfigurationRecorderFor"
"""How the names of service-linked recorders begin; they record for an AWS service, not S3."""
CONTINUOUS = "CONTINUOUS"

CONFIG_OPERATIONS: tuple[Operation, ...] = (
    Operation(System.AWS, DESCRIBE_RECORDERS,
              "see whether a continuous AWS Config recorder covers S3 buckets in a region"),
    Operation(System.AWS, DESCRIBE_RECORDER_STATUS,
              "see whether that recorder is recording, succeeded, and when it last started"),
    Operation(System.AWS, BATCH_GET,
              "read recorded bucket policies and lifecycle rules, 100 buckets per call"),
)
"""The reads of the AWS Config path, for the checks that take bucket policies or lifecycles."""

_RECORDED_STATUSES = frozenset({"OK", "ResourceDiscovered"})
_STRATEGIES = frozenset({None, "ALL_SUPPORTED_RESOURCE_TYPES", "INCLUSION_BY_RESOURCE_TYPES",
                         "EXCLUSION_BY_RESOURCE_TYPES"})
_RULE_FIELDS = frozenset({
    "id", "prefix", "status", "filter", "expirationInDays", "expirationDate",
    "expiredObjectDeleteMarker", "noncurrentVersionExpirationInDays",
    "noncurrentVersionExpiration", "transitions", "noncurrentVersionTransitions",
    "abortIncompleteMultipartUpload",
})
"""The lifecycle rule fields Config records; any other field makes the rule unparseable."""
_NONCURRENT_FIELDS = frozenset({"days", "noncurrentDays", "newerNoncurrentVersions"})
_DECODE_DEPTH = 3


class UnparseableItem(ValueError):
    """A part of a Config item that does not parse exactly; the bucket is read directly."""


@dataclass(frozen=True)
class Recorded(Generic[T]):
    """A value taken from an AWS Config item, and when Config captured that item."""

    value: T
    captured: str
    """The item's `configurationItemCaptureTime`, ISO 8601 in UTC (`2026-01-02T03:04:05Z`)."""

    @property
    def source(self) -> str:
        """The evidence value that says the fact was recorded by Config, not read live."""
        return f"AWS Config item captured {self.captured}"


@dataclass(frozen=True)
class RecordedBucket:
    """
    What one bucket's Config item says, converted to the direct reads' shapes.

    `policy` is the bucket policy's JSON text (None inside when the bucket has none);
    `lifecycle` is the bucket's lifecycle rules as S3 API rule objects. Either is None when
    that part of the item could not be used, and the bucket is read directly for it.
    """

    name: str
    captured: str
    policy: Recorded[str | None] | None
    lifecycle: Recorded[tuple[dict[str, Any], ...]] | None


def recorded_bucket(scan: Scan, region: str, name: str,
                    peers: Callable[[], Sequence[str]]) -> RecordedBucket | None:
    """
    The bucket's recorded item, or None when it must be read directly.

    `peers` gives every listed bucket of `region` (called once per region); the first request
    in a region fetches all of their items. None whenever the account has not opted in
    (`use_aws_config`), Config is not trusted in the region, or the bucket has no usable item.
    """
    if not scan.account.use_aws_config:
        return None

    def compute() -> RecordedBucket | None:
        names = region_names(scan, region, peers)
        if name not in names:
            return None
        since = recorder_started(scan, region)
        if since is None:
            return None
        return region_items(scan, region, names, since).get(name)

    return scan.once(("config.item", region, name), compute)


def region_names(scan: Scan, region: str,
                 peers: Callable[[], Sequence[str]]) -> frozenset[str]:
    """The listed buckets of `region` whose items a batch fetches, once per scan."""
    return scan.once(("config.names", region), lambda: frozenset(peers()))


def recorder_started(scan: Scan, region: str) -> datetime | None:
    """
    When the recorder whose S3 bucket items are current in `region` last started; None when
    no recorder there can be trusted. Read once per scan.
    """
    return scan.once(("config.recorder", region), lambda: _read_recorder(scan, region))


def _read_recorder(scan: Scan, region: str) -> datetime | None:
    try:
        client = scan.session.client("config", region)
        recorders = client.describe_configuration_recorders().get("ConfigurationRecorders")
        candidates = s3_recorders(recorders)
        if not candidates:
            logger.debug("AWS Config in %s: no continuous recorder covers S3 buckets", region)
            return None
        statuses = client.describe_configuration_recorder_status().get(
            "ConfigurationRecordersStatus")
    except (ClientError, BotoCoreError) as exc:
        logger.debug("AWS Config in %s: recorder not readable (%s); reading buckets directly",
                     region, error_code(exc) or type(exc).__name__)
        return None
    started = trusted_since(statuses, candidates)
    logger.debug("AWS Config in %s: %s", region,
                 "recorder recording and succeeding, its S3 items since its last start are used"
                 if started else "recorder not recording successfully; reading buckets directly")
    return started


def s3_recorders(recorders: object) -> frozenset[str]:
    """
    The names of the customer-managed recorders (of a `DescribeConfigurationRecorders`
    answer) that record S3 buckets continuously.
    """
    return frozenset(str(r["name"]) for r in _mappings(recorders)
                     if isinstance(r.get("name"), str) and not service_linked(r)
                     and records_s3_continuously(r))


def service_linked(recorder: Mapping[str, Any]) -> bool:
    """
    Whether a recorder (or its status) is service-linked: created by an AWS service for its
    own needs, so what it records says nothing about the account's S3 buckets.
    """
    name = recorder.get("name")
    return ((isinstance(name, str) and name.startswith(SERVICE_LINKED_PREFIX))
            or str(recorder.get("recordingScope") or "").upper() == "INTERNAL"
            or bool(recorder.get("servicePrincipal")))


def records_s3_continuously(recorder: Mapping[str, Any]) -> bool:
    """Whether a recorder (as `DescribeConfigurationRecorders` gives it) records S3 buckets
    on every change."""
    return records_s3(recorder.get("recordingGroup")) and continuous_for_s3(
        recorder.get("recordingMode"))


def records_s3(group: object) -> bool:
    """
    Whether a recording group covers `AWS::S3::Bucket`: an inclusion strategy must name it
    (whatever `allSupported` says), an exclusion must not, and otherwise all supported types
    must be recorded or the type named. An unknown strategy covers nothing.
    """
    if not isinstance(group, Mapping):
        return False
    exclusion = group.get("exclusionByResourceTypes")
    if isinstance(exclusion, Mapping) and BUCKET_TYPE in _types(exclusion.get("resourceTypes")):
        return False
    strategy = group.get("recordingStrategy")
    use_only = strategy.get("useOnly") if isinstance(strategy, Mapping) else None
    named = BUCKET_TYPE in _types(group.get("resourceTypes"))
    if use_only not in _STRATEGIES:
        return False
    if use_only == "INCLUSION_BY_RESOURCE_TYPES":
        return named
    if use_only == "EXCLUSION_BY_RESOURCE_TYPES":
        return True
    return group.get("allSupported") is True or named


def continuous_for_s3(mode: object) -> bool:
    """
    Whether a recording mode records S3 buckets continuously.

    An absent mode does (the API's default, and moto leaves it out). A mode must name its
    default frequency; every override that covers S3 buckets must be CONTINUOUS, and with
    none the default must be.
    """
    if mode is None:
        return True
    if not isinstance(mode, Mapping) or not mode.get("recordingFrequency"):
        return False
    overrides = mode.get("recordingModeOverrides")
    if overrides is not None and not isinstance(overrides, list):
        return False
    covering = []
    for override in overrides or ():
        if not isinstance(override, Mapping):
            return False
        if BUCKET_TYPE in _types(override.get("resourceTypes")):
            covering.append(override.get("recordingFrequency"))
    if covering:
        return all(frequency == CONTINUOUS for frequency in covering)
    return mode.get("recordingFrequency") == CONTINUOUS


def trusted_since(statuses: object, names: frozenset[str]) -> datetime | None:
    """
    The last start of the recorders named `names` whose status (of a
    `DescribeConfigurationRecorderStatus` answer) is trusted; the latest when several are,
    None when none is.
    """
    starts = [started_at(s) for s in _mappings(statuses)
              if s.get("name") in names and not service_linked(s) and recording(s)]
    known = [start for start in starts if start is not None]
    return max(known) if known else None


def recording(status: Mapping[str, Any]) -> bool:
    """
    Whether a recorder status says it is recording, its last recording succeeded
    (`lastStatus` SUCCESS, in any case) and it reports no error code.
    """
    return (status.get("recording") is True
            and str(status.get("lastStatus") or "").upper() == "SUCCESS"
            and not status.get("lastErrorCode"))


def started_at(status: Mapping[str, Any]) -> datetime | None:
    """A recorder status's `lastStartTime` in UTC; None when missing or malformed."""
    return instant(status.get("lastStartTime"))


def _mappings(value: object) -> list[Mapping[str, Any]]:
    """The objects of a list in an answer; none when it is not a list."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _types(value: object) -> tuple[str, ...]:
    """The resource types of a list in an answer; none when it is not a list."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def region_items(scan: Scan, region: str, names: frozenset[str],
                 since: datetime) -> dict[str, RecordedBucket]:
    """
    Every usable recorded item of `names` in `region` captured at or after `since`, by
    bucket; fetched once per scan.
    """
    def compute() -> dict[str, RecordedBucket]:
        ordered = sorted(names)
        items: dict[str, RecordedBucket] = {}
        for start in range(0, len(ordered), BATCH_SIZE):
            items.update(_fetch_chunk(scan, region, ordered[start:start + BATCH_SIZE], since))
        logger.debug("AWS Config in %s: %d of %d buckets have a usable item captured since "
                     "the recorder's last start", region, len(items), len(ordered))
        return items

    return scan.once(("config.items", region), compute)


def _fetch_chunk(scan: Scan, region: str, chunk: Sequence[str],
                 since: datetime) -> dict[str, RecordedBucket]:
    """One `BatchGetResourceConfig` for up to 100 buckets; empty when the call fails."""
    keys = [{"resourceType": BUCKET_TYPE, "resourceId": name} for name in chunk]
    try:
        response = scan.session.client("config", region).batch_get_resource_config(
            resourceKeys=keys)
    except (ClientError, BotoCoreError) as exc:
        logger.debug("AWS Config in %s: batch read failed (%s); %d buckets read directly",
                     region, error_code(exc) or type(exc).__name__, len(chunk))
        return {}
    wanted = set(chunk) - {str(k.get("resourceId")) for k in
                           _mappings(response.get("unprocessedResourceKeys"))}
    found = {}
    for item in _mappings(response.get("baseConfigurationItems")):
        parsed = parse_item(item, region, since)
        if parsed is not None and parsed.name in wanted:
            found[parsed.name] = parsed
    return found


def parse_item(item: Mapping[str, Any], region: str,
               since: datetime | None = None) -> RecordedBucket | None:
    """
    A bucket's Config item in the shapes the direct reads produce; None when the item is not a
    complete, current recording of an S3 bucket in `region`, captured at or after `since`
    (the recorder's last start) when that is given.
    """
    name = item.get("resourceId")
    captured_at = instant(item.get("configurationItemCaptureTime"))
    supplementary = item.get("supplementaryConfiguration")
    if (item.get("resourceType") != BUCKET_TYPE or not isinstance(name, str) or not name
            or item.get("configurationItemStatus") not in _RECORDED_STATUSES
            or item.get("awsRegion", region) != region or captured_at is None
            or (since is not None and captured_at < since)
            or item.get("recordingFrequency", CONTINUOUS) != CONTINUOUS
            or not isinstance(supplementary, Mapping) or "BucketPolicy" not in supplementary):
        return None
    captured = iso_utc(captured_at)
    policy: Recorded[str | None] | None = None
    lifecycle: Recorded[tuple[dict[str, Any], ...]] | None = None
    try:
        policy = Recorded(parse_policy(supplementary["BucketPolicy"]), captured)
    except ValueError:
        logger.debug("AWS Config in %s: a recorded bucket policy does not parse", region)
    try:
        lifecycle = Recorded(parse_lifecycle(supplementary.get("BucketLifecycleConfiguration")),
                             captured)
    except ValueError:
        logger.debug("AWS Config in %s: recorded lifecycle rules do not parse", region)
    return RecordedBucket(name, captured, policy, lifecycle)


def instant(value: object) -> datetime | None:
    """A timestamp (a datetime, or ISO 8601 text) in UTC; None when missing or malformed."""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(when, datetime):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def iso_utc(when: datetime) -> str:
    """A UTC instant as ISO 8601 to the second (`2026-01-02T03:04:05Z`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def capture_time(value: object) -> str | None:
    """An item's capture time as ISO 8601 in UTC, None when it is missing or malformed."""
    when = instant(value)
    return None if when is None else iso_utc(when)


def decode(value: object) -> object:
    """A supplementary configuration value: JSON text (decoded up to three times) or an
    object as it is. Raises ValueError for text that is not JSON."""
    for _ in range(_DECODE_DEPTH):
        if not isinstance(value, str):
            return value
        value = json.loads(value)
    if isinstance(value, str):
        raise UnparseableItem("encoded too many times")
    return value


def parse_policy(value: object) -> str | None:
    """
    The bucket policy's JSON text from `BucketPolicy`, None when the bucket has none.

    The policy text itself may be encoded once more; what is returned is the text of a JSON
    object, as `GetBucketPolicy` gives it. Raises ValueError for anything else.
    """
    document = decode(value)
    if not isinstance(document, Mapping) or "policyText" not in document:
        raise UnparseableItem("no policyText")
    text = document["policyText"]
    if text is None:
        return None
    if not isinstance(text, str):
        raise UnparseableItem("policyText is not text")
    parsed = json.loads(text)
    if isinstance(parsed, str):
        text, parsed = parsed, json.loads(parsed)
    if not isinstance(parsed, Mapping):
        raise UnparseableItem("the policy is not a JSON object")
    return text


def parse_lifecycle(value: object) -> tuple[dict[str, Any], ...]:
    """
    The lifecycle rules of `BucketLifecycleConfiguration` as S3 API rules (`ID`, `Status`,
    `Filter`, `Expiration`, `NoncurrentVersionExpiration`); no rules when the key is absent.
    Raises ValueError for anything that does not parse exactly.
    """
    document = decode(value)
    if document is None:
        return ()
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise UnparseableItem("no rules list")
    return tuple(lifecycle_rule(rule) for rule in document["rules"])


def lifecycle_rule(rule: object) -> dict[str, Any]:
    """One Config lifecycle rule as an S3 API rule; raises ValueError when it does not parse."""
    if not isinstance(rule, Mapping):
        raise UnparseableItem("a rule is not an object")
    if any(key not in _RULE_FIELDS and value is not None for key, value in rule.items()):
        raise UnparseableItem("a rule has an unknown field")
    status, rule_id, prefix = rule.get("status"), rule.get("id"), rule.get("prefix")
    if status not in ("Enabled", "Disabled") or not isinstance(rule_id, str | None) \
            or not isinstance(prefix, str | None):
        raise UnparseableItem("a rule's id, status or prefix is malformed")
    converted: dict[str, Any] = {"ID": rule_id or "", "Status": status}
    if prefix is not None:
        converted["Prefix"] = prefix
    expiration = _expiration(rule)
    if expiration:
        converted["Expiration"] = expiration
    noncurrent = _noncurrent_days(rule)
    if noncurrent is not None:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": noncurrent}
    scope = rule.get("filter")
    if scope is not None:
        if not isinstance(scope, Mapping):
            raise UnparseableItem("a rule's filter is not an object")
        predicate = scope.get("predicate")
        if predicate is not None:
            converted["Filter"] = lifecycle_filter(predicate)
    return converted


def _expiration(rule: Mapping[str, Any]) -> dict[str, Any]:
    expiration: dict[str, Any] = {}
    days = days_field(rule.get("expirationInDays"))
    if days is not None:
        expiration["Days"] = days
    date = rule.get("expirationDate")
    if date is not None:
        if not isinstance(date, str):
            raise UnparseableItem("expirationDate is not a date")
        expiration["Date"] = datetime.fromisoformat(date)
    marker = rule.get("expiredObjectDeleteMarker")
    if marker is True:
        expiration["ExpiredObjectDeleteMarker"] = True
    elif marker not in (None, False):
        raise UnparseableItem("expiredObjectDeleteMarker is not a boolean")
    return expiration


def _noncurrent_days(rule: Mapping[str, Any]) -> int | None:
    days = days_field(rule.get("noncurrentVersionExpirationInDays"))
    block = rule.get("noncurrentVersionExpiration")
    if block is None:
        return days
    if not isinstance(block, Mapping) or any(k not in _NONCURRENT_FIELDS for k in block):
        raise UnparseableItem("noncurrentVersionExpiration is malformed")
    inner = [d for d in (days_field(block.get("days")), days_field(block.get("noncurrentDays")))
             if d is not None]
    if len(set(inner)) > 1 or (days is not None and inner and inner[0] != days):
        raise UnparseableItem("noncurrent expiry days disagree")
    return days if days is not None else (inner[0] if inner else None)


def days_field(value: object) -> int | None:
    """A day count: None when unset (absent, null, or the SDK defaults -1 and 0)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise UnparseableItem("a day count is not a number of days")
    return value if value > 0 else None


def lifecycle_filter(predicate: object) -> dict[str, Any]:
    """A Config lifecycle filter predicate as an S3 API `Filter`; ValueError when unknown."""
    if not isinstance(predicate, Mapping):
        raise UnparseableItem("a filter predicate is not an object")
    kind = predicate.get("type")
    if kind == "LifecycleAndOperator":
        operands = predicate.get("operands")
        if not isinstance(operands, list):
            raise UnparseableItem("an and-filter has no operands")
        merged: dict[str, Any] = {}
        for operand in operands:
            if isinstance(operand, Mapping) and operand.get("type") == kind:
                raise UnparseableItem("nested and-filters")
            part = lifecycle_filter(operand)
            if "Tag" in part:
                merged.setdefault("Tags", []).append(part["Tag"])
            else:
                merged.update(part)
        return {"And": merged}
    return _simple_filter(kind, predicate)


def _simple_filter(kind: object, predicate: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "LifecyclePrefixPredicate" and isinstance(predicate.get("prefix"), str | None):
        return {"Prefix": predicate.get("prefix") or ""}
    tag = predicate.get("tag")
    if kind == "LifecycleTagPredicate" and isinstance(tag, Mapping) \
            and isinstance(tag.get("key"), str) and isinstance(tag.get("value"), str | None):
        return {"Tag": {"Key": tag["key"], "Value": tag.get("value") or ""}}
    for name, field in (("LifecycleObjectSizeGreaterThanPredicate", "objectSizeGreaterThan"),
                        ("LifecycleObjectSizeLessThanPredicate", "objectSizeLessThan")):
        size = predicate.get(field)
        if kind == name and isinstance(size, int) and not isinstance(size, bool):
            return {field[0].upper() + field[1:]: size}
    raise UnparseableItem("an unknown filter predicate")
