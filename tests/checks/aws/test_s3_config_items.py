"""
S3 bucket policies and lifecycle rules from AWS Config's recorded items: the pure parsing of
Config's formats and of the recorder's trustworthiness, the evidence that names the source,
then scans against moto (and the fault proxy in front of it) with Config on and off.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.aws.audit_bucket import AuditBucketImmutable
from hipaacheck.checks.aws.backup import BackupCoverage
from hipaacheck.checks.aws.config_items import (
    BATCH_SIZE,
    RecordedBucket,
    capture_time,
    continuous_for_s3,
    parse_item,
    parse_lifecycle,
    parse_policy,
    recording,
    records_s3,
    records_s3_continuously,
)
from hipaacheck.checks.aws.s3 import (
    BucketEncryption,
    DefaultEncryption,
    DefaultSse,
    S3Observation,
)
from hipaacheck.checks.aws.s3_retention import (
    BucketRetention,
    ExpiryRule,
    RetentionObservation,
    S3LifecycleRetention,
    S3Versioning,
    expiring,
)
from hipaacheck.clients.aws import is_read_operation
from hipaacheck.config import AwsAccountConfig
from hipaacheck.lab.aws import (
    LAB_REGIONS,
    REQUIRE_KMS_POLICY,
    LabCredentials,
    seed_config_recorder,
)
from hipaacheck.model import Finding, Status, Target, TargetKind

US, EU = LAB_REGIONS
ENCRYPTION, LIFECYCLE, VERSIONING = DefaultEncryption(), S3LifecycleRetention(), S3Versioning()
CHECKS: tuple[Check[Any], ...] = (ENCRYPTION, LIFECYCLE, VERSIONING)
PHI_POLICY = Policy(min_phi_retention_days=30)
"""Current PHI objects must live 30 days, so a 10-day expiry fails whatever the source."""
TARGET = Target(TargetKind.AWS, "aws:test", "test")
CAPTURED = "AWS Config item captured 2026-01-02T03:04:05Z"
POLICY_DOC = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*"}]}


def config_rule(**fields: object) -> dict[str, object]:
    """A lifecycle rule as Config records it (moto's and the AWS SDK's field set)."""
    rule: dict[str, object] = {
        "id": "r", "prefix": None, "status": "Enabled", "expirationInDays": None,
        "expiredObjectDeleteMarker": None, "noncurrentVersionExpirationInDays": -1,
        "expirationDate": None, "transitions": None, "noncurrentVersionTransitions": None,
        "abortIncompleteMultipartUpload": None, "filter": {"predicate": None}}
    rule.update(fields)
    return rule


def item(name: str = "bucket-one", region: str = US, status: str = "OK",
         **supplementary: object) -> dict[str, object]:
    """A Config item for a bucket, with supplementary values as given (a policy by default)."""
    supplementary.setdefault("BucketPolicy", json.dumps({"policyText": None}))
    return {"resourceType": "AWS::S3::Bucket", "resourceId": name, "awsRegion": region,
            "configurationItemStatus": status,
            "configurationItemCaptureTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "supplementaryConfiguration": {k: v for k, v in supplementary.items()
                                           if v is not None}}


# The formats: bucket policy

@pytest.mark.parametrize("encoded", [
    {"policyText": json.dumps(POLICY_DOC)},
    json.dumps({"policyText": json.dumps(POLICY_DOC)}),
    json.dumps(json.dumps({"policyText": json.dumps(POLICY_DOC)})),
    json.dumps({"policyText": json.dumps(json.dumps(POLICY_DOC))}),
])
def test_bucket_policy_text_is_found_however_often_it_is_encoded(encoded: object) -> None:
    text = parse_policy(encoded)
    assert text is not None and json.loads(text) == POLICY_DOC


@pytest.mark.parametrize("encoded", [{"policyText": None}, '{"policyText":null}',
                                     json.dumps('{"policyText":null}')])
def test_null_policy_text_means_no_bucket_policy(encoded: object) -> None:
    assert parse_policy(encoded) is None


@pytest.mark.parametrize("encoded", [
    "not json", {"policy": "x"}, {"policyText": 3}, {"policyText": "[1, 2]"},
    {"policyText": "{not json"}, json.dumps(json.dumps(json.dumps(json.dumps({})))),
])
def test_unparseable_bucket_policy_raises_so_the_bucket_is_read_directly(
        encoded: object) -> None:
    with pytest.raises(ValueError):
        parse_policy(encoded)


# The formats: lifecycle rules

def test_config_lifecycle_rules_become_the_s3_api_rules_the_direct_read_judges() -> None:
    recorded = {"rules": [
        config_rule(id="tagged", expirationInDays=10, filter={"predicate": {
            "type": "LifecycleAndOperator", "operands": [
                {"type": "LifecyclePrefixPredicate", "prefix": "x/"},
                {"type": "LifecycleTagPredicate", "tag": {"key": "k", "value": "v"}}]}}),
        config_rule(id="old", noncurrentVersionExpirationInDays=3,
                    filter={"predicate": {"type": "LifecyclePrefixPredicate", "prefix": ""}}),
        config_rule(id="dated", expirationDate="2030-01-01T00:00:00Z", prefix="tmp/",
                    filter=None),
        config_rule(id="off", status="Disabled", expirationInDays=1),
        config_rule(id="markers", expiredObjectDeleteMarker=True),
    ]}
    rules = parse_lifecycle(json.dumps(recorded))
    assert [r["ID"] for r in rules] == ["tagged", "old", "dated", "off", "markers"]
    assert rules[0]["Filter"] == {"And": {"Prefix": "x/", "Tags": [{"Key": "k", "Value": "v"}]}}
    assert expiring(rules) == (
        ExpiryRule("tagged", True, 10, None, None), ExpiryRule("old", False, None, 3, None),
        ExpiryRule("dated", True, None, None, "2030-01-01"))


def test_newer_noncurrent_expiration_object_is_read_and_must_agree() -> None:
    block = config_rule(noncurrentVersionExpiration={"days": 5, "newerNoncurrentVersions": -1})
    assert expiring(parse_lifecycle({"rules": [block]})) == (
        ExpiryRule("r", False, None, 5, None),)
    clash = config_rule(noncurrentVersionExpirationInDays=9,
                        noncurrentVersionExpiration={"days": 5})
    with pytest.raises(ValueError):
        parse_lifecycle({"rules": [clash]})


def test_absent_lifecycle_means_no_rules() -> None:
    assert parse_lifecycle(None) == ()
    assert parse_lifecycle({"rules": []}) == ()


@pytest.mark.parametrize("rules", [
    {"rules": None}, {"other": []}, "{not json",
    {"rules": [config_rule(status="enabled")]},
    {"rules": [config_rule(expirationInDays="10")]},
    {"rules": [config_rule(expirationInDays=-5)]},
    {"rules": [config_rule(expirationDate="next tuesday")]},
    {"rules": [config_rule(expirationInWeeks=2)]},
    {"rules": [config_rule(filter={"predicate": {"type": "LifecycleFuturePredicate"}})]},
    {"rules": [config_rule(filter={"predicate": {"type": "LifecycleAndOperator",
                                                 "operands": [{"type": "LifecycleAndOperator",
                                                               "operands": []}]}})]},
])
def test_anything_unparseable_in_the_lifecycle_raises_never_guesses(rules: object) -> None:
    with pytest.raises(ValueError):
        parse_lifecycle(rules)


# The formats: whole items

def test_a_complete_item_gives_policy_and_lifecycle_with_the_capture_time() -> None:
    recorded = parse_item(item(BucketPolicy=json.dumps({"policyText": json.dumps(POLICY_DOC)}),
                               BucketLifecycleConfiguration=json.dumps(
                                   {"rules": [config_rule(expirationInDays=10)]})), US)
    assert isinstance(recorded, RecordedBucket)
    assert recorded.policy is not None and recorded.lifecycle is not None
    assert json.loads(recorded.policy.value or "") == POLICY_DOC
    assert recorded.lifecycle.value[0]["Expiration"] == {"Days": 10}
    assert recorded.policy.source == recorded.lifecycle.source == CAPTURED


def test_lifecycle_absent_from_a_complete_item_is_no_rules() -> None:
    recorded = parse_item(item(), US)
    assert recorded is not None and recorded.lifecycle is not None
    assert recorded.lifecycle.value == ()


@pytest.mark.parametrize("status", ["ResourceDeleted", "ResourceNotRecorded",
                                    "ResourceDeletedNotRecorded", "Mystery"])
def test_items_not_recorded_are_not_used(status: str) -> None:
    assert parse_item(item(status=status), US) is None


def test_incomplete_daily_or_misplaced_items_are_not_used() -> None:
    incomplete = item()
    incomplete["supplementaryConfiguration"] = {}
    daily = {**item(), "recordingFrequency": "DAILY"}
    undated = {**item(), "configurationItemCaptureTime": None}
    assert [parse_item(i, US) for i in (incomplete, daily, undated, item(region=EU))] == [
        None] * 4


def test_an_unparseable_part_drops_only_that_part() -> None:
    recorded = parse_item(item(BucketPolicy='{"policyText": "{broken"}',
                               BucketLifecycleConfiguration='{"rules": []}'), US)
    assert recorded is not None and recorded.policy is None
    assert recorded.lifecycle is not None and recorded.lifecycle.value == ()


def test_capture_time_is_iso_utc() -> None:
    assert capture_time("2026-01-02 04:04:05.123+01:00") == "2026-01-02T03:04:05Z"
    assert capture_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    assert capture_time("yesterday") is None and capture_time(None) is None


# The recorder

@pytest.mark.parametrize(("group", "covered"), [
    ({"allSupported": True}, True),
    ({"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]}, True),
    ({"allSupported": False, "resourceTypes": ["AWS::EC2::Volume"]}, False),
    ({"allSupported": False, "exclusionByResourceTypes": {"resourceTypes": ["AWS::S3::Bucket"]},
      "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"}}, False),
    ({"allSupported": False, "exclusionByResourceTypes": {"resourceTypes": ["AWS::EC2::Volume"]},
      "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"}}, True),
    (None, False),
])
def test_recording_group_covers_s3_buckets(group: object, covered: bool) -> None:
    assert records_s3(group) is covered


@pytest.mark.parametrize(("mode", "continuous"), [
    (None, True),
    ({"recordingFrequency": "CONTINUOUS"}, True),
    ({"recordingFrequency": "DAILY"}, False),
    ({"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": [
        {"resourceTypes": ["AWS::S3::Bucket"], "recordingFrequency": "DAILY"}]}, False),
    ({"recordingFrequency": "DAILY", "recordingModeOverrides": [
        {"resourceTypes": ["AWS::S3::Bucket"], "recordingFrequency": "CONTINUOUS"}]}, True),
    ({"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": [
        {"resourceTypes": ["AWS::EC2::Volume"], "recordingFrequency": "DAILY"}]}, True),
])
def test_recording_mode_must_be_continuous_for_s3_buckets(mode: object,
                                                          continuous: bool) -> None:
    assert continuous_for_s3(mode) is continuous
    assert records_s3_continuously({"recordingGroup": {"allSupported": True},
                                    "recordingMode": mode}) is continuous


@pytest.mark.parametrize(("status", "trusted"), [
    ({"recording": True, "lastStatus": "Success"}, True),
    ({"recording": True, "lastStatus": "PENDING"}, True),
    ({"recording": True, "lastStatus": "Failure"}, False),
    ({"recording": False, "lastStatus": "Success"}, False),
    ({"lastStatus": "Success"}, False),
])
def test_recorder_must_be_recording_without_failure(status: dict[str, object],
                                                    trusted: bool) -> None:
    assert recording(status) is trusted


def test_the_guard_lets_batch_get_resource_config_through_and_no_other_batch_read() -> None:
    assert is_read_operation("BatchGetResourceConfig")
    assert not is_read_operation("BatchGetItem") and not is_read_operation("BatchGetSecretValue")


# evaluate(): the source in the evidence

def test_policy_from_config_is_named_in_the_evidence() -> None:
    warned = BucketEncryption("b", US, DefaultSse("AES256"), None, True, CAPTURED)
    passed = BucketEncryption("c", US, DefaultSse("AES256"), None, False, None)
    [warn, ok] = ENCRYPTION.evaluate(S3Observation((warned, passed)), TARGET, Policy())
    assert (warn.status, warn.evidence["source"]) == (Status.WARN, CAPTURED)
    assert ok.status == Status.PASS and "source" not in ok.evidence


def test_lifecycle_from_config_is_named_in_the_evidence() -> None:
    early = (ExpiryRule("r", False, 10),)
    recorded = BucketRetention("b", US, True, False, None, early, CAPTURED)
    direct = BucketRetention("c", US, True, False, None, (), None)
    [fail, ok] = LIFECYCLE.evaluate(RetentionObservation((recorded, direct)), TARGET,
                                    PHI_POLICY)
    assert (fail.status, fail.evidence["source"]) == (Status.FAIL, CAPTURED)
    assert ok.status == Status.PASS and "source" not in ok.evidence


# collect(): against moto

def seed_mix(creds: LabCredentials, url: str, region: str) -> dict[str, str]:
    """SSE-S3 with a KMS-requiring policy, SSE-S3 without a policy, a lifecycle expiring
    current objects after 10 days (one rule scoped by prefix and tag), and none at all."""
    s3 = creds.client("s3", region, url)
    where = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    names = {kind: f"c{creds.account_id}-{region}-{kind}"
             for kind in ("kms-policy", "no-policy", "early", "plain")}
    for name in names.values():
        s3.create_bucket(Bucket=name, **where)
    for kind in ("kms-policy", "no-policy"):
        s3.put_bucket_encryption(Bucket=names[kind], ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_policy(Bucket=names["kms-policy"], Policy=json.dumps(
        REQUIRE_KMS_POLICY).replace("{bucket}", names["kms-policy"]))
    s3.put_bucket_lifecycle_configuration(Bucket=names["early"], LifecycleConfiguration={
        "Rules": [{"ID": "ten-days", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "Expiration": {"Days": 10}},
                  {"ID": "scoped", "Status": "Enabled", "Expiration": {"Days": 5},
                   "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}]}}}]})
    return names


def account(url: str, use_aws_config: bool = True) -> Target:
    config = AwsAccountConfig(name="test", regions=list(LAB_REGIONS), endpoint_url=url,
                              use_aws_config=use_aws_config)
    return Target(TargetKind.AWS, "aws:test", "test", config)


def scan(ctx: CheckContext, target: Target,
         checks: Sequence[Check[Any]] = CHECKS) -> dict[tuple[str, str], Finding]:
    return {(f.check_id, f.resource): f for check in checks
            for f in check.evaluate(check.collect(ctx, target), target, ctx.policy)}


def statuses(found: dict[tuple[str, str], Finding], names: dict[str, str]) -> dict[Any, Status]:
    mine = set(names.values())
    return {key: f.status for key, f in found.items() if key[1] in mine}


def operations(ctx: CheckContext, region: str | None = None) -> list[str]:
    return [c.operation for c in ctx.clients.aws_calls() if region in (None, c.region)]


def read_directly(ctx: CheckContext, operation: str) -> list[str]:
    """The buckets `operation` was called for, from the session's call log."""
    return sorted(c.subject.removeprefix("Bucket=") for c in ctx.clients.aws_calls()
                  if c.operation == operation)


