"""
S3 bucket policies and lifecycle rules read from AWS Config's recorded configuration items,
up to 100 buckets per call, where Config can be trusted to be current.

This is the account-scale read that Cloud Custodian's `source: config` mode makes. A region's
items are used only when `DescribeConfigurationRecorders` shows a recorder that records
`AWS::S3::Bucket` (all supported types, or S3 buckets named, and not excluded) at CONTINUOUS
frequency (an absent recording mode is continuous; a DAILY recorder, or a DAILY override for
S3 buckets, can be a day stale), and `DescribeConfigurationRecorderStatus` shows that recorder
recording with a last status other than FAILURE. That verdict is memoised per account and
region. Any failure of those reads (denied, throttled, not supported) means "read the buckets
directly": it is logged at debug level and never makes a finding UNVERIFIED by itself.

In a trusted region, the first request for a bucket's recorded item fetches the items of every
listed bucket of that region, in chunks of 100 (`BatchGetResourceConfig`, resource type
`AWS::S3::Bucket`, resource id = bucket name), once per scan, and memoises each bucket's item.
A bucket whose key comes back unprocessed, that is missing from the answer, whose item is not
recorded (`ResourceDeleted`, `ResourceNotRecorded`, `ResourceDeletedNotRecorded`) or was
recorded daily, or whose chunk's call failed, has no recorded item: its checks read it directly.

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

CONFIG_OPERATIONS: tuple[Operation, ...] = (
    Operation(System.AWS, DESCRIBE_RECORDERS,
              "see whether a continuous AWS Config recorder covers S3 buckets in a region"),
    Operation(System.AWS, DESCRIBE_RECORDER_STATUS, "see whether that recorder is recording"),
    Operation(System.AWS, BATCH_GET,
              "read recorded bucket policies and lifecycle rules, 100 buckets per call"),
)
"""The reads of the AWS Config path, for the checks that take bucket policies or lifecycles."""

_RECORDED_STATUSES = frozenset({"OK", "ResourceDiscovered"})
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
        """The evidence line that says the value was recorded by Config, not read live."""
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
    in a region fetches all of their items. None whenever the account turns Config off, Config
    is not trusted in the region, or the bucket has no usable item.
    """
    if not scan.account.use_aws_config:
        return None

    def compute() -> RecordedBucket | None:
        names = region_names(scan, region, peers)
        if name not in names or not recorder_trusted(scan, region):
            return None
        return region_items(scan, region, names).get(name)

    return scan.once(("config.item", region, name), compute)


def region_names(scan: Scan, region: str,
                 peers: Callable[[], Sequence[str]]) -> frozenset[str]:
    """The listed buckets of `region` whose items a batch fetches, once per scan."""
    return scan.once(("config.names", region), lambda: frozenset(peers()))


def recorder_trusted(scan: Scan, region: str) -> bool:
    """Whether Config's S3 bucket items are current in `region`; read once per scan."""
    return scan.once(("config.recorder", region), lambda: _read_recorder(scan, region))


def _read_recorder(scan: Scan, region: str) -> bool:
    try:
        client = scan.session.client("config", region)
        recorders = client.describe_configuration_recorders().get("ConfigurationRecorders")
        candidates = {str(r.get("name")) for r in recorders or ()
                      if isinstance(r, Mapping) and records_s3_continuously(r)}
        if not candidates:
            logger.debug("AWS Config in %s: no continuous recorder covers S3 buckets", region)
            return False
        statuses = client.describe_configuration_recorder_status().get(
            "ConfigurationRecordersStatus")
    except (ClientError, BotoCoreError) as exc:
        logger.debug("AWS Config in %s: recorder not readable (%s); reading buckets directly",
                     region, error_code(exc) or type(exc).__name__)
        return False
    trusted = any(isinstance(s, Mapping) and s.get("name") in candidates and recording(s)
                  for s in statuses or ())
    logger.debug("AWS Config in %s: recorder %s", region,
                 "recording, its S3 items are used" if trusted else "not recording")
    return trusted


