"""A report bundle shows any edit after the scan: digests for every file, an Ed25519 signature."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hipaacheck.bundle import (
    MANIFEST,
    SIGNATURE,
    BundleError,
    sign,
    verify,
    write_bundle,
    write_key_pair,
    write_manifest,
)


@pytest.fixture
def bundle(result, tmp_path):
    """A bundle of the sample scan: JSON, HTML, Markdown and SARIF, with its manifest."""
    folder = tmp_path / "bundle"
    write_bundle(result, folder, formats=("html", "md", "sarif"))
    return folder


@pytest.fixture
def keys(tmp_path):
    """A fresh Ed25519 key pair as PEM files: (private, public)."""
    private, public = tmp_path / "signing.pem", tmp_path / "signing.pub.pem"
    write_key_pair(private, public)
    return private, public


def test_manifest_lists_every_file_with_its_digest(bundle):
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert {f["path"] for f in manifest["files"]} == {"report.json", "report.html", "report.md",
                                                     "report.sarif"}
    assert manifest["scan"]["organization"] == "Example <Health>"
    assert stat.S_IMODE((bundle / MANIFEST).stat().st_mode) == 0o600
    assert verify(bundle) == verify(bundle) and verify(bundle).ok


@pytest.mark.parametrize("tamper, problem", [
    (lambda b: (b / "report.html").write_text("edited"), "report.html: changed"),
    (lambda b: (b / "report.md").unlink(), "report.md: missing"),
    (lambda b: (b / "extra.txt").write_text("added"), "extra.txt: not listed"),
])
def test_any_edit_after_the_manifest_is_reported(bundle, tamper, problem):
    tamper(bundle)
    outcome = verify(bundle)
    assert not outcome.ok
    assert any(p.startswith(problem) for p in outcome.problems), outcome.problems


def test_signed_bundle_verifies_with_the_right_key_only(bundle, keys, tmp_path):
    private, public = keys
    sign(bundle, private)
    outcome = verify(bundle, public)
    assert outcome.ok and outcome.signed and outcome.files == 4
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub"
    write_key_pair(other_private, other_public)
    wrong = verify(bundle, other_public)
    assert not wrong.ok and not wrong.signed


def test_a_rewritten_manifest_breaks_the_signature(bundle, keys):
    private, public = keys
    sign(bundle, private)
    (bundle / "report.html").write_text("edited")
    write_manifest(bundle)  # the editor recomputes the digests...
    assert not (bundle / SIGNATURE).exists()
    outcome = verify(bundle, public)  # ...but cannot sign without the key
    assert verify(bundle).ok and not outcome.ok and not outcome.signed


def test_a_forged_signature_over_other_bytes_fails(bundle, keys):
    private, public = keys
    sign(bundle, private)
    doc = json.loads((bundle / MANIFEST).read_text())
    doc["created"] = "1999-01-01T00:00:00+00:00"
    (bundle / MANIFEST).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert not verify(bundle, public).ok


def test_openssh_keys_work_too(bundle, tmp_path):
    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / "id_ed25519", tmp_path / "id_ed25519.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                     serialization.PublicFormat.OpenSSH))
    sign(bundle, private)
    assert verify(bundle, public).signed


def test_manifest_entries_cannot_point_outside_the_bundle(bundle, tmp_path):
    (tmp_path / "outside.txt").write_text("x")
    doc = json.loads((bundle / MANIFEST).read_text())
    doc["files"].append({"path": "../outside.txt", "sha256": "0" * 64, "size": 1})
    (bundle / MANIFEST).write_text(json.dumps(doc))
    outcome = verify(bundle)
    assert not outcome.ok and any("outside the bundle" in p for p in outcome.problems)


def test_unusable_inputs_raise_a_bundle_error(tmp_path, keys, bundle):
    with pytest.raises(BundleError):
        verify(tmp_path / "empty-folder-that-is-not-a-bundle")
    with pytest.raises(BundleError):
        sign(bundle, keys[1])  # a public key is no signing key
    with pytest.raises(BundleError):
        write_key_pair(keys[0], tmp_path / "again.pub")  # never overwrites a private key
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
