"""
The public face of a check: what the registry loads and the runner calls.

A check declares its metadata, collects an observation through the context it is handed, and
judges that observation in a pure function. It never prints, renders, reads environment
variables or keeps module-level state.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from hipaacheck.model import CheckMeta, Endpoint, Finding, FindingBuilder, Target

ObsT = TypeVar("ObsT")
V = TypeVar("V")


@dataclass(frozen=True)
class Policy:
    """
    The thresholds checks judge against; set in the inventory's `policy` section.
    """

    min_backup_retention_days: int = 7
    recommended_backup_retention_days: int = 35
    min_phi_retention_days: int | None = None
    min_audit_retention_days: int = 2192
    cert_expiry_warning_days: int = 30
    require_customer_managed_keys: bool = False


class Memo:
    """
    A per-scan cache shared by every check, so a listing is fetched once however many checks
    need it. Thread-safe; concurrent callers of one key wait for the first computation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any, compute: Callable[[], V]) -> V:
        """
        The value stored under `key`, computing it once with `compute`.

        An exception from `compute` is cached too, so a denied listing is not retried by every
        check that needs it.
        """
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, compute())
                except Exception as exc:  # noqa: BLE001 - re-raised to every caller below
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


@dataclass
class CheckContext:
    """
    What a check's collect step is handed: clients, policy, a logger, a clock and the memo.

    `clients` is a `hipaacheck.clients.Clients`; it builds read-only clients for a target.
    """

    clients: Any
    policy: Policy
    logger: logging.Logger
    clock: Callable[[], datetime]
    memo: Memo = field(default_factory=Memo)
    timeout: float = 10.0


class Check(ABC, Generic[ObsT]):
    """
    Base of every check. Subclasses set `meta` and implement `collect` and `evaluate`.
    """

    meta: ClassVar[CheckMeta]

    def applies_to(self, target: Target) -> bool:
        """
        Whether this check runs against `target`; by default every target of its kind.
        """
        return target.kind == self.meta.target_kind

    @abstractmethod
    def collect(self, ctx: CheckContext, target: Target) -> ObsT:
        """
        Read the target and return an observation whose facts are values or `Unknown`.

        Raise `ProbeUnavailable` when the target could not be observed at all.
        """

    @abstractmethod
    def evaluate(self, obs: ObsT, target: Target, policy: Policy) -> Sequence[Finding]:
        """
        Judge an observation. Pure: no I/O. Unknown facts become UNVERIFIED, never PASS.
        """

    def endpoints(self, obs: ObsT, target: Target) -> Sequence[Endpoint]:
        """
        The endpoints this observation found, offered for live TLS probing. Pure, like
        `evaluate`; most checks find none. Whether they are probed is the inventory's choice.
        """
        return ()

    def findings(self, target: Target) -> FindingBuilder[ObsT]:
        """
        A builder that stamps this check's metadata on the findings it makes.
        """
        return FindingBuilder(self.meta, target)
