"""
`logs.s3.phi`: collect against moto's S3 over HTTP (recent objects, ranged gzip reads, a
budget that stops a gzip bomb, masked keys, denial), and evaluate on hand-built observations.
"""

from __future__ import annotations

import gzip
from typing import Any

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.cloudwatch import sink_account
from hipaacheck.checks.logs.common import ContentScan
from hipaacheck.checks.logs.s3 import PhiInS3Logs, PrefixObservation, S3Observation
from hipaacheck.config import AwsAccountConfig, S3LogSinkConfig
from hipaacheck.detectors.phi import Kind, KindSummary
from hipaacheck.lab.aws import LabCredentials
from hipaacheck.model import Finding, Status, System, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R

from .conftest import REGION, Fault

CHECK = PhiInS3Logs()
LEAK = b'10.0.0.4 - - "GET /api/eligibility?member_id=W123456789&dob=1957-03-14 HTTP/1.1" 200\n'
CLEAN = b'10.0.0.4 - - "GET /healthz HTTP/1.1" 200 12 "-" "kube-probe/1.29" rt=0.001\n'


def bucket(creds: LabCredentials, url: str, objects: dict[str, bytes]) -> str:
    name = f"logs-{creds.account_id}"
    s3 = creds.client("s3", REGION, url)
    s3.create_bucket(Bucket=name)
    for key, body in objects.items():
        s3.put_object(Bucket=name, Key=key, Body=body)
    return name


def target(url: str, name: str, **options: Any) -> Target:
    account = AwsAccountConfig(name="test", regions=[REGION], endpoint_url=url)
    sink = S3LogSinkConfig(kind="s3", name="alb", account=account, bucket=name, **options)
    return Target(TargetKind.LOG_SINK, "logs:alb", "alb", sink)


def run(ctx: CheckContext, tgt: Target) -> dict[str, Finding]:
    return {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, tgt), tgt, Policy())}


