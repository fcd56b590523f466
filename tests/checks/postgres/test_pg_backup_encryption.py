"""
postgres.encryption.disk_attested: the defensive attestation reader, evaluate with hand-built
observations, and collect against the lab server with a role that lacks pg_read_all_settings
and with the superuser.

The inventory has no attestation field yet; `AttestedPostgresConfig` adds the proposed one
(`encryption_attestation: {by, date, evidence, method}`) so the check meets it as it will.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from hipaacheck.check import CheckContext, Policy
from hipaacheck.checks.postgres.encryption import (
    NEEDS_ATTESTATION,
    NEEDS_DATA_DIRECTORY,
    Attestation,
    DiskEncryptionAttested,
    DiskEncryptionObservation,
    StorageLocations,
    read_attestation,
)
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.lab.postgres import SeededLab
from hipaacheck.model import Status, System, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.redact import Secret

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic")
CHECK = DiskEncryptionAttested()
TODAY = date(2024, 7, 2)
ATTESTED = Attestation("J. Rivera, platform team", date(2024, 3, 1), "SEC-4411 (cryptsetup status)",
                       "LUKS2 aes-xts-plain64")
STORAGE = StorageLocations("/var/lib/postgresql/15/main", ("/srv/pg_tblspc/archive",))


class EncryptionAttestationConfig(BaseModel):
    """The proposed inventory model of an attestation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    by: str
    date: date
    evidence: str
    method: str | None = None


class AttestedPostgresConfig(PostgresConfig):
    """`PostgresConfig` with the proposed `encryption_attestation` field."""

    encryption_attestation: EncryptionAttestationConfig | None = None


def _judge(attestation: Any = ATTESTED, storage: Any = STORAGE) -> Any:
    obs = DiskEncryptionObservation("monitor@db:5432/clinic", attestation, storage, TODAY)
    findings = CHECK.evaluate(obs, TARGET, Policy())
    assert [f.resource for f in findings] == ["disk-encryption"]
    return findings[0]


# --- metadata and the reader ------------------------------------------------------------------

def test_metadata_is_complete() -> None:
    meta = DiskEncryptionAttested.meta

    assert meta.problems() == []
    assert meta.citations == ("164.312(a)(2)(iv)",)
    assert all(o.system is System.POSTGRES for o in meta.operations)


def test_read_attestation_from_a_model_a_mapping_or_nothing() -> None:
    model = SimpleNamespace(encryption_attestation=EncryptionAttestationConfig(
        by=" J. Rivera ", date=date(2024, 3, 1), evidence="SEC-4411"))
    mapping = SimpleNamespace(encryption_attestation={
        "by": "J. Rivera", "date": "2024-03-01", "evidence": "SEC-4411", "method": "LUKS2"})
    stamped = SimpleNamespace(encryption_attestation={
        "by": "J. Rivera", "date": datetime(2024, 3, 1, 9, tzinfo=UTC), "evidence": "SEC-4411"})

    assert read_attestation(model) == Attestation("J. Rivera", date(2024, 3, 1), "SEC-4411")
    assert read_attestation(mapping) == Attestation("J. Rivera", date(2024, 3, 1), "SEC-4411",
                                                    "LUKS2")
    assert read_attestation(stamped) == Attestation("J. Rivera", date(2024, 3, 1), "SEC-4411")
    assert read_attestation(SimpleNamespace()) is None
    assert read_attestation(SimpleNamespace(encryption_attestation=None)) is None


@pytest.mark.parametrize(("attestation", "missing"), [
    ({"date": "2024-03-01", "evidence": "SEC-1"}, "by"),
    ({"by": "x", "date": "March", "evidence": "SEC-1"}, "date"),
    ({"by": "x", "date": "2024-03-01", "evidence": "  "}, "evidence"),
    ({}, "by, date, evidence")])
def test_read_attestation_refuses_incomplete_ones(attestation: dict[str, Any],
                                                  missing: str) -> None:
    fact = read_attestation(SimpleNamespace(encryption_attestation=attestation))

    assert isinstance(fact, Unknown)
    assert fact.reason == UnknownReason.UNPARSEABLE
    assert fact.detail.endswith(missing)


# --- evaluate ---------------------------------------------------------------------------------

