"""
One scan from a validated inventory: the code path shared by `scan` and `demo`.

Sharding and waivers are applied here, so every caller gets the same result for the same
request: a shard scans only its share of the targets but records the whole inventory's target
list, and waivers mark findings after the checks have judged them, never before.

The endpoints the checks find are planned here too (`discovery.plan_probes`): those of sources
the inventory opts in are probed in the scan's second phase, and every one is recorded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime

from hipaacheck.check import CheckContext
from hipaacheck.clients import Clients
from hipaacheck.config import Inventory
from hipaacheck.discovery import ProbeRequest, plan_probes
from hipaacheck.model import Endpoint, EndpointRecord, Target, TargetKind
from hipaacheck.registry import Registry
from hipaacheck.result import ScanResult, Shard, TargetSummary
from hipaacheck.runner import ScanObserver, scan
from hipaacheck.sharding import empty_shard_note, scope_id, shard_targets
from hipaacheck.waivers import Waiver, apply_waivers

logger = logging.getLogger(__name__)


def run_scan(inventory: Inventory, registry: Registry, *, only: Sequence[str] = (),
             observer: ScanObserver | None = None, shard: Shard | None = None,
             waivers: Sequence[Waiver] = (), today: date | None = None,
             scope: str = "") -> ScanResult:
    """
    Select checks (command line first, then the inventory's `checks` section), build read-only
    clients and run every applicable check against every target of the shard (all targets
    when `shard` is None); then apply `waivers` as of `today` (UTC today by default).

    `scope` files the result in history (see `sharding.scope_id`); by default it is derived
    from the organization and `only`.
    """
    selected = registry.select(only or inventory.checks.only, inventory.checks.skip)
    settings = inventory.scan
    ctx = CheckContext(
        clients=Clients(timeout=settings.probe_timeout_seconds),
        policy=inventory.policy.to_policy(),
        logger=logging.getLogger("hipaacheck.checks"),
        clock=lambda: datetime.now(UTC),
        timeout=settings.probe_timeout_seconds)
    targets = inventory.targets()
    share = shard_targets(targets, shard) if shard else targets
    if shard:
        logger.info("shard %s scans %d of %d targets", shard, len(share), len(targets))
    records: list[EndpointRecord] = []
    request = ProbeRequest(
        sources={t.id: getattr(t.config, "probe_endpoints", None) for t in targets},
        configured=[t for t in targets if t.kind == TargetKind.TLS_ENDPOINT],
        tls_checks=any(c.meta.target_kind == TargetKind.TLS_ENDPOINT
                       for c in selected.checks.values()))

    def follow_up(found: Sequence[Endpoint], interrupted: bool) -> list[Target]:
        planned, probes = plan_probes(found, dataclasses.replace(request,
                                                                  interrupted=interrupted))
        records.extend(planned)
        if found:
            logger.info("found %d endpoints; probing %d", len(planned), len(probes))
        return probes

    result = scan(selected, share, ctx, organization=inventory.organization,
                  config_fingerprint=inventory.fingerprint(), workers=settings.workers,
                  deadline=settings.check_deadline_seconds, observer=observer,
                  follow_up=follow_up)
    result = dataclasses.replace(
        result, endpoints=tuple(records), scope=scope or scope_id(inventory.organization, "", only),
        shard=shard,
        inventory_targets=tuple(TargetSummary(t.id, t.kind, t.name) for t in targets)
        if shard else (),
        notes=result.notes + ((empty_shard_note(shard),) if shard and not share else ()))
    if waivers:
        result = apply_waivers(result, waivers, today or datetime.now(UTC).date())
    return result
