"""
What a TLS endpoint's certificates are made of (45 CFR 164.312(e)(1), (e)(2)(i)): key strength
and signature hashes, usages and lifetime.

`tls.endpoint.certificate` judges whether the chain verifies; these checks judge what a chain
that verifies can still get wrong. sslyze's verifier accepts RSA-1024 keys and says nothing of
lifetimes, so the checks read the certificates themselves (through the shared probe).
"""

from __future__ import annotations

from collections.abc import Sequence

from hipaacheck.check import Policy
from hipaacheck.checks.tls.common import (
    OPERATIONS,
    TlsCheck,
    plaintext_failure,
    unverified,
    worst,
)
from hipaacheck.clients.tls import CertificateObservation, ChainCertificate, TlsObservation
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

__all__ = ["MIN_KEY_BITS", "PUBLIC_MAX_LIFETIME_DAYS", "WEAK_SIGNATURE_HASHES",
           "CertificateProfile", "CertificateStrength"]

MIN_KEY_BITS = {"RSA": 2048, "DSA": 2048, "EC": 256, "Ed25519": 256, "Ed448": 448}
"""The smallest acceptable key per type (NIST SP 800-52r2, 800-57: 112-bit security)."""
WEAK_SIGNATURE_HASHES = frozenset({"sha1", "md5", "md4", "md2"})
"""Signature hashes whose collisions are practical or close to it."""
PUBLIC_MAX_LIFETIME_DAYS = 398
"""
The CA/Browser Forum's maximum leaf lifetime for publicly trusted CAs.

NOTE: ballot SC-081 lowers it in steps (200 days for certificates issued from March 2026,
then 100 and 47); issue 3 asks for 398, which no public CA may exceed in any case.
"""


def _deployments(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                 what: str) -> list[Finding] | tuple[CertificateObservation, ...]:
    """
    The deployments to judge, or the findings every certificate check starts with instead:
    plaintext, unknown, no certificate sent.
    """
    if obs.plaintext is True:
        return [plaintext_failure(build, obs, "no certificate authenticates it.")]
    if isinstance(obs.certificates, Unknown):
        return [unverified(build, obs.endpoint, obs.certificates, what)]
    if not obs.certificates:
        return [build.failed(obs.endpoint, "The server presents no certificate, so clients "
                             "cannot authenticate it.", evidence={"endpoint": obs.endpoint})]
    return obs.certificates


def _label(cert: ChainCertificate) -> str:
    return "the leaf" if cert.position == 0 else f"chain certificate {cert.position}"


def _weak_key(cert: ChainCertificate) -> str | None:
    """A description of `cert`'s key when it is too small, else None."""
    minimum = MIN_KEY_BITS.get(cert.key_type)
    if minimum is None or cert.key_bits >= minimum:
        return None
    return f"{_label(cert)} has a {cert.key_type}-{cert.key_bits} key"


def _weak_signature(cert: ChainCertificate) -> str | None:
    """A description of `cert`'s signature when its hash is weak, else None."""
    if cert.signature_hash not in WEAK_SIGNATURE_HASHES:
        return None
    return f"{_label(cert)} is signed with {cert.signature_hash.upper()}"


