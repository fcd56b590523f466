"""
Cluster backups by Velero: each Schedule's retention (TTL), whether it runs, and when it last
produced a Completed backup; and, when the inventory names PHI namespaces, whether an active
Schedule includes each of them.

Velero keeps its Schedules and Backups as custom resources (`velero.io/v1`). The check lists
both cluster-wide. A Schedule's `status.lastBackup` is when its last backup *started*, not
whether it succeeded, so success is read from the Backups the Schedule created (label
`velero.io/schedule-name`) whose phase is `Completed`. Where the API server does not serve
Velero's resources at all, the check says so in one UNVERIFIED finding: a cluster may be backed
up by something else, and "Velero is absent" is not "there are no backups".

The time between runs is read from the Schedule's cron expression (`@every`, the `@daily`
family and five-field cron, as an upper bound); a backup is overdue after one period and an
hour, and stale (FAIL) after two.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client import CustomObjectsApi

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.kubernetes import list_all, observe
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    FindingBuilder,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

VELERO_GROUP = "velero.io"
VELERO_VERSION = "v1"
NEEDS_SCHEDULES = "list velero.io/schedules"
NEEDS_BACKUPS = "list velero.io/backups"
SCHEDULE_LABEL = "velero.io/schedule-name"
GRACE = timedelta(hours=1)
"""How long a backup may take beyond its period before it counts as overdue."""
DEFAULT_PERIOD = timedelta(days=1)
"""The period assumed when a Schedule's cron expression cannot be read."""
FAILED_PHASES = frozenset({"Failed", "PartiallyFailed", "FailedValidation"})
_MAX_LISTED = 20
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MACROS = {"@yearly": timedelta(days=366), "@annually": timedelta(days=366),
           "@monthly": timedelta(days=31), "@weekly": timedelta(days=7),
           "@daily": timedelta(days=1), "@midnight": timedelta(days=1),
           "@hourly": timedelta(hours=1)}


