"""
The TLS prober: a short pre-probe, then about ten nassl handshakes per endpoint.

sslyze's cipher-suite scans try every suite of every version one connection at a time (some 540
connections per endpoint). The transmission checks need far less: which versions are accepted,
whether any suite of each weak class is accepted, the smallest DHE group, whether TLS 1.2 has an
AEAD suite, and the certificate chains. So a probe makes, in order:

1. the pre-probe: one ClientHello from nassl's modern OpenSSL offering TLS 1.0 to 1.3 and every
   suite. Its reply tells apart a closed port, a port that accepts and never answers (the
   probe stops there: a hung endpoint costs one timeout), a plaintext service (HTTP or another
   banner; PostgreSQL answering `N` to SSLRequest), and TLS. When it is accepted, the chosen
   version is the highest the server accepts, and versions above it are not accepted;
2. one handshake per remaining version, offering every suite of that version (SSL 2.0 to
   TLS 1.1 through nassl's legacy OpenSSL, TLS 1.2 through the modern one and then the legacy
   one, TLS 1.3 through the modern one);
3. per accepted version up to TLS 1.2, a weak-class elimination: offer every suite of every
   class not yet seen accepted (NULL, anonymous, EXPORT, RC4, DES, 3DES, static RSA); a
   rejection settles them all, an acceptance settles the chosen suite's classes and the offer
   shrinks. One handshake when the server accepts none of them;
4. one handshake offering only DHE suites (the group size), one offering only TLS 1.2 AEAD
   suites (skipped when TLS 1.2 already chose one), and one TLS 1.2 handshake offering the
   other authentication type (RSA or ECDSA), to find a second certificate deployment.

Handshakes of one phase run in parallel (at most `PARALLEL_HANDSHAKES` at once). Chains are
validated with sslyze's trust-store code against the endpoint's intended store only (its CA
bundle, else Mozilla's), at the probe's clock. This prober never sends attack-shaped probes
(Heartbleed, ROBOT, CCS injection); `tls.endpoint.attack_probes` does, and only to endpoints
whose `attack_probes` is true.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from hipaacheck.clients.tls_certs import (
    TrustStores,
    ca_bundle_problem,
    hostname_matches,
    is_ip,
    observe_chain,
)
from hipaacheck.clients.tls_handshake import Dialer, Handshake, Offer, Outcome, location
from hipaacheck.clients.tls_handshake import handshake as run_handshake
from hipaacheck.clients.tls_model import (
    CUSTOM_STORE,
    DH_TOO_SMALL_TO_MEASURE,
    LEGACY_VERSIONS,
    MOZILLA_STORE,
    WEAK_SUITE_CLASSES,
    CertificateObservation,
    ChainCertificate,
    ServiceKind,
    SuiteClass,
    TlsObservation,
    TlsVersion,
)
from hipaacheck.clients.tls_suites import (
    EVERY_SUITE,
    MODERN_LEVEL,
    catalogue,
    is_aead,
    suite_classes,
)
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.model import Fact, Unknown, UnknownReason

__all__ = [
    "CUSTOM_STORE",
    "DH_TOO_SMALL_TO_MEASURE",
    "LEGACY_VERSIONS",
    "MOZILLA_STORE",
    "PARALLEL_HANDSHAKES",
    "WEAK_SUITE_CLASSES",
    "CertificateObservation",
    "ChainCertificate",
    "ServiceKind",
    "SuiteClass",
    "TlsObservation",
    "TlsVersion",
    "ca_bundle_problem",
    "hostname_matches",
    "probe_endpoint",
]

logger = logging.getLogger(__name__)

PARALLEL_HANDSHAKES = 4
"""At most this many connections to one endpoint are open at once."""
BUDGET_TIMEOUTS = 4
"""An endpoint's whole probe is bounded by this many per-connection timeouts by default."""

