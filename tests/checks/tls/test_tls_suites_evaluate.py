"""
The pure evaluate step of the cipher-suite check, on hand-built observations (the `built`
fixture's builders: sound unless a test breaks one thing).
"""

from __future__ import annotations

from typing import Any

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.tls.suites import MIN_DH_BITS, CipherSuites
from hipaacheck.clients.tls import (
    DH_TOO_SMALL_TO_MEASURE,
    WEAK_SUITE_CLASSES,
    SuiteClass,
    TlsObservation,
)
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")
TIMEOUT = Unknown(UnknownReason.TIMEOUT, "TLS 1.2 weak classes: timed out",
                  needs="a responsive 10.0.0.5:443")


def finding_of(obs: TlsObservation) -> Finding:
    """The single finding of the cipher-suite check."""
    [finding] = CipherSuites().evaluate(obs, TARGET, Policy())
    assert finding.check_id == "tls.endpoint.cipher_suites"
    assert finding.target == TARGET.id and finding.resource == obs.endpoint
    return finding


def test_strong_suites_pass(built: Any) -> None:
    finding = finding_of(built.observation())
    assert finding.status == Status.PASS
    assert finding.evidence["weak_classes"] == ()
    assert finding.evidence["negotiated_suites"] == ("TLS_AES_256_GCM_SHA384",)


def test_a_sound_dhe_group_passes(built: Any) -> None:
    finding = finding_of(built.observation(dh_group_bits=MIN_DH_BITS))
    assert finding.status == Status.PASS
    assert finding.evidence["dh_group_bits"] == 2048


def test_tls13_only_passes_without_tls12_facts(built: Any) -> None:
    assert finding_of(built.observation(tls12_aead=None)).status == Status.PASS


@pytest.mark.parametrize("weak", WEAK_SUITE_CLASSES)
def test_each_weak_class_fails(weak: SuiteClass, built: Any) -> None:
    finding = finding_of(built.observation(suite_classes=built.classes(weak)))
    assert finding.status == Status.FAIL
    assert finding.evidence["weak_classes"] == (weak.value,)


def test_several_weak_classes_are_all_named(built: Any) -> None:
    classes = built.classes(SuiteClass.RC4, SuiteClass.TRIPLE_DES, SuiteClass.STATIC_RSA)
    finding = finding_of(built.observation(suite_classes=classes))
    assert finding.status == Status.FAIL
    assert finding.evidence["weak_classes"] == ("RC4", "3DES")
    assert finding.evidence["static_rsa"] is True


@pytest.mark.parametrize("bits", [512, 1024, 2047, DH_TOO_SMALL_TO_MEASURE])
def test_a_small_dhe_group_fails(bits: int, built: Any) -> None:
    finding = finding_of(built.observation(dh_group_bits=bits))
    assert finding.status == Status.FAIL
    assert finding.evidence["dh_group_bits"] == bits


def test_weak_suites_fail_even_when_another_fact_is_unknown(built: Any) -> None:
    classes = built.classes(SuiteClass.NULL, DES=TIMEOUT)
    finding = finding_of(built.observation(suite_classes=classes, dh_group_bits=TIMEOUT))
    assert finding.status == Status.FAIL
    assert finding.evidence["unknown_classes"] == ("DES",)


def test_static_rsa_warns(built: Any) -> None:
    classes = built.classes(SuiteClass.STATIC_RSA)
    finding = finding_of(built.observation(suite_classes=classes))
    assert finding.status == Status.WARN
    assert finding.evidence["static_rsa"] is True


def test_cbc_only_tls12_warns(built: Any) -> None:
    finding = finding_of(built.observation(tls12_aead=False))
    assert finding.status == Status.WARN
    assert finding.evidence["tls12_aead"] is False


def test_plaintext_fails(built: Any) -> None:
    finding = finding_of(built.plaintext())
    assert finding.status == Status.FAIL
    assert finding.evidence["plaintext"] is True


@pytest.mark.parametrize("suite_class", list(SuiteClass))
def test_each_unknown_class_is_unverified(suite_class: SuiteClass, built: Any) -> None:
    finding = finding_of(built.observation(
        suite_classes=built.classes(**{suite_class.name: TIMEOUT})))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.TIMEOUT
    assert finding.needs == "a responsive 10.0.0.5:443"


def test_a_class_missing_from_the_observation_is_unverified(built: Any) -> None:
    classes = built.classes()
    del classes[SuiteClass.EXPORT]
    finding = finding_of(built.observation(suite_classes=classes))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.NOT_VISIBLE


def test_unknown_dh_group_is_unverified(built: Any) -> None:
    unknown = Unknown(UnknownReason.UNPARSEABLE, "the group size could not be read")
    finding = finding_of(built.observation(dh_group_bits=unknown))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNPARSEABLE


def test_unknown_tls12_aead_is_unverified(built: Any) -> None:
    finding = finding_of(built.observation(tls12_aead=TIMEOUT))
    assert finding.status == Status.UNVERIFIED


def test_unknown_does_not_hide_behind_a_warning(built: Any) -> None:
    # Static RSA alone would warn; an unknown class could still be a failing one
    classes = built.classes(SuiteClass.STATIC_RSA, RC4=TIMEOUT)
    assert finding_of(built.observation(suite_classes=classes)).status == Status.UNVERIFIED


@pytest.mark.parametrize("reason", [UnknownReason.UNREACHABLE, UnknownReason.TIMEOUT,
                                    UnknownReason.NOT_VISIBLE])
def test_unreachable_endpoint_is_unverified(reason: UnknownReason, built: Any) -> None:
    unknown = Unknown(reason, "could not look", needs="network reachability to 10.0.0.5:443")
    finding = finding_of(built.unreachable(unknown))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == reason
    assert finding.needs == "network reachability to 10.0.0.5:443"
