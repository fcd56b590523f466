"""
kubernetes.velero.schedules: the duration and cron readers, evaluate with hand-built
observations, and collect against the API stand-in serving the lab cluster's Velero objects
(and a cluster without Velero).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.kubernetes.backup import (
    NEEDS_BACKUPS,
    NEEDS_SCHEDULES,
    ScheduleBackups,
    VeleroObservation,
    VeleroSchedule,
    VeleroSchedules,
    covers,
    group_backups,
    parse_go_duration,
    schedule_facts,
    schedule_period,
)
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.lab.kubeapi import (
    FIXTURES,
    KubeApiStandIn,
    RecordedRequest,
    load_objects,
    write_kubeconfig,
)
from hipaacheck.model import Status, System, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.permissions import kubernetes_cluster_role

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
CHECK = VeleroSchedules()
NOW = datetime(2024, 7, 2, tzinfo=UTC)
SCHEDULES_PATH = "/apis/velero.io/v1/schedules"
BACKUPS_PATH = "/apis/velero.io/v1/backups"
DAY = timedelta(days=1)


def _schedule(name: str = "daily", **changes: Any) -> VeleroSchedule:
    base = VeleroSchedule(
        namespace="velero", name=name, schedule="0 3 * * *", paused=False, phase="Enabled",
        validation_errors=0, ttl=timedelta(days=90), included=("clinical",), excluded=(),
        label_selector=False, snapshot_volumes=True, fs_backup=None,
        last_backup=NOW - timedelta(hours=21), created=NOW - timedelta(days=100))
    return replace(base, **changes)


def _backups(last_completed: datetime | None = NOW - timedelta(hours=20), *,
             phase: str = "Completed", attempt: datetime | None = None,
             ttl: timedelta | None = None) -> ScheduleBackups:
    return ScheduleBackups(completed=0 if last_completed is None else 3,
                           last_completed=last_completed,
                           last_attempt=attempt or last_completed, last_attempt_phase=phase,
                           latest_ttl=ttl)


def _evaluate(*schedules: VeleroSchedule, backups: Any = None, phi: tuple[str, ...] = (),
              policy: Policy | None = None) -> dict[str, Any]:
    if backups is None:
        backups = {(s.namespace, s.name): _backups() for s in schedules}
    obs = VeleroObservation(schedules=schedules, backups=backups, observed_at=NOW,
                            phi_namespaces=phi)
    return {f.resource: f for f in CHECK.evaluate(obs, TARGET, policy or Policy())}


def _one(schedule: VeleroSchedule, backups: ScheduleBackups | None = None,
         policy: Policy | None = None) -> Any:
    table = {} if backups is None else {(schedule.namespace, schedule.name): backups}
    return _evaluate(schedule, backups=table, policy=policy)[f"schedule/velero/{schedule.name}"]


# --- metadata and readers ---------------------------------------------------------------------

def test_metadata_is_complete() -> None:
    meta = VeleroSchedules.meta

    assert meta.problems() == []
    assert meta.citations == ("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)")
    assert {(o.system, o.action) for o in meta.operations} == {
        (System.KUBERNETES, "list velero.io/schedules"),
        (System.KUBERNETES, "list velero.io/backups")}
    role = yaml.safe_load(kubernetes_cluster_role([meta]))
    assert role["rules"] == [
        {"apiGroups": ["velero.io"], "resources": ["backups"], "verbs": ["list"]},
        {"apiGroups": ["velero.io"], "resources": ["schedules"], "verbs": ["list"]}]


def _declared(requests: list[RecordedRequest]) -> set[str]:
    """The operation each request needed, as a check declares it (`list velero.io/backups`)."""
    actions = set()
    for request in requests:
        parts = [p for p in request.path.split("/") if p]
        group = "" if parts[0] == "api" else parts[1] + "/"
        actions.add(f"list {group}{parts[-1]}")
    return actions


@pytest.mark.parametrize(("text", "expected"), [
    ("720h0m0s", timedelta(days=30)), ("1h30m", timedelta(minutes=90)),
    ("90s", timedelta(seconds=90)),
    ("1.5h", timedelta(minutes=90)), ("0s", timedelta(0)), ("", None), ("30d", None),
    ("h", None), ("720", None)])
def test_parse_go_duration(text: str, expected: timedelta | None) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(("expression", "expected"), [
    ("0 3 * * *", DAY), ("*/15 * * * *", timedelta(hours=1)),
    ("0 */6 * * *", timedelta(hours=6)),
    ("0 4 * * 0", 7 * DAY), ("0 2 1 * *", 31 * DAY), ("0 0 1 1 *", 366 * DAY),
    ("@daily", DAY), ("@every 12h", timedelta(hours=12)), ("CRON_TZ=UTC 0 3 * * *", DAY),
    ("0 3 * *", None), ("@sometimes", None), ("", None)])
def test_schedule_period(expression: str, expected: timedelta | None) -> None:
    assert schedule_period(expression) == expected


def test_covers_reads_includes_excludes_and_globs() -> None:
    everything = _schedule(included=(), excluded=("kube-*",))

    assert covers(everything, "clinical")
    assert not covers(everything, "kube-system")
    assert covers(_schedule(included=("clin*",)), "clinical")
    assert not covers(_schedule(included=("billing",)), "clinical")


def test_schedule_facts_survive_malformed_objects() -> None:
    facts = schedule_facts({"metadata": {"name": "odd", "namespace": "velero"}, "spec": "bad",
                            "status": ["not", "a", "mapping"]})

    assert (facts.name, facts.schedule, facts.ttl, facts.paused, facts.phase) == (
        "odd", "", None, False, None)


def test_group_backups_by_schedule() -> None:
    def backup(name: str, schedule: str | None, phase: str, started: str) -> dict[str, Any]:
        labels = {"velero.io/schedule-name": schedule} if schedule else {}
        return {"metadata": {"name": name, "namespace": "velero", "labels": labels},
                "spec": {"ttl": "240h0m0s"},
                "status": {"phase": phase, "startTimestamp": started,
                           "completionTimestamp": started.replace("T03", "T04")}}

    grouped = group_backups([
        backup("a1", "a", "Completed", "2024-06-30T03:00:00Z"),
        backup("a2", "a", "Failed", "2024-07-01T03:00:00Z"),
        backup("manual", None, "Completed", "2024-07-01T05:00:00Z")])

    assert grouped == {("velero", "a"): ScheduleBackups(
        completed=1, last_completed=datetime(2024, 6, 30, 4, tzinfo=UTC),
        last_attempt=datetime(2024, 7, 1, 3, tzinfo=UTC), last_attempt_phase="Failed",
        latest_ttl=timedelta(days=10))}


# --- evaluate: one Schedule -------------------------------------------------------------------

def test_pass_for_a_sound_schedule() -> None:
    finding = _one(_schedule(), _backups())

    assert finding.status == Status.PASS
    assert finding.evidence["ttl_days"] == 90
    assert finding.evidence["last_success_age_hours"] == 20
    assert finding.evidence["period_hours"] == 24


@pytest.mark.parametrize(("schedule", "word"), [
    (_schedule(paused=True), "paused"),
    (_schedule(phase="FailedValidation", validation_errors=2), "validation"),
    (_schedule(ttl=timedelta(days=3)), "minimum"),
    (_schedule(schedule="0 2 1 * *", ttl=timedelta(days=20)), "shorter than the time")])
def test_fail_for_paused_invalid_or_short_lived(schedule: VeleroSchedule, word: str) -> None:
    finding = _one(schedule, _backups())

    assert finding.status == Status.FAIL
    assert word in finding.reason


def test_warn_below_the_recommended_retention() -> None:
    finding = _one(_schedule(ttl=timedelta(days=30)), _backups())
    relaxed = _one(_schedule(ttl=timedelta(days=30)), _backups(),
                   policy=Policy(recommended_backup_retention_days=30))

    assert (finding.status, relaxed.status) == (Status.WARN, Status.PASS)


@pytest.mark.parametrize(("age", "status"), [
    (timedelta(hours=24), Status.PASS), (timedelta(hours=26), Status.WARN),
    (timedelta(hours=50), Status.FAIL)])
def test_freshness_against_the_schedule_period(age: timedelta, status: Status) -> None:
    assert _one(_schedule(), _backups(NOW - age)).status == status


def test_unreadable_cron_is_judged_as_daily() -> None:
    finding = _one(_schedule(schedule="whenever"), _backups(NOW - timedelta(hours=50)))

    assert finding.status == Status.FAIL
    assert finding.evidence["period_hours"] is None


def test_no_completed_backup_fails_unless_the_schedule_is_new() -> None:
    old = _one(_schedule(), _backups(None, phase="PartiallyFailed", attempt=NOW - DAY))
    new = _one(_schedule(created=NOW - timedelta(hours=3)), None)

    assert old.status == Status.FAIL
    assert "PartiallyFailed" in old.reason
    assert new.status == Status.WARN


def test_latest_backup_partly_failed_warns() -> None:
    backups = _backups(NOW - timedelta(hours=20), phase="PartiallyFailed",
                       attempt=NOW - timedelta(hours=2))

    finding = _one(_schedule(schedule="0 */6 * * *"), backups)

    # The last Completed one is overdue too, for a six-hourly schedule: worst is FAIL.
    assert finding.status == Status.FAIL
    assert _one(_schedule(), backups).status == Status.WARN


def test_warn_when_no_volume_data_is_backed_up() -> None:
    finding = _one(_schedule(snapshot_volumes=False), _backups())
    with_fs_backup = _one(_schedule(snapshot_volumes=False, fs_backup=True), _backups())

    assert (finding.status, with_fs_backup.status) == (Status.WARN, Status.PASS)


def test_unset_ttl_uses_the_latest_backup_or_is_unverified() -> None:
    stamped = _one(_schedule(ttl=None), _backups(ttl=timedelta(days=40)))
    unknown = _one(_schedule(ttl=None), _backups())
    garbled = _one(_schedule(ttl=Unknown(UnknownReason.UNPARSEABLE, "bad ttl")), _backups())

    assert (stamped.status, stamped.evidence["ttl_days"]) == (Status.PASS, 40)
    assert (unknown.status, unknown.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_VISIBLE)
    assert unknown.needs == "spec.template.ttl on the Schedule"
    assert (garbled.status, garbled.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


def test_unlisted_backups_are_unverified_but_observed_failures_still_fail() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "refused", needs=NEEDS_BACKUPS)

    results = _evaluate(_schedule("sound"), _schedule("paused", paused=True), backups=denied)

    sound, paused = results["schedule/velero/sound"], results["schedule/velero/paused"]
    assert (sound.status, sound.unknown_reason, sound.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_BACKUPS)
    assert sound.evidence["last_backup_started"] == (NOW - timedelta(hours=21)).isoformat()
    assert paused.status == Status.FAIL


# --- evaluate: the cluster --------------------------------------------------------------------

def test_velero_not_installed_is_one_unverified_finding_not_a_fail() -> None:
    absent = Unknown(UnknownReason.NOT_SUPPORTED, "the API server does not serve this type")
    obs = VeleroObservation(schedules=absent, backups=absent, observed_at=NOW,
                            phi_namespaces=("clinical",))

    findings = CHECK.evaluate(obs, TARGET, Policy())

    assert [(f.resource, f.status, f.unknown_reason) for f in findings] == [
        ("velero", Status.UNVERIFIED, UnknownReason.NOT_SUPPORTED)]
    assert "not installed" in findings[0].reason


@pytest.mark.parametrize("reason", [UnknownReason.ACCESS_DENIED, UnknownReason.TIMEOUT,
                                    UnknownReason.UNREACHABLE])
def test_unlisted_schedules_are_unverified(reason: UnknownReason) -> None:
    unknown = Unknown(reason, "could not list", needs=NEEDS_SCHEDULES)
    obs = VeleroObservation(schedules=unknown, backups=unknown, observed_at=NOW)

    findings = CHECK.evaluate(obs, TARGET, Policy())

    assert [(f.resource, f.status, f.unknown_reason, f.needs) for f in findings] == [
        ("velero", Status.UNVERIFIED, reason, NEEDS_SCHEDULES)]


def test_installed_without_schedules_fails() -> None:
    results = _evaluate(phi=("clinical",))

    assert {r: f.status for r, f in results.items()} == {
        "velero": Status.FAIL, "namespace/clinical": Status.FAIL}


def test_phi_namespace_coverage() -> None:
    results = _evaluate(
        _schedule("clinical", included=("clinical",)),
        _schedule("all-but-audit", included=("*",), excluded=("audit",), ttl=timedelta(days=3)),
        _schedule("billing-labelled", included=("billing",), label_selector=True),
        _schedule("paused-lab", included=("lab",), paused=True),
        phi=("clinical", "audit", "reports", "billing", "lab"))

    assert {r: f.status for r, f in results.items() if r.startswith("namespace/")} == {
        "namespace/clinical": Status.PASS,       # the sound schedule wins over the short-lived
        "namespace/audit": Status.FAIL,          # excluded everywhere
        "namespace/reports": Status.FAIL,        # only by a schedule that keeps 3 days
        "namespace/billing": Status.WARN,        # only the label-selected resources
        "namespace/lab": Status.FAIL}            # only by a paused schedule
    assert results["namespace/clinical"].evidence["schedules"] == (
        "velero/all-but-audit", "velero/clinical")


def test_coverage_by_an_unverifiable_schedule_is_unverified() -> None:
    denied = Unknown(UnknownReason.ACCESS_DENIED, "refused", needs=NEEDS_BACKUPS)

    results = _evaluate(_schedule(), backups=denied, phi=("clinical",))

    assert (results["namespace/clinical"].status, results["namespace/clinical"].needs) == (
        Status.UNVERIFIED, NEEDS_BACKUPS)


# --- collect against the stand-in -------------------------------------------------------------

def _run(ctx: CheckContext, target: Target) -> dict[str, Any]:
    return {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, target), target,
                                                   ctx.policy)}


def _with_phi(target: Target, *namespaces: str) -> Target:
    assert isinstance(target.config, KubernetesClusterConfig)
    config = target.config.model_copy(update={"namespaces": list(namespaces)})
    return Target(target.kind, target.id, target.name, config)


def test_collect_judges_the_lab_schedules(kube_target: Target, kube_standin: KubeApiStandIn,
                                          make_ctx: Callable[..., CheckContext]) -> None:
    results = _run(make_ctx(), _with_phi(kube_target, "clinical", "audit"))

    assert {r: f.status for r, f in results.items()} == {
        "schedule/velero/clinical-daily": Status.PASS,
        "schedule/velero/audit-weekly": Status.FAIL,
        "schedule/velero/cluster-nightly": Status.FAIL,
        "namespace/clinical": Status.PASS, "namespace/audit": Status.FAIL}
    weekly = results["schedule/velero/audit-weekly"]
    assert (weekly.evidence["ttl_days"], weekly.evidence["last_attempt_phase"]) == (
        3, "PartiallyFailed")
    assert results["schedule/velero/clinical-daily"].evidence["completed_backups"] == 2
    assert [(r.method, r.path, r.query.get("labelSelector")) for r in kube_standin.requests] == [
        ("GET", SCHEDULES_PATH, None), ("GET", BACKUPS_PATH, "velero.io/schedule-name")]
    assert _declared(kube_standin.requests) == {o.action for o in CHECK.meta.operations}


def test_collect_reads_each_listing_once_per_scan(kube_target: Target,
                                                  kube_standin: KubeApiStandIn,
                                                  make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()

    CHECK.collect(ctx, kube_target)
    CHECK.collect(ctx, kube_target)

    assert [r.path for r in kube_standin.requests] == [SCHEDULES_PATH, BACKUPS_PATH]


def test_collect_forbidden_schedules_is_unverified(kube_target: Target,
                                                   kube_standin: KubeApiStandIn,
                                                   make_ctx: Callable[..., CheckContext]
                                                   ) -> None:
    kube_standin.forbid(SCHEDULES_PATH)

    findings = list(_run(make_ctx(), kube_target).values())

    assert [(f.status, f.unknown_reason, f.needs) for f in findings] == [
        (Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_SCHEDULES)]
    assert [r.path for r in kube_standin.requests] == [SCHEDULES_PATH]


def test_collect_forbidden_backups_leaves_success_unverified(
        kube_target: Target, kube_standin: KubeApiStandIn,
        make_ctx: Callable[..., CheckContext]) -> None:
    kube_standin.forbid(BACKUPS_PATH)

    results = _run(make_ctx(), kube_target)

    daily = results["schedule/velero/clinical-daily"]
    assert (daily.status, daily.unknown_reason, daily.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, NEEDS_BACKUPS)
    assert results["schedule/velero/audit-weekly"].status == Status.FAIL
    assert not any(f.status == Status.PASS for f in results.values())


@pytest.mark.parametrize(("fault", "reason"), [
    ("hang", UnknownReason.TIMEOUT), ("fail", UnknownReason.UNREACHABLE)])
def test_collect_hang_and_server_error_are_unverified(
        fault: str, reason: UnknownReason, kube_target: Target, kube_standin: KubeApiStandIn,
        make_ctx: Callable[..., CheckContext]) -> None:
    getattr(kube_standin, fault)(SCHEDULES_PATH)

    findings = list(_run(make_ctx(timeout=0.3), kube_target).values())

    assert [(f.resource, f.status, f.unknown_reason) for f in findings] == [
        ("velero", Status.UNVERIFIED, reason)]


def test_collect_backups_error_is_unverified(kube_target: Target, kube_standin: KubeApiStandIn,
                                             make_ctx: Callable[..., CheckContext]) -> None:
    kube_standin.fail(BACKUPS_PATH, 503)

    results = _run(make_ctx(), kube_target)

    assert results["schedule/velero/clinical-daily"].unknown_reason == UnknownReason.UNREACHABLE


@pytest.fixture(scope="module")
def no_velero() -> Iterator[KubeApiStandIn]:
    """The lab cluster without Velero: no CRDs, no Schedules, no Backups."""
    objects = [o for o in load_objects(FIXTURES)
               if not str(o["apiVersion"]).startswith("velero.io/")
               and not str(o["metadata"]["name"]).endswith(".velero.io")]
    server = KubeApiStandIn(objects)
    server.start()
    yield server
    server.stop()


def test_collect_without_velero_says_so(no_velero: KubeApiStandIn, tmp_path: Path,
                                        make_ctx: Callable[..., CheckContext]) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", no_velero.url, context="bare")
    target = Target(TargetKind.KUBERNETES, "k8s:bare", "bare", KubernetesClusterConfig(
        name="bare", kubeconfig=kubeconfig, context="bare", namespaces=["clinical"]))

    findings = list(_run(make_ctx(), target).values())

    assert [(f.resource, f.status, f.unknown_reason) for f in findings] == [
        ("velero", Status.UNVERIFIED, UnknownReason.NOT_SUPPORTED)]
    assert [(r.path, r.status) for r in no_velero.requests] == [(SCHEDULES_PATH, 404)]