PRE_PROBE = Offer(None, False, EVERY_SUITE + MODERN_LEVEL, "pre-probe")
_DESCENDING = (TlsVersion.TLS_1_2, TlsVersion.TLS_1_1, TlsVersion.TLS_1_0, TlsVersion.SSL_3_0,
               TlsVersion.SSL_2_0)
"""The versions that carry TLS 1.2-style suites, newest first."""
_ORDER = {v: i for i, v in enumerate(TlsVersion)}


def _version_offers(version: TlsVersion) -> tuple[Offer, ...]:
    """The offers that decide whether `version` is accepted, tried in turn."""
    label = f"{version.value} support"
    if version == TlsVersion.TLS_1_3:
        return (Offer(version, False, "", label),)
    legacy = Offer(version, True, EVERY_SUITE, label)
    if version == TlsVersion.TLS_1_2:
        return (Offer(version, False, EVERY_SUITE + MODERN_LEVEL, label), legacy)
    return (legacy,)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _uniform(fact: Unknown) -> dict[TlsVersion, Fact[bool]]:
    return {v: fact for v in TlsVersion}


class _Probe:
    """
    One endpoint's probe: the dialer, the deadline, and every handshake made so far.
    """

    def __init__(self, endpoint: TlsEndpointConfig, dialer: Dialer, timeout: float,
                 budget: float, observed_at: datetime) -> None:
        self.endpoint = endpoint
        self.dialer = dialer
        self.timeout = timeout
        self.budget = budget
        self.ends = time.monotonic() + budget
        self.observed_at = observed_at
        self.where = location(endpoint.host, endpoint.port)
        self.server_name = endpoint.server_name or endpoint.host
        self.handshakes: list[Handshake] = []
        self._lock = threading.Lock()

    def run(self, offer: Offer, *, sniff: bool = False) -> Handshake:
        """One handshake, within both its own timeout and the endpoint's deadline."""
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            unknown = Unknown(UnknownReason.TIMEOUT, f"the probe of {self.where} used up its "
                              f"{self.budget:g} s deadline", needs=f"a responsive {self.where}")
            return Handshake(offer, Outcome.TIMEOUT, unknown=unknown)
        result = run_handshake(self.dialer, offer, min(self.timeout, remaining), sniff=sniff)
        with self._lock:
            self.handshakes.append(result)
        logger.debug("%s: %s %s", self.where, offer.label, result.outcome.value)
        return result

    def made(self) -> list[Handshake]:
        """A snapshot of the handshakes made so far."""
        with self._lock:
            return list(self.handshakes)

    # Phase 2: protocol versions

    def versions(self, pre: Handshake, pool: ThreadPoolExecutor) -> dict[TlsVersion, Fact[bool]]:
        """Whether each version is accepted, from the pre-probe and one probe per version."""
        known: dict[TlsVersion, Fact[bool]] = {}
        if pre.accepted and pre.version is not None:
            # A server offered TLS 1.0 to 1.3 picks the highest version it accepts.
            known = {v: False for v in TlsVersion if _ORDER[v] > _ORDER[pre.version]}
            known[pre.version] = True
        todo = [v for v in TlsVersion if v not in known]
        for version, fact in zip(todo, pool.map(self._version, todo)):
            known[version] = fact
        return known

    def _version(self, version: TlsVersion) -> Fact[bool]:
        for offer in _version_offers(version):
            result = self.run(offer)
            if result.accepted:
                return True
            if result.outcome == Outcome.PLAINTEXT:
                return Unknown(UnknownReason.UNPARSEABLE, f"{self.where} answered a "
                               f"{version.value} ClientHello in plaintext")
            if result.unknown is not None:
                return result.unknown
        return False

    # Phase 3: suites, key exchange and certificates

    def suite_classes(self, versions: dict[TlsVersion, Fact[bool]],
                      seen: Sequence[Handshake]) -> dict[SuiteClass, Fact[bool]]:
        """Whether a suite of each class is accepted at any version, by elimination."""
        found: set[SuiteClass] = set()
        for result in seen:
            found |= self._classes_of(result)
        problem = next((f for v in _DESCENDING if isinstance(f := versions[v], Unknown)), None)
        for version in (v for v in _DESCENDING if versions[v] is True):
            problem = self._eliminate(version, found) or problem
        return {c: True if c in found else (problem or False) for c in SuiteClass}

    def _classes_of(self, result: Handshake) -> frozenset[SuiteClass]:
        if not result.accepted or result.version is None or result.cipher is None:
            return frozenset()
        iana = catalogue().iana_name(result.version, result.cipher)
        return suite_classes(iana) if iana else frozenset()

    def _eliminate(self, version: TlsVersion, found: set[SuiteClass]) -> Unknown | None:
        """Offer every class not yet found at `version` until the server refuses them all."""
        while wanted := [c for c in SuiteClass if c not in found]:
            ciphers = catalogue().offer(True, version, wanted)
            if ciphers is None:
                return None
            result = self.run(Offer(version, True, ciphers, f"{version.value} weak classes"))
            if result.outcome in (Outcome.REJECTED, Outcome.SILENT):
                return None
            new = self._classes_of(result) & set(wanted)
            if not new:
                return result.unknown or Unknown(
                    UnknownReason.UNPARSEABLE, f"could not tell which {version.value} suite "
                    f"{self.where} chose from the weak classes")
            found |= new
        return None

    def dh_group(self, versions: dict[TlsVersion, Fact[bool]],
                 seen: Sequence[Handshake]) -> Fact[int | None]:
        """The smallest finite-field DH group seen; None when no DHE suite is accepted."""
        sizes = [r.dh_bits for r in seen if r.dh_bits is not None]
        top = next((v for v in _DESCENDING if versions[v] is True), None)
        if top is None:
            problem = next((f for v in _DESCENDING if isinstance(f := versions[v], Unknown)), None)
            return problem if problem is not None else (min(sizes) if sizes else None)
        legacy = top != TlsVersion.TLS_1_2
        ciphers = catalogue().offer_where(legacy, top, dhe=True)
        if ciphers is not None:
            result = self.run(Offer(top, legacy, ciphers, f"{top.value} DHE suites"))
            if result.accepted and result.dh_bits is None:
                return Unknown(UnknownReason.UNPARSEABLE, "the server accepted a DHE suite but "
                               "its group size could not be read")
            if result.accepted and result.dh_bits is not None:
                sizes.append(result.dh_bits)
            elif result.unknown is not None:
                return result.unknown
        return min(sizes) if sizes else None

    def tls12_aead(self, versions: dict[TlsVersion, Fact[bool]],
                   seen: Sequence[Handshake]) -> Fact[bool | None]:
        """Whether TLS 1.2 offers an AEAD suite; None when TLS 1.2 is not accepted."""
        fact = versions[TlsVersion.TLS_1_2]
        if fact is not True:
            return fact if isinstance(fact, Unknown) else None
        for result in seen:
            if result.accepted and result.version == TlsVersion.TLS_1_2 and result.cipher:
                iana = catalogue().iana_name(TlsVersion.TLS_1_2, result.cipher)
                if iana and is_aead(iana):
                    return True
        ciphers = catalogue().offer_where(False, TlsVersion.TLS_1_2, aead=True)
        if ciphers is None:
            return Unknown(UnknownReason.NOT_SUPPORTED, "nassl offers no TLS 1.2 AEAD suite")
        result = self.run(Offer(TlsVersion.TLS_1_2, False, ciphers, "TLS 1.2 AEAD suites"))
        if result.accepted:
            return True
        if result.outcome in (Outcome.REJECTED, Outcome.SILENT):
            return False
        return result.unknown or Unknown(UnknownReason.UNPARSEABLE, "the TLS 1.2 AEAD probe "
                                         "was answered in plaintext")

    def other_certificate(self, versions: dict[TlsVersion, Fact[bool]],
                          seen: Sequence[Handshake]) -> None:
        """A TLS 1.2 handshake with the authentication type not yet seen, for a second leaf."""
        if versions[TlsVersion.TLS_1_2] is not True:
            return
        kinds = {_leaf_kind(r.chain[0]) for r in seen if r.accepted and r.chain}
        wanted = ["aECDSA"] if kinds == {"RSA"} else ["aRSA"]
        if not kinds:
            wanted = ["aRSA", "aECDSA"]
        for auth in wanted:
            self.run(Offer(TlsVersion.TLS_1_2, False, auth + MODERN_LEVEL,
                           f"TLS 1.2 {auth} certificate"))

    def certificates(self, stores: TrustStores | Unknown
                     ) -> Fact[tuple[CertificateObservation, ...]]:
        """Every distinct leaf the server presented, each validated against the intended store."""
        if isinstance(stores, Unknown):
            return stores
        chains: dict[str, tuple[str, ...]] = {}
        for result in self.made():
            if result.accepted and result.chain and result.chain[0] not in chains:
                chains[result.chain[0]] = result.chain
        observed = []
        for chain in chains.values():
            item = observe_chain(chain, self.server_name, stores, self.observed_at)
            if isinstance(item, Unknown):
                return item
            observed.append(item)
        return tuple(observed)

    def suites_seen(self) -> dict[TlsVersion, tuple[str, ...]]:
        """IANA names of the suites negotiated per version."""
        seen: dict[TlsVersion, set[str]] = {}
        for result in self.made():
            if result.accepted and result.version is not None and result.cipher:
                iana = catalogue().iana_name(result.version, result.cipher) or result.cipher
                seen.setdefault(result.version, set()).add(iana)
        return {v: tuple(sorted(names)) for v, names in seen.items()}


