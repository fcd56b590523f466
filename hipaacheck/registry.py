"""
The check registry: every installed check, loaded from the `hipaacheck.checks` entry-point group.

Built-in checks register through the same group as third-party ones. Loading builds an immutable
registry; nothing registers itself into a global on import. A duplicate id or incomplete metadata
refuses the run; a check that fails to import is kept as a load failure that the runner reports
as an ERROR finding under its id, so it never silently disappears.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from hipaacheck.check import Check
from hipaacheck.errors import RegistryError, UsageError
from hipaacheck.model import CheckMeta, Family

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hipaacheck.checks"


@dataclass(frozen=True)
class LoadFailure:
    """
    An entry point whose check could not be imported or built.

    `error` is the exception's class name only; its message may hold anything.
    """

    check_id: str
    error: str


@dataclass(frozen=True)
class Registry:
    """
    The loaded checks by id, and the entry points that failed to load.
    """

    checks: Mapping[str, Check[object]]
    failures: tuple[LoadFailure, ...] = ()
    _order: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_checks(cls, checks: Iterable[Check[object]],
                    failures: Iterable[LoadFailure] = ()) -> Registry:
        """
        A registry of already-built checks; refuses duplicates and incomplete metadata.
        """
        by_id: dict[str, Check[object]] = {}
        for check in checks:
            meta = getattr(check, "meta", None)
            if not isinstance(meta, CheckMeta):
                raise RegistryError(f"{type(check).__name__} has no CheckMeta `meta`")
            problems = meta.problems()
            if problems:
                raise RegistryError(f"check {meta.id}: incomplete metadata: {'; '.join(problems)}")
            if meta.id in by_id:
                raise RegistryError(f"duplicate check id {meta.id}")
            by_id[meta.id] = check
        failed = tuple(failures)
        clash = {f.check_id for f in failed} & set(by_id)
        if clash:
            raise RegistryError(f"duplicate check id {min(clash)}")
        return cls(MappingProxyType(by_id), failed, tuple(sorted(by_id)))

    @property
    def ids(self) -> tuple[str, ...]:
        """Every check id, loaded or failed, sorted."""
        return tuple(sorted(set(self._order) | {f.check_id for f in self.failures}))

    def metas(self) -> list[CheckMeta]:
        """The metadata of every loaded check, sorted by id."""
        return [self.checks[i].meta for i in self._order]

    def select(self, only: Sequence[str] = (), skip: Sequence[str] = ()) -> Registry:
        """
        The sub-registry named by `only` (ids, id prefixes like `aws.rds` or family names) minus
        `skip`. A selector that matches nothing is a usage error, never an empty pass.
        """
        only, skip = _split(only), _split(skip)
        chosen = set(self.ids) if not only else set()
        for selector in only:
            chosen |= self._matching(selector, "only")
        for selector in skip:
            chosen -= self._matching(selector, "skip")
        return Registry(
            MappingProxyType({i: c for i, c in self.checks.items() if i in chosen}),
            tuple(f for f in self.failures if f.check_id in chosen),
            tuple(i for i in self._order if i in chosen))

    def _matching(self, selector: str, option: str) -> set[str]:
        matched = self._match(selector)
        if not matched:
            families = ", ".join(f.value for f in Family)
            raise UsageError(f"{option} {selector}: no such check id, id prefix or family "
                             f"(families: {families})")
        return matched

    def _match(self, selector: str) -> set[str]:
        families = {f.value for f in Family}
        if selector in families:
            return {i for i, c in self.checks.items() if c.meta.family.value == selector}
        return {i for i in self.ids if i == selector or i.startswith(selector + ".")}


def _split(selectors: Sequence[str]) -> list[str]:
    """Selectors as given, comma-separated lists split, blanks dropped."""
    return [part.strip() for item in selectors for part in item.split(",") if part.strip()]


def _load_one(ep: EntryPoint) -> Check[object]:
    obj = ep.load()
    check = obj() if isinstance(obj, type) else obj
    if not isinstance(check, Check):
        raise RegistryError(f"entry point {ep.name} is not a hipaacheck Check")
    if check.meta.id != ep.name:
        raise RegistryError(f"entry point {ep.name} loads check {check.meta.id}: names differ")
    return check


def load_registry(group: str = ENTRY_POINT_GROUP) -> Registry:
    """
    Load every check registered under the entry-point group.

    Import errors become `LoadFailure`s; metadata problems and duplicates raise `RegistryError`.
    """
    checks: list[Check[object]] = []
    failures: list[LoadFailure] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        if ep.name in seen:
            raise RegistryError(f"duplicate check id {ep.name} (two entry points)")
        seen.add(ep.name)
        try:
            checks.append(_load_one(ep))
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            logger.warning("check %s failed to load (%s)", ep.name, type(exc).__name__)
            failures.append(LoadFailure(ep.name, type(exc).__name__))
    return Registry.from_checks(checks, failures)
