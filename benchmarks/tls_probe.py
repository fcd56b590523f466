"""
Benchmark: hipaacheck's TLS probe against sslyze's own minimal command set, on the same local
endpoints, in the same run.

Part 1 starts 50 loopback endpoints (half legacy: TLS 1.0 to 1.3; half modern: TLS 1.2 and
1.3) and probes them twice: with hipaacheck's five TLS checks through the real runner (eight
workers, as a default scan), and with sslyze's six cipher-suite scans plus `certificate_info`
through one sslyze `Scanner` (its default concurrency), judged by the same five checks. It prints
wall time and connections per endpoint (counted by the servers themselves) for each, and
verifies that every verdict is identical.

Part 2 does the same on every case of the test matrix (`hipaacheck.lab.tls_matrix`), PostgreSQL
included unless `--no-postgres`, and prints each case's verdicts side by side. The cases where
sslyze's commands cannot reach a verdict that hipaacheck reaches are listed in `KNOWN` with the
reason; any other difference makes the run exit 1.

    python benchmarks/tls_probe.py [--endpoints 50] [--timeout 5] [--no-postgres] [--no-matrix]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from hipaacheck.check import Check, CheckContext, Policy
from hipaacheck.checks.tls.certificate import CertificateProfile, CertificateStrength
from hipaacheck.checks.tls.endpoint import CertificateChain, ProtocolVersions
from hipaacheck.checks.tls.suites import CipherSuites
from hipaacheck.clients import Clients
from hipaacheck.clients.tls import TlsObservation
from hipaacheck.clients.tls_sslyze import scan_endpoints
from hipaacheck.config import TlsEndpointConfig
from hipaacheck.lab.certs import LabCertificates, mint_lab_certificates
from hipaacheck.lab.tls import RunningServer, endpoint_entry, start_tls_server
from hipaacheck.lab.tls_matrix import CASES, Matrix, start_matrix
from hipaacheck.model import Status, Target, TargetKind
from hipaacheck.registry import Registry
from hipaacheck.runner import Runner, plan

CHECKS: tuple[Check[TlsObservation], ...] = (
    ProtocolVersions(), CipherSuites(), CertificateChain(), CertificateStrength(),
    CertificateProfile())
SHORT = {"tls.endpoint.protocols": "proto", "tls.endpoint.cipher_suites": "suites",
         "tls.endpoint.certificate": "chain", "tls.endpoint.certificate_strength": "strength",
         "tls.endpoint.certificate_profile": "profile"}
KNOWN = {
    "null_ciphers": "sslyze's connectivity test offers no NULL suite, so it never connects "
                    "to a NULL-only server (UNVERIFIED); hipaacheck's probe does (FAIL)",
    "plaintext_http": "the HTTP server waits for a whole request: sslyze's hellos and its "
                      "sniff time out (UNVERIFIED); hipaacheck's nudge gets the HTTP answer "
                      "(FAIL)",
}
Verdicts = dict[str, tuple[Status, ...]]


def target(endpoint: TlsEndpointConfig) -> Target:
    """The inventory target of an endpoint."""
    return Target(TargetKind.TLS_ENDPOINT, f"tls:{endpoint.name}", endpoint.name, endpoint)


def hipaacheck_verdicts(endpoints: Sequence[TlsEndpointConfig],
                        timeout: float) -> tuple[Verdicts, float]:
    """Every check on every endpoint through the real runner; verdicts and wall time."""
    ctx = CheckContext(clients=Clients(timeout=timeout), policy=Policy(),
                       logger=logging.getLogger("benchmark"), clock=lambda: datetime.now(UTC),
                       timeout=timeout)
    targets = [target(e) for e in endpoints]
    tasks = plan(Registry.from_checks(cast("tuple[Check[object], ...]", CHECKS)), targets)
    started = time.monotonic()
    results, _ = Runner(ctx, workers=8, deadline=120).run(tasks)
    elapsed = time.monotonic() - started
    verdicts = {t.name: tuple(results[(c.meta.id, t.id)][0].status for c in CHECKS)
                for t in targets}
    return verdicts, elapsed


def sslyze_verdicts(endpoints: Sequence[TlsEndpointConfig],
                    timeout: float) -> tuple[Verdicts, float]:
    """sslyze's minimal command set on every endpoint, judged by the same checks."""
    started = time.monotonic()
    observations = scan_endpoints(endpoints, timeout=timeout)
    elapsed = time.monotonic() - started
    verdicts = {}
    for endpoint, obs in zip(endpoints, observations):
        tgt = target(endpoint)
        verdicts[endpoint.name] = tuple(c.evaluate(obs, tgt, Policy())[0].status for c in CHECKS)
    return verdicts, elapsed


