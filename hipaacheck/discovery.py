"""
From endpoints found in control planes to TLS targets probed live: the scan's second phase.

The configuration checks list the endpoints they find (`Check.endpoints`): load balancer
listeners, CloudFront and API Gateway domains, database and cache addresses, Ingress hosts,
Services and Gateway listeners. None is connected to unless the inventory opts its source in
(`probe_endpoints` on the account, cluster or database). `plan_probes` decides, for every
endpoint found, whether it is probed and why not, and builds the TLS endpoint targets that the
TLS checks then probe like configured ones. Every endpoint found is recorded, probed or not,
so the report can list them all.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from hipaacheck.config import ProbeEndpointsConfig, TlsEndpointConfig
from hipaacheck.model import ENDPOINT_REASONS, Endpoint, EndpointRecord, Target, TargetKind

PROBE_SETTING = "probe_endpoints"
INTERRUPTED = ENDPOINT_REASONS["interrupted"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeRequest:
    """What `plan_probes` needs besides the endpoints."""

    sources: Mapping[str, ProbeEndpointsConfig | None]
    """Source target id to its `probe_endpoints` setting (None: probing is off)."""
    configured: Sequence[Target] = ()
    """The inventory's own TLS endpoint targets: an endpoint they already cover is not
    probed twice."""
    tls_checks: bool = True
    """Whether any TLS endpoint check is selected for this scan."""
    interrupted: bool = False
    """The scan stopped before its probing phase: every endpoint is listed, none probed."""


def plan_probes(found: Sequence[Endpoint], request: ProbeRequest
                ) -> tuple[list[EndpointRecord], list[Target]]:
    """
    One record per distinct endpoint (host, port and STARTTLS protocol), in a stable order,
    and the TLS endpoint targets of those that are probed.
    """
    groups: dict[tuple[str, int, str | None], list[Endpoint]] = {}
    for endpoint in sorted(found, key=lambda e: (e.source, e.host, e.port, e.via, e.origin)):
        key = (endpoint.host.lower(), endpoint.port, endpoint.starttls)
        groups.setdefault(key, []).append(endpoint)
    configured = _configured(request.configured)
    budget: dict[str, int] = {}
    records: list[EndpointRecord] = []
    targets: list[Target] = []
    for group in groups.values():
        primary, record = _decide_group(group, request, configured, budget)
        origins = tuple(dict.fromkeys(f"{e.source} {e.via} {e.origin}" for e in group))
        records.append(EndpointRecord(primary, record.probed, record.note,
                                      record.target.id if record.target else record.target_id,
                                      origins, record.reason))
        if record.target is not None:
            targets.append(record.target)
    _warn_unused_routes(found, request.sources)
    return records, targets


def _decide_group(group: Sequence[Endpoint], request: ProbeRequest,
                  configured: Mapping[tuple[str, int], str], budget: dict[str, int]
                  ) -> tuple[Endpoint, _Decision]:
    """
    Decide one endpoint found by one or more sources: the first opted-in source (in source
    order) that would probe it does; otherwise the first source's reason is reported.
    """
    candidates = [e for e in group if request.sources.get(e.source) is not None] or [group[0]]
    first: tuple[Endpoint, _Decision] | None = None
    for endpoint in candidates:
        setting = request.sources.get(endpoint.source)
        if setting is not None and setting.zone is not None:
            endpoint = replace(endpoint, zone=setting.zone)
        decision = _decide(endpoint, request, configured, budget)
        if decision.probed:
            return endpoint, decision
        first = first or (endpoint, decision)
    assert first is not None
    return first


def _warn_unused_routes(found: Sequence[Endpoint],
                        sources: Mapping[str, ProbeEndpointsConfig | None]) -> None:
    """Say which `connect_to` entries matched no endpoint their source found (a typo?)."""
    seen = {(e.source, e.address.lower()) for e in found}
    for source, setting in sources.items():
        for address in (setting.connect_to if setting else {}):
            if (source, address) not in seen:
                logger.warning("%s: %s.connect_to %s matches no endpoint found there", source,
                               PROBE_SETTING, address)


@dataclass(frozen=True)
class _Decision:
    note: str
    reason: str
    """An `ENDPOINT_REASONS` key: how the endpoint is probed, or why not."""
    probed: bool = False
    target: Target | None = None
    """The new TLS target, when the endpoint is probed in this scan's second phase."""
    target_id: str | None = None
    """The configured target that already probes the endpoint."""

    def __post_init__(self) -> None:
        if self.reason not in ENDPOINT_REASONS:
            raise ValueError(f"unknown endpoint reason {self.reason!r}")


