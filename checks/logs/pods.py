"""
PHI in Kubernetes pod logs (45 CFR 164.312(b); 164.502(b) and 164.514(d), minimum necessary).

A `pods` log sink names a cluster, namespaces and label selectors. The check lists the pods
they select and reads the log of every container (init and ephemeral containers included)
and, for each container that restarted, the log of its previous instance, which is where a
crash dump of a request tends to land. The API server trims each log to `tail_lines` and
`limit_bytes`; the check streams the response through the PHI detector within the sink's
byte budget, so a log is never held whole.

One finding per pod: FAIL when identifiers were found in any of its container logs,
UNVERIFIED when a log could not be read (the `get pods/log` permission is the usual lack),
PASS otherwise. Kubernetes offers no redaction in front of container logs; evidence says so.
Pod logs are only a window: the node keeps a few rotated files and the API serves the
current and previous container's, so a PASS speaks of what the API still serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import CoreV1Api

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.logs.common import NONE_OBSERVED, ContentScan, Tally, judge
from hipaacheck.clients.kubernetes import API_ERRORS, classify_api_error, list_all, observe
from hipaacheck.config import KubernetesClusterConfig, PodLogSinkConfig
from hipaacheck.detectors.files import ReadOutcome, stream_blocks
from hipaacheck.detectors.phi import PhiDetector
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

logger = logging.getLogger(__name__)

_LIST, _LOG = "list pods", "get pods/log"


def sink_cluster(sink: PodLogSinkConfig) -> KubernetesClusterConfig:
    """The cluster a sink reads through, under a name of its own (see `sink_account`)."""
    cluster = sink.cluster
    return cluster.model_copy(update={"name": f"{cluster.name} (logs sink {sink.name})"})


@dataclass(frozen=True)
class ContainerLog:
    """One container log to read: the container's name and whether it is the previous one."""

    container: str
    previous: bool = False


@dataclass(frozen=True)
class PodObservation:
    """One pod: the logs read, the containers whose logs held identifiers, the scan."""

    namespace: str
    pod: str
    logs: tuple[ContainerLog, ...]
    scan: ContentScan
    containers_with_hits: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodLogsObservation:
    """Every selected pod of one sink, and the listings that failed or were cut."""

    sink: str
    pods: tuple[PodObservation, ...]
    problems: tuple[tuple[str, Unknown], ...] = ()


def container_logs(pod: Any, previous: bool) -> list[ContainerLog]:
    """
    The logs of a pod to read: every init, regular and ephemeral container that has started,
    and the previous instance of every container that restarted (when `previous`).
    """
    spec, status = pod.spec, pod.status
    names = [c.name for group in (spec.init_containers, spec.containers,
                                  getattr(spec, "ephemeral_containers", None))
             for c in group or []]
    statuses = {s.name: s for group in (
        getattr(status, "init_container_statuses", None),
        getattr(status, "container_statuses", None),
        getattr(status, "ephemeral_container_statuses", None)) if status is not None
        for s in group or []}
    logs = []
    for name in names:
        state = statuses.get(name)
        restarts = int(getattr(state, "restart_count", 0) or 0)
        waiting = state is not None and getattr(state.state, "waiting", None) is not None \
            and getattr(state.state, "running", None) is None
        if not (waiting and restarts == 0):
            logs.append(ContainerLog(name))
        if previous and restarts > 0:
            logs.append(ContainerLog(name, previous=True))
    return logs


def read_log(core: CoreV1Api, namespace: str, pod: str, log: ContainerLog,
             sink: PodLogSinkConfig, budget: int, tally: Tally, timeout: float) -> int:
    """Stream one container log through the detector into `tally`; return lines with hits."""
    out = ReadOutcome()
    try:
        response: Any = core.read_namespaced_pod_log(
            name=pod, namespace=namespace, container=log.container, previous=log.previous,
            tail_lines=sink.tail_lines, limit_bytes=min(sink.limit_bytes, budget),
            timestamps=False, _preload_content=False, _request_timeout=timeout)
    except API_ERRORS as exc:
        unknown = classify_api_error(exc, _LOG)
        if log.previous and getattr(exc, "status", None) == 400:
            unknown = Unknown(UnknownReason.NOT_VISIBLE,
                              "the previous container's log is no longer kept on the node")
        tally.fail(unknown)
        return 0
    try:
        hits = tally.scan(_blocks(response, budget, out))
    finally:
        response.release_conn()
    tally.read(out)
    return hits


def _blocks(response: Any, budget: int, out: ReadOutcome) -> Iterator[Any]:
    """The response's blocks; a connection that breaks mid-read is a partial read."""
    try:
        yield from stream_blocks(response, budget, out)
    except API_ERRORS as exc:
        out.problem = classify_api_error(exc, _LOG)


