"""
Transmission security of a TLS endpoint: the protocol versions it accepts and the certificate
chain it presents (45 CFR 164.312(e)(1), (e)(2)(i), (e)(2)(ii)).

Every TLS endpoint check judges the same probe: the first to collect runs it, the others find
it in the scan's memo, so every endpoint is probed once per scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hipaacheck.check import Policy
from hipaacheck.checks.tls.common import (
    OPERATIONS,
    TlsCheck,
    first_unknown,
    plaintext_failure,
    unverified,
    version_names,
    worst,
)
from hipaacheck.clients.tls import (
    LEGACY_VERSIONS,
    CertificateObservation,
    ServiceKind,
    TlsObservation,
    TlsVersion,
)
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Family,
    Finding,
    FindingBuilder,
    Severity,
    Standard,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

__all__ = ["CertificateChain", "ProtocolVersions"]


class ProtocolVersions(TlsCheck):
    """
    Fails an endpoint that accepts SSL 2.0, SSL 3.0, TLS 1.0 or TLS 1.1, or speaks plaintext.
    """

    meta = CheckMeta(
        id="tls.endpoint.protocols",
        title="TLS endpoint accepts only TLS 1.2 and 1.3",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(ii)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Probes which protocol versions the endpoint accepts, from SSL 2.0 to TLS 1.3. "
            "SSL 2.0/3.0 and TLS 1.0/1.1 are broken or deprecated (RFC 8996, NIST SP 800-52r2) "
            "and fail; TLS 1.2 without TLS 1.3 is a warning; a port that answers in plaintext "
            "fails, since nothing protects ePHI sent to it."),
        remediation=(
            "Set the server's minimum protocol version to TLS 1.2 and enable TLS 1.3 (for "
            "example `ssl_protocols TLSv1.2 TLSv1.3;` in nginx, `ssl_min_protocol_version = "
            "'TLSv1.2'` in PostgreSQL, an ELBSecurityPolicy-TLS13-1-2 policy on AWS load "
            "balancers); put TLS in front of any plaintext listener."),
        operations=OPERATIONS,
    )

    def evaluate(self, obs: TlsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Judge the accepted versions: legacy or plaintext fails, 1.2 without 1.3 warns."""
        build = self.findings(target)
        facts = [obs.protocols.get(v, _missing(v)) for v in TlsVersion]
        accepted = obs.accepted_versions()
        legacy = tuple(v for v in accepted if v in LEGACY_VERSIONS)
        unknown = first_unknown(facts)
        evidence = _protocol_evidence(obs, accepted, legacy)
        if obs.plaintext is True:
            return [plaintext_failure(build, obs, "no TLS protects data sent to it.")]
        if legacy:
            return [build.failed(obs.endpoint, f"Accepts {', '.join(_names(legacy))}, which "
                                 "must not carry ePHI.", evidence=evidence)]
        if unknown is not None:
            return [unverified(build, obs.endpoint, unknown, "protocol support", evidence)]
        return [self._judge_modern(build, obs.endpoint, accepted, evidence)]

    @staticmethod
    def _judge_modern(build: FindingBuilder[TlsObservation], resource: str,
                      accepted: tuple[TlsVersion, ...],
                      evidence: dict[str, EvidenceValue]) -> Finding:
        """Every version is known and none is legacy: PASS, WARN or FAIL on what remains."""
        if not accepted:
            return build.failed(resource, "Accepts no TLS version at all.", evidence=evidence)
        if TlsVersion.TLS_1_3 not in accepted:
            return build.warned(resource, "Accepts TLS 1.2 but not TLS 1.3.", evidence=evidence)
        return build.passed(resource, f"Accepts only {', '.join(_names(accepted))}.",
                            evidence=evidence)


def _names(versions: Sequence[TlsVersion]) -> tuple[str, ...]:
    return version_names(versions)


def _missing(version: TlsVersion) -> Unknown:
    return Unknown(UnknownReason.NOT_VISIBLE, f"{version.value} support was not probed")


def _protocol_evidence(obs: TlsObservation, accepted: tuple[TlsVersion, ...],
                       legacy: tuple[TlsVersion, ...]) -> dict[str, EvidenceValue]:
    unknown = tuple(v for v in TlsVersion if isinstance(obs.protocols.get(v), Unknown)
                    or v not in obs.protocols)
    return {
        "endpoint": obs.endpoint,
        "accepted_versions": _names(accepted),
        "legacy_versions": _names(legacy),
        "unknown_versions": _names(unknown),
        "lowest_version": accepted[0].value if accepted else None,
        "highest_version": accepted[-1].value if accepted else None,
        "plaintext": obs.plaintext if isinstance(obs.plaintext, bool) else None,
        "service": obs.service.value if isinstance(obs.service, ServiceKind) else None,
        "client_certificate_requested": obs.client_certificate_requested,
        "connections": obs.connections,
    }