def test_unverified_without_an_attestation() -> None:
    finding = _judge(attestation=None)

    assert (finding.status, finding.unknown_reason, finding.needs) == (
        Status.UNVERIFIED, UnknownReason.NOT_VISIBLE, NEEDS_ATTESTATION)
    assert finding.evidence["basis"] == "not_observable"
    assert finding.evidence["data_directory"] == STORAGE.data_directory


def test_attested_passes_as_attested_not_observed() -> None:
    finding = _judge()

    assert finding.status == Status.PASS
    assert finding.reason.startswith("Attested, not observed")
    assert finding.evidence["basis"] == "attested"
    assert (finding.evidence["attested_by"], finding.evidence["attested_on"],
            finding.evidence["attestation_age_days"]) == ("J. Rivera, platform team",
                                                          "2024-03-01", 123)
    assert finding.evidence["tablespace_locations"] == ("/srv/pg_tblspc/archive",)


def test_stale_attestation_warns() -> None:
    stale = Attestation("J. Rivera", date(2023, 6, 1), "SEC-1")

    assert _judge(stale).status == Status.WARN


@pytest.mark.parametrize("attestation", [
    Attestation("J. Rivera", date(2024, 8, 1), "SEC-1"),
    Unknown(UnknownReason.UNPARSEABLE, "lacks a valid date", needs=NEEDS_ATTESTATION)])
def test_future_or_malformed_attestation_is_unverified(attestation: Any) -> None:
    finding = _judge(attestation)

    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED,
                                                        UnknownReason.UNPARSEABLE)


def test_unknown_storage_locations_do_not_change_the_verdict() -> None:
    hidden = Unknown(UnknownReason.ACCESS_DENIED, "hidden", needs=NEEDS_DATA_DIRECTORY)
    unreachable = Unknown(UnknownReason.UNREACHABLE, "could not connect")

    partly = _judge(storage=StorageLocations(hidden, ()))
    gone = _judge(storage=unreachable)

    assert partly.status == gone.status == Status.PASS
    assert partly.evidence["not_visible"] == ("data_directory (pg_read_all_settings)",)
    assert gone.evidence["storage_locations"] == "unreachable"


# --- collect against the lab server -----------------------------------------------------------

def _target(application: PostgresConnection, attestation: dict[str, Any] | None = None
            ) -> Target:
    config = AttestedPostgresConfig(
        name="clinic", application=application,
        encryption_attestation=None if attestation is None
        else EncryptionAttestationConfig(**attestation))
    return Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", config)


def _run(ctx: CheckContext, target: Target) -> Any:
    findings = CHECK.evaluate(CHECK.collect(ctx, target), target, ctx.policy)
    assert len(findings) == 1
    return findings[0]


def test_collect_with_a_role_without_pg_read_all_settings(pg_lab: SeededLab,
                                                          pg_ctx: CheckContext) -> None:
    finding = _run(pg_ctx, _target(pg_lab.app()))

    assert (finding.status, finding.needs) == (Status.UNVERIFIED, NEEDS_ATTESTATION)
    assert finding.evidence["data_directory"] is None
    assert finding.evidence["not_visible"] == ("data_directory (pg_read_all_settings)",)
    assert finding.evidence["tablespace_locations"] == ()


def test_collect_attested_with_the_superuser(pg_lab: SeededLab, pg_ctx: CheckContext) -> None:
    admin = PostgresConnection(conninfo=Secret(pg_lab.server.admin_conninfo()))
    today = pg_ctx.clock().date().isoformat()

    finding = _run(pg_ctx, _target(admin, {"by": "J. Rivera", "date": today,
                                           "evidence": "SEC-4411"}))

    assert finding.status == Status.PASS
    assert finding.evidence["basis"] == "attested"
    assert str(finding.evidence["data_directory"]).endswith("data")


def test_collect_unreachable_server_keeps_the_attestation(closed_port: int,
                                                          pg_ctx: CheckContext) -> None:
    conninfo = f"host=127.0.0.1 port={closed_port} dbname=x user=x password=x"
    today = pg_ctx.clock().date().isoformat()
    target = _target(PostgresConnection(conninfo=Secret(conninfo)),
                     {"by": "J. Rivera", "date": today, "evidence": "SEC-4411"})

    finding = _run(pg_ctx, target)

    assert finding.status == Status.PASS
    assert finding.evidence["storage_locations"] == "unreachable"
