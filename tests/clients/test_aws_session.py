"""
The read-only AWS session: the guard, the call log, credentials, timeouts and error mapping,
against a real moto server on loopback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from hipaacheck.clients.aws import (
    ApiCall,
    AwsSession,
    KeyInfo,
    classify_error,
    iam_action,
    is_read_operation,
    kms_key_info,
    kms_key_manager,
    new_botocore_session,
    paginate,
)
from hipaacheck.config import AwsAccountConfig
from hipaacheck.errors import ReadOnlyViolation
from hipaacheck.lab.aws import LabCredentials, create_isolated_account, start_moto_server
from hipaacheck.model import Unknown, UnknownReason
from hipaacheck.redact import Secret

SENTINEL = "sentinel-response-message-7f3a"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this module."""
    server, url = start_moto_server()
    yield url
    server.stop()


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS files, profiles, credentials or metadata service from the machine running tests."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return tmp_path


@pytest.fixture
def creds(moto_url: str, hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> LabCredentials:
    """A fresh moto account whose fake credentials the default chain finds."""
    creds = create_isolated_account(moto_url)
    for name, value in creds.env().items():
        monkeypatch.setenv(name, value)
    return creds


@pytest.fixture
def session(moto_url: str, creds: LabCredentials) -> AwsSession:
    """A read-only session on the test account."""
    account = AwsAccountConfig(name="t", regions=["us-east-1"], endpoint_url=moto_url)
    return AwsSession(account, timeout=5)


def seed_bucket(creds: LabCredentials, moto_url: str) -> str:
    name = f"t{creds.account_id}-bucket"
    creds.client("s3", "us-east-1", moto_url).create_bucket(Bucket=name)
    return name


# the read-only guard

@pytest.mark.parametrize(("service", "method", "kwargs"), [
    ("s3", "put_object", {"Key": "k", "Body": b"x"}),
    ("s3", "delete_bucket", {}),
    ("s3", "put_bucket_encryption", {"ServerSideEncryptionConfiguration": {"Rules": []}}),
    ("s3", "delete_bucket_encryption", {}),
])
def test_guard_refuses_s3_writes_before_any_request_is_sent(
        session: AwsSession, creds: LabCredentials, moto_url: str, service: str,
        method: str, kwargs: dict[str, Any]) -> None:
    # Given a bucket and a guarded client that counts the requests it sends
    bucket = seed_bucket(creds, moto_url)
    client = session.client(service, "us-east-1")
    sent: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    # When a write is attempted, then it is refused and nothing leaves the process
    with pytest.raises(ReadOnlyViolation):
        getattr(client, method)(Bucket=bucket, **kwargs)
    assert sent == []
    assert session.calls == []
    # And the bucket is untouched
    plain = creds.client("s3", "us-east-1", moto_url)
    assert plain.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    plain.head_bucket(Bucket=bucket)


@pytest.mark.parametrize(("service", "method", "kwargs"), [
    ("rds", "delete_db_instance", {"DBInstanceIdentifier": "db", "SkipFinalSnapshot": True}),
    ("rds", "modify_db_instance", {"DBInstanceIdentifier": "db", "BackupRetentionPeriod": 0}),
    ("kms", "schedule_key_deletion", {"KeyId": "alias/x"}),
    ("s3", "create_bucket", {"Bucket": "new-bucket"}),
])
def test_guard_refuses_other_writes(session: AwsSession, service: str, method: str,
                                    kwargs: dict[str, Any]) -> None:
    client = session.client(service, "us-east-1")
    with pytest.raises(ReadOnlyViolation) as refused:
        getattr(client, method)(**kwargs)
    assert service in str(refused.value)
    assert session.calls == []


def test_guard_runs_before_any_other_before_call_handler(session: AwsSession) -> None:
    # Given a Stubber, which answers calls from its own before-call handler
    client = session.client("s3", "us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("list_buckets", {"Buckets": []})
        stubber.add_response("delete_bucket", {})
        # Then reads are still recorded and writes still refused
        client.list_buckets()
        with pytest.raises(ReadOnlyViolation):
            client.delete_bucket(Bucket="b")
    assert [c.operation for c in session.calls] == ["ListBuckets"]


def test_reads_are_recorded_with_their_iam_actions(session: AwsSession, creds: LabCredentials,
                                                   moto_url: str) -> None:
    bucket = seed_bucket(creds, moto_url)
    s3 = session.client("s3", "us-east-1")
    s3.list_buckets()
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket=bucket)
    assert session.calls == [
        ApiCall("s3", "ListBuckets", "us-east-1", "s3:ListAllMyBuckets"),
        ApiCall("s3", "GetBucketEncryption", "us-east-1", "s3:GetEncryptionConfiguration"),
    ]


def test_named_read_filter_log_events_is_allowed(session: AwsSession, creds: LabCredentials,
                                                  moto_url: str) -> None:
    creds.client("logs", "us-east-1", moto_url).create_log_group(logGroupName="app")
    events = paginate(session.client("logs", "us-east-1"), "filter_log_events", "events",
                      logGroupName="app")
    assert events == []
    assert session.recorded_actions() == {"logs:FilterLogEvents"}


@pytest.mark.parametrize(("operation", "allowed"), [
    ("DescribeDBInstances", True), ("GetBucketEncryption", True), ("ListBuckets", True),
    ("HeadBucket", True), ("SimulatePrincipalPolicy", True), ("FilterLogEvents", True),
    ("LookupEvents", True), ("PutObject", False), ("DeleteBucket", False),
    ("CreateBucket", False), ("ModifyDBInstance", False), ("StartQuery", False),
    ("CopyObject", False), ("RestoreObject", False), ("Decrypt", False),
])
def test_is_read_operation(operation: str, allowed: bool) -> None:
    assert is_read_operation(operation) is allowed


@pytest.mark.parametrize(("service", "operation", "action"), [
    ("s3", "ListBuckets", "s3:ListAllMyBuckets"),
    ("s3", "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("s3", "GetBucketLocation", "s3:GetBucketLocation"),
    ("s3", "HeadObject", "s3:GetObject"),
    ("rds", "DescribeDBInstances", "rds:DescribeDBInstances"),
    ("kms", "DescribeKey", "kms:DescribeKey"),
    ("elbv2", "DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers"),
    ("efs", "DescribeFileSystems", "elasticfilesystem:DescribeFileSystems"),
    ("opensearch", "DescribeDomains", "es:DescribeDomains"),
    ("s3", "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    ("resourcegroupstaggingapi", "GetResources", "tag:GetResources"),
])
def test_iam_action(service: str, operation: str, action: str) -> None:
    assert iam_action(service, operation) == action


# clients: caching, configuration, credentials

def test_clients_are_cached_and_shared_across_threads(session: AwsSession) -> None:
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: session.client("s3", "us-east-1"), range(16)))
    assert len({id(c) for c in clients}) == 1
    assert session.client("s3", "eu-west-1") is not clients[0]


def test_client_has_explicit_timeouts_adaptive_retries_and_the_endpoint(
        moto_url: str, creds: LabCredentials) -> None:
    account = AwsAccountConfig(name="t", regions=["us-east-1"], endpoint_url=moto_url)
    client = AwsSession(account, timeout=2.5, max_attempts=4).client("rds", "us-east-1")
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
    assert config.retries["mode"] == "adaptive"
    assert config.retries["total_max_attempts"] == 4
    assert client.meta.endpoint_url == moto_url


def test_named_profile_supplies_credentials(moto_url: str, creds: LabCredentials,
                                            hermetic: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the account's credentials only in a profile of the shared credentials file
    bucket = seed_bucket(creds, moto_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    (hermetic / "aws-credentials").write_text(
        f"[audit]\naws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n"
        f"aws_session_token = {creds.session_token}\n")
    account = AwsAccountConfig(name="t", profile="audit", regions=["us-east-1"],
                               endpoint_url=moto_url)
    # When the session lists buckets, then it sees that account
    names = [b["Name"] for b in AwsSession(account, timeout=5).client(
        "s3", "us-east-1").list_buckets()["Buckets"]]
    assert names == [bucket]


def test_role_arn_is_assumed_from_the_default_chain(moto_url: str, creds: LabCredentials) -> None:
    # Given a bucket in an account reached only by assuming a role in it
    bucket = seed_bucket(creds, moto_url)
    account = AwsAccountConfig(
        name="t", regions=["us-east-1"], endpoint_url=moto_url,
        role_arn=f"arn:aws:iam::{creds.account_id}:role/audit", external_id=Secret("ext-1"))
    session = AwsSession(account, timeout=5)
    # When the session lists buckets
    names = [b["Name"] for b in session.client("s3", "us-east-1").list_buckets()["Buckets"]]
    # Then it sees the role's account, and only the list call is in the call log
    assert names == [bucket]
    assert [c.operation for c in session.calls] == ["ListBuckets"]


def test_missing_profile_is_access_denied(moto_url: str, hermetic: Path) -> None:
    account = AwsAccountConfig(name="t", profile="absent", regions=["us-east-1"],
                               endpoint_url=moto_url)
    with pytest.raises(Exception) as raised:
        AwsSession(account, timeout=5).client("s3", "us-east-1")
    unknown = classify_error(raised.value, "s3:ListAllMyBuckets")
    assert unknown.reason == UnknownReason.ACCESS_DENIED


def test_no_credentials_is_access_denied(moto_url: str, hermetic: Path) -> None:
    account = AwsAccountConfig(name="t", regions=["us-east-1"], endpoint_url=moto_url)
    with pytest.raises(Exception) as raised:
        AwsSession(account, timeout=5).client("s3", "us-east-1").list_buckets()
    unknown = classify_error(raised.value, "s3:ListAllMyBuckets")
    assert (unknown.reason, unknown.detail) == (UnknownReason.ACCESS_DENIED,
                                                "no AWS credentials found")


# failures: real loopback sockets

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_is_unreachable(creds: LabCredentials) -> None:
    account = AwsAccountConfig(name="t", regions=["us-east-1"],
                               endpoint_url=f"http://127.0.0.1:{closed_port()}")
    client = AwsSession(account, timeout=2, max_attempts=1).client("rds", "us-east-1")
    with pytest.raises(Exception) as raised:
        client.describe_db_instances()
    unknown = classify_error(raised.value, "rds:DescribeDBInstances")
    assert unknown.reason == UnknownReason.UNREACHABLE


def test_silent_endpoint_times_out(creds: LabCredentials) -> None:
    # Given a loopback socket that accepts connections and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        account = AwsAccountConfig(name="t", regions=["us-east-1"], endpoint_url=url)
        client = AwsSession(account, timeout=0.3, max_attempts=1).client("rds", "us-east-1")
        with pytest.raises(Exception) as raised:
            client.describe_db_instances()
    unknown = classify_error(raised.value, "rds:DescribeDBInstances")
    assert unknown.reason == UnknownReason.TIMEOUT


# error classification

def client_error(code: str, operation: str = "GetBucketEncryption") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": SENTINEL}}, operation)


@pytest.mark.parametrize(("code", "reason"), [
    ("AccessDenied", UnknownReason.ACCESS_DENIED),
    ("AccessDeniedException", UnknownReason.ACCESS_DENIED),
    ("UnauthorizedOperation", UnknownReason.ACCESS_DENIED),
    ("AuthorizationError", UnknownReason.ACCESS_DENIED),
    ("Throttling", UnknownReason.THROTTLED),
    ("ThrottlingException", UnknownReason.THROTTLED),
    ("RequestLimitExceeded", UnknownReason.THROTTLED),
    ("SlowDown", UnknownReason.THROTTLED),
])
def test_classify_error_codes(code: str, reason: UnknownReason) -> None:
    unknown = classify_error(client_error(code), "s3:GetEncryptionConfiguration")
    assert isinstance(unknown, Unknown)
    assert unknown.reason == reason
    assert SENTINEL not in unknown.detail
    if reason == UnknownReason.ACCESS_DENIED:
        assert unknown.needs == "s3:GetEncryptionConfiguration"


@pytest.mark.parametrize("code", ["InternalError", "ServiceUnavailable"])
def test_server_errors_outlasting_retries_are_unreachable(code: str) -> None:
    unknown = classify_error(client_error(code), "backup:ListBackupSelections")
    assert unknown.reason == UnknownReason.UNREACHABLE
    assert "backup:ListBackupSelections" in unknown.detail and SENTINEL not in unknown.detail


def test_unsupported_operations_are_not_supported() -> None:
    unknown = classify_error(client_error("UnsupportedOperationException"),
                             "kms:GetKeyRotationStatus")
    assert unknown.reason == UnknownReason.NOT_SUPPORTED


def test_denied_role_assumption_names_sts_assume_role() -> None:
    unknown = classify_error(client_error("AccessDenied", "AssumeRole"), "s3:ListAllMyBuckets")
    assert (unknown.reason, unknown.needs) == (UnknownReason.ACCESS_DENIED, "sts:AssumeRole")


def test_unrecognised_errors_are_reraised() -> None:
    with pytest.raises(ClientError):
        classify_error(client_error("ValidationException"), "s3:GetEncryptionConfiguration")
    with pytest.raises(KeyError):
        classify_error(KeyError("x"), "s3:GetEncryptionConfiguration")


# helpers

def test_paginate_collects_every_page(session: AwsSession, creds: LabCredentials,
                                      moto_url: str) -> None:
    bucket = seed_bucket(creds, moto_url)
    plain = creds.client("s3", "us-east-1", moto_url)
    for key in ("a", "b", "c"):
        plain.put_object(Bucket=bucket, Key=key, Body=b"")
    s3 = session.client("s3", "us-east-1")
    items = paginate(s3, "list_objects_v2", "Contents", Bucket=bucket,
                     PaginationConfig={"PageSize": 1})
    assert sorted(i["Key"] for i in items) == ["a", "b", "c"]
    assert [c.operation for c in session.calls].count("ListObjectsV2") >= 3


def test_paginate_calls_unpaginated_operations_once(session: AwsSession, creds: LabCredentials,
                                                    moto_url: str) -> None:
    bucket = seed_bucket(creds, moto_url)
    creds.client("s3", "us-east-1", moto_url).put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})
    tags = paginate(session.client("s3", "us-east-1"), "get_bucket_tagging", "TagSet",
                    Bucket=bucket)
    assert [t["Key"] for t in tags] == ["team"]
    assert len(session.calls) == 1


def test_kms_key_manager(session: AwsSession, creds: LabCredentials, moto_url: str) -> None:
    key = creds.client("kms", "eu-west-1", moto_url).create_key()["KeyMetadata"]["Arn"]
    assert kms_key_manager(session, "us-east-1", key) == "CUSTOMER"
    assert session.calls[-1].region == "eu-west-1"  # the key ARN's own region
    calls = len(session.calls)
    assert kms_key_manager(session, "us-east-1", "alias/aws/s3") == "AWS"
    assert len(session.calls) == calls
    missing = kms_key_manager(session, "us-east-1", "00000000-0000-0000-0000-000000000000")
    assert isinstance(missing, Unknown) and missing.reason == UnknownReason.NOT_VISIBLE


def test_kms_key_info_reports_state_origin_and_spec(session: AwsSession, creds: LabCredentials,
                                                     moto_url: str) -> None:
    kms = creds.client("kms", "us-east-1", moto_url)
    key = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    info = kms_key_info(session, "us-east-1", key["Arn"])
    assert isinstance(info, KeyInfo)
    assert (info.manager, info.state, info.origin, info.spec) == (
        "CUSTOMER", "PendingDeletion", "AWS_KMS", "SYMMETRIC_DEFAULT")
    assert info.rotatable and info.deletion_date


# the call log's subjects, the shared model loader and the bounded pool

def test_calls_record_what_they_read_and_later_pages(session: AwsSession, creds: LabCredentials,
                                                      moto_url: str) -> None:
    bucket = seed_bucket(creds, moto_url)
    plain = creds.client("s3", "us-east-1", moto_url)
    for key in ("a", "b"):
        plain.put_object(Bucket=bucket, Key=key, Body=b"")
    s3 = session.client("s3", "us-east-1")
    paginate(s3, "list_objects_v2", "Contents", Bucket=bucket, PaginationConfig={"PageSize": 1})
    pages = [c for c in session.calls if c.operation == "ListObjectsV2"]
    assert {c.subject for c in pages} == {f"Bucket={bucket}"}
    assert [c.continued for c in pages][:2] == [False, True]
    assert pages[0].identity == ("s3", "us-east-1", "ListObjectsV2", f"Bucket={bucket}")


def test_sessions_share_one_model_loader() -> None:
    first, second = new_botocore_session(), new_botocore_session()
    assert first.get_component("data_loader") is second.get_component("data_loader")
    assert first is not second


def test_map_keeps_order_bounds_threads_and_runs_nested_maps_inline(session: AwsSession) -> None:
    lock = threading.Lock()
    running, peak, threads = [0], [0], set()

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.01)
        inner = session.map(lambda x: (x, threading.get_ident()), [1, 2, 3])
        with lock:
            running[0] -= 1
        assert {t for _, t in inner} == {threading.get_ident()}
        return item * 2

    assert session.map(work, range(40)) == [i * 2 for i in range(40)]
    assert peak[0] <= session.max_workers and len(threads) <= session.max_workers


def test_unparseable_answers_are_unparseable(moto_url: str, creds: LabCredentials) -> None:
    # Given a moto action that is not implemented, answered with an HTML page moto's EC2
    # protocol parser cannot read
    account = AwsAccountConfig(name="t", regions=["us-east-1"], endpoint_url=moto_url)
    client = AwsSession(account, timeout=5, max_attempts=1).client("ec2", "us-east-1")
    with pytest.raises(Exception) as raised:
        client.get_ebs_default_kms_key_id()
    unknown = classify_error(raised.value, "ec2:GetEbsDefaultKmsKeyId")
    assert unknown.reason in (UnknownReason.UNPARSEABLE, UnknownReason.UNREACHABLE)
    assert unknown.needs == "a healthy AWS endpoint"
