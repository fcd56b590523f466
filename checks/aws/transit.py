"""
Transmission security of AWS endpoints, judged from the control plane: load balancer listeners
and target groups, CloudFront, API Gateway custom domains, RDS and Aurora transport settings,
ElastiCache transit encryption and OpenSearch endpoints.

Every check here reads configuration only, through the account's read-only session, and memoises
each listing under its own keys (`("aws.transit", account, ...)`) so the checks share one read per
scan. Load balancer security policies are resolved through the API (`DescribeSSLPolicies` for
ELBv2, the load balancer's own policies for classic ELB) rather than a list kept here. The
"setting must equal X" controls (API Gateway, CloudFront viewer settings, RDS parameters,
ElastiCache, OpenSearch) are rows of tables (`Setting`), read and judged by the same two
functions.

These checks never connect to an endpoint. Findings list the endpoints they discovered
(`endpoints`, with `probe` saying how they are treated), and the checks offer the same endpoints
to the scan (`Check.endpoints`): load balancer listeners, CloudFront domains and origins, API
Gateway domains, database, cache and search endpoints. The TLS checks probe them live in a second
phase, only for accounts whose inventory entry sets `probe_endpoints`. A listing that fails
becomes one UNVERIFIED finding for its region naming the IAM action, never "there are none",
and offers no endpoint.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.aws import AwsSession, classify_error, error_code, paginate
from hipaacheck.config import AwsAccountConfig
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

CITATIONS = ("164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)")
PROBE_NOTE = "listed; probed only where the inventory sets probe_endpoints"
"""The `probe` evidence of every finding here: the endpoints are discovered, never connected to
by these checks, and offered to the TLS checks' live phase."""
REGIONS_RESOURCE = "aws:regions"
ALL_REGIONS = frozenset({"all", "*"})
GLOBAL_REGION = "us-east-1"
"""Where the global services (CloudFront) and the region list are read."""
WEAK_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
"""Protocol versions whose acceptance fails a control (NIST SP 800-52 Rev. 2)."""

DESCRIBE_REGIONS = "ec2:DescribeRegions"
ELB_LOAD_BALANCERS = "elasticloadbalancing:DescribeLoadBalancers"
ELB_LISTENERS = "elasticloadbalancing:DescribeListeners"
ELB_RULES = "elasticloadbalancing:DescribeRules"
ELB_SSL_POLICIES = "elasticloadbalancing:DescribeSSLPolicies"
ELB_TARGET_GROUPS = "elasticloadbalancing:DescribeTargetGroups"
ELB_LB_POLICIES = "elasticloadbalancing:DescribeLoadBalancerPolicies"
CLOUDFRONT_DISTRIBUTIONS = "cloudfront:ListDistributions"
APIGATEWAY_GET = "apigateway:GET"
"""API Gateway's management API is authorised by HTTP verb: reading domain names is `GET`."""
RDS_INSTANCES = "rds:DescribeDBInstances"
RDS_CLUSTERS = "rds:DescribeDBClusters"
RDS_PARAMETERS = "rds:DescribeDBParameters"
RDS_CLUSTER_PARAMETERS = "rds:DescribeDBClusterParameters"
RDS_PARAMETER_GROUPS = "rds:DescribeDBParameterGroups"
RDS_CLUSTER_PARAMETER_GROUPS = "rds:DescribeDBClusterParameterGroups"
RDS_ENGINE_DEFAULTS = "rds:DescribeEngineDefaultParameters"
RDS_ENGINE_CLUSTER_DEFAULTS = "rds:DescribeEngineDefaultClusterParameters"
ELASTICACHE_GROUPS = "elasticache:DescribeReplicationGroups"
ELASTICACHE_CLUSTERS = "elasticache:DescribeCacheClusters"
OPENSEARCH_NAMES = "es:ListDomainNames"
OPENSEARCH_DOMAINS = "es:DescribeDomains"

REGIONS_OPERATION = Operation(System.AWS, DESCRIBE_REGIONS,
                              "expand `regions: [all]` into the account's enabled regions")


# --- the account handle, regions and memoised reads ------------------------------------------

