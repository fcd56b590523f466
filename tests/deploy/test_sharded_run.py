"""
The shell glue of the Indexed Job and the merge Job, run for real: a shard scans its share, and
the merge reports the shard that never ran (ignoring its stale result) as missing, its targets
UNVERIFIED, never passing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hipaacheck.model import Status

KUBERNETES = Path(__file__).parents[2] / "deploy" / "kubernetes"
SHARDS = 2
SINKS = 4


def _script(path: Path, paths: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A Job's shell script with its absolute paths moved under the test's folder, and its env."""
    (doc,) = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    script = container["args"][0]
    for old, new in paths.items():
        script = script.replace(old, new)
    return script, {e["name"]: e["value"] for e in container.get("env", [])}


def _inventory(tmp_path: Path) -> Path:
    sinks = []
    for n in range(SINKS):
        folder = tmp_path / "logs" / f"sink{n}"
        folder.mkdir(parents=True)
        (folder / "app.log").write_text("GET /health 200\n")
        sinks.append({"name": f"sink{n}", "paths": [str(folder / "*.log")]})
    path = tmp_path / "hipaacheck.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "organization": "Shard Test",
                                    "logs": {"sinks": sinks}}))
    return path


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return {"PATH": path, "LANG": "C.UTF-8", **extra, "HOME": str(tmp_path / "home")}


def test_shards_then_merge_report_the_missing_shard(tmp_path):
    shards = tmp_path / "shards"
    paths = {"/etc/hipaacheck/hipaacheck.yaml": str(_inventory(tmp_path)),
             "/shards": str(shards)}
    scan, scan_env = _script(KUBERNETES / "sharded" / "shards-job.yaml", paths)
    stale = shards / "shard-2" / "report.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # last night's result of the shard that will not run tonight
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))

    ran = subprocess.run(["/bin/sh", "-c", scan], env=_env(tmp_path, {
        **scan_env, "SHARDS": str(SHARDS), "JOB_COMPLETION_INDEX": "0"}),
        capture_output=True, timeout=120, check=False)
    assert ran.returncode in (0, 1, 3), ran.stderr  # a finished scan, whatever it found
    merge, merge_env = _script(KUBERNETES / "sharded" / "merge-job.yaml", paths)
    done = subprocess.run(["/bin/sh", "-c", merge], env=_env(tmp_path, merge_env),
                          capture_output=True, timeout=120, check=False)

    assert done.returncode == 3, done.stderr  # incomplete, not failed to run, not passed
    merged = json.loads((shards / "merged" / "report.json").read_text())
    shard = json.loads((shards / "shard-1" / "report.json").read_text())
    observed = {(f["check_id"], f["target"], f["resource"]): f["status"]
                for f in shard["findings"]}
    seen = {t["id"] for t in shard["scan"]["targets"]}
    findings = merged["findings"]
    assert {f["target"] for f in findings} == {f"logs:sink{n}" for n in range(SINKS)}
    missing = {f["target"] for f in findings} - seen
    assert missing, "the shard that did not run had targets"
    for f in findings:
        if f["target"] in missing:
            assert f["status"] == Status.UNVERIFIED.value, f
        else:
            assert f["status"] == observed[(f["check_id"], f["target"], f["resource"])]
    assert (shards / "history.sqlite").exists()
