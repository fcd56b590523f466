"""The judgement of `logs.files.phi` on hand-built observations: PASS, FAIL and UNVERIFIED."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hipaacheck.check import Policy
from hipaacheck.checks.logs.files import (
    FileObservation,
    FileScan,
    LogSinkObservation,
    PhiInLogFiles,
)
from hipaacheck.detectors.phi import Kind, KindSummary
from hipaacheck.model import (
    Family,
    Finding,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

CHECK = PhiInLogFiles()


def scan(*kinds: KindSummary, **kw: object) -> FileScan:
    """A scan of a 100-line file that found `kinds`; keywords override any field."""
    fields: dict[str, object] = {
        "bytes_read": 5000, "lines": 100, "complete": True, "sampled": False,
        "compression": "none", "long_lines": 0, "kinds": kinds, "lines_with_hits": len(kinds),
        "first_lines": (3,) if kinds else (),
        "preview": '{"ssn": "999-99-9999"}' if kinds else None,
        "validators": ("ssn_format",) if kinds else (), "engine": "re2"}
    fields.update(kw)
    return FileScan(**fields)  # type: ignore[arg-type]


def judge(sink_target: Callable[..., Target], *files: FileObservation) -> Sequence[Finding]:
    target = sink_target("/var/log/app/*.log")
    return CHECK.evaluate(LogSinkObservation("app", 1000, files), target, Policy())


def test_metadata_is_complete() -> None:
    meta = CHECK.meta
    assert meta.problems() == []
    assert (meta.id, meta.family, meta.standard, meta.target_kind) == (
        "logs.files.phi", Family.PHI_LOGS, Standard.AUDIT_CONTROLS, TargetKind.LOG_SINK)
    assert meta.citations == ("164.312(b)", "164.502(b)", "164.514(d)")
    assert [(o.system, o.action) for o in meta.operations] == [(System.FILE, "read")]


def test_a_clean_file_read_completely_passes(sink_target: Callable[..., Target]) -> None:
    [finding] = judge(sink_target, FileObservation("/var/log/app/a.log", scan()))
    assert (finding.check_id, finding.status, finding.resource) == (
        "logs.files.phi", Status.PASS, "/var/log/app/a.log")
    assert finding.evidence["read"] == "complete"


def test_a_clean_sample_is_unverified_and_says_sampled(sink_target: Callable[..., Target]) -> None:
    # A clean sample says nothing about the bytes it skipped: never a PASS.
    [finding] = judge(sink_target, FileObservation(
        "/var/log/app/big.log", scan(complete=False, sampled=True)))
    assert finding.status == Status.UNVERIFIED and finding.evidence["read"] == "sampled"
    assert finding.unknown_reason == UnknownReason.NOT_VISIBLE and finding.needs


def test_identifiers_fail_with_kinds_counts_and_lines(sink_target: Callable[..., Target]) -> None:
    rows = (KindSummary(Kind.SSN, 4, 3, 90, 2), KindSummary(Kind.EMAIL, 1, 7, 7, 1))
    [finding] = judge(sink_target, FileObservation("/var/log/app/a.log", scan(*rows)))
    assert finding.status == Status.FAIL
    ev = finding.evidence
    assert ev["identifier_kinds"] == ("ssn", "email") and ev["identifier_counts"] == (4, 1)
    assert ev["distinct_values"] == (2, 1) and ev["first_line_by_kind"] == (3, 7)
    assert ev["first_lines"] == (3,) and ev["validators"] == ("ssn_format",)
    assert ev["first_hit_preview"] == '{"ssn": "999-99-9999"}'
    assert ev["provider_identifiers_only"] is False


def test_provider_identifiers_alone_still_fail_and_say_so(
        sink_target: Callable[..., Target]) -> None:
    [finding] = judge(sink_target, FileObservation(
        "/var/log/app/a.log", scan(KindSummary(Kind.NPI, 1, 2, 2, 1))))
    assert finding.status == Status.FAIL and finding.evidence["provider_identifiers_only"] is True


def test_an_unreadable_file_is_unverified(sink_target: Callable[..., Target]) -> None:
    unknown = Unknown(UnknownReason.ACCESS_DENIED, "permission denied reading the file",
                      needs="read permission on the file")
    [finding] = judge(sink_target, FileObservation("/var/log/app/a.log", unknown))
    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, "read permission on the file")


def test_a_partial_clean_read_is_unverified(sink_target: Callable[..., Target]) -> None:
    problem = Unknown(UnknownReason.UNPARSEABLE, "the gzip stream is truncated")
    [finding] = judge(sink_target, FileObservation(
        "/var/log/app/a.log.1.gz", scan(complete=False, problem=problem)))
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


def test_a_partial_read_with_identifiers_still_fails(sink_target: Callable[..., Target]) -> None:
    problem = Unknown(UnknownReason.UNPARSEABLE, "the gzip stream is truncated")
    [finding] = judge(sink_target, FileObservation(
        "/var/log/app/a.log.1.gz",
        scan(KindSummary(Kind.SSN, 1, 2, 2, 1), complete=False, problem=problem)))
    assert finding.status == Status.FAIL and finding.evidence["read"] == "partial"


def test_a_path_matching_nothing_is_unverified(sink_target: Callable[..., Target]) -> None:
    nothing = Unknown(UnknownReason.NOT_VISIBLE, "the configured path matches no file")
    [finding] = judge(sink_target, FileObservation("/var/log/app/*.log", nothing))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_VISIBLE


def test_a_sink_without_files_is_unverified_never_pass(sink_target: Callable[..., Target]) -> None:
    [finding] = judge(sink_target)
    assert finding.status == Status.UNVERIFIED and finding.resource == "app"


def test_one_finding_per_file(sink_target: Callable[..., Target]) -> None:
    findings = judge(sink_target, FileObservation("/a.log", scan()),
                     FileObservation("/b.log", scan(KindSummary(Kind.SSN, 1, 1, 1, 1))))
    assert [(f.resource, f.status) for f in findings] == [
        ("/a.log", Status.PASS), ("/b.log", Status.FAIL)]
