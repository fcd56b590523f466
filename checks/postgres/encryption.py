"""
Encryption at rest of a self-managed PostgreSQL server's disks: attested, never observed.

Whether the volumes under a server's data directory and tablespaces are encrypted (LUKS, an
encrypted EBS volume, a self-encrypting drive) cannot be seen over SQL. The finding is therefore
UNVERIFIED unless the inventory entry carries an attestation: who inspected the storage, on
which date, and where the evidence is kept. With one, the finding passes as *attested* (its
evidence says `basis: attested`), or warns when the attestation is more than a year old.

The check also reads where the data lives (`data_directory`, which needs
`pg_read_all_settings`, and each tablespace's location), so the report shows what an attestation
has to cover. Managed services (RDS, Aurora) are judged by the AWS checks, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.postgres import (
    PostgresUnavailable,
    catalog_query,
    catalog_row,
    describe,
)
from hipaacheck.config import PostgresConfig
from hipaacheck.model import (
    CheckMeta,
    EvidenceValue,
    Fact,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    Target,
    TargetKind,
    Unknown,
    UnknownReason,
)

RESOURCE = "disk-encryption"
ATTESTATION_FIELD = "encryption_attestation"
ATTESTATION_MAX_AGE = timedelta(days=365)
"""An attestation older than this is WARN: storage changes, and evidence goes stale."""
NEEDS_ATTESTATION = ("an encryption_attestation (by, date, evidence) in this postgres entry "
                     "of the inventory")
NEEDS_DATA_DIRECTORY = "pg_read_all_settings"
_MAX_TEXT = 120
_DATA_DIRECTORY_SQL = ("SELECT setting FROM pg_catalog.pg_settings "
                       "WHERE name = 'data_directory'")
_TABLESPACES_SQL = ("SELECT pg_catalog.pg_tablespace_location(oid) FROM pg_catalog.pg_tablespace "
                    "WHERE pg_catalog.pg_tablespace_location(oid) <> '' ORDER BY 1")


@dataclass(frozen=True)
class Attestation:
    """A person's statement that the server's storage is encrypted, and where the proof is."""

    by: str
    on: date
    evidence: str
    method: str | None = None
    """How the storage is encrypted, as attested (`LUKS2 aes-xts-plain64`), if stated."""


@dataclass(frozen=True)
class StorageLocations:
    """Where the server keeps its data, as far as the role may see."""

    data_directory: Fact[str]
    tablespaces: Fact[tuple[str, ...]]


@dataclass(frozen=True)
class DiskEncryptionObservation:
    """The inventory's attestation (None when absent) and the server's storage locations."""

    server: str
    attestation: Attestation | Unknown | None
    storage: Fact[StorageLocations]
    as_of: date
    """The scan's date, to judge the attestation's age."""


def _field(source: object, name: str) -> object:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def read_attestation(config: object) -> Attestation | Unknown | None:
    """
    The attestation on a postgres inventory entry, read defensively: None when there is none,
    `Unknown` (unparseable) when it lacks who, a valid date or the evidence.
    """
    source = getattr(config, ATTESTATION_FIELD, None)
    if source is None:
        return None
    by, evidence, method = (_text(_field(source, name)) for name in ("by", "evidence", "method"))
    attested_on = _date(_field(source, "date"))
    if by is None or attested_on is None or evidence is None:
        missing = [name for name, value in (("by", by), ("date", attested_on),
                                            ("evidence", evidence)) if value is None]
        return Unknown(UnknownReason.UNPARSEABLE,
                       f"the encryption attestation lacks a valid {', '.join(missing)}",
                       needs=NEEDS_ATTESTATION)
    return Attestation(by, attested_on, evidence, method)


def _storage(connection: psycopg.Connection[Any]) -> StorageLocations:
    row = catalog_row(connection, _DATA_DIRECTORY_SQL, needs="pg_catalog.pg_settings")
    data_directory: Fact[str]
    if isinstance(row, Unknown):
        data_directory = row
    elif row is None:
        data_directory = Unknown(UnknownReason.ACCESS_DENIED,
                                 "the setting data_directory is hidden from the scan's role",
                                 needs=NEEDS_DATA_DIRECTORY)
    else:
        data_directory = str(row[0])
    rows = catalog_query(connection, _TABLESPACES_SQL, needs="pg_catalog.pg_tablespace")
    tablespaces = rows if isinstance(rows, Unknown) else tuple(str(r[0]) for r in rows)
    return StorageLocations(data_directory, tablespaces)


def _config(target: Target) -> PostgresConfig:
    if not isinstance(target.config, PostgresConfig):
        raise TypeError("a postgres check needs a PostgresConfig target")
    return target.config


class DiskEncryptionAttested(Check[DiskEncryptionObservation]):
    """
    The disks of a self-managed server are attested to be encrypted (it cannot be observed).
    """

    meta = CheckMeta(
        id="postgres.encryption.disk_attested",
        title="PostgreSQL storage encryption is attested",
        family=Family.ENCRYPTION,
        standard=Standard.ENCRYPTION,
        citations=("164.312(a)(2)(iv)",),
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Encryption of the disks under a self-managed server's data directory and "
            "tablespaces is invisible over SQL. Without an attestation in the inventory (who, "
            "when, what evidence) the finding is unverified; with one it passes as attested, "
            "not observed, and warns once the attestation is more than a year old. The data "
            "directory and tablespace locations are listed so the attestation's scope is "
            "plain."),
        remediation=(
            "Encrypt the volumes that hold the data directory, WAL and every tablespace (LUKS, "
            "encrypted cloud volumes), then record an encryption_attestation in the inventory: "
            "by (who inspected), date, and evidence (where the proof is kept, e.g. a ticket "
            "with the cryptsetup status output). Re-attest at least yearly."),
        operations=(
            Operation(System.POSTGRES, "pg_catalog.pg_settings",
                      "the data directory (needs pg_read_all_settings)"),
            Operation(System.POSTGRES, "pg_catalog.pg_tablespace",
                      "the tablespaces outside the data directory"),
            Operation(System.POSTGRES, "pg_tablespace_location()", "each tablespace's path"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> DiskEncryptionObservation:
        """Read the attestation from the inventory and the storage locations from the server."""
        config = _config(target)
        storage: Fact[StorageLocations]
        try:
            with ctx.clients.postgres(config.application) as connection:
                storage = _storage(connection)
        except PostgresUnavailable as exc:
            storage = exc.unknown
        return DiskEncryptionObservation(describe(config.application), read_attestation(config),
                                         storage, ctx.clock().date())

    def evaluate(self, obs: DiskEncryptionObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding: UNVERIFIED without a valid attestation; attested PASS or stale WARN."""
        build = self.findings(target)
        evidence = _evidence(obs)
        attestation = obs.attestation
        if attestation is None:
            attestation = Unknown(UnknownReason.NOT_VISIBLE,
                                  "disk encryption cannot be seen over SQL, and the inventory "
                                  "carries no attestation of it", needs=NEEDS_ATTESTATION)
        if not isinstance(attestation, Unknown) and attestation.on > obs.as_of:
            attestation = Unknown(UnknownReason.UNPARSEABLE,
                                  "the encryption attestation is dated in the future",
                                  needs=NEEDS_ATTESTATION)
        if isinstance(attestation, Unknown):
            return [build.make(Status.UNVERIFIED, RESOURCE,
                               f"Could not observe disk encryption: {attestation.detail}",
                               evidence=evidence, needs=attestation.needs,
                               unknown_reason=attestation.reason)]
        age = obs.as_of - attestation.on
        said = (f"Attested, not observed: {attestation.by} attested on "
                f"{attestation.on.isoformat()} that the server's storage is encrypted")
        if age > ATTESTATION_MAX_AGE:
            return [build.warned(RESOURCE, f"{said}, but the attestation is {age.days} days old; "
                                 "re-attest", evidence=evidence)]
        return [build.passed(RESOURCE, said, evidence=evidence)]


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


