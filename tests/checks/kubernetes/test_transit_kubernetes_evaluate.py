"""
Transmission-security checks of Kubernetes, judged on hand-built observations and on objects
shaped as the API serialises them: PASS, FAIL, and UNVERIFIED for each fact that can be unknown.
"""

from __future__ import annotations

from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.kubernetes.transit import (
    CHECKS,
    PROBE_NOTE,
    BypassObservation,
    ConfigMapSslmode,
    GatewayListener,
    GatewayListenerTls,
    IngressBackendTls,
    IngressFacts,
    IngressTls,
    IstioDestinationRuleTls,
    IstioPeerAuthentication,
    LibpqSetting,
    LinkerdDefaultPolicy,
    LinkerdObservation,
    LoadBalancerService,
    LoadBalancerServiceTls,
    MeshBypassPorts,
    NamespaceFacts,
    PeerAuthentication,
    PeerAuthObservation,
    ServicePort,
    SslmodeObservation,
    Workload,
    configmap_settings,
    destination_rule_facts,
    ingress_facts,
)
from hipaacheck.model import Family, Finding, Standard, Status, Target, TargetKind, Unknown
from hipaacheck.model import UnknownReason as R
from hipaacheck.permissions import kubernetes_cluster_role
from hipaacheck.registry import Registry

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
DENIED = Unknown(R.ACCESS_DENIED, "the API server refused (HTTP 403)", needs="list x")
MISSING = Unknown(R.NOT_SUPPORTED, "the CRD is not installed")


def run(check: Any, obs: Any) -> list[Finding]:
    findings = list(check.evaluate(obs, TARGET, Policy()))
    assert all(f.check_id == check.meta.id for f in findings)
    return findings


def one(check: Any, obs: Any) -> Finding:
    [finding] = run(check, obs)
    return finding


def test_metadata_is_complete_and_grants_only_reads() -> None:
    registry = Registry.from_checks(kind() for kind in CHECKS)
    for check in registry.checks.values():
        assert (check.meta.family, check.meta.standard) == (Family.TRANSMISSION,
                                                            Standard.TRANSMISSION)
        assert check.meta.citations == ("164.312(e)(1)", "164.312(e)(2)(i)",
                                        "164.312(e)(2)(ii)")
    role = kubernetes_cluster_role(registry.metas())
    assert "secrets" not in role and "pods" not in role


# --- Ingress ----------------------------------------------------------------------------------

