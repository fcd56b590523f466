"""
The cipher-suite catalogue the TLS prober offers from, and how it classifies what a server picks.

nassl ships two OpenSSL builds: a modern one (TLS 1.0 to 1.3) and a legacy one (SSL 2.0 to
TLS 1.2, with the weak suites modern OpenSSL dropped). The catalogue lists, for each build and
version, every suite that build can offer, under both its OpenSSL name and its IANA name (the
mapping is sslyze's). Classes are read from the IANA name, whose parts are regular:
`TLS_<key exchange>_WITH_<cipher>_<mac>`.

The catalogue is built once per process from the installed nassl; it is a constant of the
installation, not state.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass

from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import OpenSslVersionEnum, SslClient
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum

from hipaacheck.clients.tls_model import SuiteClass, TlsVersion

EVERY_SUITE = "ALL:COMPLEMENTOFALL:-PSK:-SRP"
"""Every suite a build offers, less PSK and SRP, which need credentials we never hold."""
MODERN_LEVEL = ":@SECLEVEL=0"
"""Appended to the modern build's cipher strings so that it offers weak suites and groups too."""
TLS13_SUITES = ("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
                "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")
"""Every TLS 1.3 suite the modern build knows."""

NASSL_VERSIONS = {
    TlsVersion.SSL_2_0: OpenSslVersionEnum.SSLV2,
    TlsVersion.SSL_3_0: OpenSslVersionEnum.SSLV3,
    TlsVersion.TLS_1_0: OpenSslVersionEnum.TLSV1,
    TlsVersion.TLS_1_1: OpenSslVersionEnum.TLSV1_1,
    TlsVersion.TLS_1_2: OpenSslVersionEnum.TLSV1_2,
    TlsVersion.TLS_1_3: OpenSslVersionEnum.TLSV1_3,
}
_SSLYZE_VERSIONS = {v: TlsVersionEnum[v.name] for v in TlsVersion}
_LEGACY_ONLY = (TlsVersion.SSL_2_0, TlsVersion.SSL_3_0)
_TLS_FAMILY = (TlsVersion.TLS_1_2, TlsVersion.TLS_1_1, TlsVersion.TLS_1_0, TlsVersion.SSL_3_0)


def suite_classes(iana_name: str) -> frozenset[SuiteClass]:
    """
    The classes an IANA-named suite belongs to (empty for a sound suite).

    SSL 2.0 suites (`SSL_CK_...`) all use RSA key transport.
    """
    name = iana_name.upper()
    classes = set()
    if "_WITH_NULL_" in name:
        classes.add(SuiteClass.NULL)
    if "_ANON_" in name:
        classes.add(SuiteClass.ANONYMOUS)
    if "EXPORT" in name:
        classes.add(SuiteClass.EXPORT)
    if "_RC4_" in name:
        classes.add(SuiteClass.RC4)
    triple = "3DES" in name or "EDE3" in name
    if triple:
        classes.add(SuiteClass.TRIPLE_DES)
    elif "_DES_" in name or "_DES40_" in name:
        classes.add(SuiteClass.DES)
    if name.startswith(("TLS_RSA_WITH_", "TLS_RSA_EXPORT", "SSL_CK_")):
        classes.add(SuiteClass.STATIC_RSA)
    return frozenset(classes)


def is_aead(iana_name: str) -> bool:
    """Whether a suite uses an AEAD cipher (GCM, CCM or ChaCha20-Poly1305)."""
    name = iana_name.upper()
    return "_GCM_" in name or "_CCM" in name or "CHACHA20_POLY1305" in name


def is_dhe(iana_name: str) -> bool:
    """Whether a suite uses finite-field Diffie-Hellman key exchange (ephemeral or anonymous)."""
    return iana_name.upper().startswith(("TLS_DHE_", "TLS_DH_ANON_"))


