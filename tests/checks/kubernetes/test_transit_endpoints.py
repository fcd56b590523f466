"""
The endpoints the Kubernetes edge checks offer for live TLS probing: collected by the real
kubernetes client from the API stand-in (the lab cluster, the transit fixtures and this suite's
endpoint fixtures), then from hand-built facts: Ingress hosts by TLS coverage, LoadBalancer
Service ports, Gateway listeners, and nothing for a listing that could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hipaacheck.check import Check, CheckContext
from hipaacheck.checks.kubernetes.transit import (
    CHECKS,
    GatewayListener,
    GatewayListenerTls,
    IngressBackendTls,
    IngressTls,
    LoadBalancerService,
    LoadBalancerServiceTls,
    ServicePort,
    ingress_facts,
)
from hipaacheck.lab.kubeapi import FIXTURES, KubeApiStandIn, load_objects
from hipaacheck.model import Endpoint, Target, TargetKind, Unknown, UnknownReason

from .conftest import TOKEN

HERE = Path(__file__).with_name("fixtures")
Shape = tuple[str, int, bool, str, str | None]


@pytest.fixture(scope="module")
def kube_standin() -> Iterator[KubeApiStandIn]:
    """The conftest's stand-in, serving the transit and endpoint fixtures as well."""
    objects = load_objects([FIXTURES, HERE / "transit.yaml", HERE / "endpoints.yaml"])
    with KubeApiStandIn(objects, token=TOKEN, hang_seconds=5) as server:
        yield server


def offers(check: Check[Any], obs: Any, target: Target) -> dict[str, list[Shape]]:
    """Origin to the (host, port, tls, zone, starttls) of each endpoint offered for it."""
    found: dict[str, list[Shape]] = {}
    for e in check.endpoints(obs, target):
        assert e.source == target.id
        found.setdefault(e.origin, []).append((e.host, e.port, e.tls, e.zone, e.starttls))
    return found


def collected(check: Check[Any], ctx: CheckContext, target: Target) -> dict[str, list[Shape]]:
    return offers(check, check.collect(ctx, target), target)


# --- against the API stand-in -----------------------------------------------------------------

def test_ingresses_offer_their_rule_hosts(kube_target: Target,
                                          make_ctx: Callable[..., CheckContext]) -> None:
    found = collected(IngressTls(), make_ctx(), kube_target)

    assert found == {
        # An ALB with listen-ports HTTPS 443 and an ACM certificate.
        "ingress/clinical/patient-portal": [("portal.clinic.example.com", 443, True, "external",
                                             None)],
        # An internal ALB listening on HTTP 80 only.
        "ingress/default/legacy-reports": [("reports.internal.clinic.example.com", 80, False,
                                            "internal", None)],
        "ingress/intake/intake-forms": [("forms.clinic.example.com", 80, False, "external",
                                         None)],
        "ingress/intake/kiosk": [("kiosk.clinic.example.com", 443, True, "external", None)],
        # The rule host, not the controller's address, is the name the certificate must match.
        "ingress/payments/billing-unverified": [("billing.clinic.example.com", 443, True,
                                                 "external", None)],
        "ingress/payments/billing-verified": [("pay.clinic.example.com", 443, True, "external",
                                               None)],
        "ingress/payments/statements": [("statements.clinic.example.com", 443, True,
                                         "external", None)],
        # Wildcards are offered as they are; a rule without a host is reached at the address.
        "ingress/clinical/tenant-sites": [
            ("*.tenants.clinic.example.com", 443, True, "external", None),
            ("*", 80, False, "external", None), ("10.20.30.50", 80, False, "external", None)],
        "ingress/clinical/fallback": [
            ("*", 443, True, "external", None),
            ("fallback-1a2b3c4d5e.elb.us-east-1.amazonaws.com", 443, True, "external", None)],
    }