class CertificateChain(TlsCheck):
    """
    Fails an endpoint whose certificate chain does not verify for its name against the store
    it should chain to (its configured CA bundle, else Mozilla's), or has expired.
    """

    meta = CheckMeta(
        id="tls.endpoint.certificate",
        title="TLS endpoint presents a valid, trusted certificate chain",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(i)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Retrieves the endpoint's certificate chain and validates it for the endpoint's "
            "name against its configured CA bundle (internal endpoints) or the Mozilla root "
            "store. An untrusted, mismatched or expired chain lets a man in the middle read or "
            "alter ePHI in transit; a chain close to expiry is a warning."),
        remediation=(
            "Serve a certificate issued by the intended CA, whose subjectAltName covers the "
            "name clients use, together with its intermediate certificates; renew it before it "
            "expires (automate renewal, e.g. ACME or AWS Certificate Manager)."),
        operations=OPERATIONS,
    )

    def evaluate(self, obs: TlsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Judge the worst certificate deployment against the intended store and the date."""
        build = self.findings(target)
        if obs.plaintext is True:
            return [plaintext_failure(build, obs, "no certificate authenticates it.")]
        if isinstance(obs.certificates, Unknown):
            return [unverified(build, obs.endpoint, obs.certificates, "the certificate chain")]
        if not obs.certificates:
            return [build.failed(obs.endpoint, "The server presents no certificate, so clients "
                                 "cannot authenticate it.", evidence={"endpoint": obs.endpoint})]
        return [worst([_judge_certificate(build, obs, c, policy) for c in obs.certificates])]


def _days(end: datetime, start: datetime) -> int:
    """Whole days from `start` to `end`, rounded down (negative once `end` has passed)."""
    return int((end - start).total_seconds() // 86400)


def _certificate_evidence(obs: TlsObservation,
                          cert: CertificateObservation) -> dict[str, EvidenceValue]:
    return {
        "endpoint": obs.endpoint,
        "server_name": obs.server_name,
        "store": cert.store,
        "verified": cert.verified,
        "validation_error": cert.validation_error,
        "hostname_matches": cert.hostname_matches,
        "has_san": cert.has_san,
        "not_after": cert.not_after.isoformat(),
        "days_to_expiry": _days(cert.not_after, obs.observed_at),
        "issuer_cn": cert.issuer_cn,
        "chain_length": cert.chain_length,
        "deployments": len(obs.certificates) if isinstance(obs.certificates, tuple) else 0,
    }


def _judge_certificate(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                       cert: CertificateObservation, policy: Policy) -> Finding:
    """One deployment's verdict: expired, not yet valid, mismatched, untrusted, expiring, fine."""
    evidence = _certificate_evidence(obs, cert)
    days_left = _days(cert.not_after, obs.observed_at)
    resource = obs.endpoint
    if cert.not_after <= obs.observed_at:
        ago = _days(obs.observed_at, cert.not_after)
        return build.failed(resource, f"The certificate expired {ago} day(s) ago.",
                            evidence=evidence)
    if cert.not_before > obs.observed_at:
        return build.failed(resource, "The certificate is not valid yet.", evidence=evidence)
    if not cert.has_san:
        return build.failed(resource, "The certificate has no subjectAltName, so it covers no "
                            "name a client checks.", evidence=evidence)
    if not cert.hostname_matches:
        return build.failed(resource, f"The certificate does not cover {obs.server_name}.",
                            evidence=evidence)
    if not cert.verified:
        kind = (cert.validation_error or "invalid_chain").replace("_", " ")
        return build.failed(resource, f"The chain does not verify against {_store(cert.store)} "
                            f"({kind}).", evidence=evidence)
    if days_left < policy.cert_expiry_warning_days:
        return build.warned(resource, f"The certificate expires in {days_left} day(s).",
                            evidence=evidence)
    return build.passed(resource, f"The chain verifies against {_store(cert.store)} and "
                        f"expires in {days_left} days.", evidence=evidence)


def _store(label: str) -> str:
    """The trust store named as a sentence reads it: Mozilla's, or the configured bundle."""
    return "the Mozilla trust store" if label == "Mozilla" else f"the {label}"
