"""
The cipher-suite catalogue: how IANA names are classified, and that every offer holds only
the suites it is meant to.
"""

from __future__ import annotations

import pytest

from hipaacheck.clients.tls import SuiteClass, TlsVersion
from hipaacheck.clients.tls_suites import catalogue, is_aead, is_dhe, suite_classes

S = SuiteClass


@pytest.mark.parametrize(("name", "expected"), [
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", set()),
    ("TLS_AES_256_GCM_SHA384", set()),
    ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", set()),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", {S.STATIC_RSA}),
    ("TLS_RSA_WITH_NULL_SHA256", {S.NULL, S.STATIC_RSA}),
    ("TLS_ECDHE_ECDSA_WITH_NULL_SHA", {S.NULL}),
    ("TLS_ECDH_anon_WITH_NULL_SHA", {S.NULL, S.ANONYMOUS}),
    ("TLS_DH_anon_WITH_AES_128_GCM_SHA256", {S.ANONYMOUS}),
    ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", {S.EXPORT, S.RC4, S.STATIC_RSA}),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", {S.RC4}),
    ("TLS_RSA_WITH_DES_CBC_SHA", {S.DES, S.STATIC_RSA}),
    ("TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", {S.EXPORT, S.DES}),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", {S.TRIPLE_DES}),
    ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", {S.TRIPLE_DES, S.STATIC_RSA}),
    ("SSL_CK_DES_64_CBC_WITH_MD5", {S.DES, S.STATIC_RSA}),
    ("TLS_RSA_PSK_WITH_AES_128_GCM_SHA256", set()),
])
def test_suite_classes(name: str, expected: set[SuiteClass]) -> None:
    assert suite_classes(name) == expected


@pytest.mark.parametrize(("name", "aead", "dhe"), [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", True, False),
    ("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", True, True),
    ("TLS_DHE_RSA_WITH_AES_128_CCM_8", True, True),
    ("TLS_DH_anon_WITH_AES_128_CBC_SHA", False, True),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", False, False),
])
def test_aead_and_dhe(name: str, aead: bool, dhe: bool) -> None:
    assert is_aead(name) is aead and is_dhe(name) is dhe


@pytest.mark.parametrize("version", [TlsVersion.SSL_3_0, TlsVersion.TLS_1_0,
                                     TlsVersion.TLS_1_1, TlsVersion.TLS_1_2])
@pytest.mark.parametrize("wanted", [[S.NULL], [S.RC4, S.DES], list(SuiteClass)])
def test_class_offers_hold_only_wanted_classes(version: TlsVersion,
                                               wanted: list[SuiteClass]) -> None:
    offer = catalogue().offer(True, version, wanted)
    assert offer is not None
    for name in offer.split(":"):
        iana = catalogue().iana_name(version, name)
        assert iana is not None and suite_classes(iana) & set(wanted)


def test_every_offered_name_has_an_iana_name() -> None:
    for (_, version), names in catalogue().offers.items():
        assert all(catalogue().iana_name(version, n) for n in names), version


def test_the_modern_build_offers_no_tls12_export_suite() -> None:
    assert catalogue().offer(False, TlsVersion.TLS_1_2, [S.EXPORT]) is None
    assert catalogue().offer(True, TlsVersion.TLS_1_2, [S.EXPORT]) is not None


def test_aead_and_dhe_offers() -> None:
    aead = catalogue().offer_where(False, TlsVersion.TLS_1_2, aead=True)
    dhe = catalogue().offer_where(False, TlsVersion.TLS_1_2, dhe=True)
    assert aead is not None and dhe is not None
    assert aead.endswith(":@SECLEVEL=0") and dhe.endswith(":@SECLEVEL=0")
    assert all(is_aead(catalogue().iana_name(TlsVersion.TLS_1_2, n) or "")
               for n in aead.split(":")[:-1])
    assert all(is_dhe(catalogue().iana_name(TlsVersion.TLS_1_2, n) or "")
               for n in dhe.split(":")[:-1])
