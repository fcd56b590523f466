"""The main job: `hipaacheck demo` starts the lab, scans it and writes the report, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

FAMILY_OF = {
    "tls.": "transmission_security",
    "aws.s3.default_encryption": "encryption_at_rest",
    "aws.rds.storage_encrypted": "encryption_at_rest",
    "kubernetes.storageclass": "encryption_at_rest",
    "postgres.audit.": "audit_isolation",
    "logs.": "phi_in_logs",
    "aws.rds.backup_retention": "backup_retention",
}


def test_demo_writes_a_report_with_pass_and_fail_in_every_family(tmp_path):
    # Given a fresh output folder; when the demo runs as a user would run it
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "hipaacheck", "demo", "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "120"})
    # Then it exits 1 or 3 (the lab is broken on purpose) and leaves every report file
    assert proc.returncode in (1, 3), proc.stderr[-3000:]
    for name in ("report.html", "report.md", "report.json", "hipaacheck.yaml"):
        assert (out / name).stat().st_size > 0, name
    doc = json.loads((out / "report.json").read_text())
    families = {m["id"]: m["family"] for m in doc["checks"]}
    statuses: dict[str, set[str]] = defaultdict(set)
    for finding in doc["findings"]:
        statuses[families[finding["check_id"]]].add(finding["status"])
    for family in set(FAMILY_OF.values()):
        assert {"PASS", "FAIL"} <= statuses[family], (family, statuses[family])
    assert "ERROR" not in {s for group in statuses.values() for s in group}
    # And the lab's inventory holds no secret value, only ${VAR} references
    inventory = (out / "hipaacheck.yaml").read_text()
    assert "password=${" in inventory
    # And the endpoints found in the lab's control planes are all listed: the cluster's
    # opted-in ones probed live (one of them accepts TLS 1.0), the account's left alone
    endpoints = doc["endpoints"]
    probed = {e["target"] for e in endpoints if e["probed"]}
    assert len(probed) >= 3
    assert {e["endpoint"]["source"] for e in endpoints if not e["probed"]} >= {"aws:lab", "k8s:lab"}
    probe_statuses = {f["status"] for f in doc["findings"] if f["target"] in probed}
    assert {"PASS", "FAIL"} <= probe_statuses
