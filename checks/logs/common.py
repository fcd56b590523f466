"""
What every log-sink check shares: scanning content into a value-free tally, the redaction
control found in front of a sink, and the evidence and judgement built from them.

A sink's resource (a log group, a bucket prefix, a pod) is read as one or more sources
(streams, objects, containers). Each source's blocks go through the same `PhiDetector`, and
everything found lands in one `PhiSummary` per resource: kinds, counts, first and last line,
offset or time, distinct fingerprints and the first masked preview. No value is kept.

Names that can hold PHI themselves (object keys, stream names) never reach evidence: a
resource is named by what the inventory names (a group, a prefix, a pod), and what lies
inside it is counted, timed and located by line or offset, never by its own name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from hipaacheck.detectors.files import ReadOutcome
from hipaacheck.detectors.phi import (
    Block,
    Kind,
    KindSummary,
    LineHits,
    PhiDetector,
    PhiSummary,
)
from hipaacheck.model import EvidenceValue, Finding, FindingBuilder, Unknown, UnknownReason

logger = logging.getLogger(__name__)

FIRST_LINES = 10
"""How many line numbers (or offsets) with hits a finding lists."""

NO_CONTROL = "none observed"
"""The redaction control of a sink type with nothing hipaacheck could see in front of it."""


@dataclass(frozen=True)
class RedactionControl:
    """
    The redaction found in front of a sink, as far as it could be read.

    `state` is `deidentify` (a masking control covering every identifier it can mask),
    `deidentify_partial`, `audit_only` (finds but does not mask: not a control), `none`,
    `none observed` (the sink type offers nothing hipaacheck can see) or `unknown`.
    `masks` are the kinds it masks; `needs` names what would let the tool read it.
    """

    state: str
    masks: frozenset[Kind] = frozenset()
    missing: tuple[Kind, ...] = ()
    detail: str = ""
    needs: str | None = None

    @property
    def mitigates(self) -> bool:
        """Whether the control masks identifiers at all (Audit-only does not)."""
        return self.state in ("deidentify", "deidentify_partial")


NONE_OBSERVED = RedactionControl(NO_CONTROL, detail="no redaction control is visible to the scan")


@dataclass(frozen=True)
class ContentScan:
    """
    What scanning the sources of one resource found: how much was read and, per kind of
    identifier, the counts, lines, offsets and times. No values.

    `complete` is true when every source was read to its end; `problems` are the reasons the
    sources that stopped early (or could not be read at all) gave; `unread` counts the latter.
    """

    sources: int
    bytes_read: int
    records: int
    complete: bool
    kinds: tuple[KindSummary, ...]
    records_with_hits: int
    first_lines: tuple[int, ...]
    first_offsets: tuple[int, ...]
    preview: str | None
    validators: tuple[str, ...]
    engine: str
    sources_with_hits: int = 0
    problems: tuple[Unknown, ...] = ()
    unread: int = 0
    notes: tuple[str, ...] = ()


@dataclass
class Tally:
    """
    Accumulates the scans of the sources of one resource into a `ContentScan`.
    """

    detector: PhiDetector
    summary: PhiSummary = field(default_factory=lambda: PhiSummary(keep_lines=FIRST_LINES))
    sources: int = 0
    bytes_read: int = 0
    records: int = 0
    complete: bool = True
    sources_with_hits: int = 0
    problems: list[Unknown] = field(default_factory=list)
    unread: int = 0
    notes: list[str] = field(default_factory=list)

    def scan(self, blocks: Iterable[Block],
             on_hit: Callable[[Block, LineHits], int | None] | None = None) -> int:
        """
        Run one source's blocks through the detector; return the number of lines with hits.

        `on_hit(block, hits)` is told of every line with hits and returns the time of its
        record (epoch ms), for sinks whose records carry one. The first line's masked preview
        is kept.
        """
        before = self.summary.lines_with_hits
        for block in blocks:
            previews = 0 if self.summary.first_preview is not None else 1
            for hits in self.detector.scan_blocks((block,), previews=previews):
                when = on_hit(block, hits) if on_hit is not None else None
                self.summary.add(hits, when)
                previews = 0
        found = self.summary.lines_with_hits - before
        self.sources_with_hits += 1 if found else 0
        return found

    def read(self, out: ReadOutcome) -> None:
        """Count a source read through a `ReadOutcome`; a problem makes the tally partial."""
        self.sources += 1
        self.bytes_read += out.bytes_read
        self.records += out.lines
        if out.problem is not None:
            self.fail(out.problem, unread=out.bytes_read == 0 or out.binary)
        elif not out.complete:
            self.complete = False

    def fail(self, unknown: Unknown, *, unread: bool = True) -> None:
        """Count a source that could not be read (or read only in part)."""
        self.complete = False
        self.problems.append(unknown)
        self.unread += 1 if unread else 0

    def result(self) -> ContentScan:
        """The value-free result of every source counted so far."""
        s = self.summary
        return ContentScan(
            sources=self.sources, bytes_read=self.bytes_read, records=self.records,
            complete=self.complete and not self.problems, kinds=s.kinds(),
            records_with_hits=s.lines_with_hits, first_lines=tuple(s.lines),
            first_offsets=tuple(s.offsets), preview=s.first_preview,
            validators=tuple(sorted(s.validators)), engine=self.detector.engine,
            sources_with_hits=self.sources_with_hits, problems=tuple(self.problems),
            unread=self.unread, notes=tuple(self.notes))


def iso_time(epoch_ms: int | None) -> str | None:
    """An epoch-millisecond time as an ISO 8601 UTC string."""
    if epoch_ms is None:
        return None
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Judgement and evidence.

def judge(build: FindingBuilder[object], resource: str, scan: ContentScan,
          control: RedactionControl, what: str,
          extra: Mapping[str, EvidenceValue] | None = None) -> Finding:
    """
    One finding on a resource's content: FAIL when identifiers were found, UNVERIFIED when a
    source could not be read or there was no source at all, PASS otherwise (a source that was
    read and turned out empty, an empty log, is an observation too).

    `what` names the records in sentences ("events", "lines"); `extra` adds sink-specific
    evidence (windows read, containers, objects).
    """
    evidence = {**content_evidence(scan, control), **(extra or {})}
    if scan.kinds:
        return build.failed(resource, fail_reason(scan, control, what), evidence=evidence)
    if scan.problems:
        first = scan.problems[0]
        finding = build.unverified(resource, first, f"all of the {what}")
        return replace(finding, evidence=dict(evidence))
    if scan.sources == 0:
        nothing = Unknown(UnknownReason.NOT_VISIBLE, f"there was no source of {what} to read",
                          needs="sources within the sink's configured scope")
        return replace(build.unverified(resource, nothing, f"the {what}"), evidence=evidence)
    if not scan.complete:
        # A budgeted sample that found nothing says nothing about what it skipped: not a PASS.
        partial = Unknown(UnknownReason.NOT_VISIBLE,
                          f"only a budgeted sample of the {what} was read and it held none",
                          needs="a larger byte or event budget for the sink")
        return replace(build.unverified(resource, partial, f"all of the {what}"),
                       evidence=evidence)
    return build.passed(resource, pass_reason(scan, control, what), evidence=evidence)


def fail_reason(scan: ContentScan, control: RedactionControl, what: str) -> str:
    """The one-sentence reason of a FAIL on content."""
    total = sum(k.count for k in scan.kinds)
    kinds = ", ".join(k.kind.value for k in scan.kinds)
    reason = f"{total} unredacted identifier(s) in {scan.records_with_hits} {what}: {kinds}."
    if all(k.kind.provider for k in scan.kinds):
        reason += " Provider identifiers only (no patient identifier on the same records)."
    return reason + " " + control_sentence(control)


def pass_reason(scan: ContentScan, control: RedactionControl, what: str) -> str:
    """The one-sentence reason of a PASS on content."""
    how = "read completely" if scan.complete else "a budgeted sample"
    return (f"No unredacted identifiers in {scan.records} {what} from {scan.sources} "
            f"source(s), {how}. {control_sentence(control)}")


def control_sentence(control: RedactionControl) -> str:
    """How the redaction control in front of the sink reads in a reason."""
    sentences = {
        "deidentify": "A masking (Deidentify) data protection policy covers the identifiers "
                      "it can mask.",
        "deidentify_partial": "A masking data protection policy is in place but leaves some "
                              "identifiers unmasked.",
        "audit_only": "The data protection policy only audits; it masks nothing.",
        "none": "No redaction control was found in front of the sink.",
        "unknown": "Whether a redaction control is in front of the sink could not be read.",
    }
    return sentences.get(control.state, "No redaction control is visible in front of the sink.")


def content_evidence(scan: ContentScan,
                     control: RedactionControl) -> dict[str, EvidenceValue]:
    """Kinds, counts, where and how much was read, and the redaction control; no values."""
    state = "partial" if scan.problems else "complete" if scan.complete else "sampled"
    evidence: dict[str, EvidenceValue] = {
        "read": state, "sources_read": scan.sources, "bytes_read": scan.bytes_read,
        "records_read": scan.records, "engine": scan.engine,
        "redaction_control": control.state,
    }
    if control.missing:
        evidence["redaction_leaves_unmasked"] = tuple(k.value for k in control.missing)
    if control.needs:
        evidence["redaction_control_needs"] = control.needs
    if scan.problems:
        evidence["read_problems"] = tuple(sorted({p.detail for p in scan.problems}))[:5]
        evidence["sources_unread"] = scan.unread
    if scan.notes:
        evidence["notes"] = scan.notes
    if scan.kinds:
        evidence.update(_kind_evidence(scan, control))
    return evidence


def _kind_evidence(scan: ContentScan, control: RedactionControl) -> dict[str, EvidenceValue]:
    kinds = scan.kinds
    evidence: dict[str, EvidenceValue] = {
        "identifier_kinds": tuple(k.kind.value for k in kinds),
        "identifier_counts": tuple(k.count for k in kinds),
        "distinct_values": tuple(k.distinct for k in kinds),
        "records_with_identifiers": scan.records_with_hits,
        "sources_with_identifiers": scan.sources_with_hits,
        "validators": scan.validators,
        "first_hit_preview": scan.preview,
        "provider_identifiers_only": all(k.kind.provider for k in kinds),
    }
    if any(k.first_line for k in kinds):
        evidence["first_line_by_kind"] = tuple(k.first_line for k in kinds)
        evidence["last_line_by_kind"] = tuple(k.last_line for k in kinds)
        evidence["first_lines"] = scan.first_lines
    if scan.first_offsets:
        evidence["first_offsets"] = scan.first_offsets
    if any(k.first_time is not None for k in kinds):
        evidence["first_seen_by_kind"] = tuple(iso_time(k.first_time) or "" for k in kinds)
        evidence["last_seen_by_kind"] = tuple(iso_time(k.last_time) or "" for k in kinds)
    if control.mitigates:
        evidence["found_kinds_the_control_masks"] = tuple(
            k.kind.value for k in kinds if k.kind in control.masks)
    return evidence