def test_load_balancer_services_offer_each_address_and_port(
        kube_target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    found = collected(LoadBalancerServiceTls(), make_ctx(), kube_target)
    intake = "k8s-clinical-intakeap-9c0d1e2f3a-4b5c6d7e8f9a0b1c.elb.us-east-1.amazonaws.com"
    db = "records-db-0f1e2d3c4b.elb.us-east-1.amazonaws.com"

    assert found == {
        "service/clinical/records-api": [(
            "k8s-clinical-recordsa-3f9c1d2e7b-0123456789abcdef.elb.us-east-1.amazonaws.com",
            443, True, "external", None)],
        # aws-load-balancer-scheme: internal; port 80 is plaintext HTTP, listed only.
        "service/clinical/intake-api": [(intake, 443, True, "internal", None),
                                        (intake, 80, False, "internal", None)],
        # A port passed through to the pods: they may speak TLS, the probe tells.
        "service/intake/hl7-feed": [("hl7-feed-1234567890.us-east-1.elb.amazonaws.com", 2575,
                                     True, "internal", None)],
        # aws-load-balancer-internal: "true"; appProtocol postgresql on 6432.
        "service/clinical/records-db": [(db, 6432, True, "internal", "postgres"),
                                        (db, 9187, True, "internal", None)],
    }


def test_gateway_listeners_offer_their_hostnames_or_addresses(
        kube_target: Target, make_ctx: Callable[..., CheckContext]) -> None:
    found = collected(GatewayListenerTls(), make_ctx(), kube_target)

    assert found == {
        "gateway/clinical/clinical-gateway/https": [("api.clinic.example.com", 443, True,
                                                     "external", None)],
        "gateway/clinical/clinical-gateway/http": [("api.clinic.example.com", 80, False,
                                                    "external", None)],
        "gateway/default/reports-gateway/http": [(
            "reports-gateway-5e6f7a8b9c.7d67968.vpc-lattice-svcs.us-east-1.on.aws", 80, False,
            "external", None)],
        # The TCP listener of intake/feeds has neither a hostname nor an address: none.
    }


def test_evidence_lists_what_is_offered_and_offering_reads_nothing(
        kube_standin: KubeApiStandIn, kube_target: Target,
        make_ctx: Callable[..., CheckContext]) -> None:
    ctx = make_ctx()
    for kind in (IngressTls, LoadBalancerServiceTls, GatewayListenerTls):
        check = kind()
        obs = check.collect(ctx, kube_target)
        listed = {str(a) for f in check.evaluate(obs, kube_target, ctx.policy)
                  for a in f.evidence.get("endpoints", ())}
        requests = len(kube_standin.requests)

        offered = {e.address for e in check.endpoints(obs, kube_target)}

        assert listed == offered, kind.meta.id
        assert len(kube_standin.requests) == requests


def test_a_denied_listing_offers_nothing(kube_standin: KubeApiStandIn, kube_target: Target,
                                         make_ctx: Callable[..., CheckContext]) -> None:
    kube_standin.forbid("/apis/networking.k8s.io/v1/ingresses")
    kube_standin.forbid("/api/v1/services")

    assert collected(IngressTls(), make_ctx(), kube_target) == {}
    assert collected(LoadBalancerServiceTls(), make_ctx(), kube_target) == {}


# --- from hand-built facts ---------------------------------------------------------------------

TARGET = Target(TargetKind.KUBERNETES, "k8s:lab", "lab")
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "refused", needs="list x")


