"""
The breach-readiness checks' judgement on hand-built observations (trail shape, reads captured,
queryability), and the pure helpers they rest on, without a server.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from hipaacheck.check import Policy
from hipaacheck.checks.postgres.breach import (
    LARGE_TABLE_ROWS,
    ActionSample,
    BreachQueryable,
    Index,
    PgAudit,
    Plan,
    QueryabilityObservation,
    ReadsCaptured,
    ReadsObservation,
    TrailSet,
    TrailShape,
    TrailTable,
    breach_query,
    pgaudit_logs_reads,
    reduce_sample,
    summarise_plan,
)
from hipaacheck.checks.postgres.trail import Column, TableRef, TrailColumns, classify_columns
from hipaacheck.config import PostgresConfig, PostgresConnection
from hipaacheck.model import Finding, Status, Target, TargetKind, Unknown, UnknownReason
from hipaacheck.redact import Secret

TARGET = Target(TargetKind.POSTGRES, "postgres:clinic", "clinic", PostgresConfig(
    name="clinic", application=PostgresConnection(conninfo=Secret("host=db user=app"))))
DENIED = Unknown(UnknownReason.ACCESS_DENIED, "permission denied", "SELECT on audit.log")
COLUMNS = (Column("id", "bigint", "N", False), Column("at", "timestamp with time zone", "D", True),
           Column("actor", "text", "S", True), Column("action", "text", "S", True),
           Column("patient_id", "bigint", "N", True))
ROLES = TrailColumns("actor", "at", "action", "patient_id")
INDEXES = (Index("by_actor", "btree", True, ("actor", "at")),
           Index("by_patient", "btree", True, ("patient_id", "at")))
TABLE = TrailTable(TableRef("audit.log", 1, "audit", "log", "r", 5000), COLUMNS, ROLES, INDEXES)


def trails(table: TrailTable | Unknown = TABLE) -> TrailSet:
    return TrailSet("audit", {"audit.log": table})


# --- columns and shape ---

def test_classify_columns_by_name_type_and_override() -> None:
    assert classify_columns(COLUMNS) == ROLES
    odd = (Column("who_did_it", "text", "S", True), Column("stamp", "timestamp", "D", True),
           Column("verb", "text", "S", True), Column("chart_patient", "int", "N", True))
    assert classify_columns(odd) == TrailColumns(None, "stamp", "verb", "chart_patient")
    assert classify_columns(odd, {"actor": "WHO_DID_IT"}).actor == "who_did_it"


def shape(table: TrailTable | Unknown = TABLE) -> Finding:
    [finding] = TrailShape().evaluate(trails(table), TARGET, Policy())
    return finding


def test_complete_shape_passes() -> None:
    finding = shape()
    assert (finding.check_id, finding.status) == ("postgres.audit.trail_shape", Status.PASS)
    assert finding.evidence["record_column"] == "patient_id"


@pytest.mark.parametrize("role", ["actor", "time", "action", "record"])
def test_each_missing_column_fails(role: str) -> None:
    finding = shape(replace(TABLE, roles=replace(ROLES, **{role: None})))
    assert finding.status is Status.FAIL
    assert finding.evidence["missing"] == (role,)
    assert str(finding.evidence["trail_breach_query"]).startswith("not answerable")


def test_shape_unknowns_are_unverified() -> None:
    assert shape(DENIED).status is Status.UNVERIFIED
    [finding] = TrailShape().evaluate(TrailSet("audit", DENIED), TARGET, Policy())
    assert (finding.resource, finding.unknown_reason) == ("audit-tables",
                                                          UnknownReason.ACCESS_DENIED)


# --- reads captured ---

NO_PGAUDIT = PgAudit(False, False, "shared_preload_libraries")
WRITES_ONLY = ActionSample(rows=40, read_rows=0, read_words=(), distinct=3, order="time")
WITH_READS = ActionSample(rows=40, read_rows=12, read_words=("read",), distinct=4, order="time")


def reads(sample: ActionSample | Unknown = WITH_READS,
          pgaudit: PgAudit | Unknown = NO_PGAUDIT) -> Finding:
    obs = ReadsObservation(trails(), {"audit.log": sample}, pgaudit)
    [finding] = ReadsCaptured().evaluate(obs, TARGET, Policy())
    return finding


def test_read_rows_pass() -> None:
    finding = reads()
    assert (finding.check_id, finding.status) == ("postgres.audit.reads_captured", Status.PASS)
    assert finding.evidence["reads_source"] == "trail rows"
    assert finding.evidence["read_actions"] == ("read",)


def test_pgaudit_read_logging_passes_whatever_the_rows() -> None:
    for sample in (WRITES_ONLY, DENIED):
        finding = reads(sample, PgAudit(True, True, "pgaudit.log of this session"))
        assert (finding.status, finding.evidence["reads_source"]) == (Status.PASS, "pgaudit")


def test_writes_only_fails() -> None:
    finding = reads(WRITES_ONLY)
    assert finding.status is Status.FAIL
    assert finding.evidence["read_rows"] == 0


@pytest.mark.parametrize(("sample", "pgaudit", "reason"), [
    (DENIED, NO_PGAUDIT, UnknownReason.ACCESS_DENIED),
    (replace(WRITES_ONLY, rows=0, distinct=0), NO_PGAUDIT, UnknownReason.NOT_VISIBLE),
    (WRITES_ONLY, Unknown(UnknownReason.ACCESS_DENIED, "denied", "pg_settings"),
     UnknownReason.ACCESS_DENIED),
])
def test_reads_unknowns_are_unverified(sample: ActionSample | Unknown, pgaudit: PgAudit | Unknown,
                                       reason: UnknownReason) -> None:
    finding = reads(sample, pgaudit)
    assert (finding.status, finding.unknown_reason) == (Status.UNVERIFIED, reason)


def test_reduce_sample_keeps_counts_and_vocabulary_words_only() -> None:
    sample = reduce_sample([("READ", 3), ("chart.viewed", 2), ("update", 5),
                            ("Jane Doe opened", 1), (None, 1)], "heap")
    assert (sample.rows, sample.read_rows, sample.distinct) == (12, 6, 5)
    assert sample.read_words == ("opened", "read", "viewed")
    assert "Jane" not in repr(sample)


@pytest.mark.parametrize(("setting", "logs"), [
    ("read", True), ("read, write", True), ("all", True), ("all, -read", False),
    ("write, ddl", False), ("", False), ("ALL,-misc", True),
])
def test_pgaudit_log_classes(setting: str, logs: bool) -> None:
    assert pgaudit_logs_reads(setting) is logs


# --- queryability ---

PLAN = Plan(total_cost=12.5, rows=3, indexes_used=("by_actor",), root="Index Scan")
SCAN = Plan(total_cost=9000.0, rows=3, indexes_used=(), root="Seq Scan")


def queryable(table: TrailTable | Unknown = TABLE, by_user: Plan | Unknown = PLAN,
              by_patient: Plan | Unknown = PLAN) -> Finding:
    obs = QueryabilityObservation(trails(table), {"audit.log": {"by_user": by_user,
                                                                "by_patient": by_patient}})
    [finding] = BreachQueryable().evaluate(obs, TARGET, Policy())
    return finding


def test_indexed_by_user_and_patient_passes_with_costs() -> None:
    finding = queryable()
    assert (finding.check_id, finding.status) == ("postgres.audit.breach_queryable",
                                                  Status.PASS)
    assert finding.evidence["by_user_estimated_cost"] == 12.5
    assert finding.evidence["by_patient_index"] == "by_patient"
    assert finding.evidence["by_user_index_covers_time"] is True
    assert str(finding.evidence["trail_breach_query"]).startswith("answerable")


@pytest.mark.parametrize("indexes", [
    (INDEXES[0],),
    (INDEXES[1],),
    (Index("by_time", "btree", True, ("at", "actor")), INDEXES[1]),
    (replace(INDEXES[0], usable=False), INDEXES[1]),
    (Index("gin_actor", "gin", True, ("actor",)), INDEXES[1]),
])
def test_a_lookup_without_a_serving_index_fails(indexes: tuple[Index, ...]) -> None:
    assert queryable(replace(TABLE, indexes=indexes)).status is Status.FAIL


def test_a_missing_column_fails_even_with_plans() -> None:
    finding = queryable(replace(TABLE, roles=replace(ROLES, record=None)))
    assert finding.status is Status.FAIL


def test_large_table_whose_plan_ignores_the_index_warns() -> None:
    big = replace(TABLE, ref=replace(TABLE.ref, estimated_rows=LARGE_TABLE_ROWS))
    assert queryable(big, by_patient=SCAN).status is Status.WARN
    assert queryable(TABLE, by_patient=SCAN).status is Status.PASS


@pytest.mark.parametrize("changes", [
    {"table": DENIED},
    {"table": replace(TABLE, indexes=DENIED)},
    {"by_user": DENIED},
    {"by_patient": Unknown(UnknownReason.TIMEOUT, "planning timed out")},
])
def test_queryability_unknowns_are_unverified(changes: dict[str, object]) -> None:
    assert queryable(**changes).status is Status.UNVERIFIED  # type: ignore[arg-type]


def test_breach_query_needs_a_date_time_column() -> None:
    epoch = replace(TABLE, columns=(*COLUMNS[:1], Column("at", "bigint", "N", True),
                                    *COLUMNS[2:]))
    unknown = breach_query(epoch, "actor")
    assert isinstance(unknown, Unknown) and unknown.reason is UnknownReason.UNPARSEABLE
    assert isinstance(breach_query(replace(TABLE, roles=replace(ROLES, actor=None)), "actor"),
                      Unknown)


def test_summarise_plan_leaves_out_init_plans() -> None:
    plan = {"Node Type": "Seq Scan", "Total Cost": 30.5, "Plan Rows": 7, "Plans": [
        {"Node Type": "Limit", "Parent Relationship": "InitPlan", "Plans": [
            {"Node Type": "Index Only Scan", "Index Name": "by_actor"}]}]}
    assert summarise_plan(plan) == Plan(30.5, 7, (), "Seq Scan")
    nested = {"Node Type": "Bitmap Heap Scan", "Total Cost": 4.0, "Plan Rows": 1,
              "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "by_patient",
                         "Parent Relationship": "Outer"}]}
    assert summarise_plan(nested).indexes_used == ("by_patient",)
