"""
PHI in local log files (45 CFR 164.312(b); 164.502(b) and 164.514(d), minimum necessary).

Each configured log sink is a set of paths, globs and directories. Every file they expand to
(rotated and compressed copies included) is streamed through the PHI detector and judged on
its own: FAIL when unredacted identifiers were found, PASS when the file was read completely
and nothing was, UNVERIFIED when it could not be read, or was larger than its budget and only
sampled (a clean sample says nothing about the bytes it skipped). A configured path that matches nothing is UNVERIFIED too: nothing to observe is not a
pass.

Files share the sink's byte budget, the most recently modified first: each gets at most
`max_bytes_per_file` and an even share of what is left, and a plain file larger than its share
is sampled at its head, its tail and random offsets between them. Files the sink budget no
longer reaches are UNVERIFIED, never silently skipped.

Evidence names the kinds of identifier, their counts, line numbers, the validators that
fired and a masked structural preview of the first hit. It never holds a value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.config import LogSinkConfig
from hipaacheck.detectors.files import LogFileReader, discover
from hipaacheck.detectors.phi import KindSummary, PhiDetector, PhiSummary
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

FIRST_LINES = 10
"""How many line numbers with hits a finding lists."""


@dataclass(frozen=True)
class FileScan:
    """
    What reading one log file found: how much was read, and per kind of identifier the count,
    first and last line and number of distinct values. No values.

    `problem` is set when the read stopped early (a truncated stream): what was read still
    counts, but a clean partial read is not a pass.
    """

    bytes_read: int
    lines: int
    complete: bool
    sampled: bool
    compression: str
    long_lines: int
    kinds: tuple[KindSummary, ...]
    lines_with_hits: int
    first_lines: tuple[int, ...]
    preview: str | None
    validators: tuple[str, ...]
    engine: str
    problem: Unknown | None = None
    sampling: str = "whole"
    windows: int = 0
    first_offsets: tuple[int, ...] = ()
    size: int | None = None


@dataclass(frozen=True)
class FileObservation:
    """One file (or a configured path that matched nothing) and what reading it gave."""

    path: str
    scan: Fact[FileScan]


@dataclass(frozen=True)
class LogSinkObservation:
    """Every file of one sink, and the byte budgets they were read within."""

    sink: str
    max_bytes_per_file: int
    files: tuple[FileObservation, ...]
    max_bytes_per_sink: int | None = None


def scan_file(detector: PhiDetector, path: str, max_bytes: int) -> Fact[FileScan]:
    """
    Stream one file through the detector within `max_bytes`; an unreadable file is `Unknown`.
    """
    reader = LogFileReader(path, max_bytes=max_bytes)
    summary = PhiSummary(keep_lines=FIRST_LINES)
    for hits in detector.scan_blocks(reader.blocks(), previews=1):
        summary.add(hits)
    out = reader.outcome
    if out.problem is not None and (out.bytes_read == 0 or out.binary):
        return out.problem
    return FileScan(
        bytes_read=out.bytes_read, lines=out.lines, complete=out.complete, sampled=out.sampled,
        compression=out.compression, long_lines=out.long_lines, kinds=summary.kinds(),
        lines_with_hits=summary.lines_with_hits, first_lines=tuple(summary.lines),
        preview=summary.first_preview, validators=tuple(sorted(summary.validators)),
        engine=detector.engine, problem=out.problem, sampling=out.sampling,
        windows=out.windows, first_offsets=tuple(summary.offsets), size=out.size)


_NOTHING = Unknown(UnknownReason.NOT_VISIBLE, "the configured path matches no file",
                   needs="a path, glob or directory that names the sink's log files")
_SPENT = Unknown(UnknownReason.NOT_VISIBLE,
                 "the sink's byte budget was spent on more recent files before this one",
                 needs="a larger max_bytes_per_sink, or fewer files in the sink")
MIN_SHARE = 64 * 1024
"""The least a file is read with; below it the sink's budget counts as spent."""


