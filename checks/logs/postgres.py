"""
PostgreSQL settings that write PHI into the server log by design (45 CFR 164.312(b);
164.502(b) and 164.514(d), minimum necessary).

Statement logging copies whatever a query carries, literals and bind parameters, into the
server log, and from there into every system the log is shipped to. The check reads, through
a read-only session of the application's own role (so it sees what the application's sessions
get), `pg_catalog.pg_settings`, and in `pg_catalog.pg_db_role_setting` the per-role and
per-database overrides a server-wide look would miss:

- `log_statement` = `all` or `mod`, `log_min_duration_statement` = 0, `log_min_duration_sample`
  = 0 with a sample rate, `log_transaction_sample_rate` > 0, the `debug_print_*` trees: FAIL;
  a positive `log_min_duration_statement` (slow statements, with their text): WARN;
- `auto_explain` loaded with `log_min_duration` = 0 or `log_analyze` on: FAIL (every plan is
  logged with its query text and the literals in its conditions); loaded otherwise: WARN;
- `log_parameter_max_length` not 0 says bind parameters are logged with those statements;
  `log_parameter_max_length_on_error` not 0 logs them for failing statements too: WARN.

NOTE: `log_min_error_statement` (default `error`) logs the text of failing statements on
every server; it is reported in evidence, not judged, since nearly every server would fail.

Values of settings are server configuration, not PHI, and are reported; override values of
any other setting (which can hold secrets) are never read out of `setconfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.clients.postgres import catalog_query, describe
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

logger = logging.getLogger(__name__)

CORE_SETTINGS = ("log_statement", "log_min_duration_statement", "log_parameter_max_length")
"""Settings every supported server (13+) has; one missing means the role cannot see it."""
SETTINGS = CORE_SETTINGS + (
    "log_min_duration_sample", "log_statement_sample_rate", "log_transaction_sample_rate",
    "log_parameter_max_length_on_error", "log_min_error_statement", "debug_print_parse",
    "debug_print_rewritten", "debug_print_plan", "auto_explain.log_min_duration",
    "auto_explain.log_analyze", "auto_explain.sample_rate",
    "auto_explain.log_parameter_max_length", "log_destination", "logging_collector")
_SETTINGS_SQL = ("SELECT name, setting FROM pg_catalog.pg_settings "
                 "WHERE name = ANY(%s) ORDER BY name")
_OVERRIDES_SQL = (
    "SELECT COALESCE(d.datname, ''), COALESCE(r.rolname, ''), s.setconfig "
    "FROM pg_catalog.pg_db_role_setting s "
    "LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase "
    "LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole ORDER BY 1, 2")
_SETTINGS_VIEW, _OVERRIDES_VIEW = "pg_catalog.pg_settings", "pg_catalog.pg_db_role_setting"
APP = "the application's sessions"
"""Where the settings read in the application's own session apply."""


@dataclass(frozen=True)
class Override:
    """A relevant setting overridden for a role and/or a database (empty: every one)."""

    database: str
    role: str
    name: str
    value: str

    @property
    def scope(self) -> str:
        """`role r in database d`, `role r`, or `database d`."""
        parts = ([f"role {self.role}"] if self.role else []) + (
            [f"database {self.database}"] if self.database else [])
        return " in ".join(parts) or "every session"


@dataclass(frozen=True)
class PostgresLogObservation:
    """The logging settings the application's sessions get, and the overrides for others."""

    server: str
    settings: Fact[dict[str, str]]
    overrides: Fact[tuple[Override, ...]]


@dataclass(frozen=True)
class Problem:
    """One setting that writes statement text or parameters into the log."""

    status: Status
    where: str
    setting: str
    value: str
    why: str


def _number(settings: dict[str, str], name: str, default: float) -> float:
    try:
        return float(settings.get(name, default))
    except ValueError:
        return default


