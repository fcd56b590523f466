"""
kubernetes.audit.shared_secret and kubernetes.audit.app_secret_access: evaluate with hand-built
observations, then collect through the real kubernetes client against the API stand-in, serving
the lab cluster (a broken audit store: the audit writer's password is the application's, and
the application's ServiceAccount is bound to `edit` in the audit namespace) and a sound variant.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.kubernetes.audit_secrets import (
    AppCanAccessAuditSecret,
    Binding,
    Grant,
    Rbac,
    Rule,
    SecretAccess,
    SecretAccessObservation,
    SharedAuditSecret,
    SharedSecretObservation,
    WriterComparison,
    classify,
    secret_grants,
    workload_from,
)
from hipaacheck.clients import Clients
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.lab.kubeapi import FIXTURES, KubeApiStandIn, load_objects, write_kubeconfig
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
TOKEN = "audit-secrets-test-token"
WRITER = "audit/Deployment/audit-writer"
AUDIT_SECRET = "secret/audit/audit-db-credentials"
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "forbidden", "get secrets in audit")


class AuditCluster(KubernetesClusterConfig):
    """The cluster entry as it will look with the proposed audit knobs."""

    application_workloads: list[str] = Field(default_factory=list)
    audit_writer_workloads: list[str] = Field(default_factory=list)
    audit_secrets: list[str] = Field(default_factory=list)


# --- evaluate ---

def shared(comparison: WriterComparison | None = None, **changes: Any) -> Finding:
    sound = WriterComparison(WRITER, (), (), compared=4)
    obs = SharedSecretObservation((replace(sound, **changes) if comparison is None
                                   else comparison,), applications=2)
    [finding] = SharedAuditSecret().evaluate(obs, TARGET, Policy())
    return finding


def test_shared_secret_passes_when_nothing_is_shared() -> None:
    finding = shared()
    assert (finding.check_id, finding.resource, finding.status) == (
        "kubernetes.audit.shared_secret", WRITER, Status.PASS)
    assert finding.evidence["trail_shares_app_credentials"] is False


@pytest.mark.parametrize("changes", [
    {"shared_refs": ("audit/Deployment/app env DB_PASSWORD -> audit/db/password",)},
    {"equal_values": ("clinical/Deployment/app clinical/db/password = audit/db/password",)},
    {"equal_values": ("a = b",), "unreadable": DENIED},
])
def test_shared_secret_fails_on_a_shared_reference_or_equal_value(
        changes: dict[str, Any]) -> None:
    finding = shared(**changes)
    assert finding.status is Status.FAIL
    assert finding.evidence["trail_shares_app_credentials"] is True


def test_shared_secret_unknowns_are_unverified() -> None:
    finding = shared(unreadable=DENIED)
    assert (finding.status, finding.needs) == (Status.UNVERIFIED, "get secrets in audit")
    [listing] = SharedAuditSecret().evaluate(SharedSecretObservation(DENIED), TARGET, Policy())
    assert (listing.resource, listing.status) == ("workloads", Status.UNVERIFIED)
    [none] = SharedAuditSecret().evaluate(SharedSecretObservation(()), TARGET, Policy())
    assert (none.resource, none.unknown_reason) == ("audit-writers", UnknownReason.NOT_VISIBLE)


GRANT = Grant("clinical/records-api", ("update", "patch"), "RoleBinding audit/debug (ClusterRole "
              "edit)")


def access(secrets: tuple[SecretAccess, ...] | Unknown,
           accounts: tuple[str, ...] | Unknown = ("clinical/records-api",)) -> list[Finding]:
    return list(AppCanAccessAuditSecret().evaluate(SecretAccessObservation(accounts, secrets),
                                                   TARGET, Policy()))


def test_secret_access_passes_without_grants_and_fails_with_one() -> None:
    [sound] = access((SecretAccess("audit/audit-db-credentials", ()),))
    assert (sound.check_id, sound.resource, sound.status) == (
        "kubernetes.audit.app_secret_access", AUDIT_SECRET, Status.PASS)
    [broken] = access((SecretAccess("audit/audit-db-credentials", (GRANT,)),))
    assert broken.status is Status.FAIL
    assert broken.evidence["trail_modifiers"] == ("clinical/records-api",)
    read_only = replace(GRANT, verbs=("get",))
    [reader] = access((SecretAccess("audit/audit-db-credentials", (read_only,)),))
    assert (reader.status, reader.evidence["trail_app_can_modify"]) == (Status.FAIL, False)


def test_secret_access_unknowns_are_unverified() -> None:
    for secrets, accounts in ((DENIED, ("a/b",)), ((), DENIED)):
        [finding] = access(secrets, accounts)
        assert finding.status is Status.UNVERIFIED
    [none] = access(())
    assert (none.resource, none.unknown_reason) == ("audit-secrets", UnknownReason.NOT_VISIBLE)


@pytest.mark.parametrize(("rule", "verbs"), [
    (Rule(("",), ("secrets",), (), ("get", "list")), ("get", "list")),
    (Rule(("*",), ("*",), (), ("*",)), ("*",)),
    (Rule(("",), ("secrets",), ("audit-db",), ("update",)), ("update",)),
    (Rule(("",), ("secrets",), ("other",), ("update",)), ()),
    (Rule(("apps",), ("secrets",), (), ("get",)), ()),
    (Rule(("",), ("configmaps",), (), ("get",)), ()),
    (Rule(("",), ("secrets",), (), ("create",)), ()),
])
def test_rule_verbs_on_a_secret(rule: Rule, verbs: tuple[str, ...]) -> None:
    assert rule.secret_verbs("audit-db") == verbs


@pytest.mark.parametrize(("binding", "reaches"), [
    (Binding("b", "audit", "Role", "reader", (("ServiceAccount", "app", "clinical"),)), True),
    (Binding("b", "other", "Role", "reader", (("ServiceAccount", "app", "clinical"),)), False),
    (Binding("b", None, "ClusterRole", "reader", (("Group", "system:serviceaccounts", None),)),
     True),
    (Binding("b", "audit", "ClusterRole", "reader",
             (("Group", "system:serviceaccounts:clinical", None),)), True),
    (Binding("b", "audit", "ClusterRole", "reader",
             (("User", "system:serviceaccount:clinical:app", None),)), True),
    (Binding("b", "audit", "Role", "reader", (("ServiceAccount", "app", "audit"),)), False),
])
def test_bindings_that_reach_the_secret(binding: Binding, reaches: bool) -> None:
    rule = (Rule(("",), ("secrets",), (), ("get",)),)
    rbac = Rbac({("audit", "reader"): rule, (None, "reader"): rule, ("other", "reader"): rule},
                (binding,))
    assert bool(secret_grants(rbac, "audit", "audit-db", [("clinical", "app")])) is reaches


def test_workload_secret_uses_and_classification() -> None:
    raw = {"metadata": {"name": "api", "namespace": "clinical",
                        "labels": {"app.kubernetes.io/part-of": "records"}},
           "spec": {"template": {"spec": {
               "containers": [{"env": [
                   {"name": "DB_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                   {"name": "PLAIN", "value": "x"}],
                   "envFrom": [{"secretRef": {"name": "bundle"}}]}],
               "volumes": [{"name": "creds", "secret": {"secretName": "files",
                                                        "items": [{"key": "dsn"}]}},
                           {"name": "p", "projected": {"sources": [{"secret": {"name": "pr"}}]}}
                           ]}}}}
    workload = workload_from("Deployment", raw)
    assert workload.ref == "clinical/Deployment/api" and workload.service_account == "default"
    assert {(u.secret, u.key, u.via) for u in workload.secrets} == {
        ("db", "password", "env DB_PASSWORD"), ("bundle", None, "envFrom"),
        ("files", "dsn", "volume creds"), ("pr", None, "volume p")}
    cluster = KubernetesClusterConfig(name="c")
    assert classify(workload, cluster) == "application"
    writer = replace(workload, name="audit-writer")
    assert classify(writer, cluster) == "audit_writer"
    assert classify(replace(workload, namespace="kube-system"), cluster) == "other"
    chosen = AuditCluster(name="c", application_workloads=["clinical/*/web"],
                          audit_writer_workloads=["*/Deployment/api"])
    assert classify(workload, chosen) == "audit_writer"
    assert classify(writer, chosen) == "other"


# --- collect against the stand-in ---

def _sound_objects() -> list[dict[str, Any]]:
    """The lab cluster with the audit store fixed: its own password, no debug binding."""
    objects = copy.deepcopy(load_objects(FIXTURES))
    for obj in objects:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == "audit-db-credentials":
            obj["data"]["password"] = base64.b64encode(b"lab-fake-audit-only-1").decode()
    return [o for o in objects if not (o["kind"] == "RoleBinding"
                                       and o["metadata"]["name"] == "records-api-audit-debug")]


@pytest.fixture(scope="module")
def broken_standin() -> Iterator[KubeApiStandIn]:
    """The lab cluster as shipped."""
    with KubeApiStandIn(load_objects(FIXTURES), token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def sound_standin() -> Iterator[KubeApiStandIn]:
    """The lab cluster with a sound audit store."""
    with KubeApiStandIn(_sound_objects(), token=TOKEN) as server:
        yield server


def target(server: KubeApiStandIn, tmp_path: Path, **knobs: Any) -> Target:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="lab",
                                  token=TOKEN)
    cluster = AuditCluster(name="lab", kubeconfig=kubeconfig, context="lab", **knobs)
    return Target(TargetKind.KUBERNETES, "k8s:lab", "lab", cluster)


def ctx() -> CheckContext:
    return CheckContext(clients=Clients(timeout=2), policy=Policy(),
                        logger=logging.getLogger("test.kubernetes.audit"),
                        clock=lambda: datetime.now(UTC), timeout=2)


def run(check: Any, t: Target) -> dict[str, Finding]:
    findings = list(check.evaluate(check.collect(ctx(), t), t, Policy()))
    assert all(f.check_id == check.meta.id and f.target == t.id for f in findings)
    return {f.resource: f for f in findings}


def test_lab_cluster_audit_store_is_broken(broken_standin: KubeApiStandIn,
                                          tmp_path: Path) -> None:
    t = target(broken_standin, tmp_path)
    writer = run(SharedAuditSecret(), t)[WRITER]
    assert writer.status is Status.FAIL
    assert ("clinical/Deployment/records-api clinical/records-db-credentials/password = "
            "audit/audit-db-credentials/password") in writer.evidence["equal_values"]
    secret = run(AppCanAccessAuditSecret(), t)[AUDIT_SECRET]
    assert secret.status is Status.FAIL
    assert secret.evidence["grants"] == (
        ("clinical/records-api: update, patch, delete, deletecollection via RoleBinding "
         "audit/records-api-audit-debug (ClusterRole edit)"),)


def test_sound_variant_passes(sound_standin: KubeApiStandIn, tmp_path: Path) -> None:
    t = target(sound_standin, tmp_path)
    writer = run(SharedAuditSecret(), t)[WRITER]
    assert (writer.status, writer.evidence["equal_values"]) == (Status.PASS, ())
    assert writer.evidence["compared_pairs"] > 0  # type: ignore[operator]
    assert run(AppCanAccessAuditSecret(), t)[AUDIT_SECRET].status is Status.PASS


def test_same_secret_and_key_fails_without_reading_values(broken_standin: KubeApiStandIn,
                                                          tmp_path: Path) -> None:
    t = target(broken_standin, tmp_path, application_workloads=["clinical/Deployment/*"],
               audit_writer_workloads=["clinical/StatefulSet/records-db"])
    finding = run(SharedAuditSecret(), t)["clinical/StatefulSet/records-db"]
    assert finding.status is Status.FAIL
    assert "clinical/Deployment/records-api env AUDIT_DB_PASSWORD -> " \
        "clinical/records-db-credentials/password" in finding.evidence["shared_refs"]


def test_forbidden_secrets_are_unverified_naming_the_permission(
        sound_standin: KubeApiStandIn, tmp_path: Path) -> None:
    sound_standin.forbid("/api/v1/namespaces/audit/secrets")
    try:
        finding = run(SharedAuditSecret(), target(sound_standin, tmp_path))[WRITER]
    finally:
        sound_standin.clear_faults()
    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.ACCESS_DENIED, "get secrets in audit")


def test_forbidden_rbac_is_unverified(sound_standin: KubeApiStandIn, tmp_path: Path) -> None:
    sound_standin.forbid("/apis/rbac.authorization.k8s.io/v1/rolebindings")
    try:
        [finding] = run(AppCanAccessAuditSecret(), target(sound_standin, tmp_path)).values()
    finally:
        sound_standin.clear_faults()
    assert (finding.status, finding.needs) == (Status.UNVERIFIED,
                                               "list rbac.authorization.k8s.io/rolebindings")


def test_configured_audit_secret_is_judged(broken_standin: KubeApiStandIn,
                                           tmp_path: Path) -> None:
    t = target(broken_standin, tmp_path, audit_secrets=["default/legacy-reports-basic-auth"])
    [finding] = run(AppCanAccessAuditSecret(), t).values()
    assert (finding.resource, finding.status) == ("secret/default/legacy-reports-basic-auth",
                                                  Status.PASS)


def test_reads_only_by_get_and_secrets_by_name(broken_standin: KubeApiStandIn, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broken_standin.clear_requests()
    t = target(broken_standin, tmp_path)
    outputs = []
    for check in (SharedAuditSecret(), AppCanAccessAuditSecret()):
        obs = check.collect(ctx(), t)
        outputs += [repr(obs), *map(repr, check.evaluate(obs, t, Policy()))]
    requests = broken_standin.requests
    assert {r.method for r in requests} == {"GET"}
    secret_paths = {r.path for r in requests if "/secrets" in r.path}
    assert secret_paths == {"/api/v1/namespaces/audit/secrets/audit-db-credentials",
                            "/api/v1/namespaces/clinical/secrets/records-db-credentials"}
    values = [base64.b64decode(o["data"][k]).decode() for o in load_objects(FIXTURES)
              if o["kind"] == "Secret" for k in o["data"]]
    values += [o["data"][k] for o in load_objects(FIXTURES) if o["kind"] == "Secret"
               for k in o["data"]]
    outputs.append(caplog.text)
    assert not [v for v in values if any(v in text for text in outputs)]


def test_workload_kinds_are_read_with_the_declared_permissions() -> None:
    declared = {op.action for op in SharedAuditSecret.meta.operations}
    assert {"list apps/deployments", "list apps/statefulsets", "list apps/daemonsets",
            "get secrets"} == declared



def test_no_application_workload_is_unverified_not_pass():
    # Given observations in which no workload matched the application patterns (a typo, say)
    from hipaacheck.check import Policy
    from hipaacheck.checks.kubernetes import audit_secrets as mod
    from hipaacheck.model import Status, Target, TargetKind

    target = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
    writer = object.__new__(mod.WriterComparison)
    access = object.__new__(mod.SecretAccess)
    shared = mod.SharedAuditSecret().evaluate(
        mod.SharedSecretObservation(comparisons=(writer,), applications=0), target, Policy())
    reach = mod.AppCanAccessAuditSecret().evaluate(
        mod.SecretAccessObservation(accounts=(), secrets=(access,)), target, Policy())
    # Then neither check can pass: there was nothing to compare the audit store with
    assert [f.status for f in shared] == [Status.UNVERIFIED]
    assert [f.status for f in reach] == [Status.UNVERIFIED]
