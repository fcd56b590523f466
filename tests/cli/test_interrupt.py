"""Interrupting a scan writes what it has, marked incomplete, and exits 3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest


@pytest.fixture
def hanging_port():
    """A loopback listener that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], held
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_partial_report(tmp_path, hanging_port, sig):
    # Given a scan stuck on an endpoint that accepts and never answers
    config = tmp_path / "hipaacheck.yaml"
    port, accepted = hanging_port
    config.write_text(
        f"tls: {{endpoints: [{{name: hang, host: 127.0.0.1, port: {port}}}]}}\n"
        "scan: {probe_timeout_seconds: 60, check_deadline_seconds: 120}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hipaacheck", "scan", "-c", str(config), "--out", str(out),
         "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # When it is interrupted once the probe is under way (the endpoint saw a connection)
    deadline = time.monotonic() + 60
    while not accepted and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    # Then it exits 3 and the report says it is incomplete, nothing passed
    assert proc.returncode == 3, stderr.decode()[-2000:]
    doc = json.loads((out / "report.json").read_text())
    assert doc["scan"]["complete"] is False and doc["scan"]["interrupted"] is True
    assert {f["status"] for f in doc["findings"]} == {"UNVERIFIED"}
