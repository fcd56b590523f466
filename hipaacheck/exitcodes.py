"""
The exit-code policy: one function decides what a scan's outcome means to a scheduler.

| code | meaning |
|---|---|
| 0 | every selected control was verified passing |
| 1 | the scan was complete and some control failed |
| 2 | hipaacheck could not run (usage or configuration) |
| 3 | incomplete: anything UNVERIFIED or ERROR, nothing selected, no target reached, interrupted |

2 and 3 take precedence over 1. WARN leaves the code at 0 unless `fail_on` is `warn`.
"""

from __future__ import annotations

import enum

from hipaacheck.model import Status
from hipaacheck.result import ScanResult

OK, FAILED, UNUSABLE, INCOMPLETE = 0, 1, 2, 3


class FailOn(str, enum.Enum):
    """The weakest status that makes a complete scan exit 1."""

    FAIL = "fail"
    WARN = "warn"


def exit_code(result: ScanResult, fail_on: FailOn = FailOn.FAIL) -> int:
    """The exit code for a finished scan."""
    counts = result.counts()
    if (not result.complete or result.tasks == 0 or not result.findings
            or counts[Status.UNVERIFIED] or counts[Status.ERROR]):
        return INCOMPLETE
    if counts[Status.FAIL] or (fail_on is FailOn.WARN and counts[Status.WARN]):
        return FAILED
    return OK


def verdict(result: ScanResult) -> str:
    """A one-line summary that never calls a scan compliant while anything is unverified."""
    counts = result.counts()
    if result.tasks == 0:
        return "Nothing was checked: no selected check applies to any configured target."
    if not result.complete:
        return "Incomplete: the scan was interrupted before every check finished."
    if counts[Status.UNVERIFIED] or counts[Status.ERROR]:
        tail = f"; {counts[Status.FAIL]} failed" if counts[Status.FAIL] else ""
        return (f"Not verified: {counts[Status.UNVERIFIED]} unverified and "
                f"{counts[Status.ERROR]} errored findings could not be observed{tail}.")
    if counts[Status.FAIL]:
        return f"{counts[Status.FAIL]} controls failed."
    if counts[Status.WARN]:
        return f"Every control holds; {counts[Status.WARN]} are below current good practice."
    return "Every selected control was observed to hold."
