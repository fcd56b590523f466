"""The judgement of `logs.cloudwatch.phi` on hand-built observations, and its policy reading."""

from __future__ import annotations

import json
from typing import Any

from hipaacheck.check import Policy
from hipaacheck.checks.logs.cloudwatch import (
    CloudWatchObservation,
    GroupObservation,
    PhiInCloudWatchLogs,
    PolicyView,
    Window,
    control_of,
    parse_policy,
    plan_windows,
)
from hipaacheck.checks.logs.common import ContentScan
from hipaacheck.config import AwsAccountConfig, CloudWatchSinkConfig
from hipaacheck.detectors.phi import Kind, KindSummary
from hipaacheck.model import Family, Finding, Status, System, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R

CHECK = PhiInCloudWatchLogs()
SINK = CloudWatchSinkConfig(kind="cloudwatch", name="cw", log_groups=["/clinic/api"],
                            account=AwsAccountConfig(name="prod", regions=["us-east-1"]))
TARGET = Target(TargetKind.LOG_SINK, "logs:cw", "cw", SINK)
DENIED = Unknown(R.ACCESS_DENIED, "access to logs:FilterLogEvents was denied",
                 needs="logs:FilterLogEvents")
MASKING = PolicyView(frozenset({"Ssn-US", "DateOfBirth", "EmailAddress", "PhoneNumber-US",
                                "Name", "Address", "CreditCardNumber",
                                "MedicareBeneficiaryNumber-US",
                                "HealthInsuranceClaimNumber-US"}),
                     frozenset({"Ssn-US"}), 0, 1_700_000_000_000, ("log group",))


def scan(*kinds: KindSummary, **kw: Any) -> ContentScan:
    fields: dict[str, Any] = {
        "sources": 1, "bytes_read": 4000, "records": 40, "complete": True, "kinds": kinds,
        "records_with_hits": len(kinds), "first_lines": (3,) if kinds else (),
        "first_offsets": (),
        "preview": '{"ssn": "999-99-9999"}' if kinds else None,
        "validators": ("ssn_format",) if kinds else (), "engine": "hyperscan",
        "sources_with_hits": 1 if kinds else 0}
    fields.update(kw)
    return ContentScan(**fields)


SSN = KindSummary(Kind.SSN, 2, 3, 9, 1, first_time=1_700_000_000_000,
                  last_time=1_700_000_100_000)


def group(content: ContentScan, policy: Any = None, **kw: Any) -> GroupObservation:
    return GroupObservation("us-east-1", "/clinic/api", 30,
                            PolicyView() if policy is None else policy, content,
                            (Window("recent", 0, 1),), **kw)


def judge(*groups: GroupObservation, problems: tuple[Any, ...] = ()) -> list[Finding]:
    return list(CHECK.evaluate(CloudWatchObservation("cw", 24, groups, problems), TARGET,
                               Policy()))


def test_metadata_declares_masked_reads_only() -> None:
    meta = CHECK.meta
    assert meta.problems() == [] and meta.family == Family.PHI_LOGS
    assert [(o.system, o.action) for o in meta.operations] == [
        (System.AWS, "logs:DescribeLogGroups"), (System.AWS, "logs:GetDataProtectionPolicy"),
        (System.AWS, "logs:DescribeAccountPolicies"), (System.AWS, "logs:FilterLogEvents")]
    assert not any("Unmask" in o.action for o in meta.operations)
    assert CHECK.applies_to(TARGET)
    assert not CHECK.applies_to(Target(TargetKind.LOG_SINK, "logs:x", "x", None))


def test_a_clean_sample_passes_with_its_control() -> None:
    [finding] = judge(group(scan(), MASKING))
    assert (finding.status, finding.resource) == (Status.PASS, "us-east-1:/clinic/api")
    assert finding.evidence["redaction_control"] == "deidentify"