@dataclass(frozen=True)
class Account:
    """One check's handle on one AWS account: the context, the account and its session."""

    ctx: CheckContext
    config: AwsAccountConfig
    session: AwsSession

    @classmethod
    def of(cls, ctx: CheckContext, target: Target) -> Account:
        """The handle for an AWS target; the session is shared with every other check."""
        if not isinstance(target.config, AwsAccountConfig):
            raise TypeError(f"target {target.id} carries no AWS account configuration")
        return cls(ctx, target.config, ctx.clients.aws(target.config))

    def once(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """`compute()` once per scan and account under this module's own memo keys."""
        return self.ctx.memo.get(("aws.transit", self.config.name, *key), compute)

    def call(self, service: str, region: str, method: str, action: str, *,
             absent: Mapping[str, Unknown] | None = None, **params: Any) -> Fact[Any]:
        """One read: the response, or the `Unknown` its failure stands for."""
        try:
            return getattr(self.session.client(service, region), method)(**params)
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return _unknown_of(exc, action, absent)

    def listing(self, service: str, region: str, method: str, result_key: str, action: str, *,
                absent: Mapping[str, Unknown] | None = None, **params: Any
                ) -> Fact[tuple[Any, ...]]:
        """Every item of a (paginated) listing, or the `Unknown` of its first failure."""
        try:
            client = self.session.client(service, region)
            return tuple(paginate(client, method, result_key, **params))
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return _unknown_of(exc, action, absent)

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """`fn` over `items` on the session's bounded pool, in order."""
        return self.session.map(fn, items)


def _unknown_of(exc: Exception, action: str, absent: Mapping[str, Unknown] | None) -> Unknown:
    """The `Unknown` for a failed read; error codes in `absent` mean "not there"."""
    code = error_code(exc)
    if absent and code is not None and code in absent:
        return absent[code]
    return classify_error(exc, action)


def scan_regions(account: Account) -> Fact[tuple[str, ...]]:
    """The configured regions, with `all` expanded through `ec2:DescribeRegions`."""
    configured = tuple(dict.fromkeys(r for r in account.config.regions if r not in ALL_REGIONS))
    if len(configured) == len(account.config.regions):
        return configured

    def compute() -> Fact[tuple[str, ...]]:
        home = configured[0] if configured else GLOBAL_REGION
        enabled = account.listing("ec2", home, "describe_regions", "Regions", DESCRIBE_REGIONS)
        if isinstance(enabled, Unknown):
            return enabled
        names = sorted(str(r["RegionName"]) for r in enabled if r.get("RegionName"))
        return tuple(dict.fromkeys(configured + tuple(names)))

    return account.once(("regions",), compute)


def _dig(raw: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at `path` in nested mappings, or None."""
    node: Any = raw
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _text(value: Any) -> str | None:
    """A scalar setting as text (booleans as `true`/`false`); None when absent or not scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return None


# --- the shape every regional observation shares ---------------------------------------------

@dataclass(frozen=True)
class RegionFacts(Generic[T]):
    """One region's resources of one kind, or the `Unknown` of their listing."""

    region: str
    items: Fact[tuple[T, ...]]


@dataclass(frozen=True)
class Regional(Generic[T]):
    """Every scanned region; `unknown_regions` when the region list itself could not be read."""

    regions: tuple[RegionFacts[T], ...]
    unknown_regions: Unknown | None = None


def collect_regional(account: Account, per_region: Callable[[str], Fact[tuple[T, ...]]]
                     ) -> Regional[T]:
    """`per_region` over the scanned regions."""
    regions = scan_regions(account)
    if isinstance(regions, Unknown):
        return Regional((), regions)
    return Regional(tuple(RegionFacts(r, per_region(r)) for r in regions))


def judge_regional(make: FindingBuilder[Any], obs: Regional[T], prefix: str, what: str,
                   judge: Callable[[T], list[Finding]], none_judged: str = "") -> list[Finding]:
    """
    The findings of a regional observation: `judge` per resource, one UNVERIFIED finding per
    region that could not be listed, one PASS per region whose listing was empty (or, with
    `none_judged`, whose resources held nothing this check judges).
    """
    if obs.unknown_regions:
        return [make.unverified(REGIONS_RESOURCE, obs.unknown_regions, "the account's regions")]
    findings: list[Finding] = []
    for region in obs.regions:
        resource = f"{prefix}:{region.region}"
        if isinstance(region.items, Unknown):
            findings.append(make.unverified(resource, region.items,
                                            f"the {what} in {region.region}"))
            continue
        judged = [finding for item in region.items for finding in judge(item)]
        if not region.items:
            judged = [make.passed(resource, f"No {what} in {region.region}.",
                                  evidence={"region": region.region, "count": 0})]
        elif not judged and none_judged:
            judged = [make.passed(resource, f"No {none_judged} among the {len(region.items)} "
                                            f"{what} in {region.region}.",
                                  evidence={"region": region.region, "count": len(region.items)})]
        findings += judged
    return findings


class RegionalCheck(Check[Regional[T]]):
    """
    Base of the checks that judge one memoised listing per scanned region: subclasses say
    which listing (`read`); the regions are expanded, and each read shared, here.
    """

    @abstractmethod
    def read(self, account: Account, region: str) -> Fact[tuple[T, ...]]:
        """The region's items this check judges (memoised, so checks share one read)."""

    def collect(self, ctx: CheckContext, target: Target) -> Regional[T]:
        """`read` over every scanned region of the account."""
        account = Account.of(ctx, target)
        return collect_regional(account, lambda region: self.read(account, region))


def endpoint_evidence(*endpoints: str) -> dict[str, EvidenceValue]:
    """The discovered-endpoints part of a finding's evidence: listed, and offered for probing."""
    return {"endpoints": tuple(e for e in endpoints if e), "probe": PROBE_NOTE}


def offer(target: Target, address: str, origin: str, via: str, *, zone: Zone = "external",
          tls: bool = True, starttls: Literal["postgres"] | None = None,
          unprobeable: str | None = None) -> list[Endpoint]:
    """
    The endpoint at `address` (`host:port`, as evidence lists it) found in `target` for live
    probing; none when the address names no port.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return []
    return [Endpoint(host.strip("[]"), int(port), target.id, origin, via, zone, tls, starttls,
                     unprobeable)]


def listed(obs: Regional[T]) -> list[T]:
    """The resources of every region whose listing succeeded: an unknown listing offers none."""
    return [item for region in obs.regions if not isinstance(region.items, Unknown)
            for item in region.items]


def says(values: Mapping[str, Observed], key: str, value: str) -> bool:
    """Whether a setting was observed to be `value`; an unknown or absent one says nothing."""
    seen = values.get(key)
    return seen is not None and isinstance(seen.value, str) and seen.value.lower() == value


def protocol_problem(protocols: Sequence[str]) -> tuple[Status, str]:
    """
    The verdict on a set of accepted protocol versions: FAIL with any below TLS 1.2, WARN for
    TLS 1.2 without 1.3, PASS with TLS 1.3 and nothing weaker than 1.2.
    """
    weak = [p for p in WEAK_PROTOCOLS if p in protocols]
    if weak:
        return Status.FAIL, f"accepts {', '.join(weak)}"
    if "TLSv1.3" in protocols:
        return Status.PASS, "accepts TLS 1.2 and 1.3 only" if "TLSv1.2" in protocols \
            else "accepts TLS 1.3 only"
    if "TLSv1.2" in protocols:
        return Status.WARN, "accepts TLS 1.2 but not TLS 1.3"
    return Status.UNVERIFIED, "names no protocol version hipaacheck recognises"


# --- "setting must equal X": the table machinery ---------------------------------------------

Verdict = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Setting:
    """
    One "setting must equal X" control: where a resource reports the setting, the values that
    pass, warn or fail, and the value AWS documents for a resource that omits the field.

    Values are compared as text (booleans as `true`/`false`), case-insensitively. A value in no
    set, like a policy name newer than this table, is not guessed at: it is UNVERIFIED.
    """

    key: str
    """The evidence key, e.g. `enforce_https`."""
    label: str
    """The setting as the API names it, for reasons."""
    path: tuple[str, ...]
    passing: frozenset[str]
    failing: frozenset[str] = frozenset()
    warning: frozenset[str] = frozenset()
    passing_prefixes: tuple[str, ...] = ()
    """Value prefixes that pass, for families of policy names (`Policy-Min-TLS-1-2-`)."""
    default: str | None = None
    """AWS's documented value when the field is absent; None means absent is unknown."""
    only_if: tuple[str, frozenset[str]] | None = None
    """(another setting's key, its values) under which this one applies at all."""
    problem: str = ""
    """What a failing value means, e.g. `plaintext connections are accepted`."""
    protocol_list: bool = False
    """The value is a comma-separated list of protocol versions (`TLSv1.2,TLSv1.3`)."""

    def verdict(self, value: str) -> Verdict | None:
        """`pass`, `warn` or `fail` for an observed value; None when it is not recognised."""
        if self.protocol_list:
            return _protocol_list_verdict(value)
        folded = value.lower()
        if folded in {v.lower() for v in self.failing}:
            return "fail"
        if folded in {v.lower() for v in self.warning}:
            return "warn"
        if folded in {v.lower() for v in self.passing} or folded.startswith(
                tuple(p.lower() for p in self.passing_prefixes)):
            return "pass"
        return None


def _protocol_list_verdict(value: str) -> Verdict | None:
    """FAIL when a list of protocol versions names one below TLS 1.2, PASS when it names
    TLS 1.2 or 1.3 only; None for an empty list or an unknown name."""
    named = [part.strip() for part in value.split(",") if part.strip()]
    if any(p in WEAK_PROTOCOLS for p in named):
        return "fail"
    if named and all(p in ("TLSv1.2", "TLSv1.3") for p in named):
        return "pass"
    return None


def settings(*rows: Setting) -> tuple[Setting, ...]:
    """A settings table; refuses duplicate keys and conditions on unknown keys."""
    keys = [row.key for row in rows]
    if len(keys) != len(set(keys)):
        raise ValueError("a settings table repeats a key")
    for row in rows:
        if row.only_if and row.only_if[0] not in keys:
            raise ValueError(f"setting {row.key} depends on an unknown key")
    return rows


@dataclass(frozen=True)
class Observed:
    """One setting's value, and where it came from when the resource itself did not say."""

    value: Fact[str]
    source: str = ""
    """Empty when the resource reported the value; else e.g. `AWS default (not reported)`."""


def read_settings(raw: Mapping[str, Any], table: Sequence[Setting], operation: str
                  ) -> dict[str, Observed]:
    """Each setting of `table` read from a raw API resource."""
    observed: dict[str, Observed] = {}
    for row in table:
        value = _text(_dig(raw, row.path))
        if value is not None:
            observed[row.key] = Observed(value)
        elif row.default is not None:
            observed[row.key] = Observed(row.default, "AWS default (not reported)")
        else:
            observed[row.key] = Observed(Unknown(
                UnknownReason.UNPARSEABLE, f"{operation} did not report {row.label}"))
    return observed


@dataclass(frozen=True)
class Judged:
    """The combined verdict of a settings table on one resource."""

    status: Status
    reason: str
    evidence: dict[str, EvidenceValue]
    unknown: Unknown | None = None


def judge_settings(values: Mapping[str, Observed], table: Sequence[Setting]) -> Judged:
    """
    One verdict for one resource: FAIL when any setting fails, else UNVERIFIED when any could
    not be read or is not recognised, else WARN when any warns, else PASS.
    """
    failures: list[str] = []
    warnings: list[str] = []
    evidence: dict[str, EvidenceValue] = {}
    unknown: Unknown | None = None
    for row in table:
        if row.only_if and not _condition_holds(values, row.only_if):
            continue
        seen = values.get(row.key, Observed(Unknown(UnknownReason.UNPARSEABLE,
                                                    f"{row.label} was not read")))
        if isinstance(seen.value, Unknown):
            unknown = unknown or seen.value
            evidence[row.key] = None
            continue
        evidence[row.key] = seen.value
        if seen.source:
            evidence[f"{row.key}_source"] = seen.source
        verdict = row.verdict(seen.value)
        if verdict is None:
            unknown = unknown or Unknown(UnknownReason.UNPARSEABLE,
                                         f"{row.label} is {seen.value!r}, a value hipaacheck "
                                         "does not recognise")
        elif verdict == "fail":
            failures.append(f"{row.label} is {seen.value}" + (f" ({row.problem})"
                                                               if row.problem else ""))
        elif verdict == "warn":
            warnings.append(f"{row.label} is {seen.value}")
    return _combine(failures, warnings, unknown, evidence)


def _condition_holds(values: Mapping[str, Observed], condition: tuple[str, frozenset[str]]
                     ) -> bool:
    """Whether the setting a row depends on has one of the values it applies under."""
    other = values.get(condition[0])
    # An unknown condition applies the row, so the unknown is reported rather than skipped.
    if other is None or isinstance(other.value, Unknown):
        return True
    return other.value.lower() in {v.lower() for v in condition[1]}


def _combine(failures: list[str], warnings: list[str], unknown: Unknown | None,
             evidence: dict[str, EvidenceValue]) -> Judged:
    if failures:
        return Judged(Status.FAIL, "; ".join(failures) + ".", evidence)
    if unknown:
        return Judged(Status.UNVERIFIED, unknown.detail, evidence, unknown)
    if warnings:
        return Judged(Status.WARN, "; ".join(warnings) + ".", evidence)
    return Judged(Status.PASS, "Every transport setting holds.", evidence)


def settings_finding(make: FindingBuilder[Any], resource: str, judged: Judged,
                     evidence: Mapping[str, EvidenceValue], subject: str) -> Finding:
    """The finding for a judged settings table, `subject` naming the resource in reasons."""
    merged = {**evidence, **judged.evidence}
    if judged.status is Status.UNVERIFIED and judged.unknown is not None:
        finding = make.unverified(resource, judged.unknown, f"the transport settings of {subject}")
        return replace(finding, evidence=merged)
    reason = (f"{subject}: {judged.reason}" if judged.status is not Status.PASS
              else f"{subject}: {judged.reason[0].lower()}{judged.reason[1:]}")
    return make.make(judged.status, resource, reason, evidence=merged)


def _meta(id_: str, title: str, severity: Severity, description: str, remediation: str,
          *operations: Operation) -> CheckMeta:
    """The metadata every check of this module shares: family, standard and citations."""
    return CheckMeta(
        id=id_, title=title, family=Family.TRANSMISSION, standard=Standard.TRANSMISSION,
        citations=CITATIONS, severity=severity, target_kind=TargetKind.AWS,
        description=description, remediation=remediation, operations=operations)


# --- load balancers: listeners, security policies and target groups --------------------------

TLS_LISTENER_PROTOCOLS = frozenset({"HTTPS", "TLS", "SSL"})
"""Listener protocols on which the load balancer terminates TLS (SSL is classic ELB's name)."""
PASSTHROUGH_PROTOCOLS = frozenset({"TCP", "UDP", "TCP_UDP"})
"""Listener and target protocols that carry whatever the client sends, TLS or not."""
_CLASSIC_PROTOCOL_PREFIX = "Protocol-"
_NOT_FOUND = {
    "SSLPolicyNotFound": Unknown(UnknownReason.NOT_VISIBLE, "the security policy was not found"),
    "PolicyNotFound": Unknown(UnknownReason.NOT_VISIBLE, "the security policy was not found"),
    "LoadBalancerNotFound": Unknown(UnknownReason.NOT_VISIBLE,
                                    "the load balancer or its policy was not found"),
    "ListenerNotFound": Unknown(UnknownReason.NOT_VISIBLE, "the listener was not found"),
}
"""Error codes that mean a resource vanished or a name did not resolve, not denied access."""


@dataclass(frozen=True)
class ElbListener:
    """
    One load balancer listener, its security policy resolved to the protocol versions it
    accepts, and where it sends traffic.
    """

    resource: str
    """The listener ARN, or `classic/<load balancer>:<port>` for a classic load balancer."""
    load_balancer: str
    kind: str
    """`application`, `network`, `gateway` or `classic`."""
    scheme: str
    endpoint: str
    """`dns-name:port`, the endpoint clients reach."""
    protocol: str
    policy: str | None = None
    protocols: Fact[tuple[str, ...]] | None = None
    """Protocol versions the policy accepts; None when the listener does not terminate TLS."""
    redirects_to_https: Fact[bool] | None = None
    """For an ELBv2 HTTP listener: whether its default action and every rule redirect to HTTPS."""
    target_groups: tuple[str, ...] = ()
    """ARNs of the target groups its default actions forward to."""
    backend: str | None = None
    """Classic load balancers: the instance protocol and port, `HTTP:80`."""

    @property
    def terminates_tls(self) -> bool:
        """Whether the load balancer terminates TLS on this listener."""
        return self.protocol in TLS_LISTENER_PROTOCOLS

    def evidence(self) -> dict[str, EvidenceValue]:
        """The facts every listener finding shows."""
        return {"load_balancer": self.load_balancer, "type": self.kind, "scheme": self.scheme,
                "protocol": self.protocol, **endpoint_evidence(self.endpoint)}


@dataclass(frozen=True)
class LoadBalancer:
    """One load balancer and its listeners (or the `Unknown` of their listing)."""

    resource: str
    name: str
    kind: str
    listeners: Fact[tuple[ElbListener, ...]]


def _terminal_action(actions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The action that ends a listener's or rule's action list (authentication comes first)."""
    ordered = sorted(actions, key=lambda a: int(a.get("Order") or 0))
    return ordered[-1] if ordered else None


def _redirects_to_https(actions: Sequence[Mapping[str, Any]]) -> bool:
    """Whether an action list ends in a redirect whose protocol is HTTPS."""
    action = _terminal_action(actions)
    return bool(action and action.get("Type") == "redirect"
                and str(_dig(action, ("RedirectConfig", "Protocol")) or "").upper() == "HTTPS")


def _forwarded_groups(actions: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The target group ARNs a list of actions forwards to."""
    arns: list[str] = []
    for action in actions:
        if action.get("TargetGroupArn"):
            arns.append(str(action["TargetGroupArn"]))
        for group in _dig(action, ("ForwardConfig", "TargetGroups")) or ():
            if isinstance(group, Mapping) and group.get("TargetGroupArn"):
                arns.append(str(group["TargetGroupArn"]))
    return tuple(dict.fromkeys(arns))


def ssl_policy_protocols(account: Account, region: str, name: str) -> Fact[tuple[str, ...]]:
    """The protocol versions an ELBv2 security policy accepts, from `DescribeSSLPolicies`."""
    def compute() -> Fact[tuple[str, ...]]:
        answer = account.call("elbv2", region, "describe_ssl_policies", ELB_SSL_POLICIES,
                              absent=_NOT_FOUND, Names=[name])
        if isinstance(answer, Unknown):
            return answer
        for policy in answer.get("SslPolicies") or ():
            if policy.get("Name") == name and isinstance(policy.get("SslProtocols"), list):
                return tuple(str(p) for p in policy["SslProtocols"])
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"DescribeSSLPolicies did not describe the policy {name}")

    return account.once(("elbv2.ssl_policy", region, name), compute)


def _redirect_rules(account: Account, region: str, listener_arn: str) -> Fact[bool]:
    """Whether every non-default rule of an HTTP listener also redirects to HTTPS."""
    rules = account.listing("elbv2", region, "describe_rules", "Rules", ELB_RULES,
                            absent=_NOT_FOUND, ListenerArn=listener_arn)
    if isinstance(rules, Unknown):
        return rules
    return all(_redirects_to_https(rule.get("Actions") or ())
               for rule in rules if not rule.get("IsDefault"))


def _v2_listener(account: Account, region: str, lb: Mapping[str, Any],
                 raw: Mapping[str, Any]) -> ElbListener:
    protocol = str(raw.get("Protocol", ""))
    actions = raw.get("DefaultActions") or ()
    listener = ElbListener(
        resource=str(raw.get("ListenerArn", "")), load_balancer=str(lb.get("LoadBalancerName")),
        kind=str(lb.get("Type", "application")), scheme=str(lb.get("Scheme", "")),
        endpoint=f"{lb.get('DNSName', '')}:{raw.get('Port', '')}", protocol=protocol,
        target_groups=_forwarded_groups(actions))
    if listener.terminates_tls:
        policy = raw.get("SslPolicy")
        protocols: Fact[tuple[str, ...]] = (
            ssl_policy_protocols(account, region, str(policy)) if policy else
            Unknown(UnknownReason.UNPARSEABLE, "DescribeListeners reported no SslPolicy"))
        return replace(listener, policy=policy, protocols=protocols)
    if protocol == "HTTP":
        redirect: Fact[bool] = _redirects_to_https(actions)
        if redirect is True:
            redirect = _redirect_rules(account, region, listener.resource)
        return replace(listener, redirects_to_https=redirect)
    return listener


def _v2_load_balancer(account: Account, region: str, lb: Mapping[str, Any]) -> LoadBalancer:
    arn = str(lb.get("LoadBalancerArn", ""))
    raw = account.listing("elbv2", region, "describe_listeners", "Listeners", ELB_LISTENERS,
                          absent=_NOT_FOUND, LoadBalancerArn=arn)
    listeners: Fact[tuple[ElbListener, ...]] = raw if isinstance(raw, Unknown) else tuple(
        _v2_listener(account, region, lb, item) for item in raw)
    return LoadBalancer(arn, str(lb.get("LoadBalancerName", "")), str(lb.get("Type", "")),
                        listeners)


def _classic_attributes(policy: Mapping[str, Any]) -> dict[str, str]:
    return {str(a.get("AttributeName")): str(a.get("AttributeValue"))
            for a in policy.get("PolicyAttributeDescriptions") or ()}


def _protocols_of_attributes(attributes: Mapping[str, str]) -> tuple[str, ...] | None:
    """The protocols a classic policy enables, or None when it lists no protocol attributes."""
    named = {k[len(_CLASSIC_PROTOCOL_PREFIX):]: v for k, v in attributes.items()
             if k.startswith(_CLASSIC_PROTOCOL_PREFIX)}
    if not named:
        return None
    return tuple(sorted(p for p, v in named.items() if v.lower() == "true"))


def _predefined_classic_policy(account: Account, region: str, name: str
                               ) -> Fact[tuple[str, ...]]:
    """The protocols of a predefined classic ELB security policy, read from the API."""
    def compute() -> Fact[tuple[str, ...]]:
        answer = account.call("elb", region, "describe_load_balancer_policies", ELB_LB_POLICIES,
                              absent=_NOT_FOUND, PolicyNames=[name])
        if isinstance(answer, Unknown):
            return answer
        for policy in answer.get("PolicyDescriptions") or ():
            protocols = _protocols_of_attributes(_classic_attributes(policy))
            if policy.get("PolicyName") == name and protocols is not None:
                return protocols
        return Unknown(UnknownReason.NOT_VISIBLE,
                       f"the predefined policy {name} did not list its protocols")

    return account.once(("elb.predefined_policy", region, name), compute)


def _classic_protocols(account: Account, region: str, policies: Fact[Mapping[str, Any]],
                       names: Sequence[str]) -> tuple[str | None, Fact[tuple[str, ...]]]:
    """The SSL negotiation policy of a classic listener and the protocols it accepts."""
    if isinstance(policies, Unknown):
        return None, policies
    for name in names:
        policy = policies.get(name)
        if not policy or policy.get("PolicyTypeName") != "SSLNegotiationPolicyType":
            continue
        attributes = _classic_attributes(policy)
        protocols = _protocols_of_attributes(attributes)
        if protocols is not None:
            return name, protocols
        reference = attributes.get("Reference-Security-Policy")
        if reference:
            return reference, _predefined_classic_policy(account, region, reference)
        return name, Unknown(UnknownReason.UNPARSEABLE,
                             f"the policy {name} names neither protocols nor a reference policy")
    return None, Unknown(UnknownReason.NOT_VISIBLE,
                         "no SSL negotiation policy is attached to the listener")


def _classic_load_balancer(account: Account, region: str, lb: Mapping[str, Any]) -> LoadBalancer:
    name = str(lb.get("LoadBalancerName", ""))
    descriptions = lb.get("ListenerDescriptions") or ()
    policies: Fact[Mapping[str, Any]] = {}
    if any(str(_dig(d, ("Listener", "Protocol")) or "").upper() in TLS_LISTENER_PROTOCOLS
           for d in descriptions):
        answer = account.call("elb", region, "describe_load_balancer_policies", ELB_LB_POLICIES,
                              absent=_NOT_FOUND, LoadBalancerName=name)
        policies = answer if isinstance(answer, Unknown) else {
            str(p.get("PolicyName")): p for p in answer.get("PolicyDescriptions") or ()}
    listeners = []
    for description in descriptions:
        raw = description.get("Listener") or {}
        protocol = str(raw.get("Protocol", "")).upper()
        port = raw.get("LoadBalancerPort", "")
        listener = ElbListener(
            resource=f"classic/{name}:{port}", load_balancer=name, kind="classic",
            scheme=str(lb.get("Scheme", "")), endpoint=f"{lb.get('DNSName', '')}:{port}",
            protocol=protocol,
            backend=f"{str(raw.get('InstanceProtocol', '')).upper()}:{raw.get('InstancePort')}")
        if listener.terminates_tls:
            policy, protocols = _classic_protocols(account, region, policies,
                                                   description.get("PolicyNames") or ())
            listener = replace(listener, policy=policy, protocols=protocols)
        listeners.append(listener)
    return LoadBalancer(f"classic/{name}", name, "classic", tuple(listeners))


def load_balancers(account: Account, region: str) -> Fact[tuple[LoadBalancer, ...]]:
    """Every ELBv2 and classic load balancer of a region with its listeners, once per scan."""
    def compute() -> Fact[tuple[LoadBalancer, ...]]:
        v2 = account.listing("elbv2", region, "describe_load_balancers", "LoadBalancers",
                             ELB_LOAD_BALANCERS)
        classic = account.listing("elb", region, "describe_load_balancers",
                                  "LoadBalancerDescriptions", ELB_LOAD_BALANCERS)
        if isinstance(v2, Unknown):
            return v2
        if isinstance(classic, Unknown):
            return classic
        found = account.map(lambda lb: _v2_load_balancer(account, region, lb), v2)
        found += account.map(lambda lb: _classic_load_balancer(account, region, lb), classic)
        return tuple(found)

    return account.once(("elb.load_balancers", region), compute)


def _listener_unverified(make: FindingBuilder[Any], lb: LoadBalancer) -> list[Finding] | None:
    """The UNVERIFIED finding of a load balancer whose listeners could not be listed."""
    if isinstance(lb.listeners, Unknown):
        return [make.unverified(lb.resource, lb.listeners,
                                f"the listeners of load balancer {lb.name}")]
    return None


ELB_OPERATIONS = (
    Operation(System.AWS, ELB_LOAD_BALANCERS, "list ELBv2 and classic load balancers"),
    Operation(System.AWS, ELB_LISTENERS, "list each ELBv2 load balancer's listeners"),
    Operation(System.AWS, ELB_RULES, "read the rules of HTTP listeners that redirect"),
    Operation(System.AWS, ELB_SSL_POLICIES, "resolve each ELBv2 security policy's protocols"),
    Operation(System.AWS, ELB_LB_POLICIES, "resolve each classic listener's SSL policy"),
    REGIONS_OPERATION,
)


class ElbTlsPolicy(RegionalCheck[LoadBalancer]):
    """
    Every load balancer listener that terminates TLS uses a security policy that refuses
    TLS 1.0 and 1.1.
    """

    meta = _meta(
        "aws.elb.tls_policy", "Load balancer TLS listeners refuse TLS 1.0 and 1.1",
        Severity.HIGH,
        "Reads every HTTPS and TLS listener of the Application and Network Load Balancers and "
        "every HTTPS and SSL listener of the classic load balancers in each scanned region, and "
        "resolves its security policy through the API (DescribeSSLPolicies, or the classic "
        "load balancer's own policies) to the protocol versions it accepts. A policy that "
        "accepts SSL 3.0, TLS 1.0 or TLS 1.1 fails; one without TLS 1.3 warns. The endpoints "
        "of every listener, TLS or not, are listed, and probed live when the inventory sets "
        "`probe_endpoints` for the source (plaintext ones are listed only).",
        "Attach a policy that accepts TLS 1.2 and 1.3 only, e.g. "
        "ELBSecurityPolicy-TLS13-1-2-2021-06 (modify-listener --ssl-policy). Classic load "
        "balancers cannot offer TLS 1.3: migrate them to an Application or Network Load "
        "Balancer.",
        *ELB_OPERATIONS)

    def read(self, account: Account, region: str) -> Fact[tuple[LoadBalancer, ...]]:
        """List each region's load balancers and listeners, resolving their policies."""
        return load_balancers(account, region)

    def evaluate(self, obs: Regional[LoadBalancer], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per TLS listener; a region without any gets one PASS."""
        make = self.findings(target)

        def judge(lb: LoadBalancer) -> list[Finding]:
            unknown = _listener_unverified(make, lb)
            if unknown is not None:
                return unknown
            assert not isinstance(lb.listeners, Unknown)
            return [_judge_policy(make, listener) for listener in lb.listeners
                    if listener.terminates_tls]

        return judge_regional(make, obs, "elb", "load balancers", judge, "TLS listeners")

    def endpoints(self, obs: Regional[LoadBalancer], target: Target) -> Sequence[Endpoint]:
        """Every listener of every listed load balancer; this check alone offers them."""
        return [endpoint for lb in listed(obs) if not isinstance(lb.listeners, Unknown)
                for listener in lb.listeners for endpoint in _listener_endpoint(target, listener)]


def _listener_endpoint(target: Target, listener: ElbListener) -> list[Endpoint]:
    """
    One listener's endpoint: TLS where the load balancer terminates it, or where a TCP
    listener on 443 passes the clients' TLS through to the targets.
    """
    # NOTE: a TCP listener may forward only to TCP (or TCP_UDP) target groups, so the target
    # group's protocol never says TLS here; port 443 is the configuration's one sign of it.
    passthrough = listener.protocol in ("TCP", "TCP_UDP") and \
        listener.endpoint.endswith(":443")
    return offer(target, listener.endpoint, listener.resource,
                 "classic ELB listener" if listener.kind == "classic" else "ELBv2 listener",
                 zone="internal" if listener.scheme == "internal" else "external",
                 tls=listener.terminates_tls or passthrough)


def _judge_policy(make: FindingBuilder[Any], listener: ElbListener) -> Finding:
    """The finding for one TLS listener's security policy."""
    evidence = {**listener.evidence(), "ssl_policy": listener.policy}
    protocols = listener.protocols
    if isinstance(protocols, Unknown) or protocols is None:
        unknown = protocols or Unknown(UnknownReason.UNPARSEABLE, "no policy was resolved")
        return replace(make.unverified(listener.resource, unknown,
                                       f"the security policy of {listener.endpoint}"),
                       evidence=evidence)
    evidence["protocols"] = protocols
    status, what = protocol_problem(protocols)
    reason = f"Listener {listener.endpoint} ({listener.policy or 'no policy'}) {what}."
    if status is Status.UNVERIFIED:
        return replace(make.unverified(listener.resource, Unknown(
            UnknownReason.UNPARSEABLE, reason), "the listener's protocols"), evidence=evidence)
    return make.make(status, listener.resource, reason, evidence=evidence)


class ElbPlaintextListeners(RegionalCheck[LoadBalancer]):
    """
    No load balancer listener serves plaintext HTTP: every HTTP listener redirects to HTTPS.
    """

    meta = _meta(
        "aws.elb.plaintext_listeners", "Load balancer HTTP listeners redirect to HTTPS",
        Severity.HIGH,
        "Reads every listener that does not terminate TLS. An ELBv2 HTTP listener passes only "
        "when its default action and every rule redirect to HTTPS; a classic HTTP listener "
        "always forwards plaintext and fails. TCP and UDP listeners pass through whatever the "
        "client sends, which the control plane cannot show: they are UNVERIFIED until probed. "
        "The listeners' endpoints are listed, and offered for live probing by "
        "aws.elb.tls_policy when the inventory sets `probe_endpoints` for the source.",
        "Replace the HTTP listener's default action (and any forwarding rule) with a redirect "
        "to HTTPS on port 443 (HTTP_301), or remove the listener; put TCP services behind a "
        "TLS listener or make sure the service itself speaks TLS.",
        *ELB_OPERATIONS)

    def read(self, account: Account, region: str) -> Fact[tuple[LoadBalancer, ...]]:
        """List each region's load balancers and listeners (shared with the policy check)."""
        return load_balancers(account, region)

    def evaluate(self, obs: Regional[LoadBalancer], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per listener that does not terminate TLS."""
        make = self.findings(target)

        def judge(lb: LoadBalancer) -> list[Finding]:
            unknown = _listener_unverified(make, lb)
            if unknown is not None:
                return unknown
            assert not isinstance(lb.listeners, Unknown)
            return [f for listener in lb.listeners if not listener.terminates_tls
                    for f in _judge_plaintext(make, listener)]

        return judge_regional(make, obs, "elb", "load balancers", judge, "plaintext listeners")


def _judge_plaintext(make: FindingBuilder[Any], listener: ElbListener) -> list[Finding]:
    """The finding for one listener that does not terminate TLS (none for GENEVE)."""
    evidence = listener.evidence()
    where = listener.endpoint
    if listener.protocol == "GENEVE":
        return []
    if listener.protocol in PASSTHROUGH_PROTOCOLS:
        unknown = Unknown(UnknownReason.NOT_VISIBLE,
                          f"{listener.protocol} listener {where} passes through whatever the "
                          "client sends; whether it is TLS needs a live probe",
                          needs="a live TLS probe of the endpoint (probe_endpoints on the "
                          "account: the endpoint's own TLS findings then judge it)")
        return [replace(make.unverified(listener.resource, unknown), evidence=evidence)]
    if listener.kind == "classic":
        return [make.failed(listener.resource, f"Classic HTTP listener {where} forwards plaintext "
                            "HTTP; classic load balancers cannot redirect.", evidence=evidence)]
    redirect = listener.redirects_to_https
    if isinstance(redirect, Unknown) or redirect is None:
        unknown = redirect or Unknown(UnknownReason.UNPARSEABLE, "the actions were not read")
        return [replace(make.unverified(listener.resource, unknown,
                                        f"the actions of {where}"), evidence=evidence)]
    evidence["redirects_to_https"] = redirect
    if redirect:
        return [make.passed(listener.resource, f"HTTP listener {where} only redirects to HTTPS.",
                            evidence=evidence)]
    return [make.failed(listener.resource, f"HTTP listener {where} serves plaintext HTTP instead "
                        "of redirecting every request to HTTPS.", evidence=evidence)]


@dataclass(frozen=True)
class TargetHop:
    """
    The hop from a load balancer to its targets: an ELBv2 target group, or a classic load
    balancer listener's instance protocol.
    """

    resource: str
    name: str
    protocol: str
    """`HTTP`, `HTTPS`, `TCP`, `TLS`, ...; empty for Lambda targets."""
    target_type: str
    terminated_by: tuple[str, ...]
    """Endpoints of TLS-terminating listeners that forward to this hop."""
    load_balancers: tuple[str, ...] = ()


def _hops(groups: Sequence[Mapping[str, Any]], lbs: Sequence[LoadBalancer]
          ) -> Fact[tuple[TargetHop, ...]]:
    """Target groups and classic backends, each with the TLS listeners that feed it."""
    feeding: dict[str, list[str]] = {}
    hops: list[TargetHop] = []
    for lb in lbs:
        if isinstance(lb.listeners, Unknown):
            return lb.listeners
        for listener in lb.listeners:
            if listener.terminates_tls:
                for arn in listener.target_groups:
                    feeding.setdefault(arn, []).append(listener.endpoint)
            if listener.kind == "classic" and listener.backend:
                hops.append(TargetHop(
                    f"{listener.resource}/backend", listener.load_balancer,
                    listener.backend.split(":")[0], "instance",
                    (listener.endpoint,) if listener.terminates_tls else (),
                    (listener.load_balancer,)))
    for group in groups:
        arn = str(group.get("TargetGroupArn", ""))
        hops.append(TargetHop(
            arn, str(group.get("TargetGroupName", "")), str(group.get("Protocol") or ""),
            str(group.get("TargetType", "")), tuple(feeding.get(arn, ())),
            tuple(str(a).rsplit("/", 2)[-2] for a in group.get("LoadBalancerArns") or ())))
    return tuple(hops)


def target_hops(account: Account, region: str) -> Fact[tuple[TargetHop, ...]]:
    """A region's load-balancer-to-target hops, once per scan."""
    def compute() -> Fact[tuple[TargetHop, ...]]:
        groups = account.listing("elbv2", region, "describe_target_groups", "TargetGroups",
                                 ELB_TARGET_GROUPS)
        if isinstance(groups, Unknown):
            return groups
        lbs = load_balancers(account, region)
        return lbs if isinstance(lbs, Unknown) else _hops(groups, lbs)

    return account.once(("elb.target_hops", region), compute)


class ElbTargetProtocol(RegionalCheck[TargetHop]):
    """
    Load balancers reach their targets over TLS: no target group (or classic backend) uses HTTP.
    """

    meta = _meta(
        "aws.elb.target_protocol", "Load balancers reach their targets over TLS",
        Severity.MEDIUM,
        "Reads every ELBv2 target group and every classic load balancer's instance protocol. "
        "HTTP to the targets fails: the hop inside the VPC carries PHI in plaintext, and the "
        "rule holds internal traffic to the same standard as the edge. A TCP or UDP hop fed by "
        "a TLS-terminating listener fails too (the load balancer decrypts and forwards "
        "plaintext); one fed only by pass-through listeners is UNVERIFIED until probed.",
        "Create HTTPS (or TLS) target groups, make the targets serve TLS, and point the "
        "listeners at them; for classic load balancers set the instance protocol to HTTPS or "
        "SSL.",
        Operation(System.AWS, ELB_TARGET_GROUPS, "list target groups and their protocols"),
        *ELB_OPERATIONS)

    def read(self, account: Account, region: str) -> Fact[tuple[TargetHop, ...]]:
        """List each region's target groups and the listeners that feed them."""
        return target_hops(account, region)

    def evaluate(self, obs: Regional[TargetHop], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per target group and classic backend."""
        make = self.findings(target)
        return judge_regional(make, obs, "elb-targets", "target groups",
                              lambda hop: _judge_hop(make, hop), "target groups with a protocol")


def _judge_hop(make: FindingBuilder[Any], hop: TargetHop) -> list[Finding]:
    """The finding for one hop to targets; none for Lambda and GENEVE targets."""
    protocol = hop.protocol.upper()
    if not protocol or protocol == "GENEVE" or hop.target_type == "lambda":
        return []
    evidence: dict[str, EvidenceValue] = {
        "target_group": hop.name, "protocol": protocol, "target_type": hop.target_type,
        "load_balancers": hop.load_balancers, "fed_by_tls_listeners": hop.terminated_by}
    if protocol in ("HTTPS", "TLS", "SSL"):
        return [make.passed(hop.resource, f"{hop.name} reaches its targets over {protocol}.",
                            evidence=evidence)]
    if protocol == "HTTP":
        return [make.failed(hop.resource, f"{hop.name} sends traffic to its targets as "
                            "plaintext HTTP.", evidence=evidence)]
    if hop.terminated_by:
        return [make.failed(hop.resource, f"{hop.name} receives traffic decrypted by a TLS "
                            f"listener and forwards it to its targets as plaintext {protocol}.",
                            evidence=evidence)]
    unknown = Unknown(UnknownReason.NOT_VISIBLE,
                      f"{hop.name} passes {protocol} through; whether the targets speak TLS "
                      "needs a live probe", needs="a live TLS probe of the targets")
    return [replace(make.unverified(hop.resource, unknown), evidence=evidence)]


# --- CloudFront: the viewer side and the origin side -----------------------------------------

HTTPS_VIEWER_POLICIES = frozenset({"https-only", "redirect-to-https"})

VIEWER_SETTINGS = settings(
    Setting("default_certificate", "CloudFrontDefaultCertificate",
            ("ViewerCertificate", "CloudFrontDefaultCertificate"), passing=frozenset({"false"}),
            failing=frozenset({"true"}), default="false",
            problem="the *.cloudfront.net certificate pins the minimum protocol to TLSv1"),
    Setting("minimum_protocol_version", "MinimumProtocolVersion",
            ("ViewerCertificate", "MinimumProtocolVersion"), passing=frozenset(),
            passing_prefixes=("TLSv1.2_", "TLSv1.3"),
            failing=frozenset({"SSLv3", "TLSv1", "TLSv1_2016", "TLSv1.1_2016"}),
            only_if=("default_certificate", frozenset({"false"})),
            problem="viewers may connect with TLS 1.0 or 1.1"),
)
"""The viewer certificate settings of a distribution; a row per setting."""


@dataclass(frozen=True)
class CacheBehavior:
    """One cache behavior: its path pattern, its origin and its viewer protocol policy."""

    path: str
    origin: str
    viewer_policy: str | None


@dataclass(frozen=True)
class CloudFrontOrigin:
    """One origin: how CloudFront connects to it."""

    id: str
    domain: str
    kind: Literal["custom", "s3", "vpc", "unknown"]
    protocol_policy: str | None = None
    ssl_protocols: tuple[str, ...] | None = None
    http_port: int = 80
    https_port: int = 443
    """A custom origin's ports (`HTTPPort`, `HTTPSPort`); S3 origins use 80 and 443."""

    @property
    def address(self) -> str:
        """Where CloudFront reaches the origin: its HTTP port for http-only, else HTTPS."""
        port = self.http_port if self.plaintext else self.https_port
        return f"{self.domain}:{port}"

    @property
    def plaintext(self) -> bool:
        """Whether CloudFront reaches the origin over HTTP only (`http-only`)."""
        return self.protocol_policy == "http-only"


@dataclass(frozen=True)
class Distribution:
    """The transport settings of one CloudFront distribution."""

    resource: str
    domain: str
    aliases: tuple[str, ...]
    viewer: Mapping[str, Observed]
    behaviors: tuple[CacheBehavior, ...]
    origins: tuple[CloudFrontOrigin, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        """The endpoints viewers reach: the distribution's domain and its aliases, on 443."""
        return tuple(f"{host}:443" for host in (self.domain, *self.aliases))

    def evidence(self) -> dict[str, EvidenceValue]:
        """The distribution's endpoints (its domain and aliases)."""
        return endpoint_evidence(*self.addresses)


def _behaviors(raw: Mapping[str, Any]) -> tuple[CacheBehavior, ...]:
    default = raw.get("DefaultCacheBehavior") or {}
    found = [CacheBehavior("default", str(default.get("TargetOriginId", "")),
                           default.get("ViewerProtocolPolicy"))]
    for item in _dig(raw, ("CacheBehaviors", "Items")) or ():
        found.append(CacheBehavior(str(item.get("PathPattern", "")),
                                   str(item.get("TargetOriginId", "")),
                                   item.get("ViewerProtocolPolicy")))
    return tuple(found)


def _origin(raw: Mapping[str, Any]) -> CloudFrontOrigin:
    origin_id, domain = str(raw.get("Id", "")), str(raw.get("DomainName", ""))
    custom = raw.get("CustomOriginConfig")
    if isinstance(custom, Mapping):
        protocols = _dig(custom, ("OriginSslProtocols", "Items"))
        return CloudFrontOrigin(origin_id, domain, "custom", custom.get("OriginProtocolPolicy"),
                                tuple(map(str, protocols)) if isinstance(protocols, list)
                                else None, _port(custom.get("HTTPPort"), 80),
                                _port(custom.get("HTTPSPort"), 443))
    if isinstance(raw.get("S3OriginConfig"), Mapping):
        return CloudFrontOrigin(origin_id, domain, "s3")
    if isinstance(raw.get("VpcOriginConfig"), Mapping):
        return CloudFrontOrigin(origin_id, domain, "vpc")
    return CloudFrontOrigin(origin_id, domain, "unknown")


def _port(value: Any, default: int) -> int:
    """A port number from the API, or `default` when it is absent or not a number."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _distribution(raw: Mapping[str, Any]) -> Distribution:
    return Distribution(
        resource=str(raw.get("ARN") or raw.get("Id", "")), domain=str(raw.get("DomainName", "")),
        aliases=tuple(map(str, _dig(raw, ("Aliases", "Items")) or ())),
        viewer=read_settings(raw, VIEWER_SETTINGS, "ListDistributions"),
        behaviors=_behaviors(raw),
        origins=tuple(_origin(o) for o in _dig(raw, ("Origins", "Items")) or ()))


def distributions(account: Account) -> Fact[tuple[Distribution, ...]]:
    """Every CloudFront distribution of the account (a global service), once per scan."""
    def compute() -> Fact[tuple[Distribution, ...]]:
        try:
            client = account.session.client("cloudfront", GLOBAL_REGION)
            pages = client.get_paginator("list_distributions").paginate()
            raw = [item for page in pages
                   for item in _dig(page, ("DistributionList", "Items")) or ()]
        except Exception as exc:  # noqa: BLE001 - classify_error re-raises what it cannot name
            return classify_error(exc, CLOUDFRONT_DISTRIBUTIONS)
        return tuple(_distribution(item) for item in raw)

    return account.once(("cloudfront.distributions",), compute)


CLOUDFRONT_RESOURCE = "cloudfront"
"""The resource of a finding about the account's distribution listing."""
CLOUDFRONT_OPERATION = Operation(System.AWS, CLOUDFRONT_DISTRIBUTIONS,
                                 "list distributions with their certificates, behaviors and "
                                 "origins")


def _judge_distributions(make: FindingBuilder[Any], found: Fact[tuple[Distribution, ...]],
                         judge: Callable[[Distribution], Finding]) -> list[Finding]:
    """One finding per distribution; UNVERIFIED when the listing failed, PASS when empty."""
    if isinstance(found, Unknown):
        return [make.unverified(CLOUDFRONT_RESOURCE, found, "the CloudFront distributions")]
    if not found:
        return [make.passed(CLOUDFRONT_RESOURCE, "No CloudFront distributions.",
                            evidence={"count": 0})]
    return [judge(d) for d in found]


class DistributionCheck(Check[Fact[tuple[Distribution, ...]]]):
    """Base of the CloudFront checks: they judge the one memoised listing of distributions."""

    def collect(self, ctx: CheckContext, target: Target) -> Fact[tuple[Distribution, ...]]:
        """List the account's distributions (once per scan, shared)."""
        return distributions(Account.of(ctx, target))


class CloudFrontViewerTls(DistributionCheck):
    """
    CloudFront distributions serve viewers over TLS 1.2 or later only, with their own
    certificate, and never over plaintext HTTP.
    """

    meta = _meta(
        "aws.cloudfront.viewer_tls", "CloudFront viewers connect over TLS 1.2 or later only",
        Severity.HIGH,
        "Reads each distribution's viewer certificate and every cache behavior's viewer "
        "protocol policy. The default *.cloudfront.net certificate pins the minimum protocol "
        "to TLSv1 and fails, as does a MinimumProtocolVersion below TLSv1.2_2018 and any "
        "behavior that allows plaintext HTTP (allow-all). The distributions' domains are "
        "listed, and probed live when the inventory sets `probe_endpoints` for the source.",
        "Attach an ACM certificate for the distribution's alias with security policy "
        "TLSv1.2_2021 or later, and set every cache behavior's viewer protocol policy to "
        "redirect-to-https or https-only.",
        CLOUDFRONT_OPERATION)

    def evaluate(self, obs: Fact[tuple[Distribution, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per distribution."""
        make = self.findings(target)
        return _judge_distributions(make, obs, lambda d: _judge_viewer(make, d))

    def endpoints(self, obs: Fact[tuple[Distribution, ...]], target: Target
                  ) -> Sequence[Endpoint]:
        """Every distribution's domain and aliases, on 443."""
        return [] if isinstance(obs, Unknown) else [
            endpoint for dist in obs for address in dist.addresses
            for endpoint in offer(target, address, dist.resource, "CloudFront distribution")]


def _judge_viewer(make: FindingBuilder[Any], dist: Distribution) -> Finding:
    """The viewer-side finding for one distribution."""
    judged = judge_settings(dist.viewer, VIEWER_SETTINGS)
    plaintext = [b.path for b in dist.behaviors if b.viewer_policy not in HTTPS_VIEWER_POLICIES]
    evidence = {**dist.evidence(), "http_behaviors": tuple(plaintext)}
    if plaintext:
        problems = [(f"cache behaviors {', '.join(plaintext)} serve plaintext HTTP "
                     "(viewer protocol policy allow-all)")]
        if judged.status is Status.FAIL:
            problems.insert(0, judged.reason.rstrip("."))
        judged = Judged(Status.FAIL, "; ".join(problems) + ".", judged.evidence)
    return settings_finding(make, dist.resource, judged, evidence, f"Distribution {dist.domain}")


class CloudFrontOriginTls(DistributionCheck):
    """
    CloudFront reaches every origin over HTTPS with TLS 1.2 or later.
    """

    meta = _meta(
        "aws.cloudfront.origin_tls", "CloudFront reaches its origins over TLS 1.2 or later",
        Severity.HIGH,
        "Reads each distribution's origins. A custom origin with protocol policy http-only "
        "fails, as does match-viewer (or an S3 origin, which follows the viewer too) behind a "
        "behavior that lets viewers use HTTP, and origin SSL protocols that include SSLv3, "
        "TLSv1 or TLSv1.1. VPC origins keep their protocol policy in a separate resource and "
        "are UNVERIFIED. The origins are listed, and probed live when the inventory sets "
        "`probe_endpoints` for the source (http-only ones are listed only).",
        "Set each custom origin's protocol policy to https-only with origin SSL protocols "
        "TLSv1.2 only, and make the origin serve a certificate CloudFront can verify.",
        CLOUDFRONT_OPERATION)

    def evaluate(self, obs: Fact[tuple[Distribution, ...]], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per distribution, naming each origin at fault."""
        make = self.findings(target)
        return _judge_distributions(make, obs, lambda d: _judge_origins(make, d))

    def endpoints(self, obs: Fact[tuple[Distribution, ...]], target: Target
                  ) -> Sequence[Endpoint]:
        """Every origin as CloudFront reaches it; VPC origins from inside the VPC."""
        return [] if isinstance(obs, Unknown) else [
            endpoint for dist in obs for origin in dist.origins
            for endpoint in offer(target, origin.address, dist.resource, "CloudFront origin",
                                  zone="internal" if origin.kind == "vpc" else "external",
                                  tls=not origin.plaintext)]


def _origin_problem(origin: CloudFrontOrigin, behaviors: Sequence[CacheBehavior]
                    ) -> str | Unknown | None:
    """What is wrong with how CloudFront reaches one origin; None when nothing is."""
    follows_viewer = origin.kind == "s3" or origin.protocol_policy == "match-viewer"
    if origin.kind == "vpc":
        return Unknown(UnknownReason.NOT_VISIBLE, f"origin {origin.id} is a VPC origin, whose "
                       "protocol policy is not part of the distribution")
    if origin.kind == "unknown" or (origin.kind == "custom" and not origin.protocol_policy):
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"ListDistributions did not say how origin {origin.id} is reached")
    if origin.protocol_policy == "http-only":
        return f"origin {origin.id} is reached over plaintext HTTP (http-only)"
    if follows_viewer and any(b.viewer_policy not in HTTPS_VIEWER_POLICIES
                              for b in behaviors if b.origin == origin.id):
        return f"origin {origin.id} follows the viewer's protocol, and viewers may use HTTP"
    weak = [p for p in WEAK_PROTOCOLS if p in (origin.ssl_protocols or ())]
    if weak:
        return f"origin {origin.id} may be reached with {', '.join(weak)}"
    return None


def _judge_origins(make: FindingBuilder[Any], dist: Distribution) -> Finding:
    """The origin-side finding for one distribution."""
    evidence = {**endpoint_evidence(*(o.address for o in dist.origins)),
                "origins": tuple(f"{o.id} ({o.kind}, {o.protocol_policy or 'n/a'})"
                                 for o in dist.origins)}
    problems = [_origin_problem(o, dist.behaviors) for o in dist.origins]
    failures = [p for p in problems if isinstance(p, str)]
    unknown = next((p for p in problems if isinstance(p, Unknown)), None)
    subject = f"Distribution {dist.domain}"
    if failures:
        return make.failed(dist.resource, f"{subject}: {'; '.join(failures)}.", evidence=evidence)
    if unknown is not None:
        return replace(make.unverified(dist.resource, unknown, f"the origins of {subject}"),
                       evidence=evidence)
    if not dist.origins:
        return replace(make.unverified(dist.resource, Unknown(
            UnknownReason.UNPARSEABLE, "ListDistributions reported no origins")),
            evidence=evidence)
    return make.passed(dist.resource, f"{subject} reaches every origin over HTTPS with TLS 1.2 "
                       "or later.", evidence=evidence)


# --- API Gateway custom domains --------------------------------------------------------------

DOMAIN_SETTINGS = settings(
    Setting("security_policy", "securityPolicy", ("securityPolicy",),
            passing=frozenset({"TLS_1_2"}), failing=frozenset({"TLS_1_0"}),
            passing_prefixes=("SecurityPolicy_TLS13_1_3", "SecurityPolicy_TLS13_1_2",
                              "SecurityPolicy_TLS12_"),
            problem="clients may connect with TLS 1.0 or 1.1"),
)


@dataclass(frozen=True)
class CustomDomain:
    """One API Gateway custom domain name and the security policy of each of its endpoints."""

    resource: str
    name: str
    api: str
    """`REST` (API Gateway v1) or `HTTP/WebSocket` (v2)."""
    endpoints: tuple[tuple[str, Mapping[str, Observed]], ...]
    """(endpoint type, settings) per endpoint configuration."""

    @property
    def zone(self) -> Zone:
        """`internal` when every endpoint configuration is PRIVATE (reached from a VPC)."""
        types = [t.strip().upper() for kinds, _ in self.endpoints for t in kinds.split(",")]
        return "internal" if types and all(t == "PRIVATE" for t in types) else "external"


def _v1_domain(region: str, raw: Mapping[str, Any]) -> CustomDomain:
    name = str(raw.get("domainName", ""))
    types = _dig(raw, ("endpointConfiguration", "types")) or ["EDGE"]
    return CustomDomain(f"arn:aws:apigateway:{region}::/domainnames/{name}", name, "REST",
                        ((",".join(map(str, types)),
                          read_settings(raw, DOMAIN_SETTINGS, "GetDomainNames")),))


def _v2_domain(region: str, raw: Mapping[str, Any]) -> CustomDomain:
    name = str(raw.get("DomainName", ""))
    configs = tuple(
        (str(c.get("EndpointType", "REGIONAL")),
         read_settings({"securityPolicy": c.get("SecurityPolicy")}, DOMAIN_SETTINGS,
                       "GetDomainNames"))
        for c in raw.get("DomainNameConfigurations") or ())
    return CustomDomain(str(raw.get("DomainNameArn")
                            or f"arn:aws:apigateway:{region}::/domainnames/{name}"),
                        name, "HTTP/WebSocket", configs)


def custom_domains(account: Account, region: str) -> Fact[tuple[CustomDomain, ...]]:
    """
    A region's API Gateway custom domains from both APIs, once per scan. The two APIs share
    one namespace of domain names, so a name both list is judged once, as v1 reports it.
    """
    def compute() -> Fact[tuple[CustomDomain, ...]]:
        v1 = account.listing("apigateway", region, "get_domain_names", "items", APIGATEWAY_GET)
        v2 = account.listing("apigatewayv2", region, "get_domain_names", "Items",
                             APIGATEWAY_GET)
        if isinstance(v1, Unknown):
            return v1
        if isinstance(v2, Unknown):
            return v2
        found = {d.name: d for d in (_v1_domain(region, raw) for raw in v1)}
        for domain in (_v2_domain(region, raw) for raw in v2):
            found.setdefault(domain.name, domain)
        return tuple(found.values())

    return account.once(("apigateway.domains", region), compute)


class ApiGatewayDomainTls(RegionalCheck[CustomDomain]):
    """
    Every API Gateway custom domain uses a security policy with TLS 1.2 as its minimum.
    """

    meta = _meta(
        "aws.apigateway.domain_tls", "API Gateway custom domains require TLS 1.2 or later",
        Severity.HIGH,
        "Reads the securityPolicy of every custom domain name of REST, HTTP and WebSocket APIs "
        "in each scanned region. TLS_1_0 fails; TLS_1_2 and the TLS 1.2 and 1.3 enhanced "
        "policies pass; a policy name hipaacheck does not know is UNVERIFIED. The domains are "
        "listed, and probed live when the inventory sets `probe_endpoints` for the source.",
        "Set the domain's security policy to TLS_1_2 or a SecurityPolicy_TLS13_* policy "
        "(update-domain-name --patch-operations op=replace,path=/securityPolicy,value=TLS_1_2).",
        Operation(System.AWS, APIGATEWAY_GET,
                  "read custom domain names (GET /domainnames in both API Gateway APIs)"),
        REGIONS_OPERATION)

    def read(self, account: Account, region: str) -> Fact[tuple[CustomDomain, ...]]:
        """List each region's custom domains."""
        return custom_domains(account, region)

    def evaluate(self, obs: Regional[CustomDomain], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per custom domain."""
        make = self.findings(target)
        return judge_regional(make, obs, "apigateway", "API Gateway custom domains",
                              lambda domain: [_judge_domain(make, domain)])

    def endpoints(self, obs: Regional[CustomDomain], target: Target) -> Sequence[Endpoint]:
        """Every custom domain on 443; private ones from inside the VPC."""
        return [endpoint for domain in listed(obs)
                for endpoint in offer(target, f"{domain.name}:443", domain.resource,
                                      "API Gateway custom domain", zone=domain.zone)]


def _judge_domain(make: FindingBuilder[Any], domain: CustomDomain) -> Finding:
    """The finding for one custom domain: the worst verdict of its endpoint configurations."""
    evidence: dict[str, EvidenceValue] = {
        "api": domain.api, "endpoint_types": tuple(t for t, _ in domain.endpoints),
        **endpoint_evidence(f"{domain.name}:443")}
    if not domain.endpoints:
        return replace(make.unverified(domain.resource, Unknown(
            UnknownReason.UNPARSEABLE, "GetDomainNames reported no endpoint configuration")),
            evidence=evidence)
    verdicts = [judge_settings(values, DOMAIN_SETTINGS) for _, values in domain.endpoints]
    order = (Status.FAIL, Status.UNVERIFIED, Status.WARN, Status.PASS)
    worst = min(verdicts, key=lambda j: order.index(j.status))
    policies = tuple(str(j.evidence.get("security_policy")) for j in verdicts)
    judged = replace(worst, evidence={"security_policies": policies})
    return settings_finding(make, domain.resource, judged, evidence, f"Domain {domain.name}")


# --- RDS, Aurora and DocumentDB: transport parameters ----------------------------------------

_FORCE_SSL = Setting("force_ssl", "rds.force_ssl", ("rds.force_ssl",),
                     passing=frozenset({"1"}), failing=frozenset({"0"}),
                     problem="plaintext connections are accepted")
_PG_MIN_PROTOCOL = Setting("ssl_min_protocol_version", "ssl_min_protocol_version",
                           ("ssl_min_protocol_version",),
                           passing=frozenset({"TLSv1.2", "TLSv1.3"}),
                           failing=frozenset({"TLSv1", "TLSv1.1"}), default="TLSv1.2",
                           problem="TLS 1.0 or 1.1 connections are accepted")
_REQUIRE_SECURE = Setting("require_secure_transport", "require_secure_transport",
                          ("require_secure_transport",), passing=frozenset({"1", "ON"}),
                          failing=frozenset({"0", "OFF"}), default="OFF",
                          problem="plaintext connections are accepted")
_TLS_VERSION = Setting("tls_version", "tls_version", ("tls_version",), passing=frozenset(),
                       protocol_list=True, problem="TLS 1.0 or 1.1 connections are accepted")


def _sqlserver_tls(version: str) -> Setting:
    return Setting(f"tls{version.replace('.', '')}", f"rds.tls{version.replace('.', '')}",
                   (f"rds.tls{version.replace('.', '')}",), passing=frozenset({"disabled"}),
                   failing=frozenset({"enabled", "default"}),
                   problem=f"TLS {version} is left on (the Windows default enables it)")


POSTGRES_PARAMETERS = settings(_FORCE_SSL, _PG_MIN_PROTOCOL)
MYSQL_PARAMETERS = settings(_REQUIRE_SECURE, _TLS_VERSION)
SQLSERVER_PARAMETERS = settings(_FORCE_SSL, _sqlserver_tls("1.0"), _sqlserver_tls("1.1"))
DOCDB_PARAMETERS = settings(Setting(
    "tls", "tls", ("tls",), passing=frozenset({"enabled", "tls1.2+", "tls1.3+", "fips-140-3"}),
    failing=frozenset({"disabled"}), problem="plaintext connections are accepted"))

ENGINE_PARAMETERS: tuple[tuple[str, tuple[Setting, ...]], ...] = (
    ("aurora-postgresql", POSTGRES_PARAMETERS),
    ("aurora-mysql", MYSQL_PARAMETERS),
    ("aurora", MYSQL_PARAMETERS),
    ("postgres", POSTGRES_PARAMETERS),
    ("mysql", MYSQL_PARAMETERS),
    ("mariadb", MYSQL_PARAMETERS),
    ("sqlserver", SQLSERVER_PARAMETERS),
    ("docdb", DOCDB_PARAMETERS),
)
"""Engine-name prefix to the parameters that hold its transport security, first match wins.
A parameter the group leaves unset takes the engine default that RDS reports for the group's
family, then the engine's own built-in default (`Setting.default`) when RDS lists the parameter
without a value."""


def engine_parameters(engine: str) -> tuple[Setting, ...] | None:
    """The parameter table for an engine, or None for engines judged elsewhere (Oracle)."""
    return next((table for prefix, table in ENGINE_PARAMETERS if engine.startswith(prefix)),
                None)


@dataclass(frozen=True)
class DbEndpoint:
    """
    One DB instance or cluster that clients connect to, and its transport parameters as they
    resolve from its parameter group, the engine defaults and the engine's built-in defaults.
    """

    resource: str
    identifier: str
    kind: Literal["instance", "cluster"]
    engine: str
    engine_version: str
    endpoints: tuple[str, ...]
    parameter_group: str | None
    apply_status: str | None
    parameters: Mapping[str, Observed]
    public: bool = False
    """An instance's `PubliclyAccessible`: its address resolves to a public IP. Clusters: False."""


_GROUP_NOT_FOUND = {
    code: Unknown(UnknownReason.NOT_VISIBLE, "the parameter group was not found")
    for code in ("DBParameterGroupNotFound", "DBParameterGroupNotFoundFault",
                 "DBClusterParameterGroupNotFound", "DBClusterParameterGroupNotFoundFault")}


@dataclass(frozen=True)
class _GroupApi:
    """The calls that read one kind of parameter group (instance or cluster)."""

    list_method: str
    list_action: str
    name_param: str
    describe_method: str
    describe_action: str
    describe_key: str
    defaults_method: str
    defaults_action: str


_INSTANCE_GROUPS = _GroupApi(
    "describe_db_parameters", RDS_PARAMETERS, "DBParameterGroupName",
    "describe_db_parameter_groups", RDS_PARAMETER_GROUPS, "DBParameterGroups",
    "describe_engine_default_parameters", RDS_ENGINE_DEFAULTS)
_CLUSTER_GROUPS = _GroupApi(
    "describe_db_cluster_parameters", RDS_CLUSTER_PARAMETERS, "DBClusterParameterGroupName",
    "describe_db_cluster_parameter_groups", RDS_CLUSTER_PARAMETER_GROUPS,
    "DBClusterParameterGroups", "describe_engine_default_cluster_parameters",
    RDS_ENGINE_CLUSTER_DEFAULTS)


def _parameter_values(items: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """Parameter name to its value; None for a parameter listed without a value."""
    return {str(p.get("ParameterName")): (None if p.get("ParameterValue") is None
                                          else str(p["ParameterValue"])) for p in items}


def group_parameters(account: Account, region: str, api: _GroupApi, group: str
                     ) -> Fact[dict[str, str | None]]:
    """Every parameter of a DB (cluster) parameter group, once per scan."""
    def compute() -> Fact[dict[str, str | None]]:
        items = account.listing("rds", region, api.list_method, "Parameters", api.list_action,
                                absent=_GROUP_NOT_FOUND, **{api.name_param: group})
        return items if isinstance(items, Unknown) else _parameter_values(items)

    return account.once(("rds.group_parameters", region, api.list_method, group), compute)


def group_family(account: Account, region: str, api: _GroupApi, group: str) -> Fact[str]:
    """The parameter group family (`postgres16`) of a DB (cluster) parameter group."""
    def compute() -> Fact[str]:
        answer = account.call("rds", region, api.describe_method, api.describe_action,
                              absent=_GROUP_NOT_FOUND, **{api.name_param: group})
        if isinstance(answer, Unknown):
            return answer
        for item in answer.get(api.describe_key) or ():
            if item.get("DBParameterGroupFamily"):
                return str(item["DBParameterGroupFamily"])
        return Unknown(UnknownReason.UNPARSEABLE, f"the family of {group} was not reported")

    return account.once(("rds.group_family", region, api.describe_method, group), compute)


def engine_defaults(account: Account, region: str, api: _GroupApi, family: str
                    ) -> Fact[dict[str, str | None]]:
    """The engine default parameters of a family, paged through `EngineDefaults.Marker`."""
    def compute() -> Fact[dict[str, str | None]]:
        items: list[Mapping[str, Any]] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"DBParameterGroupFamily": family}
            if marker:
                params["Marker"] = marker
            answer = account.call("rds", region, api.defaults_method, api.defaults_action,
                                  **params)
            if isinstance(answer, Unknown):
                return answer
            defaults = answer.get("EngineDefaults") or {}
            items += defaults.get("Parameters") or ()
            marker = defaults.get("Marker")
            if not marker:
                return _parameter_values(items)

    return account.once(("rds.engine_defaults", region, api.defaults_method, family), compute)


def _resolve(row: Setting, group: Fact[dict[str, str | None]],
             defaults: Callable[[], Fact[dict[str, str | None]]]) -> Observed:
    """One parameter's effective value: the group's, the engine default, the built-in default."""
    if isinstance(group, Unknown):
        return Observed(group)
    if group.get(row.label) is not None:
        return Observed(str(group[row.label]), "parameter group")
    engine = defaults()
    if isinstance(engine, Unknown):
        return Observed(Unknown(engine.reason, f"{row.label} is not set in the parameter group, "
                                f"and the engine defaults could not be read: {engine.detail}",
                                engine.needs))
    if engine.get(row.label) is not None:
        return Observed(str(engine[row.label]), "engine default")
    # Listed without a value: the engine's own default applies. Not listed at all: this engine
    # version may not have the parameter, and its behaviour is not known here.
    if row.label in engine and row.default is not None:
        return Observed(row.default, "engine built-in default")
    return Observed(Unknown(UnknownReason.NOT_VISIBLE, f"{row.label} has no value in the "
                            "parameter group or the engine defaults"))


def resolve_parameters(account: Account, region: str, api: _GroupApi, group: str | None,
                       table: Sequence[Setting]) -> dict[str, Observed]:
    """Each parameter of `table` as it resolves for a parameter group."""
    if not group:
        missing = Unknown(UnknownReason.UNPARSEABLE, "no parameter group was reported")
        return {row.key: Observed(missing) for row in table}
    values = group_parameters(account, region, api, group)

    def defaults() -> Fact[dict[str, str | None]]:
        family = group_family(account, region, api, group)
        return family if isinstance(family, Unknown) else engine_defaults(
            account, region, api, family)

    return {row.key: _resolve(row, values, defaults) for row in table}


def _db_location(raw: Mapping[str, Any], kind: Literal["instance", "cluster"]
                 ) -> tuple[str | None, str | None, str | None, str | None, tuple[str, ...]]:
    """Identifier, ARN, parameter group, its apply status and endpoints of a database."""
    if kind == "instance":
        group = (raw.get("DBParameterGroups") or [{}])[0]
        address, port = _dig(raw, ("Endpoint", "Address")), _dig(raw, ("Endpoint", "Port"))
        return (raw.get("DBInstanceIdentifier"), raw.get("DBInstanceArn"),
                group.get("DBParameterGroupName"), group.get("ParameterApplyStatus"),
                (f"{address}:{port}",) if address else ())
    hosts = (raw.get("Endpoint"), raw.get("ReaderEndpoint"))
    return (raw.get("DBClusterIdentifier"), raw.get("DBClusterArn"),
            raw.get("DBClusterParameterGroup"), None,
            tuple(f"{host}:{raw.get('Port')}" for host in hosts if host))


def _db_endpoint(account: Account, region: str, raw: Mapping[str, Any],
                 kind: Literal["instance", "cluster"]) -> DbEndpoint:
    """One instance or cluster with its transport parameters resolved."""
    engine = str(raw.get("Engine", ""))
    name, arn, group, status, endpoints = _db_location(raw, kind)
    table = engine_parameters(engine) or ()
    api = _INSTANCE_GROUPS if kind == "instance" else _CLUSTER_GROUPS
    return DbEndpoint(
        resource=str(arn or f"{region}/{name}"), identifier=str(name), kind=kind, engine=engine,
        engine_version=str(raw.get("EngineVersion", "")), endpoints=endpoints,
        parameter_group=group, apply_status=status,
        parameters=resolve_parameters(account, region, api, group, table) if table else {},
        public=kind == "instance" and raw.get("PubliclyAccessible") is True)


def db_endpoints(account: Account, region: str) -> Fact[tuple[DbEndpoint, ...]]:
    """
    A region's standalone DB instances and DB clusters (Aurora, Multi-AZ, DocumentDB) with
    their transport parameters; members of a cluster are judged with the cluster.
    """
    def compute() -> Fact[tuple[DbEndpoint, ...]]:
        instances = account.listing("rds", region, "describe_db_instances", "DBInstances",
                                    RDS_INSTANCES)
        clusters = account.listing("rds", region, "describe_db_clusters", "DBClusters",
                                   RDS_CLUSTERS)
        if isinstance(instances, Unknown):
            return instances
        if isinstance(clusters, Unknown):
            return clusters
        standalone = [i for i in instances if not i.get("DBClusterIdentifier")]
        found = account.map(lambda raw: _db_endpoint(account, region, raw, "instance"),
                            standalone)
        found += account.map(lambda raw: _db_endpoint(account, region, raw, "cluster"),
                             clusters)
        return tuple(found)

    return account.once(("rds.endpoints", region), compute)


class RdsTransportTls(RegionalCheck[DbEndpoint]):
    """
    Every RDS and Aurora database refuses plaintext connections and TLS below 1.2.
    """

    meta = _meta(
        "aws.rds.transport_tls", "RDS and Aurora databases require TLS 1.2 or later",
        Severity.HIGH,
        "Reads the parameter group of every standalone DB instance and every DB cluster in each "
        "scanned region and resolves the transport parameters of its engine: rds.force_ssl and "
        "ssl_min_protocol_version (PostgreSQL, Aurora PostgreSQL), require_secure_transport "
        "and tls_version (MySQL, MariaDB, Aurora MySQL), rds.force_ssl, rds.tls10 and "
        "rds.tls11 (SQL Server), tls (DocumentDB). A parameter the group leaves unset takes "
        "the engine default RDS reports for the group's family, then the engine's built-in "
        "default. Oracle keeps TLS in option groups and is UNVERIFIED. The database endpoints "
        "are listed, and probed live when the inventory sets `probe_endpoints` for the source "
        "(PostgreSQL through its STARTTLS; engines whose TLS negotiation the prober does not "
        "speak are listed only).",
        "Use a custom parameter group with rds.force_ssl=1 (or require_secure_transport=ON, "
        "tls=enabled) and a minimum protocol of TLSv1.2, attach it to the instance or cluster, "
        "and make the clients verify the server (sslmode=verify-full with the RDS CA bundle).",
        Operation(System.AWS, RDS_INSTANCES, "list DB instances and their parameter groups"),
        Operation(System.AWS, RDS_CLUSTERS, "list DB clusters and their parameter groups"),
        Operation(System.AWS, RDS_PARAMETERS, "read DB parameter groups"),
        Operation(System.AWS, RDS_CLUSTER_PARAMETERS, "read DB cluster parameter groups"),
        Operation(System.AWS, RDS_PARAMETER_GROUPS, "find a DB parameter group's family"),
        Operation(System.AWS, RDS_CLUSTER_PARAMETER_GROUPS,
                  "find a DB cluster parameter group's family"),
        Operation(System.AWS, RDS_ENGINE_DEFAULTS, "engine defaults of unset parameters"),
        Operation(System.AWS, RDS_ENGINE_CLUSTER_DEFAULTS,
                  "engine defaults of unset cluster parameters"),
        REGIONS_OPERATION)

    def read(self, account: Account, region: str) -> Fact[tuple[DbEndpoint, ...]]:
        """List each region's databases and resolve their transport parameters."""
        return db_endpoints(account, region)

    def evaluate(self, obs: Regional[DbEndpoint], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per standalone instance and cluster."""
        make = self.findings(target)
        return judge_regional(make, obs, "rds", "DB instances or clusters",
                              lambda db: [_judge_db(make, db)])

    def endpoints(self, obs: Regional[DbEndpoint], target: Target) -> Sequence[Endpoint]:
        """Every address of every listed instance and cluster."""
        return [endpoint for db in listed(obs) for endpoint in _db_endpoints(target, db)]


POSTGRES_ENGINES = ("postgres", "aurora-postgresql")
"""Engines whose TLS starts with PostgreSQL's SSLRequest, which the prober speaks."""
DIRECT_TLS_ENGINES = ("docdb", "neptune")
"""Engines whose clients start TLS on the first byte (DocumentDB, Neptune's HTTPS)."""


def _db_endpoints(target: Target, db: DbEndpoint) -> list[Endpoint]:
    """
    A database's addresses: PostgreSQL's probed through its STARTTLS, DocumentDB's and
    Neptune's as plain TLS; MySQL, MariaDB, SQL Server and Oracle negotiate TLS inside their
    own protocols, which the prober does not speak.
    """
    postgres = db.engine.startswith(POSTGRES_ENGINES)
    beyond = None if postgres or db.engine.startswith(DIRECT_TLS_ENGINES) else (
        f"the prober does not speak {db.engine or 'the engine'}'s TLS negotiation")
    return [endpoint for address in db.endpoints for endpoint in offer(
        target, address, db.resource, f"RDS {db.kind}",
        zone="external" if db.public else "internal",
        tls=not says(db.parameters, "tls", "disabled"),
        starttls="postgres" if postgres else None, unprobeable=beyond)]


def _judge_db(make: FindingBuilder[Any], db: DbEndpoint) -> Finding:
    """The finding for one database's transport parameters."""
    evidence: dict[str, EvidenceValue] = {
        "engine": db.engine, "engine_version": db.engine_version, "kind": db.kind,
        "parameter_group": db.parameter_group, "parameter_apply_status": db.apply_status,
        **endpoint_evidence(*db.endpoints)}
    subject = f"DB {db.kind} {db.identifier}"
    table = engine_parameters(db.engine)
    if table is None:
        unknown = Unknown(UnknownReason.NOT_SUPPORTED,
                          f"the {db.engine or 'unknown'} engine keeps its TLS settings outside "
                          "parameter groups (Oracle: the SSL option of its option group)")
        return replace(make.unverified(db.resource, unknown, f"the transport of {subject}"),
                       evidence=evidence)
    return settings_finding(make, db.resource, judge_settings(db.parameters, table), evidence,
                            subject)


# --- ElastiCache: transit encryption ----------------------------------------------------------

CACHE_SETTINGS = settings(
    Setting("transit_encryption", "TransitEncryptionEnabled", ("TransitEncryptionEnabled",),
            passing=frozenset({"true"}), failing=frozenset({"false"}), default="false",
            problem="clients connect in plaintext"),
    Setting("transit_encryption_mode", "TransitEncryptionMode", ("TransitEncryptionMode",),
            passing=frozenset({"required"}), failing=frozenset({"preferred"}),
            default="required", only_if=("transit_encryption", frozenset({"true"})),
            problem="plaintext connections are still accepted"),
)
"""Replication groups and standalone cache clusters report the same two settings. A group with
transit encryption on but no mode predates the setting, when encryption meant `required`."""


@dataclass(frozen=True)
class Cache:
    """One replication group or standalone cache cluster and its transit settings."""

    resource: str
    name: str
    kind: Literal["replication group", "cache cluster"]
    engine: str
    endpoints: tuple[str, ...]
    settings: Mapping[str, Observed]


def _address(endpoint: Any) -> str | None:
    if isinstance(endpoint, Mapping) and endpoint.get("Address"):
        return f"{endpoint['Address']}:{endpoint.get('Port', '')}"
    return None


def _group_cache(raw: Mapping[str, Any]) -> Cache:
    hosts = [_address(raw.get("ConfigurationEndpoint"))]
    for group in raw.get("NodeGroups") or ():
        hosts += [_address(group.get("PrimaryEndpoint")), _address(group.get("ReaderEndpoint"))]
    name = str(raw.get("ReplicationGroupId", ""))
    return Cache(str(raw.get("ARN") or name), name, "replication group",
                 str(raw.get("Engine", "redis")), tuple(h for h in hosts if h),
                 read_settings(raw, CACHE_SETTINGS, "DescribeReplicationGroups"))


def _cluster_cache(raw: Mapping[str, Any]) -> Cache:
    hosts = [_address(raw.get("ConfigurationEndpoint"))]
    hosts += [_address(node.get("Endpoint")) for node in raw.get("CacheNodes") or ()]
    name = str(raw.get("CacheClusterId", ""))
    return Cache(str(raw.get("ARN") or name), name, "cache cluster", str(raw.get("Engine", "")),
                 tuple(dict.fromkeys(h for h in hosts if h)),
                 read_settings(raw, CACHE_SETTINGS, "DescribeCacheClusters"))


def caches(account: Account, region: str) -> Fact[tuple[Cache, ...]]:
    """
    A region's replication groups and the cache clusters outside them, once per scan.

    NOTE: serverless caches are not listed: ElastiCache Serverless always requires TLS.
    """
    def compute() -> Fact[tuple[Cache, ...]]:
        groups = account.listing("elasticache", region, "describe_replication_groups",
                                 "ReplicationGroups", ELASTICACHE_GROUPS)
        clusters = account.listing("elasticache", region, "describe_cache_clusters",
                                   "CacheClusters", ELASTICACHE_CLUSTERS, ShowCacheNodeInfo=True)
        if isinstance(groups, Unknown):
            return groups
        if isinstance(clusters, Unknown):
            return clusters
        return tuple([_group_cache(g) for g in groups] + [
            _cluster_cache(c) for c in clusters if not c.get("ReplicationGroupId")])

    return account.once(("elasticache.caches", region), compute)


class ElastiCacheTransitEncryption(RegionalCheck[Cache]):
    """
    Every ElastiCache replication group and cache cluster requires encryption in transit.
    """

    meta = _meta(
        "aws.elasticache.transit_encryption", "ElastiCache requires encryption in transit",
        Severity.HIGH,
        "Reads TransitEncryptionEnabled and TransitEncryptionMode of every replication group "
        "and standalone cache cluster in each scanned region. Transit encryption off fails "
        "(the default), and so does mode `preferred`, which still accepts plaintext clients. "
        "The cache endpoints are listed, and probed live when the inventory sets "
        "`probe_endpoints` for the source (those without transit encryption are listed only).",
        "Enable transit encryption (modify-replication-group --transit-encryption-enabled "
        "with --transit-encryption-mode preferred, move every client to TLS, then set the mode "
        "to required); Memcached clusters must be re-created with it.",
        Operation(System.AWS, ELASTICACHE_GROUPS, "list replication groups"),
        Operation(System.AWS, ELASTICACHE_CLUSTERS, "list cache clusters"),
        REGIONS_OPERATION)

    def read(self, account: Account, region: str) -> Fact[tuple[Cache, ...]]:
        """List each region's replication groups and cache clusters."""
        return caches(account, region)

    def evaluate(self, obs: Regional[Cache], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per replication group and standalone cache cluster."""
        make = self.findings(target)
        return judge_regional(make, obs, "elasticache", "ElastiCache caches", lambda cache: [
            settings_finding(make, cache.resource, judge_settings(cache.settings, CACHE_SETTINGS),
                             {"kind": cache.kind, "engine": cache.engine,
                              **endpoint_evidence(*cache.endpoints)},
                             f"{cache.kind.capitalize()} {cache.name}")])

    def endpoints(self, obs: Regional[Cache], target: Target) -> Sequence[Endpoint]:
        """Every cache endpoint; TLS unless transit encryption was observed to be off."""
        return [endpoint for cache in listed(obs) for address in cache.endpoints
                for endpoint in offer(target, address, cache.resource, "ElastiCache",
                                      zone="internal",
                                      tls=not says(cache.settings, "transit_encryption", "false"))]


# --- OpenSearch: HTTPS, TLS policy and node-to-node encryption -------------------------------

SEARCH_SETTINGS = settings(
    Setting("enforce_https", "EnforceHTTPS", ("DomainEndpointOptions", "EnforceHTTPS"),
            passing=frozenset({"true"}), failing=frozenset({"false"}), default="false",
            problem="plaintext HTTP requests are accepted"),
    Setting("tls_security_policy", "TLSSecurityPolicy",
            ("DomainEndpointOptions", "TLSSecurityPolicy"), passing=frozenset(),
            passing_prefixes=("Policy-Min-TLS-1-2-",),
            failing=frozenset({"Policy-Min-TLS-1-0-2019-07"}),
            problem="TLS 1.0 and 1.1 connections are accepted"),
    Setting("node_to_node_encryption", "NodeToNodeEncryptionOptions.Enabled",
            ("NodeToNodeEncryptionOptions", "Enabled"), passing=frozenset({"true"}),
            failing=frozenset({"false"}), default="false",
            problem="traffic between the domain's nodes is plaintext"),
)

_DESCRIBE_BATCH = 5
"""DescribeDomains takes at most five domain names per call."""


@dataclass(frozen=True)
class SearchDomain:
    """One OpenSearch (or Elasticsearch) domain and its transport settings."""

    resource: str
    name: str
    engine_version: str
    endpoints: tuple[str, ...]
    settings: Mapping[str, Observed]
    vpc_endpoints: tuple[str, ...] = ()
    """Those of `endpoints` reached from inside a VPC (`Endpoints` rather than `Endpoint`)."""


def _search_domain(raw: Mapping[str, Any]) -> SearchDomain:
    vpc = tuple(f"{h}:443" for h in (raw.get("Endpoints") or {}).values() if h)
    public = (f"{raw['Endpoint']}:443",) if raw.get("Endpoint") else ()
    return SearchDomain(
        str(raw.get("ARN") or raw.get("DomainName", "")), str(raw.get("DomainName", "")),
        str(raw.get("EngineVersion", "")), public + vpc,
        read_settings(raw, SEARCH_SETTINGS, "DescribeDomains"), vpc)


def search_domains(account: Account, region: str) -> Fact[tuple[SearchDomain, ...]]:
    """A region's OpenSearch domains, described five at a time, once per scan."""
    def compute() -> Fact[tuple[SearchDomain, ...]]:
        listed = account.call("opensearch", region, "list_domain_names", OPENSEARCH_NAMES)
        if isinstance(listed, Unknown):
            return listed
        names = [str(d["DomainName"]) for d in listed.get("DomainNames") or ()
                 if d.get("DomainName")]
        found: list[SearchDomain] = []
        for start in range(0, len(names), _DESCRIBE_BATCH):
            answer = account.call("opensearch", region, "describe_domains", OPENSEARCH_DOMAINS,
                                  DomainNames=names[start:start + _DESCRIBE_BATCH])
            if isinstance(answer, Unknown):
                return answer
            found += [_search_domain(raw) for raw in answer.get("DomainStatusList") or ()]
        return tuple(found)

    return account.once(("opensearch.domains", region), compute)


class OpenSearchTransit(RegionalCheck[SearchDomain]):
    """
    Every OpenSearch domain enforces HTTPS with TLS 1.2 or later and encrypts node-to-node
    traffic.
    """

    meta = _meta(
        "aws.opensearch.transit", "OpenSearch domains enforce HTTPS, TLS 1.2 and node-to-node "
        "encryption", Severity.HIGH,
        "Reads DomainEndpointOptions (EnforceHTTPS, TLSSecurityPolicy) and "
        "NodeToNodeEncryptionOptions of every OpenSearch and Elasticsearch domain in each "
        "scanned region. HTTPS not enforced, the Policy-Min-TLS-1-0-2019-07 policy and "
        "node-to-node encryption off each fail. The domain endpoints are listed, and probed "
        "live when the inventory sets `probe_endpoints` for the source.",
        "Update the domain config: EnforceHTTPS=true with TLSSecurityPolicy "
        "Policy-Min-TLS-1-2-PFS-2023-10, and NodeToNodeEncryptionOptions Enabled=true "
        "(requires OpenSearch or Elasticsearch 6.7 or later).",
        Operation(System.AWS, OPENSEARCH_NAMES, "list domain names"),
        Operation(System.AWS, OPENSEARCH_DOMAINS, "read domain endpoint and encryption options"),
        REGIONS_OPERATION)

    def read(self, account: Account, region: str) -> Fact[tuple[SearchDomain, ...]]:
        """List and describe each region's domains."""
        return search_domains(account, region)

    def evaluate(self, obs: Regional[SearchDomain], target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per domain."""
        make = self.findings(target)
        return judge_regional(make, obs, "opensearch", "OpenSearch domains", lambda domain: [
            settings_finding(make, domain.resource,
                             judge_settings(domain.settings, SEARCH_SETTINGS),
                             {"engine_version": domain.engine_version,
                              **endpoint_evidence(*domain.endpoints)},
                             f"Domain {domain.name}")])

    def endpoints(self, obs: Regional[SearchDomain], target: Target) -> Sequence[Endpoint]:
        """Every domain endpoint on 443; VPC endpoints from inside the VPC."""
        return [endpoint for domain in listed(obs) for address in domain.endpoints
                for endpoint in offer(target, address, domain.resource, "OpenSearch domain",
                                      zone="internal" if address in domain.vpc_endpoints
                                      else "external")]


CHECKS: tuple[type[Check[Any]], ...] = (
    ElbTlsPolicy, ElbPlaintextListeners, ElbTargetProtocol, CloudFrontViewerTls,
    CloudFrontOriginTls, ApiGatewayDomainTls, RdsTransportTls, ElastiCacheTransitEncryption,
    OpenSearchTransit)
"""Every check of this module, in report order."""