def ingress(annotations: dict[str, str], hosts: list[str], tls: list[str]) -> Any:
    return ingress_facts({
        "metadata": {"name": "web", "namespace": "clinical", "annotations": annotations},
        "spec": {"rules": [{"host": h} for h in hosts], "tls": [{"hosts": tls}] if tls else []},
        "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}},
        {}, None)


ALB = "alb.ingress.kubernetes.io/"


@pytest.mark.parametrize(("facts", "expected"), [
    (ingress({}, ["a.example", "b.example"], ["a.example"]),
     [("a.example", 443, True, "external", None), ("b.example", 80, False, "external", None)]),
    (ingress({}, ["a.example"], ["*.example"]), [("a.example", 443, True, "external", None)]),
    (ingress({ALB + "listen-ports": '[{"HTTP": 80}, {"HTTPS": 8443}]',
              ALB + "scheme": "internal"}, ["a.example"], []),
     [("a.example", 80, False, "internal", None), ("a.example", 8443, True, "internal", None)]),
    (ingress({ALB + "certificate-arn": "arn:aws:acm:x"}, ["a.example"], []),
     [("a.example", 443, True, "external", None)]),
    # listen-ports unreadable: the TLS section decides, as for other controllers.
    (ingress({ALB + "listen-ports": "HTTPS:443"}, ["a.example"], ["a.example"]),
     [("a.example", 443, True, "external", None)]),
])
def test_ingress_hosts_by_tls_coverage_and_alb_listeners(facts: Any,
                                                         expected: list[Shape]) -> None:
    assert offers(IngressTls(), (facts,), TARGET) == {"ingress/clinical/web": expected}


def service(*ports: ServicePort, certificate: bool, internal: bool = False
            ) -> LoadBalancerService:
    return LoadBalancerService("db", "pg", None, ports, certificate, None, "ssl", None, True,
                               ("nlb.example",), internal)


@pytest.mark.parametrize(("port", "certificate", "expected"), [
    (ServicePort("postgres", 5432, None), False, ("nlb.example", 5432, True, "external",
                                                  "postgres")),
    (ServicePort("sql", 15432, "postgres"), False, ("nlb.example", 15432, True, "external",
                                                    "postgres")),
    # The load balancer terminates TLS itself: plain TLS, whatever is behind it.
    (ServicePort("postgres", 5432, None), True, ("nlb.example", 5432, True, "external", None)),
    (ServicePort("http", 8080, None), False, ("nlb.example", 8080, False, "external", None)),
    (ServicePort("web", 80, None), True, ("nlb.example", 80, True, "external", None)),
])
def test_service_ports(port: ServicePort, certificate: bool, expected: Shape) -> None:
    assert offers(LoadBalancerServiceTls(), (service(port, certificate=certificate),),
                  TARGET) == {"service/db/pg": [expected]}


def test_an_internal_service_and_a_port_less_one() -> None:
    internal = service(ServicePort("https", 443, None), certificate=True, internal=True)
    pending = service(ServicePort("", 0, None), certificate=False)
    found = list(LoadBalancerServiceTls().endpoints((internal, pending), TARGET))
    assert [(e.zone, e.port, e.via) for e in found] == [("internal", 443, "LoadBalancer Service")]


@pytest.mark.parametrize(("protocol", "tls"), [
    ("HTTPS", True), ("TLS", True), ("HTTP", False), ("TCP", False), ("UDP", False),
])
def test_gateway_listener_protocols(protocol: str, tls: bool) -> None:
    listener = GatewayListener("ns", "gw", "l", protocol, 8443, None, (),
                               ("gw.example:8443", "10.0.0.7:8443"))
    found: list[Endpoint] = list(GatewayListenerTls().endpoints((listener,), TARGET))
    assert [(e.host, e.port, e.tls, e.via) for e in found] == [
        ("gw.example", 8443, tls, "Gateway listener"), ("10.0.0.7", 8443, tls,
                                                        "Gateway listener")]


def test_unknown_listings_offer_nothing_and_only_the_edge_checks_offer() -> None:
    offering = {IngressTls, LoadBalancerServiceTls, GatewayListenerTls}
    for kind in offering:
        assert list(kind().endpoints(DENIED, TARGET)) == [], kind.meta.id
    # The backend check shares the Ingress observation; the mesh and ConfigMap checks find
    # hosts without ports. None of them offers an endpoint.
    assert {kind for kind in CHECKS if kind.endpoints is not Check.endpoints} == offering
    facts = (ingress({}, ["a.example"], ["a.example"]),)
    assert list(IngressBackendTls().endpoints(facts, TARGET)) == []
