"""
Transmission-security checks of Kubernetes, collected by the real kubernetes client from the
local API stand-in: the lab cluster's objects plus this suite's fixtures (ingress-nginx,
Traefik, MetalLB, Linkerd, bypass annotations, libpq strings), then faults (403, 500, a hang),
a cluster without the mesh CRDs, and proof that every request was a GET made once and that no
Secret was read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.kubernetes.transit import (
    CHECKS,
    PROBE_NOTE,
    ConfigMapSslmode,
    GatewayListenerTls,
    IngressBackendTls,
    IngressTls,
    IstioDestinationRuleTls,
    IstioPeerAuthentication,
    LinkerdDefaultPolicy,
    LoadBalancerServiceTls,
    MeshBypassPorts,
)
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.lab.kubeapi import FIXTURES, KubeApiStandIn, load_objects, write_kubeconfig
from hipaacheck.model import Finding, Status, Target, TargetKind, UnknownReason

TOKEN = "transit-test-token"
EXTRA = Path(__file__).with_name("fixtures") / "transit.yaml"
LINKERD_CONFIG = "linkerd-config"
"""The one object read by name (get configmaps), not by listing its type."""


@pytest.fixture(scope="module")
def standin() -> Iterator[KubeApiStandIn]:
    """The lab cluster's objects plus this suite's transit fixtures."""
    server = KubeApiStandIn(load_objects([FIXTURES, EXTRA]), token=TOKEN, hang_seconds=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(standin: KubeApiStandIn) -> Iterator[None]:
    standin.clear_faults()
    standin.clear_requests()
    yield
    standin.clear_faults()


def _target(url: str, directory: Path, namespaces: list[str] | None = None) -> Target:
    kubeconfig = write_kubeconfig(directory / "kubeconfig", url, context="lab", token=TOKEN)
    cluster = KubernetesClusterConfig(name="lab", kubeconfig=kubeconfig, context="lab",
                                      namespaces=namespaces or [])
    return Target(TargetKind.KUBERNETES, "k8s:lab", "lab", cluster)


@pytest.fixture
def target(standin: KubeApiStandIn, tmp_path: Path) -> Target:
    return _target(standin.url, tmp_path)


def run(check: Check[Any], ctx: CheckContext, target: Target) -> list[Finding]:
    return list(check.evaluate(check.collect(ctx, target), target, ctx.policy))


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource: f for f in findings}


def statuses(findings: list[Finding]) -> dict[str, Status]:
    return {f.resource: f.status for f in findings}


def test_ingress_edge(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    found = by_resource(run(IngressTls(), make_ctx(), target))

    assert {r: f.status for r, f in found.items()} == {
        "ingress/clinical/patient-portal": Status.PASS,
        "ingress/default/legacy-reports": Status.FAIL,
        "ingress/payments/billing-unverified": Status.PASS,  # the default class is nginx
        "ingress/payments/billing-verified": Status.PASS,  # covered by *.clinic.example.com
        "ingress/payments/statements": Status.FAIL,  # ssl-redirect: "false"
        "ingress/intake/intake-forms": Status.FAIL,  # no TLS section
        "ingress/intake/kiosk": Status.UNVERIFIED,  # Traefik: not in the object
    }
    assert found["ingress/intake/kiosk"].unknown_reason == UnknownReason.NOT_VISIBLE
    assert found["ingress/payments/billing-unverified"].evidence["endpoints"] == (
        "billing.clinic.example.com:443",)
    assert found["ingress/payments/billing-unverified"].evidence["addresses"] == (
        "10.20.30.40",)
    assert found["ingress/clinical/patient-portal"].evidence["probe"] == PROBE_NOTE


def test_ingress_backends(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    assert statuses(run(IngressBackendTls(), make_ctx(), target)) == {
        "ingress/clinical/patient-portal": Status.WARN,  # an ALB never verifies targets
        "ingress/default/legacy-reports": Status.FAIL,
        "ingress/payments/billing-unverified": Status.FAIL,  # HTTPS, proxy-ssl-verify off
        "ingress/payments/billing-verified": Status.PASS,
        "ingress/payments/statements": Status.FAIL,
        "ingress/intake/intake-forms": Status.FAIL,
        "ingress/intake/kiosk": Status.UNVERIFIED,
    }


def test_load_balancer_services(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    found = by_resource(run(LoadBalancerServiceTls(), make_ctx(), target))

    assert {r: f.status for r, f in found.items()} == {
        "service/clinical/records-api": Status.PASS,
        "service/clinical/intake-api": Status.FAIL,
        "service/intake/on-prem-gateway": Status.UNVERIFIED,
        "service/intake/hl7-feed": Status.UNVERIFIED,
    }
    assert found["service/intake/on-prem-gateway"].unknown_reason == UnknownReason.NOT_SUPPORTED
    assert found["service/intake/hl7-feed"].evidence["endpoints"] == (
        "hl7-feed-1234567890.us-east-1.elb.amazonaws.com:2575",)


def test_gateway_listeners(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    assert statuses(run(GatewayListenerTls(), make_ctx(), target)) == {
        "gateway/clinical/clinical-gateway/https": Status.PASS,
        "gateway/clinical/clinical-gateway/http": Status.PASS,  # only redirects
        "gateway/default/reports-gateway/http": Status.FAIL,
        "gateway/intake/feeds/mllp": Status.UNVERIFIED,
    }


def test_istio(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()
    peer = statuses(run(IstioPeerAuthentication(), ctx, target))
    rules = statuses(run(IstioDestinationRuleTls(), ctx, target))

    assert peer == {
        "namespace/audit": Status.FAIL, "namespace/clinical": Status.PASS,
        "namespace/default": Status.FAIL, "namespace/intake": Status.FAIL,
        "namespace/payments": Status.FAIL,
        "peerauthentication/clinical/records-db-plaintext-port": Status.FAIL}
    assert rules == {
        "destinationrule/clinical/records-db": Status.FAIL,
        "destinationrule/clinical/claims-clearinghouse": Status.FAIL,
        "destinationrule/audit/audit-writer": Status.PASS}


def test_linkerd_and_bypass_ports(target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()
    linkerd = by_resource(run(LinkerdDefaultPolicy(), ctx, target))
    bypass = statuses(run(MeshBypassPorts(), ctx, target))

    assert {r: f.status for r, f in linkerd.items()} == {
        "namespace/intake": Status.FAIL,  # the cluster default, all-unauthenticated
        "namespace/payments": Status.PASS,  # its own annotation
        "deployment/intake/forms": Status.PASS}
    assert linkerd["namespace/intake"].evidence["source"] == "linkerd-config values"
    assert bypass == {"namespace/intake": Status.FAIL, "deployment/payments/billing":
                      Status.UNVERIFIED, "statefulset/intake/kiosk-cache": Status.FAIL}


def test_libpq_settings_in_configmaps_and_secret_references(
        target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    findings = run(ConfigMapSslmode(), make_ctx(), target)
    found = by_resource(findings)

    assert {r: f.status for r, f in found.items()} == {
        "configmap/audit/audit-writer-config/AUDIT_DB_SSLMODE": Status.PASS,
        "configmap/clinical/records-api-config/AUDIT_DB_SSLMODE": Status.PASS,
        "configmap/clinical/records-api-config/DB_SSLMODE": Status.FAIL,  # require, no root
        "configmap/clinical/intake-worker-config/DATABASE_URL": Status.FAIL,  # disable
        "configmap/intake/reporting-config/PG_CONNINFO": Status.WARN,  # verify-ca
        "configmap/intake/reporting-config/REPORTS_DSN": Status.UNVERIFIED,  # no sslmode
        "configmap/intake/reporting-config/BROKEN_CONNINFO": Status.UNVERIFIED,
        "secret/payments/billing-db/url": Status.UNVERIFIED,  # named, never read
    }
    assert found["configmap/intake/reporting-config/BROKEN_CONNINFO"].unknown_reason == \
        UnknownReason.UNPARSEABLE
    # Connection strings never reach a finding: they can carry users, hosts and passwords.
    assert not any("postgres" in repr(f.evidence) or "://" in f.reason for f in findings)


def test_namespaces_in_the_inventory_narrow_the_scope(standin: KubeApiStandIn, tmp_path: Path,
                                                      make_ctx: Callable[..., CheckContext]
                                                      ) -> None:
    target = _target(standin.url, tmp_path, namespaces=["payments"])

    assert set(statuses(run(IngressTls(), make_ctx(), target))) == {
        "ingress/payments/billing-unverified", "ingress/payments/billing-verified",
        "ingress/payments/statements"}
    assert set(statuses(run(IstioPeerAuthentication(), make_ctx(), target))) == {
        "namespace/payments"}


def test_every_request_is_a_get_made_once_and_no_secret_is_read(
        standin: KubeApiStandIn, target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()
    for kind in CHECKS:
        run(kind(), ctx, target)

    requests = standin.requests
    paths = [r.path for r in requests]
    assert {r.method for r in requests} == {"GET"}
    assert len(paths) == len(set(paths))
    assert not any("/secrets" in p or p.endswith("/log") for p in paths)


def test_declared_operations_cover_every_list(standin: KubeApiStandIn, target: Target,
                                              make_ctx: Callable[..., CheckContext]) -> None:
    for kind in CHECKS:
        standin.clear_requests()
        run(kind(), make_ctx(), target)
        declared = {op.action.split(" ", 1)[1].split("/")[-1] for op in kind.meta.operations}
        listed = {r.path.rstrip("/").split("/")[-1] for r in standin.requests}
        assert listed <= declared | {LINKERD_CONFIG}, kind.meta.id


def test_denied_list_is_unverified_naming_the_permission(
        standin: KubeApiStandIn, target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    standin.forbid("/apis/networking.k8s.io/v1/ingresses")

    [finding] = run(IngressTls(), make_ctx(), target)

    assert (finding.resource, finding.status) == ("ingresses", Status.UNVERIFIED)
    assert (finding.unknown_reason, finding.needs) == (UnknownReason.ACCESS_DENIED,
                                                       "list networking.k8s.io/ingresses")


def test_denied_custom_resources_are_access_denied_not_unsupported(
        standin: KubeApiStandIn, target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    standin.forbid("/apis/security.istio.io/")
    standin.fail("/apis/networking.istio.io/", 500)

    [peer] = run(IstioPeerAuthentication(), make_ctx(), target)
    [rules] = run(IstioDestinationRuleTls(), make_ctx(), target)

    assert (peer.unknown_reason, peer.needs) == (UnknownReason.ACCESS_DENIED,
                                                 "list security.istio.io/peerauthentications")
    assert rules.unknown_reason == UnknownReason.UNREACHABLE


def test_denied_linkerd_config_leaves_unannotated_namespaces_unverified(
        standin: KubeApiStandIn, target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    standin.forbid("/api/v1/namespaces/linkerd/configmaps")

    found = by_resource(run(LinkerdDefaultPolicy(), make_ctx(), target))

    assert found["namespace/intake"].status == Status.UNVERIFIED
    assert found["namespace/intake"].needs == "get configmaps"
    assert found["namespace/payments"].status == Status.PASS  # its own annotation decides


def test_a_hung_list_times_out_into_unverified(standin: KubeApiStandIn, target: Target,
                                               make_ctx: Callable[..., CheckContext]) -> None:
    standin.hang("/api/v1/services")

    [finding] = run(LoadBalancerServiceTls(), make_ctx(timeout=0.5), target)

    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, UnknownReason.TIMEOUT)


def test_missing_crds_are_not_supported_never_fail(
        kube_target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    # The lab cluster alone: Istio and the Gateway API are installed, Linkerd is not.
    [linkerd] = run(LinkerdDefaultPolicy(), make_ctx(), kube_target)

    assert (linkerd.status, linkerd.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.NOT_SUPPORTED)
    assert "not installed" in linkerd.reason


def test_a_cluster_without_any_mesh_or_gateway(tmp_path: Path,
                                               make_ctx: Callable[..., CheckContext]) -> None:
    custom = ("istio.io/", "gateway.networking.k8s.io/", "linkerd.io/")
    bare = [o for o in load_objects(FIXTURES) if o["kind"] != "CustomResourceDefinition"
            and not any(group in o["apiVersion"] for group in custom)]
    with KubeApiStandIn(bare, token=TOKEN) as server:
        target = _target(server.url, tmp_path)
        for kind in (IstioPeerAuthentication, IstioDestinationRuleTls, GatewayListenerTls,
                     LinkerdDefaultPolicy):
            [finding] = run(kind(), make_ctx(), target)
            assert (finding.status, finding.unknown_reason) == (
                Status.UNVERIFIED, UnknownReason.NOT_SUPPORTED), kind.meta.id