def _leaf_kind(pem: str) -> str:
    """`RSA` for a leaf with an RSA key, `other` for any other key."""
    try:
        key = x509.load_pem_x509_certificate(pem.encode("ascii")).public_key()
    except ValueError:
        return "other"
    return "RSA" if isinstance(key, rsa.RSAPublicKey) else "other"


def _unobservable(probe: _Probe, unknown: Unknown, service: Fact[ServiceKind] | None = None,
                  plaintext: Fact[bool] | None = None) -> TlsObservation:
    """An observation whose every fact is `unknown` (the service may still be known)."""
    return TlsObservation(
        endpoint=probe.where, server_name=probe.server_name, observed_at=probe.observed_at,
        service=service if service is not None else unknown, protocols=_uniform(unknown),
        cipher_suites={}, plaintext=plaintext if plaintext is not None else unknown,
        suite_classes={c: unknown for c in SuiteClass}, dh_group_bits=unknown,
        tls12_aead=unknown, certificates=unknown,
        client_certificate_requested=any(r.client_cert_requested for r in probe.made()),
        connections=probe.dialer.connections)


def _plaintext(probe: _Probe, service: ServiceKind) -> TlsObservation:
    """The port answered, but not in TLS: no version is accepted and nothing else applies."""
    none = Unknown(UnknownReason.NOT_SUPPORTED, f"{probe.where} speaks no TLS")
    observed = _unobservable(probe, none, service=service, plaintext=True)
    return replace(observed, protocols={v: False for v in TlsVersion})