def problems_of(settings: dict[str, str], where: str = APP) -> list[Problem]:
    """What a set of settings writes into the log, worst first."""
    found: list[Problem] = []

    def add(status: Status, name: str, why: str) -> None:
        found.append(Problem(status, where, name, settings.get(name, ""), why))

    if settings.get("log_statement") in ("all", "mod"):
        add(Status.FAIL, "log_statement", "every matching statement is logged with its text")
    duration = _number(settings, "log_min_duration_statement", -1)
    if duration == 0:
        add(Status.FAIL, "log_min_duration_statement", "every statement is logged with its text")
    elif duration > 0:
        add(Status.WARN, "log_min_duration_statement",
            "statements slower than the threshold are logged with their text")
    sample = _number(settings, "log_min_duration_sample", -1)
    if sample >= 0 and _number(settings, "log_statement_sample_rate", 1) > 0:
        add(Status.FAIL if sample == 0 else Status.WARN, "log_min_duration_sample",
            "a sample of statements is logged with their text")
    if _number(settings, "log_transaction_sample_rate", 0) > 0:
        add(Status.FAIL, "log_transaction_sample_rate",
            "every statement of sampled transactions is logged with its text")
    for name in ("debug_print_parse", "debug_print_rewritten", "debug_print_plan"):
        if settings.get(name) == "on":
            add(Status.FAIL, name, "query trees, constants included, are logged")
    found += _auto_explain(settings, where)
    if _number(settings, "log_parameter_max_length_on_error", 0) != 0:
        add(Status.WARN, "log_parameter_max_length_on_error",
            "bind parameters of failing statements are logged")
    return sorted(found, key=lambda p: p.status != Status.FAIL)


def _auto_explain(settings: dict[str, str], where: str) -> list[Problem]:
    """auto_explain's settings exist in a session only where the module is loaded."""
    duration = _number(settings, "auto_explain.log_min_duration", -1)
    if "auto_explain.log_min_duration" not in settings or duration < 0 or \
            _number(settings, "auto_explain.sample_rate", 1) <= 0:
        return []
    analyze = settings.get("auto_explain.log_analyze") == "on"
    status = Status.FAIL if duration == 0 or analyze else Status.WARN
    why = ("every plan is logged with its query text and the literals of its conditions"
           if duration == 0 else "plans of slow statements are logged with their query text")
    if analyze:
        why += ", executed with EXPLAIN ANALYZE"
    name = "auto_explain.log_analyze" if analyze else "auto_explain.log_min_duration"
    return [Problem(status, where, name, settings.get(name, ""), why)]


def parameters_logged(settings: dict[str, str]) -> bool:
    """Whether logged statements carry their bind parameters (log_parameter_max_length != 0)."""
    return _number(settings, "log_parameter_max_length", -1) != 0