def test_recent_objects_plain_and_gzip_fail_and_pass(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    name = bucket(aws_creds, moto_url, {
        "AWSLogs/alb/2026/12/03/a.log.gz": gzip.compress(CLEAN * 500 + LEAK),
        "AWSLogs/alb/2026/12/03/b.log": CLEAN * 100,
        "AWSLogs/alb/patient-219-45-6781.log": LEAK,
        "AWSLogs/cdn/c.log.gz": gzip.compress(CLEAN * 100)})
    tgt = target(moto_url, name, prefixes=["AWSLogs/alb/", "AWSLogs/cdn/", "AWSLogs/none/"])
    findings = run(live_ctx, tgt)
    alb, cdn = findings[f"s3://{name}/AWSLogs/alb/"], findings[f"s3://{name}/AWSLogs/cdn/"]
    assert (alb.status, cdn.status) == (Status.FAIL, Status.PASS)
    assert set(alb.evidence["identifier_kinds"]) == {"health_plan_id", "date_of_birth"}
    assert alb.evidence["objects_read"] == 3 and alb.evidence["sources_with_identifiers"] == 2
    assert len(alb.evidence["modified_times_of_objects_with_identifiers"]) == 2  # type: ignore
    for secret in ("219-45-6781", "patient-", "W123456789", "1957-03-14"):
        assert secret not in repr(findings)
    none = findings[f"s3://{name}/AWSLogs/none/"]
    assert (none.status, none.unknown_reason) == (Status.UNVERIFIED, R.NOT_VISIBLE)
    made = {c.iam_action for c in live_ctx.clients.aws(sink_account(tgt.config)).calls}
    assert made == {"s3:ListBucket", "s3:GetObject"}


def test_a_gzip_bomb_and_a_large_object_stop_at_the_budget(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    bomb = gzip.compress(b"a" * (32 << 20), compresslevel=9)
    name = bucket(aws_creds, moto_url, {"logs/bomb.log.gz": bomb,
                                        "logs/big.log": CLEAN * 20_000 + LEAK})
    finding = run(live_ctx, target(moto_url, name, prefixes=["logs/"],
                                   max_bytes_per_object=200_000))[f"s3://{name}/logs/"]
    assert finding.status == Status.FAIL  # the leak at the end of big.log: its tail was read
    assert finding.evidence["read"] == "sampled"
    assert int(finding.evidence["bytes_read"]) <= 400_000  # type: ignore[arg-type]


def test_old_objects_and_max_objects_bound_the_read(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    name = bucket(aws_creds, moto_url, {f"logs/{i:03d}.log": CLEAN for i in range(12)})
    finding = run(live_ctx, target(moto_url, name, max_objects=5))[f"s3://{name}/"]
    assert finding.status == Status.UNVERIFIED and finding.evidence["read"] == "sampled"
    assert (finding.evidence["objects_read"], finding.evidence["objects_recent"]) == (5, 12)


def test_a_denied_listing_and_a_denied_object_are_unverified(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    name = bucket(aws_creds, moto_url, {"logs/a.log": CLEAN})
    tgt = target(moto_url, name, prefixes=["logs/"])
    client = live_ctx.clients.aws(sink_account(tgt.config)).client("s3", REGION)
    Fault(client, "GetObject", "AccessDenied", times=100, status=403)
    finding = run(live_ctx, tgt)[f"s3://{name}/logs/"]
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "s3:GetObject")
    Fault(client, "ListObjectsV2", "AccessDenied", times=100, status=403)
    listing = run(live_ctx, tgt)[f"s3://{name}/logs/"]
    assert (listing.status, listing.needs) == (Status.UNVERIFIED, "s3:ListBucket")


# --------------------------------------------------------------------------------------------
# Judgement on hand-built observations.

SINK = S3LogSinkConfig(kind="s3", name="alb", bucket="log-bucket",
                       account=AwsAccountConfig(name="prod", regions=["us-east-1"]))
TARGET = Target(TargetKind.LOG_SINK, "logs:alb", "alb", SINK)


def content(*kinds: KindSummary, **kw: Any) -> ContentScan:
    fields: dict[str, Any] = {
        "sources": 3, "bytes_read": 9000, "records": 300, "complete": True, "kinds": kinds,
        "records_with_hits": len(kinds), "first_lines": (7,) if kinds else (),
        "first_offsets": (), "preview": "xxxx=9999" if kinds else None,
        "validators": ("plan_keyword",) if kinds else (), "engine": "re2",
        "sources_with_hits": 1 if kinds else 0}
    fields.update(kw)
    return ContentScan(**fields)


def judge(*prefixes: PrefixObservation) -> list[Finding]:
    return list(CHECK.evaluate(S3Observation("alb", "log-bucket", 7, prefixes), TARGET,
                               Policy()))


def test_metadata_and_applicability() -> None:
    assert CHECK.meta.problems() == []
    assert [(o.system, o.action) for o in CHECK.meta.operations] == [
        (System.AWS, "s3:ListBucket"), (System.AWS, "s3:GetObject")]
    assert CHECK.applies_to(TARGET)


def test_pass_fail_and_each_unknown() -> None:
    plan = KindSummary(Kind.HEALTH_PLAN_ID, 1, 7, 7, 1)
    denied = Unknown(R.ACCESS_DENIED, "access to s3:ListBucket was denied", "s3:ListBucket")
    vanished = Unknown(R.NOT_VISIBLE, "an object vanished or shrank between listing and reading")
    findings = judge(
        PrefixObservation("clean/", 3, 3, 3, content()),
        PrefixObservation("leaky/", 3, 3, 3, content(plan), ("2026-12-03T08:00:00+00:00",)),
        PrefixObservation("denied/", denied),
        PrefixObservation("old/", 4, 0, 0, content(sources=0, records=0)),
        PrefixObservation("gone/", 1, 1, 1, content(sources=0, records=0, problems=(vanished,),
                                                    unread=1, complete=False)))
    status = {f.resource.split("/", 3)[-1]: (f.status, f.unknown_reason) for f in findings}
    assert status == {
        "clean/": (Status.PASS, None), "leaky/": (Status.FAIL, None),
        "denied/": (Status.UNVERIFIED, R.ACCESS_DENIED), "old/": (Status.UNVERIFIED, R.NOT_VISIBLE),
        "gone/": (Status.UNVERIFIED, R.NOT_VISIBLE)}
    leaky = findings[1]
    assert leaky.evidence["redaction_control"] == "none observed"
    assert leaky.evidence["modified_times_of_objects_with_identifiers"] == (
        "2026-12-03T08:00:00+00:00",)