def parse_go_duration(text: str) -> timedelta | None:
    """A Go duration (`720h0m0s`, `1h30m`, `90s`) as a timedelta; None when it is not one."""
    text = text.strip()
    if not text or not re.fullmatch(rf"(?:{_GO_DURATION_PART.pattern})+", text):
        return None
    seconds = sum(float(n) * _GO_UNITS[unit] for n, unit in _GO_DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp from the API (`2024-07-01T03:00:05Z`); None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _hour_step(hour: str) -> timedelta:
    if hour == "*":
        return timedelta(hours=1)
    if hour.startswith("*/") and hour[2:].isdigit() and int(hour[2:]) > 0:
        return timedelta(hours=int(hour[2:]))
    return timedelta(days=1)


def schedule_period(expression: str) -> timedelta | None:
    """
    The longest time between two runs of a Velero cron expression, or None when unreadable.

    An upper bound, read field by field: a restricted month means up to a year, a restricted
    day of month up to a month, a restricted weekday up to a week; otherwise at most a day,
    or the hour field's step.
    """
    fields = expression.split()
    if fields and fields[0].startswith(("CRON_TZ=", "TZ=")):
        fields = fields[1:]
    if len(fields) == 2 and fields[0] == "@every":
        return parse_go_duration(fields[1])
    if len(fields) == 1:
        return _MACROS.get(fields[0].lower())
    if len(fields) != 5:
        return None
    _minute, hour, day_of_month, month, weekday = fields
    if month not in ("*", "?"):
        return timedelta(days=366)
    if day_of_month not in ("*", "?"):
        return timedelta(days=31)
    if weekday not in ("*", "?"):
        return timedelta(days=7)
    return _hour_step(hour)


@dataclass(frozen=True)
class VeleroSchedule:
    """What the check needs of one Velero Schedule."""

    namespace: str
    name: str
    schedule: str
    paused: bool
    phase: str | None
    validation_errors: int
    ttl: Fact[timedelta | None]
    """The template's TTL; None when unset (the server's default applies)."""
    included: tuple[str, ...]
    excluded: tuple[str, ...]
    label_selector: bool
    snapshot_volumes: bool | None
    fs_backup: bool | None
    last_backup: datetime | None
    """`status.lastBackup`: when the last backup started, successful or not."""
    created: datetime | None = None


@dataclass(frozen=True)
class ScheduleBackups:
    """The Backups that one Schedule created and Velero still keeps."""

    completed: int
    last_completed: datetime | None
    last_attempt: datetime | None
    last_attempt_phase: str | None
    latest_ttl: timedelta | None
    """The TTL the server stamped on the latest backup (it fills in its default)."""


@dataclass(frozen=True)
class VeleroObservation:
    """The cluster's Velero Schedules and, by (namespace, schedule name), their Backups."""

    schedules: Fact[tuple[VeleroSchedule, ...]]
    backups: Fact[Mapping[tuple[str, str], ScheduleBackups]]
    observed_at: datetime
    phi_namespaces: tuple[str, ...] = ()


def _map(value: object) -> Mapping[str, Any]:
    """A field that should be an object; anything else reads as empty, never as a crash."""
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _text(value: object) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _ttl(value: object) -> Fact[timedelta | None]:
    if value in (None, ""):
        return None
    ttl = parse_go_duration(str(value))
    if ttl is None:
        return Unknown(UnknownReason.UNPARSEABLE, "the Schedule's ttl is not a duration")
    return ttl or None  # Velero treats a zero TTL as unset


def schedule_facts(obj: Mapping[str, Any]) -> VeleroSchedule:
    """The facts of one Schedule object (a dict, as the custom objects API returns it)."""
    meta, spec, status = _map(obj.get("metadata")), _map(obj.get("spec")), _map(obj.get("status"))
    template = _map(spec.get("template"))
    fs_backup = _bool(template.get("defaultVolumesToFsBackup"))
    if fs_backup is None:
        fs_backup = _bool(template.get("defaultVolumesToRestic"))
    return VeleroSchedule(
        namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        schedule=str(spec.get("schedule") or ""), paused=spec.get("paused") is True,
        phase=_text(status.get("phase")),
        validation_errors=len(_strings(status.get("validationErrors"))),
        ttl=_ttl(template.get("ttl")), included=_strings(template.get("includedNamespaces")),
        excluded=_strings(template.get("excludedNamespaces")),
        label_selector=bool(template.get("labelSelector") or template.get("orLabelSelectors")),
        snapshot_volumes=_bool(template.get("snapshotVolumes")), fs_backup=fs_backup,
        last_backup=parse_time(status.get("lastBackup")),
        created=parse_time(meta.get("creationTimestamp")))


def _started(backup: Mapping[str, Any]) -> datetime | None:
    return (parse_time(_map(backup.get("status")).get("startTimestamp"))
            or parse_time(_map(backup.get("metadata")).get("creationTimestamp")))


def _summary(backups: list[Mapping[str, Any]]) -> ScheduleBackups:
    """The Completed count, last success and latest attempt of one Schedule's Backups."""
    completed = [b for b in backups if _map(b.get("status")).get("phase") == "Completed"]
    finished = [parse_time(_map(b.get("status")).get("completionTimestamp")) or _started(b)
                for b in completed]
    dated = [(started, b) for b in backups if (started := _started(b)) is not None]
    latest = max(dated, key=lambda pair: pair[0], default=None)
    if latest is None:
        return ScheduleBackups(len(completed), max((t for t in finished if t), default=None),
                               None, None, None)
    started, backup = latest
    ttl = parse_go_duration(str(_map(backup.get("spec")).get("ttl") or ""))
    return ScheduleBackups(
        completed=len(completed), last_completed=max((t for t in finished if t), default=None),
        last_attempt=started, last_attempt_phase=_text(_map(backup.get("status")).get("phase")),
        latest_ttl=ttl or None)


def group_backups(backups: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], ScheduleBackups]:
    """Backups grouped by the (namespace, name) of the Schedule that created them."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for backup in backups:
        meta = _map(backup.get("metadata"))
        schedule = _map(meta.get("labels")).get(SCHEDULE_LABEL)
        if schedule:
            grouped.setdefault((str(meta.get("namespace") or ""), str(schedule)), []).append(
                backup)
    return {key: _summary(items) for key, items in grouped.items()}


def _phi_namespaces(target: Target) -> tuple[str, ...]:
    config = target.config
    return tuple(config.namespaces) if isinstance(config, KubernetesClusterConfig) else ()


class VeleroSchedules(Check[VeleroObservation]):
    """
    Velero Schedules run, keep backups long enough, and have recently completed one.
    """

    meta = CheckMeta(
        id="kubernetes.velero.schedules",
        title="Velero Schedules back the cluster up and keep the backups long enough",
        family=Family.BACKUP,
        standard=Standard.CONTINGENCY,
        citations=("164.308(a)(7)(ii)(A)", "164.310(d)(2)(iv)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.KUBERNETES,
        description=(
            "Lists Velero's Schedules and Backups (velero.io/v1). Each Schedule fails when it "
            "is paused or failed validation, when its TTL is below the policy minimum or "
            "shorter than the time between its runs, or when its last Completed backup is more "
            "than two periods old; it warns below the recommended retention, when a run is "
            "overdue or the latest backup only partly succeeded, and when no volume data is "
            "backed up by default. With PHI namespaces in the inventory, each must be included "
            "by an active Schedule. Where Velero is not installed the finding is unverified, "
            "not failed: another tool may back the cluster up."),
        remediation=(
            "Unpause the Schedule (velero schedule unpause) or fix its validation errors; set "
            "spec.template.ttl to at least the policy minimum and longer than the time between "
            "runs; include every PHI namespace; back volume data up with snapshotVolumes or "
            "defaultVolumesToFsBackup; and find why recent backups failed (velero backup "
            "describe --details, velero backup logs)."),
        operations=(
            Operation(System.KUBERNETES, NEEDS_SCHEDULES,
                      "read each Schedule's cron, TTL, namespaces, pause flag and status"),
            Operation(System.KUBERNETES, NEEDS_BACKUPS,
                      "find each Schedule's last Completed backup and its latest attempt"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> VeleroObservation:
        """List Schedules and scheduled Backups cluster-wide, once per scan."""
        api = CustomObjectsApi(ctx.clients.kubernetes(target.config))
        observed_at = ctx.clock()
        schedules = observe(lambda: ctx.memo.get(
            ("kubernetes", target.id, "velero.io/schedules"),
            lambda: list_all(api.list_cluster_custom_object, timeout=ctx.timeout,
                             group=VELERO_GROUP, version=VELERO_VERSION, plural="schedules")),
            needs=NEEDS_SCHEDULES)
        if isinstance(schedules, Unknown):
            backups: Fact[Mapping[tuple[str, str], ScheduleBackups]] = schedules
            return VeleroObservation(schedules, backups, observed_at, _phi_namespaces(target))
        listed = observe(lambda: ctx.memo.get(
            ("kubernetes", target.id, "velero.io/backups"),
            lambda: list_all(api.list_cluster_custom_object, timeout=ctx.timeout,
                             group=VELERO_GROUP, version=VELERO_VERSION, plural="backups",
                             label_selector=SCHEDULE_LABEL)),
            needs=NEEDS_BACKUPS)
        return VeleroObservation(
            schedules=tuple(schedule_facts(s) for s in schedules),
            backups=listed if isinstance(listed, Unknown) else group_backups(listed),
            observed_at=observed_at, phi_namespaces=_phi_namespaces(target))

    def evaluate(self, obs: VeleroObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per Schedule and per PHI namespace; one when Velero cannot be read."""
        build = self.findings(target)
        if isinstance(obs.schedules, Unknown):
            return [_schedules_unknown(build, obs.schedules)]
        judged = [(s, _judge_schedule(s, obs, policy)) for s in obs.schedules]
        findings = [_finding(build, s, verdict) for s, verdict in judged]
        if not obs.schedules:
            findings.append(build.failed(
                "velero", "Velero is installed, but no Schedule exists: nothing in the cluster "
                "is backed up on a schedule", evidence={"schedules": 0}))
        findings += [_coverage(build, ns, judged) for ns in obs.phi_namespaces]
        return findings