def _configured(targets: Sequence[Target]) -> dict[tuple[str, int], str]:
    """(host name, port) to the configured target's id, for the host and the SNI name."""
    covered: dict[tuple[str, int], str] = {}
    for target in targets:
        config = target.config
        if isinstance(config, TlsEndpointConfig):
            for name in (config.host, config.server_name):
                if name:
                    covered.setdefault((name.lower(), config.port), target.id)
    return covered


def _decide(endpoint: Endpoint, request: ProbeRequest, configured: Mapping[tuple[str, int], str],
            budget: dict[str, int]) -> _Decision:
    """Whether one endpoint is probed, and why not."""
    already = configured.get((endpoint.host.lower(), endpoint.port))
    if already is not None and request.tls_checks:
        return _Decision(f"probed as the configured endpoint {already}", "configured", True,
                         target_id=already)
    setting = request.sources.get(endpoint.source)
    refusal = _refusal(endpoint, setting, request)
    if refusal is not None or setting is None:
        reason, words = refusal or ("off", "")
        return _Decision(f"not probed: {words}", reason)
    used = budget.get(endpoint.source, 0)
    if used >= setting.max_endpoints:
        return _Decision(f"not probed: {endpoint.source} reached {PROBE_SETTING}.max_endpoints "
                         f"({setting.max_endpoints})", "budget")
    budget[endpoint.source] = used + 1
    target = probe_target(endpoint, setting)
    config = target.config
    if isinstance(config, TlsEndpointConfig) and config.connect_to:
        return _Decision(f"probed through {config.connect_to} ({PROBE_SETTING}.connect_to)",
                         "connect_to", True, target)
    if isinstance(config, TlsEndpointConfig) and config.zone == "external" and setting.ca_bundle:
        return _Decision(f"probed (external: verified against the Mozilla store; "
                         f"{PROBE_SETTING}.ca_bundle serves internal endpoints)", "direct", True,
                         target)
    return _Decision("probed", "direct", True, target)


def _refusal(endpoint: Endpoint, setting: ProbeEndpointsConfig | None,
             request: ProbeRequest) -> tuple[str, str] | None:
    """Why an endpoint is not probed (its `ENDPOINT_REASONS` key and words), or None."""
    if not endpoint.tls:
        return "plaintext", "plaintext by configuration (judged by the configuration checks)"
    if endpoint.unprobeable:
        return "unprobeable", endpoint.unprobeable
    if setting is None:
        return "off", f"probing is off for {endpoint.source} (set {PROBE_SETTING})"
    if "*" in endpoint.host:
        return "wildcard", "a wildcard host names no single endpoint"
    host = endpoint.host.lower()
    if any(fnmatch.fnmatchcase(host, p.lower()) for p in setting.exclude) or not any(
            fnmatch.fnmatchcase(host, p.lower()) for p in setting.include):
        return "filtered", f"outside {PROBE_SETTING}.include and exclude of {endpoint.source}"
    if not request.tls_checks:
        return "no_tls_check", "no TLS endpoint check is selected"
    if request.interrupted:
        return "interrupted", INTERRUPTED
    return None


def probe_target(endpoint: Endpoint, setting: ProbeEndpointsConfig) -> Target:
    """
    The TLS endpoint target for a discovered endpoint: the host name is what SNI sends and the
    certificate must match; `connect_to` may send the connection elsewhere.
    """
    zone = setting.zone or endpoint.zone
    config = TlsEndpointConfig(
        name=endpoint.address, host=endpoint.host, port=endpoint.port, zone=zone,
        connect_to=setting.connect_to.get(endpoint.address.lower()), starttls=endpoint.starttls,
        ca_bundle=setting.ca_bundle if zone == "internal" else None)
    return Target(TargetKind.TLS_ENDPOINT, f"tls:{endpoint.source}/{endpoint.address}",
                  endpoint.address, config)
