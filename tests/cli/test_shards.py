"""`scan --shard K/N` and `merge` through the CLI, against real log files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli.nightly_lab import CLEAN, LEAKY, invoke, write_lab

SINKS = {"api": LEAKY, "batch": CLEAN, "web": CLEAN, "billing": LEAKY, "audit": CLEAN,
         "intake": CLEAN, "portal": None}


def _comparable(doc):
    """A report without what differs between runs: times, notes, and shard bookkeeping."""
    scan = {k: v for k, v in doc["scan"].items()
            if k not in ("started", "finished", "notes", "shard", "inventory_targets")}
    return {**doc, "scan": scan}


def _shards(tmp_path, config, count: int, *only: int):
    paths = []
    for k in only or range(1, count + 1):
        out = tmp_path / f"shard{k}"
        result = invoke("scan", "-c", str(config), "--shard", f"{k}/{count}", "--out", str(out),
                        "--format", "json", "--no-history")
        assert result.exit_code in (0, 1, 3), result.output
        paths.append(str(out / "report.json"))
    return paths


@pytest.fixture
def lab(tmp_path):
    config = write_lab(tmp_path, SINKS)
    single = invoke("scan", "-c", str(config), "--out", str(tmp_path / "single"), "-f", "json",
                    "--no-history")
    return config, single.exit_code, json.loads((tmp_path / "single" / "report.json").read_text())


def test_merge_of_three_shards_equals_the_single_scan(tmp_path, lab, _private_history):
    config, single_code, single = lab
    # Given three shard results of the same inventory
    paths = _shards(tmp_path, config, 3)
    shard_docs = [json.loads(Path(p).read_text()) for p in paths]
    assert sorted(t["id"] for d in shard_docs for t in d["scan"]["targets"]) == sorted(
        t["id"] for t in single["scan"]["targets"])
    # When they are merged (and the merge recorded in history)
    merged = invoke("merge", *reversed(paths), "--out", str(tmp_path / "merged"), "-f", "json")
    doc = json.loads((tmp_path / "merged" / "report.json").read_text())
    # Then the merged result is the single-process one, with the same exit code
    assert merged.exit_code == single_code, merged.output
    assert _comparable(doc) == _comparable(single)
    with sqlite3.connect(_private_history) as db:
        assert db.execute("SELECT shard, complete FROM scans").fetchall() == [("", 1)]


def test_merge_accepts_a_folder_of_shard_results(tmp_path, lab):
    config, _, single = lab
    folder = tmp_path / "all"
    folder.mkdir()
    for path in _shards(tmp_path, config, 2):
        (folder / path.replace("/", "_")).write_text(Path(path).read_text())
    merged = invoke("merge", str(folder), "--out", str(tmp_path / "m"), "-f", "json",
                    "--no-history")
    assert merged.exit_code in (1, 3), merged.output
    assert _comparable(json.loads((tmp_path / "m" / "report.json").read_text())) == \
        _comparable(single)


def test_missing_shard_is_named_and_its_targets_are_unverified(tmp_path, lab):
    config, _, single = lab
    # Given shards 1 and 3 of 3; shard 2 failed and wrote nothing
    paths = _shards(tmp_path, config, 3, 1, 3)
    lost = {t["id"] for t in single["scan"]["targets"]} - {
        t["id"] for p in paths for t in json.loads(Path(p).read_text())["scan"]["targets"]}
    assert lost
    # When the two are merged
    merged = invoke("merge", *paths, "--out", str(tmp_path / "m"), "-f", "json", "--no-history")
    doc = json.loads((tmp_path / "m" / "report.json").read_text())
    # Then the run is incomplete, says which shard and targets are missing, and passes none
    assert merged.exit_code == 3
    assert "2/3" in merged.stderr
    assert doc["scan"]["complete"] is False
    on_lost = [f for f in doc["findings"] if f["target"] in lost]
    assert on_lost and {f["status"] for f in on_lost} == {"UNVERIFIED"}
    assert any("2/3" in n and all(t in n for t in lost) for n in doc["scan"]["notes"])


def test_merge_refuses_what_is_not_a_shard_set(tmp_path, lab):
    config, _, _ = lab
    one = _shards(tmp_path, config, 2, 1)[0]
    assert invoke("merge", one, one, "--no-history").exit_code == 2
    assert invoke("merge", str(tmp_path / "single" / "report.json"), "--no-history").exit_code == 2
    (tmp_path / "junk.json").write_text("{}")
    assert invoke("merge", str(tmp_path / "junk.json"), "--no-history").exit_code == 2
    assert invoke("merge", str(tmp_path / "absent.json"), "--no-history").exit_code == 2


def test_shard_history_compares_the_same_shard(tmp_path):
    config = write_lab(tmp_path, SINKS)
    for night in ("n1", "n2"):
        for k in (1, 2):
            result = invoke("scan", "-c", str(config), "--shard", f"{k}/2", "--out",
                            str(tmp_path / night / str(k)), "-f", "json", "--since-last")
            assert result.exit_code in (1, 3), result.output
            if night == "n2":
                assert "No changes." in result.stdout