def _schedules_unknown(build: FindingBuilder[VeleroObservation], unknown: Unknown) -> Finding:
    if unknown.reason is UnknownReason.NOT_SUPPORTED:
        return build.make(
            Status.UNVERIFIED, "velero",
            "Velero is not installed: the API server serves no velero.io/v1 Schedules, so no "
            "cluster backup could be observed (backups by another tool are not judged here)",
            unknown_reason=UnknownReason.NOT_SUPPORTED,
            needs="Velero's CRDs (velero.io/v1), or evidence from the cluster's backup tool")
    return build.unverified("velero", unknown, "the cluster's Velero Schedules")


@dataclass(frozen=True)
class _Issue:
    """One problem found with a Schedule; `unknown` is set for UNVERIFIED ones."""

    status: Status
    text: str
    unknown: Unknown | None = None


@dataclass(frozen=True)
class _Verdict:
    status: Status
    issues: tuple[_Issue, ...]
    evidence: Mapping[str, EvidenceValue]


_RANK = {Status.FAIL: 0, Status.UNVERIFIED: 1, Status.WARN: 2, Status.PASS: 3}


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if days >= 1:
        return f"{round(days, 1):g} days"
    return f"{round(delta.total_seconds() / 3600, 1):g} hours"


def _retention_issues(schedule: VeleroSchedule, backups: ScheduleBackups | None,
                      period: timedelta | None, policy: Policy) -> list[_Issue]:
    ttl: Fact[timedelta | None] = schedule.ttl
    if ttl is None and backups is not None and backups.latest_ttl is not None:
        ttl = backups.latest_ttl
    if isinstance(ttl, Unknown):
        return [_Issue(Status.UNVERIFIED, "its ttl could not be read", ttl)]
    if ttl is None:
        unknown = Unknown(UnknownReason.NOT_VISIBLE,
                          "the Schedule sets no ttl, so the Velero server's default applies, "
                          "which the API does not show",
                          needs="spec.template.ttl on the Schedule")
        return [_Issue(Status.UNVERIFIED, "its retention is the server's default ttl, which "
                       "the API does not show", unknown)]
    issues = []
    if ttl < timedelta(days=policy.min_backup_retention_days):
        issues.append(_Issue(Status.FAIL, f"it keeps backups {_days(ttl)}, below the policy "
                                          f"minimum of {policy.min_backup_retention_days} days"))
    elif ttl < timedelta(days=policy.recommended_backup_retention_days):
        issues.append(_Issue(Status.WARN, f"it keeps backups {_days(ttl)}, below the "
                                          f"recommended {policy.recommended_backup_retention_days}"
                                          " days"))
    if period is not None and ttl < period:
        issues.append(_Issue(Status.FAIL, f"its ttl ({_days(ttl)}) is shorter than the time "
                                          f"between runs ({_days(period)}), so for part of every "
                                          "cycle no backup exists"))
    return issues


