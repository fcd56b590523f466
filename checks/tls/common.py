"""
What the TLS endpoint checks share: the once-per-scan probe, the declared operations, and the
small judgements every one of them makes first (plaintext, unknown facts, the worst verdict).
"""

from __future__ import annotations

from collections.abc import Sequence

from hipaacheck.check import Check, CheckContext
from hipaacheck.clients.tls import ServiceKind, TlsObservation, probe_endpoint
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.model import (
    EvidenceValue,
    Finding,
    FindingBuilder,
    Operation,
    Status,
    System,
    Target,
    Unknown,
)

_SHARED_PROBE = "shared by every TLS endpoint check: each endpoint is probed once per scan"
OPERATIONS = (
    Operation(System.TLS, "TCP connect and one ClientHello (pre-probe)",
              "tells a closed, hung or plaintext port (HTTP, a banner, PostgreSQL without TLS) "
              "from TLS; with `starttls: postgres`, an SSLRequest first; " + _SHARED_PROBE),
    Operation(System.TLS, "TLS handshakes (protocol versions)",
              "one handshake per version from SSL 2.0 to TLS 1.3, each offering every suite; "
              + _SHARED_PROBE),
    Operation(System.TLS, "TLS handshakes (cipher suite classes and key exchange)",
              "per accepted version, offers of the weak classes until refused, then one DHE "
              "offer and one TLS 1.2 AEAD offer; " + _SHARED_PROBE),
    Operation(System.TLS, "TLS handshakes (certificate chains)",
              "chains from the handshakes above plus one TLS 1.2 offer of the other "
              "authentication type; validated offline; " + _SHARED_PROBE),
)
"""Every check declares the same operations: they all judge the one shared probe."""

_SEVERITY_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.UNVERIFIED: 2, Status.PASS: 3}

_PLAINTEXT_REASONS = {
    ServiceKind.PLAINTEXT_HTTP: "The port answers plain HTTP",
    ServiceKind.POSTGRES_NO_TLS: "PostgreSQL answered that it has no TLS (SSLRequest: N)",
    ServiceKind.STARTTLS_REFUSED: "The server refused to upgrade the connection to TLS",
    ServiceKind.PLAINTEXT_OTHER: "The port answers in plaintext",
}


def collect_tls(ctx: CheckContext, target: Target) -> TlsObservation:
    """
    The probe of `target`'s endpoint, run once per scan and shared through the memo.
    """
    endpoint = target.config
    if not isinstance(endpoint, TlsEndpointConfig):
        raise TypeError(f"target {target.id} carries no TLS endpoint configuration")
    return ctx.memo.get(("tls", target.id),
                        lambda: probe_endpoint(endpoint, timeout=ctx.timeout, clock=ctx.clock))


class TlsCheck(Check[TlsObservation]):
    """
    Base of the checks that judge one endpoint's probe: they share it through the memo.
    """

    def collect(self, ctx: CheckContext, target: Target) -> TlsObservation:
        """Probe the endpoint (once per scan, shared with the other TLS checks)."""
        return collect_tls(ctx, target)


def first_unknown(facts: Sequence[object]) -> Unknown | None:
    """The first `Unknown` among `facts`, or None when every fact was observed."""
    return next((f for f in facts if isinstance(f, Unknown)), None)


def unverified(build: FindingBuilder[TlsObservation], resource: str, unknown: Unknown,
               what: str, evidence: dict[str, EvidenceValue] | None = None) -> Finding:
    """An UNVERIFIED finding that keeps the evidence gathered so far."""
    return build.make(Status.UNVERIFIED, resource, f"Could not observe {what}: {unknown.detail}",
                      evidence=evidence, needs=unknown.needs, unknown_reason=unknown.reason)


def plaintext_reason(obs: TlsObservation) -> str:
    """What the port said instead of TLS, as the start of a sentence."""
    service = obs.service if isinstance(obs.service, ServiceKind) else None
    return _PLAINTEXT_REASONS.get(service or ServiceKind.PLAINTEXT_OTHER,
                                  _PLAINTEXT_REASONS[ServiceKind.PLAINTEXT_OTHER])


def plaintext_failure(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                      consequence: str) -> Finding:
    """The FAIL for a port that should carry TLS and answers in plaintext."""
    service = obs.service.value if isinstance(obs.service, ServiceKind) else None
    return build.failed(obs.endpoint, f"{plaintext_reason(obs)}: {consequence}",
                        evidence={"endpoint": obs.endpoint, "plaintext": True,
                                  "service": service})


def worst(findings: Sequence[Finding]) -> Finding:
    """The most severe of several findings on one resource (FAIL, WARN, UNVERIFIED, PASS)."""
    return min(findings, key=lambda f: _SEVERITY_ORDER.get(f.status, 0))


def version_names(versions: Sequence[object]) -> tuple[str, ...]:
    """The display names of `TlsVersion` values."""
    return tuple(str(getattr(v, "value", v)) for v in versions)
