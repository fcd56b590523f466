"""
Benchmark: the reports of a large estate.

Builds a synthetic scan of 100,000 findings (25 checks, 2,000 targets, every status, reasons
that name their resource so no two are alike) and prints each report's size and render time.
The HTML report must stay under 10 MB: findings are grouped and counted, and report.json keeps
every one of them.

    python benchmarks/report_scale.py [FINDINGS]
"""

from __future__ import annotations

import random
import sys
import time

from hipaacheck.model import (
    CheckMeta,
    Family,
    Finding,
    Operation,
    Severity,
    Standard,
    Status,
    System,
    TargetKind,
    UnknownReason,
)
from hipaacheck.render import render
from hipaacheck.result import ScanResult, TargetSummary

HTML_LIMIT = 10 * 1024 * 1024
STATUS_WEIGHTS = ((Status.PASS, 70), (Status.FAIL, 15), (Status.WARN, 8),
                  (Status.UNVERIFIED, 5), (Status.ERROR, 2))
_KINDS = (TargetKind.AWS, TargetKind.TLS_ENDPOINT, TargetKind.KUBERNETES, TargetKind.POSTGRES,
          TargetKind.LOG_SINK)


def _checks(count: int = 25) -> tuple[CheckMeta, ...]:
    standards = list(Standard)
    return tuple(CheckMeta(
        id=f"bench.area{i % 5}.control_{i:02d}", title=f"Benchmark control {i}",
        family=list(Family)[i % len(Family)], standard=standards[i % len(standards)],
        citations=(standards[i % len(standards)].value,), severity=list(Severity)[i % 4],
        target_kind=_KINDS[i % len(_KINDS)], description="A synthetic control.",
        remediation="Fix the synthetic control.",
        operations=(Operation(System.AWS, f"svc:DescribeThing{i}", "Reads the thing."),))
        for i in range(count))


def _finding(meta: CheckMeta, n: int, target: str, status: Status) -> Finding:
    resource = f"resource-{n:06d}"
    unknown = status is Status.UNVERIFIED
    return Finding(
        check_id=meta.id, target=target, resource=resource, status=status,
        reason=f"{status.value.title()} on {resource}: observed value {n % 97}.",
        severity=meta.severity, standard=meta.standard, citations=meta.citations,
        remediation=meta.remediation,
        evidence={"setting": f"value-{n % 7}", "count": n % 13, "enabled": n % 2 == 0},
        needs="svc:DescribeThing" if unknown else None,
        unknown_reason=UnknownReason.ACCESS_DENIED if unknown else None)


def synthetic_result(findings: int = 100_000, targets: int = 2_000) -> ScanResult:
    """A deterministic scan result of `findings` findings spread over `targets` targets."""
    rng = random.Random(7)
    checks = _checks()
    summaries = tuple(TargetSummary(f"t{i:05d}", _KINDS[i % len(_KINDS)], f"target-{i}")
                      for i in range(targets))
    statuses, weights = zip(*STATUS_WEIGHTS)
    drawn = rng.choices(statuses, weights=weights, k=findings)
    items = tuple(_finding(checks[n % len(checks)], n, summaries[n % targets].id, drawn[n])
                  for n in range(findings))
    return ScanResult(
        tool_version="0.1.0", organization="Benchmark Health", started="2026-12-03T01:00:00+00:00",
        finished="2026-12-03T03:00:00+00:00", config_fingerprint="0" * 64, targets=summaries,
        checks=checks, findings=items, tasks=targets * 5)


def measure(result: ScanResult, fmt: str) -> tuple[int, float]:
    """The size in bytes of one format's rendering and the seconds it took."""
    start = time.perf_counter()
    data = render(result, fmt)
    elapsed = time.perf_counter() - start
    return len(data.encode("utf-8") if isinstance(data, str) else data), elapsed


def main(argv: list[str]) -> int:
    """Print size and render time per format; exit 1 if the HTML report is over the limit."""
    count = int(argv[0]) if argv else 100_000
    start = time.perf_counter()
    result = synthetic_result(count)
    print(f"{count:,} findings on {len(result.targets):,} targets built in "
          f"{time.perf_counter() - start:.2f} s")
    html_size = 0
    for fmt in ("html", "md", "json", "sarif", "junit", "csv", "ocsf"):
        size, seconds = measure(result, fmt)
        html_size = size if fmt == "html" else html_size
        print(f"{fmt:>6}: {size / 1024 / 1024:8.2f} MB in {seconds:6.2f} s")
    verdict = "under" if html_size < HTML_LIMIT else "OVER"
    print(f"HTML report {verdict} the {HTML_LIMIT // 1024 // 1024} MB limit")
    return 0 if html_size < HTML_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