def _no_handshake(probe: _Probe, pre: Handshake,
                  versions: dict[TlsVersion, Fact[bool]]) -> TlsObservation:
    """No version was accepted: say why, without claiming the server accepts nothing."""
    unknown = next((f for f in versions.values() if isinstance(f, Unknown)), None)
    if unknown is None and pre.outcome == Outcome.SILENT:
        unknown = Unknown(UnknownReason.NOT_VISIBLE, f"{probe.where} closed every connection "
                          "without answering a ClientHello")
        return _unobservable(probe, unknown)
    if unknown is None:
        unknown = Unknown(UnknownReason.NOT_SUPPORTED, f"{probe.where} answers in TLS but "
                          "completed no handshake with any version or suite nassl offers")
    return _unobservable(probe, unknown, service=ServiceKind.TLS, plaintext=False)


def _observe(probe: _Probe, stores: TrustStores | Unknown) -> TlsObservation:
    """Run every phase of the probe and assemble what it saw."""
    pre = probe.run(PRE_PROBE, sniff=True)
    if pre.unknown is not None and pre.outcome != Outcome.ACCEPTED:
        return _unobservable(probe, pre.unknown)
    if pre.outcome == Outcome.PLAINTEXT and pre.service is not None:
        return _plaintext(probe, pre.service)
    with ThreadPoolExecutor(PARALLEL_HANDSHAKES, thread_name_prefix="tls-probe") as pool:
        versions = probe.versions(pre, pool)
        if not any(fact is True for fact in versions.values()):
            return _no_handshake(probe, pre, versions)
        seen = probe.made()
        classes = pool.submit(probe.suite_classes, versions, seen)
        dh_group = pool.submit(probe.dh_group, versions, seen)
        aead = pool.submit(probe.tls12_aead, versions, seen)
        pool.submit(probe.other_certificate, versions, seen).result()
        suite_facts, dh_bits, aead_fact = classes.result(), dh_group.result(), aead.result()
    made = probe.made()
    return TlsObservation(
        endpoint=probe.where, server_name=probe.server_name, observed_at=probe.observed_at,
        service=ServiceKind.TLS, protocols=versions, cipher_suites=probe.suites_seen(),
        plaintext=False, suite_classes=suite_facts, dh_group_bits=dh_bits, tls12_aead=aead_fact,
        certificates=probe.certificates(stores),
        client_certificate_requested=any(r.client_cert_requested for r in made),
        connections=probe.dialer.connections)


