"""
`logs.pods.phi`: collect with the real `kubernetes` client against the local API stand-in
serving pod logs (namespaces, selectors, every container, previous containers, tail and byte
limits, denial), and evaluate on hand-built observations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.logs.common import ContentScan
from hipaacheck.checks.logs.pods import (
    ContainerLog,
    PhiInPodLogs,
    PodLogsObservation,
    PodObservation,
)
from hipaacheck.config import KubernetesClusterConfig, PodLogSinkConfig
from hipaacheck.detectors.phi import Kind, KindSummary
from hipaacheck.lab.kubeapi import KubeApiStandIn, write_kubeconfig
from hipaacheck.model import Finding, Status, System, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R

CHECK = PhiInPodLogs()
CLINICAL = "/api/v1/namespaces/clinical/pods"


def target(kubeconfig: Path, **options: Any) -> Target:
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab")
    sink = PodLogSinkConfig(kind="pods", name="k8s", cluster=cluster, **options)
    return Target(TargetKind.LOG_SINK, "logs:k8s", "k8s", sink)


def run(ctx: CheckContext, tgt: Target) -> dict[str, Finding]:
    return {f.resource: f for f in CHECK.evaluate(CHECK.collect(ctx, tgt), tgt, Policy())}


def test_every_container_of_every_pod_and_previous_containers(
        live_ctx: CheckContext, kube_standin: KubeApiStandIn, kubeconfig: Path) -> None:
    findings = run(live_ctx, target(kubeconfig))
    status = {r: f.status for r, f in findings.items()}
    assert status["clinical/records-api-7c9d6b5f8-2xkqj"] == Status.FAIL
    assert status["clinical/records-db-0"] == Status.FAIL
    assert status["clinical/records-api-7c9d6b5f8-9wzmt"] == Status.PASS
    assert status["audit/audit-writer-5f6d7c8b9-k4j2n"] == Status.PASS
    api = findings["clinical/records-api-7c9d6b5f8-2xkqj"]
    assert api.evidence["containers_read"] == ("records-api", "log-router")
    assert api.evidence["containers_with_identifiers"] == ("records-api",)
    assert {"date_of_birth", "medical_record_number"} <= set(api.evidence["identifier_kinds"])
    restarted = findings["clinical/records-api-7c9d6b5f8-9wzmt"]
    assert restarted.evidence["previous_containers_read"] == ("records-api",)
    logs = [r for r in kube_standin.requests if r.path.endswith("/log")]
    assert logs and all(r.method == "GET" and r.query["tailLines"] == "5000"
                        and r.query["limitBytes"] for r in logs)
    assert {r.query["previous"] for r in logs} == {"true", "false"}
    assert all(r.method == "GET" for r in kube_standin.requests)
    assert "Sampleton" not in repr(findings) and "00412867" not in repr(findings)


def test_namespaces_and_label_selectors_narrow_the_pods(
        live_ctx: CheckContext, kube_standin: KubeApiStandIn, kubeconfig: Path) -> None:
    tgt = target(kubeconfig, namespaces=["clinical"],
                 label_selectors=["app.kubernetes.io/name=records-api"])
    assert sorted(run(live_ctx, tgt)) == ["clinical/records-api-7c9d6b5f8-2xkqj",
                                          "clinical/records-api-7c9d6b5f8-9wzmt"]
    lists = [r for r in kube_standin.requests if r.path == CLINICAL]
    assert lists and lists[0].query["labelSelector"] == "app.kubernetes.io/name=records-api"


def test_the_server_side_limits_trim_what_is_read(
        live_ctx: CheckContext, kube_standin: KubeApiStandIn, kubeconfig: Path) -> None:
    tgt = target(kubeconfig, namespaces=["clinical"], tail_lines=1, limit_bytes=200)
    findings = run(live_ctx, tgt)
    # The leaking lines are not among the last line of each log.
    assert findings["clinical/records-api-7c9d6b5f8-2xkqj"].status == Status.PASS
    assert all(int(f.evidence["bytes_read"]) <= 200 * 3 for f in findings.values())


def test_denied_logs_and_listings_are_unverified_naming_the_permission(
        live_ctx: CheckContext, kube_standin: KubeApiStandIn, kubeconfig: Path) -> None:
    kube_standin.forbid(f"{CLINICAL}/records-db-0/log")
    findings = run(live_ctx, target(kubeconfig, namespaces=["clinical"]))
    denied = findings["clinical/records-db-0"]
    assert (denied.status, denied.needs) == (Status.UNVERIFIED, "get pods/log")
    kube_standin.forbid(CLINICAL)
    [listing] = run(live_ctx, target(kubeconfig, namespaces=["clinical"])).values()
    assert (listing.status, listing.needs, listing.resource) == (
        Status.UNVERIFIED, "list pods", "clinical")


def test_a_restarted_container_without_a_kept_previous_log(
        live_ctx: CheckContext, tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "intake-0", "namespace": "clinical", "labels": {"app": "x"}},
           "spec": {"initContainers": [{"name": "migrate", "image": "m"}],
                    "containers": [{"name": "intake", "image": "i"}]},
           "status": {"phase": "Running", "initContainerStatuses": [
               {"name": "migrate", "restartCount": 0, "ready": True, "image": "m",
                "imageID": "m@sha256:1", "state": {"terminated": {"exitCode": 0}}}],
               "containerStatuses": [{"name": "intake", "restartCount": 4, "ready": True,
                                      "image": "i", "imageID": "i@sha256:2",
                                      "state": {"running": {}}}]}}
    long_line = "x" * (3 << 20) + ' "ssn": "219-45-6781"'
    logs = {("clinical", "intake-0", "migrate", False): "migrated 3 tables\n",
            ("clinical", "intake-0", "intake", False): long_line}
    with KubeApiStandIn([pod], pod_logs=logs) as standin:
        kubeconfig = write_kubeconfig(tmp_path / "kc", standin.url, context="lab")
        [finding] = run(live_ctx, target(kubeconfig, limit_bytes=8 << 20)).values()
    assert finding.status == Status.FAIL  # the identifier at the end of a 3 MB line
    assert finding.evidence["containers_read"] == ("migrate", "intake")
    assert finding.evidence["previous_containers_read"] == ("intake",)
    assert finding.evidence["read"] == "partial"
    assert any("no longer kept" in p for p in finding.evidence["read_problems"])


# --------------------------------------------------------------------------------------------
# Judgement on hand-built observations.

def content(*kinds: KindSummary, **kw: Any) -> ContentScan:
    fields: dict[str, Any] = {
        "sources": 2, "bytes_read": 900, "records": 12, "complete": True, "kinds": kinds,
        "records_with_hits": len(kinds), "first_lines": (4,) if kinds else (),
        "first_offsets": (),
        "preview": '{"dob": "9999-99-99"}' if kinds else None,
        "validators": ("dob_keyword",) if kinds else (), "engine": "re2",
        "sources_with_hits": 1 if kinds else 0}
    fields.update(kw)
    return ContentScan(**fields)


def judge(*pods: PodObservation, problems: tuple[Any, ...] = ()) -> list[Finding]:
    tgt = target(Path("/nonexistent"))
    return list(CHECK.evaluate(PodLogsObservation("k8s", pods, problems), tgt, Policy()))


def test_metadata_and_applicability() -> None:
    assert CHECK.meta.problems() == []
    assert [(o.system, o.action) for o in CHECK.meta.operations] == [
        (System.KUBERNETES, "list pods"), (System.KUBERNETES, "get pods/log")]
    assert CHECK.applies_to(target(Path("/nonexistent")))


def test_pass_fail_and_each_unknown() -> None:
    logs = (ContainerLog("api"), ContainerLog("api", previous=True))
    dob = KindSummary(Kind.DATE_OF_BIRTH, 1, 4, 4, 1)
    denied = Unknown(R.ACCESS_DENIED, "the API server refused to get pods/log (HTTP 403)",
                     needs="get pods/log")
    findings = judge(
        PodObservation("a", "clean", logs, content()),
        PodObservation("a", "leaky", logs, content(dob), ("api (previous)",)),
        PodObservation("a", "denied", logs, content(sources=0, problems=(denied,), unread=2,
                                                    complete=False)),
        PodObservation("a", "waiting", (), content(sources=0, records=0)),
        problems=(("b", denied),))
    status = {f.resource: (f.status, f.unknown_reason) for f in findings}
    assert status == {
        "b": (Status.UNVERIFIED, R.ACCESS_DENIED), "a/clean": (Status.PASS, None),
        "a/leaky": (Status.FAIL, None), "a/denied": (Status.UNVERIFIED, R.ACCESS_DENIED),
        "a/waiting": (Status.UNVERIFIED, R.NOT_VISIBLE)}
    leaky = next(f for f in findings if f.resource == "a/leaky")
    assert leaky.evidence["containers_with_identifiers"] == ("api (previous)",)
    [nothing] = judge()
    assert nothing.status == Status.UNVERIFIED and nothing.unknown_reason == R.NOT_VISIBLE