class CertificateStrength(TlsCheck):
    """
    Fails a chain with a weak key (RSA or DSA below 2048 bits, EC below P-256) or a SHA-1 (or
    MD5) signature on the leaf or an intermediate.
    """

    meta = CheckMeta(
        id="tls.endpoint.certificate_strength",
        title="TLS endpoint certificates use strong keys and signatures",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(i)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Reads the key and signature of every certificate the endpoint sends (a root's own "
            "signature excepted). RSA or DSA keys below 2048 bits and EC keys below P-256 can "
            "be factored or broken within reach of a funded attacker; SHA-1 and MD5 signatures "
            "can be forged through collisions. Either fails."),
        remediation=(
            "Reissue the certificate with an RSA-2048 (or larger) or ECDSA P-256 (or larger) "
            "key, signed with SHA-256 or stronger, by a CA whose intermediates meet the same "
            "bar."),
        operations=OPERATIONS,
    )

    def evaluate(self, obs: TlsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Judge every deployment's chain; the worst one is the endpoint's verdict."""
        build = self.findings(target)
        deployments = _deployments(build, obs, "the certificate chain")
        if isinstance(deployments, list):
            return deployments
        return [worst([_judge_strength(build, obs, c) for c in deployments])]


def _judge_strength(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                    cert: CertificateObservation) -> Finding:
    """One deployment: weak keys or signatures fail, unreadable ones are unverified."""
    judged = [c for c in cert.chain if c.position == 0 or not c.self_signed]
    problems = [p for c in judged for p in (_weak_key(c), _weak_signature(c)) if p]
    leaf = cert.chain[0] if cert.chain else None
    evidence: dict[str, EvidenceValue] = {
        "endpoint": obs.endpoint,
        "leaf_key": f"{leaf.key_type}-{leaf.key_bits}" if leaf else None,
        "leaf_signature_hash": leaf.signature_hash if leaf else None,
        "weaknesses": tuple(problems),
        "chain_length": cert.chain_length,
    }
    if problems:
        return build.failed(obs.endpoint, "In the certificate chain, " + "; ".join(problems)
                            + ".", evidence=evidence)
    unreadable = [c for c in judged if c.key_type == "unknown" or c.signature_hash == "unknown"]
    if not judged or unreadable:
        unknown = Unknown(UnknownReason.UNPARSEABLE, "a certificate's key or signature "
                          "algorithm is not one hipaacheck can read")
        return unverified(build, obs.endpoint, unknown, "the certificate's key strength",
                          evidence)
    return build.passed(obs.endpoint, "Every certificate sent has a strong key and signature.",
                        evidence=evidence)


class CertificateProfile(TlsCheck):
    """
    Fails a leaf whose extended key usage excludes serverAuth; warns on a leaf without one,
    and on a publicly trusted leaf valid for more than 398 days.
    """

    meta = CheckMeta(
        id="tls.endpoint.certificate_profile",
        title="TLS endpoint certificate is issued for server authentication, with a sound "
              "lifetime",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(i)"),
        severity=Severity.MEDIUM,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Reads the leaf's extended key usage and validity period. A usage that excludes "
            "serverAuth fails (clients must refuse it for a server); no extended key usage at "
            "all is a warning (RFC 5280 clients accept it, the CA/Browser Forum baseline does "
            "not); a publicly trusted leaf valid for more than 398 days is a warning, as no "
            "public CA may issue one and long-lived keys widen the exposure of a compromise."),
        remediation=(
            "Issue server certificates with the serverAuth extended key usage and, from a "
            "public CA, a lifetime of 398 days or less (automate renewal, e.g. ACME or AWS "
            "Certificate Manager)."),
        operations=OPERATIONS,
    )

    def evaluate(self, obs: TlsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Judge every deployment's leaf; the worst one is the endpoint's verdict."""
        build = self.findings(target)
        deployments = _deployments(build, obs, "the certificate")
        if isinstance(deployments, list):
            return deployments
        return [worst([_judge_profile(build, obs, c) for c in deployments])]


def _judge_profile(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                   cert: CertificateObservation) -> Finding:
    """One deployment's leaf: usage first, then lifetime."""
    evidence: dict[str, EvidenceValue] = {
        "endpoint": obs.endpoint,
        "server_auth_eku": cert.server_auth_eku,
        "lifetime_days": cert.lifetime_days,
        "public_ca": cert.public_ca,
        "store": cert.store,
    }
    if cert.server_auth_eku is False:
        return build.failed(obs.endpoint, "The leaf's extended key usage does not allow server "
                            "authentication.", evidence=evidence)
    warnings = []
    if cert.server_auth_eku is None:
        warnings.append("has no extended key usage (serverAuth expected)")
    if cert.public_ca and cert.lifetime_days > PUBLIC_MAX_LIFETIME_DAYS:
        warnings.append(f"is publicly trusted and valid for {cert.lifetime_days} days "
                        f"(more than {PUBLIC_MAX_LIFETIME_DAYS})")
    if warnings:
        return build.warned(obs.endpoint, f"The leaf {' and '.join(warnings)}.",
                            evidence=evidence)
    return build.passed(obs.endpoint, "The leaf is issued for server authentication with a "
                        "sound lifetime.", evidence=evidence)
