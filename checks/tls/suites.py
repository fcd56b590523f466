"""
Cipher suites and key exchange of a TLS endpoint (45 CFR 164.312(e)(1), (e)(2)(ii)).

NIST SP 800-52r2 rules out suites without encryption or authentication, export-grade, RC4,
DES and 3DES suites, and finite-field Diffie-Hellman groups below 2048 bits; it prefers
forward secrecy (no static RSA key transport) and AEAD ciphers. The probe settles each class
with as few handshakes as it can (see `hipaacheck.clients.tls`); this check judges the result.
"""

from __future__ import annotations

from collections.abc import Sequence

from hipaacheck.check import Policy
from hipaacheck.checks.tls.common import (
    OPERATIONS,
    TlsCheck,
    first_unknown,
    plaintext_failure,
    unverified,
)
from hipaacheck.clients.tls import (
    DH_TOO_SMALL_TO_MEASURE,
    WEAK_SUITE_CLASSES,
    SuiteClass,
    TlsObservation,
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

__all__ = ["MIN_DH_BITS", "CipherSuites"]

MIN_DH_BITS = 2048
"""The smallest finite-field DH group NIST SP 800-52r2 allows for DHE suites."""


def _class_fact(obs: TlsObservation, suite_class: SuiteClass) -> object:
    return obs.suite_classes.get(suite_class, Unknown(
        UnknownReason.NOT_VISIBLE, f"{suite_class.value} suites were not probed"))


def _dh_text(bits: int) -> str:
    if bits == DH_TOO_SMALL_TO_MEASURE:
        return "a DHE group too small for the probe's own client to accept"
    return f"a {bits}-bit DHE group"


class CipherSuites(TlsCheck):
    """
    Fails weak suites and small DH groups; warns on static RSA and CBC-only TLS 1.2.
    """

    meta = CheckMeta(
        id="tls.endpoint.cipher_suites",
        title="TLS endpoint negotiates only strong cipher suites and key exchange",
        family=Family.TRANSMISSION,
        standard=Standard.TRANSMISSION,
        citations=("164.312(e)(1)", "164.312(e)(2)(ii)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.TLS_ENDPOINT,
        description=(
            "Probes whether the endpoint accepts any NULL, anonymous, EXPORT, RC4, DES or 3DES "
            "suite, or a Diffie-Hellman group below 2048 bits (each fails: the traffic can be "
            "read or forged), and whether it still uses static RSA key transport or offers "
            "only CBC suites on TLS 1.2 (warnings: no forward secrecy, no AEAD)."),
        remediation=(
            "Restrict TLS 1.2 to ECDHE (or DHE with a 2048-bit or larger group) with AES-GCM or "
            "ChaCha20-Poly1305, e.g. nginx `ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;`, "
            "PostgreSQL `ssl_ciphers = 'ECDHE+AESGCM'`, an ELBSecurityPolicy-TLS13-1-2 "
            "policy; remove `ssl_dh_params` files under 2048 bits."),
        operations=OPERATIONS,
    )

    def evaluate(self, obs: TlsObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """Weak classes or a small group fail; unknowns are unverified; then the warnings."""
        build = self.findings(target)
        if obs.plaintext is True:
            return [plaintext_failure(build, obs, "no cipher protects data sent to it.")]
        facts = {c: _class_fact(obs, c) for c in SuiteClass}
        weak = tuple(c.value for c in WEAK_SUITE_CLASSES if facts[c] is True)
        dh_bits = obs.dh_group_bits if isinstance(obs.dh_group_bits, int) else None
        small_dh = dh_bits is not None and dh_bits < MIN_DH_BITS
        evidence = _evidence(obs, facts, weak)
        problems = [f"accepts {', '.join(weak)} suites"] if weak else []
        if small_dh and dh_bits is not None:
            problems.append(f"offers {_dh_text(dh_bits)}")
        if problems:
            return [build.failed(obs.endpoint, f"The endpoint {' and '.join(problems)}.",
                                 evidence=evidence)]
        unknown = first_unknown([*facts.values(), obs.dh_group_bits, obs.tls12_aead])
        if unknown is not None:
            return [unverified(build, obs.endpoint, unknown, "the cipher suites", evidence)]
        return [self._judge_sound(build, obs, facts, evidence)]

    @staticmethod
    def _judge_sound(build: FindingBuilder[TlsObservation], obs: TlsObservation,
                     facts: dict[SuiteClass, object],
                     evidence: dict[str, EvidenceValue]) -> Finding:
        """Every fact is known and nothing is weak: WARN for static RSA or CBC-only, else PASS."""
        warnings = []
        if facts[SuiteClass.STATIC_RSA] is True:
            warnings.append("accepts static RSA key exchange (no forward secrecy)")
        if obs.tls12_aead is False:
            warnings.append("offers no AEAD suite on TLS 1.2 (CBC only)")
        if warnings:
            return build.warned(obs.endpoint, f"The endpoint {' and '.join(warnings)}.",
                                evidence=evidence)
        return build.passed(obs.endpoint, "The endpoint accepts no weak suite, no static RSA "
                            "and no DHE group below 2048 bits.", evidence=evidence)


def _evidence(obs: TlsObservation, facts: dict[SuiteClass, object],
              weak: tuple[str, ...]) -> dict[str, EvidenceValue]:
    unknown = tuple(c.value for c, f in facts.items() if isinstance(f, Unknown))
    samples = tuple(sorted({s for suites in obs.cipher_suites.values() for s in suites}))
    static_rsa = facts[SuiteClass.STATIC_RSA]
    return {
        "endpoint": obs.endpoint,
        "weak_classes": weak,
        "unknown_classes": unknown,
        "static_rsa": static_rsa if isinstance(static_rsa, bool) else None,
        "dh_group_bits": obs.dh_group_bits if isinstance(obs.dh_group_bits, int) else None,
        "tls12_aead": obs.tls12_aead if isinstance(obs.tls12_aead, bool) else None,
        "negotiated_suites": samples,
        "connections": obs.connections,
    }