@pytest.fixture
def mixed(aws_creds: LabCredentials, moto_url: str) -> dict[str, str]:
    """The mix in us-east-1, where a continuous recorder runs, and in eu-west-1, where none."""
    names = seed_mix(aws_creds, moto_url, US)
    seed_config_recorder(aws_creds, moto_url, US)
    return {**names, **{f"eu-{k}": v for k, v in seed_mix(aws_creds, moto_url, EU).items()}}


def test_config_on_uses_the_batch_and_judges_as_config_off(
        mixed: dict[str, str], moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    # Given the same buckets scanned with Config and without
    on_ctx, off_ctx = make_ctx(PHI_POLICY), make_ctx(PHI_POLICY)
    on = scan(on_ctx, account(moto_url))
    off = scan(off_ctx, account(moto_url, use_aws_config=False))
    # Then every bucket gets the same status either way
    assert statuses(on, mixed) == statuses(off, mixed)
    assert statuses(on, mixed)[("aws.s3.default_encryption", mixed["kms-policy"])] == Status.WARN
    assert statuses(on, mixed)[("aws.s3.default_encryption", mixed["no-policy"])] == Status.PASS
    assert statuses(on, mixed)[("aws.s3.lifecycle_retention", mixed["early"])] == Status.FAIL
    assert statuses(on, mixed)[("aws.s3.lifecycle_retention", mixed["plain"])] == Status.PASS
    # And with Config, us-east-1's policies and lifecycles came from one batch read
    us = operations(on_ctx, US)
    assert us.count("BatchGetResourceConfig") == 1
    assert us.count("DescribeConfigurationRecorders") == 1
    assert "GetBucketPolicy" not in us and "GetBucketLifecycleConfiguration" not in us
    assert us.count("GetBucketEncryption") == 4 and us.count("GetBucketVersioning") == 4
    # And eu-west-1, with no recorder, was read directly
    eu = operations(on_ctx, EU)
    assert "BatchGetResourceConfig" not in eu and eu.count("GetBucketLifecycleConfiguration") == 4
    # And without Config nothing asked Config at all
    assert "config" not in {c.service for c in off_ctx.clients.aws_calls()}


def test_findings_from_config_name_the_item_and_direct_ones_do_not(
        mixed: dict[str, str], moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    found = scan(make_ctx(PHI_POLICY), account(moto_url))
    for key in (("aws.s3.default_encryption", mixed["kms-policy"]),
                ("aws.s3.lifecycle_retention", mixed["early"]),
                ("aws.s3.lifecycle_retention", mixed["plain"])):
        assert str(found[key].evidence["source"]).startswith("AWS Config item captured 20")
        assert str(found[key].evidence["source"]).endswith("Z")
    for key in (("aws.s3.default_encryption", mixed["eu-kms-policy"]),
                ("aws.s3.lifecycle_retention", mixed["eu-early"]),
                ("aws.s3.versioning", mixed["early"])):
        assert "source" not in found[key].evidence


def test_a_scan_with_config_calls_only_what_each_check_declares_and_nothing_twice(
        mixed: dict[str, str], moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    shared = make_ctx(PHI_POLICY)
    for check in (*CHECKS, AuditBucketImmutable()):
        alone = make_ctx(PHI_POLICY)
        scan(alone, account(moto_url), (check,))
        made = {c.iam_action for c in alone.clients.aws_calls()}
        assert made <= {op.action for op in check.meta.operations}, type(check).__name__
        assert all(is_read_operation(c.operation) for c in alone.clients.aws_calls())
        scan(shared, account(moto_url), (check,))
    reads = [c.identity for c in shared.clients.aws_calls() if not c.continued]
    assert len(reads) == len(set(reads))


def recorder_cases(creds: LabCredentials, url: str, case: str) -> None:
    if case == "stopped":
        seed_config_recorder(creds, url, US, start=False)
    elif case == "not covering S3":
        seed_config_recorder(creds, url, US, resource_types=("AWS::EC2::Volume",))


@pytest.mark.parametrize("case", ["stopped", "not covering S3"])
def test_untrusted_recorder_means_direct_reads(
        case: str, aws_creds: LabCredentials, moto_url: str,
        make_ctx: Callable[..., CheckContext]) -> None:
    # Given a recorder that is stopped, or does not record S3 buckets
    names = seed_mix(aws_creds, moto_url, US)
    recorder_cases(aws_creds, moto_url, case)
    ctx, off_ctx = make_ctx(PHI_POLICY), make_ctx(PHI_POLICY)
    found = scan(ctx, account(moto_url))
    # Then the buckets are read directly and judged as without Config, none UNVERIFIED
    assert statuses(found, names) == statuses(scan(off_ctx, account(moto_url, False)), names)
    assert Status.UNVERIFIED not in statuses(found, names).values()
    us = operations(ctx, US)
    assert "BatchGetResourceConfig" not in us and us.count("GetBucketLifecycleConfiguration") == 4
    assert us.count("DescribeConfigurationRecorders") == 1


DAILY_RECORDERS = {"ConfigurationRecorders": [{
    "name": "default", "roleARN": "arn:aws:iam::111122223333:role/config",
    "recordingGroup": {"allSupported": True},
    "recordingMode": {"recordingFrequency": "DAILY"}}]}


@pytest.mark.parametrize("fault", ["daily", "denied", "throttled status"])
def test_daily_denied_or_throttled_recorder_reads_mean_direct_reads(
        fault: str, aws_creds: LabCredentials, moto_url: str, faults: Any,
        make_ctx: Callable[..., CheckContext]) -> None:
    # Given a running recorder, but Config's answers about it are DAILY, denied or throttled
    names = seed_mix(aws_creds, moto_url, US)
    seed_config_recorder(aws_creds, moto_url, US)
    if fault == "daily":
        faults.answer("config", "DescribeConfigurationRecorders", DAILY_RECORDERS)
    elif fault == "denied":
        faults.deny("config", "DescribeConfigurationRecorders", code="AccessDeniedException",
                    status=400)
    else:
        faults.throttle("config", "DescribeConfigurationRecorderStatus")
    ctx = make_ctx(PHI_POLICY)
    found = scan(ctx, account(faults.url))
    # Then every bucket is read directly, and judged as it is: nothing UNVERIFIED
    assert statuses(found, names) == statuses(
        scan(make_ctx(PHI_POLICY), account(moto_url, False)), names)
    assert faults.count(service="config", operation="BatchGetResourceConfig") == 0
    assert read_directly(ctx, "GetBucketLifecycleConfiguration") == sorted(names.values())
    assert faults.count(service="config", operation="DescribeConfigurationRecorders") == 1


def test_unprocessed_missing_deleted_or_failed_items_are_read_directly(
        aws_creds: LabCredentials, moto_url: str, faults: Any,
        make_ctx: Callable[..., CheckContext]) -> None:
    # Given a trusted recorder, but Config answers the batch with one usable item (no
    # policy, no lifecycle), one deleted, one unprocessed key, and one bucket missing
    names = seed_mix(aws_creds, moto_url, US)
    seed_config_recorder(aws_creds, moto_url, US)
    usable = {**item(names["plain"]), "configurationItemCaptureTime": "2026-01-02T03:04:05Z"}
    deleted = {**item(names["early"], status="ResourceDeleted"),
               "configurationItemCaptureTime": "2026-01-02T03:04:05Z"}
    faults.answer("config", "BatchGetResourceConfig", {
        "baseConfigurationItems": [usable, deleted],
        "unprocessedResourceKeys": [{"resourceType": "AWS::S3::Bucket",
                                     "resourceId": names["kms-policy"]}]})
    ctx = make_ctx(PHI_POLICY)
    found = scan(ctx, account(faults.url))
    # Then only the usable item's bucket was judged from Config; the rest were read directly
    assert statuses(found, names) == statuses(
        scan(make_ctx(PHI_POLICY), account(moto_url, False)), names)
    assert faults.count(service="config", operation="BatchGetResourceConfig") == 1
    assert read_directly(ctx, "GetBucketLifecycleConfiguration") == sorted(
        names[kind] for kind in ("early", "kms-policy", "no-policy"))
    assert found[("aws.s3.lifecycle_retention", names["plain"])].evidence["source"] == CAPTURED
    assert "source" not in found[("aws.s3.lifecycle_retention", names["early"])].evidence


def test_a_failed_batch_call_reads_its_chunk_directly(
        aws_creds: LabCredentials, moto_url: str, faults: Any,
        make_ctx: Callable[..., CheckContext]) -> None:
    names = seed_mix(aws_creds, moto_url, US)
    seed_config_recorder(aws_creds, moto_url, US)
    faults.deny("config", "BatchGetResourceConfig", code="AccessDeniedException", status=400)
    ctx = make_ctx(PHI_POLICY)
    found = scan(ctx, account(faults.url))
    assert statuses(found, names) == statuses(
        scan(make_ctx(PHI_POLICY), account(moto_url, False)), names)
    assert Status.UNVERIFIED not in statuses(found, names).values()
    assert faults.count(service="config", operation="BatchGetResourceConfig") == 1
    assert read_directly(ctx, "GetBucketLifecycleConfiguration") == sorted(names.values())
    assert read_directly(ctx, "GetBucketPolicy") == sorted(
        names[kind] for kind in ("kms-policy", "no-policy"))


def test_buckets_are_batched_a_hundred_per_call_once_per_region(
        aws_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    # Given 130 buckets in us-east-1, where a continuous recorder runs
    s3 = aws_creds.client("s3", US, moto_url)
    for index in range(BATCH_SIZE + 30):
        s3.create_bucket(Bucket=f"n{aws_creds.account_id}-{index:03d}")
    seed_config_recorder(aws_creds, moto_url, US)
    # When the lifecycle check runs twice in one scan
    ctx = make_ctx()
    for _ in range(2):
        findings = LIFECYCLE.evaluate(LIFECYCLE.collect(ctx, account(moto_url)),
                                      account(moto_url), ctx.policy)
    # Then two batch calls read every bucket's lifecycle, and no bucket was read directly
    assert len(findings) == BATCH_SIZE + 30
    assert {f.status for f in findings} == {Status.PASS}
    assert all(str(f.evidence["source"]).startswith("AWS Config") for f in findings)
    assert operations(ctx).count("BatchGetResourceConfig") == 2
    assert "GetBucketLifecycleConfiguration" not in operations(ctx)


def test_the_audit_family_shares_the_recorded_policy(
        aws_creds: LabCredentials, moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    # Given an SSE-S3 bucket named as an audit bucket, in a region Config records
    names = seed_mix(aws_creds, moto_url, US)
    seed_config_recorder(aws_creds, moto_url, US)
    config = AwsAccountConfig(name="test", regions=[US], endpoint_url=moto_url,
                              audit_buckets=[names["kms-policy"]])
    target = Target(TargetKind.AWS, "aws:test", "test", config)
    ctx = make_ctx()
    # When the encryption and the audit-bucket checks run in one scan
    found = scan(ctx, target, (ENCRYPTION, AuditBucketImmutable()))
    # Then the policy was read once, from Config, and both findings say so
    audit = found[("aws.s3.audit_bucket_immutable", names["kms-policy"])]
    assert audit.evidence["source"] == found[
        ("aws.s3.default_encryption", names["kms-policy"])].evidence["source"]
    assert "GetBucketPolicy" not in operations(ctx)
    assert operations(ctx).count("BatchGetResourceConfig") == 1


def test_backup_coverage_names_the_config_item_its_bucket_lifecycle_came_from(
        mixed: dict[str, str], moto_url: str, make_ctx: Callable[..., CheckContext]) -> None:
    found = scan(make_ctx(PHI_POLICY), account(moto_url), (BackupCoverage(),))
    recorded = found[("aws.backup.phi_coverage", mixed["early"])]
    direct = found[("aws.backup.phi_coverage", mixed["eu-early"])]
    assert str(recorded.evidence["source"]).startswith("AWS Config item captured 20")
    assert "source" not in direct.evidence