@dataclass(frozen=True)
class Catalogue:
    """
    What each nassl build offers per version, and the IANA name of every OpenSSL name.
    """

    offers: dict[tuple[bool, TlsVersion], tuple[str, ...]]
    """OpenSSL names each build (`legacy`, version) can offer, excluding TLS 1.3 suites."""
    iana: dict[tuple[TlsVersion, str], str]
    """The IANA name of an OpenSSL name at a version."""

    def iana_name(self, version: TlsVersion, openssl_name: str) -> str | None:
        """The IANA name of a negotiated suite, or None for a name the catalogue lacks."""
        if openssl_name.startswith("TLS_"):
            return openssl_name
        for name in (openssl_name, *_aliases(openssl_name)):
            found = self._lookup(version, name)
            if found is not None:
                return found
        return None

    def _lookup(self, version: TlsVersion, openssl_name: str) -> str | None:
        exact = self.iana.get((version, openssl_name))
        if exact is not None or version == TlsVersion.SSL_2_0:
            return exact
        # NOTE: sslyze maps a name once per version it enumerates it at; outside SSL 2.0 an
        # OpenSSL name means the same suite at every version, so any version's entry will do.
        return next((self.iana[(v, openssl_name)] for v in _TLS_FAMILY
                     if (v, openssl_name) in self.iana), None)

    def offer(self, legacy: bool, version: TlsVersion,
              wanted: Collection[SuiteClass]) -> str | None:
        """
        A cipher string of every suite of the build and version that is in a `wanted` class,
        or None when there is none.
        """
        names = [n for n in self.offers.get((legacy, version), ())
                 if suite_classes(self.iana_name(version, n) or "") & set(wanted)]
        return _cipher_string(names, legacy)

    def offer_where(self, legacy: bool, version: TlsVersion, aead: bool = False,
                    dhe: bool = False) -> str | None:
        """A cipher string of the build's AEAD suites (`aead`) or DHE suites (`dhe`)."""
        names = []
        for name in self.offers.get((legacy, version), ()):
            iana = self.iana_name(version, name) or ""
            if (aead and is_aead(iana)) or (dhe and is_dhe(iana)):
                names.append(name)
        return _cipher_string(names, legacy)


def _aliases(openssl_name: str) -> tuple[str, ...]:
    """
    The other OpenSSL spellings of a suite: OpenSSL names ephemeral DH suites both `EDH-`
    and `DHE-`, and sslyze keeps only one of the two (whichever its set iteration meets first).
    """
    if openssl_name.startswith("EDH-"):
        return ("DHE-" + openssl_name[4:],)
    if openssl_name.startswith("DHE-"):
        return ("EDH-" + openssl_name[4:],)
    return ()


def _cipher_string(names: list[str], legacy: bool) -> str | None:
    if not names:
        return None
    return ":".join(names) + ("" if legacy else MODERN_LEVEL)


def _listed(legacy: bool, version: TlsVersion) -> tuple[str, ...]:
    """The OpenSSL names one build offers at one version for `EVERY_SUITE`."""
    client: LegacySslClient | SslClient
    if legacy:
        client = LegacySslClient(ssl_version=NASSL_VERSIONS[version])
        client.set_cipher_list(EVERY_SUITE)
    else:
        client = SslClient(ssl_version=NASSL_VERSIONS[version])
        client.set_cipher_list(EVERY_SUITE + MODERN_LEVEL)
    return tuple(n for n in client.get_cipher_list() if not n.startswith("TLS_"))


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue of the installed nassl (built on first use, then shared)."""
    iana: dict[tuple[TlsVersion, str], str] = {}
    for version, sslyze_version in _SSLYZE_VERSIONS.items():
        for suite in CipherSuitesRepository.get_all_cipher_suites(sslyze_version):
            iana[(version, suite.openssl_name)] = suite.name
    offers: dict[tuple[bool, TlsVersion], tuple[str, ...]] = {}
    for version in TlsVersion:
        if version != TlsVersion.TLS_1_3:
            offers[(True, version)] = _listed(True, version)
        if version not in _LEGACY_ONLY and version != TlsVersion.TLS_1_3:
            offers[(False, version)] = _listed(False, version)
    return Catalogue(offers, iana)
