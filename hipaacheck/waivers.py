"""
Accepted risks: a YAML file of waivers, validated strictly, applied to a scan's findings.

```yaml
version: 1
waivers:
  - id: legacy-tls                  # optional; defaults to W1, W2, ... by position
    check: tls.endpoint.protocols   # an installed check id, exactly
    target: "tls:legacy-*"          # a glob over target ids (tls:NAME, aws:NAME, logs:NAME, ...)
    resource: "*"                   # optional glob over the finding's resource
    justification: Vendor appliance; replacement ordered (CHG-1042).
    approver: Jane Roe, CISO
    expires: 2027-03-31             # the waiver applies through this day (UTC)
```

A waiver covers FAIL and WARN findings only: it accepts a risk that was observed. UNVERIFIED and
ERROR findings are never waived, because a control nobody could look at is not a known risk. A
waived finding keeps its status and carries the waiver; the exit code no longer counts it. An
expired waiver covers nothing and the result's notes say so; a waiver in force that covers no
finding is reported too, so stale waivers get cleaned up.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hipaacheck.config import _dotted, _line_of
from hipaacheck.errors import ConfigError
from hipaacheck.model import Finding, Status, Waived
from hipaacheck.result import ScanResult, WaiverState, WaiverUse

logger = logging.getLogger(__name__)

WAIVABLE = (Status.FAIL, Status.WARN)


class _WaiverEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, min_length=1, max_length=100)
    check: str = Field(min_length=1)
    target: str = Field(min_length=1)
    resource: str = Field(default="*", min_length=1)
    justification: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    expires: date

    @field_validator("justification", "approver")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("target")
    @classmethod
    def _target_id_pattern(cls, value: str) -> str:
        if value != "*" and ":" not in value:
            raise ValueError("must match target ids, e.g. aws:prod-* or tls:* (kind:name)")
        return value


class _WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    waivers: list[_WaiverEntry] = []


@dataclass(frozen=True)
class Waiver:
    """One accepted risk: which findings it covers, why, who approved it and until when."""

    id: str
    check_id: str
    target_pattern: str
    resource_pattern: str
    justification: str
    approver: str
    expires: date

    def matches(self, finding: Finding) -> bool:
        """Whether the finding is one this waiver names (whatever its status or date)."""
        return (finding.check_id == self.check_id
                and fnmatch.fnmatchcase(finding.target, self.target_pattern)
                and fnmatch.fnmatchcase(finding.resource, self.resource_pattern))

    def expired(self, today: date) -> bool:
        """True after the expiry day."""
        return today > self.expires

    def mark(self) -> Waived:
        """The mark a covered finding carries."""
        return Waived(self.id, self.justification, self.approver, self.expires.isoformat())


def parse_waivers(text: str, source: str = "<waivers>",
                  known_checks: Collection[str] | None = None) -> tuple[Waiver, ...]:
    """
    Validate waiver YAML; raise `ConfigError` naming file, line and key path, never the value.
    """
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{source}{f':{mark.line + 1}' if mark else ''}: not valid YAML") from None
    try:
        parsed = _WaiverFile.model_validate({} if data is None else data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = tuple(error["loc"])
            lines.append(f"{source}:{_line_of(root, loc)}: {_dotted(loc)}: {error['msg']}")
        raise ConfigError("invalid waiver file:\n  " + "\n  ".join(lines)) from None
    waivers = tuple(_build(i, entry) for i, entry in enumerate(parsed.waivers))
    _refuse_problems(waivers, root, source, known_checks)
    return waivers


def _build(position: int, entry: _WaiverEntry) -> Waiver:
    return Waiver(id=entry.id or f"W{position + 1}", check_id=entry.check,
                  target_pattern=entry.target, resource_pattern=entry.resource,
                  justification=entry.justification, approver=entry.approver,
                  expires=entry.expires)


def _refuse_problems(waivers: Sequence[Waiver], root: yaml.Node | None, source: str,
                     known_checks: Collection[str] | None) -> None:
    problems = []
    seen: set[str] = set()
    for i, waiver in enumerate(waivers):
        if waiver.id in seen:
            line = _line_of(root, ("waivers", i, "id"))
            problems.append(f"{source}:{line}: waivers[{i}].id: repeats an earlier waiver's id")
        seen.add(waiver.id)
        if known_checks is not None and waiver.check_id not in known_checks:
            line = _line_of(root, ("waivers", i, "check"))
            problems.append(f"{source}:{line}: waivers[{i}].check: no installed check has this id")
    if problems:
        raise ConfigError("invalid waiver file:\n  " + "\n  ".join(problems))


def load_waivers(path: Path, known_checks: Collection[str] | None = None) -> tuple[Waiver, ...]:
    """Read and validate the waiver file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the waiver file ({exc.strerror})") from None
    return parse_waivers(text, str(path), known_checks)


def apply_waivers(result: ScanResult, waivers: Sequence[Waiver], today: date) -> ScanResult:
    """
    Mark the FAIL and WARN findings each waiver in force covers, and record every waiver's fate.

    Marks already on the findings are replaced, so applying again (after a merge) is safe.
    """
    matched = {w.id: 0 for w in waivers}
    findings = []
    for finding in result.findings:
        mark = None
        if finding.status in WAIVABLE:
            for waiver in (w for w in waivers if w.matches(finding)):
                matched[waiver.id] += 1
                if mark is None and not waiver.expired(today):
                    mark = waiver.mark()
        findings.append(replace(finding, waiver=mark) if finding.waiver != mark else finding)
    uses = tuple(_use(w, matched[w.id], today) for w in waivers)
    notes = tuple(n for n in result.notes if n not in waiver_notes(result.waivers,
                                                                  result.shard is not None))
    notes += waiver_notes(uses, sharded=result.shard is not None)
    for use in uses:
        if use.state is not WaiverState.ACTIVE:
            logger.info("waiver %s is %s", use.id, use.state.value)
    return replace(result, findings=tuple(findings), waivers=uses, notes=notes)


def _use(waiver: Waiver, matched: int, today: date) -> WaiverUse:
    if waiver.expired(today):
        state = WaiverState.EXPIRED
    else:
        state = WaiverState.ACTIVE if matched else WaiverState.UNMATCHED
    return WaiverUse(
        id=waiver.id, check_id=waiver.check_id, target_pattern=waiver.target_pattern,
        resource_pattern=waiver.resource_pattern, justification=waiver.justification,
        approver=waiver.approver, expires=waiver.expires.isoformat(), state=state,
        matched=matched)


def waiver_notes(uses: Sequence[WaiverUse], sharded: bool) -> tuple[str, ...]:
    """The notes a result carries about expired waivers and waivers that covered nothing."""
    notes = []
    for use in uses:
        what = f"Waiver {use.id} ({use.check_id} on {use.target_pattern})"
        if use.state is WaiverState.EXPIRED:
            notes.append(f"{what} expired on {use.expires}; the {use.matched} findings it "
                         "named count again.")
        elif use.state is WaiverState.UNMATCHED:
            where = " in this shard" if sharded else ""
            notes.append(f"{what} covered no FAIL or WARN finding{where}; remove it if the "
                         "risk is gone.")
    return tuple(notes)
