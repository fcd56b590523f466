"""
Fake checks that implement the real `Check` interface, for testing the house without a target.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.errors import ProbeUnavailable, ReadOnlyViolation
from hipaacheck.model import (
    CheckMeta,
    Endpoint,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    System,
    Target,
    TargetKind,
    UnknownReason,
)


def meta(check_id: str, kind: TargetKind = TargetKind.LOG_SINK) -> CheckMeta:
    """Complete metadata for a fake check."""
    return CheckMeta(
        id=check_id, title=f"Fake {check_id}", family=Family.PHI_LOGS,
        standard=Standard.AUDIT_CONTROLS, citations=("164.312(b)",), severity=Severity.HIGH,
        target_kind=kind, description="A fake check.", remediation="Fix the fake.",
        operations=(Operation(System.FILE, "read"),))


@dataclass(frozen=True)
class Obs:
    value: str


class Behaving(Check[Obs]):
    """Collects whatever `behaviour` says: pass, fail, unavailable, crash, write, hang."""

    def __init__(self, check_id: str, behaviour: str, release: threading.Event | None = None):
        self.meta = meta(check_id)  # type: ignore[misc]
        self.behaviour = behaviour
        self.release = release

    def collect(self, ctx: CheckContext, target: Target) -> Obs:
        if self.behaviour == "unavailable":
            raise ProbeUnavailable(UnknownReason.ACCESS_DENIED, "denied", "logs:Read")
        if self.behaviour == "crash":
            raise RuntimeError("canary-secret-in-exception-message")
        if self.behaviour == "write":
            raise ReadOnlyViolation("PutObject refused")
        if self.behaviour == "hang":
            assert self.release is not None
            self.release.wait(30)
        return Obs(self.behaviour)

    def evaluate(self, obs: Obs, target: Target, policy: Policy) -> Sequence[Finding]:
        out = self.findings(target)
        if obs.value == "fail":
            return [out.failed(target.name, "Observed failing.")]
        if obs.value == "warn":
            return [out.warned(target.name, "Holds, below good practice.")]
        return [out.passed(target.name, "Observed holding.")]


def target(name: str = "t1") -> Target:
    return Target(TargetKind.LOG_SINK, f"logs:{name}", name)


class Discovering(Check[Obs]):
    """Finds the endpoints it is given (as a control-plane check would) and passes."""

    def __init__(self, check_id: str, endpoints: Sequence[Endpoint]):
        self.meta = meta(check_id)  # type: ignore[misc]
        self.found = tuple(endpoints)

    def collect(self, ctx: CheckContext, target: Target) -> Obs:
        return Obs("pass")

    def evaluate(self, obs: Obs, target: Target, policy: Policy) -> Sequence[Finding]:
        return [self.findings(target).passed(target.name, "Listed the endpoints.")]

    def endpoints(self, obs: Obs, target: Target) -> Sequence[Endpoint]:
        return self.found


class Probing(Check[Obs]):
    """A TLS endpoint check that records which endpoints it was pointed at."""

    def __init__(self, check_id: str):
        self.meta = meta(check_id, TargetKind.TLS_ENDPOINT)  # type: ignore[misc]
        self.seen: list[str] = []

    def collect(self, ctx: CheckContext, target: Target) -> Obs:
        self.seen.append(target.id)
        return Obs("pass")

    def evaluate(self, obs: Obs, target: Target, policy: Policy) -> Sequence[Finding]:
        return [self.findings(target).passed(target.name, "Probed.")]
