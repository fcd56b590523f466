"""Sharding is deterministic and balanced; merging the shards equals one single-process scan."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from core.scan_builders import ByName, sink_inventory

from hipaacheck.errors import UsageError
from hipaacheck.model import Status, Target, TargetKind, UnknownReason
from hipaacheck.registry import Registry
from hipaacheck.result import ScanResult, Shard
from hipaacheck.scanning import run_scan
from hipaacheck.sharding import assign, merge, parse_shard, scope_id, shard_targets

KINDS = list(TargetKind)


def _targets(n: int, seed: int = 7) -> list[Target]:
    rng = random.Random(seed)
    return [Target(rng.choice(KINDS), f"t:{i:04d}", f"{i:04d}") for i in range(n)]


def _timeless(result: ScanResult) -> ScanResult:
    return dataclasses.replace(result, started="", finished="", notes=())


@pytest.mark.parametrize("text,index,count", [("1/1", 1, 1), ("3/8", 3, 8), (" 8 / 8 ", 8, 8)])
def test_parse_shard_accepts_k_of_n(text, index, count):
    assert parse_shard(text) == Shard(index, count)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2", "-1/4", "1/1001"])
def test_parse_shard_refuses_nonsense(text):
    with pytest.raises(UsageError):
        parse_shard(text)


@pytest.mark.parametrize("n,count", [(1, 1), (5, 8), (37, 4), (400, 7), (1000, 16)])
def test_every_target_lands_in_exactly_one_balanced_shard(n, count):
    targets = _targets(n)
    owner = assign(targets, count)
    assert set(owner) == {t.id for t in targets}
    assert all(1 <= k <= count for k in owner.values())
    sizes = [sum(1 for k in owner.values() if k == shard) for shard in range(1, count + 1)]
    assert max(sizes) - min(sizes) <= 1
    for kind in KINDS:  # each kind is spread evenly too, so a costly kind is not piled up
        per_kind = [sum(1 for t in targets if t.kind == kind and owner[t.id] == shard)
                    for shard in range(1, count + 1)]
        assert max(per_kind) - min(per_kind) <= 1


def test_assignment_ignores_inventory_order_and_is_stable():
    targets = _targets(300)
    shuffled = list(targets)
    random.Random(1).shuffle(shuffled)
    assert assign(targets, 6) == assign(shuffled, 6) == assign(list(targets), 6)
    # The shares keep inventory order, and their union is the inventory.
    shares = [shard_targets(targets, Shard(k, 6)) for k in range(1, 7)]
    assert sorted((t for s in shares for t in s), key=targets.index) == targets
    assert all(s == sorted(s, key=targets.index) for s in shares)


def test_adding_a_target_moves_few_others():
    # Given an inventory of 400 targets in 8 shards, when one more target is added
    before = _targets(400)
    after = before + [Target(TargetKind.TLS_ENDPOINT, "t:new", "new")]
    old, new = assign(before, 8), assign(after, 8)
    moved = sum(1 for t in before if old[t.id] != new[t.id])
    # Then most targets keep their shard (striping by position would move about half of them)
    assert moved <= 40, moved


def test_scope_is_the_job_not_the_inventory_content():
    assert scope_id("Org", "/etc/h.yaml", ["b", "a"]) == scope_id("Org", "/etc/h.yaml",
                                                                  ["a", "b", "a"])
    assert len({scope_id("Org"), scope_id("Other"), scope_id("Org", "/etc/h.yaml"),
                scope_id("Org", "", ["aws"])}) == 4


def test_shards_and_the_whole_scan_share_a_scope_that_survives_inventory_edits(tmp_path):
    inventory, registry = _lab(tmp_path)
    whole = run_scan(inventory, registry)
    assert {run_scan(inventory, registry, shard=Shard(k, 3)).scope for k in (1, 2, 3)} == {
        whole.scope}
    edited = sink_inventory(tmp_path, ["app0", "brand-new"])
    assert run_scan(edited, registry).scope == whole.scope


def _lab(tmp_path):
    names = ([f"app{i}" for i in range(9)] + ["leaky-api", "leaky-worker", "old-batch",
                                              "locked-audit"])
    inventory = sink_inventory(tmp_path, names)
    registry = Registry.from_checks([ByName("fake.first"), ByName("fake.second")])
    return inventory, registry


@pytest.mark.parametrize("count", [1, 2, 3, 5, 13, 20])
def test_merge_of_all_shards_equals_a_single_scan(tmp_path, count):
    # Given a real inventory scanned once whole and once as `count` shards
    inventory, registry = _lab(tmp_path)
    single = run_scan(inventory, registry)
    shards = [run_scan(inventory, registry, shard=Shard(k, count)) for k in range(1, count + 1)]
    # When the shard results go through their JSON form and are merged
    reread = [ScanResult.from_json(json.loads(json.dumps(s.to_json()))) for s in shards]
    outcome = merge(list(reversed(reread)))
    # Then the merge is the single-process result: targets, checks, findings in order, tasks
    assert _timeless(outcome.result) == _timeless(single)
    assert outcome.missing_shards == () and outcome.missing_targets == ()
    assert outcome.result.complete


def test_each_shard_records_its_spec_and_the_whole_inventory(tmp_path):
    inventory, registry = _lab(tmp_path)
    shard = run_scan(inventory, registry, shard=Shard(2, 3))
    doc = shard.to_json()["scan"]
    assert doc["shard"] == {"index": 2, "count": 3}
    assert len(doc["inventory_targets"]) == 13 and 0 < len(doc["targets"]) < 13
    assert doc["scope"] == run_scan(inventory, registry).scope


def test_missing_shard_makes_its_targets_unverified_never_passing(tmp_path):
    # Given four shards of which shard 3 never wrote a result
    inventory, registry = _lab(tmp_path)
    shards = [run_scan(inventory, registry, shard=Shard(k, 4)) for k in (1, 2, 4)]
    lost = {t.id for t in shard_targets(inventory.targets(), Shard(3, 4))}
    # When the others are merged
    outcome = merge(shards)
    merged = outcome.result
    # Then the merge names the missing shard and targets, and every check on them is UNVERIFIED
    assert outcome.missing_shards == (3,)
    assert set(outcome.missing_targets) == lost
    on_lost = [f for f in merged.findings if f.target in lost]
    assert {(f.check_id, f.target) for f in on_lost} == {
        (c, t) for c in ("fake.first", "fake.second") for t in lost}
    assert {f.status for f in on_lost} == {Status.UNVERIFIED}
    assert {f.unknown_reason for f in on_lost} == {UnknownReason.INTERRUPTED}
    assert not merged.complete and merged.tasks == run_scan(inventory, registry).tasks
    assert any("3/4" in note for note in merged.notes)
    assert {t.id for t in merged.targets} == {t.id for t in inventory.targets()}


def test_interrupted_shard_keeps_the_merge_incomplete(tmp_path):
    inventory, registry = _lab(tmp_path)
    shards = [run_scan(inventory, registry, shard=Shard(k, 2)) for k in (1, 2)]
    shards[1] = dataclasses.replace(shards[1], complete=False, interrupted=True)
    outcome = merge(shards)
    assert outcome.incomplete_shards == (2,) and not outcome.result.complete
    assert outcome.result.interrupted


def test_merge_refuses_mixed_or_repeated_shards(tmp_path):
    inventory, registry = _lab(tmp_path)
    one = run_scan(inventory, registry, shard=Shard(1, 2))
    with pytest.raises(UsageError):
        merge([one, one])
    with pytest.raises(UsageError):
        merge([one, run_scan(inventory, registry, shard=Shard(2, 3))])
    with pytest.raises(UsageError):
        merge([one, run_scan(inventory, registry)])
    other = sink_inventory(tmp_path, ["elsewhere"])
    with pytest.raises(UsageError):
        merge([one, run_scan(other, registry, shard=Shard(2, 2))])
    with pytest.raises(UsageError):
        merge([])


def test_shard_without_targets_says_so_and_merge_drops_the_note(tmp_path):
    inventory = sink_inventory(tmp_path, ["only"])
    registry = Registry.from_checks([ByName()])
    shards = [run_scan(inventory, registry, shard=Shard(k, 3)) for k in (1, 2, 3)]
    empty = [s for s in shards if not s.targets]
    assert len(empty) == 2 and all(s.tasks == 0 and s.notes for s in empty)
    merged = merge(shards).result
    assert merged.notes == ("Merged from 3 of 3 shards.",)
    assert _timeless(merged) == _timeless(run_scan(inventory, registry))


def test_documents_without_the_new_keys_still_load(tmp_path):
    # Given a shard result written as a document of before sharding, scopes and waivers
    inventory, registry = _lab(tmp_path)
    doc = run_scan(inventory, registry).to_json()
    for key in ("scope", "shard", "inventory_targets"):
        del doc["scan"][key]
    del doc["waivers"]
    for item in doc["findings"]:
        del item["waiver"]
    # Then it still loads, as an unsharded result without a scope
    loaded = ScanResult.from_json(doc)
    assert loaded.shard is None and loaded.scope == "" and loaded.waivers == ()
    assert loaded.all_targets == loaded.targets and loaded.tasks == 26


def test_job_index_comes_from_the_indexed_job():
    assert parse_shard("job/4", {"JOB_COMPLETION_INDEX": "0"}) == Shard(1, 4)
    assert parse_shard("job/4", {"JOB_COMPLETION_INDEX": "3"}) == Shard(4, 4)
    for env in ({}, {"JOB_COMPLETION_INDEX": "4"}, {"JOB_COMPLETION_INDEX": "x"}):
        with pytest.raises(UsageError):
            parse_shard("job/4", env)