def ingress(annotations: dict[str, str] | None = None, class_name: str | None = "nginx",
            hosts: list[str | None] | None = None, tls: list[list[str] | None] | None = None
            ) -> IngressFacts:
    obj = {"metadata": {"name": "web", "namespace": "clinical", "annotations": annotations or {}},
           "spec": {"ingressClassName": class_name,
                    "rules": [{"host": h} if h else {} for h in (hosts or ["a.example"])],
                    "tls": [{"hosts": h} if h else {} for h in (tls or [])]},
           "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}}
    return ingress_facts(obj, {"nginx": "nginx", "alb": "alb", "traefik": "unknown"}, None)


NGINX = "nginx.ingress.kubernetes.io/"
ALB = "alb.ingress.kubernetes.io/"


@pytest.mark.parametrize(("facts", "expected"), [
    (ingress(tls=[["a.example"]]), Status.PASS),
    (ingress(tls=[["*.example"]]), Status.PASS),
    (ingress(hosts=[None], tls=[None]), Status.PASS),  # catch-all rule, default certificate
    (ingress(), Status.FAIL),
    (ingress(hosts=["a.example", "b.example"], tls=[["a.example"]]), Status.FAIL),
    (ingress({NGINX + "ssl-redirect": "false"}, tls=[["a.example"]]), Status.FAIL),
    (ingress(class_name="traefik", tls=[["a.example"]]), Status.UNVERIFIED),
    (ingress({ALB + "listen-ports": '[{"HTTPS": 443}]'}, "alb"), Status.PASS),
    (ingress({ALB + "listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
              ALB + "ssl-redirect": "443"}, "alb"), Status.PASS),
    (ingress({ALB + "listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]'}, "alb"), Status.FAIL),
    (ingress({}, "alb"), Status.FAIL),  # no certificate: the controller listens on HTTP 80
    (ingress({ALB + "certificate-arn": "arn:aws:acm:x"}, "alb"), Status.PASS),
    (ingress({ALB + "listen-ports": "HTTPS:443"}, "alb"), Status.UNVERIFIED),
])
def test_ingress_edge_verdicts(facts: IngressFacts, expected: Status) -> None:
    finding = one(IngressTls(), (facts,))
    assert finding.status == expected
    assert finding.evidence["endpoints"] == tuple(
        e.address for e in IngressTls().endpoints((facts,), TARGET))
    assert finding.evidence["addresses"] == ("lb.example",)


@pytest.mark.parametrize(("facts", "expected"), [
    (ingress({NGINX + "backend-protocol": "HTTPS", NGINX + "proxy-ssl-verify": "on"}),
     Status.PASS),
    (ingress({NGINX + "backend-protocol": "GRPCS"}), Status.FAIL),
    (ingress(), Status.FAIL),
    (ingress({ALB + "backend-protocol": "HTTPS"}, "alb"), Status.WARN),
    (ingress({}, "alb"), Status.FAIL),
    (ingress(class_name="traefik"), Status.UNVERIFIED),
])
def test_ingress_backend_verdicts(facts: IngressFacts, expected: Status) -> None:
    assert one(IngressBackendTls(), (facts,)).status == expected


def test_the_controller_is_guessed_from_annotations_without_a_known_class() -> None:
    facts = ingress_facts({"metadata": {"name": "x", "namespace": "n", "annotations": {
        ALB + "scheme": "internal"}}, "spec": {}}, {}, None)
    assert facts.controller == "alb"


def test_unlisted_and_empty_ingresses() -> None:
    assert one(IngressTls(), DENIED).status == Status.UNVERIFIED
    assert one(IngressTls(), DENIED).needs == "list x"
    assert one(IngressBackendTls(), ()).status == Status.PASS


# --- Services ---------------------------------------------------------------------------------

def service(*ports: tuple[str, int], certificate: bool = True, ssl_ports: str | None = None,
            backend: str | None = "ssl", lb_class: str | None = None) -> LoadBalancerService:
    return LoadBalancerService(
        "clinical", "api", lb_class, tuple(ServicePort(n, p, None) for n, p in ports),
        certificate, ssl_ports, backend, None, certificate, ("nlb.example",))


@pytest.mark.parametrize(("svc", "expected", "reason"), [
    (service(("https", 443)), Status.PASS, None),
    (service(("https", 443), backend="tcp"), Status.FAIL, None),
    (service(("https", 443), backend=None), Status.FAIL, None),
    (service(("https", 443), ("http", 80), ssl_ports="https"), Status.FAIL, None),
    (service(("mllp", 2575), certificate=False), Status.UNVERIFIED, R.NOT_VISIBLE),
    (service(("https", 443), certificate=False, lb_class="metallb.io/metallb"),
     Status.UNVERIFIED, R.NOT_SUPPORTED),
])
def test_service_verdicts(svc: LoadBalancerService, expected: Status, reason: R | None) -> None:
    finding = one(LoadBalancerServiceTls(), (svc,))
    assert (finding.status, finding.unknown_reason) == (expected, reason)
    assert finding.evidence["probe"] == PROBE_NOTE


def test_services_unlisted_or_absent() -> None:
    assert one(LoadBalancerServiceTls(), DENIED).status == Status.UNVERIFIED
    assert one(LoadBalancerServiceTls(), ()).status == Status.PASS


# --- Gateway API ------------------------------------------------------------------------------

def listener(protocol: str, routes: Any = ()) -> GatewayListener:
    return GatewayListener("clinical", "gw", "l", protocol, 80, None, routes, ("gw.example:80",))


@pytest.mark.parametrize(("item", "expected"), [
    (listener("HTTPS"), Status.PASS),
    (listener("HTTP", (("clinical/redirect", True),)), Status.PASS),
    (listener("HTTP", ()), Status.PASS),
    (listener("HTTP", (("clinical/redirect", True), ("clinical/app", False))), Status.FAIL),
    (listener("HTTP", DENIED), Status.UNVERIFIED),
    (listener("TCP"), Status.UNVERIFIED),
    (listener("QUIC"), Status.UNVERIFIED),
])
def test_gateway_listener_verdicts(item: GatewayListener, expected: Status) -> None:
    assert one(GatewayListenerTls(), (item,)).status == expected


def test_gateway_crd_missing_is_not_supported() -> None:
    finding = one(GatewayListenerTls(), MISSING)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, R.NOT_SUPPORTED)


# --- Istio ------------------------------------------------------------------------------------

def pa(namespace: str, mode: str, workload: bool = False, ports: dict[str, str] | None = None,
       name: str = "default") -> PeerAuthentication:
    return PeerAuthentication(namespace, name, workload, mode, ports or {})


def ns(name: str, **annotations: str) -> NamespaceFacts:
    return NamespaceFacts(name, None, annotations)


@pytest.mark.parametrize(("policies", "expected"), [
    ((), Status.FAIL),  # no policy at all: Istio's default, PERMISSIVE
    ((pa("istio-system", "STRICT"),), Status.PASS),
    ((pa("istio-system", "STRICT"), pa("clinical", "PERMISSIVE")), Status.FAIL),
    ((pa("istio-system", "PERMISSIVE"), pa("clinical", "STRICT")), Status.PASS),
    ((pa("istio-system", "STRICT"), pa("clinical", "UNSET")), Status.PASS),
    ((pa("clinical", "DISABLE"),), Status.FAIL),
])
def test_namespace_mtls_verdicts(policies: tuple[PeerAuthentication, ...],
                                 expected: Status) -> None:
    finding = one(IstioPeerAuthentication(), PeerAuthObservation(policies, (ns("clinical"),)))
    assert (finding.resource, finding.status) == ("namespace/clinical", expected)


def test_workload_policies_that_weaken_mtls_fail() -> None:
    policies = (pa("istio-system", "STRICT"),
                pa("clinical", "STRICT", True, {"5432": "DISABLE"}, "db"),
                pa("clinical", "STRICT", True, {}, "api"))
    findings = {f.resource: f.status for f in run(
        IstioPeerAuthentication(), PeerAuthObservation(policies, (ns("clinical"),)))}
    assert findings == {"namespace/clinical": Status.PASS,
                        "peerauthentication/clinical/db": Status.FAIL,
                        "peerauthentication/clinical/api": Status.PASS}


@pytest.mark.parametrize(("obs", "reason"), [
    (PeerAuthObservation(MISSING, MISSING), R.NOT_SUPPORTED),
    (PeerAuthObservation(DENIED, DENIED), R.ACCESS_DENIED),
    (PeerAuthObservation((), DENIED), R.ACCESS_DENIED),
])
def test_peer_authentication_unknowns(obs: PeerAuthObservation, reason: R) -> None:
    finding = one(IstioPeerAuthentication(), obs)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, reason)


def rule(spec: dict[str, Any]) -> Any:
    return destination_rule_facts({"metadata": {"name": "r", "namespace": "clinical"},
                                   "spec": {"host": "db.example", **spec}})


@pytest.mark.parametrize(("spec", "expected"), [
    ({"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}, Status.PASS),
    ({"trafficPolicy": {"tls": {"mode": "DISABLE"}}}, Status.FAIL),
    ({"trafficPolicy": {"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}}}, Status.FAIL),
    ({"trafficPolicy": {"portLevelSettings": [{"port": {"number": 5432},
                                               "tls": {"mode": "DISABLE"}}]}}, Status.FAIL),
    ({"subsets": [{"name": "v2", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]}, Status.FAIL),
])
def test_destination_rule_verdicts(spec: dict[str, Any], expected: Status) -> None:
    assert one(IstioDestinationRuleTls(), (rule(spec),)).status == expected


def test_rules_without_tls_settings_are_counted_not_judged() -> None:
    finding = one(IstioDestinationRuleTls(), (rule({}),))
    assert (finding.status, finding.evidence["destination_rules"]) == (Status.PASS, 1)
    assert one(IstioDestinationRuleTls(), MISSING).unknown_reason == R.NOT_SUPPORTED


# --- Linkerd and bypass annotations -----------------------------------------------------------

MESHED = {"linkerd.io/inject": "enabled"}


def workload(name: str, namespace: str = "clinical", **annotations: str) -> Workload:
    return Workload("Deployment", namespace, name, annotations, ())


def linkerd(default: Any, namespaces: Any, workloads: Any = ()) -> LinkerdObservation:
    return LinkerdObservation(2, default, namespaces, workloads)


@pytest.mark.parametrize(("default", "annotations", "expected"), [
    (("all-unauthenticated", "Linkerd's default"), MESHED, Status.FAIL),
    (("all-authenticated", "linkerd-config values"), MESHED, Status.PASS),
    (("all-unauthenticated", "x"), {**MESHED, "config.linkerd.io/default-inbound-policy":
                                    "deny"}, Status.PASS),
    (("audit", "x"), MESHED, Status.FAIL),
    (DENIED, MESHED, Status.UNVERIFIED),
    (("allow-everything", "x"), MESHED, Status.UNVERIFIED),
])
def test_linkerd_namespace_verdicts(default: Any, annotations: dict[str, str],
                                    expected: Status) -> None:
    finding = one(LinkerdDefaultPolicy(), linkerd(default, (ns("clinical", **annotations),)))
    assert (finding.resource, finding.status) == ("namespace/clinical", expected)


def test_linkerd_workload_overrides_and_unmeshed_clusters() -> None:
    overriding = workload("api", **{"config.linkerd.io/default-inbound-policy":
                                    "all-unauthenticated"})
    findings = run(LinkerdDefaultPolicy(), linkerd(("deny", "x"), (ns("clinical", **MESHED),),
                                                   (overriding,)))
    assert {f.resource: f.status for f in findings} == {
        "namespace/clinical": Status.PASS, "deployment/clinical/api": Status.FAIL}
    unmeshed = one(LinkerdDefaultPolicy(), linkerd(("deny", "x"), (ns("clinical"),)))
    assert (unmeshed.resource, unmeshed.status) == ("linkerd", Status.PASS)


def test_a_workload_meshed_alone_takes_the_cluster_default() -> None:
    alone = workload("api", **MESHED)
    finding = one(LinkerdDefaultPolicy(), linkerd(("all-unauthenticated", "Linkerd's default"),
                                                  (ns("clinical"),), (alone,)))
    assert (finding.resource, finding.status) == ("deployment/clinical/api", Status.FAIL)
    assert finding.evidence["source"] == "Linkerd's default"


@pytest.mark.parametrize("obs", [
    LinkerdObservation(MISSING, MISSING, MISSING, MISSING),
    linkerd(("deny", "x"), DENIED),
    linkerd(("deny", "x"), (), DENIED),
])
def test_linkerd_unknowns(obs: LinkerdObservation) -> None:
    assert one(LinkerdDefaultPolicy(), obs).status == Status.UNVERIFIED


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"config.linkerd.io/skip-inbound-ports": "5432"}, Status.FAIL),
    ({"traffic.sidecar.istio.io/excludeInboundPorts": "6379"}, Status.FAIL),
    ({"config.linkerd.io/skip-outbound-ports": "443"}, Status.UNVERIFIED),
    ({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8"}, Status.UNVERIFIED),
])
def test_bypass_verdicts(annotations: dict[str, str], expected: Status) -> None:
    finding = one(MeshBypassPorts(), BypassObservation((), (workload("api", **annotations),)))
    assert (finding.resource, finding.status) == ("deployment/clinical/api", expected)


def test_bypass_none_and_unknown() -> None:
    assert one(MeshBypassPorts(), BypassObservation((ns("a"),), (workload("b"),))).status == \
        Status.PASS
    assert one(MeshBypassPorts(), BypassObservation(DENIED, ())).status == Status.UNVERIFIED
    assert one(MeshBypassPorts(), BypassObservation((), DENIED)).status == Status.UNVERIFIED


# --- libpq settings in ConfigMaps -------------------------------------------------------------

def configmap(**data: str) -> list[LibpqSetting]:
    return configmap_settings({"metadata": {"name": "cfg", "namespace": "clinical"},
                               "data": data})


@pytest.mark.parametrize(("data", "expected"), [
    ({"PGSSLMODE": "verify-full"}, Status.PASS),
    ({"DB_SSLMODE": "require", "DB_SSLROOTCERT": "/etc/ca.pem"}, Status.WARN),
    ({"DB_SSLMODE": "require"}, Status.FAIL),
    ({"DATABASE_URL": "postgres://app@db/records?sslmode=prefer"}, Status.FAIL),
    ({"JDBC_URL": "jdbc:postgresql://db:5432/records?sslmode=verify-full"}, Status.PASS),
    ({"CONNINFO": "host=db dbname=records sslmode=allow"}, Status.FAIL),
    ({"DATABASE_URL": "postgresql://app@db/records"}, Status.UNVERIFIED),
    ({"PGSSLMODE": "sometimes"}, Status.UNVERIFIED),
])
def test_configmap_sslmode_verdicts(data: dict[str, str], expected: Status) -> None:
    settings = [s for s in configmap(**data) if "ROOTCERT" not in s.key]
    finding = one(ConfigMapSslmode(), SslmodeObservation(tuple(settings), 1, ()))
    assert finding.status == expected
    assert "postgres" not in repr(finding.evidence)


def test_a_url_without_sslmode_takes_the_configmaps_own_pgsslmode() -> None:
    settings = configmap(DATABASE_URL="postgresql://app@db/records", PGSSLMODE="verify-full")
    assert [s.sslmode for s in settings] == ["verify-full", "verify-full"]


def test_configmap_unknowns_and_nothing_found() -> None:
    secret = LibpqSetting("secret/clinical/db/url", "clinical", "Secret db", "url", "secret",
                          Unknown(R.NOT_VISIBLE, "held in a Secret"))
    assert one(ConfigMapSslmode(), SslmodeObservation((), 0, (secret,))).status == \
        Status.UNVERIFIED
    denied = run(ConfigMapSslmode(), SslmodeObservation(DENIED, 0, ()))
    assert [f.status for f in denied] == [Status.UNVERIFIED]
    empty = one(ConfigMapSslmode(), SslmodeObservation((), 3, ()))
    assert (empty.status, empty.evidence["configmaps"]) == (Status.PASS, 3)
