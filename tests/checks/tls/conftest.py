"""
Shared fixtures for the TLS checks: lab certificates, the case matrix of loopback servers (and
two real PostgreSQL servers), a scan context, each started once per module; and the builders
of hand-made observations for the evaluate tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hipaacheck.check import CheckContext, Policy
from hipaacheck.clients import Clients
from hipaacheck.clients.tls import (
    CertificateObservation,
    ChainCertificate,
    ServiceKind,
    SuiteClass,
    TlsObservation,
    TlsVersion,
)
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls_matrix import CASES, Matrix, start_matrix
from hipaacheck.model import Fact, Target, TargetKind, Unknown, UnknownReason

PROBE_TIMEOUT = 1.0
"""Per-connection timeout of the probes in these tests: what a hung port costs."""


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    """The lab CA bundle and every certificate variant, minted for this module."""
    return mint_lab_certificates(tmp_path_factory.mktemp("tls-certs"))


@pytest.fixture(scope="module")
def tls_matrix(tmp_path_factory: pytest.TempPathFactory,
               tls_certs: LabCertificates) -> Iterator[Matrix]:
    """Every loopback case of the matrix (the PostgreSQL cases are `pg_matrix`)."""
    matrix = start_matrix(tmp_path_factory.mktemp("tls-matrix"),
                          [c for c in CASES if c.postgres is None], tls_certs)
    yield matrix
    matrix.stop()


@pytest.fixture(scope="module")
def pg_matrix(tmp_path_factory: pytest.TempPathFactory,
              tls_certs: LabCertificates) -> Iterator[Matrix]:
    """Two real PostgreSQL servers: one without TLS, one with a certificate."""
    matrix = start_matrix(tmp_path_factory.mktemp("pg-matrix"),
                          [c for c in CASES if c.postgres is not None], tls_certs)
    yield matrix
    matrix.stop()


def target_of(endpoint: TlsEndpointConfig) -> Target:
    """The inventory target for an endpoint configuration."""
    return Target(TargetKind.TLS_ENDPOINT, f"tls:{endpoint.name}", endpoint.name, endpoint)


@pytest.fixture(scope="module")
def target() -> Callable[[TlsEndpointConfig], Target]:
    """Builds the inventory target for an endpoint configuration."""
    return target_of


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    """One scan's context: its memo is shared by every test in the module."""
    return CheckContext(clients=Clients(timeout=PROBE_TIMEOUT), policy=Policy(),
                        logger=logging.getLogger("test.tls"),
                        clock=lambda: datetime.now(UTC), timeout=PROBE_TIMEOUT)


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class HandBuilt:
    """
    Builders of sound hand-made observations for evaluate tests; keyword changes break one
    thing at a time.
    """

    now = NOW
    target = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")

    @staticmethod
    def protocols(*accepted: TlsVersion, **unknown: Unknown) -> dict[TlsVersion, Fact[bool]]:
        """Every version, True for `accepted`; keyword names (`TLS_1_0=...`) make one unknown."""
        facts: dict[TlsVersion, Fact[bool]] = {v: v in accepted for v in TlsVersion}
        for name, fact in unknown.items():
            facts[TlsVersion[name]] = fact
        return facts

    @staticmethod
    def classes(*accepted: SuiteClass, **unknown: Unknown) -> dict[SuiteClass, Fact[bool]]:
        """Every suite class, True for `accepted`; keyword names (`RC4=...`) make one unknown."""
        facts: dict[SuiteClass, Fact[bool]] = {c: c in accepted for c in SuiteClass}
        for name, fact in unknown.items():
            facts[SuiteClass[name]] = fact
        return facts

    @staticmethod
    def link(position: int = 0, **changes: object) -> ChainCertificate:
        """A sound certificate in a chain (ECDSA P-256, SHA-256), with `changes` applied."""
        base = ChainCertificate(position=position, self_signed=False, key_type="EC",
                                key_bits=256, signature_hash="sha256")
        return replace(base, **changes)  # type: ignore[arg-type]

    @classmethod
    def cert(cls, **changes: object) -> CertificateObservation:
        """A sound certificate deployment, with `changes` applied."""
        base = CertificateObservation(
            store="configured CA bundle", verified=True, validation_error=None,
            hostname_matches=True, not_before=NOW - timedelta(days=30),
            not_after=NOW + timedelta(days=200), issuer_cn="Internal Issuing CA",
            chain_length=2, has_san=True, server_auth_eku=True, public_ca=False,
            chain=(cls.link(0), cls.link(1)))
        return replace(base, **changes)  # type: ignore[arg-type]

    @classmethod
    def observation(cls, **changes: object) -> TlsObservation:
        """A sound observation (TLS 1.2 + 1.3, strong suites, one good chain), with `changes`."""
        base = TlsObservation(
            endpoint="10.0.0.5:443", server_name="portal.internal", observed_at=NOW,
            service=ServiceKind.TLS,
            protocols=cls.protocols(TlsVersion.TLS_1_2, TlsVersion.TLS_1_3),
            cipher_suites={TlsVersion.TLS_1_3: ("TLS_AES_256_GCM_SHA384",)}, plaintext=False,
            suite_classes=cls.classes(), dh_group_bits=None, tls12_aead=True,
            certificates=(cls.cert(),), client_certificate_requested=False, connections=9)
        return replace(base, **changes)  # type: ignore[arg-type]

    @classmethod
    def plaintext(cls, service: ServiceKind = ServiceKind.PLAINTEXT_HTTP) -> TlsObservation:
        """What the prober reports for a port that answers in plaintext."""
        none = Unknown(UnknownReason.NOT_SUPPORTED, "10.0.0.5:443 speaks no TLS")
        return cls.observation(
            service=service, protocols=cls.protocols(), plaintext=True,
            suite_classes={c: none for c in SuiteClass}, dh_group_bits=none, tls12_aead=none,
            certificates=none, connections=1)

    @classmethod
    def unreachable(cls, unknown: Unknown) -> TlsObservation:
        """What the prober reports when it could observe nothing."""
        return cls.observation(
            service=unknown, protocols={v: unknown for v in TlsVersion}, plaintext=unknown,
            suite_classes={c: unknown for c in SuiteClass}, dh_group_bits=unknown,
            tls12_aead=unknown, certificates=unknown, connections=1)


@pytest.fixture(scope="session")
def built() -> type[HandBuilt]:
    """The hand-built observation builders."""
    return HandBuilt