def _by_recency(paths: Sequence[str]) -> list[str]:
    """Paths, most recently modified first (unreadable ones last, for their own finding)."""
    def key(path: str) -> tuple[float, str]:
        try:
            return (-os.stat(path).st_mtime, path)
        except OSError:
            return (0.0, path)
    return sorted(paths, key=key)


def scan_files(detector: PhiDetector, paths: Sequence[str], max_bytes_per_file: int,
               max_bytes_per_sink: int) -> list[FileObservation]:
    """
    Scan files newest first, each within `max_bytes_per_file` and an even share of what is
    left of `max_bytes_per_sink`; files the sink budget no longer reaches are `Unknown`.
    """
    left, observed = max_bytes_per_sink, []
    ordered = _by_recency(paths)
    for i, path in enumerate(ordered):
        share = min(max_bytes_per_file, left // (len(ordered) - i))
        if share < min(MIN_SHARE, max_bytes_per_file):
            share = min(left, max_bytes_per_file)
        if share <= 0:
            observed.append(FileObservation(path, _SPENT))
            continue
        scan = scan_file(detector, path, share)
        left -= scan.bytes_read if isinstance(scan, FileScan) else 0
        observed.append(FileObservation(path, scan))
    return observed


class PhiInLogFiles(Check[LogSinkObservation]):
    """
    Fails a log file that holds unredacted identifiers: SSNs, medical record numbers, dates
    of birth, phone numbers, e-mail addresses, card numbers and the rest of issue 6's list.
    """

    meta = CheckMeta(
        id="logs.files.phi",
        title="Log files hold no unredacted patient identifiers",
        family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS,
        citations=("164.312(b)", "164.502(b)", "164.514(d)"),
        severity=Severity.HIGH,
        target_kind=TargetKind.LOG_SINK,
        description=(
            "Streams every configured log file (rotated and gzip, bz2 or xz compressed copies "
            "included) through a two-stage PHI detector: SSNs, Medicare ids, medical record, "
            "plan and account numbers, dates of birth, ages over 89, e-mail addresses, NANP "
            "phone numbers, payment cards, NPI and DEA numbers, ICD-10 codes with a patient, "
            "names and street addresses under patient keys, HL7 PID segments, FHIR Patient "
            "resources and X12 member segments. Each candidate is validated (SSN area rules, "
            "Luhn, calendar dates, NANP codes) before it counts."),
        remediation=(
            "Stop the identifiers at the source: log an allow-list of fields instead of request "
            "bodies, or put a redaction filter in front of the sink. Then purge or re-redact "
            "the affected files and their rotated copies and backups, and restrict who can read "
            "them until they are clean."),
        operations=(Operation(
            System.FILE, "read",
            "list the configured paths and stream each file's content line by line within the "
            "sink's byte budget; matched values never leave the detector"),),
    )

    def applies_to(self, target: Target) -> bool:
        """Sinks of local files only (the other sink kinds have checks of their own)."""
        return target.kind == TargetKind.LOG_SINK and isinstance(target.config, LogSinkConfig)

    def collect(self, ctx: CheckContext, target: Target) -> LogSinkObservation:
        """Expand the sink's paths and scan every file; one observation per file."""
        sink = target.config
        if not isinstance(sink, LogSinkConfig):
            raise TypeError(f"target {target.id} carries no log sink configuration")
        detector = ctx.memo.get(("phi-detector",), PhiDetector)
        found = discover(sink.paths)
        files = scan_files(detector, found.files, sink.max_bytes_per_file,
                           sink.max_bytes_per_sink)
        files += [FileObservation(p.path, p.unknown) for p in found.problems]
        files += [FileObservation(p, _NOTHING) for p in found.unmatched]
        logger.debug("log sink %s: %d files, %d problems, %d unmatched paths", sink.name,
                     len(found.files), len(found.problems), len(found.unmatched))
        return LogSinkObservation(sink.name, sink.max_bytes_per_file,
                                  tuple(sorted(files, key=lambda f: f.path)),
                                  sink.max_bytes_per_sink)

    def evaluate(self, obs: LogSinkObservation, target: Target,
                 policy: Policy) -> Sequence[Finding]:
        """One finding per file; a sink with nothing to look at is UNVERIFIED."""
        if not obs.files:
            return [self.findings(target).unverified(obs.sink, _NOTHING, "the sink's log files")]
        return [self._judge(f, target) for f in obs.files]

    def _judge(self, file: FileObservation, target: Target) -> Finding:
        build = self.findings(target)
        scan = file.scan
        if isinstance(scan, Unknown):
            return build.unverified(file.path, scan, "the log file")
        if scan.kinds:
            return build.failed(file.path, _fail_reason(scan), evidence=_fail_evidence(scan))
        if scan.problem is not None:
            return build.unverified(file.path, scan.problem, "the whole log file")
        if scan.sampled:
            # A sample that found nothing says nothing about the bytes it skipped: not a PASS.
            reason = (f"Could not observe the whole log file: no unredacted identifiers in the "
                      f"{scan.bytes_read} bytes ({scan.lines} lines) sampled from "
                      f"{_sample_words(scan)}, but the rest exceeds the byte budget.")
            return build.make(Status.UNVERIFIED, file.path, reason,
                              evidence=_read_evidence(scan),
                              needs="a larger max_bytes_per_file or max_bytes_per_sink",
                              unknown_reason=UnknownReason.NOT_VISIBLE)
        reason = f"No unredacted identifiers in {scan.lines} lines, read completely."
        return build.passed(file.path, reason, evidence=_read_evidence(scan))


def _fail_reason(scan: FileScan) -> str:
    total = sum(k.count for k in scan.kinds)
    kinds = ", ".join(k.kind.value for k in scan.kinds)
    reason = (f"{total} unredacted identifier(s) on {scan.lines_with_hits} line(s): {kinds}.")
    if all(k.kind.provider for k in scan.kinds):
        reason += " Provider identifiers only (no patient identifier on the same lines)."
    return reason


def _sample_words(scan: FileScan) -> str:
    if scan.sampling == "windows":
        middle = max(0, scan.windows - 2)
        return f"its head, its tail and {middle} window(s) at random offsets"
    return "its head (a compressed file cannot be sought)"


def _read_evidence(scan: FileScan) -> dict[str, EvidenceValue]:
    state = "partial" if scan.problem else "sampled" if scan.sampled else "complete"
    evidence: dict[str, EvidenceValue] = {
        "read": state, "bytes_read": scan.bytes_read, "lines_read": scan.lines,
        "compression": scan.compression, "engine": scan.engine,
        "redaction_control": "none observed",
    }
    if scan.sampled:
        evidence["sampling"] = _sample_words(scan)
        evidence["file_bytes"] = scan.size
    if scan.long_lines:
        evidence["long_lines_scanned_in_pieces"] = scan.long_lines
    if scan.problem is not None:
        evidence["read_problem"] = scan.problem.detail
    return evidence


def _fail_evidence(scan: FileScan) -> dict[str, EvidenceValue]:
    evidence = _read_evidence(scan)
    evidence.update({
        "identifier_kinds": tuple(k.kind.value for k in scan.kinds),
        "identifier_counts": tuple(k.count for k in scan.kinds),
        "distinct_values": tuple(k.distinct for k in scan.kinds),
        "first_line_by_kind": tuple(k.first_line for k in scan.kinds),
        "last_line_by_kind": tuple(k.last_line for k in scan.kinds),
        "lines_with_identifiers": scan.lines_with_hits,
        "first_lines": scan.first_lines,
        "first_offsets": scan.first_offsets,
        "validators": scan.validators,
        "first_hit_preview": scan.preview,
        "provider_identifiers_only": all(k.kind.provider for k in scan.kinds),
    })
    return evidence