def test_identifiers_fail_with_kinds_times_and_control() -> None:
    [finding] = judge(group(scan(SSN), MASKING, hits_after_policy=2))
    assert finding.status == Status.FAIL
    assert finding.evidence["identifier_kinds"] == ("ssn",)
    assert finding.evidence["first_seen_by_kind"] == ("2023-11-14T22:13:20+00:00",)
    assert finding.evidence["found_kinds_the_control_masks"] == ("ssn",)
    assert "before the data protection policy" not in finding.reason


def test_identifiers_only_from_before_the_policy_say_so() -> None:
    [finding] = judge(group(scan(SSN), MASKING, hits_before_policy=2))
    assert finding.status == Status.FAIL and "before the data protection policy" in finding.reason


def test_a_denied_read_is_unverified_naming_the_permission() -> None:
    [finding] = judge(group(scan(complete=False, problems=(DENIED,), unread=1, sources=0)))
    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, R.ACCESS_DENIED, "logs:FilterLogEvents")


def test_a_partial_read_with_identifiers_still_fails() -> None:
    throttled = Unknown(R.THROTTLED, "CloudWatch Logs kept throttling logs:FilterLogEvents")
    [finding] = judge(group(scan(SSN, complete=False, problems=(throttled,))))
    assert finding.status == Status.FAIL and finding.evidence["read"] == "partial"


def test_an_unreadable_policy_leaves_the_control_unknown_not_the_content() -> None:
    unknown = Unknown(R.ACCESS_DENIED, "denied", needs="logs:GetDataProtectionPolicy")
    [finding] = judge(group(scan(), unknown))
    assert finding.status == Status.PASS
    assert finding.evidence["redaction_control"] == "unknown"
    assert finding.evidence["redaction_control_needs"] == "logs:GetDataProtectionPolicy"


def test_listing_problems_and_an_empty_sink_are_unverified() -> None:
    missing = Unknown(R.NOT_VISIBLE, "the log group does not exist in any configured region")
    findings = judge(problems=(("/clinic/nope", missing), ("eu-west-1", DENIED)))
    assert [(f.resource, f.status) for f in findings] == [
        ("/clinic/nope", Status.UNVERIFIED), ("eu-west-1", Status.UNVERIFIED)]
    [nothing] = judge()
    assert nothing.status == Status.UNVERIFIED and nothing.unknown_reason == R.NOT_VISIBLE


def test_policies_read_as_controls() -> None:
    def doc(*statements: tuple[str, list[str]]) -> str:
        return json.dumps({"Statement": [
            {"DataIdentifier": [f"arn:aws:dataprotection::aws:data-identifier/{i}" for i in ids],
             "Operation": {op: {}}} for op, ids in statements]})

    audit = parse_policy(doc(("Audit", ["Ssn-US"])), 5, "log group")
    assert isinstance(audit, PolicyView) and control_of(audit).state == "audit_only"
    assert audit.updated_ms is None  # nothing masked: there is no "before the policy"
    partial = parse_policy(doc(("Audit", ["Ssn-US"]), ("Deidentify", ["Ssn-US"])), 5, "g")
    control = control_of(partial)
    assert control.state == "deidentify_partial" and Kind.SSN in control.masks
    assert Kind.EMAIL in control.missing
    assert control_of(PolicyView()).state == "none"
    assert isinstance(parse_policy("{not json", 1, "log group"), Unknown)


def test_the_window_before_the_policy_respects_retention() -> None:
    day = 86_400_000
    now = 100 * day
    assert [w.label for w in plan_windows(now, day, None, 30, True)] == ["recent"]
    windows = plan_windows(now, day, now - 10 * day, 30, True)
    assert windows[1] == Window("before_policy", now - 11 * day, now - 10 * day)
    assert len(plan_windows(now, day, now - 40 * day, 30, True)) == 1  # expired already
    assert len(plan_windows(now, day, now - 10 * day, 30, False)) == 1
    # A policy inside the recent window: the span before it continues where "recent" starts.
    recent, before = plan_windows(now, day, now - day // 2, None, True)
    assert (before.start_ms, before.end_ms) == (now - day - day // 2, recent.start_ms)