def dial_address(endpoint: TlsEndpointConfig) -> tuple[str, int]:
    """Where the probe connects: `connect_to` when it is set, else the endpoint itself."""
    if endpoint.connect_to is None:
        return endpoint.host, endpoint.port
    host, _, port = endpoint.connect_to.rpartition(":")
    return host.strip("[]"), int(port)


def _resolve(host: str, port: int) -> str | Unknown:
    """The address to connect to: `host` itself when it is an IP literal."""
    if is_ip(host):
        return host
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return Unknown(UnknownReason.UNREACHABLE, f"could not resolve {host}",
                       needs=f"DNS resolution of {host}")
    return str(infos[0][4][0])


def _stores(endpoint: TlsEndpointConfig, public_roots: Path | None) -> TrustStores | Unknown:
    if endpoint.ca_bundle is not None:
        problem = ca_bundle_problem(endpoint.ca_bundle)
        if problem is not None:
            return problem
    return TrustStores.for_endpoint(endpoint.ca_bundle, public_roots)


def probe_endpoint(endpoint: TlsEndpointConfig, *, timeout: float,
                   clock: Callable[[], datetime] | None = None, deadline: float | None = None,
                   public_roots: Path | None = None) -> TlsObservation:
    """
    Probe one configured endpoint and return what was observed.

    `timeout` bounds each connection (connect, STARTTLS and handshake together); `deadline`
    bounds the whole probe (default `BUDGET_TIMEOUTS` timeouts). `clock` stamps `observed_at`,
    the time chains are validated and expiry is judged at; it defaults to the current UTC
    time. `public_roots` replaces the Mozilla store, for tests that need a public CA.
    """
    observed_at = (clock or _utcnow)()
    server_name = endpoint.server_name or endpoint.host
    host, port = dial_address(endpoint)
    address = _resolve(host, port)
    dialer = Dialer(address if isinstance(address, str) else host, port, server_name,
                    endpoint.starttls)
    probe = _Probe(endpoint, dialer, timeout, deadline or BUDGET_TIMEOUTS * timeout, observed_at)
    if isinstance(address, Unknown):
        return _unobservable(probe, address)
    logger.debug("probing TLS endpoint %s", probe.where)
    observation = _observe(probe, _stores(endpoint, public_roots))
    logger.debug("probed %s with %d connections", probe.where, observation.connections)
    return observation
