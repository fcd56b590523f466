"""
`logs.cloudwatch.phi` against moto's CloudWatch Logs over HTTP: groups by name and prefix,
paged and budgeted sampling, data protection policies, throttling, denial, and masked reads.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.cloudwatch import (
    PhiInCloudWatchLogs,
    UnmaskRefused,
    logs_client,
    sink_account,
)
from hipaacheck.config import AwsAccountConfig, CloudWatchSinkConfig
from hipaacheck.lab.aws import LabCredentials
from hipaacheck.model import Finding, Status, Target, TargetKind, UnknownReason

from .conftest import REGION, DataProtectionStore, Fault

CHECK = PhiInCloudWatchLogs(backoff=(0.01, 0.01))
LEAK = '{"level":"debug","msg":"request body","body":{"ssn":"219-45-6781","dob":"1957-03-14"}}'
CLEAN = '{"level":"info","msg":"request completed","request_id":"6f1c2f3a-9b4e-4c1d-8f2e"}'
HOUR = 3_600_000
ARN = "arn:aws:dataprotection::aws:data-identifier/"
FULL = ["Ssn-US", "DateOfBirth", "EmailAddress", "PhoneNumber-US", "Name", "Address",
        "CreditCardNumber", "MedicareBeneficiaryNumber-US", "HealthInsuranceClaimNumber-US"]


def policy(identifiers: list[str], deidentify: bool = True) -> str:
    arns = [ARN + i for i in identifiers]
    statements: list[dict[str, Any]] = [
        {"Sid": "audit", "DataIdentifier": arns,
         "Operation": {"Audit": {"FindingsDestination": {}}}}]
    if deidentify:
        statements.append({"Sid": "mask", "DataIdentifier": arns,
                           "Operation": {"Deidentify": {"MaskConfig": {}}}})
    return json.dumps({"Name": "phi", "Version": "2021-06-01", "Statement": statements})


def seed(creds: LabCredentials, url: str, group: str, *batches: tuple[int, list[str]],
         retention: int | None = None) -> Any:
    """Create `group` with one stream per batch of (age in ms, messages)."""
    logs = creds.client("logs", REGION, url)
    logs.create_log_group(logGroupName=group)
    if retention:
        logs.put_retention_policy(logGroupName=group, retentionInDays=retention)
    now = int(time.time() * 1000)
    for n, (age, messages) in enumerate(batches):
        stream = f"stream-{n}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now - age + i, "message": m} for i, m in enumerate(messages)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return logs


def target(url: str, **options: Any) -> Target:
    account = AwsAccountConfig(name="test", regions=[REGION], endpoint_url=url)
    sink = CloudWatchSinkConfig(kind="cloudwatch", name="cw", account=account, **options)
    return Target(TargetKind.LOG_SINK, "logs:cw", "cw", sink)


def run(ctx: CheckContext, tgt: Target,
        check: PhiInCloudWatchLogs = CHECK) -> dict[str, Finding]:
    return {f.resource: f for f in check.evaluate(check.collect(ctx, tgt), tgt, Policy())}


def calls(ctx: CheckContext, tgt: Target) -> list[Any]:
    return list(ctx.clients.aws(sink_account(tgt.config)).calls)


def test_groups_by_name_and_prefix_fail_pass_and_missing(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (HOUR, [CLEAN] * 20 + [LEAK] + [CLEAN] * 5))
    seed(aws_creds, moto_url, "/clinic/worker", (HOUR, [CLEAN] * 30))
    seed(aws_creds, moto_url, "/other/app", (HOUR, [LEAK]))
    tgt = target(moto_url, log_groups=["/clinic/api", "/clinic/nope"],
                 log_group_prefixes=["/clinic/", "/missing/"])
    findings = run(live_ctx, tgt)
    assert {r: f.status for r, f in findings.items()} == {
        f"{REGION}:/clinic/api": Status.FAIL, f"{REGION}:/clinic/worker": Status.PASS,
        "/clinic/nope": Status.UNVERIFIED, "/missing/*": Status.UNVERIFIED}
    fail = findings[f"{REGION}:/clinic/api"]
    assert fail.check_id == "logs.cloudwatch.phi" and fail.target == "logs:cw"
    assert set(fail.evidence["identifier_kinds"]) == {"ssn", "date_of_birth"}
    assert fail.evidence["redaction_control"] == "none"
    assert fail.evidence["records_read"] == 26 and fail.evidence["read"] == "complete"
    assert all(fail.evidence["first_seen_by_kind"])
    assert findings["/clinic/nope"].unknown_reason == UnknownReason.NOT_VISIBLE
    for value in ("219-45-6781", "219456781", "1957-03-14", "6f1c2f3a"):
        assert value not in repr(findings)


def test_only_reads_masked_events_with_the_declared_operations(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (HOUR, [LEAK]))
    tgt = target(moto_url, log_groups=["/clinic/api"])
    run(live_ctx, tgt)
    made = calls(live_ctx, tgt)
    declared = {op.action for op in CHECK.meta.operations}
    assert {c.iam_action for c in made} == declared
    assert not any("unmask" in c.subject.lower() for c in made)
    client = logs_client(live_ctx.clients.aws(sink_account(tgt.config)), REGION)
    with pytest.raises(UnmaskRefused):
        client.filter_log_events(logGroupName="/clinic/api", unmask=True)
    assert len(calls(live_ctx, tgt)) == len(made)  # refused before it was sent


def test_a_deidentify_policy_is_a_mitigating_control_and_audit_only_is_not(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    masked = seed(aws_creds, moto_url, "/clinic/masked", (HOUR, [CLEAN] * 3))
    masked.put_data_protection_policy(logGroupIdentifier="/clinic/masked",
                                      policyDocument=policy(FULL))
    audited = seed(aws_creds, moto_url, "/clinic/audited", (HOUR, [LEAK]))
    audited.put_data_protection_policy(logGroupIdentifier="/clinic/audited",
                                       policyDocument=policy(FULL, deidentify=False))
    partial = seed(aws_creds, moto_url, "/clinic/partial", (HOUR, [CLEAN]))
    partial.put_data_protection_policy(logGroupIdentifier="/clinic/partial",
                                       policyDocument=policy(["EmailAddress"]))
    findings = run(live_ctx, target(moto_url, log_group_prefixes=["/clinic/"]))
    ok = findings[f"{REGION}:/clinic/masked"]
    assert ok.status == Status.PASS and ok.evidence["redaction_control"] == "deidentify"
    leak = findings[f"{REGION}:/clinic/audited"]
    assert leak.status == Status.FAIL and leak.evidence["redaction_control"] == "audit_only"
    half = findings[f"{REGION}:/clinic/partial"]
    assert half.status == Status.PASS
    assert half.evidence["redaction_control"] == "deidentify_partial"
    assert "ssn" in half.evidence["redaction_leaves_unmasked"]


def test_events_from_before_the_policy_are_sampled_too(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str,
        data_protection: DataProtectionStore) -> None:
    logs = seed(aws_creds, moto_url, "/clinic/api",
                (84 * HOUR, [CLEAN, LEAK, CLEAN]), (HOUR, [CLEAN] * 4), retention=30)
    logs.put_data_protection_policy(logGroupIdentifier="/clinic/api",
                                    policyDocument=policy(FULL))
    data_protection.backdate(aws_creds.account_id, "/clinic/api",
                             int(time.time() * 1000) - 72 * HOUR)
    tgt = target(moto_url, log_groups=["/clinic/api"])
    finding = run(live_ctx, tgt)[f"{REGION}:/clinic/api"]
    assert finding.status == Status.FAIL
    assert [w.split()[0] for w in finding.evidence["windows_read"]] == ["recent",
                                                                        "before_policy"]
    assert finding.evidence["redaction_control"] == "deidentify"
    assert set(finding.evidence["found_kinds_the_control_masks"]) == {"ssn", "date_of_birth"}
    assert finding.evidence["retention_days"] == 30
    without = run(live_ctx, target(moto_url, log_groups=["/clinic/api"],
                                   sample_before_policy=False))[f"{REGION}:/clinic/api"]
    assert without.status == Status.PASS


def test_events_ingested_before_a_new_policy_are_named_as_such(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    logs = seed(aws_creds, moto_url, "/clinic/api", (HOUR, [LEAK]))
    time.sleep(0.01)
    logs.put_data_protection_policy(logGroupIdentifier="/clinic/api",
                                    policyDocument=policy(FULL))
    finding = run(live_ctx, target(moto_url, log_groups=["/clinic/api"]))[
        f"{REGION}:/clinic/api"]
    assert finding.status == Status.FAIL
    assert finding.evidence["records_with_identifiers_before_policy"] == 1
    assert "before the data protection policy" in finding.reason


def test_an_account_policy_counts_for_every_group(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    logs = seed(aws_creds, moto_url, "/clinic/api", (HOUR, [CLEAN]))
    logs.put_account_policy(policyName="phi", policyDocument=policy(FULL),
                            policyType="DATA_PROTECTION_POLICY", scope="ALL")
    finding = run(live_ctx, target(moto_url, log_groups=["/clinic/api"]))[
        f"{REGION}:/clinic/api"]
    assert finding.evidence["redaction_control"] == "deidentify"
    assert finding.evidence["policy_sources"] == ("account",)


def test_paging_within_the_event_budget_is_an_unverified_sample(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (2 * HOUR, [CLEAN] * 300), (HOUR, [CLEAN] * 300))
    tgt = target(moto_url, log_groups=["/clinic/api"], max_events_per_group=100)
    finding = run(live_ctx, tgt)[f"{REGION}:/clinic/api"]
    assert finding.status == Status.UNVERIFIED and finding.evidence["read"] == "sampled"
    assert finding.evidence["records_read"] <= 100
    pages = [c for c in calls(live_ctx, tgt) if c.operation == "FilterLogEvents"]
    assert len(pages) >= 4  # one per slice of the window at least


def test_the_byte_budget_stops_the_read(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (HOUR, [CLEAN] * 200))
    tgt = target(moto_url, log_groups=["/clinic/api"], max_bytes_per_group=2000)
    finding = run(live_ctx, tgt)[f"{REGION}:/clinic/api"]
    assert finding.evidence["read"] == "sampled"
    assert 0 < int(finding.evidence["bytes_read"]) <= 2000  # type: ignore[arg-type]


def test_throttling_is_waited_out_and_persistent_throttling_is_unverified(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (HOUR, [LEAK]))
    tgt = target(moto_url, log_groups=["/clinic/api"])
    client = logs_client(live_ctx.clients.aws(sink_account(tgt.config)), REGION)
    attempts = live_ctx.clients.aws(sink_account(tgt.config)).max_attempts
    # Throttled past botocore's own retries: the check waits and tries again.
    fault = Fault(client, "FilterLogEvents", "ThrottlingException", times=attempts)
    assert run(live_ctx, tgt)[f"{REGION}:/clinic/api"].status == Status.FAIL
    assert fault.seen > attempts  # the throttled attempts, then the pages that followed
    Fault(client, "FilterLogEvents", "ThrottlingException", times=attempts)
    patient = PhiInCloudWatchLogs(backoff=())
    finding = run(live_ctx, tgt, patient)[f"{REGION}:/clinic/api"]
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.THROTTLED)


def test_denied_reads_are_unverified_naming_the_permission(
        live_ctx: CheckContext, aws_creds: LabCredentials, moto_url: str) -> None:
    seed(aws_creds, moto_url, "/clinic/api", (HOUR, [CLEAN]))
    tgt = target(moto_url, log_groups=["/clinic/api"])
    client = logs_client(live_ctx.clients.aws(sink_account(tgt.config)), REGION)
    Fault(client, "FilterLogEvents", "AccessDeniedException", times=100)
    Fault(client, "GetDataProtectionPolicy", "AccessDeniedException", times=100)
    finding = run(live_ctx, tgt)[f"{REGION}:/clinic/api"]
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "logs:FilterLogEvents")
    assert finding.evidence["redaction_control"] == "unknown"
    assert finding.evidence["redaction_control_needs"] == "logs:GetDataProtectionPolicy"
    Fault(client, "DescribeLogGroups", "AccessDeniedException", times=100)
    listing = run(live_ctx, tgt)[REGION]
    assert (listing.status, listing.needs) == (Status.UNVERIFIED, "logs:DescribeLogGroups")