def records_s3_continuously(recorder: Mapping[str, Any]) -> bool:
    """Whether a recorder (as `DescribeConfigurationRecorders` gives it) records S3 buckets
    on every change."""
    return records_s3(recorder.get("recordingGroup")) and continuous_for_s3(
        recorder.get("recordingMode"))


def records_s3(group: object) -> bool:
    """Whether a recording group covers `AWS::S3::Bucket`."""
    if not isinstance(group, Mapping):
        return False
    exclusion = group.get("exclusionByResourceTypes")
    excluded = (exclusion.get("resourceTypes") or ()) if isinstance(exclusion, Mapping) else ()
    if BUCKET_TYPE in excluded:
        return False
    strategy = group.get("recordingStrategy")
    strategy = strategy.get("useOnly") if isinstance(strategy, Mapping) else None
    if strategy == "EXCLUSION_BY_RESOURCE_TYPES" or group.get("allSupported") is True:
        return True
    return BUCKET_TYPE in (group.get("resourceTypes") or ())


def continuous_for_s3(mode: object) -> bool:
    """Whether a recording mode records S3 buckets continuously; an absent mode does."""
    if mode is None:
        return True
    if not isinstance(mode, Mapping):
        return False
    frequency = mode.get("recordingFrequency") or "CONTINUOUS"
    for override in mode.get("recordingModeOverrides") or ():
        if isinstance(override, Mapping) and BUCKET_TYPE in (override.get("resourceTypes")
                                                             or ()):
            frequency = override.get("recordingFrequency")
    return frequency == "CONTINUOUS"


def recording(status: Mapping[str, Any]) -> bool:
    """Whether a recorder status says it is recording and its last run did not fail."""
    return status.get("recording") is True and str(status.get("lastStatus") or "").upper() \
        != "FAILURE"


def region_items(scan: Scan, region: str, names: frozenset[str]) -> dict[str, RecordedBucket]:
    """Every usable recorded item of `names` in `region`, by bucket; fetched once per scan."""
    def compute() -> dict[str, RecordedBucket]:
        ordered = sorted(names)
        items: dict[str, RecordedBucket] = {}
        for start in range(0, len(ordered), BATCH_SIZE):
            items.update(_fetch_chunk(scan, region, ordered[start:start + BATCH_SIZE]))
        logger.debug("AWS Config in %s: %d of %d buckets have a usable item", region,
                     len(items), len(ordered))
        return items

    return scan.once(("config.items", region), compute)


def _fetch_chunk(scan: Scan, region: str, chunk: Sequence[str]) -> dict[str, RecordedBucket]:
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
                           response.get("unprocessedResourceKeys") or ()
                           if isinstance(k, Mapping)}
    found = {}
    for item in response.get("baseConfigurationItems") or ():
        parsed = parse_item(item, region) if isinstance(item, Mapping) else None
        if parsed is not None and parsed.name in wanted:
            found[parsed.name] = parsed
    return found


def parse_item(item: Mapping[str, Any], region: str) -> RecordedBucket | None:
    """
    A bucket's Config item in the shapes the direct reads produce; None when the item is not a
    complete, current recording of an S3 bucket in `region`.
    """
    name = item.get("resourceId")
    captured = capture_time(item.get("configurationItemCaptureTime"))
    supplementary = item.get("supplementaryConfiguration")
    if (item.get("resourceType") != BUCKET_TYPE or not isinstance(name, str) or not name
            or item.get("configurationItemStatus") not in _RECORDED_STATUSES
            or item.get("awsRegion", region) != region or captured is None
            or item.get("recordingFrequency", "CONTINUOUS") != "CONTINUOUS"
            or not isinstance(supplementary, Mapping) or "BucketPolicy" not in supplementary):
        return None
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


def capture_time(value: object) -> str | None:
    """An item's capture time as ISO 8601 in UTC, None when it is missing or malformed."""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(when, datetime):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
