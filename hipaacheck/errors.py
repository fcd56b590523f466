"""
The one error hierarchy: every expected failure explains itself to the user.

`ProbeUnavailable` is the odd one out: it is raised by a check's collect step when the target
could not be observed at all, and the runner turns it into an UNVERIFIED finding, not a crash.
"""

from __future__ import annotations

from hipaacheck.model import Unknown, UnknownReason


class HipaacheckError(Exception):
    """
    Base of every error hipaacheck expects. `explain()` is what the user sees.
    """

    exit_code = 2

    def explain(self) -> str:
        """A sentence or two for the user: what happened and what to try."""
        return str(self)


class ConfigError(HipaacheckError):
    """
    The inventory or waiver file is unusable. Names file, line and key path, never the value.
    """


class UsageError(HipaacheckError):
    """
    The command line asks for something impossible, e.g. an unknown check id.
    """


class RegistryError(HipaacheckError):
    """
    The set of installed checks is inconsistent: a duplicate id or incomplete metadata.
    """


class ReadOnlyViolation(HipaacheckError):
    """
    Something asked a client for an operation that could change the system it inspects.

    This is always a bug in a check; the runner reports it as ERROR.
    """

    exit_code = 3


class LabError(HipaacheckError):
    """
    The built-in lab could not start one of its services.
    """

    exit_code = 3


class ProbeUnavailable(Exception):
    """
    Raised by a collect step: the target could not be observed (denied, unreachable, timed out).

    Carries the `Unknown` that the runner turns into an UNVERIFIED finding.
    """

    def __init__(self, reason: UnknownReason, detail: str, needs: str | None = None) -> None:
        super().__init__(detail)
        self.unknown = Unknown(reason, detail, needs)