class PostgresStatementLogging(Check[PostgresLogObservation]):
    """
    Fails a PostgreSQL server whose settings write statements, literals and bind parameters
    into its log for the application's sessions or for any role or database.
    """

    meta = CheckMeta(
        id="logs.postgres.statement_logging",
        title="PostgreSQL does not write statements and their parameters to its log",
        family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS,
        citations=("164.312(b)", "164.502(b)", "164.514(d)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.POSTGRES,
        description=(
            "Reads, as the application's role, the logging settings its sessions get "
            "(log_statement, log_min_duration_statement and its sampled variants, "
            "log_transaction_sample_rate, debug_print_*, auto_explain with log_analyze, "
            "log_parameter_max_length) from pg_settings, and the per-role and per-database "
            "overrides of those settings from pg_db_role_setting."),
        remediation=(
            "Set log_statement to none or ddl, log_min_duration_statement and "
            "log_min_duration_sample to -1 (or a threshold with log_parameter_max_length = 0 "
            "and no literals in queries), log_transaction_sample_rate to 0 and "
            "log_parameter_max_length_on_error to 0; drop auto_explain or set "
            "auto_explain.log_analyze off with a high log_min_duration; remove the role and "
            "database overrides (ALTER ROLE ... RESET). Then purge the server logs and their "
            "shipped copies."),
        operations=(
            Operation(System.POSTGRES, _SETTINGS_VIEW,
                      "read the logging settings of the application's session"),
            Operation(System.POSTGRES, _OVERRIDES_VIEW,
                      "read per-role and per-database overrides of those settings only"),
        ),
    )

    def collect(self, ctx: CheckContext, target: Target) -> PostgresLogObservation:
        """Read the settings as the application's role, and every override."""
        config = target.config
        if not isinstance(config, PostgresConfig):
            raise TypeError(f"target {target.id} carries no PostgreSQL configuration")
        with ctx.clients.postgres(config.application) as connection:
            rows = catalog_query(connection, _SETTINGS_SQL, [list(SETTINGS)],
                                 needs=_SETTINGS_VIEW)
            overrides = catalog_query(connection, _OVERRIDES_SQL, needs=_OVERRIDES_VIEW)
        settings: Fact[dict[str, str]] = rows if isinstance(rows, Unknown) else {
            str(name): str(value) for name, value in rows}
        if isinstance(settings, dict):
            hidden = [n for n in CORE_SETTINGS if n not in settings]
            if hidden:
                settings = Unknown(UnknownReason.NOT_VISIBLE,
                                   f"the role cannot see {', '.join(hidden)}",
                                   needs="pg_read_all_settings")
        return PostgresLogObservation(describe(config.application), settings,
                                      _overrides(overrides))

    def evaluate(self, obs: PostgresLogObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding for the server: the worst of its settings and overrides."""
        build = self.findings(target)
        resource = target.name
        if isinstance(obs.settings, Unknown):
            return [build.unverified(resource, obs.settings, "the server's logging settings")]
        found = problems_of(obs.settings)
        if not isinstance(obs.overrides, Unknown):
            for o in obs.overrides:
                found += problems_of(dict(obs.settings, **{o.name: o.value}), o.scope)
            found = _distinct(found, obs.overrides)
        evidence = _evidence(obs, found)
        fails = [p for p in found if p.status == Status.FAIL]
        if fails:
            return [build.failed(resource, _reason(fails, obs.settings), evidence=evidence)]
        if isinstance(obs.overrides, Unknown):
            finding = build.unverified(resource, obs.overrides, "per-role and per-database "
                                       "overrides of the logging settings")
            return [finding]
        if found:
            return [build.warned(resource, _reason(found, obs.settings), evidence=evidence)]
        return [build.passed(resource, "No setting writes statement text or bind parameters "
                             "into the server log for any role or database.", evidence=evidence)]


def _distinct(found: list[Problem], overrides: tuple[Override, ...]) -> list[Problem]:
    """Problems once each; an override's problem counts only for the setting it changes."""
    names = {(o.scope, o.name) for o in overrides}
    kept, seen = [], set()
    for p in found:
        if p.where != APP and (p.where, p.setting) not in names:
            continue
        if (p.where, p.setting) not in seen:
            seen.add((p.where, p.setting))
            kept.append(p)
    return kept


def _reason(found: list[Problem], settings: dict[str, str]) -> str:
    first = found[0]
    where = f" for {first.where}"
    reason = f"{first.setting} = {first.value}{where}: {first.why}"
    if parameters_logged(settings):
        reason += ", bind parameters included"
    more = len(found) - 1
    return reason + (f"; and {more} more setting(s)." if more else ".")


def _evidence(obs: PostgresLogObservation, found: list[Problem]) -> dict[str, EvidenceValue]:
    settings = obs.settings if isinstance(obs.settings, dict) else {}
    evidence: dict[str, EvidenceValue] = {
        "server": obs.server,
        "settings": tuple(f"{k}={v}" for k, v in sorted(settings.items())),
        "bind_parameters_logged": parameters_logged(settings),
        "auto_explain_loaded": "auto_explain.log_min_duration" in settings,
        "redaction_control": "none available (PostgreSQL logs statement text as issued)",
        "problems": tuple(f"{p.status.value} {p.where}: {p.setting}={p.value}" for p in found),
    }
    if isinstance(obs.overrides, Unknown):
        evidence["overrides"] = f"not readable: {obs.overrides.detail}"
    else:
        evidence["overrides"] = tuple(f"{o.scope}: {o.name}={o.value}" for o in obs.overrides)
    return evidence


def _overrides(rows: Fact[list[tuple[object, ...]]]) -> Fact[tuple[Override, ...]]:
    """The overrides of the relevant settings; other settings' values are never kept."""
    if isinstance(rows, Unknown):
        return rows
    found = []
    for database, role, config in rows:
        for entry in config if isinstance(config, list) else []:
            name, _, value = str(entry).partition("=")
            if name in SETTINGS:
                found.append(Override(str(database), str(role), name, value))
    return tuple(found)
