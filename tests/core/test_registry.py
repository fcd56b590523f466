"""The registry loads every installed check and refuses inconsistent sets."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import Behaving

from hipaacheck.errors import RegistryError, UsageError
from hipaacheck.model import Standard
from hipaacheck.registry import Registry, load_registry


def test_every_installed_check_loads_with_complete_metadata():
    registry = load_registry()
    assert registry.failures == ()
    assert len(registry.checks) >= 9
    families = {c.meta.family for c in registry.checks.values()}
    assert len(families) >= 5
    for check_id, check in registry.checks.items():
        meta = check.meta
        assert meta.id == check_id
        assert meta.problems() == []
        assert all(c.startswith("164.") for c in meta.citations)
        assert isinstance(meta.standard, Standard)
        assert meta.operations, check_id


def test_duplicate_ids_are_refused():
    with pytest.raises(RegistryError):
        Registry.from_checks([Behaving("a.b", "pass"), Behaving("a.b", "fail")])


def test_incomplete_metadata_is_refused():
    check = Behaving("a.b", "pass")
    check.meta = dataclasses.replace(check.meta, citations=())  # type: ignore[misc]
    with pytest.raises(RegistryError):
        Registry.from_checks([check])


def test_select_by_id_prefix_and_family():
    registry = Registry.from_checks([Behaving("aws.rds.x", "pass"), Behaving("aws.s3.y", "pass"),
                                     Behaving("tls.z", "pass")])
    assert set(registry.select(["aws.rds"]).checks) == {"aws.rds.x"}
    assert set(registry.select(["phi_in_logs"]).checks) == {"aws.rds.x", "aws.s3.y", "tls.z"}
    assert set(registry.select([], ["aws"]).checks) == {"tls.z"}
    with pytest.raises(UsageError):
        registry.select(["nope"])