def _freshness_issues(schedule: VeleroSchedule, backups: Fact[ScheduleBackups | None],
                      period: timedelta, now: datetime) -> list[_Issue]:
    if isinstance(backups, Unknown):
        return [_Issue(Status.UNVERIFIED, "its last successful backup could not be read", backups)]
    last = backups.last_completed if backups else None
    issues = []
    if last is None:
        if schedule.created is not None and now - schedule.created <= period + GRACE:
            issues.append(_Issue(Status.WARN, "it has not completed a backup yet (created "
                                              f"{_days(now - schedule.created)} ago)"))
        else:
            issues.append(_Issue(Status.FAIL, "no Completed backup of it is kept"))
    elif now - last > 2 * period + GRACE:
        issues.append(_Issue(Status.FAIL, f"its last Completed backup finished "
                                          f"{_days(now - last)} ago, more than two runs ago "
                                          f"(runs every {_days(period)})"))
    elif now - last > period + GRACE:
        issues.append(_Issue(Status.WARN, f"its last Completed backup finished "
                                          f"{_days(now - last)} ago: a run is overdue"))
    if (backups and backups.last_attempt_phase in FAILED_PHASES and backups.last_attempt
            and (last is None or backups.last_attempt > last)):
        issues.append(_Issue(Status.WARN, f"its latest backup is {backups.last_attempt_phase}"))
    return issues


def _state_issues(schedule: VeleroSchedule) -> list[_Issue]:
    issues = []
    if schedule.paused:
        issues.append(_Issue(Status.FAIL, "it is paused, so no backups are being taken"))
    if schedule.phase == "FailedValidation":
        issues.append(_Issue(Status.FAIL, f"it failed validation ({schedule.validation_errors} "
                                          "error(s)), so Velero does not run it"))
    if schedule.snapshot_volumes is False and schedule.fs_backup is not True:
        issues.append(_Issue(Status.WARN, "it takes no volume snapshots and no file-system "
                                          "backup by default, so volume data is backed up only "
                                          "for pods that opt in"))
    return issues


def _judge_schedule(schedule: VeleroSchedule, obs: VeleroObservation,
                    policy: Policy) -> _Verdict:
    key = (schedule.namespace, schedule.name)
    backups: Fact[ScheduleBackups | None] = (
        obs.backups if isinstance(obs.backups, Unknown) else obs.backups.get(key))
    known_backups = None if isinstance(backups, Unknown) else backups
    parsed = schedule_period(schedule.schedule)
    period = parsed or DEFAULT_PERIOD
    issues = _state_issues(schedule) + _retention_issues(schedule, known_backups, parsed, policy)
    if not schedule.paused:
        issues += _freshness_issues(schedule, backups, period, obs.observed_at)
    status = min((i.status for i in issues), key=_RANK.__getitem__, default=Status.PASS)
    evidence = _schedule_evidence(schedule, known_backups, parsed, obs.observed_at)
    return _Verdict(status, tuple(sorted(issues, key=lambda i: _RANK[i.status])), evidence)