class PhiInPodLogs(Check[PodLogsObservation]):
    """
    Fails a pod whose container logs (current or previous) hold unredacted identifiers.
    """

    meta = CheckMeta(
        id="logs.pods.phi",
        title="Pod logs hold no unredacted patient identifiers",
        family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS,
        citations=("164.312(b)", "164.502(b)", "164.514(d)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.LOG_SINK,
        description=(
            "Lists the pods of the configured namespaces and label selectors, and streams the "
            "log of every container (init and ephemeral ones too, and the previous instance of "
            "each restarted container) through the PHI detector, trimmed by the API server to "
            "tail_lines and limit_bytes and within the sink's byte budget."),
        remediation=(
            "Stop the identifiers at the source (log allow-listed fields, not request bodies "
            "or SQL with literals), or filter them in the node's log agent before shipping. "
            "Restart or redeploy the pods to age the affected logs out, purge what the log "
            "pipeline already shipped, and keep pods/log access to the few who need it."),
        operations=(
            Operation(System.KUBERNETES, "list pods",
                      "list the pods of the configured namespaces and label selectors"),
            Operation(System.KUBERNETES, "get pods/log",
                      "read each container's current and previous log, trimmed by the API "
                      "server; values never leave the detector (needed by this check only)"),
        ),
    )

    def applies_to(self, target: Target) -> bool:
        """Pod-log sinks only."""
        return target.kind == TargetKind.LOG_SINK and isinstance(target.config,
                                                                 PodLogSinkConfig)

    def collect(self, ctx: CheckContext, target: Target) -> PodLogsObservation:
        """List the selected pods and read every container log within the budget."""
        sink = target.config
        if not isinstance(sink, PodLogSinkConfig):
            raise TypeError(f"target {target.id} carries no pod-log sink configuration")
        core = CoreV1Api(ctx.clients.kubernetes(sink_cluster(sink)))
        pods, problems = _select(core, sink, ctx.timeout)
        if len(pods) > sink.max_pods:
            problems.append((f"{len(pods) - sink.max_pods} more pod(s)", Unknown(
                UnknownReason.NOT_VISIBLE,
                f"more pods matched than max_pods ({sink.max_pods}); these were not read",
                needs="a higher max_pods or narrower namespaces and selectors")))
            pods = pods[:sink.max_pods]
        detector = ctx.memo.get(("phi-detector",), PhiDetector)
        plans = [(pod, container_logs(pod, sink.previous)) for pod in pods]
        left, logs_left = sink.max_bytes_per_sink, sum(len(p[1]) for p in plans)
        observed = []
        for pod, logs in plans:
            tally, hits = Tally(detector), []
            for log in logs:
                budget = max(1, left // max(1, logs_left))
                before = tally.bytes_read
                if read_log(core, pod.metadata.namespace, pod.metadata.name, log, sink,
                            budget, tally, ctx.timeout):
                    hits.append(log.container + (" (previous)" if log.previous else ""))
                left, logs_left = left - (tally.bytes_read - before), logs_left - 1
            observed.append(PodObservation(pod.metadata.namespace, pod.metadata.name,
                                           tuple(logs), tally.result(), tuple(hits)))
        return PodLogsObservation(sink.name, tuple(observed), tuple(problems))

    def evaluate(self, obs: PodLogsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per pod, one per listing problem; nothing selected is UNVERIFIED."""
        build = self.findings(target)
        findings = [build.unverified(resource, unknown, "the sink's pods")
                    for resource, unknown in obs.problems]
        for pod in obs.pods:
            extra: dict[str, EvidenceValue] = {
                "sink_kind": "pods", "containers_read": tuple(
                    log.container for log in pod.logs if not log.previous),
                "previous_containers_read": tuple(
                    log.container for log in pod.logs if log.previous)}
            if pod.containers_with_hits:
                extra["containers_with_identifiers"] = pod.containers_with_hits
            findings.append(judge(build, f"{pod.namespace}/{pod.pod}", pod.scan, NONE_OBSERVED,
                                  "lines", extra))
        if not findings:
            nothing = Unknown(UnknownReason.NOT_VISIBLE,
                              "no pod matched the sink's namespaces and selectors",
                              needs="namespaces and label selectors that select running pods")
            findings.append(build.unverified(obs.sink, nothing, "the sink's pods"))
        return findings


def _select(core: CoreV1Api, sink: PodLogSinkConfig,
            timeout: float) -> tuple[list[Any], list[tuple[str, Unknown]]]:
    """The pods the sink selects, each once, and the listings that failed."""
    namespaces: list[str | None] = list(sink.namespaces or sink.cluster.namespaces) or [None]
    selectors: list[str | None] = list(sink.label_selectors) or [None]
    pods: dict[tuple[str, str], Any] = {}
    problems: list[tuple[str, Unknown]] = []
    for namespace in namespaces:
        for selector in selectors:
            listed = _list(core, namespace, selector, timeout)
            where = f"{namespace or '(all namespaces)'}" + (f" [{selector}]" if selector else "")
            if isinstance(listed, Unknown):
                problems.append((where, listed))
                continue
            for pod in listed:
                pods.setdefault((pod.metadata.namespace, pod.metadata.name), pod)
    return [pods[key] for key in sorted(pods)], problems


def _list(core: CoreV1Api, namespace: str | None, selector: str | None,
          timeout: float) -> Fact[list[Any]]:
    kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
    if namespace is None:
        return observe(lambda: list_all(core.list_pod_for_all_namespaces, timeout=timeout,
                                        **kwargs), needs=_LIST)
    return observe(lambda: list_all(core.list_namespaced_pod, namespace=namespace,
                                    timeout=timeout, **kwargs), needs=_LIST)
