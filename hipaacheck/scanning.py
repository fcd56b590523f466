"""
One scan from a validated inventory: the code path shared by `scan` and `demo`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone

from hipaacheck.check import CheckContext
from hipaacheck.clients import Clients
from hipaacheck.config import Inventory
from hipaacheck.registry import Registry
from hipaacheck.result import ScanResult
from hipaacheck.runner import ScanObserver, scan


def run_scan(inventory: Inventory, registry: Registry, *, only: Sequence[str] = (),
             observer: ScanObserver | None = None) -> ScanResult:
    """
    Select checks (command line first, then the inventory's `checks` section), build read-only
    clients and run every applicable check against every target.
    """
    selected = registry.select(only or inventory.checks.only, inventory.checks.skip)
    settings = inventory.scan
    ctx = CheckContext(
        clients=Clients(timeout=settings.probe_timeout_seconds),
        policy=inventory.policy.to_policy(),
        logger=logging.getLogger("hipaacheck.checks"),
        clock=lambda: datetime.now(timezone.utc),
        timeout=settings.probe_timeout_seconds)
    return scan(selected, inventory.targets(), ctx, organization=inventory.organization,
                config_fingerprint=inventory.fingerprint(), workers=settings.workers,
                deadline=settings.check_deadline_seconds, observer=observer)