def _schedule_evidence(schedule: VeleroSchedule, backups: ScheduleBackups | None,
                       period: timedelta | None, now: datetime) -> dict[str, EvidenceValue]:
    ttl = schedule.ttl if not isinstance(schedule.ttl, Unknown) else None
    if ttl is None and backups is not None:
        ttl = backups.latest_ttl
    last = backups.last_completed if backups else None
    return {
        "schedule": schedule.schedule[:64], "paused": schedule.paused, "phase": schedule.phase,
        "period_hours": None if period is None else round(period.total_seconds() / 3600, 2),
        "ttl_days": None if ttl is None else round(ttl.total_seconds() / 86400, 2),
        "included_namespaces": schedule.included[:_MAX_LISTED] or ("*",),
        "excluded_namespaces": schedule.excluded[:_MAX_LISTED],
        "completed_backups": None if backups is None else backups.completed,
        "last_success_age_hours": None if last is None
        else round((now - last).total_seconds() / 3600, 1),
        "last_attempt_phase": backups.last_attempt_phase if backups else None,
        "last_backup_started": None if schedule.last_backup is None
        else schedule.last_backup.isoformat(),
    }


def _finding(build: FindingBuilder[VeleroObservation], schedule: VeleroSchedule,
             verdict: _Verdict) -> Finding:
    resource = f"schedule/{schedule.namespace}/{schedule.name}"
    if verdict.status is Status.PASS:
        return build.passed(resource, f"Velero Schedule {schedule.name} runs, keeps backups "
                                      "long enough and completed one recently",
                            evidence=verdict.evidence)
    reason = f"Velero Schedule {schedule.name}: " + "; ".join(
        i.text for i in verdict.issues if i.status is not Status.PASS)
    unknown = next((i.unknown for i in verdict.issues if i.unknown is not None), None)
    if verdict.status is Status.UNVERIFIED and unknown is not None:
        return build.make(Status.UNVERIFIED, resource, reason, evidence=verdict.evidence,
                          needs=unknown.needs, unknown_reason=unknown.reason)
    return build.make(verdict.status, resource, reason, evidence=verdict.evidence)


def covers(schedule: VeleroSchedule, namespace: str) -> bool:
    """Whether a Schedule's backups include `namespace` (globs as Velero matches them)."""
    included = schedule.included or ("*",)
    if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in schedule.excluded):
        return False
    return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in included)


def _coverage(build: FindingBuilder[VeleroObservation], namespace: str,
              judged: list[tuple[VeleroSchedule, _Verdict]]) -> Finding:
    """Whether an active Schedule includes a PHI namespace; as good as the best such one."""
    resource = f"namespace/{namespace}"
    active = [(s, v) for s, v in judged if covers(s, namespace) and not s.paused
              and s.phase != "FailedValidation"]
    if not active:
        return build.failed(resource, f"PHI namespace {namespace} is included by no active "
                                      "Velero Schedule", evidence={"schedules": ()})
    schedule, verdict = max(active, key=lambda pair: _RANK[pair[1].status])
    names = tuple(sorted(f"{s.namespace}/{s.name}" for s, _ in active))[:_MAX_LISTED]
    evidence: dict[str, EvidenceValue] = {"schedules": names, "best_schedule_status":
                                          verdict.status.value}
    if verdict.status is Status.PASS and schedule.label_selector:
        return build.warned(resource, f"PHI namespace {namespace} is backed up by Velero "
                                      f"Schedule {schedule.name} only for resources matching "
                                      "its label selector", evidence=evidence)
    if verdict.status is Status.PASS:
        return build.passed(resource, f"PHI namespace {namespace} is backed up by Velero "
                                      f"Schedule {schedule.name}", evidence=evidence)
    text = f"PHI namespace {namespace} is included only by Schedules that are not sound " \
           f"(best: {schedule.name}, {verdict.status.value})"
    unknown = next((i.unknown for i in verdict.issues if i.unknown is not None), None)
    if verdict.status is Status.UNVERIFIED and unknown is not None:
        return build.make(Status.UNVERIFIED, resource, text, evidence=evidence,
                          needs=unknown.needs, unknown_reason=unknown.reason)
    return build.make(verdict.status, resource, text, evidence=evidence)
