"""
The pure evaluate step of the certificate strength and profile checks, on hand-built
observations (the `built` fixture's builders: sound unless a test breaks one thing).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hipaacheck.check import Check, Policy
from hipaacheck.checks.tls.certificate import (
    PUBLIC_MAX_LIFETIME_DAYS,
    CertificateProfile,
    CertificateStrength,
)
from hipaacheck.clients.tls import TlsObservation
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason

TARGET = Target(TargetKind.TLS_ENDPOINT, "tls:portal", "portal")


def finding_of(check: Check[TlsObservation], obs: TlsObservation) -> Finding:
    """The single finding of `check`."""
    [finding] = check.evaluate(obs, TARGET, Policy())
    assert finding.check_id == check.meta.id and finding.resource == obs.endpoint
    return finding


def strength(obs: TlsObservation) -> Finding:
    return finding_of(CertificateStrength(), obs)


def profile(obs: TlsObservation) -> Finding:
    return finding_of(CertificateProfile(), obs)


def with_chain(built: Any, *links: object) -> TlsObservation:
    """An observation whose one deployment sent exactly `links`."""
    return built.observation(certificates=(built.cert(chain=links, chain_length=len(links)),))


# Key and signature strength


def test_strong_keys_and_signatures_pass(built: Any) -> None:
    finding = strength(built.observation())
    assert finding.status == Status.PASS
    assert finding.evidence["leaf_key"] == "EC-256"
    assert finding.evidence["leaf_signature_hash"] == "sha256"


@pytest.mark.parametrize(("key_type", "bits"), [("RSA", 2048), ("RSA", 4096), ("EC", 384),
                                                ("Ed25519", 256), ("DSA", 2048)])
def test_strong_leaf_keys_pass(key_type: str, bits: int, built: Any) -> None:
    obs = with_chain(built, built.link(0, key_type=key_type, key_bits=bits), built.link(1))
    assert strength(obs).status == Status.PASS


@pytest.mark.parametrize(("key_type", "bits"), [("RSA", 1024), ("RSA", 2047), ("EC", 224),
                                                ("EC", 192), ("DSA", 1024)])
def test_weak_leaf_keys_fail(key_type: str, bits: int, built: Any) -> None:
    obs = with_chain(built, built.link(0, key_type=key_type, key_bits=bits), built.link(1))
    finding = strength(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["leaf_key"] == f"{key_type}-{bits}"


def test_a_weak_intermediate_key_fails(built: Any) -> None:
    obs = with_chain(built, built.link(0), built.link(1, key_type="RSA", key_bits=1024))
    finding = strength(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["weaknesses"] == ("chain certificate 1 has a RSA-1024 key",)


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_a_weak_leaf_signature_fails(digest: str, built: Any) -> None:
    obs = with_chain(built, built.link(0, signature_hash=digest), built.link(1))
    finding = strength(obs)
    assert finding.status == Status.FAIL
    assert finding.evidence["leaf_signature_hash"] == digest


def test_a_sha1_intermediate_fails(built: Any) -> None:
    obs = with_chain(built, built.link(0), built.link(1, signature_hash="sha1"))
    assert strength(obs).status == Status.FAIL


def test_a_sent_root_is_not_judged_by_its_own_signature(built: Any) -> None:
    root = built.link(2, self_signed=True, signature_hash="sha1", key_type="RSA", key_bits=1024)
    obs = with_chain(built, built.link(0), built.link(1), root)
    assert strength(obs).status == Status.PASS


def test_an_ed25519_signature_without_hash_passes(built: Any) -> None:
    obs = with_chain(built, built.link(0, signature_hash=None), built.link(1))
    assert strength(obs).status == Status.PASS


def test_an_unreadable_key_is_unverified(built: Any) -> None:
    obs = with_chain(built, built.link(0, key_type="unknown", key_bits=0), built.link(1))
    finding = strength(obs)
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == UnknownReason.UNPARSEABLE


def test_the_worst_deployment_decides_strength(built: Any) -> None:
    weak = built.cert(chain=(built.link(0, key_type="RSA", key_bits=1024),))
    obs = built.observation(certificates=(built.cert(), weak))
    assert strength(obs).status == Status.FAIL


# Usage and lifetime


def test_a_server_auth_leaf_with_a_short_lifetime_passes(built: Any) -> None:
    finding = profile(built.observation())
    assert finding.status == Status.PASS
    assert finding.evidence["lifetime_days"] == 230


def test_a_leaf_without_extended_key_usage_warns(built: Any) -> None:
    finding = profile(built.observation(certificates=(built.cert(server_auth_eku=None),)))
    assert finding.status == Status.WARN
    assert finding.evidence["server_auth_eku"] is None


def test_a_leaf_whose_usage_excludes_server_auth_fails(built: Any) -> None:
    finding = profile(built.observation(certificates=(built.cert(server_auth_eku=False),)))
    assert finding.status == Status.FAIL


def test_a_long_lived_public_leaf_warns(built: Any) -> None:
    long_lived = built.cert(public_ca=True, store="Mozilla",
                            not_after=built.now + timedelta(days=PUBLIC_MAX_LIFETIME_DAYS))
    finding = profile(built.observation(certificates=(long_lived,)))
    assert finding.status == Status.WARN
    assert finding.evidence["lifetime_days"] == PUBLIC_MAX_LIFETIME_DAYS + 30


def test_a_public_leaf_of_exactly_398_days_passes(built: Any) -> None:
    start = built.now - timedelta(days=30)
    leaf = built.cert(public_ca=True, not_before=start,
                      not_after=start + timedelta(days=PUBLIC_MAX_LIFETIME_DAYS))
    assert profile(built.observation(certificates=(leaf,))).status == Status.PASS


def test_a_long_lived_private_leaf_passes(built: Any) -> None:
    leaf = built.cert(public_ca=False, not_after=built.now + timedelta(days=3000))
    finding = profile(built.observation(certificates=(leaf,)))
    assert finding.status == Status.PASS
    assert finding.evidence["public_ca"] is False


# What both checks share


@pytest.mark.parametrize("judge", [strength, profile])
def test_plaintext_fails(judge: Any, built: Any) -> None:
    assert judge(built.plaintext()).status == Status.FAIL


@pytest.mark.parametrize("judge", [strength, profile])
def test_no_certificate_fails(judge: Any, built: Any) -> None:
    assert judge(built.observation(certificates=())).status == Status.FAIL


@pytest.mark.parametrize("judge", [strength, profile])
@pytest.mark.parametrize("reason", [UnknownReason.UNREACHABLE, UnknownReason.TIMEOUT,
                                    UnknownReason.UNPARSEABLE, UnknownReason.NOT_VISIBLE])
def test_unobserved_certificates_are_unverified(judge: Any, reason: UnknownReason,
                                                built: Any) -> None:
    unknown = Unknown(reason, "certificate chain: could not look", needs="something")
    finding = judge(built.observation(certificates=unknown))
    assert finding.status == Status.UNVERIFIED
    assert finding.unknown_reason == reason
    assert finding.needs == "something"
