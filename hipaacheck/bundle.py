"""
Report bundles: the report files of one scan, its JSON findings and a manifest of SHA-256 digests,
optionally signed with Ed25519, so a recipient can tell that nothing was edited after the scan.

A bundle is a folder. `manifest.json` lists every other file in it with its size and digest;
`manifest.sig` holds an Ed25519 signature over the manifest's exact bytes (with a fixed
domain-separation prefix, so the signature cannot be replayed as a signature of anything else).
`verify` recomputes every digest, reports files that are missing, changed or not listed, and
checks the signature when it is given the public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hipaacheck import __version__
from hipaacheck.errors import HipaacheckError
from hipaacheck.render import FORMATS, ReportOptions, write_private, write_report
from hipaacheck.result import ScanResult

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SCHEMA = "hipaacheck.bundle/1"
SIGNATURE_SCHEMA = "hipaacheck.bundle-signature/1"
SIGNED_PREFIX = b"hipaacheck.bundle/1 manifest\n"
"""Prepended to the manifest bytes before signing: the signature means nothing else."""
DEFAULT_FORMATS = ("json", "html", "md")
_CHUNK = 1 << 20


class BundleError(HipaacheckError):
    """A bundle or key that cannot be used at all: no manifest, an unreadable or wrong key."""


@dataclass(frozen=True)
class Verification:
    """
    The outcome of `verify`.

    `ok` is True only when every listed file is present and unchanged, no unlisted file was
    added, and (when a public key was given) the signature is valid for that key. `signed` is
    True when a signature was checked and found valid.
    """

    ok: bool
    signed: bool
    files: int
    problems: tuple[str, ...]


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _bundle_files(bundle_dir: Path) -> list[str]:
    """Every regular file under `bundle_dir` but the manifest and signature, as POSIX paths."""
    names = []
    for path in sorted(bundle_dir.rglob("*")):
        rel = path.relative_to(bundle_dir).as_posix()
        if rel in (MANIFEST, SIGNATURE) or path.is_dir():
            continue
        if path.is_symlink() or not path.is_file():
            raise BundleError(f"{rel}: a bundle holds regular files only")
        names.append(rel)
    return names


def _scan_facts(result: ScanResult | None, bundle_dir: Path) -> dict[str, Any]:
    """Which scan the bundle is of: from `result`, else from the bundle's report.json."""
    if result is None:
        report = bundle_dir / FORMATS["json"][0]
        try:
            result = ScanResult.from_json(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return {}
    return {"organization": result.organization, "started": result.started,
            "finished": result.finished, "config_fingerprint": result.config_fingerprint,
            "complete": result.complete}


def write_manifest(bundle_dir: Path, result: ScanResult | None = None) -> Path:
    """
    Write `manifest.json` listing every file in `bundle_dir` with its SHA-256 digest.

    An existing signature is removed: it signed the previous manifest.
    """
    files = [{"path": name, "size": (bundle_dir / name).stat().st_size,
              "sha256": _digest(bundle_dir / name)} for name in _bundle_files(bundle_dir)]
    manifest = {
        "schema": SCHEMA, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tool": {"name": "hipaacheck", "version": __version__},
        "scan": _scan_facts(result, bundle_dir), "algorithm": "sha256", "files": files}
    (bundle_dir / SIGNATURE).unlink(missing_ok=True)
    path = bundle_dir / MANIFEST
    write_private(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    logger.info("bundle manifest lists %d files", len(files))
    return path


def write_bundle(result: ScanResult, bundle_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS,
                 options: ReportOptions | None = None) -> Path:
    """
    Write the report `formats` of `result` (always including JSON) and the manifest.

    Returns the manifest's path. Unknown format names raise `BundleError`.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise BundleError(f"unknown report format(s): {', '.join(unknown)}")
    for fmt in dict.fromkeys(("json", *formats)):
        write_report(result, fmt, bundle_dir, options)
    return write_manifest(bundle_dir, result)


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the key file ({type(exc).__name__})") from None


def load_private_key(path: Path, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8) or OpenSSH file."""
    data = _read_key_file(path)
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key: Any = serialization.load_ssh_private_key(data, password)
        else:
            key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError):
        raise BundleError(f"{path}: not a readable private key (wrong format or password)") \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM (SubjectPublicKeyInfo) or OpenSSH `ssh-ed25519` file."""
    data = _read_key_file(path)
    try:
        if data.lstrip().startswith(b"ssh-"):
            key: Any = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, binascii.Error):
        raise BundleError(f"{path}: not a readable public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path}: not an Ed25519 public key")
    return key


def _key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _manifest_bytes(bundle_dir: Path) -> bytes:
    try:
        return (bundle_dir / MANIFEST).read_bytes()
    except OSError:
        raise BundleError(f"{bundle_dir}: no {MANIFEST}; not a report bundle") from None


def sign(bundle_dir: Path, private_key_path: Path, password: bytes | None = None) -> Path:
    """Sign the bundle's manifest with an Ed25519 private key; returns the signature's path."""
    key = load_private_key(private_key_path, password)
    manifest = _manifest_bytes(bundle_dir)
    signature = key.sign(SIGNED_PREFIX + manifest)
    document = {"schema": SIGNATURE_SCHEMA, "algorithm": "ed25519",
                "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                "public_key_sha256": _key_id(key.public_key()),
                "signature": base64.b64encode(signature).decode("ascii")}
    path = bundle_dir / SIGNATURE
    write_private(path, json.dumps(document, indent=2) + "\n")
    return path


def _check_signature(bundle_dir: Path, manifest: bytes, key: Ed25519PublicKey) -> list[str]:
    try:
        document = json.loads((bundle_dir / SIGNATURE).read_text(encoding="utf-8"))
        signature = base64.b64decode(document["signature"], validate=True)
    except FileNotFoundError:
        return [f"{SIGNATURE}: missing; the bundle is not signed"]
    except (OSError, ValueError, KeyError, TypeError, binascii.Error):
        return [f"{SIGNATURE}: unreadable"]
    if document.get("public_key_sha256") not in (None, _key_id(key)):
        return [f"{SIGNATURE}: made with a different key than the one given"]
    try:
        key.verify(signature, SIGNED_PREFIX + manifest)
    except InvalidSignature:
        return [f"{SIGNATURE}: the signature does not match {MANIFEST}"]
    return []


def _entries(manifest: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(manifest)
    except ValueError:
        raise BundleError(f"{MANIFEST}: not JSON") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA \
            or not isinstance(document.get("files"), list):
        raise BundleError(f"{MANIFEST}: not a {SCHEMA} manifest")
    files: list[dict[str, Any]] = document["files"]
    return files


def _safe_member(bundle_dir: Path, name: object) -> Path | None:
    """The file a manifest entry names, or None when the name leaves the bundle."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return bundle_dir.joinpath(*parts)


def _check_files(bundle_dir: Path, entries: Iterable[dict[str, Any]]) -> tuple[int, list[str]]:
    problems, listed = [], set()
    for entry in entries:
        name = entry.get("path") if isinstance(entry, dict) else None
        path = _safe_member(bundle_dir, name)
        if path is None:
            problems.append(f"{MANIFEST}: an entry names a path outside the bundle")
            continue
        listed.add(name)
        if path.is_symlink() or not path.is_file():
            problems.append(f"{name}: missing")
        elif _digest(path) != entry.get("sha256"):
            problems.append(f"{name}: changed since the manifest was written")
    present = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*")
               if not p.is_dir()} - {MANIFEST, SIGNATURE}
    problems += [f"{name}: not listed in the manifest" for name in sorted(present - listed)]
    return len(listed), problems


def verify(bundle_dir: Path, public_key_path: Path | None = None) -> Verification:
    """
    Check a bundle: every listed file unchanged, nothing added, and the signature if a key is given.

    Tampering is reported in `Verification.problems`, never raised; `BundleError` means the
    bundle or key cannot be read at all.
    """
    manifest = _manifest_bytes(bundle_dir)
    count, problems = _check_files(bundle_dir, _entries(manifest))
    signed = False
    if public_key_path is not None:
        signature_problems = _check_signature(bundle_dir, manifest, load_public_key(
            public_key_path))
        signed = not signature_problems
        problems += signature_problems
    return Verification(ok=not problems, signed=signed, files=count, problems=tuple(problems))


def write_key_pair(private_key_path: Path, public_key_path: Path) -> None:
    """
    Create an Ed25519 key pair: the private key as unencrypted PKCS#8 PEM with owner-only
    permissions, the public key as PEM. Refuses to overwrite an existing private key.
    """
    if private_key_path.exists():
        raise BundleError(f"{private_key_path} exists; not overwriting a private key")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(private_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_key_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
