"""
What changed between two scans: new failures, resolved ones, blind spots, targets and checks.

Findings are matched by their stable key (check id, target id, resource). The diff is fail
closed: a failure is "resolved" only when the newer scan observed its check on its target and
no longer reports it failing. A failure whose check could not look this time is a check that
became UNVERIFIED, and a failure on a target that left the inventory is a vanished target;
neither is ever counted as fixed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from hipaacheck.model import Finding, Status
from hipaacheck.result import ScanResult

_OBSERVED = (Status.PASS, Status.FAIL, Status.WARN)
_UNOBSERVED = (Status.UNVERIFIED, Status.ERROR)
_BAD = (Status.FAIL, Status.WARN)
# Which finding speaks for a key that a check reported more than once: the worst.
_WORST = {Status.FAIL: 4, Status.ERROR: 3, Status.UNVERIFIED: 2, Status.WARN: 1, Status.PASS: 0}


@dataclass(frozen=True)
class Change:
    """One finding key whose standing changed; `old` or `new` is None where it was absent."""

    check_id: str
    target: str
    resource: str
    old: Status | None
    new: Status | None
    reason: str
    """The newer finding's reason, or the older one's when the newer scan has none."""
    severity: str


@dataclass(frozen=True)
class ScanDiff:
    """
    The changes from `old_label` to `new_label`, each list sorted by check, target, resource.
    """

    old_label: str
    new_label: str
    new_failures: tuple[Change, ...] = ()
    """FAIL now, and not FAIL before (new resources included)."""
    resolved: tuple[Change, ...] = ()
    """FAIL or WARN before; observed and PASS, or no longer present, now."""
    became_unverified: tuple[Change, ...] = ()
    """UNVERIFIED or ERROR now where the check could look before: a control no longer seen."""
    waivers_lapsed: tuple[Change, ...] = ()
    """Still FAIL or WARN, waived before and not any more (the waiver expired or was removed)."""
    status_changes: tuple[Change, ...] = ()
    """Every other change of status, e.g. PASS to WARN or UNVERIFIED to PASS."""
    targets_appeared: tuple[str, ...] = ()
    targets_vanished: tuple[str, ...] = ()
    checks_added: tuple[str, ...] = ()
    checks_removed: tuple[str, ...] = ()
    endpoints_appeared: tuple[str, ...] = ()
    """Addresses of endpoints found in control planes by the newer scan only."""
    endpoints_vanished: tuple[str, ...] = ()
    """Found by the older scan only: gone, or in a control plane the newer scan did not read."""
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not any((self.new_failures, self.resolved, self.became_unverified,
                        self.waivers_lapsed, self.status_changes, self.targets_appeared,
                        self.targets_vanished, self.checks_added, self.checks_removed,
                        self.endpoints_appeared, self.endpoints_vanished))

    def to_json(self) -> dict[str, Any]:
        """A plain JSON form of the diff (schema `hipaacheck.diff/1`)."""
        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value.value if isinstance(value, Status) else value
        return {"schema": "hipaacheck.diff/1", **plain(asdict(self))}


def _by_key(findings: Iterable[Finding]) -> dict[tuple[str, str, str], Finding]:
    out: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        prior = out.get(finding.key)
        if prior is None or _WORST[finding.status] > _WORST[prior.status]:
            out[finding.key] = finding
    return out


def _pairs(findings: Iterable[Finding]) -> dict[tuple[str, str], set[Status]]:
    out: dict[tuple[str, str], set[Status]] = defaultdict(set)
    for finding in findings:
        out[(finding.check_id, finding.target)].add(finding.status)
    return out


def _change(key: tuple[str, str, str], old: Finding | None, new: Finding | None) -> Change:
    speaker = new or old
    assert speaker is not None
    return Change(key[0], key[1], key[2], old.status if old else None,
                  new.status if new else None, speaker.reason, speaker.severity.value)


def diff(old: ScanResult, new: ScanResult, *, old_label: str = "old",
         new_label: str = "new") -> ScanDiff:
    """Compare two scans, older first."""
    before, after = _by_key(old.findings), _by_key(new.findings)
    pairs_before, pairs_after = _pairs(old.findings), _pairs(new.findings)
    old_targets = {t.id for t in old.targets}
    new_targets = {t.id for t in new.targets}
    buckets: dict[str, list[Change]] = defaultdict(list)
    for key in sorted(set(before) | set(after)):
        bucket = _classify(before.get(key), after.get(key), pairs_before.get(key[:2], set()),
                           pairs_after.get(key[:2], set()), key[1] in new_targets)
        if bucket:
            buckets[bucket].append(_change(key, before.get(key), after.get(key)))
    old_checks, new_checks = {m.id for m in old.checks}, {m.id for m in new.checks}
    old_endpoints = {e.endpoint.address for e in old.endpoints}
    new_endpoints = {e.endpoint.address for e in new.endpoints}
    notes = []
    if old.scope and new.scope and old.scope != new.scope:
        notes.append("The scans have different scopes: they are not runs of the same job.")
    if old.config_fingerprint != new.config_fingerprint:
        notes.append("The inventory changed between the scans (its fingerprint differs).")
    if not new.complete:
        notes.append("The newer scan is partial: what it did not reach shows as UNVERIFIED.")
    return ScanDiff(
        old_label=old_label, new_label=new_label,
        new_failures=tuple(buckets["new_failures"]), resolved=tuple(buckets["resolved"]),
        became_unverified=tuple(buckets["became_unverified"]),
        waivers_lapsed=tuple(buckets["waivers_lapsed"]),
        status_changes=tuple(buckets["status_changes"]),
        targets_appeared=tuple(sorted(new_targets - old_targets)),
        targets_vanished=tuple(sorted(old_targets - new_targets)),
        checks_added=tuple(sorted(new_checks - old_checks)),
        checks_removed=tuple(sorted(old_checks - new_checks)),
        endpoints_appeared=tuple(sorted(new_endpoints - old_endpoints)),
        endpoints_vanished=tuple(sorted(old_endpoints - new_endpoints)), notes=tuple(notes))


def _classify(old: Finding | None, new: Finding | None, pair_before: set[Status],
              pair_after: set[Status], target_present: bool) -> str | None:
    """The bucket of one key, or None when it is not news."""
    if new is None:
        return _classify_gone(old, pair_after, target_present)
    if new.status is Status.FAIL and (old is None or old.status is not Status.FAIL):
        return "new_failures"
    if new.status in _UNOBSERVED:
        was_observed = (old.status in _OBSERVED if old is not None
                        else bool(pair_before & set(_OBSERVED)))
        if was_observed:
            return "became_unverified"
        return None if old is not None and old.status is new.status else "status_changes"
    if old is None:
        return "status_changes" if new.status is Status.WARN else None
    if old.status in _BAD and new.status is Status.PASS:
        return "resolved"
    if new.status in _BAD and old.status is new.status:
        return "waivers_lapsed" if old.waiver and not new.waiver else None
    return "status_changes" if old.status is not new.status else None


def _classify_gone(old: Finding | None, pair_after: set[Status],
                   target_present: bool) -> str | None:
    """A key only the older scan has: fixed only if the check looked at the target again."""
    if old is None or old.status not in _BAD or not target_present:
        return None
    if not pair_after:
        return None  # the check did not run on this target: `checks_removed` tells
    if pair_after & set(_UNOBSERVED):
        return "became_unverified"
    return "resolved"


_SECTIONS: Mapping[str, str] = {
    "new_failures": "New failures",
    "became_unverified": "No longer observed (now UNVERIFIED or ERROR)",
    "waivers_lapsed": "Waivers that no longer cover a failure",
    "resolved": "Resolved",
    "status_changes": "Other status changes",
}


def print_diff(result: ScanDiff, console: Console, *, limit: int = 50) -> None:
    """Print a diff for a person; every value is escaped."""
    console.print(f"[bold]Changes from {escape(result.old_label)} to "
                  f"{escape(result.new_label)}[/bold]")
    if result.empty:
        console.print("No changes.")
    for attr, title in _SECTIONS.items():
        changes: tuple[Change, ...] = getattr(result, attr)
        if not changes:
            continue
        console.print(f"[bold]{title}[/bold] ({len(changes)})")
        for change in changes[:limit]:
            was = change.old.value if change.old else "absent"
            now = change.new.value if change.new else "absent"
            console.print(f"  {was} -> {now}  {escape(change.check_id)}  "
                          f"{escape(change.target)}  {escape(change.resource)}")
        if len(changes) > limit:
            console.print(f"  ... and {len(changes) - limit} more (--format json lists all)")
    for title, items in (("Targets appeared", result.targets_appeared),
                         ("Targets vanished", result.targets_vanished),
                         ("Checks added", result.checks_added),
                         ("Checks removed", result.checks_removed),
                         ("Endpoints newly found", result.endpoints_appeared),
                         ("Endpoints no longer found", result.endpoints_vanished)):
        if items:
            console.print(f"[bold]{title}[/bold] ({len(items)}): "
                          + ", ".join(escape(i) for i in items))
    for note in result.notes:
        console.print(f"[dim]{escape(note)}[/dim]")
