"""`hipaacheck demo --keep-running` leaves a lab that another shell can scan again."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path


def _wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stderr is not None
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if match := re.search(pattern, seen.replace("\n", " ")):
            return match
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {pattern!r} in: {seen[-2000:]}")


def test_a_lab_left_running_can_be_scanned_again_and_its_env_file_goes_with_it(
        tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "400"}
    demo = subprocess.Popen([sys.executable, "-m", "hipaacheck", "demo", "--keep-running",
                             "--out", str(tmp_path / "demo"), "--format", "json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        match = _wait_for_line(demo, r"\. (\S+lab\.env); set \+a; hipaacheck scan -c (\S+)", 300)
        env_file, config = Path(match.group(1)), match.group(2)
        # Then the file is the owner's alone
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        # And a scan from a shell that sources it reads the running lab
        script = (f'set -a; . "{env_file}"; set +a; "{sys.executable}" -m hipaacheck scan '
                  f'-c "{config}" --out "{tmp_path / "again"}" -f json --no-history')
        rescan = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                timeout=300, env=env, check=False)
        assert rescan.returncode in (1, 3), rescan.stderr[-2000:]
        first = json.loads((tmp_path / "demo" / "report.json").read_text())["summary"]
        again = json.loads((tmp_path / "again" / "report.json").read_text())["summary"]
        # (as much could be observed the second time as the first: credentials and lab alike)
        assert again["UNVERIFIED"] == first["UNVERIFIED"] and again["ERROR"] == 0
        assert again["PASS"] > 0 and again["FAIL"] > 0
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    # And when the lab stops, the file with its passwords is gone
    assert not env_file.exists()
