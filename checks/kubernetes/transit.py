"""
Transmission security inside and at the edge of a Kubernetes cluster, judged from the API
server: Ingress TLS and backend hops, LoadBalancer Services and their AWS annotations, Gateway
API listeners, Istio PeerAuthentication and DestinationRules, Linkerd default policies, sidecar
bypass annotations, and libpq `sslmode` settings in ConfigMaps.

Every list is made once per scan (memo keys `("kubernetes.transit", target, resource)`) through
the cluster's read-only client; objects are reduced to the few facts a check judges as soon as
they are read. Nothing here reads a Secret or a pod's environment values: a setting held in a
Secret is named by its Secret and key (from the workloads' `secretKeyRef`s) and is UNVERIFIED.
A custom resource type the cluster does not serve (no Istio, Linkerd or Gateway API CRD) is
UNVERIFIED with reason `not_supported`, never FAIL and never PASS.

These checks never connect to a workload. Findings list the endpoints they discovered (with
`probe` saying how they are treated), and the edge checks offer them to the scan
(`Check.endpoints`): Ingress hosts, LoadBalancer Service addresses and Gateway listeners. The TLS
checks probe them live in a second phase, only for clusters whose inventory entry sets
`probe_endpoints`; plaintext ones are listed, never probed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

import psycopg
import yaml
from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi, NetworkingV1Api
from kubernetes.client.exceptions import ApiException
from psycopg.conninfo import conninfo_to_dict

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.postgres.transit import judge_sslmode
from hipaacheck.clients.kubernetes import API_ERRORS, classify_api_error, list_all, observe
from hipaacheck.config import KubernetesClusterConfig
from hipaacheck.model import (
    CheckMeta,
    Endpoint,
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
    Zone,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Obj = Mapping[str, Any]
"""A Kubernetes object as the API serialises it (camelCase keys)."""

CITATIONS = ("164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)")
PROBE_NOTE = "listed; probed only where the inventory sets probe_endpoints"
"""The `probe` evidence of the findings whose endpoints are offered for live probing."""
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
"""Namespaces judged only when the inventory names them."""

NEEDS_INGRESSES = "list networking.k8s.io/ingresses"
NEEDS_INGRESS_CLASSES = "list networking.k8s.io/ingressclasses"
NEEDS_SERVICES = "list services"
NEEDS_NAMESPACES = "list namespaces"
NEEDS_CONFIGMAPS = "list configmaps"
NEEDS_GET_CONFIGMAPS = "get configmaps"
NEEDS_DEPLOYMENTS = "list apps/deployments"
NEEDS_STATEFULSETS = "list apps/statefulsets"
NEEDS_DAEMONSETS = "list apps/daemonsets"
NEEDS_GATEWAYS = "list gateway.networking.k8s.io/gateways"
NEEDS_HTTPROUTES = "list gateway.networking.k8s.io/httproutes"
NEEDS_PEER_AUTHENTICATIONS = "list security.istio.io/peerauthentications"
NEEDS_DESTINATION_RULES = "list networking.istio.io/destinationrules"
NEEDS_LINKERD_SERVERS = "list policy.linkerd.io/servers"

ISTIO_ROOT_NAMESPACE = "istio-system"
"""NOTE: Istio's default root namespace; a mesh that moves it (meshConfig.rootNamespace) has its
mesh-wide policy judged as an ordinary namespace policy of that namespace."""
LINKERD_NAMESPACE = "linkerd"
LINKERD_CONFIG = "linkerd-config"


# --- reading the cluster ----------------------------------------------------------------------

@dataclass(frozen=True)
class Cluster:
    """One check's handle on one cluster: the context, the target and its read-only client."""

    ctx: CheckContext
    target: Target
    client: Any

    @classmethod
    def of(cls, ctx: CheckContext, target: Target) -> Cluster:
        """The handle for a Kubernetes target; the client is shared with every other check."""
        if not isinstance(target.config, KubernetesClusterConfig):
            raise TypeError(f"target {target.id} carries no Kubernetes cluster configuration")
        return cls(ctx, target, ctx.clients.kubernetes(target.config))

    @property
    def config(self) -> KubernetesClusterConfig:
        """The cluster's inventory entry."""
        assert isinstance(self.target.config, KubernetesClusterConfig)
        return self.target.config

    def in_scope(self, namespace: str | None) -> bool:
        """Whether objects of `namespace` are judged: the inventory's PHI namespaces, or every
        namespace but the system ones when it names none."""
        if self.config.namespaces:
            return namespace in self.config.namespaces
        return namespace not in SYSTEM_NAMESPACES

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()` once per scan and cluster."""
        return self.ctx.memo.get(("kubernetes.transit", self.target.id, key), compute)

    def typed(self, key: str, list_fn: Callable[..., Any], needs: str) -> Fact[tuple[Obj, ...]]:
        """Every object of a built-in type, serialised to plain mappings, once per scan."""
        def compute() -> tuple[Obj, ...]:
            items = list_all(list_fn, timeout=self.ctx.timeout)
            return tuple(self.client.sanitize_for_serialization(item) for item in items)

        return observe(lambda: self.once(key, compute), needs=needs)

    def custom(self, group: str, versions: Sequence[str], plural: str, needs: str
               ) -> Fact[tuple[Obj, ...]]:
        """
        Every custom object of a type, trying its API versions newest first, once per scan.

        A type none of whose versions is served is `Unknown` with reason `not_supported`.
        """
        def compute() -> Fact[tuple[Obj, ...]]:
            api = CustomObjectsApi(self.client)
            for version in versions:
                try:
                    return tuple(list_all(api.list_cluster_custom_object, timeout=self.ctx.timeout,
                                          group=group, version=version, plural=plural))
                except ApiException as exc:
                    if exc.status == 404:
                        continue
                    return classify_api_error(exc, needs)
                except API_ERRORS as exc:
                    return classify_api_error(exc, needs)
            return Unknown(UnknownReason.NOT_SUPPORTED,
                           f"the cluster does not serve {plural}.{group} (the CRD is not "
                           "installed)")

        return self.once(f"{plural}.{group}", compute)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _namespace(obj: Obj) -> str | None:
    value = _meta(obj).get("namespace")
    return str(value) if value else None


def _annotations(obj: Obj) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in (_meta(obj).get("annotations") or {}).items()}


def _labels(obj: Obj) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in (_meta(obj).get("labels") or {}).items()}


def _dig(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def endpoint_evidence(*endpoints: str, probe: str = PROBE_NOTE) -> dict[str, EvidenceValue]:
    """The discovered-endpoints part of a finding's evidence, and how they are treated."""
    return {"endpoints": tuple(dict.fromkeys(e for e in endpoints if e)), "probe": probe}


def _load_balancer_hosts(obj: Obj) -> list[str]:
    """The hostnames and addresses an Ingress or Service's status says it is reached at."""
    return [str(i.get("hostname") or i.get("ip")) for i in
            _items(_dig(obj, "status", "loadBalancer", "ingress")) if i.get("hostname") or
            i.get("ip")]


def _with_evidence(finding: Finding, evidence: Mapping[str, EvidenceValue]) -> Finding:
    return replace(finding, evidence={**finding.evidence, **evidence})


def _unverified(make: FindingBuilder[Any], resource: str, unknown: Unknown, what: str,
                evidence: Mapping[str, EvidenceValue] | None = None) -> Finding:
    return _with_evidence(make.unverified(resource, unknown, what), evidence or {})


def _meta_of(id_: str, title: str, severity: Severity, description: str, remediation: str,
             *operations: Operation) -> CheckMeta:
    """The metadata every check here shares: family, standard, citations and target kind."""
    return CheckMeta(
        id=id_, title=title, family=Family.TRANSMISSION, standard=Standard.TRANSMISSION,
        citations=CITATIONS, severity=severity, target_kind=TargetKind.KUBERNETES,
        description=description, remediation=remediation, operations=operations)


def _op(needs: str, why: str) -> Operation:
    return Operation(System.KUBERNETES, needs, why)


# --- Ingress: TLS at the edge, and the hop to the backends -----------------------------------

ALB_LISTEN_PORTS = "alb.ingress.kubernetes.io/listen-ports"
ALB_SSL_REDIRECT = "alb.ingress.kubernetes.io/ssl-redirect"
ALB_CERTIFICATE = "alb.ingress.kubernetes.io/certificate-arn"
ALB_BACKEND = "alb.ingress.kubernetes.io/backend-protocol"
ALB_SSL_POLICY = "alb.ingress.kubernetes.io/ssl-policy"
ALB_SCHEME = "alb.ingress.kubernetes.io/scheme"
NGINX_SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
NGINX_FORCE_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"
NGINX_BACKEND = "nginx.ingress.kubernetes.io/backend-protocol"
NGINX_VERIFY = "nginx.ingress.kubernetes.io/proxy-ssl-verify"
NGINX_VERIFY_SECRET = "nginx.ingress.kubernetes.io/proxy-ssl-secret"
_INGRESS_ANNOTATIONS = (ALB_LISTEN_PORTS, ALB_SSL_REDIRECT, ALB_BACKEND, ALB_SSL_POLICY,
                        ALB_SCHEME, NGINX_SSL_REDIRECT, NGINX_FORCE_REDIRECT, NGINX_BACKEND,
                        NGINX_VERIFY)
_CONTROLLERS = {"ingress.k8s.aws/alb": "alb", "k8s.io/ingress-nginx": "nginx"}
_DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
_LEGACY_CLASS = "kubernetes.io/ingress.class"

Controller = Literal["alb", "nginx", "unknown"]


@dataclass(frozen=True)
class IngressFacts:
    """The TLS-relevant facts of one Ingress; annotation values are kept only for known keys."""

    namespace: str
    name: str
    controller: Controller
    class_name: str | None
    hosts: tuple[str, ...]
    """The rules' hosts; `*` for a rule without a host."""
    tls_hosts: tuple[str, ...]
    """The hosts of the TLS section; `*` for an entry without hosts."""
    annotations: Mapping[str, str]
    certificate_annotation: bool
    verify_secret: bool
    addresses: tuple[str, ...]
    """The hostnames and IPs the Ingress's status says its load balancer is reached at."""

    @property
    def resource(self) -> str:
        """The finding resource: `ingress/<namespace>/<name>`."""
        return f"ingress/{self.namespace}/{self.name}"

    @property
    def zone(self) -> Zone:
        """`internal` for an ALB the controller creates with scheme internal; else external."""
        internal = self.controller == "alb" and self.annotations.get(ALB_SCHEME) == "internal"
        return "internal" if internal else "external"

    def evidence(self) -> dict[str, EvidenceValue]:
        """What every Ingress finding shows."""
        return {"controller": self.controller, "ingress_class": self.class_name,
                "hosts": self.hosts, "tls_hosts": self.tls_hosts, "addresses": self.addresses,
                **endpoint_evidence(*(f"{h}:{p}" for h, p, _ in ingress_endpoints(self)))}


def _ingress_controllers(classes: Fact[tuple[Obj, ...]]) -> tuple[dict[str, Controller],
                                                                    str | None]:
    """IngressClass name to controller, and the default class's name."""
    if isinstance(classes, Unknown):
        return {}, None
    by_name: dict[str, Controller] = {}
    default = None
    for item in classes:
        controller = _CONTROLLERS.get(str(_dig(item, "spec", "controller")), "unknown")
        by_name[_name(item)] = controller  # type: ignore[assignment]
        if _annotations(item).get(_DEFAULT_CLASS) == "true":
            default = _name(item)
    return by_name, default


def _guess_controller(class_name: str | None, annotations: Mapping[str, str]) -> Controller:
    """
    The controller an Ingress names by its annotations, or by the two controllers'
    conventional class names, when no IngressClass says; anything else is `unknown`.
    """
    if any(k.startswith("alb.ingress.kubernetes.io/") for k in annotations) or \
            class_name == "alb":
        return "alb"
    if any(k.startswith("nginx.ingress.kubernetes.io/") for k in annotations) or \
            class_name == "nginx":
        return "nginx"
    return "unknown"


def ingress_facts(obj: Obj, classes: Mapping[str, Controller], default: str | None
                  ) -> IngressFacts:
    """The facts of one serialised Ingress."""
    annotations = _annotations(obj)
    spec = obj.get("spec") or {}
    class_name = spec.get("ingressClassName") or annotations.get(_LEGACY_CLASS) or default
    controller = classes.get(class_name or "") or _guess_controller(class_name, annotations)
    hosts = tuple(str(r.get("host") or "*") for r in _items(spec.get("rules")))
    tls_hosts = tuple(str(h) for t in _items(spec.get("tls")) for h in (t.get("hosts") or ["*"]))
    if not hosts and spec.get("defaultBackend"):
        hosts = ("*",)
    return IngressFacts(
        namespace=str(_namespace(obj)), name=_name(obj), controller=controller,
        class_name=class_name, hosts=hosts, tls_hosts=tls_hosts,
        annotations={k: annotations[k] for k in _INGRESS_ANNOTATIONS if k in annotations},
        certificate_annotation=bool(annotations.get(ALB_CERTIFICATE)),
        verify_secret=bool(annotations.get(NGINX_VERIFY_SECRET)),
        addresses=tuple(_load_balancer_hosts(obj)))


def ingresses(cluster: Cluster) -> Fact[tuple[IngressFacts, ...]]:
    """The in-scope Ingresses, each with the controller its class names."""
    raw = cluster.typed("networking.k8s.io/ingresses",
                        NetworkingV1Api(cluster.client).list_ingress_for_all_namespaces,
                        NEEDS_INGRESSES)
    if isinstance(raw, Unknown):
        return raw
    classes, default = _ingress_controllers(cluster.typed(
        "networking.k8s.io/ingressclasses", NetworkingV1Api(cluster.client).list_ingress_class,
        NEEDS_INGRESS_CLASSES))
    return tuple(ingress_facts(obj, classes, default) for obj in raw
                 if cluster.in_scope(_namespace(obj)))


def _covered(host: str, tls_hosts: Sequence[str]) -> bool:
    """Whether a rule's host is in the TLS section (a `*.domain` entry covers one label)."""
    for tls in tls_hosts:
        if tls == host:
            return True
        if tls.startswith("*.") and host != "*" and host.split(".", 1)[-1] == tls[2:]:
            return True
    return False


@dataclass(frozen=True)
class Verdict:
    """A status with its reason, and the `Unknown` behind an UNVERIFIED one."""

    status: Status
    reason: str
    unknown: Unknown | None = None


def _alb_ports(ing: IngressFacts) -> list[tuple[str, int]] | Unknown:
    """The ALB's listeners from `listen-ports`, or the controller's defaults."""
    raw = ing.annotations.get(ALB_LISTEN_PORTS)
    if raw is None:
        tls = ing.certificate_annotation or bool(ing.tls_hosts)
        return [("HTTPS", 443)] if tls else [("HTTP", 80)]
    try:
        return [(str(proto).upper(), int(port)) for entry in json.loads(raw)
                for proto, port in entry.items()]
    except (ValueError, TypeError, AttributeError):
        return Unknown(UnknownReason.UNPARSEABLE, "the listen-ports annotation is not the "
                       "JSON list the AWS Load Balancer Controller expects")


def ingress_endpoints(ing: IngressFacts) -> list[tuple[str, int, bool]]:
    """
    (host, port, TLS) of every endpoint an Ingress serves. Each rule's host is the name its
    certificate must match; a rule without a host (`*`) is reached at the load balancer's
    addresses. A host with a TLS entry is served on 443 over TLS, one without on 80 in
    plaintext; an ALB serves every host on the listeners its listen-ports name.
    """
    names = list(dict.fromkeys(ing.hosts))
    if "*" in names or not names:
        names += [a for a in ing.addresses if a not in names]
    ports = _alb_ports(ing) if ing.controller == "alb" else None
    if isinstance(ports, list):
        return [(name, port, proto == "HTTPS") for name in names for proto, port in ports]
    catch_all = _covered("*", ing.tls_hosts)
    secure = [_covered(name, ing.tls_hosts) or (catch_all and name in ing.addresses)
              for name in names]
    return [(name, 443, True) if tls else (name, 80, False) for name, tls in zip(names, secure)]


def _alb_frontend(ing: IngressFacts) -> Verdict:
    ports = _alb_ports(ing)
    if isinstance(ports, Unknown):
        return Verdict(Status.UNVERIFIED, ports.detail, ports)
    plain = [p for proto, p in ports if proto == "HTTP"]
    secure = [p for proto, p in ports if proto == "HTTPS"]
    if plain and not secure:
        return Verdict(Status.FAIL, f"the ALB listens for plaintext HTTP only (ports "
                                    f"{', '.join(map(str, plain))})")
    if plain and ALB_SSL_REDIRECT not in ing.annotations:
        return Verdict(Status.FAIL, f"the ALB also serves plaintext HTTP on ports "
                                    f"{', '.join(map(str, plain))} (no ssl-redirect)")
    return Verdict(Status.PASS, f"the ALB listens on HTTPS ({', '.join(map(str, secure))})"
                   + (" and redirects HTTP" if plain else ""))


def _uncovered(ing: IngressFacts) -> list[str]:
    return [h for h in ing.hosts if not _covered(h, ing.tls_hosts)]


def _frontend(ing: IngressFacts) -> Verdict:
    """The verdict on how clients reach one Ingress."""
    if ing.controller == "alb":
        return _alb_frontend(ing)
    missing = _uncovered(ing)
    if missing:
        return Verdict(Status.FAIL, f"hosts {', '.join(missing)} have no TLS entry and are "
                                    "served over plaintext HTTP")
    if not ing.hosts:
        return Verdict(Status.PASS, "it has no rules")
    if ing.controller == "nginx":
        if ing.annotations.get(NGINX_SSL_REDIRECT, "true").lower() == "false":
            return Verdict(Status.FAIL, "it serves plaintext HTTP beside HTTPS (ssl-redirect is "
                                        "false)")
        return Verdict(Status.PASS, "every host has TLS and ingress-nginx redirects HTTP to "
                                    "HTTPS")
    unknown = Unknown(UnknownReason.NOT_VISIBLE,
                      "every host has TLS, but whether this controller also serves plaintext "
                      "HTTP is its own behaviour, not part of the Ingress",
                      needs="a live probe of the Ingress's HTTP port")
    return Verdict(Status.UNVERIFIED, unknown.detail, unknown)


def _backend(ing: IngressFacts) -> Verdict:
    """The verdict on the hop from the controller to the Ingress's backends."""
    if ing.controller == "alb":
        protocol = ing.annotations.get(ALB_BACKEND, "HTTP").upper()
        if protocol == "HTTPS":
            return Verdict(Status.WARN, "the ALB reaches the pods over HTTPS but, as every ALB, "
                                        "does not verify their certificates")
        return Verdict(Status.FAIL, f"the ALB reaches the pods over plaintext {protocol}")
    if ing.controller == "nginx":
        protocol = ing.annotations.get(NGINX_BACKEND, "HTTP").upper()
        if protocol not in ("HTTPS", "GRPCS"):
            return Verdict(Status.FAIL, f"ingress-nginx reaches the pods over plaintext "
                                        f"{protocol}")
        if ing.annotations.get(NGINX_VERIFY, "off").lower() != "on":
            return Verdict(Status.FAIL, f"ingress-nginx reaches the pods over {protocol} without "
                                        "verifying their certificates (proxy-ssl-verify off)")
        return Verdict(Status.PASS, f"ingress-nginx reaches the pods over {protocol} and "
                                    "verifies their certificates")
    unknown = Unknown(UnknownReason.NOT_VISIBLE, "the backend protocol of this controller is "
                      "its own configuration, not part of the Ingress",
                      needs="a live probe of the backends")
    return Verdict(Status.UNVERIFIED, unknown.detail, unknown)


def _verdict_finding(make: FindingBuilder[Any], resource: str, verdict: Verdict, subject: str,
                     evidence: Mapping[str, EvidenceValue]) -> Finding:
    """A finding from a `Verdict`, its reason prefixed with the subject."""
    if verdict.status is Status.UNVERIFIED:
        unknown = verdict.unknown or Unknown(UnknownReason.UNPARSEABLE, verdict.reason)
        return _unverified(make, resource, unknown, subject, evidence)
    return make.make(verdict.status, resource, f"{subject}: {verdict.reason}.",
                     evidence=dict(evidence))


INGRESS_OPERATIONS = (
    _op(NEEDS_INGRESSES, "read each Ingress's rules, TLS section and annotations"),
    _op(NEEDS_INGRESS_CLASSES, "tell which controller serves each Ingress"),
)


def _judge_ingresses(make: FindingBuilder[Any], found: Fact[tuple[IngressFacts, ...]],
                     judge: Callable[[IngressFacts], Verdict], extra: Callable[
                         [IngressFacts], dict[str, EvidenceValue]]) -> list[Finding]:
    if isinstance(found, Unknown):
        return [make.unverified("ingresses", found, "the cluster's Ingresses")]
    if not found:
        return [make.passed("ingresses", "No Ingress in the namespaces in scope.",
                            evidence={"ingresses": 0})]
    return [_verdict_finding(make, ing.resource, judge(ing), f"Ingress {ing.namespace}/"
                             f"{ing.name}", {**ing.evidence(), **extra(ing)}) for ing in found]


class IngressTls(Check[Fact[tuple[IngressFacts, ...]]]):
    """
    Every Ingress serves its hosts over TLS only: each rule's host is in the TLS section and
    plaintext HTTP is redirected, not served.
    """

    meta = _meta_of(
        "kubernetes.ingress.tls", "Ingresses serve their hosts over TLS only", Severity.HIGH,
        "Reads every Ingress in the namespaces in scope and the IngressClasses that say which "
        "controller serves it. A rule whose host has no TLS entry fails. For the AWS Load "
        "Balancer Controller the listen-ports and ssl-redirect annotations decide (plaintext "
        "HTTP without a redirect fails); for ingress-nginx ssl-redirect: false fails. Other "
        "controllers' plaintext behaviour is not in the object and is UNVERIFIED. The "
        "Ingresses' hosts are listed, and probed live when the inventory sets "
        "`probe_endpoints` for the source (plaintext ones are listed only).",
        "Add a TLS entry (or an ACM certificate) for every host; for ALB Ingresses listen on "
        "HTTPS 443 and set alb.ingress.kubernetes.io/ssl-redirect: '443'; for ingress-nginx "
        "remove ssl-redirect: 'false'.",
        *INGRESS_OPERATIONS)

    def collect(self, ctx: CheckContext, target: Target) -> Fact[tuple[IngressFacts, ...]]:
        """List the Ingresses and IngressClasses."""
        return ingresses(Cluster.of(ctx, target))

    def evaluate(self, obs: Fact[tuple[IngressFacts, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per Ingress."""
        # NOTE: ingress-nginx redirects HTTP to HTTPS for hosts with TLS unless told not to;
        # the controller's own ConfigMap can turn that off for every Ingress, and is not read.
        return _judge_ingresses(self.findings(target), obs, _frontend, lambda ing: {
            "listen_ports": ing.annotations.get(ALB_LISTEN_PORTS),
            "ssl_policy": ing.annotations.get(ALB_SSL_POLICY),
            "ssl_redirect": ing.annotations.get(
                ALB_SSL_REDIRECT if ing.controller == "alb" else NGINX_SSL_REDIRECT,
                "controller default")})

    def endpoints(self, obs: Fact[tuple[IngressFacts, ...]], target: Target
                  ) -> Sequence[Endpoint]:
        """Every host of every listed Ingress; the backend check judges the same, offers none."""
        return [] if isinstance(obs, Unknown) else [
            Endpoint(host, port, target.id, ing.resource, "Ingress", ing.zone, tls)
            for ing in obs for host, port, tls in ingress_endpoints(ing)]


class IngressBackendTls(Check[Fact[tuple[IngressFacts, ...]]]):
    """
    Ingress controllers reach their backends over TLS and verify the backends' certificates.
    """

    meta = _meta_of(
        "kubernetes.ingress.backend_tls", "Ingress controllers reach backends over verified TLS",
        Severity.MEDIUM,
        "Reads the backend-protocol annotations of every Ingress in scope. A plaintext hop from "
        "the controller to the pods fails, as does ingress-nginx talking HTTPS to the backends "
        "with proxy-ssl-verify off (its default); an ALB's HTTPS hop warns, because an ALB "
        "never verifies target certificates. Other controllers are UNVERIFIED.",
        "Serve TLS from the pods and set backend-protocol: HTTPS; for ingress-nginx also set "
        "proxy-ssl-verify: 'on' with proxy-ssl-secret naming the CA that issued the backends' "
        "certificates, or carry the hop in a mesh with strict mTLS.",
        *INGRESS_OPERATIONS)

    def collect(self, ctx: CheckContext, target: Target) -> Fact[tuple[IngressFacts, ...]]:
        """List the Ingresses and IngressClasses (shared with the edge check)."""
        return ingresses(Cluster.of(ctx, target))

    def evaluate(self, obs: Fact[tuple[IngressFacts, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per Ingress."""
        return _judge_ingresses(self.findings(target), obs, _backend, lambda ing: {
            "backend_protocol": ing.annotations.get(ALB_BACKEND if ing.controller == "alb"
                                                    else NGINX_BACKEND, "HTTP"),
            "proxy_ssl_verify": ing.annotations.get(NGINX_VERIFY, "off"),
            "verify_secret": ing.verify_secret})


# --- Services of type LoadBalancer ------------------------------------------------------------

AWS_LB = "service.beta.kubernetes.io/aws-load-balancer-"
AWS_SSL_CERT = AWS_LB + "ssl-cert"
AWS_SSL_PORTS = AWS_LB + "ssl-ports"
AWS_BACKEND = AWS_LB + "backend-protocol"
AWS_NEGOTIATION = AWS_LB + "ssl-negotiation-policy"
AWS_INTERNAL = AWS_LB + "internal"
AWS_SCHEME = AWS_LB + "scheme"
_HTTP_PORT_NAMES = frozenset({"http", "http-alt", "web"})


@dataclass(frozen=True)
class ServicePort:
    """One port of a Service."""

    name: str
    port: int
    app_protocol: str | None

    @property
    def looks_http(self) -> bool:
        """Whether the port is named or numbered as plaintext HTTP."""
        return (self.name.lower() in _HTTP_PORT_NAMES or (self.app_protocol or "").lower() ==
                "http" or self.port in (80, 8080))

    @property
    def looks_postgres(self) -> bool:
        """Whether the port is numbered, named or declared (appProtocol) as PostgreSQL."""
        return self.port == 5432 or "postgres" in f"{self.name} {self.app_protocol}".lower()


@dataclass(frozen=True)
class LoadBalancerService:
    """A Service of type LoadBalancer and the AWS annotations that shape its listeners."""

    namespace: str
    name: str
    load_balancer_class: str | None
    ports: tuple[ServicePort, ...]
    certificate: bool
    ssl_ports: str | None
    backend_protocol: str | None
    negotiation_policy: str | None
    aws_annotations: bool
    hosts: tuple[str, ...]
    internal: bool = False
    """Whether the AWS annotations make the load balancer internal (scheme or `internal`)."""

    @property
    def resource(self) -> str:
        """The finding resource: `service/<namespace>/<name>`."""
        return f"service/{self.namespace}/{self.name}"

    def is_tls(self, port: ServicePort) -> bool:
        """Whether the load balancer terminates TLS on `port` (ssl-ports, `*` by default)."""
        if not self.certificate:
            return False
        wanted = {p.strip() for p in (self.ssl_ports or "*").split(",")}
        return "*" in wanted or port.name in wanted or str(port.port) in wanted


def load_balancer_services(cluster: Cluster) -> Fact[tuple[LoadBalancerService, ...]]:
    """The in-scope Services of type LoadBalancer."""
    raw = cluster.typed("services", CoreV1Api(cluster.client).list_service_for_all_namespaces,
                        NEEDS_SERVICES)
    if isinstance(raw, Unknown):
        return raw
    found = []
    for obj in raw:
        spec = obj.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or not cluster.in_scope(_namespace(obj)):
            continue
        ann = _annotations(obj)
        found.append(LoadBalancerService(
            namespace=str(_namespace(obj)), name=_name(obj),
            load_balancer_class=spec.get("loadBalancerClass"),
            ports=tuple(ServicePort(str(p.get("name") or ""), int(p.get("port") or 0),
                                    p.get("appProtocol")) for p in _items(spec.get("ports"))),
            certificate=bool(ann.get(AWS_SSL_CERT)), ssl_ports=ann.get(AWS_SSL_PORTS),
            backend_protocol=ann.get(AWS_BACKEND), negotiation_policy=ann.get(AWS_NEGOTIATION),
            aws_annotations=any(k.startswith(AWS_LB) for k in ann),
            hosts=tuple(_load_balancer_hosts(obj)),
            internal=ann.get(AWS_SCHEME, "").lower() == "internal"
            or ann.get(AWS_INTERNAL, "").lower() in ("true", "0.0.0.0/0")))
    return tuple(found)


def _service_verdict(svc: LoadBalancerService) -> Verdict:
    """The verdict on one LoadBalancer Service's listeners."""
    lb_class = svc.load_balancer_class
    if lb_class and not lb_class.startswith("service.k8s.aws/") and not svc.aws_annotations:
        unknown = Unknown(UnknownReason.NOT_SUPPORTED, f"load balancer class {lb_class} is not "
                          "AWS's; its listeners are not described by the Service")
        return Verdict(Status.UNVERIFIED, unknown.detail, unknown)
    tls = [p for p in svc.ports if svc.is_tls(p)]
    plain = [p for p in svc.ports if not svc.is_tls(p)]
    problems = [f"port {p.port} serves plaintext HTTP" for p in plain if p.looks_http]
    backend = (svc.backend_protocol or "").lower()
    if tls and backend not in ("https", "ssl"):
        problems.append(f"TLS on ports {', '.join(str(p.port) for p in tls)} is decrypted at the "
                        f"load balancer and forwarded to the pods as plaintext "
                        f"{backend or 'TCP'} (backend-protocol)")
    if problems:
        return Verdict(Status.FAIL, "; ".join(problems))
    passthrough = [str(p.port) for p in plain]
    if passthrough:
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"ports {', '.join(passthrough)} pass "
                          "through whatever the pods speak; whether it is TLS needs a live "
                          "probe", needs="a live TLS probe of the endpoints (probe_endpoints on the "
                          "cluster: the endpoints' own TLS findings then judge them)")
        return Verdict(Status.UNVERIFIED, unknown.detail, unknown)
    return Verdict(Status.PASS, "the load balancer terminates TLS on every port and re-encrypts "
                                "to the pods")


class LoadBalancerServiceTls(Check[Fact[tuple[LoadBalancerService, ...]]]):
    """
    Services of type LoadBalancer terminate TLS on every port and re-encrypt to the pods.
    """

    meta = _meta_of(
        "kubernetes.service.load_balancer_tls", "LoadBalancer Services carry TLS end to end",
        Severity.HIGH,
        "Reads every Service of type LoadBalancer in scope with its AWS annotations (ssl-cert, "
        "ssl-ports, backend-protocol, ssl-negotiation-policy). A port outside ssl-ports that "
        "serves HTTP fails, and so does TLS decrypted at the load balancer and forwarded as "
        "plaintext (backend-protocol tcp or http, or unset). Other ports pass through whatever "
        "the pods speak and are UNVERIFIED until probed. The load balancers' addresses are "
        "listed, and probed live when the inventory sets `probe_endpoints` for the source "
        "(plaintext HTTP ports are listed only); the negotiation policy is judged on the load "
        "balancer itself.",
        "Set service.beta.kubernetes.io/aws-load-balancer-ssl-cert with ssl-ports covering "
        "every port, backend-protocol ssl (or https), and an ssl-negotiation-policy such as "
        "ELBSecurityPolicy-TLS13-1-2-2021-06; serve TLS from the pods.",
        _op(NEEDS_SERVICES, "read each LoadBalancer Service's ports and annotations"))

    def collect(self, ctx: CheckContext, target: Target
                ) -> Fact[tuple[LoadBalancerService, ...]]:
        """List the Services."""
        return load_balancer_services(Cluster.of(ctx, target))

    def evaluate(self, obs: Fact[tuple[LoadBalancerService, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per LoadBalancer Service."""
        make = self.findings(target)
        if isinstance(obs, Unknown):
            return [make.unverified("services", obs, "the cluster's Services")]
        if not obs:
            return [make.passed("services", "No Service of type LoadBalancer in scope.",
                                evidence={"load_balancer_services": 0})]
        return [_verdict_finding(make, svc.resource, _service_verdict(svc),
                                 f"Service {svc.namespace}/{svc.name}", _service_evidence(svc))
                for svc in obs]

    def endpoints(self, obs: Fact[tuple[LoadBalancerService, ...]], target: Target
                  ) -> Sequence[Endpoint]:
        """Every status address of every listed LoadBalancer Service, on each of its ports."""
        return [] if isinstance(obs, Unknown) else [
            endpoint for svc in obs for endpoint in _service_endpoints(target, svc)]


def _service_endpoints(target: Target, svc: LoadBalancerService) -> list[Endpoint]:
    """
    One Service's endpoints: TLS where the load balancer terminates it or the port is not
    plaintext HTTP (the pods may speak TLS; the probe tells). A PostgreSQL port the load
    balancer passes through is probed through PostgreSQL's STARTTLS.
    """
    zone: Zone = "internal" if svc.internal else "external"
    return [Endpoint(host, port.port, target.id, svc.resource, "LoadBalancer Service", zone,
                     tls=svc.is_tls(port) or not port.looks_http,
                     starttls="postgres" if port.looks_postgres and not svc.is_tls(port)
                     else None)
            for host in svc.hosts for port in svc.ports if port.port > 0]


def _service_evidence(svc: LoadBalancerService) -> dict[str, EvidenceValue]:
    ports = tuple(f"{p.port}/{'tls' if svc.is_tls(p) else 'plain'}" for p in svc.ports)
    return {"ports": ports, "backend_protocol": svc.backend_protocol,
            "ssl_negotiation_policy": svc.negotiation_policy or "default",
            "load_balancer_class": svc.load_balancer_class,
            **endpoint_evidence(*(f"{h}:{p.port}" for h in svc.hosts for p in svc.ports))}


# --- Gateway API listeners --------------------------------------------------------------------

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSIONS = ("v1", "v1beta1")
PLAINTEXT_LISTENERS = frozenset({"HTTP", "TCP", "UDP"})
"""Listener protocols on which the Gateway itself does not carry TLS."""


@dataclass(frozen=True)
class GatewayListener:
    """One listener of a Gateway and, for HTTP, the HTTPRoutes attached to it."""

    namespace: str
    gateway: str
    name: str
    protocol: str
    port: int
    tls_mode: str | None
    routes: Fact[tuple[tuple[str, bool], ...]]
    """(route `namespace/name`, whether every rule redirects to https) per attached route."""
    endpoints: tuple[str, ...]

    @property
    def resource(self) -> str:
        """The finding resource: `gateway/<namespace>/<gateway>/<listener>`."""
        return f"gateway/{self.namespace}/{self.gateway}/{self.name}"


def _redirects_only(route: Obj) -> bool:
    """Whether every rule of an HTTPRoute redirects to the https scheme."""
    rules = _items(_dig(route, "spec", "rules")) or [{}]
    return all(any(f.get("type") == "RequestRedirect" and
                   str(_dig(f, "requestRedirect", "scheme")).lower() == "https"
                   for f in _items(rule.get("filters"))) for rule in rules)


def _attached(route: Obj, gateway: Obj, listener: Obj) -> bool:
    """Whether an HTTPRoute's parentRefs attach it to this listener of this Gateway."""
    for ref in _items(_dig(route, "spec", "parentRefs")):
        if ref.get("group", GATEWAY_GROUP) != GATEWAY_GROUP or ref.get("kind", "Gateway") != \
                "Gateway" or ref.get("name") != _name(gateway):
            continue
        if ref.get("namespace", _namespace(route)) != _namespace(gateway):
            continue
        if ref.get("sectionName") not in (None, listener.get("name")):
            continue
        if ref.get("port") not in (None, listener.get("port")):
            continue
        return True
    return False


def _gateway_listeners(gateway: Obj, routes: Fact[tuple[Obj, ...]]) -> list[GatewayListener]:
    addresses = [str(a.get("value")) for a in _items(_dig(gateway, "status", "addresses"))
                 if a.get("value")]
    found = []
    for listener in _items(_dig(gateway, "spec", "listeners")):
        attached: Fact[tuple[tuple[str, bool], ...]] = routes if isinstance(
            routes, Unknown) else tuple(
            (f"{_namespace(r)}/{_name(r)}", _redirects_only(r)) for r in routes
            if _attached(r, gateway, listener))
        port = int(listener.get("port") or 0)
        hosts = [str(listener["hostname"])] if listener.get("hostname") else addresses
        found.append(GatewayListener(
            str(_namespace(gateway)), _name(gateway), str(listener.get("name", "")),
            str(listener.get("protocol", "")).upper(), port, _dig(listener, "tls", "mode"),
            attached, tuple(f"{h}:{port}" for h in hosts)))
    return found


def gateway_listeners(cluster: Cluster) -> Fact[tuple[GatewayListener, ...]]:
    """Every listener of the in-scope Gateways, with the HTTPRoutes attached to each."""
    gateways = cluster.custom(GATEWAY_GROUP, GATEWAY_VERSIONS, "gateways", NEEDS_GATEWAYS)
    if isinstance(gateways, Unknown):
        return gateways
    routes = cluster.custom(GATEWAY_GROUP, GATEWAY_VERSIONS, "httproutes", NEEDS_HTTPROUTES)
    return tuple(listener for gateway in gateways if cluster.in_scope(_namespace(gateway))
                 for listener in _gateway_listeners(gateway, routes))


def _listener_verdict(listener: GatewayListener) -> Verdict:
    """The verdict on one Gateway listener."""
    if listener.protocol in ("HTTPS", "TLS"):
        mode = listener.tls_mode or "Terminate"
        return Verdict(Status.PASS, f"{listener.protocol} listener on port {listener.port} "
                                    f"(TLS {mode})")
    if listener.protocol in ("TCP", "UDP"):
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{listener.protocol} listener on port "
                          f"{listener.port} passes through whatever the backends speak",
                          needs="a live TLS probe of the endpoint")
        return Verdict(Status.UNVERIFIED, unknown.detail, unknown)
    if listener.protocol != "HTTP":
        unknown = Unknown(UnknownReason.UNPARSEABLE, f"protocol {listener.protocol} is not one "
                          "hipaacheck judges")
        return Verdict(Status.UNVERIFIED, unknown.detail, unknown)
    if isinstance(listener.routes, Unknown):
        return Verdict(Status.UNVERIFIED, listener.routes.detail, listener.routes)
    serving = [name for name, redirects in listener.routes if not redirects]
    if serving:
        return Verdict(Status.FAIL, f"HTTP listener on port {listener.port} serves plaintext "
                                    f"to routes {', '.join(serving)}")
    return Verdict(Status.PASS, f"HTTP listener on port {listener.port} only redirects to HTTPS"
                   if listener.routes else f"HTTP listener on port {listener.port} has no "
                   "routes attached")


class GatewayListenerTls(Check[Fact[tuple[GatewayListener, ...]]]):
    """
    Gateway API listeners serve HTTPS or TLS; an HTTP listener only redirects to HTTPS.
    """

    meta = _meta_of(
        "kubernetes.gateway.listener_tls", "Gateway API listeners serve TLS only",
        Severity.HIGH,
        "Reads every Gateway (gateway.networking.k8s.io) in scope and the HTTPRoutes attached "
        "to its listeners. An HTTP listener with a route that does not redirect to https fails; "
        "TCP and UDP listeners are UNVERIFIED until probed. Without the Gateway API CRDs the "
        "check says so (UNVERIFIED, not supported). The listeners' addresses are listed, and "
        "probed live when the inventory sets `probe_endpoints` for the source (HTTP, TCP and "
        "UDP listeners are listed only).",
        "Serve PHI on HTTPS listeners only; give HTTP listeners a single HTTPRoute whose rules "
        "use a RequestRedirect filter with scheme https.",
        _op(NEEDS_GATEWAYS, "read each Gateway's listeners"),
        _op(NEEDS_HTTPROUTES, "see which routes HTTP listeners serve"))

    def collect(self, ctx: CheckContext, target: Target) -> Fact[tuple[GatewayListener, ...]]:
        """List the Gateways and HTTPRoutes."""
        return gateway_listeners(Cluster.of(ctx, target))

    def evaluate(self, obs: Fact[tuple[GatewayListener, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per listener."""
        make = self.findings(target)
        if isinstance(obs, Unknown):
            return [make.unverified("gateways", obs, "the cluster's Gateways")]
        if not obs:
            return [make.passed("gateways", "No Gateway listener in scope.",
                                evidence={"listeners": 0})]
        return [_verdict_finding(make, listener.resource, _listener_verdict(listener),
                                 f"Gateway {listener.namespace}/{listener.gateway}",
                                 {"protocol": listener.protocol, "tls_mode": listener.tls_mode,
                                  **endpoint_evidence(*listener.endpoints)})
                for listener in obs]

    def endpoints(self, obs: Fact[tuple[GatewayListener, ...]], target: Target
                  ) -> Sequence[Endpoint]:
        """Every address of every listed listener; TLS unless it is HTTP, TCP or UDP."""
        return [] if isinstance(obs, Unknown) else [
            Endpoint(address.rpartition(":")[0], listener.port, target.id, listener.resource,
                     "Gateway listener", tls=listener.protocol not in PLAINTEXT_LISTENERS)
            for listener in obs if listener.port > 0 for address in listener.endpoints]


# --- namespaces and workloads, shared by the mesh checks ---------------------------------------

LINKERD_INJECT = "linkerd.io/inject"
LINKERD_POLICY = "config.linkerd.io/default-inbound-policy"
BYPASS_INBOUND = ("config.linkerd.io/skip-inbound-ports",
                  "traffic.sidecar.istio.io/excludeInboundPorts")
BYPASS_OUTBOUND = ("config.linkerd.io/skip-outbound-ports",
                   "traffic.sidecar.istio.io/excludeOutboundPorts",
                   "traffic.sidecar.istio.io/excludeOutboundIPRanges")
_MESH_ANNOTATIONS = (LINKERD_INJECT, LINKERD_POLICY, *BYPASS_INBOUND, *BYPASS_OUTBOUND)


@dataclass(frozen=True)
class NamespaceFacts:
    """A namespace's mesh enrolment and the mesh annotations its pods inherit."""

    name: str
    istio_injection: str | None
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class SecretRef:
    """An environment variable that a workload takes from a Secret: names only, never values."""

    variable: str
    secret: str
    key: str


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or DaemonSet: its pod template's mesh annotations and the
    names of the Secret keys its containers' environment refers to."""

    kind: str
    namespace: str
    name: str
    annotations: Mapping[str, str]
    secret_refs: tuple[SecretRef, ...]

    @property
    def resource(self) -> str:
        """The finding resource: `deployment/<namespace>/<name>` and so on."""
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


def namespaces(cluster: Cluster) -> Fact[tuple[NamespaceFacts, ...]]:
    """The namespaces in scope."""
    raw = cluster.typed("namespaces", CoreV1Api(cluster.client).list_namespace,
                        NEEDS_NAMESPACES)
    if isinstance(raw, Unknown):
        return raw
    return tuple(NamespaceFacts(
        _name(obj), _labels(obj).get("istio-injection") or _labels(obj).get("istio.io/rev"),
        {k: v for k, v in _annotations(obj).items() if k in _MESH_ANNOTATIONS})
        for obj in raw if cluster.in_scope(_name(obj)))


def _secret_refs(template: Obj) -> tuple[SecretRef, ...]:
    """The `secretKeyRef`s of a pod template's containers: variable, Secret and key names."""
    refs = []
    spec = template.get("spec") or {}
    for container in _items(spec.get("containers")) + _items(spec.get("initContainers")):
        for env in _items(container.get("env")):
            ref = _dig(env, "valueFrom", "secretKeyRef")
            if isinstance(ref, Mapping) and ref.get("name") and ref.get("key"):
                refs.append(SecretRef(str(env.get("name")), str(ref["name"]), str(ref["key"])))
    return tuple(refs)


def workloads(cluster: Cluster) -> Fact[tuple[Workload, ...]]:
    """The in-scope Deployments, StatefulSets and DaemonSets."""
    apps = AppsV1Api(cluster.client)
    found: list[Workload] = []
    for kind, list_fn, needs in (
            ("Deployment", apps.list_deployment_for_all_namespaces, NEEDS_DEPLOYMENTS),
            ("StatefulSet", apps.list_stateful_set_for_all_namespaces, NEEDS_STATEFULSETS),
            ("DaemonSet", apps.list_daemon_set_for_all_namespaces, NEEDS_DAEMONSETS)):
        raw = cluster.typed(f"apps/{kind.lower()}s", list_fn, needs)
        if isinstance(raw, Unknown):
            return raw
        for obj in raw:
            if not cluster.in_scope(_namespace(obj)):
                continue
            template = _dig(obj, "spec", "template") or {}
            found.append(Workload(kind, str(_namespace(obj)), _name(obj),
                                  {k: v for k, v in _annotations(template).items()
                                   if k in _MESH_ANNOTATIONS}, _secret_refs(template)))
    return tuple(found)


WORKLOAD_OPERATIONS = (
    _op(NEEDS_DEPLOYMENTS, "read pod templates' mesh annotations"),
    _op(NEEDS_STATEFULSETS, "read pod templates' mesh annotations"),
    _op(NEEDS_DAEMONSETS, "read pod templates' mesh annotations"),
)
NAMESPACE_OPERATION = _op(NEEDS_NAMESPACES, "read namespaces' mesh labels and annotations")


# --- Istio: PeerAuthentication and DestinationRules --------------------------------------------

WEAK_MTLS = frozenset({"PERMISSIVE", "DISABLE"})


@dataclass(frozen=True)
class PeerAuthentication:
    """One PeerAuthentication: its scope and the mTLS modes it sets."""

    namespace: str
    name: str
    workload: bool
    """Whether it selects workloads (a selector) rather than a whole namespace or the mesh."""
    mode: str
    """`STRICT`, `PERMISSIVE`, `DISABLE` or `UNSET` (inherit)."""
    port_modes: Mapping[str, str]


@dataclass(frozen=True)
class PeerAuthObservation:
    """The cluster's PeerAuthentications and the namespaces they are judged for."""

    policies: Fact[tuple[PeerAuthentication, ...]]
    namespaces: Fact[tuple[NamespaceFacts, ...]]


def _peer_authentication(obj: Obj) -> PeerAuthentication:
    spec = obj.get("spec") or {}
    selector = _dig(spec, "selector", "matchLabels")
    ports = {str(port): str(_dig(value, "mode") or "UNSET").upper()
             for port, value in (spec.get("portLevelMtls") or {}).items()}
    return PeerAuthentication(str(_namespace(obj)), _name(obj), bool(selector),
                              str(_dig(spec, "mtls", "mode") or "UNSET").upper(), ports)


def peer_authentications(cluster: Cluster) -> PeerAuthObservation:
    """Every PeerAuthentication and the namespaces in scope."""
    raw = cluster.custom("security.istio.io", ("v1", "v1beta1"), "peerauthentications",
                         NEEDS_PEER_AUTHENTICATIONS)
    policies: Fact[tuple[PeerAuthentication, ...]] = raw if isinstance(raw, Unknown) else tuple(
        _peer_authentication(obj) for obj in raw)
    return PeerAuthObservation(policies, namespaces(cluster)
                               if not isinstance(policies, Unknown) else policies)


def _effective_mode(policies: Sequence[PeerAuthentication], namespace: str
                    ) -> tuple[str, str]:
    """A namespace's mTLS mode and where it comes from: its own policy, the mesh's, or none."""
    # NOTE: Istio applies the oldest of several namespace-wide policies; creation times are
    # not kept, so the first by name stands in (several such policies are a misconfiguration).
    def policy_of(ns: str) -> PeerAuthentication | None:
        return next((p for p in sorted(policies, key=lambda p: p.name)
                     if p.namespace == ns and not p.workload), None)

    own, mesh = policy_of(namespace), policy_of(ISTIO_ROOT_NAMESPACE)
    if own and own.mode != "UNSET" and namespace != ISTIO_ROOT_NAMESPACE:
        return own.mode, f"namespace policy {own.name}"
    if mesh and mesh.mode != "UNSET":
        return mesh.mode, f"mesh-wide policy {mesh.name}"
    return "PERMISSIVE", "no PeerAuthentication (Istio's default is PERMISSIVE)"


class IstioPeerAuthentication(Check[PeerAuthObservation]):
    """
    Istio requires mutual TLS (STRICT) in every namespace in scope, and no workload policy
    weakens it.
    """

    meta = _meta_of(
        "kubernetes.istio.peer_authentication", "Istio requires mutual TLS (STRICT)",
        Severity.HIGH,
        "Reads every PeerAuthentication and the namespaces in scope. Each namespace's mode "
        "comes from its own namespace-wide policy, else the mesh-wide policy in istio-system, "
        "else Istio's default, PERMISSIVE, which accepts plaintext: anything but STRICT fails. "
        "A workload policy that sets PERMISSIVE or DISABLE, for the workload or a port, fails. "
        "Without Istio's CRDs the check says so (UNVERIFIED, not supported).",
        "Apply a mesh-wide PeerAuthentication in istio-system with mtls.mode: STRICT, remove "
        "namespace and workload policies that weaken it, and enrol every PHI namespace in the "
        "mesh.",
        _op(NEEDS_PEER_AUTHENTICATIONS, "read mTLS modes"), NAMESPACE_OPERATION)

    def collect(self, ctx: CheckContext, target: Target) -> PeerAuthObservation:
        """List PeerAuthentications and namespaces."""
        return peer_authentications(Cluster.of(ctx, target))

    def evaluate(self, obs: PeerAuthObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per namespace in scope and per workload-level policy."""
        make = self.findings(target)
        if isinstance(obs.policies, Unknown):
            return [make.unverified("istio:peerauthentications", obs.policies,
                                    "Istio's PeerAuthentications")]
        if isinstance(obs.namespaces, Unknown):
            return [make.unverified("namespaces", obs.namespaces, "the cluster's namespaces")]
        scoped = {ns.name for ns in obs.namespaces}
        findings = [_judge_namespace_mtls(make, obs.policies, ns) for ns in obs.namespaces
                    if ns.name != ISTIO_ROOT_NAMESPACE]
        findings += [_judge_workload_mtls(make, p) for p in obs.policies
                     if p.workload and p.namespace in scoped]
        return findings or [make.passed("namespaces", "No namespace in scope.",
                                        evidence={"namespaces": 0})]


def _judge_namespace_mtls(make: FindingBuilder[Any], policies: Sequence[PeerAuthentication],
                          ns: NamespaceFacts) -> Finding:
    mode, source = _effective_mode(policies, ns.name)
    evidence: dict[str, EvidenceValue] = {"mode": mode, "source": source,
                                          "istio_injection": ns.istio_injection}
    resource = f"namespace/{ns.name}"
    if mode == "STRICT":
        return make.passed(resource, f"Namespace {ns.name} requires mutual TLS ({source}).",
                           evidence=evidence)
    return make.failed(resource, f"Namespace {ns.name} accepts plaintext between workloads: mTLS "
                       f"mode {mode} from {source}.", evidence=evidence)


def _judge_workload_mtls(make: FindingBuilder[Any], policy: PeerAuthentication) -> Finding:
    weak = ([f"mode {policy.mode}"] if policy.mode in WEAK_MTLS else []) + [
        f"port {port} {mode}" for port, mode in sorted(policy.port_modes.items())
        if mode in WEAK_MTLS]
    resource = f"peerauthentication/{policy.namespace}/{policy.name}"
    evidence: dict[str, EvidenceValue] = {"mode": policy.mode, "port_modes": tuple(
        f"{p}={m}" for p, m in sorted(policy.port_modes.items()))}
    if weak:
        return make.failed(resource, f"Workload policy {policy.namespace}/{policy.name} weakens "
                           f"mutual TLS: {', '.join(weak)}.", evidence=evidence)
    return make.passed(resource, f"Workload policy {policy.namespace}/{policy.name} keeps mutual "
                       "TLS.", evidence=evidence)


@dataclass(frozen=True)
class DestinationRuleFacts:
    """One DestinationRule: its host and what its TLS settings do wrong."""

    namespace: str
    name: str
    host: str
    tls_settings: int
    """How many TLS settings it has (traffic policy, per port, per subset)."""
    problems: tuple[str, ...]

    @property
    def resource(self) -> str:
        """The finding resource: `destinationrule/<namespace>/<name>`."""
        return f"destinationrule/{self.namespace}/{self.name}"


def _tls_settings(spec: Obj) -> list[tuple[str, Obj]]:
    """Every TLS setting of a DestinationRule, named by where it sits."""
    found: list[tuple[str, Obj]] = []

    def policy(where: str, traffic: Any) -> None:
        if isinstance(_dig(traffic, "tls"), Mapping):
            found.append((where, traffic["tls"]))
        for port in _items(_dig(traffic, "portLevelSettings")):
            if isinstance(port.get("tls"), Mapping):
                found.append((f"{where} port {_dig(port, 'port', 'number')}", port["tls"]))

    policy("traffic policy", spec.get("trafficPolicy"))
    for subset in _items(spec.get("subsets")):
        policy(f"subset {subset.get('name')}", subset.get("trafficPolicy"))
    return found


def destination_rule_facts(obj: Obj) -> DestinationRuleFacts:
    """The facts of one serialised DestinationRule."""
    spec = obj.get("spec") or {}
    settings = _tls_settings(spec)
    problems = []
    for where, tls in settings:
        if str(tls.get("mode", "")).upper() == "DISABLE":
            problems.append(f"{where}: TLS mode DISABLE sends plaintext")
        if tls.get("insecureSkipVerify") is True:
            problems.append(f"{where}: insecureSkipVerify skips certificate verification")
    return DestinationRuleFacts(str(_namespace(obj)), _name(obj), str(spec.get("host", "")),
                                len(settings), tuple(problems))


def destination_rules(cluster: Cluster) -> Fact[tuple[DestinationRuleFacts, ...]]:
    """The in-scope DestinationRules."""
    raw = cluster.custom("networking.istio.io", ("v1", "v1beta1", "v1alpha3"),
                         "destinationrules", NEEDS_DESTINATION_RULES)
    if isinstance(raw, Unknown):
        return raw
    return tuple(destination_rule_facts(obj) for obj in raw
                 if cluster.in_scope(_namespace(obj)))


class IstioDestinationRuleTls(Check[Fact[tuple[DestinationRuleFacts, ...]]]):
    """
    No Istio DestinationRule turns TLS off (mode DISABLE) or skips certificate verification.
    """

    meta = _meta_of(
        "kubernetes.istio.destination_rule_tls", "Istio DestinationRules keep verified TLS",
        Severity.HIGH,
        "Reads every DestinationRule in scope: its traffic policy, per-port settings and "
        "subsets. TLS mode DISABLE (plaintext to the destination) and insecureSkipVerify: true "
        "(a certificate that is not checked) each fail. Rules without TLS settings inherit the "
        "mesh's and are counted, not judged. Without Istio's CRDs the check says so "
        "(UNVERIFIED, not supported).",
        "Use tls.mode ISTIO_MUTUAL inside the mesh, or SIMPLE or MUTUAL with caCertificates "
        "(or credentialName) and subjectAltNames for external destinations; remove "
        "insecureSkipVerify.",
        _op(NEEDS_DESTINATION_RULES, "read DestinationRules' TLS settings"))

    def collect(self, ctx: CheckContext, target: Target
                ) -> Fact[tuple[DestinationRuleFacts, ...]]:
        """List the DestinationRules."""
        return destination_rules(Cluster.of(ctx, target))

    def evaluate(self, obs: Fact[tuple[DestinationRuleFacts, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per DestinationRule with TLS settings; one PASS when none has any."""
        make = self.findings(target)
        if isinstance(obs, Unknown):
            return [make.unverified("istio:destinationrules", obs, "Istio's DestinationRules")]
        judged = [rule for rule in obs if rule.tls_settings]
        findings = [_judge_rule(make, rule) for rule in judged]
        return findings or [make.passed("istio:destinationrules", "No DestinationRule in scope "
                                        "sets TLS; every one inherits the mesh's.",
                                        evidence={"destination_rules": len(obs)})]


def _judge_rule(make: FindingBuilder[Any], rule: DestinationRuleFacts) -> Finding:
    evidence: dict[str, EvidenceValue] = {"host": rule.host, "tls_settings": rule.tls_settings,
                                          **endpoint_evidence(rule.host, probe=RULE_HOST_NOTE)}
    subject = f"DestinationRule {rule.namespace}/{rule.name}"
    if rule.problems:
        return make.failed(rule.resource, f"{subject}: {'; '.join(rule.problems)}.",
                           evidence=evidence)
    return make.passed(rule.resource, f"{subject} keeps TLS on and verified.", evidence=evidence)


RULE_HOST_NOTE = "listed, not probed: a DestinationRule names a host, not a port"
"""The `probe` evidence of DestinationRule findings, whose hosts are not offered for probing."""


# --- Linkerd: the default inbound policy -------------------------------------------------------

UNAUTHENTICATED_POLICIES = frozenset({"all-unauthenticated", "cluster-unauthenticated", "audit"})
AUTHENTICATED_POLICIES = frozenset({"all-authenticated", "cluster-authenticated", "deny"})
LINKERD_DEFAULT_POLICY = "all-unauthenticated"
"""Linkerd's documented default when its configuration names none."""


@dataclass(frozen=True)
class LinkerdObservation:
    """Whether Linkerd's policy CRDs are served, its cluster default, namespaces and workloads."""

    servers: Fact[int]
    """How many `Server` resources exist; `Unknown` (not supported) when the CRD is missing."""
    cluster_default: Fact[tuple[str, str]]
    """(the cluster-wide default inbound policy, where it was read)."""
    namespaces: Fact[tuple[NamespaceFacts, ...]]
    workloads: Fact[tuple[Workload, ...]]


def _linkerd_config(cluster: Cluster) -> Fact[tuple[str, str]]:
    """The cluster default inbound policy from the `linkerd-config` ConfigMap's values."""
    def read() -> Any:
        return CoreV1Api(cluster.client).read_namespaced_config_map(
            LINKERD_CONFIG, LINKERD_NAMESPACE, _request_timeout=cluster.ctx.timeout)

    try:
        config = cluster.once("linkerd-config", read)
    except ApiException as exc:
        if exc.status == 404:
            return Unknown(UnknownReason.NOT_VISIBLE, f"ConfigMap {LINKERD_NAMESPACE}/"
                           f"{LINKERD_CONFIG} was not found")
        return classify_api_error(exc, NEEDS_GET_CONFIGMAPS)
    except API_ERRORS as exc:
        return classify_api_error(exc, NEEDS_GET_CONFIGMAPS)
    try:
        values = yaml.safe_load((config.data or {}).get("values") or "") or {}
    except yaml.YAMLError:
        return Unknown(UnknownReason.UNPARSEABLE, f"{LINKERD_CONFIG}'s values are not YAML")
    policy = _dig(values, "proxy", "defaultInboundPolicy") or _dig(
        values, "policyController", "defaultAllowPolicy")
    if policy:
        return str(policy), f"{LINKERD_CONFIG} values"
    return LINKERD_DEFAULT_POLICY, "Linkerd's default"


def linkerd(cluster: Cluster) -> LinkerdObservation:
    """Linkerd's Servers (to see that it is installed), its configuration and the workloads."""
    servers = cluster.custom("policy.linkerd.io", ("v1beta3", "v1beta2", "v1beta1"), "servers",
                             NEEDS_LINKERD_SERVERS)
    if isinstance(servers, Unknown):
        return LinkerdObservation(servers, servers, servers, servers)
    return LinkerdObservation(len(servers), _linkerd_config(cluster), namespaces(cluster),
                              workloads(cluster))


def _meshed(annotations: Mapping[str, str], inherited: bool) -> bool:
    value = annotations.get(LINKERD_INJECT)
    return value == "enabled" or (inherited and value != "disabled")


def _judged_apart(workload: Workload, namespace_meshed: bool) -> bool:
    """Whether a workload needs a finding of its own: meshed, and either overriding the default
    policy or meshed by itself in a namespace that is not."""
    if not _meshed(workload.annotations, namespace_meshed):
        return False
    return LINKERD_POLICY in workload.annotations or not namespace_meshed


class LinkerdDefaultPolicy(Check[LinkerdObservation]):
    """
    Linkerd's default inbound policy for meshed workloads requires authenticated (mTLS)
    clients.
    """

    meta = _meta_of(
        "kubernetes.linkerd.default_policy", "Linkerd admits only authenticated (mTLS) clients",
        Severity.HIGH,
        "Reads Linkerd's cluster-wide default inbound policy (the linkerd-config ConfigMap), "
        "and the default-inbound-policy annotations of namespaces and workloads meshed with "
        "linkerd.io/inject. all-unauthenticated (Linkerd's default), cluster-unauthenticated "
        "and audit admit plaintext clients from outside the mesh and fail. Without Linkerd's "
        "policy CRDs the check says so (UNVERIFIED, not supported).",
        "Set proxy.defaultInboundPolicy to all-authenticated (or deny, with Server and "
        "AuthorizationPolicy resources for each port), or annotate each PHI namespace with "
        "config.linkerd.io/default-inbound-policy: all-authenticated.",
        _op(NEEDS_LINKERD_SERVERS, "see that Linkerd's policy CRDs are installed"),
        _op(NEEDS_GET_CONFIGMAPS, "read the linkerd-config ConfigMap in the linkerd namespace"),
        NAMESPACE_OPERATION, *WORKLOAD_OPERATIONS)

    def collect(self, ctx: CheckContext, target: Target) -> LinkerdObservation:
        """Read Linkerd's CRDs, configuration, namespaces and workloads."""
        return linkerd(Cluster.of(ctx, target))

    def evaluate(self, obs: LinkerdObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per meshed namespace and per workload that overrides the default."""
        make = self.findings(target)
        if isinstance(obs.servers, Unknown):
            return [make.unverified("linkerd", obs.servers, "Linkerd's policy resources")]
        for fact, what in ((obs.namespaces, "the cluster's namespaces"),
                           (obs.workloads, "the cluster's workloads")):
            if isinstance(fact, Unknown):
                return [make.unverified("linkerd", fact, what)]
        assert not isinstance(obs.namespaces, Unknown) and not isinstance(obs.workloads, Unknown)
        meshed_ns = {ns.name: ns for ns in obs.namespaces if _meshed(ns.annotations, False)}
        annotated = {ns.name: ns.annotations.get(LINKERD_POLICY) for ns in obs.namespaces}
        findings = [_judge_linkerd_policy(make, f"namespace/{name}", f"Namespace {name}",
                                          annotated[name], obs, "namespace")
                    for name in sorted(meshed_ns)]
        findings += [_judge_linkerd_policy(
            make, w.resource, f"{w.kind} {w.namespace}/{w.name}",
            w.annotations.get(LINKERD_POLICY) or annotated.get(w.namespace), obs,
            "workload" if LINKERD_POLICY in w.annotations else "namespace")
            for w in obs.workloads if _judged_apart(w, w.namespace in meshed_ns)]
        return findings or [make.passed("linkerd", "No namespace in scope is meshed by Linkerd.",
                                        evidence={"meshed_namespaces": 0,
                                                  "servers": obs.servers})]


def _judge_linkerd_policy(make: FindingBuilder[Any], resource: str, subject: str,
                          annotated: str | None, obs: LinkerdObservation, level: str
                          ) -> Finding:
    evidence: dict[str, EvidenceValue] = {"servers": obs.servers if isinstance(
        obs.servers, int) else None}
    if annotated:
        value, source = annotated, f"{level} annotation"
    elif isinstance(obs.cluster_default, Unknown):
        return _unverified(make, resource, obs.cluster_default,
                           f"the default inbound policy of {subject}", evidence)
    else:
        value, source = obs.cluster_default
    evidence.update(default_inbound_policy=value, source=source)
    if value in UNAUTHENTICATED_POLICIES:
        return make.failed(resource, f"{subject} admits clients without mTLS identity: default "
                           f"inbound policy {value} ({source}).", evidence=evidence)
    if value in AUTHENTICATED_POLICIES:
        return make.passed(resource, f"{subject} admits only authenticated clients by default "
                           f"({value}, {source}).", evidence=evidence)
    return _unverified(make, resource, Unknown(UnknownReason.UNPARSEABLE, f"default inbound "
                       f"policy {value!r} is not one hipaacheck knows"), subject, evidence)


# --- sidecar bypass annotations ----------------------------------------------------------------

@dataclass(frozen=True)
class BypassObservation:
    """The namespaces and workloads whose mesh annotations may send traffic round the proxy."""

    namespaces: Fact[tuple[NamespaceFacts, ...]]
    workloads: Fact[tuple[Workload, ...]]


def _bypass(annotations: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The inbound and outbound bypass settings an annotation set makes, as `key=value`."""
    inbound = [f"{k}={annotations[k]}" for k in BYPASS_INBOUND if annotations.get(k)]
    outbound = [f"{k}={annotations[k]}" for k in BYPASS_OUTBOUND if annotations.get(k)]
    return inbound, outbound


class MeshBypassPorts(Check[BypassObservation]):
    """
    No meshed workload sends PHI round its mesh proxy: no skipped or excluded ports.
    """

    meta = _meta_of(
        "kubernetes.mesh.bypass_ports", "Workloads do not bypass the mesh proxy",
        Severity.MEDIUM,
        "Reads the Linkerd skip-inbound-ports and skip-outbound-ports annotations (on "
        "namespaces and pod templates) and Istio's excludeInboundPorts, excludeOutboundPorts "
        "and excludeOutboundIPRanges (on pod templates). Inbound ports that skip the proxy "
        "accept connections without mTLS or policy and fail; outbound exclusions leave the "
        "workload's own TLS to protect those connections, which the control plane cannot show: "
        "UNVERIFIED until probed.",
        "Remove the skip and exclude annotations; where a port must bypass the proxy (a "
        "database protocol the mesh cannot carry), make the workload speak verified TLS on it "
        "and record the exception.",
        NAMESPACE_OPERATION, *WORKLOAD_OPERATIONS)

    def collect(self, ctx: CheckContext, target: Target) -> BypassObservation:
        """List namespaces and workloads."""
        cluster = Cluster.of(ctx, target)
        return BypassObservation(namespaces(cluster), workloads(cluster))

    def evaluate(self, obs: BypassObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per namespace and workload with a bypass annotation."""
        make = self.findings(target)
        if isinstance(obs.namespaces, Unknown):
            return [make.unverified("namespaces", obs.namespaces, "the cluster's namespaces")]
        if isinstance(obs.workloads, Unknown):
            return [make.unverified("workloads", obs.workloads, "the cluster's workloads")]
        subjects = [(f"namespace/{ns.name}", f"Namespace {ns.name}", ns.annotations)
                    for ns in obs.namespaces]
        subjects += [(w.resource, f"{w.kind} {w.namespace}/{w.name}", w.annotations)
                     for w in obs.workloads]
        findings = [f for resource, subject, annotations in subjects
                    for f in _judge_bypass(make, resource, subject, annotations)]
        return findings or [make.passed("workloads", "No namespace or workload in scope bypasses "
                                        "the mesh proxy.",
                                        evidence={"workloads": len(obs.workloads)})]


def _judge_bypass(make: FindingBuilder[Any], resource: str, subject: str,
                  annotations: Mapping[str, str]) -> list[Finding]:
    inbound, outbound = _bypass(annotations)
    evidence: dict[str, EvidenceValue] = {"inbound_bypass": tuple(inbound),
                                          "outbound_bypass": tuple(outbound)}
    if inbound:
        return [make.failed(resource, f"{subject} accepts connections round its mesh proxy, "
                            f"without mTLS: {'; '.join(inbound)}.", evidence=evidence)]
    if outbound:
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{subject} sends traffic round its mesh "
                          f"proxy ({'; '.join(outbound)}); whether the workload's own TLS "
                          "protects it needs a live probe", needs="a live TLS probe of the "
                          "destinations")
        return [_unverified(make, resource, unknown, "", evidence)]
    return []


# --- libpq sslmode in ConfigMaps, and Secret keys named like it --------------------------------

_SSLMODE_KEY = re.compile(r"SSL_?MODE$", re.IGNORECASE)
_URL = re.compile(r"\b(?:jdbc:)?postgres(?:ql)?://[^\s'\"]+", re.IGNORECASE)
_KEYWORDS = re.compile(r"\b(?:host|hostaddr|dbname|user|port|sslmode)\s*=", re.IGNORECASE)
_CONNECTION_NAME = re.compile(r"SSL_?MODE|DATABASE_URL|DB_URL|(?:PG|POSTGRES)\w*(?:URL|DSN)|_DSN$",
                              re.IGNORECASE)
_SHOWN_MODE = 16
"""An sslmode longer than any libpq value is cut, never echoed whole."""


@dataclass(frozen=True)
class LibpqSetting:
    """
    One libpq client setting found in a ConfigMap, or named by a Secret reference.

    Only the sslmode and whether a root certificate is named are kept; a connection string
    itself (which can hold a password) never leaves the collect step.
    """

    resource: str
    namespace: str
    source: str
    """`ConfigMap name`, or `Secret name` for a setting held in a Secret."""
    key: str
    form: Literal["url", "keywords", "variable", "secret"]
    sslmode: Fact[str | None]
    root_cert: bool = False


def _companion_root_cert(data: Mapping[str, str], key: str) -> bool:
    """Whether a `..._SSLMODE` key has a `..._SSLROOTCERT` sibling in the same ConfigMap."""
    stem = re.sub(r"SSL_?MODE$", "", key, flags=re.IGNORECASE)
    return any(re.fullmatch(re.escape(stem) + r"SSL_?ROOT_?CERT", other, re.IGNORECASE)
               for other in data)


def _url_settings(value: str) -> list[tuple[str | None, bool]]:
    """(sslmode, whether a root certificate is named) of each URL in a value."""
    found: list[tuple[str | None, bool]] = []
    for match in _URL.finditer(value):
        query = parse_qs(urlsplit(match.group(0).removeprefix("jdbc:")).query)
        modes = query.get("sslmode") or []
        found.append((modes[0] if modes else None, bool(query.get("sslrootcert"))))
    return found


def _keyword_settings(value: str) -> Fact[tuple[str | None, bool]]:
    try:
        params = conninfo_to_dict(value)
    except psycopg.Error:
        return Unknown(UnknownReason.UNPARSEABLE, "a libpq keyword string could not be parsed")
    mode = params.get("sslmode")
    return (None if mode is None else str(mode)), bool(params.get("sslrootcert"))


def configmap_settings(obj: Obj) -> list[LibpqSetting]:
    """The libpq settings of one ConfigMap: sslmode keys, URLs and keyword strings."""
    namespace, name = str(_namespace(obj)), _name(obj)
    data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    # libpq reads PGSSLMODE and PGSSLROOTCERT from the environment for a URL that names none.
    fallback = next((v.strip() for k, v in data.items() if k.upper() == "PGSSLMODE"), None)
    fallback_root = any(k.upper() == "PGSSLROOTCERT" for k in data)
    found = []
    for key, value in sorted(data.items()):
        resource = f"configmap/{namespace}/{name}/{key}"
        source = f"ConfigMap {name}"
        if _SSLMODE_KEY.search(key):
            found.append(LibpqSetting(resource, namespace, source, key, "variable",
                                      value.strip(), _companion_root_cert(data, key)))
        elif _URL.search(value):
            for mode, root in _url_settings(value):
                found.append(LibpqSetting(resource, namespace, source, key, "url",
                                          mode or fallback, root or fallback_root))
        elif len(_KEYWORDS.findall(value)) >= 2:
            parsed = _keyword_settings(value)
            found.append(LibpqSetting(resource, namespace, source, key, "keywords", parsed)
                         if isinstance(parsed, Unknown) else LibpqSetting(
                resource, namespace, source, key, "keywords", parsed[0] or fallback,
                parsed[1] or fallback_root))
    return found


def _secret_settings(workloads_: Iterable[Workload]) -> list[LibpqSetting]:
    """Connection settings the workloads take from Secrets: named, never read."""
    found: dict[str, LibpqSetting] = {}
    for workload in workloads_:
        for ref in workload.secret_refs:
            if _CONNECTION_NAME.search(ref.variable) or _CONNECTION_NAME.search(ref.key):
                resource = f"secret/{workload.namespace}/{ref.secret}/{ref.key}"
                unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{ref.variable} of "
                                  f"{workload.kind} {workload.name} comes from Secret "
                                  f"{ref.secret} (key {ref.key}), whose values hipaacheck does "
                                  "not read", needs="the sslmode in a ConfigMap or in the "
                                  "inventory")
                found.setdefault(resource, LibpqSetting(resource, workload.namespace,
                                                        f"Secret {ref.secret}", ref.key,
                                                        "secret", unknown))
    return list(found.values())


@dataclass(frozen=True)
class SslmodeObservation:
    """The libpq settings found in ConfigMaps and Secret references, and what was searched."""

    settings: Fact[tuple[LibpqSetting, ...]]
    configmaps: int
    secret_refs: Fact[tuple[LibpqSetting, ...]]


def sslmode_settings(cluster: Cluster) -> SslmodeObservation:
    """The libpq settings of the in-scope ConfigMaps and the Secret keys workloads use."""
    raw = cluster.typed("configmaps", CoreV1Api(cluster.client).list_config_map_for_all_namespaces,
                        NEEDS_CONFIGMAPS)
    found = workloads(cluster)
    secret_refs: Fact[tuple[LibpqSetting, ...]] = found if isinstance(found, Unknown) else tuple(
        _secret_settings(found))
    if isinstance(raw, Unknown):
        return SslmodeObservation(raw, 0, secret_refs)
    scoped = [obj for obj in raw if cluster.in_scope(_namespace(obj))]
    return SslmodeObservation(tuple(s for obj in scoped for s in configmap_settings(obj)),
                              len(scoped), secret_refs)


class ConfigMapSslmode(Check[SslmodeObservation]):
    """
    libpq clients configured in ConfigMaps verify the server: sslmode=verify-full.
    """

    meta = _meta_of(
        "kubernetes.configmap.libpq_sslmode", "Database clients in ConfigMaps verify the server",
        Severity.HIGH,
        "Reads the ConfigMaps in scope for libpq settings: keys named like PGSSLMODE, "
        "postgres:// and jdbc:postgresql:// URLs, and keyword connection strings. disable, "
        "allow and prefer fail, as does require without a root certificate; verify-ca warns; "
        "verify-full passes; no sslmode at all is UNVERIFIED (libpq's default, prefer, applies "
        "unless the environment says otherwise). Connection settings that workloads take from "
        "Secrets are named by Secret and key and are UNVERIFIED: Secret values are never read.",
        "Set sslmode=verify-full with sslrootcert naming the server's CA in every connection "
        "string (or PGSSLMODE=verify-full and PGSSLROOTCERT), and keep it in a ConfigMap where "
        "it can be audited.",
        _op(NEEDS_CONFIGMAPS, "read ConfigMaps' libpq settings"), *WORKLOAD_OPERATIONS)

    def collect(self, ctx: CheckContext, target: Target) -> SslmodeObservation:
        """List ConfigMaps and workloads."""
        return sslmode_settings(Cluster.of(ctx, target))

    def evaluate(self, obs: SslmodeObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per libpq setting found; one PASS when none was."""
        make = self.findings(target)
        findings: list[Finding] = []
        for fact, resource, what in ((obs.settings, "configmaps", "the cluster's ConfigMaps"),
                                     (obs.secret_refs, "workloads", "the cluster's workloads")):
            if isinstance(fact, Unknown):
                findings.append(make.unverified(resource, fact, what))
            else:
                findings += [_judge_setting(make, setting) for setting in fact]
        return findings or [make.passed("configmaps", f"No libpq connection setting in the "
                                        f"{obs.configmaps} ConfigMaps in scope.",
                                        evidence={"configmaps": obs.configmaps})]


def _judge_setting(make: FindingBuilder[Any], setting: LibpqSetting) -> Finding:
    mode = setting.sslmode
    evidence: dict[str, EvidenceValue] = {
        "source": setting.source, "key": setting.key, "form": setting.form,
        "sslmode": mode[:_SHOWN_MODE] if isinstance(mode, str) else None,
        "root_certificate": setting.root_cert}
    subject = f"{setting.source} key {setting.key} in {setting.namespace}"
    if isinstance(mode, Unknown):
        return _unverified(make, setting.resource, mode, f"the sslmode of {subject}", evidence)
    status, reason = judge_sslmode(mode, setting.root_cert)
    if status is Status.UNVERIFIED:
        return _unverified(make, setting.resource, Unknown(UnknownReason.NOT_VISIBLE, reason),
                           f"the sslmode of {subject}", evidence)
    return make.make(status, setting.resource, f"{subject}: {reason}.", evidence=evidence)


CHECKS: tuple[type[Check[Any]], ...] = (
    IngressTls, IngressBackendTls, LoadBalancerServiceTls, GatewayListenerTls,
    IstioPeerAuthentication, IstioDestinationRuleTls, LinkerdDefaultPolicy, MeshBypassPorts,
    ConfigMapSslmode)
"""Every check of this module."""
