"""
The exit-code policy: one function decides what a scan's outcome means to a scheduler.

| code | meaning |
|---|---|
| 0 | every selected control was verified passing |
| 1 | the scan was complete and some control failed |
| 2 | hipaacheck could not run (usage or configuration) |
| 3 | incomplete: anything UNVERIFIED or ERROR, nothing selected, no target reached, interrupted |

2 and 3 take precedence over 1. WARN leaves the code at 0 unless `fail_on` is `warn` or
`unverified`. For schedulers two knobs narrow what counts, never what is reported:

- `threshold`: findings of a check whose severity is below it do not affect the code. If nothing
  at or above the threshold was checked, the code is 3: an empty selection is never a pass.
- waivers: a FAIL or WARN finding covered by a waiver in force does not make the code 1.
- `fail_on=unverified` is the strictest level: like `warn`, and every UNVERIFIED or ERROR
  finding makes the code 3 whatever its severity, so the threshold cannot hide a blind spot.
"""

from __future__ import annotations

import enum

from hipaacheck.model import Finding, Severity, Status
from hipaacheck.result import ScanResult

OK, FAILED, UNUSABLE, INCOMPLETE = 0, 1, 2, 3


class FailOn(str, enum.Enum):
    """The weakest status that makes a complete scan exit 1."""

    FAIL = "fail"
    WARN = "warn"
    UNVERIFIED = "unverified"


_UNOBSERVED = (Status.UNVERIFIED, Status.ERROR)


def exit_code(result: ScanResult, fail_on: FailOn = FailOn.FAIL,
              threshold: Severity = Severity.LOW) -> int:
    """The exit code for a finished scan, after the severity threshold and waivers."""
    if not result.complete or result.tasks == 0 or not result.findings:
        return INCOMPLETE
    counted = [f for f in result.findings if f.severity.rank >= threshold.rank]
    blind = result.findings if fail_on is FailOn.UNVERIFIED else counted
    if not counted or any(f.status in _UNOBSERVED for f in blind):
        return INCOMPLETE
    failing = {Status.FAIL} if fail_on is FailOn.FAIL else {Status.FAIL, Status.WARN}
    if any(f.status in failing and f.waiver is None for f in counted):
        return FAILED
    return OK


def _unwaived(findings: tuple[Finding, ...], status: Status) -> int:
    """How many findings have `status` and no waiver in force."""
    return sum(1 for f in findings if f.status is status and f.waiver is None)


def verdict(result: ScanResult) -> str:
    """A one-line summary that never calls a scan compliant while anything is unverified."""
    counts = result.counts()
    if result.tasks == 0:
        return "Nothing was checked: no selected check applies to any configured target."
    if not result.complete:
        if result.interrupted:
            return "Incomplete: the scan was interrupted before every check finished."
        return "Incomplete: some targets or checks have no result; the notes say which."
    if counts[Status.UNVERIFIED] or counts[Status.ERROR]:
        tail = f"; {counts[Status.FAIL]} failed" if counts[Status.FAIL] else ""
        return (f"Not verified: {counts[Status.UNVERIFIED]} unverified and "
                f"{counts[Status.ERROR]} errored findings could not be observed{tail}.")
    failed = _unwaived(result.findings, Status.FAIL)
    waived = sum(1 for f in result.findings if f.waiver is not None)
    tail = f" ({waived} more covered by waivers in force)" if waived else ""
    if failed:
        return f"{failed} controls failed{tail}."
    if counts[Status.FAIL]:
        return f"{counts[Status.FAIL]} controls failed, every one covered by a waiver in force."
    if counts[Status.WARN]:
        return (f"Every control holds; {counts[Status.WARN]} are below current good "
                f"practice{tail}.")
    return "Every selected control was observed to hold."
