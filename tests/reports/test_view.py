"""The view groups and counts findings, bounded by the number of checks, never by resources."""

from __future__ import annotations

from report_sample import TLS_META, tls_finding

from hipaacheck.model import Standard, Status, UnknownReason
from hipaacheck.render.chart import BAR_WIDTH, MIN_SEGMENT
from hipaacheck.render.view import RESOURCE_LIMIT, build_view
from hipaacheck.result import ScanResult


def _group(view, check_id, status):
    return next(g for s in view.sections for g in s.groups
                if g.check_id == check_id and g.status is status)


def test_findings_of_one_check_and_status_form_one_counted_group(result):
    view = build_view(result)
    failed = _group(view, TLS_META.id, Status.FAIL)
    assert failed.count == 3 and failed.targets == 3
    assert [(t.value, t.count) for t in failed.reasons] == [("Accepts TLS 1.0.", 2),
                                                           ("Accepts TLS 1.1.", 1)]
    lowest = next(e for e in failed.evidence if e.key == "lowest")
    assert [(t.value, t.count) for t in lowest.values] == [("TLSv1.0", 2), ("TLSv1.1", 1)]
    assert [(t.value, t.count) for t in failed.waived] == [("W-7", 1)]


def test_groups_are_most_urgent_first_and_sections_cover_every_standard(result):
    view = build_view(result)
    assert [s.standard for s in view.sections] == list(Standard)
    transmission = next(s for s in view.sections if s.standard is Standard.TRANSMISSION)
    assert [g.status for g in transmission.groups] == [Status.FAIL, Status.UNVERIFIED,
                                                       Status.PASS]
    assert sum(s.total for s in view.sections) == len(result.findings)


def test_a_large_group_names_a_bounded_number_of_resources(result):
    many = tuple(tls_finding(Status.FAIL, n, reason=f"Accepts TLS 1.0 on port {n}.")
                 for n in range(RESOURCE_LIMIT * 5))
    big = ScanResult(**{**result.__dict__, "findings": many})
    group = _group(build_view(big), TLS_META.id, Status.FAIL)
    assert group.count == RESOURCE_LIMIT * 5
    assert len(group.resources) == RESOURCE_LIMIT and group.more == RESOURCE_LIMIT * 4
    assert len(group.reasons) + group.reasons_more == RESOURCE_LIMIT * 5


def test_what_could_not_be_observed_keeps_reason_and_missing_access(result):
    view = build_view(result)
    rows = {(u.status, u.check_id, u.unknown_reason, u.needs) for u in view.unobserved}
    assert (Status.UNVERIFIED, TLS_META.id, UnknownReason.TIMEOUT.value,
            "network reachability") in rows
    assert (Status.ERROR, "aws.s3.default_encryption", "-", "") in rows
    assert sum(u.count for u in view.unobserved) == (view.counts["UNVERIFIED"]
                                                     + view.counts["ERROR"])


def test_priorities_list_failures_most_severe_first(result):
    view = build_view(result)
    assert [g.check_id for g in view.priorities] == [
        "aws.backup.phi_coverage", "aws.s3.default_encryption", "postgres.audit.append_only",
        "postgres.audit.shared_credentials", TLS_META.id]  # high severity first, then by id


def test_chart_bars_fill_their_width_and_keep_small_counts_visible(result):
    chart = build_view(result).chart
    drawn = [row for row in chart.rows if row.total]
    assert drawn
    for row in drawn:
        assert abs(sum(s.width for s in row.segments) - BAR_WIDTH) < 0.05
        assert all(s.width >= MIN_SEGMENT for s in row.segments)
        assert sum(s.count for s in row.segments) == row.total


def test_methods_list_every_declared_operation_with_its_checks(result):
    view = build_view(result)
    declared = {(op.system.value, op.action) for m in result.checks for op in m.operations}
    listed = {(m.system, op.action) for m in view.methods for op in m.operations}
    assert listed == declared
