"""
The runner: every (check, target) pair as one isolated task on a bounded pool of threads.

Each task collects and evaluates. A known probe failure (`ProbeUnavailable`) becomes an
UNVERIFIED finding with its reason; any other exception becomes ERROR with the check id, its
traceback going to the debug log without local variables or exception messages. A task past its
deadline is abandoned and reported UNVERIFIED, so one hung target costs only its own deadline.
Ctrl-C stops the scan and returns what it has, marked incomplete.

A scan can have a second phase: the endpoints that the first phase's checks found (`Check.
endpoints`) go to a `FollowUp`, which returns the targets to probe live; their tasks run on a
fresh pool with the same context, so what the first phase read is not read again.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hipaacheck import __version__
from hipaacheck.check import Check, CheckContext
from hipaacheck.errors import ProbeUnavailable, ReadOnlyViolation
from hipaacheck.model import (
    Endpoint,
    Finding,
    FindingBuilder,
    Severity,
    Standard,
    Status,
    Target,
    Unknown,
    UnknownReason,
)
from hipaacheck.registry import Registry
from hipaacheck.result import ScanResult, TargetSummary

logger = logging.getLogger(__name__)


class ScanObserver(Protocol):
    """Listens to a scan's progress; the CLI's progress bar is one."""

    def on_start(self, total: int) -> None:
        """The scan has `total` tasks; called again with the new total when a phase adds some."""

    def on_task_done(self, check_id: str, target_id: str, findings: Sequence[Finding]) -> None:
        """One task finished with these findings."""


class _SilentObserver:
    def on_start(self, total: int) -> None:
        pass

    def on_task_done(self, check_id: str, target_id: str, findings: Sequence[Finding]) -> None:
        pass


@dataclass(frozen=True)
class Task:
    """One check against one target."""

    check: Check[object]
    target: Target

    @property
    def key(self) -> tuple[str, str]:
        """The task's identity: check id and target id."""
        return (self.check.meta.id, self.target.id)


def plan(registry: Registry, targets: Sequence[Target]) -> list[Task]:
    """Every task of a scan: each selected check against each target it applies to."""
    return [Task(check, target)
            for check in (registry.checks[i] for i in sorted(registry.checks))
            for target in targets if check.applies_to(target)]


FollowUp = Callable[[Sequence[Endpoint], bool], Sequence[Target]]
"""Given every endpoint the first phase found, and whether the scan was interrupted, the
targets of the second phase (never run after an interruption)."""


@dataclass(frozen=True)
class Outcome:
    """What one task produced: its findings and the endpoints its observation found."""

    findings: list[Finding]
    endpoints: tuple[Endpoint, ...] = ()


def run_task(task: Task, ctx: CheckContext) -> list[Finding]:
    """
    Collect and evaluate one task, turning every failure into findings. Never raises.
    """
    return execute(task, ctx).findings


def execute(task: Task, ctx: CheckContext) -> Outcome:
    """
    Collect, evaluate and list the endpoints of one task; every failure becomes a finding.
    """
    check, target = task.check, task.target
    builder = check.findings(target)
    try:
        observation = check.collect(ctx, target)
        findings = list(check.evaluate(observation, target, ctx.policy))
        return Outcome(findings, tuple(check.endpoints(observation, target)))
    except ProbeUnavailable as exc:
        return Outcome([builder.unverified(target.name, exc.unknown, "the target")])
    except ReadOnlyViolation:
        logger.error("check %s attempted an operation that is not read-only", check.meta.id)
        return Outcome([builder.make(
            Status.ERROR, target.name,
            "The check attempted a write operation, which hipaacheck refused.")])
    except Exception as exc:  # noqa: BLE001 - isolation: one broken check never stops the scan
        # File, line and function only: no source text, no locals, no exception message.
        frames = "\n".join(f"  {fs.filename}:{fs.lineno} in {fs.name}"
                           for fs in traceback.extract_tb(exc.__traceback__))
        logger.debug("check %s raised %s\n%s", check.meta.id, type(exc).__name__, frames)
        return Outcome([builder.make(Status.ERROR, target.name,
                                     f"Internal error in check ({type(exc).__name__}).")])


