"""
Accuracy and throughput of the PHI detector on a seeded, labelled synthetic corpus.

The corpus mixes seven log formats (nginx access, application JSON, PostgreSQL, syslog,
Kubernetes, HL7 and FHIR traffic) full of hard negatives (epoch timestamps, order and
transaction ids, AWS account ids, block ids, UUIDs, versions, IPs), with synthetic patients'
identifiers on about 1% of lines; each leaking line is labelled with the kinds it holds.

It is written to a temporary directory (plain files and a gzip rotation) and scanned end to
end, as the `logs.files.phi` check does: read, detect, validate, aggregate, and write the
redacted evidence. Printed per engine (RE2 and Python's `re`): precision and recall per kind
and overall at (line, kind) granularity, clean lines flagged per 2,000, MB/s and peak memory.

    .venv/bin/python benchmarks/phi_detector.py [--lines 300000] [--seed 1] [--phi-rate 0.01]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hipaacheck.detectors.files import LogFileReader, discover
from hipaacheck.detectors.phi import Kind, PhiDetector, PhiSummary, re2_available
from hipaacheck.lab.logs import SyntheticLogs

Labels = dict[tuple[str, int], frozenset[Kind]]


def build_corpus(root: Path, lines: int, seed: int, phi_rate: float) -> tuple[Labels, int]:
    """Write the corpus under `root`; return the labels of leaking lines and the clean count."""
    logs, rnd = SyntheticLogs(seed=seed, patients=500), random.Random(seed)
    labels: Labels = {}
    per_format = lines // len(SyntheticLogs.FORMATS)
    clean = 0
    for fmt in SyntheticLogs.FORMATS:
        out: list[bytes] = []
        name = f"{fmt}.log" if fmt != "nginx" else "nginx.log.1.gz"
        for n in range(1, per_format + 1):
            if rnd.random() < phi_rate:
                line, kinds = logs.leaking(fmt)
                labels[(name, n)] = kinds
            else:
                line, clean = logs.clean(fmt), clean + 1
            out.append(line)
        data = b"\n".join(out) + b"\n"
        path = root / name
        path.write_bytes(gzip.compress(data, compresslevel=1) if name.endswith(".gz") else data)
    return labels, clean


Timing = tuple[float, float]
"""CPU seconds of this process, and wall-clock seconds."""


def scan(root: Path, engine: str, evidence: Path) -> tuple[dict[tuple[str, int], set[Kind]],
                                                          int, Timing]:
    """Scan every file end to end; return predictions, bytes read and the time taken."""
    detector = PhiDetector(engine=engine)  # type: ignore[arg-type]
    predicted: dict[tuple[str, int], set[Kind]] = {}
    total, cpu, wall = 0, time.process_time(), time.perf_counter()
    report = []
    for path in discover([str(root)]).files:
        reader = LogFileReader(path, max_bytes=1 << 40)
        summary = PhiSummary()
        name = Path(path).name
        for hits in detector.scan_blocks(reader.blocks(), previews=1):
            summary.add(hits)
            predicted[(name, hits.line_no)] = {m.kind for m in hits.matches}
        total += reader.outcome.bytes_read
        report.append({"file": name, "preview": summary.first_preview,
                       "kinds": [(k.kind.value, k.count, k.distinct) for k in summary.kinds()]})
    evidence.write_text(json.dumps(report))
    return predicted, total, (time.process_time() - cpu, time.perf_counter() - wall)


def accuracy(labels: Labels, predicted: dict[tuple[str, int], set[Kind]]
             ) -> dict[Kind | None, tuple[int, int, int]]:
    """True positives, false positives and false negatives per kind (None: all kinds)."""
    tp, fp, fn = Counter[Kind | None](), Counter[Kind | None](), Counter[Kind | None]()
    for key in set(labels) | set(predicted):
        truth, guess = labels.get(key, frozenset()), predicted.get(key, set())
        for kind in truth | guess:
            counter = tp if kind in truth and kind in guess else fp if kind in guess else fn
            counter[kind] += 1
            counter[None] += 1
    return {k: (tp[k], fp[k], fn[k]) for k in set(tp) | set(fp) | set(fn)}


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  n/a"


def report_engine(engine: str, labels: Labels, clean: int, predicted: dict[tuple[str, int],
                  set[Kind]], total: int, timing: Timing) -> None:
    """Print one engine's figures."""
    print(f"\n== engine: {engine} ==")
    print(f"{'kind':<24} {'TP':>6} {'FP':>5} {'FN':>5} {'precision':>9} {'recall':>7}")
    rows = accuracy(labels, predicted)
    for kind in sorted((k for k in rows if k is not None), key=lambda k: k.value):
        tp, fp, fn = rows[kind]
        print(f"{kind.value:<24} {tp:>6} {fp:>5} {fn:>5} {_ratio(tp, tp + fp):>9} "
              f"{_ratio(tp, tp + fn):>7}")
    tp, fp, fn = rows.get(None, (0, 0, 0))
    print(f"{'OVERALL':<24} {tp:>6} {fp:>5} {fn:>5} {_ratio(tp, tp + fp):>9} "
          f"{_ratio(tp, tp + fn):>7}")
    flagged_clean = sum(1 for key in predicted if key not in labels)
    print(f"clean lines flagged: {flagged_clean} of {clean} "
          f"({flagged_clean * 2000 / max(clean, 1):.3f} per 2,000; target <= 1)")
    cpu, wall = timing
    print(f"throughput: {total / 1e6:.1f} MB, {total / 1e6 / cpu:.1f} MB/s of CPU time on one core "
          f"({cpu:.2f} s; wall clock {wall:.2f} s = {total / 1e6 / wall:.1f} MB/s); end to end: "
          "read, gunzip, detect, validate, aggregate, write evidence")


def compare_others() -> None:
    """Say whether Presidio and scrubadub are available for a side-by-side run."""
    for module in ("presidio_analyzer", "scrubadub"):
        try:
            __import__(module)
        except ImportError:
            print(f"{module}: not installed (no offline wheel); no comparison figures")
        else:
            print(f"{module}: installed, but a comparison run is not implemented here")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phi-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    engines = ["re2", "re"] if re2_available() else ["re"]
    with tempfile.TemporaryDirectory(prefix="phi-bench-") as tmp:
        root = Path(tmp) / "logs"
        root.mkdir()
        labels, clean = build_corpus(root, args.lines, args.seed, args.phi_rate)
        size = sum(p.stat().st_size for p in root.iterdir())
        print(f"corpus: {args.lines} lines in {len(SyntheticLogs.FORMATS)} formats, "
              f"{len(labels)} leaking lines ({len(labels) / args.lines:.2%}), "
              f"{size / 1e6:.1f} MB on disk, seed {args.seed}")
        for engine in engines:
            predicted, total, timing = scan(root, engine, Path(tmp) / f"evidence-{engine}.json")
            report_engine(engine, labels, clean, predicted, total, timing)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of the whole run: {peak:.0f} MB")
    compare_others()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