def _evidence(obs: DiskEncryptionObservation) -> dict[str, EvidenceValue]:
    evidence: dict[str, EvidenceValue] = {"server": obs.server, "basis": "not_observable"}
    if isinstance(obs.attestation, Attestation):
        evidence.update(basis="attested", attested_by=_cut(obs.attestation.by),
                        attested_on=obs.attestation.on.isoformat(),
                        attestation_evidence=_cut(obs.attestation.evidence),
                        attestation_age_days=(obs.as_of - obs.attestation.on).days)
        if obs.attestation.method:
            evidence["attested_method"] = _cut(obs.attestation.method)
    storage = obs.storage
    if isinstance(storage, Unknown):
        evidence["storage_locations"] = storage.reason.value
        return evidence
    data_directory, tablespaces = storage.data_directory, storage.tablespaces
    evidence["data_directory"] = data_directory if isinstance(data_directory, str) else None
    evidence["tablespace_locations"] = tablespaces if isinstance(tablespaces, tuple) else None
    not_visible = [f"{name} ({fact.needs or fact.reason.value})" for name, fact in
                   (("data_directory", data_directory), ("tablespaces", tablespaces))
                   if isinstance(fact, Unknown)]
    if not_visible:
        evidence["not_visible"] = tuple(not_visible)
    return evidence