def _counted(servers: Sequence[RunningServer], run: object) -> tuple[object, int]:
    before = sum(s.connections for s in servers)
    result = run() if callable(run) else None
    time.sleep(0.2)  # let the last accepted connections be counted
    return result, sum(s.connections for s in servers) - before


def _row(name: str, verdicts: tuple[Status, ...]) -> str:
    return f"{name:22} " + " ".join(f"{v.value:10}" for v in verdicts)


def fleet(certs: LabCertificates, count: int, timeout: float) -> bool:
    """Part 1: the fleet of half legacy, half modern endpoints. True when verdicts agree."""
    servers = [start_tls_server(f"{'legacy' if i % 2 else 'modern'}-{i:02d}", certs.good,
                                "legacy" if i % 2 else "modern") for i in range(count)]
    endpoints = [TlsEndpointConfig.model_validate(endpoint_entry(s, certs.ca_bundle))
                 for s in servers]
    load = os.getloadavg()[0]
    try:
        ours, ours_connections = _counted(servers, lambda: hipaacheck_verdicts(endpoints, timeout))
        theirs, theirs_connections = _counted(servers, lambda: sslyze_verdicts(endpoints, timeout))
    finally:
        for server in servers:
            server.stop()
    assert isinstance(ours, tuple) and isinstance(theirs, tuple)
    (our_verdicts, our_time), (their_verdicts, their_time) = ours, theirs
    print(f"Part 1: {count} endpoints ({count - count // 2} modern, {count // 2} legacy), "
          f"timeout {timeout:g} s, load average {load:.1f} before the run "
          f"on {os.cpu_count()} CPUs")
    print(f"  {'':28}{'wall time':>12}{'connections/endpoint':>24}")
    print(f"  {'hipaacheck (5 checks, runner)':28}{our_time:>10.2f} s"
          f"{ours_connections / count:>24.1f}")
    print(f"  {'sslyze minimal command set':28}{their_time:>10.2f} s"
          f"{theirs_connections / count:>24.1f}")
    print(f"  speed-up {their_time / our_time:.1f}x wall time, "
          f"{theirs_connections / max(1, ours_connections):.1f}x fewer connections")
    differ = [n for n in our_verdicts if our_verdicts[n] != their_verdicts[n]]
    print(f"  verdicts identical on {count - len(differ)} of {count} endpoints")
    for name in differ:
        print("   ", _row(name, our_verdicts[name]), "| sslyze:", _row("", their_verdicts[name]))
    return not differ


def matrix_cases(workdir: Path, certs: LabCertificates, timeout: float,
                 postgres: bool) -> bool:
    """Part 2: every case of the test matrix. True when only known differences remain."""
    cases = [c for c in CASES if postgres or c.postgres is None]
    matrix: Matrix = start_matrix(workdir / "matrix", cases, certs)
    try:
        endpoints = [matrix.endpoints[c.name] for c in cases]
        ours, our_time = hipaacheck_verdicts(endpoints, timeout)
        theirs, their_time = sslyze_verdicts(endpoints, timeout)
    finally:
        matrix.stop()
    print(f"\nPart 2: the test matrix, {len(cases)} cases, timeout {timeout:g} s "
          f"(hipaacheck {our_time:.2f} s, sslyze {their_time:.2f} s)")
    print(f"  {'case':22} " + " ".join(f"{s:10}" for s in SHORT.values()) + "  sslyze")
    unexpected = []
    for case in cases:
        same = ours[case.name] == theirs[case.name]
        mark = "same" if same else ("known" if case.name in KNOWN else "DIFFERENT")
        line = "  " + _row(case.name, ours[case.name]) + f"  {mark}"
        if not same:
            line += " (" + " ".join(v.value for v in theirs[case.name]) + ")"
            if case.name not in KNOWN:
                unexpected.append(case.name)
        print(line)
    for name, why in KNOWN.items():
        if name in ours and ours[name] != theirs[name]:
            print(f"  known: {name}: {why}")
    return not unexpected


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every verdict agrees (known differences aside)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--matrix-timeout", type=float, default=2.0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-matrix", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hipaacheck-bench-") as tmp:
        workdir = Path(tmp)
        certs = mint_lab_certificates(workdir / "certs")
        ok = fleet(certs, args.endpoints, args.timeout)
        if not args.no_matrix:
            ok = matrix_cases(workdir, certs, args.matrix_timeout, not args.no_postgres) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