class Runner:
    """
    Runs a planned scan on `workers` daemon threads with a deadline per task.
    """

    def __init__(self, ctx: CheckContext, *, workers: int = 8, deadline: float = 120.0,
                 observer: ScanObserver | None = None, done_before: int = 0) -> None:
        self.ctx = ctx
        self.workers = max(1, workers)
        self.deadline = deadline
        self.observer: ScanObserver = observer or _SilentObserver()
        self.done_before = done_before
        """Tasks an earlier phase ran: the observer's total counts them too."""
        self.endpoints: list[Endpoint] = []
        """The endpoints found by the tasks that finished within their deadline."""

    def run(self, tasks: Sequence[Task]) -> tuple[dict[tuple[str, str], list[Finding]], bool]:
        """
        Run `tasks`; returns findings per task key and whether the scan was interrupted.
        """
        self.observer.on_start(self.done_before + len(tasks))
        pending: queue.Queue[Task | None] = queue.Queue()
        done: queue.Queue[tuple[Task, Outcome]] = queue.Queue()
        started: dict[tuple[str, str], float] = {}
        lock = threading.Lock()
        for task in tasks:
            pending.put(task)
        workers: list[threading.Thread] = []
        results: dict[tuple[str, str], list[Finding]] = {}
        interrupted = False
        try:
            workers += [self._spawn(pending, done, started, lock) for _ in range(self.workers)]
            while len(results) < len(tasks):
                try:
                    task, outcome = done.get(timeout=0.1)
                except queue.Empty:
                    workers += self._expire(tasks, results, started, lock, pending, done)
                    continue
                if task.key not in results:
                    self.endpoints += outcome.endpoints
                    self._record(results, task, outcome.findings)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("scan interrupted; writing what was collected")
        for task in tasks:
            if task.key not in results:
                unknown = Unknown(UnknownReason.INTERRUPTED, "the scan was interrupted first")
                self._record(results, task, [task.check.findings(task.target).unverified(
                    task.target.name, unknown, "the target")])
        for _ in workers:
            pending.put(None)
        return results, interrupted

    def _record(self, results: dict[tuple[str, str], list[Finding]], task: Task,
                findings: list[Finding]) -> None:
        results[task.key] = findings
        self.observer.on_task_done(task.key[0], task.key[1], findings)

    def _spawn(self, pending: queue.Queue[Task | None],
               done: queue.Queue[tuple[Task, Outcome]],
               started: dict[tuple[str, str], float], lock: threading.Lock) -> threading.Thread:
        def work() -> None:
            while (task := pending.get()) is not None:
                with lock:
                    started[task.key] = time.monotonic()
                task_ctx = dataclasses.replace(
                    self.ctx, logger=logging.getLogger(f"hipaacheck.checks.{task.check.meta.id}"))
                done.put((task, execute(task, task_ctx)))
        thread = threading.Thread(target=work, daemon=True, name="hipaacheck-worker")
        thread.start()
        return thread

    def _expire(self, tasks: Sequence[Task], results: dict[tuple[str, str], list[Finding]],
                started: dict[tuple[str, str], float], lock: threading.Lock,
                pending: queue.Queue[Task | None],
                done: queue.Queue[tuple[Task, Outcome]]) -> list[threading.Thread]:
        """Abandon tasks past their deadline; a fresh worker replaces each stuck one."""
        now = time.monotonic()
        with lock:
            expired = [t for t in tasks if t.key in started and t.key not in results
                       and now - started[t.key] > self.deadline]
        replacements = []
        for task in expired:
            unknown = Unknown(UnknownReason.TIMEOUT,
                              f"the check did not finish within {self.deadline:g} s")
            self._record(results, task, [FindingBuilder(task.check.meta, task.target).unverified(
                task.target.name, unknown, "the target")])
            replacements.append(self._spawn(pending, done, started, lock))
        return replacements


def scan(registry: Registry, targets: Sequence[Target], ctx: CheckContext, *,
         organization: str, config_fingerprint: str, workers: int = 8, deadline: float = 120.0,
         observer: ScanObserver | None = None, follow_up: FollowUp | None = None) -> ScanResult:
    """
    Plan and run a scan, and assemble its result, load failures included as ERROR findings.

    With `follow_up`, the endpoints the scan found are handed to it once every task has
    finished, and the targets it returns are scanned in a second phase; after Ctrl-C it still
    hears of them, and nothing more runs.
    """
    started = datetime.now(UTC)
    tasks = plan(registry, targets)
    runner = Runner(ctx, workers=workers, deadline=deadline, observer=observer)
    results, interrupted = runner.run(tasks)
    later: list[Target] = []
    if follow_up is not None:
        offered = follow_up(runner.endpoints, interrupted)
        later = [] if interrupted else list(offered)
        second = plan(registry, later)
        if second:
            more, interrupted = Runner(ctx, workers=workers, deadline=deadline,
                                       observer=observer, done_before=len(tasks)).run(second)
            results.update(more)
            tasks += second
    findings = [f for task in tasks for f in results[task.key]]
    for failure in registry.failures:
        findings.append(Finding(
            check_id=failure.check_id, target="-", resource="-", status=Status.ERROR,
            reason=f"The check could not be loaded ({failure.error}).",
            severity=Severity.HIGH, standard=Standard.AUDIT_CONTROLS,
            citations=(), remediation="Reinstall the package that provides this check."))
    return ScanResult(
        tool_version=__version__, organization=organization,
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        config_fingerprint=config_fingerprint,
        targets=tuple(TargetSummary(t.id, t.kind, t.name) for t in (*targets, *later)),
        checks=tuple(registry.metas()), findings=tuple(findings),
        complete=not interrupted, interrupted=interrupted, tasks=len(tasks))

